//! Domain types parsed once at the edge; valid by construction inside.
pub mod answers;
pub mod import;
pub mod questions;
pub mod segment_filter;

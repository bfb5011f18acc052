//! Domain types parsed once at the edge; valid by construction inside.
pub mod answers;
pub mod attributes;
pub mod brand;
pub mod import;
pub mod locale;
pub mod nesting;
pub mod nul;
pub mod questions;
pub mod segment_filter;
pub mod strict;
pub mod text;

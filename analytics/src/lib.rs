//! Pure computations of `shared/spec/analytics.md`: plain structs in, plain
//! structs out; no database, no web, no async. Accumulators here are
//! mergeable, so a result can be folded in piece by piece or recomputed whole
//! and come out the same.
pub mod barriers;
pub mod cash;
pub mod funnel;
pub mod hypotheses;
pub mod jtbd;
pub mod moments;
pub mod nps;
pub mod panel;
pub mod qfd;
pub mod track;
pub mod ux;

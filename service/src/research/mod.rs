//! Customer research: choice factors, questionnaires (and their export and
//! import as documents), responses and their ingest, saved segments, and
//! what is computed from them — the summary, the customer panel, segment
//! hypotheses, QFD, the UX dynamic map, customer tracks and the sales-barrier
//! analysis.
pub mod barriers;
pub mod factors;
pub mod hypotheses;
pub mod panel;
pub mod qfd;
pub mod questionnaire_transfer;
pub mod questionnaires;
pub mod responses;
pub mod segments;
pub mod summary;
pub mod tracks;
pub mod ux;

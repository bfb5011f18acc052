//! Research: choice factors, questionnaires and segments, responses and
//! the summary, the panel, hypotheses, QFD, the UX map, customer tracks and
//! sales barriers.
pub mod barriers;
pub mod hypotheses;
pub mod panel;
pub mod qfd;
pub mod questionnaire_transfer;
pub mod questionnaires;
pub mod responses;
pub mod tracks;
pub mod ux;

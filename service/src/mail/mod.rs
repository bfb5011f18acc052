//! Email to people outside the agency: lists, subscribers and consent,
//! newsletter campaigns, and the client digests that compose every area's
//! figures, and the engagement (opens, clicks) of campaign emails. The
//! pipeline they all send through is [`crate::infra::email`].
pub mod campaigns;
pub mod chains;
pub mod contacts;
pub mod digest;
pub mod funnel;
pub mod lists;
pub mod previews;
pub mod qualify;
pub mod sender;
pub mod subscriber_import;
pub mod subscribers;
pub mod tracking;

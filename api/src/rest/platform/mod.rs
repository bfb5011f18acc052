//! The agency and its people: sign-up, login, members, API keys, job runs;
//! clients and touchpoint libraries; report links.
pub mod account;
pub mod clients;
pub mod libraries;
pub mod report_links;
pub mod webhooks;

//! The agency and its people: sign-up and login, members and roles, API
//! keys, clients and their settings, touchpoint libraries (and touchpoints
//! named by key, for documents that leave the agency), webhook endpoints,
//! report links (the live report page's signed URLs).
pub mod agency;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod clients;
pub mod digest_schedule;
pub mod libraries;
pub mod members;
pub mod report_links;
pub mod touchpoint_refs;
pub mod webhooks;

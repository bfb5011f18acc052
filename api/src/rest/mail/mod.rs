//! Deliveries, email previews and digests; lists, subscribers, campaigns
//! and the public subscribe/confirm/unsubscribe pages.
pub mod contacts;
pub mod email;
pub mod subscribers;

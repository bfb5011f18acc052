//! Deliveries, email previews and digests; lists, subscribers, campaigns;
//! the public subscribe/confirm/unsubscribe pages and the open pixel and
//! click-through of campaign emails.
pub mod email;
pub mod subscribers;
pub mod tracking;

//! Deliveries, email previews and digests; lists, subscribers, campaigns;
//! contacts and their qualification; the public subscribe/confirm/
//! unsubscribe pages and the open pixel and click-through of emails.
pub mod chains;
pub mod contacts;
pub mod email;
pub mod sender;
pub mod subscribers;
pub mod tracking;

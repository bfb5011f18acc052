//! Purchases and the JTBD map; Cash Journey models.
pub mod cash;
pub mod purchases;

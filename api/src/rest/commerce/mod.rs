//! Purchases and the JTBD map; Cash Journey models; channel figures.
pub mod cash;
pub mod channels;
pub mod purchases;

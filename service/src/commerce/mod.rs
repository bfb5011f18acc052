//! What customers bought and what it earns: purchases, the JTBD
//! value-migration map and Cash Journey models.
pub mod cash;
pub mod channels;
pub mod jtbd;
pub mod purchases;

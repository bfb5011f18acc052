use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One purchase of a client's customer (analytics.md §6).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "purchases")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub client_id: Uuid,
    /// The sender's id; unique per agency and client when present.
    pub external_id: Option<String>,
    pub customer_ref: String,
    pub purchased_at: DateTimeUtc,
    pub amount: f64,
    pub items: i32,
    pub party_size: i32,
    pub channel: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A nurture chain of a client (analytics.md §7).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "chains")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub client_id: Uuid,
    pub name: String,
    /// `segment` or `reverse`.
    pub kind: String,
    pub segment_id: Option<Uuid>,
    pub lead_days: f64,
    pub window_start: i32,
    pub window_end: i32,
    /// `active` or `paused`.
    pub status: String,
    pub steps: Json,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

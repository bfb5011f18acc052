use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A note on a customer track from an interview or a sales call.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "track_notes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub track_id: Uuid,
    pub text: String,
    /// `interview`, `sales_call` or `other`.
    pub source: String,
    pub noted_on: Date,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// What an enrolment did at a step.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "chain_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub chain_id: Uuid,
    pub enrolment_id: Uuid,
    pub contact_id: Uuid,
    pub step: i32,
    /// `enrolled`, `sent`, `skipped`, `exited` or `completed`.
    pub action: String,
    pub reason: Option<String>,
    pub dedupe_key: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

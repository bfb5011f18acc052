use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One contact going through a chain.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "chain_enrolments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub client_id: Uuid,
    pub chain_id: Uuid,
    pub contact_id: Uuid,
    pub trigger_key: String,
    /// `active`, `completed` or `exited`.
    pub status: String,
    pub exit_reason: Option<String>,
    /// The next step to send.
    pub step: i32,
    pub next_at: Option<DateTimeUtc>,
    pub enrolled_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "recompute_targets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub kind: String,
    pub target_id: Uuid,
    pub wanted_version: i64,
    pub computed_version: i64,
    pub pending: bool,
    pub pending_since_ms: i64,
    pub lease_owner: Option<String>,
    pub lease_until_ms: i64,
    /// Not before this time (after a failure, the backoff).
    pub next_attempt_ms: i64,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

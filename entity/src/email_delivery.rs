use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "email_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub client_id: Option<Uuid>,
    pub kind: String,
    pub source_id: Option<Uuid>,
    pub recipient: String,
    pub dedupe_key: String,
    pub message_id: String,
    pub subject: String,
    pub body: Json,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_ms: i64,
    pub lease_owner: Option<String>,
    pub lease_until_ms: i64,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

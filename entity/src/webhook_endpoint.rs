use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Where an agency wants its events POSTed; the signing secret sealed.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub url: String,
    pub description: String,
    /// A JSON array of event types; None: every type.
    pub event_types: Option<Json>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    #[serde(skip_serializing)]
    pub secret_sealed: String,
    #[serde(skip_serializing)]
    pub previous_secret_sealed: Option<String>,
    pub previous_secret_until: Option<DateTimeUtc>,
    pub failing_since: Option<DateTimeUtc>,
    /// Disabled for failing; the admins' email is still to be queued.
    pub alert_pending: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

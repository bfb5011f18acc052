use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A client's own sender: From, Reply-To and optionally its own SMTP
/// server (the URL sealed at rest, its host kept apart for display).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "client_senders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub client_id: Uuid,
    pub from_name: Option<String>,
    pub from_address: Option<String>,
    pub reply_to: Option<String>,
    #[serde(skip_serializing)]
    pub smtp_url_sealed: Option<String>,
    pub smtp_host: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "subscribers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub client_id: Uuid,
    pub list_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub locale: String,
    pub status: String,
    pub consent_at: DateTimeUtc,
    pub consent_version: i32,
    pub consent_text: String,
    pub consent_source: String,
    pub consent_ip: Option<String>,
    pub confirmed_at: Option<DateTimeUtc>,
    pub unsubscribed_at: Option<DateTimeUtc>,
    pub attributes: Json,
    /// The client's contact with this e-mail.
    pub contact_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One open-pixel fetch or tracked click of a campaign email: the raw log
/// (every hit is a row; stats count unique recipients).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "email_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub client_id: Uuid,
    pub delivery_id: Uuid,
    pub campaign_id: Option<Uuid>,
    /// The recipient, lowercased.
    pub email: String,
    /// `opened` or `clicked`.
    pub kind: String,
    /// The original URL of a click.
    pub url: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

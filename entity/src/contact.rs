use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One person of a client's audience, by e-mail (analytics.md §7). Its
/// qualification is in `contact_scores`; [`crate::scored_contact`] reads both.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "contacts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub client_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub locale: Option<String>,
    /// `active`, `unsubscribed` or `bounced`.
    pub status: String,
    pub source_channel: Option<String>,
    /// `reach`, `warming` or `reverse`.
    pub funnel: String,
    pub attributes: Json,
    pub customer_ref: Option<String>,
    pub confirmed_at: Option<DateTimeUtc>,
    pub converted: Option<bool>,
    pub converted_at: Option<DateTimeUtc>,
    pub conversion_value: Option<f64>,
    /// `api` or `purchase`.
    pub outcome_source: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

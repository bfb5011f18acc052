use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One client's channel figures for a day, channel and funnel type
/// (analytics.md §7).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "channel_days")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub client_id: Uuid,
    pub day: Date,
    pub channel: String,
    /// `reach`, `warming` or `reverse`.
    pub funnel: String,
    pub spend: f64,
    pub impressions: i64,
    pub clicks: i64,
    pub contacts: i64,
    pub leads: i64,
    pub mentions: i64,
    pub brand_searches: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

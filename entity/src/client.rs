use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "clients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub name: String,
    pub industry: Option<String>,
    pub currency: String,
    pub timezone: String,
    pub locale: String,
    pub report_recipients: Json,
    pub digest_schedule: String,
    /// The next scheduled digest slot (UTC); null when the schedule is off.
    /// Rows from before it existed may hold a lower bound instead, which the
    /// first due tick turns into the slot.
    pub next_digest_at: Option<DateTimeUtc>,
    pub touchpoint_library_id: Option<Uuid>,
    pub min_segment_n: i32,
    /// Open pixel and click tracking in its campaign emails (default on).
    pub track_engagement: bool,
    pub archived_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

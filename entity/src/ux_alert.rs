use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "ux_alerts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub client_id: Uuid,
    pub scope: String,
    pub flag_key: String,
    pub touchpoint_id: Option<Uuid>,
    pub stage_id: Option<Uuid>,
    pub jtbd: Option<String>,
    pub deviation: Option<f64>,
    pub current_mean: Option<f64>,
    pub baseline_mean: Option<f64>,
    pub current_n: i64,
    pub as_of: String,
    pub data_version: i64,
    pub raised_at: DateTimeUtc,
    pub cleared_at: Option<DateTimeUtc>,
    pub notified_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

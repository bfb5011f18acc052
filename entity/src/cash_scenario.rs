use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "cash_scenarios")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub model_id: Uuid,
    /// `min`, `base` or `max`.
    pub scenario: String,
    pub reach: f64,
    pub ctr: f64,
    pub lead_rate: f64,
    pub conversion: f64,
    pub items_per_order: f64,
    pub item_price: f64,
    pub refusal_rate: f64,
    pub repeat_purchases: f64,
    pub repeat_uplift: f64,
    pub gross_margin: f64,
    pub marketing_cost: f64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

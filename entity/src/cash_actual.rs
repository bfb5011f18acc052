use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "cash_actuals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub model_id: Uuid,
    /// `YYYY-MM`.
    pub period: String,
    pub traffic: Option<f64>,
    pub leads: Option<f64>,
    pub first_sales: Option<f64>,
    /// The average check A (`check` is an SQL keyword).
    pub check_amount: Option<f64>,
    pub completed: Option<f64>,
    pub first_revenue: Option<f64>,
    pub repeat_revenue: Option<f64>,
    pub revenue: Option<f64>,
    pub gross_profit: Option<f64>,
    pub profit: Option<f64>,
    pub romi: Option<f64>,
    pub cost_per_sale: Option<f64>,
    /// R: people reached (from channel figures: impressions).
    pub reach: Option<f64>,
    /// Click-through rate, in [0, 1].
    pub ctr: Option<f64>,
    /// C: marketing cost (from channel figures: spend).
    pub marketing_cost: Option<f64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

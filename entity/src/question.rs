use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "questions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub questionnaire_id: Uuid,
    pub version: i32,
    pub position: i32,
    pub key: String,
    pub label: String,
    pub qtype: String,
    pub role: Option<String>,
    pub required: bool,
    pub options: Json,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
    pub choice_factor_id: Option<Uuid>,
    pub touchpoint_id: Option<Uuid>,
    /// A barrier question's CJM stage.
    pub stage_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A contact's qualification in one set of scores of its client (see
/// [`crate::contact_score_set`]).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "contact_scores")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub set_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub contact_id: Uuid,
    pub agency_id: Uuid,
    pub score: f64,
    pub probability: Option<f64>,
    /// `hot`, `warm` or `cold`.
    pub tier: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

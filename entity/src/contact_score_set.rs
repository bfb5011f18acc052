use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Which set of `contact_scores` is a client's current one, and when the
/// worker last wrote the client's scores.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "contact_score_sets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub client_id: Uuid,
    pub set_id: Uuid,
    pub scored_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

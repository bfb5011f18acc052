use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The contact whose e-mail a questionnaire response carried. `id` is the
/// response's id (its questionnaire and data version copied); `contact_id`
/// is null for a response that was examined and carried no usable address.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "response_contacts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agency_id: Uuid,
    pub client_id: Uuid,
    pub questionnaire_id: Uuid,
    pub data_version: i64,
    pub contact_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

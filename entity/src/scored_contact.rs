use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A contact with its current qualification: the view `scored_contacts`
/// (contacts ⟕ the client's current set of `contact_scores`). Read only.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "scored_contacts")]
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
    /// Σ points of the rules matched (0 until first scored).
    pub score: f64,
    /// The model's probability, when the client had a model.
    pub probability: Option<f64>,
    /// `hot`, `warm` or `cold` (`cold` until first scored).
    pub tier: String,
    /// When the worker last wrote the client's scores, for a scored contact.
    pub scored_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

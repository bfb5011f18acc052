//! Qualification (analytics.md §7): per client, point rules and tier
//! thresholds ([`settings`]), the logistic model retrained by the worker
//! once ≥ 200 contacts have a known outcome and both outcomes occur, and
//! the worker's rescoring of every contact on new data ([`rescore`]),
//! coalesced through the `client_contacts` target of the ledger like every
//! recompute. The model is stored as a snapshot of that target.
use analytics::funnel::{Model, ScoreRule, TierThresholds};
use chrono::{DateTime, Utc};
use entity::{scoring_settings, snapshot};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::error::{AppError, AppResult};
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services};

mod attrs;
mod explain;
mod pg;
mod rescore;
mod score;
mod settings;
pub use rescore::*;
pub use settings::*;

/// The snapshot kind of a client's fitted model (or of why it has none).
pub const KIND_MODEL: &str = "contact_model";

/// A fitted model as stored: the model and when it was fitted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredModel {
    pub fitted_at: DateTime<Utc>,
    pub model: Model,
}

/// One weight of the model.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct ModelWeight {
    /// `key=value` for a level of a categorical attribute, `key` for a
    /// z-scored number.
    pub feature: String,
    pub weight: f64,
}

/// The client's model, or why there is none yet.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct ModelView {
    pub client_id: Uuid,
    /// Whether a model is in use (otherwise tiers come from rule scores).
    pub trained: bool,
    pub fitted_at: Option<DateTime<Utc>>,
    /// The contacts' data version the model was fitted on.
    pub data_version: Option<i64>,
    /// Contacts with a known outcome, and how many converted (when fitted).
    pub labelled: Option<i64>,
    pub converted: Option<i64>,
    pub intercept: Option<f64>,
    pub weights: Vec<ModelWeight>,
    pub lambda: Option<f64>,
    pub iterations: Option<i64>,
    pub gradient_norm: Option<f64>,
    /// Why there is no model (too few labelled contacts, one outcome).
    pub reason: Option<String>,
}

/// The client's rules, thresholds and λ (defaults when never set).
pub(crate) async fn settings_of<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
) -> AppResult<(
    Vec<ScoreRule>,
    TierThresholds,
    f64,
    Option<scoring_settings::Model>,
)> {
    let row = scoring_settings::Entity::find()
        .filter(scoring_settings::Column::AgencyId.eq(agency_id))
        .filter(scoring_settings::Column::ClientId.eq(client_id))
        .one(db)
        .await?;
    Ok(match &row {
        None => (Vec::new(), TierThresholds::default(), 1.0, None),
        Some(r) => (
            serde_json::from_value(r.rules.clone()).unwrap_or_default(),
            serde_json::from_value(r.thresholds.clone()).unwrap_or_default(),
            r.lambda,
            row,
        ),
    })
}

/// The stored model of a client, ready to score with.
pub(crate) async fn model_of<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
) -> AppResult<Option<(StoredModel, i64)>> {
    let snap = snapshot::Entity::find()
        .filter(snapshot::Column::AgencyId.eq(agency_id))
        .filter(snapshot::Column::Kind.eq(KIND_MODEL))
        .filter(snapshot::Column::TargetId.eq(client_id))
        .one(db)
        .await?;
    // Without a model the payload says why: `{"reason": …}`.
    let Some(s) = snap.filter(|s| s.payload.get("model").is_some()) else {
        return Ok(None);
    };
    let mut stored: StoredModel = serde_json::from_value(s.payload).map_err(|e| {
        AppError::Unexpected(anyhow::anyhow!("client {client_id} holds a bad model: {e}"))
    })?;
    // The lookup tables of the feature space are not stored.
    stored.model.space = analytics::funnel::FeatureSpace::new(stored.model.space.features);
    Ok(Some((stored, s.data_version)))
}

impl Services {
    /// The client's model (weights by feature), or why there is none.
    pub async fn contact_model(&self, ctx: &RequestCtx, client_id: Uuid) -> AppResult<ModelView> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let reason = snapshot::Entity::find()
            .filter(snapshot::Column::AgencyId.eq(ctx.agency_id))
            .filter(snapshot::Column::Kind.eq(KIND_MODEL))
            .filter(snapshot::Column::TargetId.eq(client_id))
            .one(&self.db)
            .await?
            .and_then(|s| s.payload.get("reason")?.as_str().map(str::to_owned));
        Ok(match model_of(&self.db, ctx.agency_id, client_id).await? {
            None => ModelView {
                client_id,
                trained: false,
                fitted_at: None,
                data_version: None,
                labelled: None,
                converted: None,
                intercept: None,
                weights: Vec::new(),
                lambda: None,
                iterations: None,
                gradient_norm: None,
                reason: Some(reason.unwrap_or_else(|| {
                    format!(
                        "no model yet: it needs {} contacts with a known outcome, both outcomes among them",
                        analytics::funnel::MIN_LABELLED
                    )
                })),
            },
            Some((s, version)) => ModelView {
                client_id,
                trained: true,
                fitted_at: Some(s.fitted_at),
                data_version: Some(version),
                labelled: Some(s.model.labelled as i64),
                converted: Some(s.model.converted as i64),
                intercept: Some(s.model.intercept),
                weights: s
                    .model
                    .space
                    .features
                    .iter()
                    .zip(&s.model.weights)
                    .map(|(f, w)| ModelWeight {
                        feature: f.name(),
                        weight: *w,
                    })
                    .collect(),
                lambda: Some(s.model.lambda),
                iterations: Some(s.model.iterations as i64),
                gradient_norm: Some(s.model.gradient_norm),
                reason: None,
            },
        })
    }
}

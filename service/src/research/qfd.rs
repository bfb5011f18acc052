//! QFD for the CJM (analytics.md §3): the factor × touchpoint matrix of a
//! client, importances from its customer panel (or overridden), results per
//! touchpoint, factor and stage, and improvement priorities from the
//! mystery-shopper ratings.
use std::collections::HashMap;

use analytics::panel::QState;
use analytics::qfd::{
    ClassThresholds, CorrelationCell, Factor, QfdInput, QfdResult, Stage, Touchpoint,
    TouchpointPriority, compute, improvement_priorities,
};
use entity::{choice_factor, cjm_stage, qfd_cell, qfd_importance, questionnaire, touchpoint};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::questions::QuestionRole;
use crate::domain::segment_filter::SegmentFilter;
use crate::infra::audit::{self, Audit};
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::ledger::KIND_TRACKS;
use crate::platform::clients::find_client;
use crate::research::panel::compile_filter;
use crate::research::questionnaires::{find_questionnaire, load_questions};
use crate::{Perm, RequestCtx, Services, infra::db, new_id, now};
use serde_json::json;

pub const MAX_CELLS: usize = 20_000;

#[derive(
    Debug,
    Clone,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    async_graphql::SimpleObject,
    async_graphql::InputObject,
)]
#[serde(deny_unknown_fields)]
#[graphql(input_name = "QfdCellInput")]
pub struct QfdCell {
    pub factor_id: Uuid,
    pub touchpoint_id: Uuid,
    /// 0 (no relation / not assessed), 1, 3 or 9.
    pub value: i32,
}

#[derive(
    Debug,
    Clone,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    async_graphql::SimpleObject,
    async_graphql::InputObject,
)]
#[serde(deny_unknown_fields)]
#[graphql(input_name = "QfdImportanceInput")]
pub struct QfdImportance {
    pub factor_id: Uuid,
    /// Overrides the panel mean; null removes the override.
    pub importance: Option<f64>,
}

/// A bulk change of the matrix: cells are upserted (value 0 removes one).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct QfdMatrixInput {
    #[serde(default)]
    #[graphql(default)]
    pub cells: Vec<QfdCell>,
    #[serde(default)]
    #[graphql(default)]
    pub importances: Vec<QfdImportance>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct QfdMatrix {
    pub client_id: Uuid,
    /// Non-zero cells.
    pub cells: Vec<QfdCell>,
    pub importances: Vec<QfdImportance>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct FactorImportance {
    pub factor_id: Uuid,
    pub name: String,
    /// The importance used: the override, else the panel mean.
    pub importance: Option<f64>,
    /// `override`, `panel` or `none` (no answers yet: left out of the QFD).
    pub source: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct QfdView {
    pub client_id: Uuid,
    /// The customer-panel questionnaire the importances come from.
    pub questionnaire_id: Option<Uuid>,
    /// Its data version.
    pub data_version: i64,
    pub importances: Vec<FactorImportance>,
    pub result: QfdResult,
    pub priorities: Vec<TouchpointPriority>,
}

impl Services {
    async fn client_library(&self, ctx: &RequestCtx, client_id: Uuid) -> AppResult<Uuid> {
        find_client(&self.db, ctx.agency_id, client_id)
            .await?
            .touchpoint_library_id
            .ok_or_else(|| {
                AppError::Conflict(
                    "the client has no touchpoint library; set touchpoint_library_id".into(),
                )
            })
    }

    pub async fn qfd_matrix(&self, ctx: &RequestCtx, client_id: Uuid) -> AppResult<QfdMatrix> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let cells = qfd_cell::Entity::find()
            .filter(qfd_cell::Column::AgencyId.eq(ctx.agency_id))
            .filter(qfd_cell::Column::ClientId.eq(client_id))
            .order_by_asc(qfd_cell::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|c| QfdCell {
                factor_id: c.factor_id,
                touchpoint_id: c.touchpoint_id,
                value: c.value,
            })
            .collect();
        let importances = qfd_importance::Entity::find()
            .filter(qfd_importance::Column::AgencyId.eq(ctx.agency_id))
            .filter(qfd_importance::Column::ClientId.eq(client_id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|i| QfdImportance {
                factor_id: i.factor_id,
                importance: Some(i.importance),
            })
            .collect();
        Ok(QfdMatrix {
            client_id,
            cells,
            importances,
        })
    }

    /// Bulk upsert of cells (values only 0/1/3/9) and importance overrides.
    pub async fn update_qfd_matrix(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: QfdMatrixInput,
    ) -> AppResult<QfdMatrix> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::WriteResearch)?;
        let library = self.client_library(ctx, client_id).await?;
        let factors: std::collections::HashSet<Uuid> = choice_factor::Entity::find()
            .filter(choice_factor::Column::AgencyId.eq(ctx.agency_id))
            .filter(choice_factor::Column::ClientId.eq(client_id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|f| f.id)
            .collect();
        let tps: std::collections::HashSet<Uuid> = touchpoint::Entity::find()
            .filter(touchpoint::Column::AgencyId.eq(ctx.agency_id))
            .filter(touchpoint::Column::LibraryId.eq(library))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| t.id)
            .collect();
        let mut errs = Vec::new();
        if input.cells.len() > MAX_CELLS {
            errs.push(FieldError::new(
                "cells",
                format!("at most {MAX_CELLS} cells per request"),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, c) in input.cells.iter().enumerate().take(MAX_CELLS) {
            if ![0, 1, 3, 9].contains(&c.value) {
                errs.push(FieldError::new(
                    format!("cells[{i}].value"),
                    "must be 0, 1, 3 or 9",
                ));
            }
            if !factors.contains(&c.factor_id) {
                errs.push(FieldError::new(
                    format!("cells[{i}].factor_id"),
                    "no such choice factor for this client",
                ));
            }
            if !tps.contains(&c.touchpoint_id) {
                errs.push(FieldError::new(
                    format!("cells[{i}].touchpoint_id"),
                    "no such touchpoint in the client's library",
                ));
            }
            if !seen.insert((c.factor_id, c.touchpoint_id)) {
                errs.push(FieldError::new(
                    format!("cells[{i}]"),
                    "the same cell appears twice",
                ));
            }
        }
        for (i, imp) in input.importances.iter().enumerate() {
            if !factors.contains(&imp.factor_id) {
                errs.push(FieldError::new(
                    format!("importances[{i}].factor_id"),
                    "no such choice factor for this client",
                ));
            }
            if imp.importance.is_some_and(|x| !(0.0..=1000.0).contains(&x)) {
                errs.push(FieldError::new(
                    format!("importances[{i}].importance"),
                    "must be from 0 to 1000",
                ));
            }
        }
        if !errs.is_empty() {
            errs.truncate(100);
            return Err(AppError::Validation(errs));
        }
        let txn = db::begin_write(&self.db).await?;
        let t = now();
        for c in &input.cells {
            let scope = qfd_cell::Entity::delete_many()
                .filter(qfd_cell::Column::AgencyId.eq(ctx.agency_id))
                .filter(qfd_cell::Column::ClientId.eq(client_id))
                .filter(qfd_cell::Column::FactorId.eq(c.factor_id))
                .filter(qfd_cell::Column::TouchpointId.eq(c.touchpoint_id));
            if c.value == 0 {
                scope.exec(&txn).await?;
            }
        }
        let upserts: Vec<qfd_cell::ActiveModel> = input
            .cells
            .iter()
            .filter(|c| c.value != 0)
            .map(|c| qfd_cell::ActiveModel {
                id: Set(new_id()),
                agency_id: Set(ctx.agency_id),
                client_id: Set(client_id),
                factor_id: Set(c.factor_id),
                touchpoint_id: Set(c.touchpoint_id),
                value: Set(c.value),
                updated_at: Set(t),
            })
            .collect();
        for chunk in upserts.chunks(1000) {
            qfd_cell::Entity::insert_many(chunk.to_vec())
                .on_conflict(
                    OnConflict::columns([
                        qfd_cell::Column::AgencyId,
                        qfd_cell::Column::ClientId,
                        qfd_cell::Column::FactorId,
                        qfd_cell::Column::TouchpointId,
                    ])
                    .update_columns([qfd_cell::Column::Value, qfd_cell::Column::UpdatedAt])
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        for imp in &input.importances {
            qfd_importance::Entity::delete_many()
                .filter(qfd_importance::Column::AgencyId.eq(ctx.agency_id))
                .filter(qfd_importance::Column::ClientId.eq(client_id))
                .filter(qfd_importance::Column::FactorId.eq(imp.factor_id))
                .exec(&txn)
                .await?;
            if let Some(x) = imp.importance {
                qfd_importance::Entity::insert(qfd_importance::ActiveModel {
                    id: Set(new_id()),
                    agency_id: Set(ctx.agency_id),
                    client_id: Set(client_id),
                    factor_id: Set(imp.factor_id),
                    importance: Set(x),
                })
                .exec_without_returning(&txn)
                .await?;
            }
        }
        // The client's customer tracks show its local QFDs.
        let tracks =
            crate::infra::ledger::bump_target(&txn, ctx.agency_id, KIND_TRACKS, client_id).await?;
        let put = json!({"cells": input.cells.len(), "importances": input.importances.len()});
        let a = Audit::new("qfd_matrix", "put", Some(client_id)).with(put);
        audit::commit(txn, ctx, a).await?;
        if tracks {
            self.enqueue_recompute(crate::infra::queue::RecomputeJob {
                agency_id: ctx.agency_id,
                kind: KIND_TRACKS.into(),
                target_id: client_id,
            })
            .await;
        }
        self.qfd_matrix(ctx, client_id).await
    }

    /// The QFD of a client, with importances from `questionnaire_id` (default:
    /// the newest customer panel), optionally from a segment of it.
    pub async fn qfd(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        questionnaire_id: Option<Uuid>,
        segment: Option<SegmentFilter>,
    ) -> AppResult<QfdView> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let library = self.client_library(ctx, client_id).await?;
        let panel_q = match questionnaire_id {
            Some(id) => {
                let q = find_questionnaire(&self.db, ctx.agency_id, id)
                    .await
                    .map_err(|_| AppError::field("questionnaire_id", "no such questionnaire"))?;
                if q.client_id != client_id {
                    return Err(AppError::field(
                        "questionnaire_id",
                        "belongs to another client",
                    ));
                }
                Some(q)
            }
            None => {
                questionnaire::Entity::find()
                    .filter(questionnaire::Column::AgencyId.eq(ctx.agency_id))
                    .filter(questionnaire::Column::ClientId.eq(client_id))
                    .filter(questionnaire::Column::Kind.eq("customer_panel"))
                    .order_by_desc(questionnaire::Column::Id)
                    .one(&self.db)
                    .await?
            }
        };
        // Panel means per factor.
        let mut means: HashMap<Uuid, f64> = HashMap::new();
        let mut data_version = 0;
        if let Some(q) = &panel_q {
            let (ds, version) = self.dataset(ctx.agency_id, q.id).await?;
            data_version = version;
            let rows = match &segment {
                Some(f) => ds.select(&compile_filter(&ds, f, "filter")?),
                None => (0..ds.len() as u32).collect(),
            };
            let state = ds.fold_rows(rows);
            for (qi, pq) in ds.questions.iter().enumerate() {
                if let (Some((fid, _)), QState::Numeric { moments, .. }) =
                    (&pq.factor, &state.questions[qi])
                    && let (Ok(fid), Some(m)) = (Uuid::parse_str(fid), moments.mean())
                {
                    means.insert(fid, m);
                }
            }
        } else if segment.is_some() {
            return Err(AppError::field(
                "filter",
                "the client has no customer panel to segment",
            ));
        }
        let overrides: HashMap<Uuid, f64> = qfd_importance::Entity::find()
            .filter(qfd_importance::Column::AgencyId.eq(ctx.agency_id))
            .filter(qfd_importance::Column::ClientId.eq(client_id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|i| (i.factor_id, i.importance))
            .collect();
        let factors = choice_factor::Entity::find()
            .filter(choice_factor::Column::AgencyId.eq(ctx.agency_id))
            .filter(choice_factor::Column::ClientId.eq(client_id))
            .order_by_asc(choice_factor::Column::Position)
            .order_by_asc(choice_factor::Column::Id)
            .all(&self.db)
            .await?;
        let importances: Vec<FactorImportance> = factors
            .iter()
            .map(|f| {
                let (importance, source) = match (overrides.get(&f.id), means.get(&f.id)) {
                    (Some(o), _) => (Some(*o), "override"),
                    (None, Some(m)) => (Some(*m), "panel"),
                    (None, None) => (None, "none"),
                };
                FactorImportance {
                    factor_id: f.id,
                    name: f.name.clone(),
                    importance,
                    source: source.into(),
                }
            })
            .collect();
        let stages = cjm_stage::Entity::find()
            .filter(cjm_stage::Column::AgencyId.eq(ctx.agency_id))
            .filter(cjm_stage::Column::LibraryId.eq(library))
            .order_by_asc(cjm_stage::Column::Position)
            .all(&self.db)
            .await?;
        let tps = touchpoint::Entity::find()
            .filter(touchpoint::Column::AgencyId.eq(ctx.agency_id))
            .filter(touchpoint::Column::LibraryId.eq(library))
            .order_by_asc(touchpoint::Column::Position)
            .all(&self.db)
            .await?;
        let tp_ids: std::collections::HashSet<Uuid> = tps.iter().map(|t| t.id).collect();
        let used: std::collections::HashSet<Uuid> = importances
            .iter()
            .filter(|i| i.importance.is_some())
            .map(|i| i.factor_id)
            .collect();
        let cells = qfd_cell::Entity::find()
            .filter(qfd_cell::Column::AgencyId.eq(ctx.agency_id))
            .filter(qfd_cell::Column::ClientId.eq(client_id))
            .all(&self.db)
            .await?
            .into_iter()
            // Cells of factors without an importance, or of touchpoints that
            // left the library, do not count.
            .filter(|c| used.contains(&c.factor_id) && tp_ids.contains(&c.touchpoint_id))
            .map(|c| CorrelationCell {
                factor_id: c.factor_id.to_string(),
                touchpoint_id: c.touchpoint_id.to_string(),
                value: i64::from(c.value),
            })
            .collect();
        let input = QfdInput {
            factors: importances
                .iter()
                .filter_map(|i| {
                    Some(Factor {
                        id: i.factor_id.to_string(),
                        name: i.name.clone(),
                        importance: i.importance?,
                    })
                })
                .collect(),
            touchpoints: tps
                .iter()
                .map(|t| Touchpoint {
                    id: t.id.to_string(),
                    stage_id: t.stage_id.to_string(),
                })
                .collect(),
            stages: stages
                .iter()
                .map(|s| Stage {
                    id: s.id.to_string(),
                    name: s.name_en.clone(),
                })
                .collect(),
            cells,
        };
        let result = compute(&input, &ClassThresholds::default())
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("qfd: {e:?}")))?;
        let ratings = self.mystery_means(ctx, client_id).await?;
        let priorities = improvement_priorities(&result, &ratings);
        Ok(QfdView {
            client_id,
            questionnaire_id: panel_q.map(|q| q.id),
            data_version,
            importances,
            result,
            priorities,
        })
    }

    /// All-time mean mystery-shopper rating per touchpoint of a client.
    async fn mystery_means(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
    ) -> AppResult<HashMap<String, f64>> {
        let audits = questionnaire::Entity::find()
            .filter(questionnaire::Column::AgencyId.eq(ctx.agency_id))
            .filter(questionnaire::Column::ClientId.eq(client_id))
            .filter(questionnaire::Column::Kind.eq("mystery_shopper"))
            .all(&self.db)
            .await?;
        let mut sums: HashMap<Uuid, analytics::moments::Moments> = HashMap::new();
        for q in audits {
            let questions = load_questions(&self.db, ctx.agency_id, q.id, q.version).await?;
            let (ds, _) = self.dataset(ctx.agency_id, q.id).await?;
            let state = ds.fold_all();
            for question in questions {
                if question.role != Some(QuestionRole::TouchpointRating) {
                    continue;
                }
                let (Some(tp), Some(qi)) =
                    (question.touchpoint_id, ds.question_index(&question.key))
                else {
                    continue;
                };
                if let QState::Numeric { moments, .. } = &state.questions[qi] {
                    sums.entry(tp).or_default().merge(moments);
                }
            }
        }
        Ok(sums
            .into_iter()
            .filter_map(|(k, m)| Some((k.to_string(), m.mean()?)))
            .collect())
    }
}

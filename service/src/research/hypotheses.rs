//! Segment hypotheses (analytics.md §2): stored per client, evaluated by the
//! worker over the questionnaire datasets whenever the client's data or
//! hypotheses change, with Benjamini–Hochberg across the client's active
//! hypotheses.
use analytics::hypotheses::{
    Direction, Hypothesis, HypothesisResult, HypothesisSettings, MetricData, evaluate_hypotheses,
};
use analytics::panel::{Dataset, Kind, QState};
use chrono::{DateTime, Utc};
use entity::{hypothesis, snapshot};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::segment_filter::SegmentFilter;
use crate::infra::audit::{self, Audit};
use crate::infra::db::begin_write;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::queue::RecomputeJob;
use crate::infra::webhooks;
use crate::platform::clients::find_client;
use crate::research::panel::compile_filter;
use crate::research::questionnaires::find_questionnaire;
use crate::{Perm, RequestCtx, Services, new_id, now};

pub const KIND_HYPOTHESES: &str = "client_hypotheses";

/// What a hypothesis measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Metric {
    /// Share of respondents whose answer to `question` is / contains `value`.
    Share { question: String, value: String },
    /// Mean of a rating or number question.
    Mean { question: String },
    /// Net Promoter Score of the questionnaire's NPS question.
    Nps,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HypothesisInput {
    #[schema(schema_with = crate::infra::docs::text_300)]
    pub name: String,
    pub questionnaire_id: Uuid,
    /// The segment S.
    pub segment: SegmentFilter,
    pub metric: Metric,
    /// `greater`, `less` or `different`.
    #[schema(schema_with = crate::infra::docs::hypothesis_direction)]
    pub direction: String,
    /// `rest` (responses not in S, default) or `all`.
    #[serde(default)]
    pub comparison: Option<String>,
    /// Smallest difference worth detecting (fraction for shares, NPS points,
    /// question units for means); used for `required_n`.
    #[serde(default)]
    pub min_effect: Option<f64>,
    #[serde(default)]
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct HypothesisView {
    pub id: Uuid,
    pub client_id: Uuid,
    pub questionnaire_id: Uuid,
    pub name: String,
    #[graphql(skip)]
    pub segment: SegmentFilter,
    #[graphql(skip)]
    pub metric: Metric,
    pub direction: String,
    pub comparison: String,
    pub min_effect: Option<f64>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
crate::has_id!(HypothesisView);

impl From<hypothesis::Model> for HypothesisView {
    fn from(m: hypothesis::Model) -> Self {
        Self {
            id: m.id,
            client_id: m.client_id,
            questionnaire_id: m.questionnaire_id,
            name: m.name,
            segment: serde_json::from_value(m.segment)
                .unwrap_or(SegmentFilter { conditions: vec![] }),
            metric: serde_json::from_value(m.metric).unwrap_or(Metric::Nps),
            direction: m.direction,
            comparison: m.comparison,
            min_effect: m.min_effect,
            active: m.active,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// One evaluated hypothesis.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct HypothesisOutcome {
    pub hypothesis_id: Uuid,
    pub name: String,
    /// Null when the hypothesis cannot be evaluated (e.g. its questionnaire
    /// changed so the segment no longer fits); see `problem`.
    pub result: Option<HypothesisResult>,
    /// How many more respondents of the segment to survey:
    /// max(required_n, the client's minimum segment size) − n1.
    pub survey_more: Option<u64>,
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct HypothesesResults {
    pub client_id: Uuid,
    /// The version of the client's hypotheses-and-data the results reflect.
    pub data_version: i64,
    pub computed_at: Option<DateTime<Utc>>,
    /// `fresh`, `recomputing` or `pending`.
    pub status: String,
    pub items: Vec<HypothesisOutcome>,
}

fn direction_of(s: &str) -> Option<Direction> {
    match s {
        "greater" => Some(Direction::Greater),
        "less" => Some(Direction::Less),
        "different" => Some(Direction::Different),
        _ => None,
    }
}

/// Group tallies of one hypothesis over a dataset.
fn metric_data(
    ds: &Dataset,
    segment: &[u32],
    rest: &[u32],
    metric: &Metric,
) -> Result<MetricData, String> {
    let g1 = ds.fold_rows(segment.iter().copied());
    let g2 = ds.fold_rows(rest.iter().copied());
    match metric {
        Metric::Share { question, value } => {
            let qi = ds
                .question_index(question)
                .ok_or("the metric's question no longer exists")?;
            let options = match &ds.questions[qi].kind {
                Kind::Single { options } | Kind::Multi { options } => options,
                _ => return Err("the metric's question is no longer a choice question".into()),
            };
            let oi = options
                .iter()
                .position(|o| o == value)
                .ok_or("the metric's option no longer exists")?;
            let tally = |s: &analytics::panel::PanelState| match &s.questions[qi] {
                QState::Choice { answered, counts } => (counts[oi], *answered),
                _ => (0, 0),
            };
            let ((x1, n1), (x2, n2)) = (tally(&g1), tally(&g2));
            Ok(MetricData::Share { x1, n1, x2, n2 })
        }
        Metric::Mean { question } => {
            let qi = ds
                .question_index(question)
                .ok_or("the metric's question no longer exists")?;
            match (&g1.questions[qi], &g2.questions[qi]) {
                (QState::Numeric { moments: a, .. }, QState::Numeric { moments: b, .. }) => {
                    Ok(MetricData::Mean {
                        group1: *a,
                        group2: *b,
                    })
                }
                _ => Err("the metric's question is no longer numeric".into()),
            }
        }
        Metric::Nps => Ok(MetricData::Nps {
            group1: g1.nps,
            group2: g2.nps,
        }),
    }
}

fn check_metric(ds: &Dataset, metric: &Metric) -> Result<(), FieldError> {
    let bad = |m: &str| FieldError::new("metric", m.to_owned());
    match metric {
        Metric::Share { question, value } => {
            let qi = ds
                .question_index(question)
                .ok_or_else(|| bad("no such question"))?;
            match &ds.questions[qi].kind {
                Kind::Single { options } | Kind::Multi { options } if options.contains(value) => {
                    Ok(())
                }
                Kind::Single { .. } | Kind::Multi { .. } => Err(FieldError::new(
                    "metric.value",
                    "is not an option of the question",
                )),
                _ => Err(FieldError::new(
                    "metric.question",
                    "share needs a choice question",
                )),
            }
        }
        Metric::Mean { question } => {
            let qi = ds
                .question_index(question)
                .ok_or_else(|| FieldError::new("metric.question", "no such question"))?;
            match ds.questions[qi].kind {
                Kind::Rating | Kind::Nps | Kind::Number => Ok(()),
                _ => Err(FieldError::new(
                    "metric.question",
                    "mean needs a rating or number question",
                )),
            }
        }
        Metric::Nps => {
            if ds
                .questions
                .iter()
                .any(|q| q.kind == Kind::Nps && q.role == analytics::panel::Role::Nps)
            {
                Ok(())
            } else {
                Err(FieldError::new(
                    "metric",
                    "the questionnaire has no NPS question",
                ))
            }
        }
    }
}

impl Services {
    async fn validated(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: &HypothesisInput,
    ) -> AppResult<String> {
        let mut errs = Vec::new();
        if !crate::domain::text::fits(&input.name, 300) {
            errs.push(FieldError::new("name", "must be 1 to 300 characters"));
        }
        if direction_of(&input.direction).is_none() {
            errs.push(FieldError::new(
                "direction",
                "must be greater, less or different",
            ));
        }
        let comparison = input.comparison.clone().unwrap_or_else(|| "rest".into());
        if comparison != "rest" && comparison != "all" {
            errs.push(FieldError::new("comparison", "must be rest or all"));
        }
        if input.min_effect.is_some_and(|e| !e.is_finite() || e <= 0.0) {
            errs.push(FieldError::new("min_effect", "must be a positive number"));
        }
        if let Err(e) = input.segment.validate("segment") {
            errs.extend(e);
        }
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let q = find_questionnaire(&self.db, ctx.agency_id, input.questionnaire_id)
            .await
            .map_err(|e| match e {
                AppError::NotFound => AppError::field("questionnaire_id", "no such questionnaire"),
                other => other,
            })?;
        if q.client_id != client_id {
            return Err(AppError::field(
                "questionnaire_id",
                "belongs to another client",
            ));
        }
        let (ds, _) = self.dataset(ctx.agency_id, q.id).await?;
        compile_filter(&ds, &input.segment, "segment")?;
        check_metric(&ds, &input.metric).map_err(|e| AppError::Validation(vec![e]))?;
        Ok(comparison)
    }

    async fn after_change(&self, agency_id: Uuid, client_id: Uuid) -> AppResult<()> {
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let wake =
            crate::infra::ledger::bump_target(&txn, agency_id, KIND_HYPOTHESES, client_id).await?;
        txn.commit().await?;
        if wake {
            self.enqueue_recompute(RecomputeJob {
                agency_id,
                kind: KIND_HYPOTHESES.into(),
                target_id: client_id,
            })
            .await;
        }
        Ok(())
    }

    pub async fn create_hypothesis(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: HypothesisInput,
    ) -> AppResult<HypothesisView> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::WriteResearch)?;
        let comparison = self.validated(ctx, client_id, &input).await?;
        let t = now();
        let m = hypothesis::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(ctx.agency_id),
            client_id: Set(client_id),
            questionnaire_id: Set(input.questionnaire_id),
            name: Set(input.name.trim().to_owned()),
            segment: Set(serde_json::to_value(&input.segment).map_err(anyhow::Error::from)?),
            metric: Set(serde_json::to_value(&input.metric).map_err(anyhow::Error::from)?),
            direction: Set(input.direction),
            comparison: Set(comparison),
            min_effect: Set(input.min_effect),
            active: Set(input.active.unwrap_or(true)),
            created_at: Set(t),
            updated_at: Set(t),
        };
        let txn = begin_write(&self.db).await?;
        let m = m.insert(&txn).await?;
        audit::commit(txn, ctx, Audit::create("hypothesis", m.id, &m)).await?;
        self.after_change(ctx.agency_id, client_id).await?;
        Ok(m.into())
    }

    async fn find_hypothesis(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<hypothesis::Model> {
        hypothesis::Entity::find_by_id(id)
            .filter(hypothesis::Column::AgencyId.eq(ctx.agency_id))
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)
    }

    pub async fn get_hypothesis(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<HypothesisView> {
        let h = self.find_hypothesis(ctx, id).await?;
        ctx.require(Perm::Read)?;
        Ok(h.into())
    }

    pub async fn list_hypotheses(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
    ) -> AppResult<Vec<HypothesisView>> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        Ok(hypothesis::Entity::find()
            .filter(hypothesis::Column::AgencyId.eq(ctx.agency_id))
            .filter(hypothesis::Column::ClientId.eq(client_id))
            .order_by_asc(hypothesis::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(HypothesisView::from)
            .collect())
    }

    pub async fn update_hypothesis(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        input: HypothesisInput,
    ) -> AppResult<HypothesisView> {
        let existing = self.find_hypothesis(ctx, id).await?;
        ctx.require(Perm::WriteResearch)?;
        let client_id = existing.client_id;
        let comparison = self.validated(ctx, client_id, &input).await?;
        let before = existing.clone();
        let mut a: hypothesis::ActiveModel = existing.into();
        a.questionnaire_id = Set(input.questionnaire_id);
        a.name = Set(input.name.trim().to_owned());
        a.segment = Set(serde_json::to_value(&input.segment).map_err(anyhow::Error::from)?);
        a.metric = Set(serde_json::to_value(&input.metric).map_err(anyhow::Error::from)?);
        a.direction = Set(input.direction);
        a.comparison = Set(comparison);
        a.min_effect = Set(input.min_effect);
        a.active = Set(input.active.unwrap_or(true));
        a.updated_at = Set(now());
        let m = audit::update_one(&self.db, ctx, "hypothesis", id, &before, a, |m| m).await?;
        self.after_change(ctx.agency_id, client_id).await?;
        Ok(m.into())
    }

    pub async fn delete_hypothesis(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<()> {
        let h = self.find_hypothesis(ctx, id).await?;
        ctx.require(Perm::WriteResearch)?;
        let txn = begin_write(&self.db).await?;
        hypothesis::Entity::delete_many()
            .filter(hypothesis::Column::AgencyId.eq(ctx.agency_id))
            .filter(hypothesis::Column::Id.eq(h.id))
            .exec(&txn)
            .await?;
        audit::commit(txn, ctx, Audit::delete("hypothesis", h.id, &h)).await?;
        self.after_change(ctx.agency_id, h.client_id).await
    }

    /// Worker: evaluates every active hypothesis of a client and stores the
    /// results; returns the version they reflect.
    pub async fn recompute_client_hypotheses(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
    ) -> AppResult<i64> {
        let version =
            crate::infra::ledger::wanted_version(&self.db, agency_id, KIND_HYPOTHESES, client_id)
                .await?;
        let client = crate::platform::clients::find_client(&self.db, agency_id, client_id).await?;
        let hs: Vec<hypothesis::Model> = hypothesis::Entity::find()
            .filter(hypothesis::Column::AgencyId.eq(agency_id))
            .filter(hypothesis::Column::ClientId.eq(client_id))
            .filter(hypothesis::Column::Active.eq(true))
            .order_by_asc(hypothesis::Column::Id)
            .all(&self.db)
            .await?;
        let mut inputs = Vec::new();
        let mut outcomes = Vec::new();
        for h in hs {
            let view = HypothesisView::from(h);
            let (ds, _) = self.dataset(agency_id, view.questionnaire_id).await?;
            let prepared = (|| -> Result<Hypothesis, String> {
                let filter =
                    compile_filter(&ds, &view.segment, "segment").map_err(|e| e.public_detail())?;
                let seg = ds.select(&filter);
                let others: Vec<u32> = if view.comparison == "all" {
                    (0..ds.len() as u32).collect()
                } else {
                    let mut in_seg = vec![false; ds.len()];
                    for &r in &seg {
                        in_seg[r as usize] = true;
                    }
                    (0..ds.len() as u32)
                        .filter(|&r| !in_seg[r as usize])
                        .collect()
                };
                Ok(Hypothesis {
                    data: metric_data(&ds, &seg, &others, &view.metric)?,
                    direction: direction_of(&view.direction).ok_or("bad direction")?,
                    min_effect: view.min_effect,
                })
            })();
            match prepared {
                Ok(h) => {
                    inputs.push(h);
                    outcomes.push((view, None));
                }
                Err(problem) => outcomes.push((view, Some(problem))),
            }
        }
        let settings = HypothesisSettings {
            min_n1: std::cmp::max(client.min_segment_n, 1) as u64,
        };
        let mut results = evaluate_hypotheses(&inputs, &settings).into_iter();
        let items: Vec<HypothesisOutcome> = outcomes
            .into_iter()
            .map(|(view, problem)| {
                let result = if problem.is_none() {
                    results.next()
                } else {
                    None
                };
                HypothesisOutcome {
                    hypothesis_id: view.id,
                    name: view.name,
                    // Both the sample-size rule and the power rule must hold.
                    survey_more: result.as_ref().and_then(|r| {
                        r.required_n
                            .map(|need| std::cmp::max(need, settings.min_n1).saturating_sub(r.n1))
                    }),
                    result,
                    problem,
                }
            })
            .collect();
        let payload = serde_json::to_value(&items).map_err(anyhow::Error::from)?;
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let before = snapshot::Entity::find()
            .filter(snapshot::Column::AgencyId.eq(agency_id))
            .filter(snapshot::Column::Kind.eq(KIND_HYPOTHESES))
            .filter(snapshot::Column::TargetId.eq(client_id))
            .one(&txn)
            .await?
            .map(|s| verdicts(&s.payload))
            .unwrap_or_default();
        let mut hooks = 0;
        for (id, (name, verdict)) in verdicts(&payload) {
            let old = before.get(&id).map(|(_, v)| v.clone()).unwrap_or_default();
            if old != verdict {
                let data = serde_json::json!({
                    "client_id": client_id, "hypothesis_id": id, "name": name,
                    "old_verdict": old, "new_verdict": verdict, "data_version": version,
                });
                hooks += webhooks::emit(&txn, agency_id, webhooks::VERDICT_CHANGED, data).await?;
            }
        }
        crate::infra::ledger::store_snapshot(
            &txn,
            agency_id,
            KIND_HYPOTHESES,
            client_id,
            version,
            payload,
        )
        .await?;
        txn.commit().await?;
        if hooks > 0 {
            self.wake_webhooks(agency_id).await;
        }
        Ok(version)
    }

    pub async fn hypotheses_results(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
    ) -> AppResult<HypothesesResults> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let wanted = crate::infra::ledger::wanted_version(
            &self.db,
            ctx.agency_id,
            KIND_HYPOTHESES,
            client_id,
        )
        .await?;
        let snap = snapshot::Entity::find()
            .filter(snapshot::Column::AgencyId.eq(ctx.agency_id))
            .filter(snapshot::Column::Kind.eq(KIND_HYPOTHESES))
            .filter(snapshot::Column::TargetId.eq(client_id))
            .one(&self.db)
            .await?;
        Ok(match snap {
            Some(s) => HypothesesResults {
                client_id,
                data_version: s.data_version,
                computed_at: Some(s.computed_at),
                status: if s.data_version >= wanted {
                    "fresh"
                } else {
                    "recomputing"
                }
                .into(),
                items: serde_json::from_value(s.payload).unwrap_or_default(),
            },
            None => HypothesesResults {
                client_id,
                data_version: 0,
                computed_at: None,
                status: if wanted == 0 { "fresh" } else { "pending" }.into(),
                items: vec![],
            },
        })
    }
}

/// Each hypothesis's name and verdict (null when it could not be
/// evaluated) in a stored results payload.
fn verdicts(
    payload: &serde_json::Value,
) -> std::collections::BTreeMap<String, (String, serde_json::Value)> {
    payload
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| {
                    let id = i["hypothesis_id"].as_str()?.to_owned();
                    let name = i["name"].as_str().unwrap_or_default().to_owned();
                    Some((id, (name, i["result"]["verdict"].clone())))
                })
                .collect()
        })
        .unwrap_or_default()
}

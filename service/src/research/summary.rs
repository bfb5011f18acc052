//! The questionnaire summary the worker keeps fresh: n, NPS and the mean of
//! every choice factor, stamped with the data version it reflects.
use analytics::moments::Moments;
use analytics::nps::NpsTally;
use chrono::{DateTime, Utc};
use entity::{questionnaire, snapshot};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::questions::{QuestionRole, QuestionType};
use crate::infra::error::AppResult;
use crate::infra::ledger::KIND_QUESTIONNAIRE;

pub use crate::research::panel::KIND_PANEL;
use crate::research::questionnaires::find_questionnaire;
use crate::{Perm, RequestCtx, Services};

#[derive(
    Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema, async_graphql::SimpleObject,
)]
pub struct NpsView {
    pub n: u64,
    pub promoters: u64,
    pub passives: u64,
    pub detractors: u64,
    pub nps: Option<f64>,
    pub ci95_low: Option<f64>,
    pub ci95_high: Option<f64>,
}

#[derive(
    Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema, async_graphql::SimpleObject,
)]
pub struct FactorMean {
    pub question_key: String,
    pub choice_factor_id: Option<Uuid>,
    pub n: u64,
    pub mean: Option<f64>,
}

#[derive(
    Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema, async_graphql::SimpleObject,
)]
pub struct SummaryBody {
    /// Responses counted.
    pub n: u64,
    pub nps: Option<NpsView>,
    pub factors: Vec<FactorMean>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct SummaryView {
    pub questionnaire_id: Uuid,
    /// The data version the figures reflect.
    pub data_version: i64,
    /// The questionnaire's current data version.
    pub current_data_version: i64,
    /// `fresh`, `recomputing` (newer data is being folded in) or `pending`
    /// (nothing computed yet).
    pub status: String,
    pub computed_at: Option<DateTime<Utc>>,
    pub summary: Option<SummaryBody>,
}

/// Pure: the summary of a set of canonical answer objects.
pub fn summarise<'a>(
    questions: &[crate::domain::questions::Question],
    answers: impl Iterator<Item = &'a serde_json::Value>,
) -> SummaryBody {
    let nps_key = questions
        .iter()
        .find(|q| q.role == Some(QuestionRole::Nps) && q.qtype == QuestionType::Nps0To10)
        .map(|q| q.key.as_str());
    let factor_qs: Vec<_> = questions
        .iter()
        .filter(|q| q.role == Some(QuestionRole::ChoiceFactorImportance))
        .collect();
    let mut n = 0u64;
    let mut tally = NpsTally::default();
    let mut moments = vec![Moments::default(); factor_qs.len()];
    for a in answers {
        n += 1;
        if let Some(k) = nps_key
            && let Some(s) = a.get(k).and_then(|v| v.as_i64())
        {
            tally.add(s);
        }
        for (i, q) in factor_qs.iter().enumerate() {
            if let Some(x) = a.get(&q.key).and_then(|v| v.as_f64()) {
                moments[i].add(x);
            }
        }
    }
    SummaryBody {
        n,
        nps: nps_key.map(|_| {
            let ci = tally.ci95();
            NpsView {
                n: tally.n(),
                promoters: tally.promoters,
                passives: tally.passives,
                detractors: tally.detractors,
                nps: tally.nps(),
                ci95_low: ci.map(|c| c.0),
                ci95_high: ci.map(|c| c.1),
            }
        }),
        factors: factor_qs
            .iter()
            .zip(moments)
            .map(|(q, m)| FactorMean {
                question_key: q.key.clone(),
                choice_factor_id: q.choice_factor_id,
                n: m.n,
                mean: m.mean(),
            })
            .collect(),
    }
}

/// The summary read off the aggregates of all rows (the same figures as
/// [`summarise`] over the same answers: a questionnaire has at most one NPS
/// question, and factor importances are numeric).
pub fn summary_from_state(
    questions: &[analytics::panel::PanelQuestion],
    state: &analytics::panel::PanelState,
) -> SummaryBody {
    use analytics::panel::{Kind, QState, Role};
    let has_nps = questions
        .iter()
        .any(|q| q.role == Role::Nps && q.kind == Kind::Nps);
    let nps = has_nps.then(|| {
        let tally = &state.nps;
        let ci = tally.ci95();
        NpsView {
            n: tally.n(),
            promoters: tally.promoters,
            passives: tally.passives,
            detractors: tally.detractors,
            nps: tally.nps(),
            ci95_low: ci.map(|c| c.0),
            ci95_high: ci.map(|c| c.1),
        }
    });
    let factors = questions
        .iter()
        .zip(&state.questions)
        .filter(|(q, _)| q.role == Role::ChoiceFactorImportance)
        .map(|(q, st)| {
            let m = match st {
                QState::Numeric { moments, .. } => *moments,
                _ => Moments::default(),
            };
            FactorMean {
                question_key: q.key.clone(),
                choice_factor_id: q
                    .factor
                    .as_ref()
                    .and_then(|(id, _)| Uuid::parse_str(id).ok()),
                n: m.n,
                mean: m.mean(),
            }
        })
        .collect();
    SummaryBody {
        n: state.n,
        nps,
        factors,
    }
}

impl Services {
    /// Brings the questionnaire's aggregates up to its data version (folding
    /// in only the rows stored since this process last did), then stores the
    /// summary and the unfiltered panel; returns the version they reflect.
    pub async fn recompute_questionnaire_summary(
        &self,
        agency_id: Uuid,
        id: Uuid,
    ) -> AppResult<i64> {
        let (ds, state, version) = self.panel_data(agency_id, id).await?;
        let body = summary_from_state(&ds.questions, &state);
        let panel = state.finish(&ds, ds.len() as u64);
        let summary = serde_json::to_value(&body).map_err(anyhow::Error::from)?;
        let panel = serde_json::to_value(&panel).map_err(anyhow::Error::from)?;
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let stored = snapshot::Entity::find()
            .filter(snapshot::Column::AgencyId.eq(agency_id))
            .filter(snapshot::Column::Kind.eq(KIND_QUESTIONNAIRE))
            .filter(snapshot::Column::TargetId.eq(id))
            .one(&txn)
            .await?
            .map_or(-1, |s| s.data_version);
        // Told once per version, whatever retries store it again.
        let hooks = if stored < version {
            let data = serde_json::json!({
                "questionnaire_id": id, "data_version": version, "respondents": body.n,
                "nps": body.nps.as_ref().map(|n| n.nps),
            });
            crate::infra::webhooks::emit(
                &txn,
                agency_id,
                crate::infra::webhooks::SUMMARY_UPDATED,
                data,
            )
            .await?
        } else {
            0
        };
        crate::infra::ledger::store_snapshots(
            &txn,
            agency_id,
            id,
            version,
            vec![(KIND_QUESTIONNAIRE, summary), (KIND_PANEL, panel)],
        )
        .await?;
        txn.commit().await?;
        if hooks > 0 {
            self.wake_webhooks(agency_id).await;
        }
        Ok(version)
    }

    pub async fn questionnaire_summary(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
    ) -> AppResult<SummaryView> {
        ctx.require(Perm::Read)?;
        let q: questionnaire::Model = find_questionnaire(&self.db, ctx.agency_id, id).await?;
        let snap = snapshot::Entity::find()
            .filter(snapshot::Column::AgencyId.eq(ctx.agency_id))
            .filter(snapshot::Column::Kind.eq(KIND_QUESTIONNAIRE))
            .filter(snapshot::Column::TargetId.eq(id))
            .one(&self.db)
            .await?;
        Ok(match snap {
            Some(s) => SummaryView {
                questionnaire_id: id,
                data_version: s.data_version,
                current_data_version: q.data_version,
                status: if s.data_version >= q.data_version {
                    "fresh"
                } else {
                    "recomputing"
                }
                .into(),
                computed_at: Some(s.computed_at),
                summary: serde_json::from_value(s.payload).ok(),
            },
            None => SummaryView {
                questionnaire_id: id,
                data_version: 0,
                current_data_version: q.data_version,
                status: if q.data_version == 0 {
                    "fresh"
                } else {
                    "pending"
                }
                .into(),
                computed_at: None,
                summary: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::questions::{Question, QuestionRole, QuestionType};
    use proptest::prelude::*;

    fn question(key: &str, qtype: QuestionType, role: Option<QuestionRole>) -> Question {
        Question {
            key: key.into(),
            label: key.into(),
            qtype,
            role,
            required: false,
            options: vec![],
            min: None,
            max: None,
            choice_factor_id: (role == Some(QuestionRole::ChoiceFactorImportance))
                .then(Uuid::now_v7),
            touchpoint_id: None,
            stage_id: None,
        }
    }

    proptest! {
        /// The worker's summary, read off the folded aggregates, equals the
        /// one computed from the stored answers directly.
        #[test]
        fn summary_from_folded_state_equals_direct_summary(
            rows in proptest::collection::vec(
                (proptest::option::of(0i64..=10), proptest::option::of(1i64..=5), proptest::option::of(1i64..=5)),
                0..200,
            )
        ) {
            let questions = vec![
                question("nps", QuestionType::Nps0To10, Some(QuestionRole::Nps)),
                question("price", QuestionType::Rating1To5, Some(QuestionRole::ChoiceFactorImportance)),
                question("speed", QuestionType::Rating1To5, Some(QuestionRole::ChoiceFactorImportance)),
            ];
            let answers: Vec<serde_json::Value> = rows
                .iter()
                .map(|(n, p, s)| {
                    let mut a = serde_json::Map::new();
                    for (k, v) in [("nps", n), ("price", p), ("speed", s)] {
                        if let Some(v) = v {
                            a.insert(k.into(), (*v).into());
                        }
                    }
                    serde_json::Value::Object(a)
                })
                .collect();
            let pq = crate::research::panel::panel_questions(&questions, &Default::default());
            let mut ds = analytics::panel::Dataset::new(pq.clone());
            let mut state = analytics::panel::PanelState::new(&pq);
            for a in &answers {
                ds.push(0, crate::research::panel::cells(&pq, a));
                state.add_row(&ds, ds.len() - 1);
            }
            prop_assert_eq!(summary_from_state(&pq, &state), summarise(&questions, answers.iter()));
        }
    }
}

//! The questionnaire summary the worker keeps fresh: n, NPS and the mean of
//! every choice factor, stamped with the data version it reflects.
use analytics::moments::Moments;
use analytics::nps::NpsTally;
use chrono::{DateTime, Utc};
use entity::{questionnaire, response, snapshot};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set, TransactionTrait};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::questions::{QuestionRole, QuestionType};
use crate::error::{AppError, AppResult};
use crate::jobs::KIND_QUESTIONNAIRE;
use crate::questionnaires::{find_questionnaire, load_questions};
use crate::{Perm, RequestCtx, Services, db, new_id};

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

impl Services {
    /// Reads one consistent snapshot, computes, stores; returns the version.
    pub async fn recompute_questionnaire_summary(
        &self,
        agency_id: Uuid,
        id: Uuid,
    ) -> AppResult<i64> {
        let txn = db::begin_snapshot(&self.db).await?;
        let q = find_questionnaire(&txn, agency_id, id).await?;
        let questions = load_questions(&txn, agency_id, id, q.version).await?;
        let answers: Vec<serde_json::Value> = response::Entity::find()
            .filter(response::Column::AgencyId.eq(agency_id))
            .filter(response::Column::QuestionnaireId.eq(id))
            .select_only()
            .column(response::Column::Answers)
            .into_tuple()
            .all(&txn)
            .await?;
        txn.commit().await?;
        let version = q.data_version;
        let body = tokio::task::spawn_blocking(move || summarise(&questions, answers.iter()))
            .await
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("summary: {e}")))?;
        let payload = serde_json::to_value(&body).map_err(anyhow::Error::from)?;
        let write = self.db.begin().await?;
        snapshot::Entity::insert(snapshot::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(agency_id),
            kind: Set(KIND_QUESTIONNAIRE.into()),
            target_id: Set(id),
            data_version: Set(version),
            computed_at: Set(crate::now()),
            payload: Set(payload),
        })
        .on_conflict(
            OnConflict::columns([
                snapshot::Column::AgencyId,
                snapshot::Column::Kind,
                snapshot::Column::TargetId,
            ])
            .update_columns([
                snapshot::Column::DataVersion,
                snapshot::Column::ComputedAt,
                snapshot::Column::Payload,
            ])
            .to_owned(),
        )
        .exec_without_returning(&write)
        .await?;
        write.commit().await?;
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

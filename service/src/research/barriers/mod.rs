//! Sales barriers of a client ("Метчинг отказов и барьеров продаж"):
//! which barriers explain refusals, and at which CJM stage they bite.
//!
//! Sources are the client's questionnaires with `barrier` questions:
//! `non_buyer` ones (non-buyers) and `customer_panel` / `segment_survey`
//! ones (buyers), archived ones included. A barrier is an option of a
//! choice barrier question, identified by the question's key and the
//! option's value across questionnaires, so a buyer questionnaire asking
//! the same question gives the comparison; text barrier questions are
//! listed as §1 lists open answers, per group. The figures
//! (`analytics::barriers`): count, share of the question's answers and a
//! 95% Wilson interval per group, the non-buyers' lift over buyers (§2's
//! two-proportion test, one-sided, Benjamini–Hochberg across the
//! analysis), and the ranking by refusals explained:
//! `max(0, count_nb − n_nb · p_buyers)`, or `count_nb` without a buyer
//! comparison; ties by the option's value, then the question's key.
//!
//! A barrier's stage is the one its question names, taken from the first
//! questionnaire naming one (non-buyer questionnaires first); with a stage
//! the analysis keeps the barriers of that stage only. With a segment, the
//! segment's filter (§1 rules) selects the responses of every source; a
//! questionnaire the filter does not fit (a question or an option it names
//! is not there) contributes no responses, as a blank matches no condition.
//!
//! Computed on request from the per-process columnar cache of the
//! questionnaires (`research::panel`), which is brought to each
//! questionnaire's current data version first, so the figures are always
//! those of the data version reported (the sum of the sources' versions).
//! Without a segment they are read off the cached aggregates of all rows
//! (no pass over the data); a segment selects and folds only the barrier
//! columns.
use analytics::barriers::{GroupFigures, Lift, OpenBarriers, analyse};
use analytics::panel::PanelState;
use chrono::{DateTime, Utc};
use entity::questionnaire;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::questions::QuestionRole;
use crate::domain::segment_filter::SegmentFilter;
use crate::infra::error::{AppError, AppResult};
use crate::platform::clients::find_client;
use crate::platform::libraries::client_stage;
use crate::platform::touchpoint_refs::stage_refs_by_id;
use crate::research::panel::compile_filter;
use crate::research::questionnaires::load_questions;
use crate::research::segments::client_segment_filter;
use crate::{Perm, RequestCtx, Services};

mod tally;
use tally::{BarrierQuestion, Gathered, Group};

/// A CJM stage a barrier is linked to.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct BarrierStage {
    pub id: Uuid,
    pub key: String,
    pub name_en: String,
    pub name_ru: String,
}

/// One barrier: an option of a choice barrier question.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct BarrierView {
    /// 1 = explains the most refusals.
    #[schema(minimum = 1)]
    pub rank: u32,
    /// The barrier question's key.
    pub question: String,
    /// The question's label.
    pub label: String,
    /// The option's value: the barrier.
    pub option: String,
    pub stage: Option<BarrierStage>,
    /// Among non-buyers (`non_buyer` questionnaires); null when none of them
    /// asks the question.
    pub non_buyers: Option<GroupFigures>,
    /// Among buyers (`customer_panel` and `segment_survey` questionnaires);
    /// null when none of them asks the question.
    pub buyers: Option<GroupFigures>,
    /// Non-buyers against buyers; null unless both groups answered.
    pub lift: Option<Lift>,
    /// Refusals the barrier would explain: max(0, count_nb − n_nb · share
    /// among buyers), or the non-buyer count without a buyer comparison.
    #[schema(minimum = 0)]
    pub explained_refusals: f64,
}

/// The open answers of one text barrier question in one group.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct OpenBarrierView {
    pub question: String,
    pub label: String,
    pub stage: Option<BarrierStage>,
    /// `non_buyers` or `buyers`.
    #[schema(schema_with = group_schema)]
    pub group: String,
    pub answers: OpenBarriers,
}

fn group_schema() -> utoipa::openapi::Object {
    crate::infra::docs::one_of(&["non_buyers", "buyers"])
}

/// A questionnaire the analysis read.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct BarrierSource {
    pub questionnaire_id: Uuid,
    pub title: String,
    /// `non_buyer`, `customer_panel` or `segment_survey`.
    pub kind: String,
    /// `non_buyers` or `buyers`.
    #[schema(schema_with = group_schema)]
    pub group: String,
    /// The data version its figures reflect.
    pub data_version: i64,
    /// Its responses, all of them.
    pub responses: u64,
    /// Its responses in the segment (all without one).
    pub matched: u64,
}

/// The barrier analysis of a client.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct BarrierAnalysis {
    pub client_id: Uuid,
    pub segment_id: Option<Uuid>,
    pub stage_id: Option<Uuid>,
    /// The sum of the sources' data versions: the figures are those of
    /// these versions, and it grows with every change of their responses.
    pub data_version: i64,
    pub computed_at: DateTime<Utc>,
    /// Non-buyer responses analysed (in the segment, if one is given).
    pub n_non_buyers: u64,
    /// Buyer responses analysed (in the segment, if one is given).
    pub n_buyers: u64,
    pub sources: Vec<BarrierSource>,
    /// Ranked by refusals explained, descending; ties by option, then question key.
    pub barriers: Vec<BarrierView>,
    /// Text barrier questions, by question key then group (non-buyers first).
    pub open_answers: Vec<OpenBarrierView>,
}

/// The barrier questions of a question list: choice and text questions
/// with role `barrier`.
fn barrier_questions(questions: &[crate::domain::questions::Question]) -> Vec<BarrierQuestion> {
    questions
        .iter()
        .filter(|q| q.role == Some(QuestionRole::Barrier))
        .map(|q| BarrierQuestion {
            key: q.key.clone(),
            label: q.label.clone(),
            stage_id: q.stage_id,
        })
        .collect()
}

impl Services {
    /// `GET /clients/{id}/barriers`: the analysis of all the client's
    /// barriers, or of a saved segment's responses and/or one stage's
    /// barriers. The segment must be the client's and the stage one of the
    /// client's touchpoint library (422 naming `segment_id` / `stage_id`).
    pub async fn client_barriers(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        segment_id: Option<Uuid>,
        stage_id: Option<Uuid>,
    ) -> AppResult<BarrierAnalysis> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let filter = match segment_id {
            Some(id) => Some(client_segment_filter(&self.db, ctx.agency_id, client_id, id).await?),
            None => None,
        };
        let mut out = self
            .barriers_for(ctx.agency_id, client_id, filter.as_ref(), stage_id)
            .await?;
        out.segment_id = segment_id;
        Ok(out)
    }

    /// The barriers of one client, optionally of one segment (its filter)
    /// and one CJM stage: what a Customer Track shows for its segment and
    /// step. Tenant-scoped by `agency_id`; no permission check (callers
    /// check theirs). 404 for a client of another agency; 422 on
    /// `stage_id` for a stage outside the client's touchpoint library.
    pub async fn barriers_for(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
        filter: Option<&SegmentFilter>,
        stage_id: Option<Uuid>,
    ) -> AppResult<BarrierAnalysis> {
        find_client(&self.db, agency_id, client_id).await?;
        if let Some(id) = stage_id
            && client_stage(&self.db, agency_id, client_id, id)
                .await?
                .is_none()
        {
            return Err(AppError::field(
                "stage_id",
                "no such CJM stage in the client's touchpoint library",
            ));
        }
        if let Some(f) = filter {
            f.validate("segment").map_err(AppError::Validation)?;
        }
        let mut sources_q: Vec<(Group, questionnaire::Model)> = questionnaire::Entity::find()
            .filter(questionnaire::Column::AgencyId.eq(agency_id))
            .filter(questionnaire::Column::ClientId.eq(client_id))
            .order_by_asc(questionnaire::Column::CreatedAt)
            .order_by_asc(questionnaire::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .filter_map(|q| Some((Group::of_kind(&q.kind)?, q)))
            .collect();
        // Non-buyer questionnaires first: their labels and stages win.
        sources_q.sort_by_key(|(g, _)| *g);
        let mut gathered = Gathered::default();
        let mut sources = Vec::new();
        let (mut n_non_buyers, mut n_buyers) = (0u64, 0u64);
        for (group, q) in sources_q {
            let questions = load_questions(&self.db, agency_id, q.id, q.version).await?;
            let barrier_qs = barrier_questions(&questions);
            if barrier_qs.is_empty() {
                continue;
            }
            gathered.note_questions(&barrier_qs);
            let (ds, all, version) = self.panel_data(agency_id, q.id).await?;
            let columns: Vec<usize> = barrier_qs
                .iter()
                .filter_map(|b| ds.question_index(&b.key))
                .collect();
            let state: std::sync::Arc<PanelState> = match filter {
                None => all,
                Some(f) => match compile_filter(&ds, f, "segment") {
                    Ok(compiled) => {
                        let ds = ds.clone();
                        let columns = columns.clone();
                        tokio::task::spawn_blocking(move || {
                            std::sync::Arc::new(ds.fold_rows_of(ds.select(&compiled), &columns))
                        })
                        .await
                        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("barriers: {e}")))?
                    }
                    // The filter does not fit this questionnaire: no response matches.
                    Err(_) => std::sync::Arc::new(ds.fold_rows_of(Vec::new(), &columns)),
                },
            };
            gathered.add(group, &ds, &state, &columns);
            match group {
                Group::NonBuyers => n_non_buyers += state.n,
                Group::Buyers => n_buyers += state.n,
            }
            sources.push(BarrierSource {
                questionnaire_id: q.id,
                title: q.title,
                kind: q.kind,
                group: group.as_str().into(),
                data_version: version,
                responses: ds.len() as u64,
                matched: state.n,
            });
        }
        let stage_of = |key: &str| gathered.questions.get(key).and_then(|i| i.stage_id);
        let keep = |key: &str| stage_id.is_none() || stage_of(key) == stage_id;
        let stage_ids = gathered.questions.values().filter_map(|i| i.stage_id);
        let stages = stage_refs_by_id(&self.db, agency_id, stage_ids.collect()).await?;
        let stage_view = |key: &str| {
            let id = stage_of(key)?;
            stages.get(&id).map(|s| BarrierStage {
                id,
                key: s.key.clone(),
                name_en: s.name_en.clone(),
                name_ru: s.name_ru.clone(),
            })
        };
        let label_of = |key: &str| {
            gathered
                .questions
                .get(key)
                .map(|i| i.label.clone())
                .unwrap_or_else(|| key.to_owned())
        };
        let barriers = analyse(&gathered.inputs(keep))
            .into_iter()
            .map(|b| BarrierView {
                rank: b.rank,
                label: label_of(&b.question),
                stage: stage_view(&b.question),
                question: b.question,
                option: b.option,
                non_buyers: b.non_buyers,
                buyers: b.buyers,
                lift: b.lift,
                explained_refusals: b.explained_refusals,
            })
            .collect();
        let open_answers = std::mem::take(&mut gathered.open)
            .into_iter()
            .filter(|((key, _), _)| keep(key))
            .map(|((key, group), parts)| OpenBarrierView {
                label: label_of(&key),
                stage: stage_view(&key),
                question: key,
                group: group.as_str().into(),
                answers: parts.finish(),
            })
            .collect();
        Ok(BarrierAnalysis {
            client_id,
            segment_id: None,
            stage_id,
            data_version: sources.iter().map(|s| s.data_version).sum(),
            computed_at: crate::now(),
            n_non_buyers,
            n_buyers,
            sources,
            barriers,
            open_answers,
        })
    }
}

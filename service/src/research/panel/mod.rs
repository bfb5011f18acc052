//! Customer panels (analytics.md §1) over an in-process columnar cache of a
//! questionnaire's responses. The cache is brought up to date by data
//! version: only rows stored since the cached version are read, so a panel
//! after new data costs a fold, not a reload.
use std::collections::HashMap;
use std::sync::Arc;

use analytics::panel::{
    Cell, CompiledFilter, Condition, Dataset, Kind, Panel, PanelQuestion, PanelState, Role,
};
use entity::{choice_factor, response};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::domain::questions::{Question, QuestionRole, QuestionType};
use crate::domain::segment_filter::SegmentFilter;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::research::panel::rows::RowDecoder;
use crate::research::questionnaires::{find_questionnaire, load_questions};
use crate::{Perm, RequestCtx, Services};

pub mod rows;

/// The snapshot kind of a questionnaire's unfiltered panel.
pub const KIND_PANEL: &str = "questionnaire_panel";

/// Most questionnaires kept in memory per process.
const MAX_CACHED: usize = 64;

struct Entry {
    agency_id: Uuid,
    questions_version: i32,
    data_version: i64,
    dataset: Arc<Dataset>,
    /// Aggregates of every row of `dataset`, folded in as rows arrive: the
    /// unfiltered panel without a pass over the data.
    state: Arc<PanelState>,
    last_used: std::time::Instant,
}

/// Per-process cache of questionnaire datasets.
#[derive(Default)]
pub struct PanelCache {
    entries: Mutex<HashMap<Uuid, Arc<Mutex<Option<Entry>>>>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct PanelView {
    pub questionnaire_id: Uuid,
    /// The data version the figures reflect.
    pub data_version: i64,
    pub computed_at: chrono::DateTime<chrono::Utc>,
    pub panel: Panel,
}

fn kind_of(q: &Question) -> Kind {
    match q.qtype {
        QuestionType::SingleChoice => Kind::Single {
            options: q.options.clone(),
        },
        QuestionType::MultiChoice => Kind::Multi {
            options: q.options.clone(),
        },
        QuestionType::Rating1To5 => Kind::Rating,
        QuestionType::Nps0To10 => Kind::Nps,
        QuestionType::Number => Kind::Number,
        QuestionType::Text => Kind::Text,
        QuestionType::Email | QuestionType::Date => Kind::Other,
    }
}

fn role_of(q: &Question) -> Role {
    match q.role {
        None => Role::None,
        Some(QuestionRole::SegmentAttribute) => Role::SegmentAttribute,
        Some(QuestionRole::Jtbd) => Role::Jtbd,
        Some(QuestionRole::ChoiceFactorImportance) => Role::ChoiceFactorImportance,
        Some(QuestionRole::Nps) => Role::Nps,
        Some(QuestionRole::Spend) => Role::Spend,
        Some(QuestionRole::Recommendation | QuestionRole::Problem | QuestionRole::Barrier)
            if q.qtype == QuestionType::Text =>
        {
            Role::OpenAnswer
        }
        Some(_) => Role::Other,
    }
}

/// The analytics view of the questions, with factor names.
pub fn panel_questions(
    questions: &[Question],
    factor_names: &HashMap<Uuid, String>,
) -> Vec<PanelQuestion> {
    questions
        .iter()
        .map(|q| PanelQuestion {
            key: q.key.clone(),
            kind: kind_of(q),
            role: role_of(q),
            factor: q.choice_factor_id.map(|id| {
                (
                    id.to_string(),
                    factor_names
                        .get(&id)
                        .cloned()
                        .unwrap_or_else(|| q.key.clone()),
                )
            }),
        })
        .collect()
}

/// One stored answers object as cells aligned with `questions`.
pub fn cells(questions: &[PanelQuestion], answers: &Value) -> Vec<Cell> {
    questions
        .iter()
        .map(|q| {
            let Some(v) = answers.get(&q.key) else {
                return Cell::Blank;
            };
            match &q.kind {
                Kind::Single { options } => v
                    .as_str()
                    .and_then(|s| options.iter().position(|o| o == s))
                    .map(|i| Cell::Choice(i as u16))
                    .unwrap_or(Cell::Blank),
                // A list — `[]` included — is an answer; anything else blank.
                Kind::Multi { options } => match v.as_array() {
                    Some(items) => {
                        let mut mask = 0u64;
                        for s in items.iter().filter_map(Value::as_str) {
                            if let Some(i) = options.iter().position(|o| o == s).filter(|&i| i < 64)
                            {
                                mask |= 1 << i;
                            }
                        }
                        Cell::Multi(mask)
                    }
                    None => Cell::Blank,
                },
                Kind::Rating | Kind::Nps | Kind::Number => {
                    v.as_f64().map(Cell::Num).unwrap_or(Cell::Blank)
                }
                Kind::Text | Kind::Other => v
                    .as_str()
                    .map(|s| Cell::Text(s.to_owned()))
                    .unwrap_or(Cell::Blank),
            }
        })
        .collect()
}

/// The binary COPY of a questionnaire's rows of versions `(from, to]`:
/// `(submitted_at, answers)` in `(data_version, id)` order. COPY takes no
/// parameters; only uuids and integers are formatted in.
pub fn panel_copy_sql(agency_id: Uuid, id: Uuid, from: i64, to: i64) -> String {
    format!(
        "COPY (SELECT submitted_at, answers FROM responses \
         WHERE agency_id = '{agency_id}' AND questionnaire_id = '{id}' \
         AND data_version > {from} AND data_version <= {to} \
         ORDER BY data_version, id) TO STDOUT (FORMAT binary)"
    )
}

/// Segment filter → analytics conditions, with errors named as the client sent them.
pub fn compile_filter(
    ds: &Dataset,
    filter: &SegmentFilter,
    field: &str,
) -> AppResult<CompiledFilter> {
    let conditions: Vec<Condition> = filter
        .conditions
        .iter()
        .map(|c| Condition {
            question: c.question.clone(),
            values: c.values.clone(),
            min: c.min,
            max: c.max,
        })
        .collect();
    CompiledFilter::compile(ds, &conditions).map_err(|errs| {
        AppError::Validation(
            errs.into_iter()
                .map(|(f, m)| FieldError::new(format!("{field}.{f}"), m))
                .collect(),
        )
    })
}

impl Services {
    /// The questionnaire's dataset, brought up to its current data version.
    pub(crate) async fn dataset(
        &self,
        agency_id: Uuid,
        id: Uuid,
    ) -> AppResult<(Arc<Dataset>, i64)> {
        let (ds, _, version) = self.panel_data(agency_id, id).await?;
        Ok((ds, version))
    }

    /// The dataset and the aggregates of all its rows, brought up to the
    /// current data version: rows stored since the cached version are read
    /// and folded in (O(their answers)); a questionnaire version change or a
    /// new process starts over from all rows (the full recompute).
    pub async fn panel_data(
        &self,
        agency_id: Uuid,
        id: Uuid,
    ) -> AppResult<(Arc<Dataset>, Arc<PanelState>, i64)> {
        let slot = {
            let mut map = self.panels.entries.lock().await;
            if map.len() >= MAX_CACHED && !map.contains_key(&id) {
                // Evict the least recently used entry that is not in use.
                let mut oldest: Option<(Uuid, std::time::Instant)> = None;
                for (k, v) in map.iter() {
                    if let Ok(guard) = v.try_lock() {
                        let t = guard.as_ref().map(|e| e.last_used);
                        if let Some(t) = t
                            && oldest.is_none_or(|(_, o)| t < o)
                        {
                            oldest = Some((*k, t));
                        }
                    }
                }
                if let Some((k, _)) = oldest {
                    map.remove(&k);
                }
            }
            map.entry(id).or_default().clone()
        };
        let mut guard = slot.lock().await;
        let q = find_questionnaire(&self.db, agency_id, id).await?;
        let fresh = match guard.as_ref() {
            Some(e) => e.agency_id == agency_id && e.questions_version == q.version,
            None => false,
        };
        if !fresh {
            let questions = load_questions(&self.db, agency_id, id, q.version).await?;
            let factor_names: HashMap<Uuid, String> = choice_factor::Entity::find()
                .filter(choice_factor::Column::AgencyId.eq(agency_id))
                .filter(choice_factor::Column::ClientId.eq(q.client_id))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|f| (f.id, f.name))
                .collect();
            let questions = panel_questions(&questions, &factor_names);
            *guard = Some(Entry {
                agency_id,
                questions_version: q.version,
                data_version: 0,
                state: Arc::new(PanelState::new(&questions)),
                dataset: Arc::new(Dataset::new(questions)),
                last_used: std::time::Instant::now(),
            });
        }
        let Some(entry) = guard.as_mut() else {
            return Err(AppError::Unexpected(anyhow::anyhow!(
                "panel cache entry vanished"
            )));
        };
        entry.last_used = std::time::Instant::now();
        if entry.data_version < q.data_version
            && self.db.get_database_backend() == sea_orm::DbBackend::Postgres
        {
            let ds = Arc::make_mut(&mut entry.dataset);
            let state = Arc::make_mut(&mut entry.state);
            let from = entry.data_version;
            if let Err(e) = self
                .stream_rows_pg(agency_id, id, from, q.data_version, ds, state)
                .await
            {
                // Some rows may be in: start from scratch next time.
                *guard = None;
                return Err(e);
            }
            entry.data_version = q.data_version;
        }
        if entry.data_version < q.data_version {
            let rows: Vec<(i64, chrono::DateTime<chrono::Utc>, Value)> = response::Entity::find()
                .filter(response::Column::AgencyId.eq(agency_id))
                .filter(response::Column::QuestionnaireId.eq(id))
                .filter(response::Column::DataVersion.gt(entry.data_version))
                .filter(response::Column::DataVersion.lte(q.data_version))
                .order_by_asc(response::Column::DataVersion)
                .order_by_asc(response::Column::Id)
                .select_only()
                .column(response::Column::DataVersion)
                .column(response::Column::SubmittedAt)
                .column(response::Column::Answers)
                .into_tuple()
                .all(&self.db)
                .await?;
            // In place unless a request is still reading the old version.
            let ds = Arc::make_mut(&mut entry.dataset);
            let state = Arc::make_mut(&mut entry.state);
            let questions = ds.questions.clone();
            for (_, at, answers) in &rows {
                ds.push(at.timestamp_millis(), cells(&questions, answers));
                state.add_row(ds, ds.len() - 1);
            }
            entry.data_version = q.data_version;
        }
        Ok((
            entry.dataset.clone(),
            entry.state.clone(),
            entry.data_version,
        ))
    }

    /// PostgreSQL: streams the rows of versions `(from, to]` into the
    /// dataset and the aggregates by a binary COPY ([`crate::infra::pgcopy`]),
    /// each answers document decoded straight into cells ([`RowDecoder`]).
    /// The index on `(agency_id, questionnaire_id, data_version, id)` gives
    /// the rows in the order the incremental path reads them.
    async fn stream_rows_pg(
        &self,
        agency_id: Uuid,
        id: Uuid,
        from: i64,
        to: i64,
        ds: &mut Dataset,
        state: &mut PanelState,
    ) -> AppResult<()> {
        let sql = panel_copy_sql(agency_id, id, from, to);
        let decoder = RowDecoder::new(&ds.questions);
        // A full load only fills the columns while rows arrive and folds
        // them at the end, column-parallel (the same aggregates to the bit
        // as row by row); new rows of a loaded dataset are folded one by one.
        let full = ds.is_empty();
        let taken = (
            std::mem::replace(ds, Dataset::new(Vec::new())),
            std::mem::replace(state, PanelState::new(&[])),
        );
        let (new_ds, new_state) = crate::infra::pgcopy::copy_out(
            self.db.get_postgres_connection_pool(),
            sql,
            2,
            taken,
            move |(ds, state), f| {
                let at = crate::infra::pgcopy::timestamptz_us(f[0])?.div_euclid(1000);
                let cells = decoder
                    .decode(crate::infra::pgcopy::json(f[1])?)
                    .map_err(|e| format!("stored answers: {e}"))?;
                ds.push(at, cells);
                if !full {
                    state.add_row(ds, ds.len() - 1);
                }
                Ok(())
            },
        )
        .await?;
        let (new_ds, new_state) = if full {
            tokio::task::spawn_blocking(move || {
                let state = new_ds.fold_all();
                (new_ds, state)
            })
            .await
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("panel fold: {e}")))?
        } else {
            (new_ds, new_state)
        };
        *ds = new_ds;
        *state = new_state;
        Ok(())
    }

    /// The unfiltered panel the worker stored, if it reflects the current
    /// data version.
    async fn materialised_panel(&self, agency_id: Uuid, id: Uuid) -> AppResult<Option<PanelView>> {
        let q = find_questionnaire(&self.db, agency_id, id).await?;
        let snap = entity::snapshot::Entity::find()
            .filter(entity::snapshot::Column::AgencyId.eq(agency_id))
            .filter(entity::snapshot::Column::Kind.eq(KIND_PANEL))
            .filter(entity::snapshot::Column::TargetId.eq(id))
            .one(&self.db)
            .await?;
        Ok(snap
            .filter(|s| s.data_version >= q.data_version)
            .and_then(|s| {
                Some(PanelView {
                    questionnaire_id: id,
                    data_version: s.data_version,
                    computed_at: s.computed_at,
                    panel: serde_json::from_value(s.payload).ok()?,
                })
            }))
    }

    /// The segment a read asks for: an inline filter or a saved segment's
    /// (not both). `segment_field` names the saved-segment parameter.
    pub async fn resolve_segment(
        &self,
        ctx: &RequestCtx,
        filter: Option<SegmentFilter>,
        segment_id: Option<Uuid>,
        segment_field: &str,
    ) -> AppResult<Option<SegmentFilter>> {
        match (filter, segment_id) {
            (Some(_), Some(_)) => Err(AppError::field(
                segment_field,
                "give either a filter or a saved segment, not both",
            )),
            (Some(f), None) => Ok(Some(f)),
            (None, Some(id)) => Ok(Some(self.get_segment(ctx, id).await?.filter)),
            (None, None) => Ok(None),
        }
    }

    /// The panel of all responses, or of those matching `filter`.
    pub async fn questionnaire_panel(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        filter: Option<SegmentFilter>,
    ) -> AppResult<PanelView> {
        ctx.require(Perm::Read)?;
        if let Some(f) = &filter {
            f.validate("filter").map_err(AppError::Validation)?;
        }
        if filter.is_none()
            && let Some(view) = self.materialised_panel(ctx.agency_id, id).await?
        {
            return Ok(view);
        }
        let (ds, all, version) = self.panel_data(ctx.agency_id, id).await?;
        let compiled = match &filter {
            Some(f) => Some(compile_filter(&ds, f, "filter")?),
            None => None,
        };
        let panel = tokio::task::spawn_blocking(move || match compiled {
            Some(f) => ds.fold_rows(ds.select(&f)).finish(&ds, ds.len() as u64),
            None => all.finish(&ds, ds.len() as u64),
        })
        .await
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("panel: {e}")))?;
        Ok(PanelView {
            questionnaire_id: id,
            data_version: version,
            computed_at: crate::now(),
            panel,
        })
    }
}

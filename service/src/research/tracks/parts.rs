//! What a track shows beside what was typed in: its segment's share and n
//! and choice factors (§1), the local QFD's critical touchpoints and
//! improvement priorities (§3), the segment's hypotheses and verdicts (§2)
//! and the UX-map flags of its steps (§4) — each taken from the very
//! service call its own endpoint answers with, so the figures agree to the
//! bit. The purchases part (§6) is filled in by the worker
//! (`jobs::tracks`), which sits above commerce.
use std::collections::HashSet;

use analytics::panel::{ChoiceQuestion, FactorFigures, Role};
use analytics::qfd::{Class, Scored, TouchpointPriority};
use analytics::ux::Flag;
use chrono::{DateTime, NaiveDate, Utc};
use entity::{recompute_target, snapshot, track};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::segment_filter::SegmentFilter;
use crate::infra::error::{AppError, AppResult};
use crate::infra::ledger::KIND_TRACKS;
use crate::research::hypotheses::{HypothesisOutcome, KIND_HYPOTHESES};
use crate::research::questionnaires::find_questionnaire;
use crate::research::segments::segment_filter_of;
use crate::research::tracks::{TrackNoteView, TrackStep, TrackView};
use crate::research::ux::KIND_UX;
use crate::{RequestCtx, Services};

/// The snapshot kind of one track's computed parts (target: the track).
pub const KIND_TRACK: &str = "track";

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct SegmentFigures {
    /// Responses of the panel in the segment.
    pub n: u64,
    /// n / all responses of the panel.
    pub share: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct TrackQfd {
    /// Touchpoints of the segment's QFD classed `critical`, in library order.
    pub critical_touchpoints: Vec<Scored>,
    /// Improvement priorities that could be computed (the touchpoint has
    /// mystery-shopper ratings), highest first.
    pub priorities: Vec<TouchpointPriority>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct TrackUxFlag {
    /// `touchpoint_jtbd`, `touchpoint` or `stage`.
    pub scope: String,
    pub touchpoint_id: Option<String>,
    pub stage_id: Option<String>,
    pub jtbd: Option<String>,
    pub flag: Flag,
    pub deviation: Option<f64>,
    pub current_mean: Option<f64>,
    pub baseline_mean: Option<f64>,
}

/// One JTBD of the client's purchases (§6).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct JtbdTiming {
    pub label: String,
    pub purchases: u64,
    /// purchases / all purchases of the labels shown.
    pub share: Option<f64>,
    /// Median days between consecutive purchases whose later one has this
    /// label.
    pub median_interval_days: Option<f64>,
    pub intervals: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct TrackPurchases {
    /// The client's purchases version the figures reflect.
    pub data_version: i64,
    pub as_of: NaiveDate,
    /// The JTBDs the segment named in its panel (`jtbd_mix`) where
    /// purchases carry those labels, else every label of the purchases.
    pub jtbds: Vec<JtbdTiming>,
}

/// The computed parts of a track.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct TrackParts {
    /// The panel's data version the figures reflect.
    pub data_version: i64,
    pub computed_at: DateTime<Utc>,
    pub segment: Option<SegmentFigures>,
    /// The segment's choice factors (§1), by rank.
    pub factors: Vec<FactorFigures>,
    pub qfd: Option<TrackQfd>,
    /// Hypotheses of the client whose segment is the track's segment, as
    /// the client's hypotheses results show them.
    pub hypotheses: Vec<HypothesisOutcome>,
    pub hypotheses_version: i64,
    /// Flags of the UX map (as of today) on the track's touchpoints and
    /// stages (all of the client's when the track has no steps yet).
    pub ux_flags: Vec<TrackUxFlag>,
    pub ux_version: i64,
    /// The segment's answers to the panel's `jtbd` questions.
    pub jtbd_mix: Vec<ChoiceQuestion>,
    /// Null when the client has no purchases.
    pub purchases: Option<TrackPurchases>,
    /// The segment's sales barriers (non-buyers against buyers), ranked by
    /// refusals explained, each with the steps it bites at.
    #[serde(default)]
    pub barriers: Vec<super::barriers::TrackStepBarrier>,
    /// The data version of the barrier analysis (the sum of its sources').
    #[serde(default)]
    pub barriers_version: i64,
    /// What could not be computed, and why.
    pub problems: Vec<String>,
}

/// A track with its computed parts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct TrackDetail {
    #[serde(flatten)]
    #[graphql(flatten)]
    pub track: TrackView,
    /// Newest first.
    pub notes: Vec<TrackNoteView>,
    /// The panel's data version the computed parts reflect.
    pub data_version: i64,
    /// Whether the parts reflect all the data stored now.
    pub fresh: bool,
    /// `stored` (the worker's result) or `computed` (on this read, as the
    /// worker had not caught up).
    pub source: String,
    pub computed: TrackParts,
}

/// One side of a comparison.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct TrackSide {
    pub id: Uuid,
    pub name: String,
    pub segment_id: Uuid,
    pub segment: Option<SegmentFigures>,
    pub data_version: i64,
    pub fresh: bool,
}

/// Two tracks side by side: their segments' shares, factor ranks and
/// barriers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct TrackComparison {
    pub a: TrackSide,
    pub b: TrackSide,
    /// Ordered by the better of the two ranks.
    pub factors: Vec<analytics::track::RankPair>,
    /// The barriers of all steps, matched by normalised label.
    pub barriers: Vec<analytics::track::BarrierPair>,
}

impl TrackSide {
    pub fn of(d: &TrackDetail) -> Self {
        Self {
            id: d.track.id,
            name: d.track.name.clone(),
            segment_id: d.track.segment_id,
            segment: d.computed.segment.clone(),
            data_version: d.data_version,
            fresh: d.fresh,
        }
    }
}

/// Two tracks' details → their comparison.
pub fn compare(a: &TrackDetail, b: &TrackDetail) -> TrackComparison {
    let barriers = |d: &TrackDetail| -> Vec<String> {
        d.track
            .steps
            .iter()
            .flat_map(|s| s.barriers.iter().map(|b| b.label.clone()))
            .collect()
    };
    TrackComparison {
        a: TrackSide::of(a),
        b: TrackSide::of(b),
        factors: analytics::track::compare_ranks(&a.computed.factors, &b.computed.factors),
        barriers: analytics::track::compare_barriers(&barriers(a), &barriers(b)),
    }
}

fn problem_of(what: &str, e: &AppError) -> String {
    format!("{what}: {}", e.public_detail())
}

/// Errors that say the inputs no longer fit (a part is left out, with the
/// reason); the rest stop the computation.
fn is_data_problem(e: &AppError) -> bool {
    matches!(
        e,
        AppError::NotFound | AppError::Validation(_) | AppError::Conflict(_)
    )
}

impl Services {
    /// The parts of `t` from the research data (purchases left null).
    pub(crate) async fn research_track_parts(
        &self,
        agency_id: Uuid,
        t: &track::Model,
    ) -> AppResult<TrackParts> {
        let ctx = RequestCtx::worker(agency_id);
        let steps: Vec<TrackStep> = serde_json::from_value(t.steps.clone()).unwrap_or_default();
        let q = find_questionnaire(&self.db, agency_id, t.questionnaire_id).await;
        let mut parts = TrackParts {
            data_version: q.as_ref().map_or(0, |q| q.data_version),
            computed_at: crate::now(),
            segment: None,
            factors: vec![],
            qfd: None,
            hypotheses: vec![],
            hypotheses_version: 0,
            ux_flags: vec![],
            ux_version: 0,
            jtbd_mix: vec![],
            purchases: None,
            barriers: vec![],
            barriers_version: 0,
            problems: vec![],
        };
        let segment = match segment_filter_of(&self.db, agency_id, t.segment_id).await {
            Ok(filter) => Some(filter),
            Err(AppError::NotFound) => {
                parts
                    .problems
                    .push("segment: the track's segment no longer exists".into());
                None
            }
            Err(e) => return Err(e),
        };
        let mut jtbd_values: Option<HashSet<String>> = None;
        if let (Some(seg), Ok(_)) = (&segment, &q) {
            self.panel_parts(&ctx, t, seg, &mut parts, &mut jtbd_values)
                .await?;
            match self
                .qfd(
                    &ctx,
                    t.client_id,
                    Some(t.questionnaire_id),
                    Some(seg.clone()),
                )
                .await
            {
                Ok(v) => {
                    let critical = v
                        .result
                        .touchpoints
                        .into_iter()
                        .filter(|s| s.class == Class::Critical)
                        .collect();
                    let mut priorities: Vec<TouchpointPriority> = v
                        .priorities
                        .into_iter()
                        .filter(|p| p.priority.is_some())
                        .collect();
                    priorities.sort_by(|a, b| {
                        b.priority
                            .partial_cmp(&a.priority)
                            .unwrap_or(std::cmp::Ordering::Equal)
                            .then_with(|| a.touchpoint_id.cmp(&b.touchpoint_id))
                    });
                    parts.qfd = Some(TrackQfd {
                        critical_touchpoints: critical,
                        priorities,
                    });
                }
                Err(e) if is_data_problem(&e) => parts.problems.push(problem_of("qfd", &e)),
                Err(e) => return Err(e),
            }
            let ids: HashSet<Uuid> = self
                .list_hypotheses(&ctx, t.client_id)
                .await?
                .into_iter()
                .filter(|h| &h.segment == seg)
                .map(|h| h.id)
                .collect();
            let results = self.hypotheses_results(&ctx, t.client_id).await?;
            parts.hypotheses_version = results.data_version;
            parts.hypotheses = results
                .items
                .into_iter()
                .filter(|i| ids.contains(&i.hypothesis_id))
                .collect();
        } else if let Err(e) = &q {
            if !is_data_problem(e) {
                return Err(AppError::Unexpected(anyhow::anyhow!(
                    "reading the track's panel: {e}"
                )));
            }
            parts.problems.push(problem_of("panel", e));
        }
        if let Some(seg) = &segment {
            match self
                .track_barriers(agency_id, t.client_id, seg, &steps)
                .await
            {
                Ok((barriers, version)) => {
                    parts.barriers = barriers;
                    parts.barriers_version = version;
                }
                Err(e) if is_data_problem(&e) => parts.problems.push(problem_of("barriers", &e)),
                Err(e) => return Err(e),
            }
        }
        let ux = self.ux_map(&ctx, t.client_id, None).await?;
        parts.ux_version = ux.data_version;
        parts.ux_flags = ux_flags(&ux.map, &steps, jtbd_values.as_ref());
        Ok(parts)
    }

    /// §1 for the segment: n, share, factors by rank and the jtbd mix;
    /// `jtbd_values` gets the JTBDs the segment's filter names.
    async fn panel_parts(
        &self,
        ctx: &RequestCtx,
        t: &track::Model,
        seg: &SegmentFilter,
        parts: &mut TrackParts,
        jtbd_values: &mut Option<HashSet<String>>,
    ) -> AppResult<()> {
        let view = match self
            .questionnaire_panel(ctx, t.questionnaire_id, Some(seg.clone()))
            .await
        {
            Ok(v) => v,
            Err(e) if is_data_problem(&e) => {
                parts.problems.push(problem_of("panel", &e));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let (ds, _) = self.dataset(ctx.agency_id, t.questionnaire_id).await?;
        let jtbd_keys: HashSet<&str> = ds
            .questions
            .iter()
            .filter(|q| q.role == Role::Jtbd)
            .map(|q| q.key.as_str())
            .collect();
        let named: HashSet<String> = seg
            .conditions
            .iter()
            .filter(|c| jtbd_keys.contains(c.question.as_str()))
            .flat_map(|c| c.values.clone().unwrap_or_default())
            .collect();
        if !named.is_empty() {
            *jtbd_values = Some(named);
        }
        parts.data_version = view.data_version;
        parts.segment = Some(SegmentFigures {
            n: view.panel.n,
            share: view.panel.share,
        });
        let mut factors = view.panel.factors;
        factors.sort_by_key(|f| f.rank);
        parts.factors = factors;
        parts.jtbd_mix = view
            .panel
            .choices
            .into_iter()
            .filter(|c| jtbd_keys.contains(c.key.as_str()))
            .collect();
        Ok(())
    }

    /// The worker's last parts of a track and the tracks version they
    /// reflect.
    pub(crate) async fn stored_track_parts(
        &self,
        agency_id: Uuid,
        track_id: Uuid,
    ) -> AppResult<Option<(i64, TrackParts)>> {
        let snap = snapshot::Entity::find()
            .filter(snapshot::Column::AgencyId.eq(agency_id))
            .filter(snapshot::Column::Kind.eq(KIND_TRACK))
            .filter(snapshot::Column::TargetId.eq(track_id))
            .one(&self.db)
            .await?;
        Ok(snap.and_then(|s| Some((s.data_version, serde_json::from_value(s.payload).ok()?))))
    }

    /// Whether stored parts reflect everything stored now: the tracks
    /// version they were computed at is the latest, the panel has no newer
    /// rows, and neither the hypotheses nor the UX map wait for the worker
    /// (the tracks are marked again once they are done).
    pub(crate) async fn track_parts_fresh(
        &self,
        agency_id: Uuid,
        t: &track::Model,
        tracks_version: i64,
        parts: &TrackParts,
    ) -> AppResult<bool> {
        let targets = recompute_target::Entity::find()
            .filter(recompute_target::Column::AgencyId.eq(agency_id))
            .filter(recompute_target::Column::TargetId.eq(t.client_id))
            .filter(recompute_target::Column::Kind.is_in([KIND_TRACKS, KIND_HYPOTHESES, KIND_UX]))
            .all(&self.db)
            .await?;
        for target in &targets {
            let behind = if target.kind == KIND_TRACKS {
                tracks_version < target.wanted_version
            } else {
                target.computed_version < target.wanted_version
            };
            if behind {
                return Ok(false);
            }
        }
        let q = find_questionnaire(&self.db, agency_id, t.questionnaire_id).await;
        Ok(q.map_or(true, |q| q.data_version == parts.data_version))
    }
}

/// The UX flags on the track's touchpoints and stages; per JTBD only for
/// the segment's JTBDs when its filter names any.
fn ux_flags(
    map: &analytics::ux::UxMap,
    steps: &[TrackStep],
    jtbds: Option<&HashSet<String>>,
) -> Vec<TrackUxFlag> {
    let tps: HashSet<String> = steps
        .iter()
        .filter_map(|s| s.touchpoint_id.map(|t| t.to_string()))
        .collect();
    let stages: HashSet<String> = steps.iter().map(|s| s.stage_id.to_string()).collect();
    let all = steps.is_empty();
    let mut out = Vec::new();
    let mut push = |scope: &str,
                    tp: Option<&String>,
                    stage: Option<&String>,
                    jtbd: Option<&String>,
                    st: &analytics::ux::UxStats| {
        if let Some(flag) = st.flag {
            out.push(TrackUxFlag {
                scope: scope.into(),
                touchpoint_id: tp.cloned(),
                stage_id: stage.cloned(),
                jtbd: jtbd.cloned(),
                flag,
                deviation: st.deviation,
                current_mean: st.current.mean,
                baseline_mean: st.baseline.mean,
            });
        }
    };
    for r in &map.by_touchpoint_jtbd {
        if (all || tps.contains(&r.touchpoint_id)) && jtbds.is_none_or(|j| j.contains(&r.jtbd)) {
            push(
                "touchpoint_jtbd",
                Some(&r.touchpoint_id),
                None,
                Some(&r.jtbd),
                &r.stats,
            );
        }
    }
    for r in &map.by_touchpoint {
        if all || tps.contains(&r.touchpoint_id) {
            push("touchpoint", Some(&r.touchpoint_id), None, None, &r.stats);
        }
    }
    for r in &map.by_stage {
        if all || stages.contains(&r.stage_id) {
            push("stage", None, Some(&r.stage_id), None, &r.stats);
        }
    }
    out
}

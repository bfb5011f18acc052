//! A track's sales barriers: the barrier analysis of the track's segment
//! (`research::barriers`, non-buyers against buyers), each barrier with
//! the steps it bites at — the steps at its question's CJM stage, and the
//! steps whose own barriers name it (`barrier_ref`).
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::TrackStep;
use crate::Services;
use crate::domain::segment_filter::SegmentFilter;
use crate::infra::error::AppResult;
use crate::research::barriers::BarrierView;

/// One barrier of the track's segment and where it sits in the track.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct TrackStepBarrier {
    /// Positions (0-based) of the steps it is linked to: those at its
    /// question's stage and those naming it in a barrier's `barrier_ref`.
    pub steps: Vec<u32>,
    /// Its figures in the segment, as `GET /clients/{id}/barriers?segment_id=` gives them.
    pub barrier: BarrierView,
}

/// The steps `b` belongs to.
fn steps_of(steps: &[TrackStep], b: &BarrierView) -> Vec<u32> {
    let stage = b.stage.as_ref().map(|s| s.id);
    steps
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            Some(s.stage_id) == stage
                || s.barriers.iter().any(|own| {
                    own.barrier_ref
                        .as_ref()
                        .is_some_and(|r| r.question_key == b.question && r.value == b.option)
                })
        })
        .filter_map(|(i, _)| u32::try_from(i).ok())
        .collect()
}

impl Services {
    /// The segment's barriers, ranked as the analysis ranks them, with
    /// their steps; and the analysis' data version.
    pub(crate) async fn track_barriers(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
        segment: &SegmentFilter,
        steps: &[TrackStep],
    ) -> AppResult<(Vec<TrackStepBarrier>, i64)> {
        let a = self
            .barriers_for(agency_id, client_id, Some(segment), None)
            .await?;
        let barriers = a
            .barriers
            .into_iter()
            .map(|barrier| TrackStepBarrier {
                steps: steps_of(steps, &barrier),
                barrier,
            })
            .collect();
        Ok((barriers, a.data_version))
    }
}

//! Customer tracks' computed parts: composed here, above every area, since
//! a track reads research (panel, QFD, hypotheses, UX map) and commerce
//! (purchases, §6). The worker stores them per track after whatever they
//! read changed (`client_tracks` target); a read serves the stored parts
//! and computes on the spot only when the worker has not caught up.
use std::collections::HashSet;

use entity::{questionnaire, track};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::commerce::jtbd::JtbdParams;
use crate::infra::error::{AppError, AppResult};
use crate::infra::ledger::KIND_TRACKS;
use crate::infra::queue::RecomputeJob;
use crate::research::tracks::parts::{
    JtbdTiming, KIND_TRACK, TrackComparison, TrackDetail, TrackParts, TrackPurchases, compare,
};
use crate::{Perm, RequestCtx, Services};

impl Services {
    /// After a recompute of `job`: the tracks of its client read what it
    /// produced, so they are marked for the worker (only clients with
    /// tracks get a target).
    pub(super) async fn touch_tracks_after(&self, job: &RecomputeJob) -> AppResult<()> {
        let client_id = match job.kind.as_str() {
            crate::infra::ledger::KIND_QUESTIONNAIRE => {
                let q = questionnaire::Entity::find_by_id(job.target_id)
                    .filter(questionnaire::Column::AgencyId.eq(job.agency_id))
                    .one(&self.db)
                    .await?;
                match q {
                    Some(q) => q.client_id,
                    None => return Ok(()),
                }
            }
            crate::research::hypotheses::KIND_HYPOTHESES
            | crate::research::ux::KIND_UX
            | crate::infra::ledger::KIND_CONTACTS => job.target_id,
            _ => return Ok(()),
        };
        let has_tracks = track::Entity::find()
            .filter(track::Column::AgencyId.eq(job.agency_id))
            .filter(track::Column::ClientId.eq(client_id))
            .select_only()
            .column(track::Column::Id)
            .into_tuple::<Uuid>()
            .one(&self.db)
            .await?
            .is_some();
        if !has_tracks {
            return Ok(());
        }
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let wake =
            crate::infra::ledger::bump_target(&txn, job.agency_id, KIND_TRACKS, client_id).await?;
        txn.commit().await?;
        if wake {
            self.wake_tracks(job.agency_id, client_id).await;
        }
        Ok(())
    }

    /// Worker: computes and stores the parts of every track of a client;
    /// returns the tracks version they reflect.
    pub async fn recompute_client_tracks(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
    ) -> AppResult<i64> {
        let version =
            crate::infra::ledger::wanted_version(&self.db, agency_id, KIND_TRACKS, client_id)
                .await?;
        for t in self.client_tracks(agency_id, client_id).await? {
            let parts = self.track_parts(agency_id, &t).await?;
            let payload = serde_json::to_value(&parts).map_err(anyhow::Error::from)?;
            crate::infra::ledger::store_snapshot(
                &self.db, agency_id, KIND_TRACK, t.id, version, payload,
            )
            .await?;
        }
        Ok(version)
    }

    /// All the parts of a track: research's and the purchases'.
    async fn track_parts(&self, agency_id: Uuid, t: &track::Model) -> AppResult<TrackParts> {
        let mut parts = self.research_track_parts(agency_id, t).await?;
        let ctx = RequestCtx::worker(agency_id);
        let params = JtbdParams {
            limit: Some(1),
            ..Default::default()
        };
        let report = self.jtbd_results(&ctx, t.client_id, params).await?;
        if report.purchases > 0 {
            // The segment's JTBDs, when its filter names any the purchases carry.
            let named: HashSet<&str> = parts
                .jtbd_mix
                .iter()
                .flat_map(|c| c.options.iter())
                .filter(|o| o.count > 0)
                .map(|o| o.option.as_str())
                .collect();
            let any_named = report
                .jtbds
                .iter()
                .any(|j| named.contains(j.label.as_str()));
            let shown: Vec<_> = report
                .jtbds
                .iter()
                .filter(|j| !any_named || named.contains(j.label.as_str()))
                .collect();
            let total: u64 = shown.iter().map(|j| j.purchases).sum();
            parts.purchases = Some(TrackPurchases {
                data_version: report.data_version,
                as_of: report.as_of,
                jtbds: shown
                    .into_iter()
                    .map(|j| JtbdTiming {
                        label: j.label.clone(),
                        purchases: j.purchases,
                        share: (total > 0).then(|| j.purchases as f64 / total as f64),
                        median_interval_days: j.median_interval_days,
                        intervals: j.intervals,
                    })
                    .collect(),
            });
        }
        Ok(parts)
    }

    /// A track with its computed parts: the worker's when they reflect
    /// every stored row, else computed now.
    pub async fn track_detail(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<TrackDetail> {
        let t = self.find_track(ctx.agency_id, id).await?;
        ctx.require(Perm::Read)?;
        let (view, notes) = self.get_track(ctx, id).await?;
        if let Some((version, parts)) = self.stored_track_parts(ctx.agency_id, id).await?
            && self
                .track_parts_fresh(ctx.agency_id, &t, version, &parts)
                .await?
        {
            return Ok(TrackDetail {
                track: view,
                notes,
                data_version: parts.data_version,
                fresh: true,
                source: "stored".into(),
                computed: parts,
            });
        }
        let parts = self.track_parts(ctx.agency_id, &t).await?;
        // Fresh as far as the panel goes; the hypotheses and the UX map
        // may still be on their way.
        let fresh = self
            .track_parts_fresh(ctx.agency_id, &t, i64::MAX, &parts)
            .await?;
        Ok(TrackDetail {
            track: view,
            notes,
            data_version: parts.data_version,
            fresh,
            source: "computed".into(),
            computed: parts,
        })
    }

    /// Two tracks of the caller's agency side by side.
    pub async fn compare_tracks(
        &self,
        ctx: &RequestCtx,
        a: Uuid,
        b: Uuid,
    ) -> AppResult<TrackComparison> {
        let (da, db) = (
            self.track_detail(ctx, a).await?,
            self.track_detail(ctx, b).await?,
        );
        if a == b {
            return Err(AppError::field("b", "compare two different tracks"));
        }
        Ok(compare(&da, &db))
    }
}

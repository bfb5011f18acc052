//! The worker's side of the ledger ([`crate::infra::ledger`]): runs one
//! recompute under a lease, retries failures with backoff, sweeps targets
//! nobody picked up, and lists what each run did. It composes every area's
//! computation, so it sits above them all.
mod alerts;
mod tracks;

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use entity::{job_alert, job_run, recompute_target};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::Serialize;
use uuid::Uuid;

use crate::infra::error::{AppError, AppResult};
use crate::infra::ledger::now_ms;
use crate::infra::page::{Page, PageParams};
use crate::infra::queue::RecomputeJob;
use crate::{Perm, RequestCtx, Services, new_id, now};

pub use crate::infra::ledger::{KIND_QUESTIONNAIRE, LEASE_MS, MAX_ATTEMPTS};

/// Every kind of target a recompute job computes ([`Services::run_recompute`]).
pub const RECOMPUTE_KINDS: [&str; 5] = [
    KIND_QUESTIONNAIRE,
    crate::research::hypotheses::KIND_HYPOTHESES,
    crate::research::ux::KIND_UX,
    crate::infra::ledger::KIND_CONTACTS,
    crate::infra::ledger::KIND_TRACKS,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Computed these data versions.
    Computed(Vec<i64>),
    /// Already fresh: nothing to do.
    Fresh,
    /// Another worker holds the target; it will pick up new versions.
    Busy,
    /// Failed; will be retried by the sweeper after a backoff.
    Failed(String),
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct JobRunView {
    pub id: Uuid,
    pub kind: String,
    pub target_id: Uuid,
    pub data_version: i64,
    /// `succeeded`, `retrying` or `failed` (given up after all attempts).
    pub status: String,
    pub attempt: i32,
    pub error: Option<String>,
    pub worker_id: String,
    pub started_at: chrono::DateTime<Utc>,
    pub finished_at: Option<chrono::DateTime<Utc>>,
}

impl From<job_run::Model> for JobRunView {
    fn from(m: job_run::Model) -> Self {
        Self {
            id: m.id,
            kind: m.kind,
            target_id: m.target_id,
            data_version: m.data_version,
            status: m.status,
            attempt: m.attempt,
            error: m.error,
            worker_id: m.worker_id,
            started_at: m.started_at,
            finished_at: m.finished_at,
        }
    }
}

/// Base · 2^attempt (2 s, 4 s, 8 s, 16 s … with the default base), capped at 5 min.
fn backoff_ms(base_ms: i64, attempt: i32) -> i64 {
    std::cmp::min(base_ms << attempt.clamp(1, 8), 300_000)
}

impl Services {
    /// Runs one recompute job to completion under a lease.
    #[tracing::instrument(skip(self), fields(agency_id = %job.agency_id, target_id = %job.target_id))]
    pub async fn run_recompute(
        &self,
        job: &RecomputeJob,
        worker_id: &str,
    ) -> AppResult<RunOutcome> {
        let target = recompute_target::Entity::find()
            .filter(recompute_target::Column::AgencyId.eq(job.agency_id))
            .filter(recompute_target::Column::Kind.eq(&job.kind))
            .filter(recompute_target::Column::TargetId.eq(job.target_id))
            .one(&self.db)
            .await?;
        let Some(target) = target else {
            // The target was deleted: nothing to compute.
            return Ok(RunOutcome::Fresh);
        };
        if target.computed_version >= target.wanted_version && !target.pending {
            return Ok(RunOutcome::Fresh);
        }
        let now = now_ms();
        if now < target.next_attempt_ms {
            // Backing off after a failure: the sweeper pushes it when due.
            return Ok(RunOutcome::Busy);
        }
        let leased = recompute_target::Entity::update_many()
            .col_expr(recompute_target::Column::LeaseOwner, Expr::value(worker_id))
            .col_expr(
                recompute_target::Column::LeaseUntilMs,
                Expr::value(now + LEASE_MS),
            )
            .filter(recompute_target::Column::Id.eq(target.id))
            .filter(recompute_target::Column::LeaseUntilMs.lt(now))
            // Checked again here, atomically: a duplicate job that read the
            // row before a failure was recorded must not skip the backoff.
            .filter(recompute_target::Column::NextAttemptMs.lte(now))
            .exec(&self.db)
            .await?;
        if leased.rows_affected == 0 {
            return Ok(RunOutcome::Busy);
        }
        let mut computed = Vec::new();
        // The lease outlives any wait for the database below, so no other
        // worker takes the target meanwhile.
        let give_up_waiting =
            std::time::Instant::now() + Duration::from_millis((LEASE_MS * 3 / 4) as u64);
        loop {
            match self
                .run_leased_once(job, worker_id, &target, &mut computed)
                .await
            {
                Ok(Some(outcome)) => return Ok(outcome),
                // A newer version arrived while computing: compute again.
                Ok(None) => {}
                Err(e) if e.is_unavailable() => {
                    tracing::warn!(error = %format!("{e:#}"), "database unavailable during a recompute; waiting for it");
                    if !self.wait_for_database(give_up_waiting).await {
                        // Still down: the target stays pending and its lease
                        // runs out, so the sweeper re-arms it once the
                        // database is back. Nothing counts as an attempt.
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until the database answers again (true), or `deadline` passes.
    async fn wait_for_database(&self, deadline: std::time::Instant) -> bool {
        loop {
            if crate::infra::db::ping(&self.db).await.is_ok() {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// One computation of a leased target and its bookkeeping: the outcome
    /// when the run is over, None when a newer version arrived meanwhile.
    async fn run_leased_once(
        &self,
        job: &RecomputeJob,
        worker_id: &str,
        target: &recompute_target::Model,
        computed: &mut Vec<i64>,
    ) -> AppResult<Option<RunOutcome>> {
        // Let a burst of writes land first: one recompute then covers
        // them all (1,000 posts a second → a handful of recomputes).
        if self.config.recompute_debounce_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.config.recompute_debounce_ms)).await;
        }
        let started = now_ms();
        let result = tokio::time::timeout(
            Duration::from_millis((LEASE_MS / 2) as u64),
            self.compute_target(job),
        )
        .await
        .unwrap_or_else(|_| Err(AppError::Unexpected(anyhow::anyhow!("recompute timed out"))));
        match result {
            Ok(version) => {
                self.record_run(
                    job,
                    worker_id,
                    version,
                    "succeeded",
                    target.attempts + 1,
                    None,
                    started,
                )
                .await?;
                recompute_target::Entity::update_many()
                    .col_expr(
                        recompute_target::Column::ComputedVersion,
                        Expr::value(version),
                    )
                    .col_expr(recompute_target::Column::Attempts, Expr::value(0))
                    .col_expr(recompute_target::Column::NextAttemptMs, Expr::value(0i64))
                    .col_expr(
                        recompute_target::Column::LastError,
                        Expr::value(Option::<String>::None),
                    )
                    .col_expr(
                        recompute_target::Column::LeaseUntilMs,
                        Expr::value(now_ms() + LEASE_MS),
                    )
                    .col_expr(
                        recompute_target::Column::UpdatedAt,
                        Expr::value(crate::now()),
                    )
                    .filter(recompute_target::Column::Id.eq(target.id))
                    .exec(&self.db)
                    .await?;
                computed.push(version);
                // Release only if no newer version arrived meanwhile; the
                // condition is checked atomically with the release.
                let released = recompute_target::Entity::update_many()
                    .col_expr(recompute_target::Column::Pending, Expr::value(false))
                    .col_expr(
                        recompute_target::Column::LeaseOwner,
                        Expr::value(Option::<String>::None),
                    )
                    .col_expr(recompute_target::Column::LeaseUntilMs, Expr::value(0i64))
                    .filter(recompute_target::Column::Id.eq(target.id))
                    .filter(
                        Expr::col(recompute_target::Column::WantedVersion)
                            .lte(Expr::col(recompute_target::Column::ComputedVersion)),
                    )
                    .exec(&self.db)
                    .await?;
                if released.rows_affected == 1 {
                    return Ok(Some(RunOutcome::Computed(computed.clone())));
                }
            }
            // An outage is no failure of the computation: it is not counted
            // toward giving up; the caller waits for the database and
            // computes again under the same lease.
            Err(e) if e.is_unavailable() => return Err(e),
            Err(e) => {
                let msg = format!("{e:#}");
                let cause = match &e {
                    AppError::Unexpected(inner) => format!("{inner:#}"),
                    other => other.to_string(),
                };
                tracing::error!(error = %cause, "recompute failed");
                let attempts = self.attempts_of(target.id).await? + 1;
                let gave_up = attempts >= MAX_ATTEMPTS;
                let wanted = self.wanted_of(target.id).await?;
                self.record_run(
                    job,
                    worker_id,
                    wanted,
                    if gave_up { "failed" } else { "retrying" },
                    attempts,
                    Some(cause.clone()),
                    started,
                )
                .await?;
                recompute_target::Entity::update_many()
                    .col_expr(recompute_target::Column::Attempts, Expr::value(attempts))
                    .col_expr(
                        recompute_target::Column::NextAttemptMs,
                        Expr::value(now_ms() + backoff_ms(self.config.retry_base_ms, attempts)),
                    )
                    .col_expr(
                        recompute_target::Column::LastError,
                        Expr::value(cause.clone()),
                    )
                    // Not pending once given up: the next data change re-arms it.
                    .col_expr(recompute_target::Column::Pending, Expr::value(!gave_up))
                    .col_expr(
                        recompute_target::Column::PendingSinceMs,
                        Expr::value(
                            now_ms() + backoff_ms(self.config.retry_base_ms, attempts)
                                - self.config.sweep_grace_ms,
                        ),
                    )
                    .col_expr(
                        recompute_target::Column::LeaseOwner,
                        Expr::value(Option::<String>::None),
                    )
                    .col_expr(recompute_target::Column::LeaseUntilMs, Expr::value(0i64))
                    .filter(recompute_target::Column::Id.eq(target.id))
                    .exec(&self.db)
                    .await?;
                if gave_up {
                    self.alert_job_failed(job, wanted, attempts, &cause).await?;
                }
                return Ok(Some(RunOutcome::Failed(msg)));
            }
        }
        Ok(None)
    }

    /// Records that a recompute gave up on `version`, once per (target,
    /// version); the sweeper mails it with the others given up meanwhile
    /// ([`Services::flush_job_alerts`]).
    async fn alert_job_failed(
        &self,
        job: &RecomputeJob,
        version: i64,
        attempts: i32,
        cause: &str,
    ) -> AppResult<()> {
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let res = job_alert::Entity::insert(job_alert::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(job.agency_id),
            kind: Set(job.kind.clone()),
            target_id: Set(job.target_id),
            data_version: Set(version),
            attempts: Set(attempts),
            error: Set(cause.chars().take(2_000).collect()),
            failed_at: Set(now()),
            notified_at: Set(None),
            batch_id: Set(None),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns([
                job_alert::Column::AgencyId,
                job_alert::Column::Kind,
                job_alert::Column::TargetId,
                job_alert::Column::DataVersion,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await;
        let hooks = match res {
            // A new failure (not one recorded before): webhooks hear of it
            // in the same transaction.
            Ok(n) if n > 0 => {
                let data = serde_json::json!({
                    "kind": job.kind, "target_id": job.target_id, "data_version": version,
                    "attempts": attempts, "error": cause.chars().take(500).collect::<String>(),
                });
                crate::infra::webhooks::emit(
                    &txn,
                    job.agency_id,
                    crate::infra::webhooks::JOB_FAILED,
                    data,
                )
                .await?
            }
            Ok(_) | Err(sea_orm::DbErr::RecordNotInserted) => 0,
            Err(e) => return Err(AppError::from(e)),
        };
        txn.commit()
            .await
            .context("while recording a failed-job alert")?;
        if hooks > 0 {
            self.wake_webhooks(job.agency_id).await;
        }
        Ok(())
    }

    /// Sweeper: for each agency whose failed jobs have gone quiet for the
    /// alert window (or whose oldest waited twelve windows), one email per
    /// owner/admin listing every failure not told yet. The failures are
    /// claimed and the emails queued in one transaction, so each failure is
    /// in exactly one email. Returns how many emails were queued.
    async fn attempts_of(&self, id: Uuid) -> AppResult<i32> {
        Ok(recompute_target::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(|t| t.attempts)
            .unwrap_or(0))
    }

    async fn wanted_of(&self, id: Uuid) -> AppResult<i64> {
        Ok(recompute_target::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(|t| t.wanted_version)
            .unwrap_or(0))
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_run(
        &self,
        job: &RecomputeJob,
        worker_id: &str,
        version: i64,
        status: &str,
        attempt: i32,
        error: Option<String>,
        started_ms: i64,
    ) -> AppResult<()> {
        let started_at =
            chrono::DateTime::from_timestamp_millis(started_ms).unwrap_or_else(crate::now);
        job_run::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(job.agency_id),
            kind: Set(job.kind.clone()),
            target_id: Set(job.target_id),
            data_version: Set(version),
            status: Set(status.into()),
            attempt: Set(attempt),
            error: Set(error),
            worker_id: Set(worker_id.into()),
            started_at: Set(started_at),
            finished_at: Set(Some(crate::now())),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// Computes and stores one target; returns the data version it reflects.
    async fn compute_target(&self, job: &RecomputeJob) -> AppResult<i64> {
        let version = self.compute_target_alone(job).await?;
        // Customer tracks read what the other kinds produce.
        self.touch_tracks_after(job).await?;
        Ok(version)
    }

    async fn compute_target_alone(&self, job: &RecomputeJob) -> AppResult<i64> {
        match job.kind.as_str() {
            KIND_QUESTIONNAIRE => {
                self.recompute_questionnaire_summary(job.agency_id, job.target_id)
                    .await
            }
            crate::research::hypotheses::KIND_HYPOTHESES => {
                self.recompute_client_hypotheses(job.agency_id, job.target_id)
                    .await
            }
            crate::research::ux::KIND_UX => {
                self.recompute_client_ux(job.agency_id, job.target_id).await
            }
            crate::infra::ledger::KIND_CONTACTS => {
                self.recompute_client_contacts(job.agency_id, job.target_id)
                    .await
            }
            crate::infra::ledger::KIND_TRACKS => {
                self.recompute_client_tracks(job.agency_id, job.target_id)
                    .await
            }
            other => Err(AppError::Unexpected(anyhow::anyhow!(
                "unknown recompute kind {other}"
            ))),
        }
    }

    /// Pushes jobs again for targets that stayed pending too long (a lost
    /// message, a crashed worker, a failed push, or a retry whose backoff is
    /// over). Returns how many were pushed.
    pub async fn sweep(&self) -> AppResult<usize> {
        let now = now_ms();
        let stale = recompute_target::Entity::find()
            .filter(recompute_target::Column::Pending.eq(true))
            .filter(recompute_target::Column::PendingSinceMs.lt(now - self.config.sweep_grace_ms))
            .filter(recompute_target::Column::LeaseUntilMs.lt(now))
            .order_by_asc(recompute_target::Column::PendingSinceMs)
            .limit(500)
            .all(&self.db)
            .await
            .context("while looking for stale recompute targets")?;
        let mut pushed = 0;
        for t in stale {
            // Claim the re-push so several sweepers do not all push.
            let claimed = recompute_target::Entity::update_many()
                .col_expr(recompute_target::Column::PendingSinceMs, Expr::value(now))
                .filter(recompute_target::Column::Id.eq(t.id))
                .filter(recompute_target::Column::PendingSinceMs.eq(t.pending_since_ms))
                .exec(&self.db)
                .await?;
            if claimed.rows_affected == 1 {
                self.enqueue_recompute(RecomputeJob {
                    agency_id: t.agency_id,
                    kind: t.kind,
                    target_id: t.target_id,
                })
                .await;
                pushed += 1;
            }
        }
        Ok(pushed)
    }

    /// Job runs of the caller's agency (admins only).
    pub async fn list_job_runs(
        &self,
        ctx: &RequestCtx,
        status: Option<String>,
        page: PageParams,
    ) -> AppResult<Page<JobRunView>> {
        ctx.require(Perm::Admin)?;
        let page = page.parse()?;
        let mut q = job_run::Entity::find().filter(job_run::Column::AgencyId.eq(ctx.agency_id));
        if let Some(s) = status {
            if !["succeeded", "retrying", "failed"].contains(&s.as_str()) {
                return Err(AppError::field(
                    "status",
                    "must be succeeded, retrying or failed",
                ));
            }
            q = q.filter(job_run::Column::Status.eq(s));
        }
        page.fetch(q, job_run::Column::Id, &self.db, JobRunView::from)
            .await
    }
}

crate::has_id!(JobRunView);

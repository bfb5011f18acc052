//! The recompute ledger: which derived results are stale, who is computing
//! them, and what each run did. Every area records here, in its write's
//! transaction, that a target has a new data version; the worker ([`crate::jobs`])
//! computes it. See `queue.rs` for why the ledger, not the queue, is the
//! source of truth.

use chrono::Utc;
use entity::recompute_target;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use crate::infra::error::{AppError, AppResult};
use crate::infra::queue::RecomputeJob;
use crate::{Services, new_id, now};

pub const KIND_QUESTIONNAIRE: &str = "questionnaire_summary";
/// A client's contacts: rescored (and the model retrained) by the worker.
/// Here, below every area, so that any write that changes what a score
/// looks at (contacts, subscriptions, events, purchases) can mark it.
pub const KIND_CONTACTS: &str = "client_contacts";
/// A client's customer tracks: their computed parts, recomputed by the
/// worker after whatever they read changed (here, below every area, so
/// that the QFD matrix and the jobs of the other kinds can mark it).
pub const KIND_TRACKS: &str = "client_tracks";
/// How long one worker holds a target while computing it.
pub const LEASE_MS: i64 = 120_000;
/// Failed runs are retried this many times, with exponential backoff.
pub const MAX_ATTEMPTS: i32 = 5;

pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Creates the ledger row of a new target (version 0, nothing pending).
pub async fn ensure_target<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    kind: &str,
    target_id: Uuid,
) -> AppResult<()> {
    recompute_target::ActiveModel {
        id: Set(new_id()),
        agency_id: Set(agency_id),
        kind: Set(kind.into()),
        target_id: Set(target_id),
        wanted_version: Set(0),
        computed_version: Set(0),
        pending: Set(false),
        pending_since_ms: Set(0),
        lease_owner: Set(None),
        lease_until_ms: Set(0),
        next_attempt_ms: Set(0),
        attempts: Set(0),
        last_error: Set(None),
        updated_at: Set(now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// A target, created on first use.
pub async fn ensure_target_exists<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    kind: &str,
    target_id: Uuid,
) -> AppResult<()> {
    let exists = recompute_target::Entity::find()
        .filter(recompute_target::Column::AgencyId.eq(agency_id))
        .filter(recompute_target::Column::Kind.eq(kind))
        .filter(recompute_target::Column::TargetId.eq(target_id))
        .one(db)
        .await?
        .is_some();
    if !exists {
        // ON CONFLICT: a concurrent writer may create it first, and on
        // PostgreSQL a failed INSERT would abort the caller's transaction.
        let res = recompute_target::Entity::insert(recompute_target::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(agency_id),
            kind: Set(kind.into()),
            target_id: Set(target_id),
            wanted_version: Set(0),
            computed_version: Set(0),
            pending: Set(false),
            pending_since_ms: Set(0),
            lease_owner: Set(None),
            lease_until_ms: Set(0),
            next_attempt_ms: Set(0),
            attempts: Set(0),
            last_error: Set(None),
            updated_at: Set(now()),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns([
                recompute_target::Column::AgencyId,
                recompute_target::Column::Kind,
                recompute_target::Column::TargetId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(db)
        .await;
        match res {
            Ok(_) | Err(sea_orm::DbErr::RecordNotInserted) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Bumps a target's wanted version by one inside the caller's transaction
/// (for targets whose version counts changes, e.g. a client's); true when the
/// caller must push a job after commit.
pub async fn bump_target<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    kind: &str,
    target_id: Uuid,
) -> AppResult<bool> {
    ensure_target_exists(db, agency_id, kind, target_id).await?;
    let scope = |q: sea_orm::UpdateMany<recompute_target::Entity>| {
        q.filter(recompute_target::Column::AgencyId.eq(agency_id))
            .filter(recompute_target::Column::Kind.eq(kind))
            .filter(recompute_target::Column::TargetId.eq(target_id))
    };
    scope(recompute_target::Entity::update_many())
        .col_expr(
            recompute_target::Column::WantedVersion,
            Expr::col(recompute_target::Column::WantedVersion).add(1),
        )
        .exec(db)
        .await?;
    let flipped = scope(recompute_target::Entity::update_many())
        .col_expr(recompute_target::Column::Pending, Expr::value(true))
        .col_expr(
            recompute_target::Column::PendingSinceMs,
            Expr::value(Utc::now().timestamp_millis()),
        )
        .col_expr(recompute_target::Column::Attempts, Expr::value(0))
        .col_expr(recompute_target::Column::NextAttemptMs, Expr::value(0i64))
        .filter(recompute_target::Column::Pending.eq(false))
        .exec(db)
        .await?;
    Ok(flipped.rows_affected == 1)
}

/// Counts one change of something whose results are computed on read (no
/// job is queued, the target never becomes pending): its data version.
pub async fn bump_version<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    kind: &str,
    target_id: Uuid,
) -> AppResult<()> {
    ensure_target_exists(db, agency_id, kind, target_id).await?;
    recompute_target::Entity::update_many()
        .col_expr(
            recompute_target::Column::WantedVersion,
            Expr::col(recompute_target::Column::WantedVersion).add(1),
        )
        .col_expr(recompute_target::Column::UpdatedAt, Expr::value(now()))
        .filter(recompute_target::Column::AgencyId.eq(agency_id))
        .filter(recompute_target::Column::Kind.eq(kind))
        .filter(recompute_target::Column::TargetId.eq(target_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The version a target's data is at (0 before any).
pub async fn wanted_version<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    kind: &str,
    target_id: Uuid,
) -> AppResult<i64> {
    Ok(recompute_target::Entity::find()
        .filter(recompute_target::Column::AgencyId.eq(agency_id))
        .filter(recompute_target::Column::Kind.eq(kind))
        .filter(recompute_target::Column::TargetId.eq(target_id))
        .one(db)
        .await?
        .map(|t| t.wanted_version)
        .unwrap_or(0))
}

/// Stores (replaces) the derived result of a target.
pub async fn store_snapshot<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    kind: &str,
    target_id: Uuid,
    version: i64,
    payload: serde_json::Value,
) -> AppResult<()> {
    store_snapshots(db, agency_id, target_id, version, vec![(kind, payload)]).await
}

/// Upserts several snapshots of one target and version in one statement
/// (atomic without a transaction of its own: one round trip, not four).
pub async fn store_snapshots<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    target_id: Uuid,
    version: i64,
    items: Vec<(&str, serde_json::Value)>,
) -> AppResult<()> {
    use entity::snapshot;
    if items.is_empty() {
        return Ok(());
    }
    let t = now();
    snapshot::Entity::insert_many(
        items
            .into_iter()
            .map(|(kind, payload)| snapshot::ActiveModel {
                id: Set(new_id()),
                agency_id: Set(agency_id),
                kind: Set(kind.into()),
                target_id: Set(target_id),
                data_version: Set(version),
                computed_at: Set(t),
                payload: Set(payload),
            }),
    )
    .on_conflict(
        sea_orm::sea_query::OnConflict::columns([
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
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Records, inside the writer's transaction, that `target` now has data
/// version `version`. Returns true when the caller must push a job after
/// commit (the target was not pending yet): that is the coalescing.
pub async fn mark_dirty<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    kind: &str,
    target_id: Uuid,
    version: i64,
) -> AppResult<bool> {
    let scope = |q: sea_orm::UpdateMany<recompute_target::Entity>| {
        q.filter(recompute_target::Column::AgencyId.eq(agency_id))
            .filter(recompute_target::Column::Kind.eq(kind))
            .filter(recompute_target::Column::TargetId.eq(target_id))
    };
    let bumped = scope(recompute_target::Entity::update_many())
        .col_expr(
            recompute_target::Column::WantedVersion,
            Expr::value(version),
        )
        .col_expr(recompute_target::Column::UpdatedAt, Expr::value(now()))
        .exec(db)
        .await?;
    if bumped.rows_affected == 0 {
        return Err(AppError::Unexpected(anyhow::anyhow!(
            "no recompute target for {kind} {target_id}"
        )));
    }
    let newly_pending = scope(recompute_target::Entity::update_many())
        .col_expr(recompute_target::Column::Pending, Expr::value(true))
        .col_expr(
            recompute_target::Column::PendingSinceMs,
            Expr::value(now_ms()),
        )
        .col_expr(recompute_target::Column::Attempts, Expr::value(0))
        .col_expr(recompute_target::Column::NextAttemptMs, Expr::value(0i64))
        .filter(recompute_target::Column::Pending.eq(false))
        .exec(db)
        .await?;
    Ok(newly_pending.rows_affected == 1)
}

impl Services {
    /// Pushes a wake-up job; a failure is logged, not returned: the sweeper
    /// pushes again for every target still pending.
    pub async fn enqueue_recompute(&self, job: RecomputeJob) {
        if let Err(e) = self.queue.push(job.clone()).await {
            tracing::warn!(error = %format!("{e:#}"), target_id = %job.target_id, "could not push a recompute job; the sweeper will retry");
        }
    }
}

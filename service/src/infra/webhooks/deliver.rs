//! Delivering webhooks: a worker claims due deliveries under a short lease
//! it renews while it sends, POSTs each (signed, 10 s timeout, redirects not
//! followed, public addresses only unless configured otherwise) and records
//! `delivered`, or `retrying` with exponential backoff and jitter until the
//! retry horizon (24 h by default) has passed since the event, then
//! `failed`. An endpoint that has failed for the whole horizon is disabled
//! (the sweeper mails the agency's owners and admins: `jobs::alerts`).
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use entity::{webhook_delivery as wd, webhook_endpoint as we, webhook_event};
use futures::StreamExt;
use rand::Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::{secret_binding, sign, ssrf};
use crate::infra::error::{AppError, AppResult};
use crate::infra::lease::Lease;
use crate::{Services, now};

/// Rows claimed per round.
const BATCH: u64 = 500;
/// Requests in flight per sending loop.
const CONCURRENCY: usize = 64;
/// How long a claim lasts unless renewed (renewed every third of it).
pub const LEASE_MS: i64 = 15_000;
/// The longest one request may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between two attempts.
const MAX_BACKOFF_MS: i64 = 3_600_000;
/// Statuses a worker sends.
const DUE: [&str; 2] = ["pending", "retrying"];

/// One client per policy, shared by every sending loop of the process.
fn client(allow_private: bool) -> AppResult<&'static reqwest::Client> {
    static PUBLIC: OnceLock<reqwest::Client> = OnceLock::new();
    static ANY: OnceLock<reqwest::Client> = OnceLock::new();
    let cell = if allow_private { &ANY } else { &PUBLIC };
    if let Some(c) = cell.get() {
        return Ok(c);
    }
    let mut b = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would connect wherever the name points: none.
        .no_proxy()
        .user_agent("Growthpoint-Webhooks/1")
        .pool_max_idle_per_host(CONCURRENCY);
    if !allow_private {
        b = b.dns_resolver(Arc::new(ssrf::PublicOnly));
    }
    let c = b
        .build()
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("webhook HTTP client: {e}")))?;
    Ok(cell.get_or_init(|| c))
}

/// The wait before attempt `attempts + 1`: base · 2^(attempts−1), at most
/// an hour, ±20 % jitter so that a recovered receiver is not hit by every
/// retry at once.
pub fn backoff_ms(base: i64, attempts: i32) -> i64 {
    let plain = base
        .saturating_mul(1 << (attempts - 1).clamp(0, 20))
        .min(MAX_BACKOFF_MS);
    let jitter = rand::rng().random_range(0.8..1.2);
    ((plain as f64) * jitter) as i64
}

/// `items` in turns, one of each key per turn, each key's own in their
/// order: the batch is sent in this order, so a receiver with hundreds of
/// deliveries due does not make the other endpoints in the batch wait
/// behind all of its requests (a slow one takes up to [`TIMEOUT`] each).
fn in_turns<T, K: std::hash::Hash + Eq>(items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut turns = std::collections::HashMap::new();
    let mut keyed: Vec<(usize, T)> = items
        .into_iter()
        .map(|item| {
            let turn = turns.entry(key(&item)).or_insert(0usize);
            *turn += 1;
            (*turn, item)
        })
        .collect();
    // Stable: within a turn, the order the items came in.
    keyed.sort_by_key(|(turn, _)| *turn);
    keyed.into_iter().map(|(_, item)| item).collect()
}

/// What one attempt came to.
struct Attempt {
    ok: bool,
    code: Option<i32>,
    error: Option<String>,
    ms: i32,
}

impl Services {
    /// Claims due deliveries and sends them until none is due; returns how
    /// many were delivered.
    pub async fn deliver_webhooks(&self, worker_id: &str) -> AppResult<usize> {
        let mut delivered = 0;
        loop {
            let Some((lease, claimed)) = self.claim_webhooks(worker_id).await? else {
                return Ok(delivered);
            };
            let endpoints: std::collections::HashMap<Uuid, we::Model> = we::Entity::find()
                .filter(we::Column::Id.is_in(claimed.iter().map(|d| d.endpoint_id)))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|e| (e.id, e))
                .collect();
            let events: std::collections::HashMap<Uuid, webhook_event::Model> =
                webhook_event::Entity::find()
                    .filter(webhook_event::Column::Id.is_in(claimed.iter().map(|d| d.event_id)))
                    .all(&self.db)
                    .await?
                    .into_iter()
                    .map(|e| (e.id, e))
                    .collect();
            let (endpoints, events, lease) =
                (Arc::new(endpoints), Arc::new(events), Arc::new(lease));
            let token = lease.token.clone();
            let sending = futures::stream::iter(claimed)
                .map(|d| {
                    let (this, lease) = (self.clone(), lease.clone());
                    let ep = endpoints.get(&d.endpoint_id).cloned();
                    let ev = events.get(&d.event_id).cloned();
                    // A task of its own: a request under way finishes even
                    // if this loop is cancelled (it is sent again later).
                    tokio::spawn(async move { this.post_one(&lease, d, ep, ev).await })
                })
                .buffer_unordered(CONCURRENCY)
                .filter_map(|r| async move { r.ok().flatten() })
                // Outcomes are recorded as they come, a statement per
                // handful: what a crash could send again is at most the
                // requests in flight and one unrecorded handful.
                .ready_chunks(CONCURRENCY)
                .then(|chunk| self.record_outcomes(&token, chunk))
                .fold(0, |n, ok| async move { n + ok });
            let sent = tokio::select! {
                sent = sending => sent,
                never = self.keep_webhook_lease(&lease) => match never {},
            };
            delivered += sent;
        }
    }

    async fn claim_webhooks(&self, worker_id: &str) -> AppResult<Option<(Lease, Vec<wd::Model>)>> {
        let now_ms = Utc::now().timestamp_millis();
        let ids: Vec<Uuid> = wd::Entity::find()
            .filter(wd::Column::Status.is_in(DUE))
            .filter(wd::Column::NextAttemptMs.lte(now_ms))
            .filter(wd::Column::LeaseUntilMs.lt(now_ms))
            .order_by_asc(wd::Column::NextAttemptMs)
            .order_by_asc(wd::Column::Id)
            .select_only()
            .column(wd::Column::Id)
            .limit(BATCH)
            .into_tuple()
            .all(&self.db)
            .await?;
        if ids.is_empty() {
            return Ok(None);
        }
        let lease = Lease::new(worker_id, ids, LEASE_MS, now_ms);
        // The conditions are checked again on each row as it is updated:
        // two workers never both claim one.
        wd::Entity::update_many()
            .col_expr(wd::Column::LeaseOwner, Expr::value(lease.token.clone()))
            .col_expr(wd::Column::LeaseUntilMs, Expr::value(now_ms + LEASE_MS))
            .filter(wd::Column::Id.is_in(lease.ids.clone()))
            .filter(wd::Column::Status.is_in(DUE))
            .filter(wd::Column::LeaseUntilMs.lt(now_ms))
            .exec(&self.db)
            .await?;
        let mut claimed = wd::Entity::find()
            .filter(wd::Column::Id.is_in(lease.ids.clone()))
            .filter(wd::Column::LeaseOwner.eq(lease.token.clone()))
            .all(&self.db)
            .await?;
        claimed.sort_by_key(|d| (d.next_attempt_ms, d.id));
        Ok(Some((lease, in_turns(claimed, |d| d.endpoint_id))))
    }

    async fn keep_webhook_lease(&self, lease: &Lease) -> std::convert::Infallible {
        lease
            .keep("webhooks", |until| async move {
                wd::Entity::update_many()
                    .col_expr(wd::Column::LeaseUntilMs, Expr::value(until))
                    .filter(wd::Column::Id.is_in(lease.ids.clone()))
                    .filter(wd::Column::LeaseOwner.eq(lease.token.clone()))
                    .exec(&self.db)
                    .await
                    .map(|_| ())
            })
            .await
    }

    /// The endpoint's secrets that sign now: the current one, and the one
    /// before it during a rotation's overlap.
    fn signing_secrets(&self, ep: &we::Model) -> Result<Vec<String>, String> {
        let sealer = self
            .config
            .sealer
            .as_ref()
            .ok_or("no secret key configured (GROWTHPOINT_SECRET_KEY)")?;
        let bound = secret_binding(ep.agency_id, ep.id);
        let mut out = vec![sealer.open(&ep.secret_sealed, &bound)?];
        if let (Some(prev), Some(until)) = (&ep.previous_secret_sealed, ep.previous_secret_until)
            && until > now()
        {
            out.push(sealer.open(prev, &bound)?);
        }
        Ok(out)
    }

    async fn attempt(&self, ep: &we::Model, ev: &webhook_event::Model) -> Attempt {
        let started = Instant::now();
        let fail = |e: String| Attempt {
            ok: false,
            code: None,
            error: Some(e),
            ms: started.elapsed().as_millis() as i32,
        };
        let allow_private = self.config.webhooks_allow_private;
        // Literal addresses never reach the resolver: checked here.
        if let Err(e) = ssrf::check_url(&ep.url, allow_private) {
            return fail(format!("url {e}"));
        }
        let secrets = match self.signing_secrets(ep) {
            Ok(s) => s,
            Err(e) => return fail(format!("cannot sign: {e}")),
        };
        let client = match client(allow_private) {
            Ok(c) => c,
            Err(e) => return fail(e.to_string()),
        };
        let body = serde_json::to_vec(&ev.payload).unwrap_or_default();
        let msg_id = ev.id.to_string();
        let ts = Utc::now().timestamp();
        let sig = match sign::signature_header(&secrets, &msg_id, ts, &body) {
            Ok(s) => s,
            Err(e) => return fail(format!("cannot sign: {e}")),
        };
        let sent = client
            .post(&ep.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &msg_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(mut r) => {
                let code = r.status().as_u16() as i32;
                let ok = r.status().is_success();
                // Read (a bounded part of) the answer so the connection
                // can be reused; its content is not kept.
                let mut read = 0;
                while let Ok(Some(chunk)) = r.chunk().await {
                    read += chunk.len();
                    if read > 64 * 1024 {
                        break;
                    }
                }
                let ms = started.elapsed().as_millis() as i32;
                Attempt {
                    ok,
                    code: Some(code),
                    error: (!ok).then(|| format!("HTTP {code}")),
                    ms,
                }
            }
            Err(e) => {
                // The whole chain: "error sending request" alone says little.
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg.push_str(": ");
                    msg.push_str(&s.to_string());
                    src = s.source();
                }
                fail(msg.chars().take(500).collect())
            }
        }
    }

    /// Sends one claimed delivery; the row as it is to be recorded (None:
    /// not sent, the claim is about to lapse).
    async fn post_one(
        &self,
        lease: &Lease,
        d: wd::Model,
        ep: Option<we::Model>,
        ev: Option<webhook_event::Model>,
    ) -> Option<wd::Model> {
        if !lease.holds() {
            tracing::warn!(delivery = %d.id, "webhook lease about to lapse; not sending");
            return None;
        }
        let a = match (&ep, &ev) {
            (Some(ep), Some(ev)) if ep.enabled => self.attempt(ep, ev).await,
            (Some(_), Some(_)) => Attempt {
                ok: false,
                code: None,
                error: Some("endpoint disabled".into()),
                ms: 0,
            },
            _ => Attempt {
                ok: false,
                code: None,
                error: Some("endpoint or event deleted".into()),
                ms: 0,
            },
        };
        let gone = ep.as_ref().is_none_or(|e| !e.enabled) || ev.is_none();
        let attempts = d.attempts + 1;
        let t = now();
        let horizon = chrono::Duration::milliseconds(self.config.webhook_retry_horizon_ms);
        let give_up = gone || t - d.created_at >= horizon;
        let (status, next) = if a.ok {
            ("delivered", 0)
        } else if give_up {
            ("failed", 0)
        } else {
            let last = (d.created_at + horizon).timestamp_millis();
            let next = Utc::now().timestamp_millis()
                + backoff_ms(self.config.webhook_retry_base_ms, attempts);
            ("retrying", next.min(last))
        };
        if !a.ok {
            tracing::info!(delivery = %d.id, status, error = ?a.error, "webhook not delivered");
        }
        if let Some(ep) = ep.filter(|e| e.enabled)
            && let Err(e) = self.endpoint_health(&ep, a.ok, a.error.as_deref()).await
        {
            tracing::error!(endpoint = %ep.id, error = %e, "could not update a webhook endpoint's health");
        }
        Some(wd::Model {
            status: status.into(),
            attempts,
            next_attempt_ms: next,
            last_status_code: a.code,
            last_error: a.error,
            last_duration_ms: Some(a.ms),
            lease_owner: None,
            lease_until_ms: 0,
            delivered_at: a.ok.then_some(t),
            updated_at: t,
            ..d
        })
    }

    /// Writes the outcomes of a handful of deliveries in one statement, to
    /// the rows this claim still holds; returns how many were delivered.
    async fn record_outcomes(&self, token: &str, rows: Vec<wd::Model>) -> usize {
        use sea_orm::{ActiveModelTrait, IntoActiveModel};
        let delivered = rows.iter().filter(|d| d.status == "delivered").count();
        let models = rows.into_iter().map(|d| d.into_active_model().reset_all());
        let written = wd::Entity::insert_many(models)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(wd::Column::Id)
                    .update_columns([
                        wd::Column::Status,
                        wd::Column::Attempts,
                        wd::Column::NextAttemptMs,
                        wd::Column::LastStatusCode,
                        wd::Column::LastError,
                        wd::Column::LastDurationMs,
                        wd::Column::LeaseOwner,
                        wd::Column::LeaseUntilMs,
                        wd::Column::DeliveredAt,
                        wd::Column::UpdatedAt,
                    ])
                    // A claim that lapsed and was taken by another worker
                    // leaves the row to that worker.
                    .action_and_where(sea_orm::sea_query::ExprTrait::eq(
                        Expr::col((wd::Entity, wd::Column::LeaseOwner)),
                        token.to_owned(),
                    ))
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await;
        match written {
            Ok(_) | Err(sea_orm::DbErr::RecordNotInserted) => {}
            Err(e) => tracing::error!(error = %e, "could not record webhook outcomes"),
        }
        delivered
    }

    /// Marks since when an endpoint fails (cleared by any success); one
    /// failing for the whole retry horizon is disabled ([`Self::disable_endpoint`]).
    async fn endpoint_health(
        &self,
        ep: &we::Model,
        ok: bool,
        error: Option<&str>,
    ) -> AppResult<()> {
        if ok {
            if ep.failing_since.is_some() {
                we::Entity::update_many()
                    .col_expr(
                        we::Column::FailingSince,
                        Expr::value(Option::<chrono::DateTime<Utc>>::None),
                    )
                    .filter(we::Column::Id.eq(ep.id))
                    .exec(&self.db)
                    .await?;
            }
            return Ok(());
        }
        let Some(since) = ep.failing_since else {
            we::Entity::update_many()
                .col_expr(we::Column::FailingSince, Expr::value(now()))
                .filter(we::Column::Id.eq(ep.id))
                .filter(we::Column::FailingSince.is_null())
                .exec(&self.db)
                .await?;
            return Ok(());
        };
        if now() - since < chrono::Duration::milliseconds(self.config.webhook_retry_horizon_ms) {
            return Ok(());
        }
        self.disable_endpoint(ep, since, error.unwrap_or("unknown error"))
            .await
    }

    /// Sweeper: endpoints failing for the whole horizon whose last delivery
    /// has already given up (no attempt left to notice it) are disabled.
    pub async fn disable_failing_webhooks(&self) -> AppResult<usize> {
        let before = now() - chrono::Duration::milliseconds(self.config.webhook_retry_horizon_ms);
        let failing = we::Entity::find()
            .filter(we::Column::Enabled.eq(true))
            .filter(we::Column::FailingSince.lte(before))
            .limit(100)
            .all(&self.db)
            .await?;
        for ep in &failing {
            if let Some(since) = ep.failing_since {
                self.disable_endpoint(ep, since, "deliveries kept failing")
                    .await?;
            }
        }
        Ok(failing.len())
    }

    /// Disables an endpoint and fails its waiting deliveries, in one
    /// transaction, by whichever worker gets there first; the admins' email
    /// is queued by the sweeper (`alert_pending`).
    async fn disable_endpoint(
        &self,
        ep: &we::Model,
        since: chrono::DateTime<Utc>,
        error: &str,
    ) -> AppResult<()> {
        let t = now();
        let reason = format!(
            "every delivery failed since {} (last: {})",
            since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            error
        );
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let hit = we::Entity::update_many()
            .col_expr(we::Column::Enabled, Expr::value(false))
            .col_expr(we::Column::DisabledReason, Expr::value(reason))
            // The sweeper mails the admins (`jobs::alerts`).
            .col_expr(we::Column::AlertPending, Expr::value(true))
            .col_expr(we::Column::UpdatedAt, Expr::value(t))
            .filter(we::Column::Id.eq(ep.id))
            .filter(we::Column::Enabled.eq(true))
            .exec(&txn)
            .await?;
        if hit.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(());
        }
        wd::Entity::update_many()
            .col_expr(wd::Column::Status, Expr::value("failed"))
            .col_expr(wd::Column::LastError, Expr::value("endpoint disabled"))
            .col_expr(wd::Column::NextAttemptMs, Expr::value(0i64))
            .col_expr(wd::Column::UpdatedAt, Expr::value(t))
            .filter(wd::Column::AgencyId.eq(ep.agency_id))
            .filter(wd::Column::EndpointId.eq(ep.id))
            .filter(wd::Column::Status.is_in(DUE))
            .filter(wd::Column::LeaseUntilMs.lt(Utc::now().timestamp_millis()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        tracing::warn!(endpoint = %ep.id, agency_id = %ep.agency_id, "webhook endpoint disabled");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::in_turns;

    #[test]
    fn a_batch_is_sent_in_turns_of_one_delivery_per_endpoint() {
        // Endpoint a has five due, b two, c one, in claim order.
        let claimed = vec![
            ("a", 1),
            ("a", 2),
            ("b", 1),
            ("a", 3),
            ("a", 4),
            ("c", 1),
            ("b", 2),
            ("a", 5),
        ];
        assert_eq!(
            in_turns(claimed, |d| d.0),
            [
                ("a", 1),
                ("b", 1),
                ("c", 1),
                ("a", 2),
                ("b", 2),
                ("a", 3),
                ("a", 4),
                ("a", 5),
            ]
        );
        assert!(in_turns(Vec::<(u8, u8)>::new(), |d| d.0).is_empty());
    }
}

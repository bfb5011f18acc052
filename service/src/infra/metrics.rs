//! Per-process Prometheus metrics: what this process counted (HTTP requests,
//! jobs it ran, emails it handed over, rows it imported) plus a few gauges
//! read from the database when scraped (the recompute backlog, emails not
//! yet sent). Labels name routes, kinds and statuses, never a tenant: no
//! agency ids, no addresses, no raw paths.
//!
//! The text is the Prometheus exposition format 0.0.4
//! (`prometheus_client::encoding::prometheus_text`), which every Prometheus
//! server and text parser reads.
use std::time::Duration;

use entity::{email_delivery, recompute_target};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sea_orm::{ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QuerySelect};

use crate::Services;

/// The `Content-Type` of [`Services::metrics_text`].
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The longest a scrape waits for its database gauges; past it they are
/// left out and `growthpoint_metrics_database_up` says 0.
pub const DB_GAUGES_TIMEOUT: Duration = Duration::from_secs(2);

/// Request latencies, seconds (Prometheus' default buckets, plus 30 s for
/// large imports).
const HTTP_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Job durations, seconds: a debounced recompute takes at least 0.25 s, a
/// large rescoring minutes.
const JOB_BUCKETS: [f64; 11] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    /// The route's pattern (`/api/v1/clients/{id}`), or `unmatched`.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DbKindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DbStatusLabels {
    status: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn http_histogram() -> Histogram {
    Histogram::new(HTTP_BUCKETS)
}

fn job_histogram() -> Histogram {
    Histogram::new(JOB_BUCKETS)
}

/// What an import stored rows into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportKind {
    Responses,
    Contacts,
    Subscribers,
    Purchases,
    ChannelFigures,
}

impl ImportKind {
    pub fn label(self) -> &'static str {
        match self {
            ImportKind::Responses => "responses",
            ImportKind::Contacts => "contacts",
            ImportKind::Subscribers => "subscribers",
            ImportKind::Purchases => "purchases",
            ImportKind::ChannelFigures => "channel_figures",
        }
    }
}

/// The counters of one process. Cheap to update from any thread.
pub struct Metrics {
    /// Shown in the backlog gauges even when none is pending.
    recompute_kinds: Vec<&'static str>,
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: HistogramFamily<RouteLabels>,
    jobs: Family<JobLabels, Counter>,
    job_seconds: HistogramFamily<KindLabels>,
    emails: Family<StatusLabels, Counter>,
    import_rows: Family<KindLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(&[])
    }
}

impl Metrics {
    /// `recompute_kinds`: the kinds of recompute target there are
    /// (`service::jobs::RECOMPUTE_KINDS`, above this module).
    pub fn new(recompute_kinds: &[&'static str]) -> Self {
        let mut registry = Registry::with_prefix("growthpoint");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds = HistogramFamily::<RouteLabels>::new_with_constructor(http_histogram);
        let jobs = Family::<JobLabels, Counter>::default();
        let job_seconds = HistogramFamily::<KindLabels>::new_with_constructor(job_histogram);
        let emails = Family::<StatusLabels, Counter>::default();
        let import_rows = Family::<KindLabels, Counter>::default();
        let info = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
        info.get_or_create(&vec![("version", env!("CARGO_PKG_VERSION"))])
            .set(1);
        registry.register("build_info", "The running version (always 1)", info);
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request (until its head is ready), by method and route pattern",
            request_seconds.clone(),
        );
        registry.register(
            "jobs",
            "Queue jobs this process ran, by kind and outcome (computed, fresh, busy, failed or error for recomputes; done or error for email wake-ups)",
            jobs.clone(),
        );
        registry.register(
            "job_duration_seconds",
            "Time this process spent on one queue job, by kind",
            job_seconds.clone(),
        );
        registry.register(
            "email_sends",
            "Delivery attempts this process recorded, by the status they left the delivery in (sent, deferred or failed)",
            emails.clone(),
        );
        registry.register(
            "import_rows",
            "Rows accepted by imports in this process, by import kind (rows per second: rate())",
            import_rows.clone(),
        );
        Self {
            recompute_kinds: recompute_kinds.to_vec(),
            registry,
            requests,
            request_seconds,
            jobs,
            job_seconds,
            emails,
            import_rows,
        }
    }

    /// One answered request. `route` must be a pattern, not a raw path.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route: route.to_owned(),
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabels {
                method,
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// One queue job run by this process. `kind` is one of the code's
    /// constants (the caller maps anything else to `other`).
    pub fn job_finished(&self, kind: &'static str, outcome: &'static str, seconds: f64) {
        self.jobs.get_or_create(&JobLabels { kind, outcome }).inc();
        self.job_seconds
            .get_or_create(&KindLabels { kind })
            .observe(seconds);
    }

    /// One delivery attempt recorded as `status` (`sent`, `deferred`, `failed`).
    pub fn email_recorded(&self, status: &'static str) {
        self.emails.get_or_create(&StatusLabels { status }).inc();
    }

    /// Rows an import accepted.
    pub fn rows_imported(&self, kind: ImportKind, rows: u64) {
        self.import_rows
            .get_or_create(&KindLabels { kind: kind.label() })
            .inc_by(rows);
    }

    /// This process's counters as Prometheus text.
    pub fn encode(&self, out: &mut String) {
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(out, &self.registry);
    }
}

/// HTTP methods as a closed set: a client may send any token as a method.
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("other")
}

#[derive(FromQueryResult)]
struct KindCount {
    kind: String,
    n: i64,
    oldest_ms: Option<i64>,
}

#[derive(FromQueryResult)]
struct StatusCount {
    status: String,
    n: i64,
}

/// The gauges read from the database at scrape time.
struct DbGauges {
    pending: Vec<KindCount>,
    deliveries: Vec<StatusCount>,
}

impl Services {
    /// Everything `/metrics` shows: this process's counters, then the
    /// database gauges (two aggregate queries over indexed columns: pending
    /// recompute targets, and emails not yet sent).
    pub async fn metrics_text(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        self.metrics.encode(&mut out);
        let gauges = if self.db_health.is_down() {
            None
        } else {
            match tokio::time::timeout(DB_GAUGES_TIMEOUT, self.db_gauges()).await {
                Ok(Ok(g)) => Some(g),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "metrics: database gauges failed");
                    None
                }
                Err(_) => {
                    tracing::warn!("metrics: database gauges timed out");
                    None
                }
            }
        };
        let mut registry = Registry::with_prefix("growthpoint");
        let up = Gauge::<i64>::default();
        up.set(i64::from(gauges.is_some()));
        registry.register(
            "metrics_database_up",
            "Whether this scrape could read the database gauges (1) or not (0)",
            up,
        );
        if let Some(g) = gauges {
            let pending = Family::<DbKindLabels, Gauge>::default();
            let oldest =
                Family::<DbKindLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
            let now = crate::infra::ledger::now_ms();
            for kind in &self.metrics.recompute_kinds {
                let labels = DbKindLabels {
                    kind: (*kind).to_owned(),
                };
                pending.get_or_create(&labels).set(0);
                oldest.get_or_create(&labels).set(0.0);
            }
            for k in g.pending {
                let labels = DbKindLabels { kind: k.kind };
                pending.get_or_create(&labels).set(k.n);
                let age_ms = k.oldest_ms.map_or(0, |t| (now - t).max(0));
                oldest.get_or_create(&labels).set(age_ms as f64 / 1000.0);
            }
            registry.register(
                "recompute_pending",
                "Recompute targets waiting for a worker (the queue's depth: the ledger decides what is computed), by kind",
                pending,
            );
            registry.register(
                "recompute_oldest_pending_seconds",
                "Age of the longest-waiting pending recompute target, by kind",
                oldest,
            );
            let deliveries = Family::<DbStatusLabels, Gauge>::default();
            // Every status shows, at 0 when no row has it.
            for status in UNSENT {
                deliveries
                    .get_or_create(&DbStatusLabels {
                        status: status.to_owned(),
                    })
                    .set(0);
            }
            for s in g.deliveries {
                deliveries
                    .get_or_create(&DbStatusLabels { status: s.status })
                    .set(s.n);
            }
            registry.register(
                "email_deliveries",
                "Email deliveries not sent, by status (queued and deferred are the backlog; sent ones are counted by growthpoint_email_sends_total)",
                deliveries,
            );
        }
        let _ = prometheus_text::encode(&mut out, &registry);
        out
    }

    async fn db_gauges(&self) -> Result<DbGauges, sea_orm::DbErr> {
        use sea_orm::sea_query::{Expr, ExprTrait};
        let pending = recompute_target::Entity::find()
            .select_only()
            .column(recompute_target::Column::Kind)
            .column_as(Expr::col(recompute_target::Column::Id).count(), "n")
            .column_as(
                Expr::col(recompute_target::Column::PendingSinceMs).min(),
                "oldest_ms",
            )
            .filter(recompute_target::Column::Pending.eq(true))
            .group_by(recompute_target::Column::Kind)
            .into_model::<KindCount>()
            .all(&self.db)
            .await?;
        let deliveries = email_delivery::Entity::find()
            .select_only()
            .column(email_delivery::Column::Status)
            .column_as(Expr::col(email_delivery::Column::Id).count(), "n")
            .filter(email_delivery::Column::Status.is_in(UNSENT))
            .group_by(email_delivery::Column::Status)
            .into_model::<StatusCount>()
            .all(&self.db)
            .await?;
        Ok(DbGauges {
            pending,
            deliveries,
        })
    }
}

/// The statuses of `email_deliveries` that stay few: `sent` rows only
/// accumulate, and counting them at every scrape would read the whole table.
const UNSENT: [&str; 3] = ["queued", "deferred", "failed"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_encode_as_prometheus_text_with_total_suffixes() {
        let m = Metrics::default();
        m.observe_request("GET", "/api/v1/clients/{id}", 200, 0.003);
        m.observe_request("BREW", "unmatched", 405, 0.001);
        m.job_finished("questionnaire_summary", "computed", 0.3);
        m.email_recorded("sent");
        m.rows_imported(ImportKind::Responses, 250);
        let mut out = String::new();
        m.encode(&mut out);
        assert!(
            out.contains("# TYPE growthpoint_http_requests_total counter"),
            "{out}"
        );
        assert!(
            out.contains(r#"growthpoint_http_requests_total{method="GET",route="/api/v1/clients/{id}",status="200"} 1"#),
            "{out}"
        );
        assert!(out.contains(r#"method="other""#), "{out}");
        assert!(
            out.contains(r#"growthpoint_import_rows_total{kind="responses"} 250"#),
            "{out}"
        );
        assert!(
            out.contains(
                r#"growthpoint_jobs_total{kind="questionnaire_summary",outcome="computed"} 1"#
            ),
            "{out}"
        );
        assert!(
            out.contains(r#"growthpoint_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/v1/clients/{id}"} 1"#)
                || out.contains(r#"growthpoint_http_request_duration_seconds_bucket{method="GET",route="/api/v1/clients/{id}",le="0.005"} 1"#),
            "{out}"
        );
        assert!(!out.contains("# EOF"), "{out}");
    }
}

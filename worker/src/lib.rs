//! The background worker: apalis consumers of recompute jobs plus the sweeper
//! that re-arms work whose wake-up message was lost. Jobs are thin: they call
//! the service layer, which keeps the ledger.
use std::time::Duration;

use std::future::Future;

use apalis::prelude::*;
use service::Services;
use service::jobs::RunOutcome;
use service::queue::{JobQueue, RecomputeJob};
use tokio::task::JoinHandle;

pub struct WorkerOptions {
    /// Unique per process: leases and job runs are recorded under it.
    pub id: String,
    pub concurrency: usize,
    pub sweep_interval: Duration,
    /// How often rows past their retention are deleted (audit log, webhook
    /// delivery log); the first purge runs at start.
    pub retention_interval: Duration,
    /// How often an idle consumer asks the queue for work.
    pub poll_interval: Duration,
}

/// Running worker tasks; dropping it stops them.
pub struct WorkerHandle {
    tasks: Vec<JoinHandle<()>>,
}

impl WorkerHandle {
    pub fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }

    /// Waits until the worker ends (it normally runs until stopped).
    pub async fn join(mut self) {
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn recompute(
    job: RecomputeJob,
    services: Data<Services>,
    worker: Data<WorkerId>,
) -> Result<(), BoxDynError> {
    let started = std::time::Instant::now();
    let kind = kind_label(&job.kind);
    let result = run(&job, &services, &worker.0.0).await;
    let outcome = match &result {
        Err(_) => "error",
        Ok(None) => "done",
        Ok(Some(RunOutcome::Computed(_))) => "computed",
        Ok(Some(RunOutcome::Fresh)) => "fresh",
        Ok(Some(RunOutcome::Busy)) => "busy",
        Ok(Some(RunOutcome::Failed(_))) => "failed",
    };
    services
        .metrics
        .job_finished(kind, outcome, started.elapsed().as_secs_f64());
    result.map(|_| ())
}

/// The metrics label of a job kind: the code's constants, never a string
/// that came from elsewhere (the label set stays small).
fn kind_label(kind: &str) -> &'static str {
    service::jobs::RECOMPUTE_KINDS
        .into_iter()
        .chain([service::email::KIND_WAKE, service::webhooks::KIND_WAKE])
        .find(|k| *k == kind)
        .unwrap_or("other")
}

/// Runs one job: an email wake-up (None) or a recompute (its outcome).
async fn run(
    job: &RecomputeJob,
    services: &Services,
    worker_id: &str,
) -> Result<Option<RunOutcome>, BoxDynError> {
    if job.kind == service::email::KIND_WAKE {
        let sent = services
            .deliver_due(worker_id)
            .await
            .map_err(|e| -> BoxDynError { format!("{e:#}").into() })?;
        tracing::debug!(sent, "emails delivered");
        return Ok(None);
    }
    if job.kind == service::webhooks::KIND_WAKE {
        let delivered = services
            .deliver_webhooks(worker_id)
            .await
            .map_err(|e| -> BoxDynError { format!("{e:#}").into() })?;
        tracing::debug!(delivered, "webhooks delivered");
        return Ok(None);
    }
    let outcome = services
        .run_recompute(job, worker_id)
        .await
        .map_err(|e| -> BoxDynError { format!("{e:#}").into() })?;
    match &outcome {
        RunOutcome::Computed(versions) => tracing::info!(
            target_id = %job.target_id, agency_id = %job.agency_id, ?versions, "recomputed"
        ),
        RunOutcome::Failed(e) => {
            tracing::warn!(target_id = %job.target_id, error = %e, "recompute failed; will retry")
        }
        RunOutcome::Fresh | RunOutcome::Busy => {
            tracing::debug!(target_id = %job.target_id, ?outcome, "nothing to do")
        }
    }
    Ok(Some(outcome))
}

#[derive(Clone)]
struct WorkerId(String);

/// Wakes an idle consumer every `every` so it asks the queue again.
///
/// apalis' own `IntervalStrategy` re-arms its timer without polling it, so
/// after some ticks nothing wakes the consumer until the next heartbeat
/// (30 s); this one always leaves a polled timer behind.
struct Tick {
    every: Duration,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl Tick {
    fn new(every: Duration) -> Self {
        Self { every, sleep: None }
    }
}

impl PollStrategy for Tick {
    fn poll_drive(
        &mut self,
        cx: &mut std::task::Context<'_>,
        _: &PollSnapshot,
    ) -> std::task::Poll<Option<()>> {
        let mut fired = false;
        loop {
            let every = self.every;
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(every)));
            match sleep.as_mut().poll(cx) {
                std::task::Poll::Ready(()) => {
                    self.sleep = None;
                    fired = true;
                }
                std::task::Poll::Pending if fired => return std::task::Poll::Ready(Some(())),
                std::task::Poll::Pending => return std::task::Poll::Pending,
            }
        }
    }
}

/// Runs one apalis worker named `name` on the queue until it stops.
async fn consume(
    services: &Services,
    name: &str,
    id: &str,
    concurrency: usize,
    poll: Duration,
) -> Result<(), WorkerError> {
    // The same worker on either backend (their storage types differ).
    macro_rules! run_on {
        ($storage:expr) => {
            WorkerBuilder::new(name)
                .backend($storage.poll_with_strategy(Tick::new(poll)))
                .data(services.clone())
                .data(WorkerId(id.to_owned()))
                .concurrency(concurrency)
                .build(recompute)
                .run()
                .await
        };
    }
    match services.queue.clone() {
        JobQueue::Sqlite(storage) => run_on!(storage),
        JobQueue::Redis(storage) => run_on!(storage),
    }
}

/// Starts consuming jobs and sweeping, in background tasks.
pub fn spawn(services: Services, opts: WorkerOptions) -> WorkerHandle {
    let mut tasks = Vec::new();
    let id = opts.id.clone();
    let consumer = {
        let services = services.clone();
        let id = id.clone();
        let concurrency = opts.concurrency.max(1);
        let poll = opts.poll_interval;
        tokio::spawn(async move {
            // apalis ends a worker whose backend fails (e.g. Redis restarted:
            // "connection refused"); without a consumer no recompute would
            // ever run again, so it is started again, under a new name each
            // time, while the queue stays down at most every few seconds.
            let mut backoff = poll.max(Duration::from_millis(50));
            for incarnation in 0u64.. {
                let name = match incarnation {
                    0 => id.clone(),
                    n => format!("{id}-r{n}"),
                };
                let began = std::time::Instant::now();
                let result = consume(&services, &name, &id, concurrency, poll).await;
                match result {
                    Ok(()) => {
                        tracing::warn!(worker = %name, "queue consumer ended; starting it again")
                    }
                    Err(e) => {
                        tracing::error!(worker = %name, error = %e, "queue consumer stopped; starting it again")
                    }
                }
                if began.elapsed() > Duration::from_secs(30) {
                    backoff = poll.max(Duration::from_millis(50));
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        })
    };
    tasks.push(consumer);
    let backend = services.queue.backend_name();
    let sweeper_id = format!("{id}-sweeper");
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(opts.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_purge: Option<tokio::time::Instant> = None;
        loop {
            tick.tick().await;
            if last_purge.is_none_or(|t| t.elapsed() >= opts.retention_interval) {
                last_purge = Some(tokio::time::Instant::now());
                if let Err(e) = services.purge_expired(chrono::Utc::now()).await {
                    tracing::warn!(error = %format!("{e:#}"), "retention purge failed");
                }
            }
            match services.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pushed = n, "sweeper re-armed stale recomputes"),
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "sweep failed"),
            }
            // Client digests whose slot has come (queued as emails).
            if let Err(e) = services.run_due_digests(chrono::Utc::now()).await {
                tracing::warn!(error = %format!("{e:#}"), "digests failed");
            }
            // Failed recomputes, one email per admin for those given up together.
            if let Err(e) = services.flush_job_alerts(chrono::Utc::now()).await {
                tracing::warn!(error = %format!("{e:#}"), "failed-job alerts failed");
            }
            // Score sets replaced by fresh ones (a rescoring only queues them).
            if let Err(e) = services.purge_score_sets(4).await {
                tracing::warn!(error = %format!("{e:#}"), "purging score sets failed");
            }
            // Deferred emails whose time has come, and any whose wake-up
            // call was lost.
            if let Err(e) = services.deliver_due(&sweeper_id).await {
                tracing::warn!(error = %format!("{e:#}"), "email delivery failed");
            }
            // Webhook retries whose time has come (and lost wake-ups), and
            // endpoints that failed for the whole retry period.
            if let Err(e) = services.disable_failing_webhooks().await {
                tracing::warn!(error = %format!("{e:#}"), "disabling failing webhooks failed");
            }
            if let Err(e) = services.flush_webhook_alerts().await {
                tracing::warn!(error = %format!("{e:#}"), "disabled-webhook alerts failed");
            }
            if let Err(e) = services.deliver_webhooks(&sweeper_id).await {
                tracing::warn!(error = %format!("{e:#}"), "webhook delivery failed");
            }
        }
    });
    tasks.push(sweeper);
    tracing::info!(worker_id = %id, queue = backend, "worker started");
    WorkerHandle { tasks }
}

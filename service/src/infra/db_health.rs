//! Tells a database outage from a busy pool.
//!
//! Both end in the same sqlx error when a caller waits for a pooled
//! connection: `PoolTimedOut`. A short acquire timeout answers an outage
//! fast but refuses requests that merely queue behind a burst (300
//! concurrent posts on 8 connections refused 119 of them with a 1 s
//! timeout); a long one rides out bursts but lets an outage hang every
//! request. So the pool gets the long timeout, and one probe connection of
//! its own, outside the pool, says whether the database is there at all:
//! while it is not, requests are answered 503 at once, and those already
//! waiting are cut short (see the API's middleware).
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::sqlx::{self, Connection, PgConnection};
use tokio::sync::watch;

/// How often the probe pings while the database answers, and while it
/// does not.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(200);
/// A ping slower than this counts as a miss (and its connection is
/// dropped: a connection that stalled once is not trusted again).
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(700);
/// A refused connection means down at once; slow pings only once nothing
/// has answered for this long. A database that is merely busy — a
/// CPU-starved host, a checkpoint, a burst of new connections — answers
/// within it (two 700 ms misses in a row once declared a busy test
/// machine's database down and refused a sign-up), while one that
/// silently dropped off the network is still found out in seconds.
pub const SILENT_FOR: Duration = Duration::from_secs(4);

/// Shared, cheap to read on every request.
#[derive(Debug)]
pub struct DbHealth {
    down: watch::Sender<bool>,
}

impl Default for DbHealth {
    fn default() -> Self {
        Self {
            down: watch::Sender::new(false),
        }
    }
}

impl DbHealth {
    pub fn is_down(&self) -> bool {
        *self.down.borrow()
    }

    /// Records what the probe found; logs each change once.
    pub fn set_down(&self, down: bool) {
        let was = self.down.send_replace(down);
        if was != down {
            if down {
                tracing::warn!("database unreachable: answering 503 until it is back");
            } else {
                tracing::info!("database reachable again");
            }
        }
    }

    /// Resolves when the database is (or goes) down.
    pub async fn went_down(&self) {
        let mut rx = self.down.subscribe();
        // The sender lives as long as `self`: the wait cannot fail.
        let _ = rx.wait_for(|down| *down).await;
    }
}

/// Watches `url` from a connection of its own until the process ends.
/// SQLite is a file and is never probed.
pub fn spawn_probe(url: String, health: Arc<DbHealth>) {
    if url.starts_with("sqlite:") {
        return;
    }
    tokio::spawn(async move {
        let mut verdict = Verdict::new(Instant::now());
        let mut probe: Option<PgConnection> = None;
        loop {
            let outcome = ping(&url, &mut probe).await;
            if outcome.is_err() {
                probe = None;
            }
            health.set_down(verdict.down(outcome, Instant::now()));
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    });
}

#[derive(Debug, Clone, Copy)]
enum Miss {
    Slow,
    Refused,
}

/// What the pings so far say: down after a refusal, or after
/// [`SILENT_FOR`] without an answer.
struct Verdict {
    last_answer: Instant,
}

impl Verdict {
    fn new(now: Instant) -> Self {
        Self { last_answer: now }
    }

    fn down(&mut self, outcome: Result<(), Miss>, now: Instant) -> bool {
        match outcome {
            Ok(()) => {
                self.last_answer = now;
                false
            }
            Err(Miss::Refused) => true,
            Err(Miss::Slow) => now.duration_since(self.last_answer) >= SILENT_FOR,
        }
    }
}

/// One ping on the probe's own connection (opened first if there is none).
/// A plain connection, not a pool: a pool retries a refused connect until
/// its acquire timeout, which would hide the refusal.
async fn ping(url: &str, probe: &mut Option<PgConnection>) -> Result<(), Miss> {
    let refused = |e: sqlx::Error| {
        // "Too many connections" refuses the probe's new connection, not
        // the pool's open ones: a busy server, not a missing one.
        let busy = e
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c == "53300");
        if !busy && crate::infra::error::sqlx_unavailable(&e) {
            Miss::Refused
        } else {
            Miss::Slow
        }
    };
    let work = async {
        if probe.is_none() {
            *probe = Some(PgConnection::connect(url).await.map_err(refused)?);
        }
        match probe.as_mut() {
            Some(conn) => conn.ping().await.map_err(refused),
            None => Err(Miss::Refused),
        }
    };
    match tokio::time::timeout(PROBE_TIMEOUT, work).await {
        Ok(r) => r,
        Err(_) => Err(Miss::Slow),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_wake_when_the_database_goes_down() {
        let h = Arc::new(DbHealth::default());
        assert!(!h.is_down());
        let waiter = tokio::spawn({
            let h = h.clone();
            async move { h.went_down().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        h.set_down(true);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
        assert!(h.is_down());
        // Already down: resolves at once.
        tokio::time::timeout(Duration::from_secs(5), h.went_down())
            .await
            .expect("at once");
        h.set_down(false);
        assert!(!h.is_down());
    }

    #[test]
    fn slow_pings_mean_down_only_after_a_silence() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut v = Verdict::new(t0);
        // A busy database: misses between answers never add up.
        assert!(!v.down(Err(Miss::Slow), at(900)));
        assert!(!v.down(Err(Miss::Slow), at(1_800)));
        assert!(!v.down(Ok(()), at(2_000)));
        assert!(!v.down(Err(Miss::Slow), at(5_900)));
        // A silent one: down once nothing answered for SILENT_FOR.
        assert!(v.down(Err(Miss::Slow), at(6_000)));
        assert!(!v.down(Ok(()), at(6_200)));
        // A refusal is down at once, and the next answer is up again.
        assert!(v.down(Err(Miss::Refused), at(6_400)));
        assert!(!v.down(Ok(()), at(6_600)));
    }

    #[tokio::test]
    async fn a_refused_connection_is_seen_as_down_within_a_second() {
        // Nothing listens on port 9 of loopback.
        let h = Arc::new(DbHealth::default());
        spawn_probe("postgres://nobody@127.0.0.1:9/none".into(), h.clone());
        tokio::time::timeout(Duration::from_secs(1), h.went_down())
            .await
            .expect("seen down within 1 s");
    }
}

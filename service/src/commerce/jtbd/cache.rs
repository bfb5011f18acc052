//! Per-process cache of computed JTBD reports.
//!
//! A report over a million purchases takes a second or two to compute, and
//! a dashboard asks for it again for every page of customers and on every
//! refresh. An entry is keyed by everything the report depends on — the
//! client's purchases data version, its labelling rules, its time zone and
//! the request's D, period and margin — so it is never stale: new purchases
//! bump the version (in the writing transaction), and the next request
//! misses and computes afresh. Nothing needs invalidating across
//! processes. Concurrent requests for the same key wait for one
//! computation instead of each running their own.
use std::sync::{Arc, Mutex};

use analytics::jtbd::{JtbdReport, PeriodKind};
use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::OnceCell;
use uuid::Uuid;

/// Reports kept per process; the oldest used goes first.
const CAPACITY: usize = 8;

#[derive(Debug, Clone, PartialEq)]
pub struct ReportKey {
    pub agency_id: Uuid,
    pub client_id: Uuid,
    pub data_version: i64,
    /// The stored rules document as text (empty: no rules).
    pub rules: String,
    pub timezone: String,
    pub as_of: NaiveDate,
    pub period: PeriodKind,
    pub margin: f64,
}

/// A report and when it was computed.
pub type Computed = Arc<(JtbdReport, DateTime<Utc>)>;

type Cell = Arc<OnceCell<Computed>>;

#[derive(Default)]
pub struct JtbdCache {
    /// Most recently used last.
    slots: Mutex<Vec<(ReportKey, Cell)>>,
}

impl JtbdCache {
    /// The report for `key`, computed by `compute` unless cached (or being
    /// computed by another request). A failed computation caches nothing.
    pub async fn get_or_compute<F, Fut, E>(&self, key: ReportKey, compute: F) -> Result<Computed, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<JtbdReport, E>>,
    {
        let cell = self.cell(key);
        cell.get_or_try_init(|| async {
            let report = compute().await?;
            Ok(Arc::new((report, crate::now())))
        })
        .await
        .cloned()
    }

    fn cell(&self, key: ReportKey) -> Cell {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let cell = match slots.iter().position(|(k, _)| *k == key) {
            Some(i) => slots.remove(i).1,
            None => Cell::default(),
        };
        slots.push((key, cell.clone()));
        if slots.len() > CAPACITY {
            slots.remove(0);
        }
        cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(version: i64) -> ReportKey {
        ReportKey {
            agency_id: Uuid::nil(),
            client_id: Uuid::nil(),
            data_version: version,
            rules: String::new(),
            timezone: "UTC".into(),
            as_of: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            period: PeriodKind::Month,
            margin: 1.0,
        }
    }

    fn report(purchases: u64) -> JtbdReport {
        let rules = analytics::jtbd::LabelRules::parse(Vec::new()).unwrap();
        let config = analytics::jtbd::JtbdConfig {
            as_of: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            period: PeriodKind::Month,
            margin: 1.0,
        };
        let mut r = analytics::jtbd::compute(&[], &rules, &config).unwrap();
        r.purchases = purchases;
        r
    }

    #[tokio::test]
    async fn computes_once_per_key_and_again_for_a_new_version() {
        let cache = JtbdCache::default();
        let runs = AtomicUsize::new(0);
        let compute = |n: u64| {
            let runs = &runs;
            move || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ()>(report(n))
            }
        };
        let (a, b) = tokio::join!(
            cache.get_or_compute(key(1), compute(1)),
            cache.get_or_compute(key(1), compute(1))
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1, "one computation for both");
        assert!(Arc::ptr_eq(&a.unwrap(), &b.unwrap()));
        let c = cache.get_or_compute(key(2), compute(2)).await.unwrap();
        assert_eq!(c.0.purchases, 2);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failure_is_not_cached_and_the_oldest_entry_goes_first() {
        let cache = JtbdCache::default();
        let failed = cache
            .get_or_compute(key(1), || async { Err::<JtbdReport, _>("boom") })
            .await;
        assert!(failed.is_err());
        let ok = cache
            .get_or_compute(key(1), || async { Ok::<_, &str>(report(1)) })
            .await;
        assert_eq!(ok.unwrap().0.purchases, 1);
        for v in 2..=CAPACITY as i64 + 1 {
            let _ = cache
                .get_or_compute(key(v), || async move { Ok::<_, ()>(report(v as u64)) })
                .await;
        }
        // Version 1 was the least recently used of CAPACITY + 1 keys.
        let again = cache
            .get_or_compute(key(1), || async { Ok::<_, ()>(report(100)) })
            .await
            .unwrap();
        assert_eq!(again.0.purchases, 100);
    }
}

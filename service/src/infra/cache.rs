//! Read caches kept coherent across the processes of one deployment.
//!
//! A write drops the affected entries at once in its own process
//! ([`crate::Services::invalidate`]) and, on PostgreSQL, publishes the same
//! [`Invalidation`] with `NOTIFY`; every process `LISTEN`s ([`listen`]) and
//! drops its copy when the message arrives (milliseconds after the commit).
//! While the listener is not subscribed — at start, after an error — nothing
//! is served from the shared cache, and everything cached is dropped whenever
//! the connection was lost, since messages may have been missed. On SQLite
//! (one process writes) entries simply expire after a short time.
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "growthpoint_cache";

/// What a write changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// An agency's clients.
    Clients(Uuid),
    /// An agency's memberships (roles, removals).
    Members(Uuid),
    /// One API key (by public id), e.g. revoked.
    ApiKey(String),
}

impl Invalidation {
    pub fn encode(&self) -> String {
        match self {
            Self::Clients(a) => format!("clients:{a}"),
            Self::Members(a) => format!("members:{a}"),
            Self::ApiKey(k) => format!("key:{k}"),
        }
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (kind, arg) = s.split_once(':')?;
        match kind {
            "clients" => Uuid::parse_str(arg).ok().map(Self::Clients),
            "members" => Uuid::parse_str(arg).ok().map(Self::Members),
            "key" => Some(Self::ApiKey(arg.to_owned())),
            _ => None,
        }
    }
}

/// The most clients of one agency kept in memory; a larger agency is read
/// from the database page by page.
pub const MAX_CACHED_CLIENTS: usize = 1_000;

const MAX_AGENCIES: usize = 100_000;

/// A list per agency — every client of it (archived ones included), ordered
/// by id, for [`crate::platform::clients`] — so a list page is cut from memory.
pub struct AgencyListCache<T> {
    ttl: Duration,
    live: AtomicBool,
    inner: Mutex<Inner<T>>,
}

struct Inner<T> {
    /// Bumped by [`AgencyListCache::clear`]: tickets from before are void.
    epoch: u64,
    /// Last stamp handed out.
    counter: u64,
    /// Per agency, the stamp of its last invalidation (absent = none since
    /// the epoch began).
    stamps: HashMap<Uuid, u64>,
    lists: HashMap<Uuid, (Instant, std::sync::Arc<Vec<T>>)>,
}

impl<T> Default for Inner<T> {
    fn default() -> Self {
        Self {
            epoch: 0,
            counter: 0,
            stamps: HashMap::new(),
            lists: HashMap::new(),
        }
    }
}

/// Permission to store what was read after it was issued: refused if an
/// invalidation of the same agency came in between.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    agency: Uuid,
    epoch: u64,
    stamp: u64,
}

impl<T> AgencyListCache<T> {
    /// `live`: whether entries may be served before [`Self::set_live`] (true
    /// when no other process can write, i.e. SQLite). A zero `ttl` turns the
    /// cache off.
    pub fn new(ttl: Duration, live: bool) -> Self {
        Self {
            ttl,
            live: AtomicBool::new(live),
            inner: Mutex::default(),
        }
    }

    /// The cached list, or a ticket to fill it after reading the database
    /// (`Err(None)`: read without caching).
    pub fn get(&self, agency: Uuid) -> Result<std::sync::Arc<Vec<T>>, Option<Ticket>> {
        if self.ttl.is_zero() || !self.live.load(Ordering::Acquire) {
            return Err(None);
        }
        let Ok(inner) = self.inner.lock() else {
            return Err(None);
        };
        if let Some((at, list)) = inner.lists.get(&agency)
            && at.elapsed() < self.ttl
        {
            return Ok(list.clone());
        }
        Err(Some(Ticket {
            agency,
            epoch: inner.epoch,
            stamp: inner.stamps.get(&agency).copied().unwrap_or(0),
        }))
    }

    /// Stores a list read after `ticket` was issued, unless it is already
    /// stale.
    pub fn fill(&self, ticket: Ticket, list: Vec<T>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let current = inner.stamps.get(&ticket.agency).copied().unwrap_or(0);
        if inner.epoch != ticket.epoch
            || current != ticket.stamp
            || !self.live.load(Ordering::Acquire)
        {
            return;
        }
        if inner.lists.len() >= MAX_AGENCIES {
            inner.lists.clear();
        }
        inner
            .lists
            .insert(ticket.agency, (Instant::now(), std::sync::Arc::new(list)));
    }

    pub fn invalidate(&self, agency: Uuid) {
        if let Ok(mut inner) = self.inner.lock() {
            if inner.stamps.len() >= MAX_AGENCIES {
                Self::reset(&mut inner);
            }
            inner.counter += 1;
            let stamp = inner.counter;
            inner.stamps.insert(agency, stamp);
            inner.lists.remove(&agency);
        }
    }

    /// Drops everything and voids every outstanding ticket.
    pub fn clear(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            Self::reset(&mut inner);
        }
    }

    fn reset(inner: &mut Inner<T>) {
        inner.epoch += 1;
        inner.stamps.clear();
        inner.lists.clear();
    }

    /// Whether an invalidation of `agency` was taken since everything was
    /// last dropped (lets a caller know a message from another process
    /// has crossed).
    pub fn was_invalidated(&self, agency: Uuid) -> bool {
        self.inner
            .lock()
            .map(|inner| inner.stamps.contains_key(&agency))
            .unwrap_or(false)
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Whether invalidations from other processes are being received.
    pub fn set_live(&self, live: bool) {
        self.clear();
        self.live.store(live, Ordering::Release);
        self.clear();
    }
}

/// Follows the invalidations other processes publish, for as long as the
/// runtime runs; reconnects with a growing pause after errors.
pub async fn listen(services: crate::Services, url: String) {
    use sea_orm::sqlx::postgres::PgListener;
    let mut pause = Duration::from_millis(100);
    loop {
        let subscribed = async {
            let mut l = PgListener::connect(&url).await?;
            l.listen(CHANNEL).await?;
            Ok::<_, sea_orm::sqlx::Error>(l)
        }
        .await;
        let mut listener = match subscribed {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cache invalidation feed: cannot subscribe; caching paused");
                services.forget_everything(false);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        pause = Duration::from_millis(100);
        services.forget_everything(true);
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if let Some(inv) = Invalidation::decode(n.payload()) {
                        services.invalidate_local(&inv);
                    }
                }
                // The connection was lost and is back: messages may have
                // been missed in between.
                Ok(None) => services.forget_everything(true),
                Err(e) => {
                    tracing::warn!(error = %e, "cache invalidation feed lost; caching paused");
                    services.forget_everything(false);
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct ClientView {
        name: String,
    }

    type ClientCache = AgencyListCache<ClientView>;

    fn view(name: &str) -> ClientView {
        ClientView { name: name.into() }
    }

    fn ticket(c: &ClientCache, a: Uuid) -> Ticket {
        c.get(a).err().flatten().expect("a ticket")
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_stored() {
        let c = ClientCache::new(Duration::from_secs(60), true);
        let a = Uuid::now_v7();
        let t = ticket(&c, a);
        assert!(!c.was_invalidated(a));
        c.invalidate(a); // a write committed while the read was running
        assert!(c.was_invalidated(a));
        c.fill(t, vec![view("old")]);
        assert!(c.get(a).is_err(), "the stale read must not be served");
        let t = ticket(&c, a);
        c.fill(t, vec![view("new")]);
        assert_eq!(c.get(a).unwrap()[0].name, "new");
    }

    #[test]
    fn invalidating_one_agency_leaves_the_others() {
        let c = ClientCache::new(Duration::from_secs(60), true);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let (ta, tb) = (ticket(&c, a), ticket(&c, b));
        c.fill(ta, vec![view("a")]);
        c.fill(tb, vec![view("b")]);
        c.invalidate(a);
        assert!(c.get(a).is_err());
        assert_eq!(c.get(b).unwrap()[0].name, "b");
    }

    #[test]
    fn nothing_is_served_or_stored_until_the_feed_is_live() {
        let c = ClientCache::new(Duration::from_secs(60), false);
        let a = Uuid::now_v7();
        assert!(matches!(c.get(a), Err(None)));
        c.set_live(true);
        let t = ticket(&c, a);
        c.set_live(false); // the feed was lost while reading
        c.fill(t, vec![view("a")]);
        c.set_live(true);
        assert!(c.get(a).is_err());
    }

    #[test]
    fn entries_expire_and_zero_ttl_is_off() {
        let c = ClientCache::new(Duration::ZERO, true);
        assert!(matches!(c.get(Uuid::now_v7()), Err(None)));
        let c = ClientCache::new(Duration::from_millis(1), true);
        let a = Uuid::now_v7();
        let t = ticket(&c, a);
        c.fill(t, vec![]);
        std::thread::sleep(Duration::from_millis(5));
        assert!(c.get(a).is_err());
    }

    #[test]
    fn messages_round_trip() {
        for inv in [
            Invalidation::Clients(Uuid::now_v7()),
            Invalidation::Members(Uuid::now_v7()),
            Invalidation::ApiKey("abc123".into()),
        ] {
            assert_eq!(Invalidation::decode(&inv.encode()), Some(inv));
        }
        assert_eq!(Invalidation::decode("clients:not-a-uuid"), None);
        assert_eq!(Invalidation::decode("what:ever"), None);
    }
}

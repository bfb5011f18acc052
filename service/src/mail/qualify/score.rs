//! Scoring the rows of a rescoring: score, probability and tier of each
//! contact (no explanation: that is computed when a contact is read), and
//! whether they differ from the stored ones — on one core or all of them.
use std::collections::{BTreeMap, HashMap};

use analytics::funnel::{
    AttrValue, ContactFacts, EventKind, Model, ScoreRule, Tier, TierThresholds, tier_of,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::attrs::Attrs;

/// A contact's qualification as stored in its client's current set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stored {
    pub(super) score: f64,
    pub(super) probability: Option<f64>,
    pub(super) tier: Tier,
}

/// What the rescoring reads of one contact.
pub(super) struct Row {
    pub(super) id: Uuid,
    pub(super) attributes: Attrs,
    pub(super) converted: Option<bool>,
    pub(super) customer_ref: Option<String>,
    pub(super) confirmed_at: Option<DateTime<Utc>>,
    pub(super) email: String,
    /// None: not in the current set (never scored, or new since).
    pub(super) stored: Option<Stored>,
}

/// A contact's new qualification, and whether it differs from the stored.
pub(crate) struct Scored {
    pub(super) id: Uuid,
    pub(super) q: Stored,
    pub(super) changed: bool,
}

/// What the rules see of a contact besides its attributes.
pub(super) fn facts(
    attributes: BTreeMap<String, AttrValue>,
    confirmed_at: Option<DateTime<Utc>>,
    events: Option<&[Option<DateTime<Utc>>; 2]>,
    last_purchase: Option<DateTime<Utc>>,
    answers: Vec<(String, String)>,
) -> ContactFacts {
    let ev = events.copied().unwrap_or_default();
    let mut last_event = [None; 3];
    last_event[EventKind::Confirmed.index()] = confirmed_at;
    last_event[EventKind::Opened.index()] = ev[0];
    last_event[EventKind::Clicked.index()] = ev[1];
    ContactFacts {
        attributes,
        answers,
        last_event,
        last_purchase,
    }
}

/// What scoring needs besides the rows.
pub(super) struct ScoreCtx {
    pub(super) rules: Vec<ScoreRule>,
    pub(super) model: Option<Model>,
    pub(super) thresholds: TierThresholds,
    /// Latest purchase by `customer_ref`.
    pub(super) last_purchase: HashMap<String, DateTime<Utc>>,
    /// Latest open and click by address.
    pub(super) events: HashMap<String, [Option<DateTime<Utc>>; 2]>,
    /// (question key, answer) pairs of each contact's linked responses,
    /// for the questions `answer` rules ask about.
    pub(super) answers: HashMap<Uuid, Vec<(String, String)>>,
    pub(super) now: DateTime<Utc>,
}

impl ScoreCtx {
    /// Scores `rows` in order on this thread (taking their attributes).
    pub(super) fn score(&self, rows: &mut [Row]) -> Vec<Scored> {
        rows.iter_mut()
            .map(|r| {
                let facts = facts(
                    r.attributes.take_map(),
                    r.confirmed_at,
                    self.events.get(&r.email),
                    r.customer_ref
                        .as_ref()
                        .and_then(|c| self.last_purchase.get(c).copied()),
                    self.answers.get(&r.id).cloned().unwrap_or_default(),
                );
                let (score, probability, tier) = tier_of(
                    &self.rules,
                    self.model.as_ref(),
                    &self.thresholds,
                    &facts,
                    self.now,
                );
                let q = Stored {
                    score,
                    probability,
                    tier,
                };
                Scored {
                    id: r.id,
                    q,
                    changed: r.stored != Some(q),
                }
            })
            .collect()
    }

    /// Scores `rows` on every core; the result in row order.
    pub(super) fn score_par(&self, rows: &mut [Row]) -> Vec<Scored> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if threads < 2 || rows.len() < 20_000 {
            return self.score(rows);
        }
        let per = rows.len().div_ceil(threads);
        std::thread::scope(|s| {
            let parts: Vec<_> = rows
                .chunks_mut(per)
                .map(|part| s.spawn(|| self.score(part)))
                .collect();
            parts
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }
}

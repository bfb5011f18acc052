//! Rule scores, tiers and the per-contact explanation (analytics.md §7).
use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{AttrValue, FeatureContribution, Model};

/// An email event a rule can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema, async_graphql::Enum))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Confirmed,
    Opened,
    Clicked,
}

impl EventKind {
    pub const ALL: [EventKind; 3] = [EventKind::Confirmed, EventKind::Opened, EventKind::Clicked];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            EventKind::Confirmed => "confirmed",
            EventKind::Opened => "opened",
            EventKind::Clicked => "clicked",
        }
    }
}

/// What a point rule matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleCondition {
    /// The attribute's text equals `value` exactly.
    AttrEquals {
        #[cfg_attr(feature = "schema", schema(pattern = "^[a-z][a-z0-9_]{0,63}$"))]
        key: String,
        #[cfg_attr(feature = "schema", schema(min_length = 1, max_length = 500))]
        value: String,
    },
    /// The attribute's text contains `value`, ignoring case.
    AttrContains {
        #[cfg_attr(feature = "schema", schema(pattern = "^[a-z][a-z0-9_]{0,63}$"))]
        key: String,
        #[cfg_attr(feature = "schema", schema(min_length = 1, max_length = 500))]
        value: String,
    },
    /// The attribute is a number within `[min, max]` (either bound optional).
    AttrWithin {
        #[cfg_attr(feature = "schema", schema(pattern = "^[a-z][a-z0-9_]{0,63}$"))]
        key: String,
        min: Option<f64>,
        max: Option<f64>,
    },
    /// A linked questionnaire response (one that carried the contact's
    /// e-mail) answered `question_key` with `value`, compared exactly:
    /// for a single- or multi-choice question an option as listed in the
    /// question's `options` (a multi-choice answer matches when any chosen
    /// option is `value`), for a number or scale its shortest form (`4`,
    /// `5.5`), for text, date (`YYYY-MM-DD`) and e-mail the answer as
    /// stored.
    Answer {
        #[cfg_attr(feature = "schema", schema(pattern = "^[a-z][a-z0-9_]{0,63}$"))]
        question_key: String,
        #[cfg_attr(feature = "schema", schema(min_length = 1, max_length = 500))]
        value: String,
    },
    /// The contact had this email event within the last `within_days` days.
    Event {
        event: EventKind,
        /// 1 to 3650.
        #[cfg_attr(feature = "schema", schema(minimum = 1, maximum = 3650))]
        within_days: u32,
    },
    /// The linked customer bought within the last `within_days` days.
    Purchase {
        /// 1 to 3650.
        #[cfg_attr(feature = "schema", schema(minimum = 1, maximum = 3650))]
        within_days: u32,
    },
}

/// A client's point rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ScoreRule {
    /// 1 to 200 characters, not blank.
    #[cfg_attr(
        feature = "schema",
        schema(
            min_length = 1,
            max_length = 200,
            pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
        )
    )]
    pub name: String,
    /// From -1e6 to 1e6.
    #[cfg_attr(feature = "schema", schema(minimum = -1e6, maximum = 1e6))]
    pub points: f64,
    pub when: RuleCondition,
}

/// What the rules look at, per contact.
#[derive(Debug, Clone, Default)]
pub struct ContactFacts {
    pub attributes: BTreeMap<String, AttrValue>,
    /// (question key, answer text) of linked responses; one pair per chosen
    /// option of a multi-choice answer.
    pub answers: Vec<(String, String)>,
    /// Latest time of each [`EventKind`], by [`EventKind::index`].
    pub last_event: [Option<DateTime<Utc>>; 3],
    pub last_purchase: Option<DateTime<Utc>>,
}

fn within(at: Option<DateTime<Utc>>, days: u32, now: DateTime<Utc>) -> bool {
    at.is_some_and(|t| t <= now && now - t <= Duration::days(i64::from(days)))
}

impl RuleCondition {
    pub fn matches(&self, c: &ContactFacts, now: DateTime<Utc>) -> bool {
        match self {
            RuleCondition::AttrEquals { key, value } => {
                c.attributes.get(key).is_some_and(|v| match v {
                    AttrValue::Text(t) => t == value,
                    other => other.as_text() == *value,
                })
            }
            RuleCondition::AttrContains { key, value } => {
                c.attributes.get(key).is_some_and(|v| match v {
                    AttrValue::Text(t) => contains_ignoring_case(t, value),
                    other => contains_ignoring_case(&other.as_text(), value),
                })
            }
            RuleCondition::AttrWithin { key, min, max } => c
                .attributes
                .get(key)
                .and_then(AttrValue::as_number)
                .is_some_and(|n| min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m)),
            RuleCondition::Answer {
                question_key,
                value,
            } => c
                .answers
                .iter()
                .any(|(q, a)| q == question_key && a == value),
            RuleCondition::Event { event, within_days } => {
                within(c.last_event[event.index()], *within_days, now)
            }
            RuleCondition::Purchase { within_days } => within(c.last_purchase, *within_days, now),
        }
    }
}

/// `needle` in `hay`, ignoring case; ASCII without allocating.
fn contains_ignoring_case(hay: &str, needle: &str) -> bool {
    if hay.is_ascii() && needle.is_ascii() {
        let (h, n) = (hay.as_bytes(), needle.as_bytes());
        n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
    } else {
        hay.to_lowercase().contains(&needle.to_lowercase())
    }
}

/// Σ points of the matching rules, allocating nothing (for rescoring).
pub fn score(rules: &[ScoreRule], c: &ContactFacts, now: DateTime<Utc>) -> f64 {
    rules
        .iter()
        .filter(|r| r.when.matches(c, now))
        .map(|r| r.points)
        .sum()
}

/// Score, probability and tier without the explanation (for rescoring).
pub fn tier_of(
    rules: &[ScoreRule],
    model: Option<&Model>,
    thresholds: &TierThresholds,
    c: &ContactFacts,
    now: DateTime<Utc>,
) -> (f64, Option<f64>, Tier) {
    let s = score(rules, c, now);
    let p = model.map(|m| m.probability(&c.attributes));
    (s, p, thresholds.tier(s, p))
}

/// A rule that matched, with its points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct RuleHit {
    pub rule: String,
    pub points: f64,
}

/// Σ points of the matching rules, and which matched (in rule order).
pub fn rule_score(
    rules: &[ScoreRule],
    c: &ContactFacts,
    now: DateTime<Utc>,
) -> (f64, Vec<RuleHit>) {
    let mut score = 0.0;
    let mut hits = Vec::new();
    for r in rules {
        if r.when.matches(c, now) {
            score += r.points;
            hits.push(RuleHit {
                rule: r.name.clone(),
                points: r.points,
            });
        }
    }
    (score, hits)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema, async_graphql::Enum))]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Cold,
    Warm,
    Hot,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Cold => "cold",
            Tier::Warm => "warm",
            Tier::Hot => "hot",
        }
    }

    pub fn parse(s: &str) -> Option<Tier> {
        [Tier::Cold, Tier::Warm, Tier::Hot]
            .into_iter()
            .find(|t| t.name() == s)
    }

    /// Hot or warm.
    pub fn is_qualified(self) -> bool {
        self != Tier::Cold
    }
}

/// Per-client tier thresholds; the defaults are §7's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TierThresholds {
    pub hot_probability: f64,
    pub warm_probability: f64,
    pub hot_score: f64,
    pub warm_score: f64,
}

impl Default for TierThresholds {
    fn default() -> Self {
        TierThresholds {
            hot_probability: 0.6,
            warm_probability: 0.3,
            hot_score: 60.0,
            warm_score: 30.0,
        }
    }
}

impl TierThresholds {
    /// By the model's probability when there is one, else by the rule score.
    pub fn tier(&self, score: f64, probability: Option<f64>) -> Tier {
        let (v, hot, warm) = match probability {
            Some(p) => (p, self.hot_probability, self.warm_probability),
            None => (score, self.hot_score, self.warm_score),
        };
        if v >= hot {
            Tier::Hot
        } else if v >= warm {
            Tier::Warm
        } else {
            Tier::Cold
        }
    }
}

/// Why a contact has its tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Qualification {
    pub score: f64,
    /// The model's probability, when the client has a model.
    pub probability: Option<f64>,
    pub tier: Tier,
    /// Rules matched, with points.
    pub rules: Vec<RuleHit>,
    /// The model's features with the largest |w·x|, signed.
    pub features: Vec<FeatureContribution>,
}

/// How many model features an explanation lists.
pub const EXPLAIN_TOP: usize = 5;

/// Score, probability, tier and explanation of one contact.
pub fn qualify(
    rules: &[ScoreRule],
    model: Option<&Model>,
    thresholds: &TierThresholds,
    c: &ContactFacts,
    now: DateTime<Utc>,
) -> Qualification {
    let (score, hits) = rule_score(rules, c, now);
    let (probability, features) = match model {
        Some(m) => {
            let x = m.space.encode(&c.attributes);
            (
                Some(m.probability_encoded(&x)),
                m.explain_encoded(&x, EXPLAIN_TOP),
            )
        }
        None => (None, Vec::new()),
    };
    Qualification {
        score,
        probability,
        tier: thresholds.tier(score, probability),
        rules: hits,
        features,
    }
}

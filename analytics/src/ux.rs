//! UX dynamic map from mystery-shopper ratings (analytics.md §4).
//!
//! As-of date D: the current window is the 7 days D−6..=D, the baseline the
//! 28 days before it, D−34..=D−7. Ratings dated after D are ignored
//! everywhere, so the all-time figures and the daily series cover only
//! ratings on or before D (a recompute for a past D sees what was known
//! then). Ideas dated after D are ignored likewise.
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::moments::Moments;

/// Days in the current window, D included.
pub const CURRENT_DAYS: u64 = 7;
/// Days in the baseline window, just before the current one.
pub const BASELINE_DAYS: u64 = 28;
/// A window with fewer ratings than this gives no deviation.
pub const MIN_WINDOW_N: u64 = 3;

/// Deviations within this distance of a threshold count as on it, so that
/// exact boundaries (e.g. 11/3 − 25/6 = −0.5) are not decided by rounding.
const EPS: f64 = 1e-9;

/// A rating on the 1–5 scale; valid by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Rating1to5(u8);

impl Rating1to5 {
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Rating1to5 {
    type Error = String;

    fn try_from(v: u8) -> Result<Self, Self::Error> {
        if (1..=5).contains(&v) {
            Ok(Rating1to5(v))
        } else {
            Err(format!("rating must be 1–5, got {v}"))
        }
    }
}

impl From<Rating1to5> for u8 {
    fn from(r: Rating1to5) -> u8 {
        r.0
    }
}

/// One touchpoint rating of one mystery-shopper response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MysteryRating {
    pub date: NaiveDate,
    pub touchpoint_id: String,
    pub stage_id: String,
    /// The simulated JTBD of the response.
    pub jtbd: String,
    pub rating: Rating1to5,
}

/// An improvement idea left for a touchpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Idea {
    pub date: NaiveDate,
    pub touchpoint_id: String,
    pub text: String,
}

/// Flag `negative` if deviation ≤ `negative_at`, `positive` if ≥
/// `positive_at`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UxConfig {
    pub negative_at: f64,
    pub positive_at: f64,
}

impl Default for UxConfig {
    fn default() -> Self {
        UxConfig {
            negative_at: -0.5,
            positive_at: 0.5,
        }
    }
}

/// The inclusive date ranges of both windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct Windows {
    pub current_from: NaiveDate,
    pub current_to: NaiveDate,
    pub baseline_from: NaiveDate,
    pub baseline_to: NaiveDate,
}

impl Windows {
    pub fn ending_on(as_of: NaiveDate) -> Windows {
        let back = |days: u64| {
            as_of
                .checked_sub_days(Days::new(days))
                .unwrap_or(NaiveDate::MIN)
        };
        Windows {
            current_from: back(CURRENT_DAYS - 1),
            current_to: as_of,
            baseline_from: back(CURRENT_DAYS + BASELINE_DAYS - 1),
            baseline_to: back(CURRENT_DAYS),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct WindowStats {
    /// None when n = 0.
    pub mean: Option<f64>,
    pub n: u64,
}

impl From<&Moments> for WindowStats {
    fn from(m: &Moments) -> Self {
        WindowStats {
            mean: m.mean(),
            n: m.n,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct DailyMean {
    pub date: NaiveDate,
    pub mean: f64,
    pub n: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema, async_graphql::Enum))]
pub enum Flag {
    Negative,
    Positive,
}

/// The figures of one group of ratings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct UxStats {
    pub current: WindowStats,
    pub baseline: WindowStats,
    /// All ratings on or before D.
    pub all_time: WindowStats,
    /// current mean − baseline mean; None if either window has < 3 ratings.
    pub deviation: Option<f64>,
    pub flag: Option<Flag>,
    /// One point per day with ratings (on or before D), ascending by date.
    pub daily: Vec<DailyMean>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct TouchpointJtbdStats {
    pub touchpoint_id: String,
    pub jtbd: String,
    pub stats: UxStats,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct TouchpointStats {
    pub touchpoint_id: String,
    pub stats: UxStats,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct StageStats {
    pub stage_id: String,
    pub stats: UxStats,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct IdeaEntry {
    pub date: NaiveDate,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct IdeaGroup {
    pub touchpoint_id: String,
    /// Newest first; ideas of the same day keep their input order.
    pub ideas: Vec<IdeaEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct HeatmapCell {
    pub stage_id: String,
    pub jtbd: String,
    /// Current-window mean; None when the cell has no current rating.
    pub mean: Option<f64>,
    pub n: u64,
}

/// Stage × JTBD over the current window. Rows and columns are every stage
/// and JTBD rated on or before D, ascending; `cells` is the full grid, row
/// by row (stage-major).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct Heatmap {
    pub stages: Vec<String>,
    pub jtbds: Vec<String>,
    pub cells: Vec<HeatmapCell>,
}

/// The whole map; every list is sorted by its ids ascending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct UxMap {
    pub as_of: NaiveDate,
    pub windows: Windows,
    pub by_touchpoint_jtbd: Vec<TouchpointJtbdStats>,
    pub by_touchpoint: Vec<TouchpointStats>,
    pub by_stage: Vec<StageStats>,
    pub ideas: Vec<IdeaGroup>,
    pub heatmap: Heatmap,
}

/// Where a flag was raised: the identity under which an alert is sent once.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum FlagKey {
    TouchpointJtbd { touchpoint_id: String, jtbd: String },
    Touchpoint { touchpoint_id: String },
    Stage { stage_id: String },
}

#[derive(Default)]
struct Acc {
    current: Moments,
    baseline: Moments,
    all_time: Moments,
    daily: BTreeMap<NaiveDate, Moments>,
}

impl Acc {
    fn add(&mut self, date: NaiveDate, window: Window, x: f64) {
        self.all_time.add(x);
        self.daily.entry(date).or_default().add(x);
        match window {
            Window::Current => self.current.add(x),
            Window::Baseline => self.baseline.add(x),
            Window::Older => {}
        }
    }

    fn finish(&self, config: &UxConfig) -> UxStats {
        let deviation = deviation(&self.current, &self.baseline);
        UxStats {
            current: (&self.current).into(),
            baseline: (&self.baseline).into(),
            all_time: (&self.all_time).into(),
            deviation,
            flag: deviation.and_then(|d| flag(d, config)),
            daily: self
                .daily
                .iter()
                .filter_map(|(&date, m)| m.mean().map(|mean| DailyMean { date, mean, n: m.n }))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    Current,
    Baseline,
    Older,
}

/// Which window a date falls in, or None when it is after D.
fn window_of(as_of: NaiveDate, date: NaiveDate) -> Option<Window> {
    let age = as_of.signed_duration_since(date).num_days();
    let cur = CURRENT_DAYS as i64;
    match age {
        a if a < 0 => None,
        a if a < cur => Some(Window::Current),
        a if a < cur + BASELINE_DAYS as i64 => Some(Window::Baseline),
        _ => Some(Window::Older),
    }
}

/// current mean − baseline mean, or None when either window has fewer than
/// [`MIN_WINDOW_N`] ratings.
pub fn deviation(current: &Moments, baseline: &Moments) -> Option<f64> {
    if current.n < MIN_WINDOW_N || baseline.n < MIN_WINDOW_N {
        return None;
    }
    Some(current.mean()? - baseline.mean()?)
}

/// The flag of a deviation under `config`'s thresholds (inclusive).
pub fn flag(deviation: f64, config: &UxConfig) -> Option<Flag> {
    if deviation <= config.negative_at + EPS {
        Some(Flag::Negative)
    } else if deviation >= config.positive_at - EPS {
        Some(Flag::Positive)
    } else {
        None
    }
}

/// Builds the map as of D.
pub fn compute(
    ratings: &[MysteryRating],
    ideas: &[Idea],
    as_of: NaiveDate,
    config: &UxConfig,
) -> UxMap {
    let mut by_tj: BTreeMap<(&str, &str), Acc> = BTreeMap::new();
    let mut by_t: BTreeMap<&str, Acc> = BTreeMap::new();
    let mut by_s: BTreeMap<&str, Acc> = BTreeMap::new();
    let mut heat: BTreeMap<(&str, &str), Moments> = BTreeMap::new();
    let mut jtbds: BTreeSet<&str> = BTreeSet::new();

    for r in ratings {
        let Some(window) = window_of(as_of, r.date) else {
            continue;
        };
        let x = f64::from(r.rating.get());
        by_tj
            .entry((&r.touchpoint_id, &r.jtbd))
            .or_default()
            .add(r.date, window, x);
        by_t.entry(&r.touchpoint_id)
            .or_default()
            .add(r.date, window, x);
        by_s.entry(&r.stage_id).or_default().add(r.date, window, x);
        jtbds.insert(&r.jtbd);
        let cell = heat.entry((&r.stage_id, &r.jtbd)).or_default();
        if window == Window::Current {
            cell.add(x);
        }
    }

    let stages: Vec<String> = by_s.keys().map(|s| s.to_string()).collect();
    let jtbds: Vec<String> = jtbds.into_iter().map(str::to_owned).collect();
    let mut cells = Vec::with_capacity(stages.len() * jtbds.len());
    for s in &stages {
        for j in &jtbds {
            let m = heat
                .get(&(s.as_str(), j.as_str()))
                .copied()
                .unwrap_or_default();
            cells.push(HeatmapCell {
                stage_id: s.clone(),
                jtbd: j.clone(),
                mean: m.mean(),
                n: m.n,
            });
        }
    }

    UxMap {
        as_of,
        windows: Windows::ending_on(as_of),
        by_touchpoint_jtbd: by_tj
            .iter()
            .map(|(&(t, j), acc)| TouchpointJtbdStats {
                touchpoint_id: t.to_owned(),
                jtbd: j.to_owned(),
                stats: acc.finish(config),
            })
            .collect(),
        by_touchpoint: by_t
            .iter()
            .map(|(&t, acc)| TouchpointStats {
                touchpoint_id: t.to_owned(),
                stats: acc.finish(config),
            })
            .collect(),
        by_stage: by_s
            .iter()
            .map(|(&s, acc)| StageStats {
                stage_id: s.to_owned(),
                stats: acc.finish(config),
            })
            .collect(),
        ideas: group_ideas(ideas, as_of),
        heatmap: Heatmap {
            stages,
            jtbds,
            cells,
        },
    }
}

/// Ideas on or before D with non-blank text (trimmed), grouped by touchpoint (ids
/// ascending), newest first.
pub fn group_ideas(ideas: &[Idea], as_of: NaiveDate) -> Vec<IdeaGroup> {
    let mut groups: BTreeMap<&str, Vec<&Idea>> = BTreeMap::new();
    for idea in ideas {
        if idea.date <= as_of && !idea.text.trim().is_empty() {
            groups.entry(&idea.touchpoint_id).or_default().push(idea);
        }
    }
    groups
        .into_iter()
        .map(|(t, mut list)| {
            // stable: same-day ideas keep their input order
            list.sort_by_key(|i| Reverse(i.date));
            IdeaGroup {
                touchpoint_id: t.to_owned(),
                ideas: list
                    .into_iter()
                    .map(|i| IdeaEntry {
                        date: i.date,
                        text: i.text.trim().to_owned(),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Every negative flag of the map, at all three levels.
pub fn negative_flags(map: &UxMap) -> BTreeSet<FlagKey> {
    let neg = |s: &UxStats| s.flag == Some(Flag::Negative);
    let tj = map
        .by_touchpoint_jtbd
        .iter()
        .filter(|r| neg(&r.stats))
        .map(|r| FlagKey::TouchpointJtbd {
            touchpoint_id: r.touchpoint_id.clone(),
            jtbd: r.jtbd.clone(),
        });
    let t = map
        .by_touchpoint
        .iter()
        .filter(|r| neg(&r.stats))
        .map(|r| FlagKey::Touchpoint {
            touchpoint_id: r.touchpoint_id.clone(),
        });
    let s = map
        .by_stage
        .iter()
        .filter(|r| neg(&r.stats))
        .map(|r| FlagKey::Stage {
            stage_id: r.stage_id.clone(),
        });
    tj.chain(t).chain(s).collect()
}

/// The flags of `current` that are not in `previous` — the ones to alert
/// about. A flag that stays raised across recomputes is alerted once; one
/// that clears and is raised again later is new again. Sorted, no repeats.
pub fn new_flags(previous: &[FlagKey], current: &[FlagKey]) -> Vec<FlagKey> {
    let previous: BTreeSet<&FlagKey> = previous.iter().collect();
    let current: BTreeSet<&FlagKey> = current.iter().collect();
    current.difference(&previous).map(|&k| k.clone()).collect()
}

#[cfg(test)]
mod tests;

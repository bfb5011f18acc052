//! §1 Customer panel ("Панель покупатель").
//!
//! Responses are held column by column ([`Dataset`]): choice answers as
//! option indices, multi-choice answers as bit masks, numbers as f64 (NaN =
//! blank), texts as indices into an interned table. A panel is the fold of
//! rows into a mergeable [`PanelState`]; [`PanelState::finish`] turns it into
//! the figures of analytics.md §1. Folding rows one by one and folding them
//! all at once give the same state (see the property tests).
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::moments::Moments;
use crate::nps::NpsTally;

/// Most options a multi-choice question may have (one bit each).
pub const MAX_MULTI_OPTIONS: usize = 64;
/// How many of the latest open answers a panel lists.
pub const LATEST_TEXTS: usize = 50;
/// How many of the most frequent normalised open answers a panel lists.
pub const TOP_TEXTS: usize = 20;

/// What analytics needs to know of a question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanelQuestion {
    pub key: String,
    pub kind: Kind,
    pub role: Role,
    /// For choice-factor importance questions: the factor's id and name.
    pub factor: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Single {
        options: Vec<String>,
    },
    Multi {
        options: Vec<String>,
    },
    /// rating_1_5
    Rating,
    /// nps_0_10
    Nps,
    Number,
    Text,
    /// email, date: stored, not aggregated.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    None,
    SegmentAttribute,
    Jtbd,
    ChoiceFactorImportance,
    Nps,
    Spend,
    /// Open answers listed in the panel (recommendations, problems…).
    OpenAnswer,
    Other,
}

/// One answer, as a row is built.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Blank,
    /// Option index.
    Choice(u16),
    /// A multi-choice answer: bit i set = option i chosen. `Multi(0)` is
    /// the explicit empty selection `[]` ("none of these"), an answer that
    /// counts in `n_answered`; a blank is [`Cell::Blank`].
    Multi(u64),
    Num(f64),
    Text(String),
}

/// A column of answers to one question.
#[derive(Debug, Clone, PartialEq)]
enum Column {
    Choice(Vec<u16>),
    /// Option masks, and whether the row answered at all (a blank and `[]`
    /// both have mask 0).
    Multi(Vec<u64>, Vec<bool>),
    Num(Vec<f64>),
    Text(Vec<u32>),
}

const BLANK_CHOICE: u16 = u16::MAX;
const BLANK_TEXT: u32 = u32::MAX;

/// The responses of one questionnaire, column by column.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub questions: Vec<PanelQuestion>,
    columns: Vec<Column>,
    /// Submission time of each row (any monotone unit, e.g. epoch ms).
    times: Vec<i64>,
    texts: Vec<String>,
    text_ids: HashMap<String, u32>,
}

impl Dataset {
    pub fn new(questions: Vec<PanelQuestion>) -> Self {
        let columns = questions
            .iter()
            .map(|q| match q.kind {
                Kind::Single { .. } => Column::Choice(Vec::new()),
                Kind::Multi { .. } => Column::Multi(Vec::new(), Vec::new()),
                Kind::Rating | Kind::Nps | Kind::Number => Column::Num(Vec::new()),
                Kind::Text | Kind::Other => Column::Text(Vec::new()),
            })
            .collect();
        Self {
            questions,
            columns,
            times: Vec::new(),
            texts: Vec::new(),
            text_ids: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    pub fn question_index(&self, key: &str) -> Option<usize> {
        self.questions.iter().position(|q| q.key == key)
    }

    /// Appends one row; `cells` are aligned with `questions`. A cell of the
    /// wrong shape for its column is stored as blank.
    pub fn push(&mut self, time: i64, cells: Vec<Cell>) {
        self.times.push(time);
        let mut cells = cells.into_iter();
        for col in &mut self.columns {
            let cell = cells.next().unwrap_or(Cell::Blank);
            match col {
                Column::Choice(v) => v.push(match cell {
                    Cell::Choice(i) => i,
                    _ => BLANK_CHOICE,
                }),
                Column::Multi(v, answered) => {
                    let m = match cell {
                        Cell::Multi(m) => Some(m),
                        _ => None,
                    };
                    v.push(m.unwrap_or(0));
                    answered.push(m.is_some());
                }
                Column::Num(v) => v.push(match cell {
                    Cell::Num(x) if x.is_finite() => x,
                    _ => f64::NAN,
                }),
                Column::Text(v) => v.push(match cell {
                    Cell::Text(s) => {
                        let next = self.texts.len() as u32;
                        let id = *self.text_ids.entry(s.clone()).or_insert(next);
                        if id == next {
                            self.texts.push(s);
                        }
                        id
                    }
                    _ => BLANK_TEXT,
                }),
            }
        }
    }

    /// The answers of the spend question, if there is one.
    fn spend_column(&self) -> Option<&[f64]> {
        let si = self.questions.iter().position(|q| q.role == Role::Spend)?;
        match &self.columns[si] {
            Column::Num(v) => Some(v),
            _ => None,
        }
    }

    /// Rows matching `filter` (all rows without conditions), ascending.
    ///
    /// Column at a time: the first condition scans its whole column (split
    /// over the machine's cores for large datasets), every further one
    /// only narrows the rows kept so far.
    pub fn select(&self, filter: &CompiledFilter) -> Vec<u32> {
        let mut conditions = filter.conditions.iter();
        let Some(&(qi, ref test)) = conditions.next() else {
            return (0..self.len() as u32).collect();
        };
        let mut rows = match (&self.columns[qi], test) {
            (Column::Choice(v), &Test::AnyOf(mask)) => positions(v, |c| choice_in(c, mask)),
            (Column::Multi(v, _), &Test::AnyOf(mask)) => positions(v, |m| m & mask != 0),
            (Column::Num(v), &Test::Range(lo, hi)) => positions(v, |x| in_range(x, lo, hi)),
            _ => Vec::new(),
        };
        for &(qi, ref test) in conditions {
            match (&self.columns[qi], test) {
                (Column::Choice(v), &Test::AnyOf(mask)) => {
                    rows.retain(|&r| choice_in(v[r as usize], mask));
                }
                (Column::Multi(v, _), &Test::AnyOf(mask)) => {
                    rows.retain(|&r| v[r as usize] & mask != 0)
                }
                (Column::Num(v), &Test::Range(lo, hi)) => {
                    rows.retain(|&r| in_range(v[r as usize], lo, hi));
                }
                _ => rows.clear(),
            }
        }
        rows
    }

    /// Folds the given rows into a fresh state.
    ///
    /// Column by column; for many rows the columns are dealt out to the
    /// machine's cores. Each column's aggregates are its own (NPS tallies,
    /// the one shared part, are integer counts), so the result is the same
    /// to the bit as folding every column on one thread.
    pub fn fold_rows(&self, rows: impl IntoIterator<Item = u32>) -> PanelState {
        let rows: Vec<u32> = rows.into_iter().collect();
        let spend = self.spend_column();
        let nq = self.questions.len();
        let fold = |columns: &[usize]| {
            let mut s = PanelState::new(&self.questions);
            for &qi in columns {
                s.fold_column(self, qi, &rows, spend);
            }
            s
        };
        let threads = if rows.len() >= PARALLEL_FOLD_MIN_ROWS {
            threads().min(nq)
        } else {
            1
        };
        let mut s = if threads < 2 {
            fold(&(0..nq).collect::<Vec<_>>())
        } else {
            let groups: Vec<Vec<usize>> = (0..threads)
                .map(|t| (t..nq).step_by(threads).collect())
                .collect();
            let parts: Vec<PanelState> = std::thread::scope(|sc| {
                let handles: Vec<_> = groups
                    .iter()
                    .map(|g| {
                        let fold = &fold;
                        sc.spawn(move || fold(g))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            });
            let mut out = PanelState::new(&self.questions);
            for (g, mut part) in groups.iter().zip(parts) {
                for &qi in g {
                    out.questions[qi] = std::mem::replace(&mut part.questions[qi], QState::None);
                    out.spend[qi] = std::mem::take(&mut part.spend[qi]);
                    out.latest_texts[qi] = std::mem::take(&mut part.latest_texts[qi]);
                    out.text_counts[qi] = std::mem::take(&mut part.text_counts[qi]);
                }
                out.nps.merge(&part.nps);
            }
            out
        };
        s.n = rows.len() as u64;
        s
    }

    /// Folds every row.
    pub fn fold_all(&self) -> PanelState {
        self.fold_rows(0..self.len() as u32)
    }
}

/// A segment filter resolved against a dataset: an AND of conditions, each
/// an OR over option indices (choice) or a closed range (numbers).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompiledFilter {
    conditions: Vec<(usize, Test)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    AnyOf(u64),
    Range(f64, f64),
}

/// A filter condition as the spec states it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub question: String,
    pub values: Option<Vec<String>>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Why a filter does not fit the questionnaire: (field, message).
pub type FilterError = (String, String);

impl CompiledFilter {
    pub fn compile(ds: &Dataset, conditions: &[Condition]) -> Result<Self, Vec<FilterError>> {
        let mut errors = Vec::new();
        let mut out = Vec::new();
        for (i, c) in conditions.iter().enumerate() {
            let f = |n: &str| format!("conditions[{i}].{n}");
            let Some(qi) = ds.question_index(&c.question) else {
                errors.push((f("question"), format!("no question '{}'", c.question)));
                continue;
            };
            let q = &ds.questions[qi];
            match (&q.kind, &c.values, c.min, c.max) {
                (Kind::Single { options } | Kind::Multi { options }, Some(values), None, None) => {
                    let mut mask = 0u64;
                    for v in values {
                        match options.iter().position(|o| o == v) {
                            Some(k) if k < 64 => mask |= 1 << k,
                            _ => errors.push((
                                f("values"),
                                format!("'{v}' is not an option of '{}'", q.key),
                            )),
                        }
                    }
                    out.push((qi, Test::AnyOf(mask)));
                }
                (Kind::Rating | Kind::Nps | Kind::Number, None, lo, hi)
                    if lo.is_some() || hi.is_some() =>
                {
                    out.push((
                        qi,
                        Test::Range(lo.unwrap_or(f64::NEG_INFINITY), hi.unwrap_or(f64::INFINITY)),
                    ));
                }
                (Kind::Single { .. } | Kind::Multi { .. }, _, _, _) => {
                    errors.push((
                        f("values"),
                        format!("'{}' is a choice question: give values", q.key),
                    ));
                }
                (Kind::Rating | Kind::Nps | Kind::Number, _, _, _) => {
                    errors.push((
                        f("min"),
                        format!("'{}' is a number question: give min and/or max", q.key),
                    ));
                }
                _ => errors.push((f("question"), format!("'{}' cannot be filtered on", q.key))),
            }
        }
        if errors.is_empty() {
            Ok(Self { conditions: out })
        } else {
            Err(errors)
        }
    }
}

fn choice_in(c: u16, mask: u64) -> bool {
    c != BLANK_CHOICE && c < 64 && mask & (1 << c) != 0
}

fn in_range(x: f64, lo: f64, hi: f64) -> bool {
    !x.is_nan() && x >= lo && x <= hi
}

/// Columns at least this long are scanned on several threads.
const PARALLEL_SCAN_MIN: usize = 1 << 18;

/// Folds of at least this many rows deal their columns out to threads
/// (scattered rows make every read a cache miss, so even a segment's fold
/// gains).
const PARALLEL_FOLD_MIN_ROWS: usize = 1 << 14;

/// The threads a scan or fold may use: the machine's cores, at most 8.
fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)))
}

/// Indices of the values that `keep`, ascending.
fn positions<T: Copy + Sync>(v: &[T], keep: impl Fn(T) -> bool + Sync) -> Vec<u32> {
    let scan = |part: &[T], base: usize| -> Vec<u32> {
        part.iter()
            .enumerate()
            .filter(|&(_, &x)| keep(x))
            .map(|(i, _)| (base + i) as u32)
            .collect()
    };
    let threads = if v.len() >= PARALLEL_SCAN_MIN {
        threads()
    } else {
        1
    };
    if threads < 2 {
        return scan(v, 0);
    }
    let chunk = v.len().div_ceil(threads);
    std::thread::scope(|s| {
        let parts: Vec<_> = v
            .chunks(chunk)
            .enumerate()
            .map(|(k, part)| s.spawn(move || scan(part, k * chunk)))
            .collect();
        let mut out = Vec::new();
        for p in parts {
            out.extend(
                p.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        out
    })
}

/// Mergeable aggregates of a set of rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanelState {
    pub n: u64,
    /// Per question, by its kind.
    pub questions: Vec<QState>,
    pub nps: NpsTally,
    /// Spend per (question, option) for jtbd and segment-attribute questions.
    pub spend: Vec<Vec<Moments>>,
    /// Open answers: (time, text id) of the latest, and counts per text
    /// id (normalised when finished). Text ids refer to the dataset's table.
    pub latest_texts: Vec<Vec<(i64, u32)>>,
    pub text_counts: Vec<HashMap<u32, u64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum QState {
    Choice { answered: u64, counts: Vec<u64> },
    Numeric { moments: Moments, top2: u64 },
    None,
}

impl PanelState {
    pub fn new(questions: &[PanelQuestion]) -> Self {
        Self {
            n: 0,
            questions: questions
                .iter()
                .map(|q| match &q.kind {
                    Kind::Single { options } | Kind::Multi { options } => QState::Choice {
                        answered: 0,
                        counts: vec![0; options.len()],
                    },
                    Kind::Rating | Kind::Nps | Kind::Number => QState::Numeric {
                        moments: Moments::default(),
                        top2: 0,
                    },
                    Kind::Text | Kind::Other => QState::None,
                })
                .collect(),
            nps: NpsTally::default(),
            spend: questions
                .iter()
                .map(|q| match (&q.kind, q.role) {
                    (
                        Kind::Single { options } | Kind::Multi { options },
                        Role::Jtbd | Role::SegmentAttribute,
                    ) => {
                        vec![Moments::default(); options.len()]
                    }
                    _ => Vec::new(),
                })
                .collect(),
            latest_texts: vec![Vec::new(); questions.len()],
            text_counts: vec![HashMap::new(); questions.len()],
        }
    }

    /// Folds one row of `ds` in: O(answers of the row).
    pub fn add_row(&mut self, ds: &Dataset, row: usize) {
        self.n += 1;
        let spend = ds.spend_column();
        for qi in 0..ds.questions.len() {
            self.fold_column(ds, qi, &[row as u32], spend);
        }
    }

    /// Folds the given rows of one question's column: the one place answers
    /// are counted, used row by row and in bulk (column by column, which
    /// keeps the loops tight).
    fn fold_column(&mut self, ds: &Dataset, qi: usize, rows: &[u32], spend_col: Option<&[f64]>) {
        let q = &ds.questions[qi];
        let spend_at = |r: usize| spend_col.map(|v| v[r]).filter(|x| !x.is_nan());
        let spend = &mut self.spend[qi];
        match (&ds.columns[qi], &mut self.questions[qi]) {
            (Column::Choice(v), QState::Choice { answered, counts }) => {
                for &r in rows {
                    let r = r as usize;
                    let c = v[r];
                    if c != BLANK_CHOICE && (c as usize) < counts.len() {
                        *answered += 1;
                        counts[c as usize] += 1;
                        if let (Some(x), Some(m)) = (spend_at(r), spend.get_mut(c as usize)) {
                            m.add(x);
                        }
                    }
                }
            }
            (Column::Multi(v, said), QState::Choice { answered, counts }) => {
                for &r in rows {
                    let r = r as usize;
                    let mask = v[r];
                    if mask == 0 {
                        // `[]` counts as answered and chooses nothing.
                        *answered += u64::from(said[r]);
                        continue;
                    }
                    *answered += 1;
                    let x = spend_at(r);
                    for (k, count) in counts.iter_mut().enumerate().take(64) {
                        if mask & (1 << k) != 0 {
                            *count += 1;
                            if let (Some(x), Some(m)) = (x, spend.get_mut(k)) {
                                m.add(x);
                            }
                        }
                    }
                }
            }
            (Column::Num(v), QState::Numeric { moments, top2 }) => {
                let rating = q.kind == Kind::Rating;
                let nps = q.role == Role::Nps && q.kind == Kind::Nps;
                for &r in rows {
                    let x = v[r as usize];
                    if x.is_nan() {
                        continue;
                    }
                    moments.add(x);
                    if rating && x >= 4.0 {
                        *top2 += 1;
                    }
                    if nps {
                        self.nps.add(x as i64);
                    }
                }
            }
            (Column::Text(v), QState::None) if q.role == Role::OpenAnswer => {
                for &r in rows {
                    let id = v[r as usize];
                    if id != BLANK_TEXT {
                        push_latest(&mut self.latest_texts[qi], (ds.times[r as usize], id));
                        *self.text_counts[qi].entry(id).or_insert(0) += 1;
                    }
                }
            }
            _ => {}
        }
    }

    /// Adds another state of the same questionnaire (disjoint rows).
    pub fn merge(&mut self, other: &PanelState) {
        self.n += other.n;
        for (a, b) in self.questions.iter_mut().zip(&other.questions) {
            match (a, b) {
                (
                    QState::Choice { answered, counts },
                    QState::Choice {
                        answered: a2,
                        counts: c2,
                    },
                ) => {
                    *answered += a2;
                    for (x, y) in counts.iter_mut().zip(c2) {
                        *x += y;
                    }
                }
                (
                    QState::Numeric { moments, top2 },
                    QState::Numeric {
                        moments: m2,
                        top2: t2,
                    },
                ) => {
                    moments.merge(m2);
                    *top2 += t2;
                }
                _ => {}
            }
        }
        self.nps.merge(&other.nps);
        for (a, b) in self.spend.iter_mut().zip(&other.spend) {
            for (x, y) in a.iter_mut().zip(b) {
                x.merge(y);
            }
        }
        for (a, b) in self.latest_texts.iter_mut().zip(&other.latest_texts) {
            for &e in b {
                push_latest(a, e);
            }
        }
        for (a, b) in self.text_counts.iter_mut().zip(&other.text_counts) {
            for (k, v) in b {
                *a.entry(*k).or_insert(0) += v;
            }
        }
    }
}

/// Keeps the `LATEST_TEXTS` newest (time, id) pairs, newest first; ties by
/// id descending so the order does not depend on arrival.
fn push_latest(list: &mut Vec<(i64, u32)>, e: (i64, u32)) {
    let pos = list.partition_point(|&x| x > e);
    if pos < LATEST_TEXTS {
        list.insert(pos, e);
        list.truncate(LATEST_TEXTS);
    }
}

/// Lower-cased, trimmed, punctuation removed, inner whitespace collapsed.
pub fn normalise(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c.is_whitespace() {
                c
            } else {
                ' '
            }
        })
        .flat_map(char::to_lowercase)
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The §1 figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct Panel {
    pub n: u64,
    /// n / all responses of the questionnaire.
    pub share: Option<f64>,
    pub choices: Vec<ChoiceQuestion>,
    pub factors: Vec<FactorFigures>,
    pub nps: Option<NpsFigures>,
    pub money: Vec<MoneyQuestion>,
    pub open_answers: Vec<OpenAnswers>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct ChoiceQuestion {
    pub key: String,
    pub answered: u64,
    pub options: Vec<OptionFigures>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct OptionFigures {
    pub option: String,
    pub count: u64,
    /// count / answered; None when nobody answered.
    pub share: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct FactorFigures {
    pub key: String,
    pub factor_id: Option<String>,
    pub name: String,
    pub n: u64,
    pub mean: Option<f64>,
    pub sd: Option<f64>,
    pub ci95_low: Option<f64>,
    pub ci95_high: Option<f64>,
    pub top2: Option<f64>,
    /// 1 = most important (mean descending, ties by name).
    pub rank: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct NpsFigures {
    pub n: u64,
    pub promoters: u64,
    pub passives: u64,
    pub detractors: u64,
    pub nps: Option<f64>,
    pub ci95_low: Option<f64>,
    pub ci95_high: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct MoneyQuestion {
    pub key: String,
    pub options: Vec<MoneyOption>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct MoneyOption {
    pub option: String,
    pub total: f64,
    pub mean: Option<f64>,
    /// This option's share of the question's total spend.
    pub share_of_total: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct OpenAnswers {
    pub key: String,
    /// Newest first.
    pub latest: Vec<String>,
    /// Most frequent normalised answers, count descending then text.
    pub frequent: Vec<TextCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct TextCount {
    pub text: String,
    pub count: u64,
}

/// Mean ± t(0.975, n−1)·sd/√n; None when n < 2.
pub fn mean_ci95(m: &Moments) -> Option<(f64, f64)> {
    let (mean, sd) = (m.mean()?, m.sd()?);
    let t = StudentsT::new(0.0, 1.0, (m.n - 1) as f64)
        .ok()?
        .inverse_cdf(0.975);
    let half = t * sd / (m.n as f64).sqrt();
    Some((mean - half, mean + half))
}

impl PanelState {
    /// The figures; `total` is the number of all responses of the questionnaire.
    pub fn finish(&self, ds: &Dataset, total: u64) -> Panel {
        let qs = &ds.questions;
        let mut choices = Vec::new();
        let mut factors = Vec::new();
        let mut money = Vec::new();
        let mut open_answers = Vec::new();
        for (qi, q) in qs.iter().enumerate() {
            match (&q.kind, &self.questions[qi]) {
                (
                    Kind::Single { options } | Kind::Multi { options },
                    QState::Choice { answered, counts },
                ) => {
                    choices.push(ChoiceQuestion {
                        key: q.key.clone(),
                        answered: *answered,
                        options: options
                            .iter()
                            .zip(counts)
                            .map(|(o, &c)| OptionFigures {
                                option: o.clone(),
                                count: c,
                                share: (*answered > 0).then(|| c as f64 / *answered as f64),
                            })
                            .collect(),
                    });
                    if !self.spend[qi].is_empty() {
                        let total_spend: f64 = self.spend[qi].iter().map(|m| m.sum).sum();
                        money.push(MoneyQuestion {
                            key: q.key.clone(),
                            options: options
                                .iter()
                                .zip(&self.spend[qi])
                                .map(|(o, m)| MoneyOption {
                                    option: o.clone(),
                                    total: m.sum,
                                    mean: m.mean(),
                                    share_of_total: (total_spend > 0.0)
                                        .then(|| m.sum / total_spend),
                                })
                                .collect(),
                        });
                    }
                }
                (Kind::Rating, QState::Numeric { moments, top2 })
                    if q.role == Role::ChoiceFactorImportance =>
                {
                    let ci = mean_ci95(moments);
                    factors.push(FactorFigures {
                        key: q.key.clone(),
                        factor_id: q.factor.as_ref().map(|f| f.0.clone()),
                        name: q
                            .factor
                            .as_ref()
                            .map(|f| f.1.clone())
                            .unwrap_or_else(|| q.key.clone()),
                        n: moments.n,
                        mean: moments.mean(),
                        sd: moments.sd(),
                        ci95_low: ci.map(|c| c.0),
                        ci95_high: ci.map(|c| c.1),
                        top2: (moments.n > 0).then(|| *top2 as f64 / moments.n as f64),
                        rank: 0,
                    });
                }
                (Kind::Text, QState::None) if q.role == Role::OpenAnswer => {
                    // Normalised once per distinct text, not once per answer.
                    let mut by_norm: HashMap<String, u64> = HashMap::new();
                    for (id, count) in &self.text_counts[qi] {
                        let norm = normalise(&ds.texts[*id as usize]);
                        if !norm.is_empty() {
                            *by_norm.entry(norm).or_insert(0) += count;
                        }
                    }
                    let mut frequent: Vec<TextCount> = by_norm
                        .into_iter()
                        .map(|(text, count)| TextCount { text, count })
                        .collect();
                    frequent
                        .sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.text.cmp(&b.text)));
                    frequent.truncate(TOP_TEXTS);
                    open_answers.push(OpenAnswers {
                        key: q.key.clone(),
                        latest: self.latest_texts[qi]
                            .iter()
                            .map(|&(_, id)| ds.texts[id as usize].clone())
                            .collect(),
                        frequent,
                    });
                }
                _ => {}
            }
        }
        let mut order: Vec<usize> = (0..factors.len()).collect();
        order.sort_by(|&a, &b| {
            let (fa, fb) = (&factors[a], &factors[b]);
            fb.mean
                .unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&fa.mean.unwrap_or(f64::NEG_INFINITY))
                .then_with(|| fa.name.cmp(&fb.name))
        });
        for (rank, i) in order.into_iter().enumerate() {
            factors[i].rank = rank as u32 + 1;
        }
        let has_nps = qs
            .iter()
            .any(|q| q.role == Role::Nps && q.kind == Kind::Nps);
        Panel {
            n: self.n,
            share: (total > 0).then(|| self.n as f64 / total as f64),
            choices,
            factors,
            nps: has_nps.then(|| {
                let ci = self.nps.ci95();
                NpsFigures {
                    n: self.nps.n(),
                    promoters: self.nps.promoters,
                    passives: self.nps.passives,
                    detractors: self.nps.detractors,
                    nps: self.nps.nps(),
                    ci95_low: ci.map(|c| c.0),
                    ci95_high: ci.map(|c| c.1),
                }
            }),
            money,
            open_answers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn questions() -> Vec<PanelQuestion> {
        let q = |key: &str, kind: Kind, role: Role| PanelQuestion {
            key: key.into(),
            kind,
            role,
            factor: None,
        };
        let mut price = q("price", Kind::Rating, Role::ChoiceFactorImportance);
        price.factor = Some(("f1".into(), "Price".into()));
        let mut place = q("place", Kind::Rating, Role::ChoiceFactorImportance);
        place.factor = Some(("f2".into(), "Location".into()));
        vec![
            q(
                "city",
                Kind::Single {
                    options: vec!["msk".into(), "spb".into()],
                },
                Role::SegmentAttribute,
            ),
            q(
                "src",
                Kind::Multi {
                    options: vec!["social".into(), "tv".into(), "friends".into()],
                },
                Role::Other,
            ),
            price,
            place,
            q("nps", Kind::Nps, Role::Nps),
            q("spend", Kind::Number, Role::Spend),
            q("tip", Kind::Text, Role::OpenAnswer),
        ]
    }

    fn row(
        city: Option<u16>,
        src: u64,
        price: f64,
        place: f64,
        nps: f64,
        spend: f64,
        tip: Option<&str>,
    ) -> Vec<Cell> {
        vec![
            city.map(Cell::Choice).unwrap_or(Cell::Blank),
            // 0 here is a blank; tests of `[]` push `Cell::Multi(0)` themselves.
            if src == 0 {
                Cell::Blank
            } else {
                Cell::Multi(src)
            },
            Cell::Num(price),
            Cell::Num(place),
            Cell::Num(nps),
            Cell::Num(spend),
            tip.map(|t| Cell::Text(t.into())).unwrap_or(Cell::Blank),
        ]
    }

    fn small() -> Dataset {
        let mut ds = Dataset::new(questions());
        let nan = f64::NAN;
        ds.push(
            1,
            row(
                Some(0),
                0b011,
                5.0,
                3.0,
                10.0,
                1000.0,
                Some("More trainers!"),
            ),
        );
        ds.push(
            2,
            row(Some(1), 0b100, 4.0, 4.0, 6.0, 500.0, Some("more  trainers")),
        );
        ds.push(3, row(Some(0), 0b000, 2.0, 5.0, 9.0, nan, None));
        ds.push(4, row(None, 0b001, nan, 4.0, nan, 300.0, Some("Parking")));
        ds
    }

    #[test]
    fn an_empty_selection_is_answered_and_chooses_nothing() {
        let mut ds = Dataset::new(questions());
        let with_src = |src: Cell| {
            let mut r = row(Some(0), 0, 3.0, 3.0, 8.0, 10.0, None);
            r[1] = src;
            r
        };
        ds.push(1, with_src(Cell::Multi(0))); // []
        ds.push(2, with_src(Cell::Multi(0b001))); // ["social"]
        ds.push(3, with_src(Cell::Blank)); // key absent
        ds.push(4, with_src(Cell::Blank)); // null
        let p = ds.fold_all().finish(&ds, 4);
        let src = &p.choices[1];
        assert_eq!(src.answered, 2);
        assert_eq!(src.options[0].count, 1);
        assert_eq!(src.options[0].share, Some(0.5));
        assert_eq!(src.options[1].share, Some(0.0));
        // Row by row (the incremental path) gives the same figures.
        let mut one_by_one = PanelState::new(&ds.questions);
        for r in 0..ds.len() {
            one_by_one.add_row(&ds, r);
        }
        assert_eq!(one_by_one.finish(&ds, 4), p);
        // `[]` holds no value, so no value condition selects it.
        let all = [Condition {
            question: "src".into(),
            values: Some(vec!["social".into(), "tv".into(), "friends".into()]),
            min: None,
            max: None,
        }];
        let f = CompiledFilter::compile(&ds, &all).unwrap();
        assert_eq!(ds.select(&f), vec![1]);
    }

    #[test]
    fn panel_of_a_small_set_matches_hand_computation() {
        let ds = small();
        let p = ds.fold_all().finish(&ds, 4);
        assert_eq!(p.n, 4);
        // city: answered 3 (one blank); msk 2/3, spb 1/3
        let city = &p.choices[0];
        assert_eq!(city.answered, 3);
        assert_eq!(city.options[0].share, Some(2.0 / 3.0));
        // src: answered 3; social 2, tv 1, friends 1 → shares sum above 1
        let src = &p.choices[1];
        assert_eq!(src.answered, 3);
        assert_eq!(
            src.options.iter().map(|o| o.count).collect::<Vec<_>>(),
            [2, 1, 1]
        );
        // price 5,4,2: mean 11/3, sd √(7/3); top2 = 2/3
        let price = p.factors.iter().find(|f| f.key == "price").unwrap();
        assert_eq!(price.n, 3);
        assert!((price.mean.unwrap() - 11.0 / 3.0).abs() < 1e-12);
        assert!((price.sd.unwrap() - (7.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(price.top2, Some(2.0 / 3.0));
        // ci95: t(0.975, 2) = 4.302652729749464 (scipy.stats.t.ppf(0.975, 2))
        let half = 4.302_652_729_749_464 * (7.0f64 / 3.0).sqrt() / 3.0f64.sqrt();
        assert!((price.ci95_high.unwrap() - (11.0 / 3.0 + half)).abs() < 1e-9);
        // place 3,4,5,4: mean 4 > price 11/3 → rank 1
        let place = p.factors.iter().find(|f| f.key == "place").unwrap();
        assert_eq!((place.rank, price.rank), (1, 2));
        // NPS 10, 6, 9 → P 2, D 1 → 33.3…
        let nps = p.nps.unwrap();
        assert!((nps.nps.unwrap() - 100.0 / 3.0).abs() < 1e-12);
        // spend by city: msk 1000 (row 3 has no spend), spb 500; blank city's 300 not counted
        let money = &p.money[0];
        assert_eq!(money.options[0].total, 1000.0);
        assert_eq!(money.options[1].share_of_total, Some(500.0 / 1500.0));
        // open answers: normalised "more trainers" twice
        let tips = &p.open_answers[0];
        assert_eq!(
            tips.frequent[0],
            TextCount {
                text: "more trainers".to_owned(),
                count: 2
            }
        );
        assert_eq!(tips.latest, ["Parking", "more  trainers", "More trainers!"]);
    }

    #[test]
    fn filters_and_across_conditions_or_within() {
        let ds = small();
        let conds = vec![
            Condition {
                question: "src".into(),
                values: Some(vec!["social".into(), "friends".into()]),
                min: None,
                max: None,
            },
            Condition {
                question: "spend".into(),
                values: None,
                min: Some(400.0),
                max: Some(2000.0),
            },
        ];
        let f = CompiledFilter::compile(&ds, &conds).unwrap();
        // rows 0 (social, 1000) and 1 (friends, 500); row 3 spend 300 out of range
        assert_eq!(ds.select(&f), [0, 1]);
        let p = ds.fold_rows(ds.select(&f)).finish(&ds, ds.len() as u64);
        assert_eq!(p.share, Some(0.5));
        let bad = vec![Condition {
            question: "city".into(),
            values: Some(vec!["kzn".into()]),
            min: None,
            max: None,
        }];
        assert_eq!(
            CompiledFilter::compile(&ds, &bad).unwrap_err()[0].0,
            "conditions[0].values"
        );
    }

    /// The row-at-a-time reading of a filter, to check `select` against.
    fn matches_row(f: &CompiledFilter, ds: &Dataset, row: usize) -> bool {
        f.conditions
            .iter()
            .all(|(qi, test)| match (&ds.columns[*qi], test) {
                (Column::Choice(v), &Test::AnyOf(mask)) => choice_in(v[row], mask),
                (Column::Multi(v, _), &Test::AnyOf(mask)) => v[row] & mask != 0,
                (Column::Num(v), &Test::Range(lo, hi)) => in_range(v[row], lo, hi),
                _ => false,
            })
    }

    #[test]
    fn selection_and_fold_on_many_threads_equal_the_row_by_row_reading() {
        // Long enough for the parallel scan; rows vary by their index.
        let mut ds = Dataset::new(questions());
        let n = PARALLEL_SCAN_MIN + 1_001;
        for i in 0..n {
            let nan = f64::NAN;
            let city = (i % 3 < 2).then_some((i % 3) as u16);
            let spend = if i % 7 == 0 { nan } else { (i % 1_500) as f64 };
            let price = if i % 11 == 0 { nan } else { (1 + i % 5) as f64 };
            let nps = (i % 12) as f64; // 11 is out of range: not counted
            let tip = ["Parking", "more trainers", "More trainers!"].get(i % 13);
            ds.push(
                i as i64,
                row(city, (i % 8) as u64, price, 3.0, nps, spend, tip.copied()),
            );
        }
        let cond =
            |q: &str, values: Option<&[&str]>, min: Option<f64>, max: Option<f64>| Condition {
                question: q.into(),
                values: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
                min,
                max,
            };
        let filters = [
            vec![],
            vec![cond("city", Some(&["spb"]), None, None)],
            vec![cond("src", Some(&["social", "friends"]), None, None)],
            vec![cond("spend", None, Some(400.0), Some(900.0))],
            vec![
                cond("spend", None, Some(100.0), None),
                cond("city", Some(&["msk"]), None, None),
                cond("price", None, None, Some(2.0)),
            ],
            vec![
                cond("src", Some(&["tv"]), None, None),
                cond("spend", None, Some(1_400.0), Some(1_450.0)),
            ],
        ];
        for conds in filters {
            let f = CompiledFilter::compile(&ds, &conds).unwrap();
            let expected: Vec<u32> = (0..n as u32)
                .filter(|&r| matches_row(&f, &ds, r as usize))
                .collect();
            let selected = ds.select(&f);
            assert_eq!(selected, expected, "{conds:?}");
            // The fold of many rows runs a thread per group of columns; it
            // equals folding the same rows one by one on this thread.
            let mut one_by_one = PanelState::new(&ds.questions);
            for &r in &selected {
                one_by_one.add_row(&ds, r as usize);
            }
            assert_eq!(ds.fold_rows(selected), one_by_one, "{conds:?}");
        }
    }

    #[test]
    fn normalising_removes_case_punctuation_and_spacing() {
        assert_eq!(normalise("  Больше   тренеров!!! "), "больше тренеров");
    }

    /// city, sources, price, place, nps, spend, tip
    type RowSpec = (
        Option<u16>,
        u64,
        Option<u8>,
        Option<u8>,
        Option<u8>,
        Option<u32>,
        Option<u8>,
    );

    fn arb_rows() -> impl Strategy<Value = Vec<RowSpec>> {
        prop::collection::vec(
            (
                prop::option::of(0u16..2),
                0u64..8,
                prop::option::of(1u8..=5),
                prop::option::of(1u8..=5),
                prop::option::of(0u8..=10),
                prop::option::of(0u32..10_000),
                prop::option::of(0u8..4),
            ),
            0..60,
        )
    }

    fn build(rows: &[RowSpec]) -> Dataset {
        let mut ds = Dataset::new(questions());
        let f = |x: Option<u8>| x.map(f64::from).unwrap_or(f64::NAN);
        let tips = ["a", "b!", "B", "c"];
        for (i, r) in rows.iter().enumerate() {
            ds.push(
                i as i64,
                row(
                    r.0,
                    r.1,
                    f(r.2),
                    f(r.3),
                    f(r.4),
                    r.5.map(f64::from).unwrap_or(f64::NAN),
                    r.6.map(|t| tips[t as usize]),
                ),
            );
        }
        ds
    }

    proptest! {
        #[test]
        fn folding_in_pieces_equals_folding_all(rows in arb_rows(), cut in 0usize..60) {
            let ds = build(&rows);
            let cut = cut.min(ds.len()) as u32;
            let mut a = ds.fold_rows(0..cut);
            a.merge(&ds.fold_rows(cut..ds.len() as u32));
            let all = ds.fold_all();
            prop_assert_eq!(a.finish(&ds, ds.len() as u64), all.finish(&ds, ds.len() as u64));
        }

        #[test]
        fn folding_row_by_row_equals_folding_columns(rows in arb_rows()) {
            let ds = build(&rows);
            let mut one_by_one = PanelState::new(&ds.questions);
            for r in 0..ds.len() {
                one_by_one.add_row(&ds, r);
            }
            prop_assert_eq!(one_by_one, ds.fold_all());
        }

        #[test]
        fn single_choice_shares_sum_to_one_and_nps_is_bounded(rows in arb_rows()) {
            let ds = build(&rows);
            let p = ds.fold_all().finish(&ds, ds.len() as u64);
            let city = &p.choices[0];
            if city.answered > 0 {
                let s: f64 = city.options.iter().filter_map(|o| o.share).sum();
                prop_assert!((s - 1.0).abs() < 1e-12);
            }
            if let Some(n) = p.nps.and_then(|n| n.nps) {
                prop_assert!((-100.0..=100.0).contains(&n));
            }
        }
    }
}

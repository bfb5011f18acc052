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

mod figures;
mod fold;
pub use figures::*;
pub use fold::*;

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
        let columns: Vec<usize> = (0..self.questions.len()).collect();
        self.fold_rows_of(rows, &columns)
    }

    /// [`Dataset::fold_rows`] for the listed columns only; the other
    /// questions' aggregates stay empty (`n` still counts every row).
    pub fn fold_rows_of(
        &self,
        rows: impl IntoIterator<Item = u32>,
        columns: &[usize],
    ) -> PanelState {
        let rows: Vec<u32> = rows.into_iter().collect();
        let spend = self.spend_column();
        let nq = columns.len();
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
            fold(columns)
        } else {
            let groups: Vec<Vec<usize>> = (0..threads)
                .map(|t| columns.iter().skip(t).step_by(threads).copied().collect())
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

#[cfg(test)]
mod tests;

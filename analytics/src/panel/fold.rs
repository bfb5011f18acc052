//! Folding rows into a mergeable [`PanelState`]: one row at a time, a
//! selection, or all rows column by column (split over the cores when large).
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::moments::Moments;
use crate::nps::NpsTally;

use super::*;

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
    pub(super) fn fold_column(
        &mut self,
        ds: &Dataset,
        qi: usize,
        rows: &[u32],
        spend_col: Option<&[f64]>,
    ) {
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
                    // Only the chosen options (set bits), not every option.
                    let mut rest = mask;
                    while rest != 0 {
                        let k = rest.trailing_zeros() as usize;
                        rest &= rest - 1;
                        if let Some(count) = counts.get_mut(k) {
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

//! Sales barriers ("Метчинг отказов и барьеров продаж"): which barriers
//! explain refusals. The inputs are plain tallies per barrier — a barrier is
//! one option of a `barrier` question, identified by the question's key and
//! the option's value — for two groups: **non-buyers** (the answers of
//! `non_buyer` questionnaires) and **buyers** (`customer_panel` and
//! `segment_survey` questionnaires asking the same question). Counting the
//! answers (blanks excluded, `[]` an answer, as analytics.md §0 says) and
//! applying a segment filter are the caller's job.
//!
//! Per barrier and group: `count`, `share` = count / n_answered of the
//! question (multi-choice shares may sum above 1) and its 95% Wilson score
//! interval (z = 1.959963984540054, no continuity correction).
//!
//! **Lift**, where both groups answered the question (n > 0 in each): the
//! non-buyers' share against the buyers' with §2's two-proportion test
//! (pooled z; Fisher's exact test when an expected count is below 5),
//! one-sided `greater` (the barrier is more frequent among non-buyers), the
//! difference with §2's 95% CI (unpooled standard error) and
//! Benjamini–Hochberg q-values across every barrier tested in one analysis.
//! The test itself is [`crate::hypotheses`]'s, not a copy of it.
//!
//! **Refusals explained** (the ranking): the number of non-buyers who named
//! the barrier beyond what buyers' rate would predict,
//! `max(0, count_nb − n_nb · p_buyers)` with `p_buyers` = the buyers'
//! share; when no buyer comparison exists (no buyer answered the question),
//! the plain non-buyer count `count_nb`; a barrier no non-buyer was asked
//! explains 0. Barriers are ranked by it, descending; ties by the option's
//! value, then the question's key (both ascending, byte order).
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::hypotheses::{
    Direction, Hypothesis, HypothesisSettings, MetricData, TestKind, evaluate_hypotheses,
};
use crate::panel::{LATEST_TEXTS, TextCount, most_frequent};

/// z_{0.975}, as the spec states it for the Wilson interval.
pub const Z95: f64 = 1.959963984540054;

/// The 95% Wilson score interval of k successes in n trials (no continuity
/// correction): (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n), each
/// bound clamped to [0, 1]. None when n = 0 or k > n.
pub fn wilson(k: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 || k > n {
        return None;
    }
    let (nf, p) = (n as f64, k as f64 / n as f64);
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / nf;
    let centre = (p + z2 / (2.0 * nf)) / denominator;
    let half = Z95 * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denominator;
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// How many of the `n` respondents who answered a question named the barrier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub count: u64,
    pub n: u64,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.count += other.count;
        self.n += other.n;
    }
}

/// One barrier's tallies. A group is None when none of its questionnaires
/// asks the question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BarrierInput {
    /// The barrier question's key.
    pub question: String,
    /// The option's value: the barrier itself.
    pub option: String,
    pub non_buyers: Option<Tally>,
    pub buyers: Option<Tally>,
}

/// A barrier's frequency in one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct GroupFigures {
    /// Respondents who named the barrier.
    pub count: u64,
    /// Respondents who answered the question (blanks excluded, `[]` counted).
    pub n_answered: u64,
    /// count / n_answered; null when nobody answered.
    #[cfg_attr(feature = "schema", schema(minimum = 0.0, maximum = 1.0))]
    pub share: Option<f64>,
    /// 95% Wilson score interval of the share; null when nobody answered.
    #[cfg_attr(feature = "schema", schema(minimum = 0.0, maximum = 1.0))]
    pub ci95_low: Option<f64>,
    #[cfg_attr(feature = "schema", schema(minimum = 0.0, maximum = 1.0))]
    pub ci95_high: Option<f64>,
}

impl GroupFigures {
    fn of(t: Tally) -> Self {
        let ci = wilson(t.count, t.n);
        Self {
            count: t.count,
            n_answered: t.n,
            share: (t.n > 0).then(|| t.count as f64 / t.n as f64),
            ci95_low: ci.map(|c| c.0),
            ci95_high: ci.map(|c| c.1),
        }
    }
}

/// Non-buyers against buyers for one barrier (§2's share test, `greater`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct Lift {
    /// share among non-buyers − share among buyers.
    #[cfg_attr(feature = "schema", schema(minimum = -1.0, maximum = 1.0))]
    pub difference: f64,
    /// 95% CI of the difference (normal, unpooled standard error).
    pub ci95_low: f64,
    pub ci95_high: f64,
    /// One-sided p-value of "more frequent among non-buyers"; null when the
    /// test is undefined (the barrier named by all or by none of both groups).
    #[cfg_attr(feature = "schema", schema(minimum = 0.0, maximum = 1.0))]
    pub p_value: Option<f64>,
    /// Benjamini–Hochberg q-value across the barriers tested in this analysis.
    #[cfg_attr(feature = "schema", schema(minimum = 0.0, maximum = 1.0))]
    pub q_value: Option<f64>,
    /// `two_proportion_z`, or `fisher_exact` when an expected count is below 5.
    pub test: TestKind,
}

/// The figures of one barrier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BarrierFigures {
    pub question: String,
    pub option: String,
    pub non_buyers: Option<GroupFigures>,
    pub buyers: Option<GroupFigures>,
    /// Null unless both groups answered the question.
    pub lift: Option<Lift>,
    /// Refusals the barrier would explain (see the module).
    pub explained_refusals: f64,
    /// 1 = explains the most refusals.
    pub rank: u32,
}

/// The figures of every barrier, ranked (see the module), first first.
pub fn analyse(inputs: &[BarrierInput]) -> Vec<BarrierFigures> {
    let compared = |b: &BarrierInput| match (b.non_buyers, b.buyers) {
        (Some(nb), Some(bu)) if nb.n > 0 && bu.n > 0 => Some((nb, bu)),
        _ => None,
    };
    let tested: Vec<usize> = (0..inputs.len())
        .filter(|&i| compared(&inputs[i]).is_some())
        .collect();
    let hypotheses: Vec<Hypothesis> = tested
        .iter()
        .filter_map(|&i| compared(&inputs[i]))
        .map(|(nb, bu)| Hypothesis {
            data: MetricData::Share {
                x1: nb.count,
                n1: nb.n,
                x2: bu.count,
                n2: bu.n,
            },
            direction: Direction::Greater,
            min_effect: None,
        })
        .collect();
    let results = evaluate_hypotheses(&hypotheses, &HypothesisSettings::default());
    let mut lifts: Vec<Option<Lift>> = vec![None; inputs.len()];
    for (&i, r) in tested.iter().zip(results) {
        lifts[i] = match (r.difference, r.ci_low, r.ci_high) {
            (Some(difference), Some(ci95_low), Some(ci95_high)) => Some(Lift {
                difference,
                ci95_low,
                ci95_high,
                p_value: r.p_value,
                q_value: r.q_value,
                test: r.test,
            }),
            _ => None,
        };
    }
    let mut out: Vec<BarrierFigures> = inputs
        .iter()
        .zip(lifts)
        .map(|(b, lift)| BarrierFigures {
            question: b.question.clone(),
            option: b.option.clone(),
            non_buyers: b.non_buyers.map(GroupFigures::of),
            buyers: b.buyers.map(GroupFigures::of),
            explained_refusals: explained_refusals(b.non_buyers, compared(b).map(|c| c.1)),
            lift,
            rank: 0,
        })
        .collect();
    out.sort_by(|a, b| {
        b.explained_refusals
            .total_cmp(&a.explained_refusals)
            .then_with(|| a.option.cmp(&b.option))
            .then_with(|| a.question.cmp(&b.question))
    });
    for (i, b) in out.iter_mut().enumerate() {
        b.rank = i as u32 + 1;
    }
    out
}

/// max(0, count_nb − n_nb·p_buyers) against answering buyers, else count_nb.
pub fn explained_refusals(non_buyers: Option<Tally>, buyers: Option<Tally>) -> f64 {
    let Some(nb) = non_buyers else {
        return 0.0;
    };
    match buyers {
        Some(b) if b.n > 0 => {
            let expected = nb.n as f64 * (b.count as f64 / b.n as f64);
            (nb.count as f64 - expected).max(0.0)
        }
        _ => nb.count as f64,
    }
}

/// The open answers of one text barrier question in one questionnaire.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenParts {
    /// Respondents who answered (non-blank).
    pub answered: u64,
    /// (time, text) of its latest answers, any order.
    pub latest: Vec<(i64, String)>,
    /// Counts per normalised answer (`panel::normalise`).
    pub counts: HashMap<String, u64>,
}

impl OpenParts {
    /// Adds another questionnaire's answers to the same question.
    pub fn merge(&mut self, other: OpenParts) {
        self.answered += other.answered;
        self.latest.extend(other.latest);
        for (text, count) in other.counts {
            *self.counts.entry(text).or_insert(0) += count;
        }
    }
}

/// Text barriers as §1 lists open answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct OpenBarriers {
    pub answered: u64,
    /// The latest 50 answers, newest first (ties: text ascending).
    pub latest: Vec<String>,
    /// The 20 most frequent normalised answers, count descending then text.
    pub frequent: Vec<TextCount>,
}

impl OpenParts {
    pub fn finish(mut self) -> OpenBarriers {
        self.latest
            .sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        self.latest.truncate(LATEST_TEXTS);
        OpenBarriers {
            answered: self.answered,
            latest: self.latest.into_iter().map(|(_, t)| t).collect(),
            frequent: most_frequent(self.counts),
        }
    }
}

#[cfg(test)]
mod tests;

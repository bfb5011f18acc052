//! The §1 figures of a [`PanelState`]: shares, factor means with their
//! intervals, NPS, money, open answers.
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::moments::Moments;

use super::*;

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

/// The [`TOP_TEXTS`] most frequent answers, count descending then text.
pub fn most_frequent(counts: HashMap<String, u64>) -> Vec<TextCount> {
    let mut frequent: Vec<TextCount> = counts
        .into_iter()
        .map(|(text, count)| TextCount { text, count })
        .collect();
    frequent.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.text.cmp(&b.text)));
    frequent.truncate(TOP_TEXTS);
    frequent
}

impl PanelState {
    /// Counts of an open-answer question's answers by normalised text
    /// (normalised once per distinct text, not once per answer; answers
    /// that normalise to nothing are left out).
    pub fn normalised_counts(&self, ds: &Dataset, qi: usize) -> HashMap<String, u64> {
        let mut by_norm: HashMap<String, u64> = HashMap::new();
        for (id, count) in &self.text_counts[qi] {
            let norm = normalise(&ds.texts[*id as usize]);
            if !norm.is_empty() {
                *by_norm.entry(norm).or_insert(0) += count;
            }
        }
        by_norm
    }

    /// An open-answer question's answered count and latest answers with
    /// their times, newest first.
    pub fn latest_answers(&self, ds: &Dataset, qi: usize) -> (u64, Vec<(i64, String)>) {
        let answered = self.text_counts[qi].values().sum();
        let latest = self.latest_texts[qi]
            .iter()
            .map(|&(t, id)| (t, ds.texts[id as usize].clone()))
            .collect();
        (answered, latest)
    }

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
                    open_answers.push(OpenAnswers {
                        key: q.key.clone(),
                        latest: self.latest_texts[qi]
                            .iter()
                            .map(|&(_, id)| ds.texts[id as usize].clone())
                            .collect(),
                        frequent: most_frequent(self.normalised_counts(ds, qi)),
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

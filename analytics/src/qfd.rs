//! QFD for the CJM (analytics.md §3): choice factors × touchpoints with
//! correlations in {0, 1, 3, 9}.
//!
//! - touchpoint score t_j = Σ_i w_i·c_ij, factor score f_i = w_i·Σ_j c_ij,
//!   stage score s_k = Σ_{j∈k} t_j;
//! - relative weight = score / Σ scores of the same kind. When that sum is 0
//!   (every score of the kind is 0) the ratio is 0/0, so every relative weight
//!   of the kind is `None` (JSON null) rather than an invented 0 or 1/n;
//! - class per kind by z = (score − mean)/population sd; all `important` when
//!   the sd is 0 (i.e. all scores of the kind are equal);
//! - improvement priority = relative weight × (5 − mean mystery-shopper
//!   rating)/4, `None` without a rating (or without a relative weight).
use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// Scores within this distance of a class threshold count as on it, so that
/// mathematically exact boundaries (z = ±0.5) are not decided by rounding.
const EPS: f64 = 1e-9;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Factor {
    pub id: String,
    pub name: String,
    /// w_i: the factor's mean importance from the panel, or a stored override.
    pub importance: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Touchpoint {
    pub id: String,
    pub stage_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub id: String,
    pub name: String,
}

/// One stored cell of the matrix, as entered; `value` is checked by
/// [`Correlation::try_from`]. Cells that are not stored count as 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorrelationCell {
    pub factor_id: String,
    pub touchpoint_id: String,
    pub value: i64,
}

/// c_ij: 0 = no relation / not assessed; 1 = the touchpoint cannot show how
/// the factor is delivered; 3 = it can; 9 = it is the critical experience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub enum Correlation {
    None,
    CannotShow,
    CanShow,
    Critical,
}

impl Correlation {
    pub fn value(self) -> u32 {
        match self {
            Correlation::None => 0,
            Correlation::CannotShow => 1,
            Correlation::CanShow => 3,
            Correlation::Critical => 9,
        }
    }
}

impl TryFrom<i64> for Correlation {
    type Error = String;

    fn try_from(v: i64) -> Result<Self, Self::Error> {
        match v {
            0 => Ok(Correlation::None),
            1 => Ok(Correlation::CannotShow),
            3 => Ok(Correlation::CanShow),
            9 => Ok(Correlation::Critical),
            other => Err(format!("correlation must be 0, 1, 3 or 9, got {other}")),
        }
    }
}

impl From<Correlation> for i64 {
    fn from(c: Correlation) -> i64 {
        i64::from(c.value())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QfdInput {
    pub factors: Vec<Factor>,
    pub touchpoints: Vec<Touchpoint>,
    pub stages: Vec<Stage>,
    pub cells: Vec<CorrelationCell>,
}

/// z above `critical_above` → critical; z below `less_important_below` →
/// less important; otherwise important (bounds inclusive). Critical is
/// checked first should the bounds be configured crossed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassThresholds {
    pub critical_above: f64,
    pub less_important_below: f64,
}

impl Default for ClassThresholds {
    fn default() -> Self {
        ClassThresholds {
            critical_above: 0.5,
            less_important_below: -0.5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema, async_graphql::Enum))]
pub enum Class {
    Critical,
    Important,
    LessImportant,
}

/// One factor, touchpoint or stage with its score, in input order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct Scored {
    pub id: String,
    pub score: f64,
    /// None when every score of this kind is 0.
    pub relative_weight: Option<f64>,
    /// None when the kind's population sd is 0.
    pub z: Option<f64>,
    pub class: Class,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct QfdResult {
    pub factors: Vec<Scored>,
    pub touchpoints: Vec<Scored>,
    pub stages: Vec<Scored>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct TouchpointPriority {
    pub touchpoint_id: String,
    pub relative_weight: Option<f64>,
    pub mean_rating: Option<f64>,
    pub priority: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum QfdError {
    DuplicateFactor {
        factor_id: String,
    },
    DuplicateTouchpoint {
        touchpoint_id: String,
    },
    DuplicateStage {
        stage_id: String,
    },
    InvalidImportance {
        factor_id: String,
        importance: f64,
    },
    UnknownStage {
        touchpoint_id: String,
        stage_id: String,
    },
    UnknownFactor {
        factor_id: String,
        touchpoint_id: String,
    },
    UnknownTouchpoint {
        factor_id: String,
        touchpoint_id: String,
    },
    DuplicateCell {
        factor_id: String,
        touchpoint_id: String,
    },
    InvalidCorrelation {
        factor_id: String,
        touchpoint_id: String,
        value: i64,
    },
}

impl fmt::Display for QfdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QfdError::DuplicateFactor { factor_id } => {
                write!(f, "factor {factor_id} is listed twice")
            }
            QfdError::DuplicateTouchpoint { touchpoint_id } => {
                write!(f, "touchpoint {touchpoint_id} is listed twice")
            }
            QfdError::DuplicateStage { stage_id } => write!(f, "stage {stage_id} is listed twice"),
            QfdError::InvalidImportance {
                factor_id,
                importance,
            } => write!(
                f,
                "importance of factor {factor_id} must be a finite number ≥ 0, got {importance}"
            ),
            QfdError::UnknownStage {
                touchpoint_id,
                stage_id,
            } => write!(
                f,
                "touchpoint {touchpoint_id} is in unknown stage {stage_id}"
            ),
            QfdError::UnknownFactor {
                factor_id,
                touchpoint_id,
            } => write!(
                f,
                "cell (factor {factor_id}, touchpoint {touchpoint_id}) names an unknown factor"
            ),
            QfdError::UnknownTouchpoint {
                factor_id,
                touchpoint_id,
            } => write!(
                f,
                "cell (factor {factor_id}, touchpoint {touchpoint_id}) names an unknown touchpoint"
            ),
            QfdError::DuplicateCell {
                factor_id,
                touchpoint_id,
            } => write!(
                f,
                "cell (factor {factor_id}, touchpoint {touchpoint_id}) is given twice"
            ),
            QfdError::InvalidCorrelation {
                factor_id,
                touchpoint_id,
                value,
            } => write!(
                f,
                "cell (factor {factor_id}, touchpoint {touchpoint_id}) has correlation {value}; \
                 allowed: 0, 1, 3, 9"
            ),
        }
    }
}

impl std::error::Error for QfdError {}

/// Computes the three kinds of scores, their relative weights and classes.
/// Importances must be finite and ≥ 0 (they are mean ratings), so a zero sum
/// of scores means every score of that kind is zero.
pub fn compute(input: &QfdInput, thresholds: &ClassThresholds) -> Result<QfdResult, QfdError> {
    let stage_index = index_ids(input.stages.iter().map(|s| s.id.as_str()), |id| {
        QfdError::DuplicateStage {
            stage_id: id.to_owned(),
        }
    })?;
    let factor_index = index_ids(input.factors.iter().map(|f| f.id.as_str()), |id| {
        QfdError::DuplicateFactor {
            factor_id: id.to_owned(),
        }
    })?;
    let touchpoint_index = index_ids(input.touchpoints.iter().map(|t| t.id.as_str()), |id| {
        QfdError::DuplicateTouchpoint {
            touchpoint_id: id.to_owned(),
        }
    })?;
    for f in &input.factors {
        if !f.importance.is_finite() || f.importance < 0.0 {
            return Err(QfdError::InvalidImportance {
                factor_id: f.id.clone(),
                importance: f.importance,
            });
        }
    }
    let mut touchpoint_stage = Vec::with_capacity(input.touchpoints.len());
    for t in &input.touchpoints {
        match stage_index.get(t.stage_id.as_str()) {
            Some(&k) => touchpoint_stage.push(k),
            None => {
                return Err(QfdError::UnknownStage {
                    touchpoint_id: t.id.clone(),
                    stage_id: t.stage_id.clone(),
                });
            }
        }
    }

    // c[i][j], dense: the matrix is small (tens × tens).
    let n_t = input.touchpoints.len();
    let mut c = vec![vec![0u32; n_t]; input.factors.len()];
    let mut seen = HashSet::with_capacity(input.cells.len());
    for cell in &input.cells {
        let names = || (cell.factor_id.clone(), cell.touchpoint_id.clone());
        let Some(&i) = factor_index.get(cell.factor_id.as_str()) else {
            let (factor_id, touchpoint_id) = names();
            return Err(QfdError::UnknownFactor {
                factor_id,
                touchpoint_id,
            });
        };
        let Some(&j) = touchpoint_index.get(cell.touchpoint_id.as_str()) else {
            let (factor_id, touchpoint_id) = names();
            return Err(QfdError::UnknownTouchpoint {
                factor_id,
                touchpoint_id,
            });
        };
        let Ok(value) = Correlation::try_from(cell.value) else {
            let (factor_id, touchpoint_id) = names();
            return Err(QfdError::InvalidCorrelation {
                factor_id,
                touchpoint_id,
                value: cell.value,
            });
        };
        if !seen.insert((i, j)) {
            let (factor_id, touchpoint_id) = names();
            return Err(QfdError::DuplicateCell {
                factor_id,
                touchpoint_id,
            });
        }
        c[i][j] = value.value();
    }

    let w: Vec<f64> = input.factors.iter().map(|f| f.importance).collect();
    // t_j = Σ_i w_i·c_ij
    let t_scores: Vec<f64> = (0..n_t)
        .map(|j| {
            w.iter()
                .zip(&c)
                .map(|(wi, row)| wi * f64::from(row[j]))
                .sum()
        })
        .collect();
    // f_i = w_i·Σ_j c_ij
    let f_scores: Vec<f64> = w
        .iter()
        .zip(&c)
        .map(|(wi, row)| wi * row.iter().map(|&x| f64::from(x)).sum::<f64>())
        .collect();
    // s_k = Σ_{j∈k} t_j
    let mut s_scores = vec![0.0; input.stages.len()];
    for (j, &k) in touchpoint_stage.iter().enumerate() {
        s_scores[k] += t_scores[j];
    }

    Ok(QfdResult {
        factors: scored(input.factors.iter().map(|f| &f.id), &f_scores, thresholds),
        touchpoints: scored(
            input.touchpoints.iter().map(|t| &t.id),
            &t_scores,
            thresholds,
        ),
        stages: scored(input.stages.iter().map(|s| &s.id), &s_scores, thresholds),
    })
}

fn index_ids<'a>(
    ids: impl Iterator<Item = &'a str>,
    duplicate: impl Fn(&str) -> QfdError,
) -> Result<HashMap<&'a str, usize>, QfdError> {
    let mut map = HashMap::new();
    for (k, id) in ids.enumerate() {
        if map.insert(id, k).is_some() {
            return Err(duplicate(id));
        }
    }
    Ok(map)
}

fn scored<'a>(
    ids: impl Iterator<Item = &'a String>,
    scores: &[f64],
    thresholds: &ClassThresholds,
) -> Vec<Scored> {
    let rel = relative_weights(scores);
    let classes = classify(scores, thresholds);
    ids.zip(scores)
        .zip(rel)
        .zip(classes)
        .map(|(((id, &score), relative_weight), (z, class))| Scored {
            id: id.clone(),
            score,
            relative_weight,
            z,
            class,
        })
        .collect()
}

/// score / Σ scores; all `None` when the sum is 0 (0/0 is undefined).
pub fn relative_weights(scores: &[f64]) -> Vec<Option<f64>> {
    let total: f64 = scores.iter().sum();
    scores
        .iter()
        .map(|&s| (total != 0.0).then(|| s / total))
        .collect()
}

/// z = (score − mean)/population sd and the class of every score. When the
/// sd is 0 (all scores equal, including a single item) z is `None` and every
/// item is important.
pub fn classify(scores: &[f64], thresholds: &ClassThresholds) -> Vec<(Option<f64>, Class)> {
    let all_equal = scores.windows(2).all(|p| p[0] == p[1]);
    if all_equal {
        return scores.iter().map(|_| (None, Class::Important)).collect();
    }
    let n = scores.len() as f64;
    let mean = scores.iter().sum::<f64>() / n;
    let var = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n;
    let sd = var.sqrt();
    scores
        .iter()
        .map(|s| {
            let z = (s - mean) / sd;
            let class = if z > thresholds.critical_above + EPS {
                Class::Critical
            } else if z < thresholds.less_important_below - EPS {
                Class::LessImportant
            } else {
                Class::Important
            };
            (Some(z), class)
        })
        .collect()
}

/// relative weight × (5 − mean rating)/4: 0 for a touchpoint rated 5, its
/// whole weight for one rated 1.
pub fn improvement_priority(relative_weight: Option<f64>, mean_rating: Option<f64>) -> Option<f64> {
    Some(relative_weight? * (5.0 - mean_rating?) / 4.0)
}

/// Priorities for every touchpoint of `result`, in its order; `mean_ratings`
/// maps touchpoint id → mean mystery-shopper rating (absent = not rated).
pub fn improvement_priorities(
    result: &QfdResult,
    mean_ratings: &HashMap<String, f64>,
) -> Vec<TouchpointPriority> {
    result
        .touchpoints
        .iter()
        .map(|t| {
            let mean_rating = mean_ratings.get(&t.id).copied();
            TouchpointPriority {
                touchpoint_id: t.id.clone(),
                relative_weight: t.relative_weight,
                mean_rating,
                priority: improvement_priority(t.relative_weight, mean_rating),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;

//! The per-client logistic model of §7: one-hot / z-scored features over
//! the labelled contacts, an L2-penalised fit by Newton's method (IRLS), the
//! probability and the signed contributions that explain it.
//!
//! Rows are sparse (a contact has one level per categorical attribute), so
//! one Newton step costs O(n · nnz²) for the Hessian plus one Cholesky
//! factorisation of a (d+1)² matrix (nalgebra), independent of how many
//! levels the other contacts have.
use std::collections::{BTreeMap, HashMap, HashSet};

use rustc_hash::FxHashMap;

use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

use super::AttrValue;

/// Labelled contacts a client needs before a model is fitted.
pub const MIN_LABELLED: usize = 200;
/// §7: stop when the gradient's Euclidean norm is below this.
pub const GRADIENT_TOLERANCE: f64 = 1e-8;
const MAX_ITERATIONS: usize = 100;

/// One column of the design.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Feature {
    /// 1 when the attribute's text is `value`, else 0.
    Level { key: String, value: String },
    /// (x − mean) / sd; 0 when missing.
    Numeric { key: String, mean: f64, sd: f64 },
}

impl Feature {
    pub fn name(&self) -> String {
        match self {
            Feature::Level { key, value } => format!("{key}={value}"),
            Feature::Numeric { key, .. } => key.clone(),
        }
    }
}

/// The columns, in a fixed order: attribute keys sorted, a categorical
/// key's levels sorted by text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpace {
    pub features: Vec<Feature>,
    /// Each key's columns, for encoding: one hash lookup per attribute
    /// (FxHash: rescoring looks up every attribute of a million contacts).
    #[serde(skip)]
    keys: FxHashMap<String, KeyColumns>,
}

/// The columns of one attribute key.
#[derive(Debug, Clone, PartialEq)]
enum KeyColumns {
    /// Column, mean, sd.
    Numeric(u32, f64, f64),
    /// Column of each level.
    Levels(FxHashMap<String, u32>),
}

/// A sparse row: (column, value), columns ascending.
pub type SparseRow = Vec<(u32, f64)>;

impl FeatureSpace {
    /// Columns of the labelled contacts' attributes (§7).
    pub fn from_labelled<'a>(
        contacts: impl IntoIterator<Item = &'a BTreeMap<String, AttrValue>> + Clone,
    ) -> Self {
        // Pass 1: which keys hold only numbers, and their values.
        let mut numeric: BTreeMap<&str, Option<Vec<f64>>> = BTreeMap::new();
        for attrs in contacts.clone() {
            for (k, v) in attrs {
                let e = numeric
                    .entry(k.as_str())
                    .or_insert_with(|| Some(Vec::new()));
                match (e.as_mut(), v) {
                    (Some(vals), AttrValue::Number(n)) if n.is_finite() => vals.push(*n),
                    _ => *e = None,
                }
            }
        }
        // Pass 2: the levels of the other keys.
        let mut levels: HashMap<&str, HashSet<String>> = HashMap::new();
        for attrs in contacts {
            for (k, v) in attrs {
                if numeric.get(k.as_str()).is_some_and(Option::is_none) {
                    let set = levels.entry(k.as_str()).or_default();
                    if let AttrValue::Text(t) = v {
                        if !set.contains(t) {
                            set.insert(t.clone());
                        }
                    } else {
                        set.insert(v.as_text());
                    }
                }
            }
        }
        let mut features = Vec::new();
        for (k, vals) in numeric {
            match vals {
                Some(vals) => {
                    let n = vals.len() as f64;
                    let mean = vals.iter().sum::<f64>() / n;
                    let sd = (vals.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
                    if sd > 0.0 && sd.is_finite() {
                        features.push(Feature::Numeric {
                            key: k.to_string(),
                            mean,
                            sd,
                        });
                    }
                }
                None => {
                    let mut texts: Vec<String> =
                        levels.remove(k).unwrap_or_default().into_iter().collect();
                    texts.sort_unstable();
                    for t in texts {
                        features.push(Feature::Level {
                            key: k.to_string(),
                            value: t,
                        });
                    }
                }
            }
        }
        Self::new(features)
    }

    /// A space of given columns (e.g. one read back from storage).
    pub fn new(features: Vec<Feature>) -> Self {
        let mut keys: FxHashMap<String, KeyColumns> = FxHashMap::default();
        for (i, f) in features.iter().enumerate() {
            match f {
                Feature::Level { key, value } => {
                    let e = keys
                        .entry(key.clone())
                        .or_insert_with(|| KeyColumns::Levels(FxHashMap::default()));
                    if let KeyColumns::Levels(levels) = e {
                        levels.insert(value.clone(), i as u32);
                    }
                }
                Feature::Numeric { key, mean, sd } => {
                    keys.entry(key.clone())
                        .or_insert(KeyColumns::Numeric(i as u32, *mean, *sd));
                }
            }
        }
        FeatureSpace { features, keys }
    }

    pub fn len(&self) -> usize {
        self.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// The column and value of one attribute, if it has one.
    fn column(&self, key: &str, v: &AttrValue) -> Option<(u32, f64)> {
        match self.keys.get(key)? {
            KeyColumns::Numeric(i, mean, sd) => v.as_number().map(|x| (*i, (x - mean) / sd)),
            KeyColumns::Levels(levels) => {
                let i = match v {
                    AttrValue::Text(t) => levels.get(t.as_str()),
                    other => levels.get(other.as_text().as_str()),
                }?;
                Some((*i, 1.0))
            }
        }
    }

    /// A contact's row: unseen levels and missing values are 0 (absent).
    pub fn encode(&self, attrs: &BTreeMap<String, AttrValue>) -> SparseRow {
        let mut row: SparseRow = attrs
            .iter()
            .filter_map(|(k, v)| self.column(k, v))
            .collect();
        row.sort_unstable_by_key(|&(i, _)| i);
        row
    }
}

/// A fitted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub space: FeatureSpace,
    pub intercept: f64,
    /// One weight per feature of `space`.
    pub weights: Vec<f64>,
    pub lambda: f64,
    pub iterations: usize,
    pub gradient_norm: f64,
    pub labelled: usize,
    pub converted: usize,
}

/// A feature's share of a contact's logit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct FeatureContribution {
    pub feature: String,
    /// w_k · x_k.
    pub contribution: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FitError {
    /// Fewer than [`MIN_LABELLED`] labelled contacts.
    TooFew { labelled: usize },
    /// Every labelled contact has the same outcome.
    OneOutcome { converted: bool },
    /// The Newton system could not be solved or did not converge.
    NoConvergence { gradient_norm: f64 },
}

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FitError::TooFew { labelled } => {
                write!(
                    f,
                    "{labelled} labelled contacts; a model needs at least {MIN_LABELLED}"
                )
            }
            FitError::OneOutcome { converted } => {
                write!(
                    f,
                    "every labelled contact has converted = {converted}; both outcomes are needed"
                )
            }
            FitError::NoConvergence { gradient_norm } => {
                write!(
                    f,
                    "the fit did not converge (gradient norm {gradient_norm:e})"
                )
            }
        }
    }
}

pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// log(1 + e^z) without overflow.
fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

/// Fits §7's model to labelled contacts (attributes, converted).
pub fn fit(
    labelled: &[(&BTreeMap<String, AttrValue>, bool)],
    lambda: f64,
) -> Result<Model, FitError> {
    if labelled.len() < MIN_LABELLED {
        return Err(FitError::TooFew {
            labelled: labelled.len(),
        });
    }
    let converted = labelled.iter().filter(|(_, y)| *y).count();
    if converted == 0 || converted == labelled.len() {
        return Err(FitError::OneOutcome {
            converted: converted > 0,
        });
    }
    let space = FeatureSpace::from_labelled(labelled.iter().map(|(a, _)| *a));
    let rows: Vec<SparseRow> = labelled.iter().map(|(a, _)| space.encode(a)).collect();
    let y: Vec<bool> = labelled.iter().map(|(_, y)| *y).collect();
    let fitted = fit_encoded(&rows, &y, space.len(), lambda)?;
    Ok(Model {
        space,
        intercept: fitted.intercept,
        weights: fitted.weights,
        lambda,
        iterations: fitted.iterations,
        gradient_norm: fitted.gradient_norm,
        labelled: labelled.len(),
        converted,
    })
}

/// The optimum of an encoded problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub intercept: f64,
    pub weights: Vec<f64>,
    pub iterations: usize,
    pub gradient_norm: f64,
}

/// Minimises Σ logloss(y_i, σ(b + w·x_i)) + (λ/2)‖w‖² by Newton's method
/// with step halving, from zero, until ‖∇‖ < [`GRADIENT_TOLERANCE`] (or no
/// step can lower the objective any more, which happens only at rounding
/// level).
pub fn fit_encoded(
    rows: &[SparseRow],
    y: &[bool],
    d: usize,
    lambda: f64,
) -> Result<Fitted, FitError> {
    let p = d + 1; // column 0 is the intercept
    let mut theta = vec![0.0; p];
    let objective = |theta: &[f64]| -> f64 {
        let mut s = 0.0;
        for (row, &yi) in rows.iter().zip(y) {
            let z = margin(theta, row);
            s += softplus(z) - if yi { z } else { 0.0 };
        }
        s + 0.5 * lambda * theta[1..].iter().map(|w| w * w).sum::<f64>()
    };
    let mut f = objective(&theta);
    let mut grad_norm = f64::INFINITY;
    for it in 0..MAX_ITERATIONS {
        let mut g = vec![0.0; p];
        let mut h = vec![0.0; p * p];
        for (row, &yi) in rows.iter().zip(y) {
            let z = margin(&theta, row);
            let pi = sigmoid(z);
            let r = pi - if yi { 1.0 } else { 0.0 };
            let wgt = pi * (1.0 - pi);
            g[0] += r;
            h[0] += wgt;
            for (a, &(ia, va)) in row.iter().enumerate() {
                let ia = ia as usize + 1;
                g[ia] += r * va;
                h[ia] += wgt * va; // (0, ia)
                let wa = wgt * va;
                for &(ib, vb) in &row[a..] {
                    h[ia * p + ib as usize + 1] += wa * vb;
                }
            }
        }
        for k in 1..p {
            g[k] += lambda * theta[k];
            h[k * p + k] += lambda;
        }
        grad_norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
        if grad_norm < GRADIENT_TOLERANCE {
            return Ok(done(theta, it, grad_norm));
        }
        // Mirror the upper triangle.
        for a in 0..p {
            for b in a + 1..p {
                h[b * p + a] = h[a * p + b];
            }
        }
        let hm = DMatrix::from_row_slice(p, p, &h);
        let Some(chol) = hm.cholesky() else {
            return Err(FitError::NoConvergence {
                gradient_norm: grad_norm,
            });
        };
        let step = chol.solve(&DVector::from_vec(g));
        if grad_norm < 1e-3 {
            // Inside Newton's quadratic region: full steps. The objective's
            // rounding (≈ 1e-16 · f) would hide the last improvements from a
            // line search.
            for (th, s) in theta.iter_mut().zip(step.iter()) {
                *th -= s;
            }
            f = objective(&theta);
            continue;
        }
        let mut t = 1.0;
        let mut improved = false;
        for _ in 0..40 {
            let cand: Vec<f64> = theta
                .iter()
                .zip(step.iter())
                .map(|(th, s)| th - t * s)
                .collect();
            let fc = objective(&cand);
            if fc <= f {
                let stalled = fc == f;
                theta = cand;
                f = fc;
                improved = !stalled;
                break;
            }
            t *= 0.5;
        }
        if !improved {
            // At the optimum up to rounding: the objective cannot decrease.
            return if grad_norm < 1e-6 * (1.0 + rows.len() as f64).sqrt() {
                Ok(done(theta, it + 1, grad_norm))
            } else {
                Err(FitError::NoConvergence {
                    gradient_norm: grad_norm,
                })
            };
        }
    }
    Err(FitError::NoConvergence {
        gradient_norm: grad_norm,
    })
}

fn done(theta: Vec<f64>, iterations: usize, gradient_norm: f64) -> Fitted {
    Fitted {
        intercept: theta[0],
        weights: theta[1..].to_vec(),
        iterations,
        gradient_norm,
    }
}

fn margin(theta: &[f64], row: &SparseRow) -> f64 {
    theta[0]
        + row
            .iter()
            .map(|&(i, v)| theta[i as usize + 1] * v)
            .sum::<f64>()
}

impl Model {
    pub fn logit_encoded(&self, x: &SparseRow) -> f64 {
        self.intercept
            + x.iter()
                .map(|&(i, v)| self.weights[i as usize] * v)
                .sum::<f64>()
    }

    pub fn probability_encoded(&self, x: &SparseRow) -> f64 {
        sigmoid(self.logit_encoded(x))
    }

    /// σ(b + w·x) straight from the attributes, allocating nothing.
    pub fn probability(&self, attrs: &BTreeMap<String, AttrValue>) -> f64 {
        let z = attrs
            .iter()
            .filter_map(|(k, v)| self.space.column(k, v))
            .fold(self.intercept, |z, (i, x)| z + self.weights[i as usize] * x);
        sigmoid(z)
    }

    /// The `top` features with the largest |w_k·x_k| (ties by column), signed.
    pub fn explain_encoded(&self, x: &SparseRow, top: usize) -> Vec<FeatureContribution> {
        let mut c: Vec<(u32, f64)> = x
            .iter()
            .map(|&(i, v)| (i, self.weights[i as usize] * v))
            .filter(|(_, c)| *c != 0.0)
            .collect();
        c.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
        c.truncate(top);
        c.into_iter()
            .map(|(i, contribution)| FeatureContribution {
                feature: self.space.features[i as usize].name(),
                contribution,
            })
            .collect()
    }
}

//! Customer tracks side by side: two segments' choice-factor ranks (§1) and
//! their sales barriers, matched the way a reader would match them.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::panel::{FactorFigures, normalise};

/// One choice factor in both tracks' segments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct RankPair {
    /// The factor's id (its question key when it has none).
    pub factor: String,
    pub name: String,
    /// Rank by mean in segment A (1 = most important); None: no answers there.
    pub rank_a: Option<u32>,
    pub rank_b: Option<u32>,
    pub mean_a: Option<f64>,
    pub mean_b: Option<f64>,
    /// rank_b − rank_a: positive when the factor matters less to B.
    pub rank_shift: Option<i64>,
}

/// One barrier label and the tracks that name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct BarrierPair {
    /// The label as first written (A's spelling when both name it).
    pub label: String,
    pub in_a: bool,
    pub in_b: bool,
}

fn ranked(f: &FactorFigures) -> Option<(u32, Option<f64>)> {
    // A factor nobody answered has no place in the order.
    f.mean.map(|m| (f.rank, Some(m)))
}

/// The factors of both segments, ordered by the better of their two ranks
/// (then by name): the first rows are what either segment cares about most.
pub fn compare_ranks(a: &[FactorFigures], b: &[FactorFigures]) -> Vec<RankPair> {
    let mut rows: BTreeMap<String, RankPair> = BTreeMap::new();
    for (side, factors) in [(0, a), (1, b)] {
        for f in factors {
            let key = f.factor_id.clone().unwrap_or_else(|| f.key.clone());
            let row = rows.entry(key.clone()).or_insert_with(|| RankPair {
                factor: key,
                name: f.name.clone(),
                rank_a: None,
                rank_b: None,
                mean_a: None,
                mean_b: None,
                rank_shift: None,
            });
            if let Some((rank, mean)) = ranked(f) {
                if side == 0 {
                    row.rank_a = Some(rank);
                    row.mean_a = mean;
                } else {
                    row.rank_b = Some(rank);
                    row.mean_b = mean;
                }
            }
        }
    }
    let mut out: Vec<RankPair> = rows
        .into_values()
        .map(|mut r| {
            r.rank_shift = match (r.rank_a, r.rank_b) {
                (Some(x), Some(y)) => Some(i64::from(y) - i64::from(x)),
                _ => None,
            };
            r
        })
        .collect();
    let best = |r: &RankPair| match (r.rank_a, r.rank_b) {
        (Some(x), Some(y)) => x.min(y),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => u32::MAX,
    };
    out.sort_by(|x, y| best(x).cmp(&best(y)).then_with(|| x.name.cmp(&y.name)));
    out
}

/// The barriers of both tracks, matched by their normalised label (§1's
/// normalisation: case, punctuation and spacing do not count); A's first,
/// in A's order, then those only B names, in B's order.
pub fn compare_barriers(a: &[String], b: &[String]) -> Vec<BarrierPair> {
    let mut out: Vec<BarrierPair> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (side, labels) in [(0, a), (1, b)] {
        for label in labels {
            let key = normalise(label);
            if key.is_empty() {
                continue;
            }
            let i = *index.entry(key).or_insert_with(|| {
                out.push(BarrierPair {
                    label: label.trim().to_owned(),
                    in_a: false,
                    in_b: false,
                });
                out.len() - 1
            });
            if side == 0 {
                out[i].in_a = true;
            } else {
                out[i].in_b = true;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn factor(id: &str, name: &str, mean: Option<f64>, rank: u32) -> FactorFigures {
        FactorFigures {
            key: id.into(),
            factor_id: Some(id.into()),
            name: name.into(),
            n: u64::from(mean.is_some()) * 10,
            mean,
            sd: None,
            ci95_low: None,
            ci95_high: None,
            top2: None,
            rank,
        }
    }

    #[test]
    fn ranks_are_paired_by_factor_and_ordered_by_the_better_rank() {
        let a = [
            factor("p", "Price", Some(4.5), 1),
            factor("l", "Location", Some(3.0), 2),
        ];
        let b = [
            factor("l", "Location", Some(4.8), 1),
            factor("p", "Price", Some(2.0), 3),
            factor("s", "Service", Some(3.5), 2),
        ];
        let rows = compare_ranks(&a, &b);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        // Location and Price both have a rank 1 somewhere: by name.
        assert_eq!(names, ["Location", "Price", "Service"]);
        assert_eq!(rows[1].rank_a, Some(1));
        assert_eq!(rows[1].rank_b, Some(3));
        assert_eq!(rows[1].rank_shift, Some(2));
        assert_eq!(rows[2].rank_a, None);
        assert_eq!(rows[2].rank_shift, None);
    }

    #[test]
    fn an_unanswered_factor_has_no_rank() {
        let rows = compare_ranks(&[factor("p", "Price", None, 1)], &[]);
        assert_eq!(rows[0].rank_a, None);
        assert_eq!(rows[0].mean_a, None);
    }

    #[test]
    fn barriers_match_despite_case_and_punctuation() {
        let rows = compare_barriers(
            &["Too expensive!".into(), "No parking".into()],
            &["too  expensive".into(), "Far away".into()],
        );
        assert_eq!(
            rows,
            [
                BarrierPair {
                    label: "Too expensive!".into(),
                    in_a: true,
                    in_b: true
                },
                BarrierPair {
                    label: "No parking".into(),
                    in_a: true,
                    in_b: false
                },
                BarrierPair {
                    label: "Far away".into(),
                    in_a: false,
                    in_b: true
                },
            ]
        );
    }

    proptest! {
        /// Comparing a track with itself shifts no rank and finds every
        /// barrier on both sides.
        #[test]
        fn a_track_compared_with_itself_is_unchanged(
            means in proptest::collection::vec(proptest::option::of(1.0f64..5.0), 0..12),
            barriers in proptest::collection::vec("[a-z ]{1,12}", 0..10),
        ) {
            let factors: Vec<FactorFigures> = means
                .iter()
                .enumerate()
                .map(|(i, m)| factor(&format!("f{i}"), &format!("F{i}"), *m, i as u32 + 1))
                .collect();
            for r in compare_ranks(&factors, &factors) {
                prop_assert_eq!(r.rank_a, r.rank_b);
                prop_assert!(r.rank_shift.is_none_or(|s| s == 0));
            }
            for b in compare_barriers(&barriers, &barriers) {
                prop_assert!(b.in_a && b.in_b);
            }
        }

        /// Every factor of either side appears exactly once.
        #[test]
        fn every_factor_appears_once(
            a in proptest::collection::btree_set(0u8..20, 0..10),
            b in proptest::collection::btree_set(0u8..20, 0..10),
        ) {
            let side = |s: &std::collections::BTreeSet<u8>| -> Vec<FactorFigures> {
                s.iter().enumerate().map(|(r, i)| factor(&format!("f{i}"), &format!("F{i}"), Some(3.0), r as u32 + 1)).collect()
            };
            let rows = compare_ranks(&side(&a), &side(&b));
            let union: std::collections::BTreeSet<u8> = a.union(&b).copied().collect();
            prop_assert_eq!(rows.len(), union.len());
        }
    }
}

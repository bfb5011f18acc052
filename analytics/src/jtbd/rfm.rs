//! RFM scores and segments (analytics.md §6), and the median they use.

use super::*;

/// RFM score of every value: 1 + floor(5·|{values smaller}| / n), so equal
/// values get equal scores, all in 1..=5. For recency pass −R.
pub fn rfm_scores(values: &[f64]) -> Vec<u8> {
    // + 0.0 turns −0.0 into 0.0 so that the two compare (and sort) equal
    let mut sorted: Vec<f64> = values.iter().map(|v| v + 0.0).collect();
    sorted.sort_unstable_by(f64::total_cmp);
    let n = values.len() as u64;
    values
        .iter()
        .map(|&v| {
            let v = v + 0.0;
            let smaller = sorted.partition_point(|&x| x < v) as u64;
            (1 + 5 * smaller / n) as u8
        })
        .collect()
}

/// The first segment of analytics.md §6's table that (R score, F score)
/// falls in, in the table's order.
pub fn rfm_segment(r: u8, f: u8) -> RfmSegment {
    use RfmSegment::*;
    if r >= 4 && f >= 4 {
        Champions
    } else if r >= 3 && f >= 4 {
        Loyal
    } else if r >= 4 && (2..=3).contains(&f) {
        PotentialLoyalist
    } else if r == 5 && f == 1 {
        New
    } else if r == 4 && f == 1 {
        Promising
    } else if r == 3 && (2..=3).contains(&f) {
        NeedAttention
    } else if r == 3 && f == 1 {
        AboutToSleep
    } else if r <= 2 && (3..=4).contains(&f) {
        AtRisk
    } else if r <= 2 && f == 5 {
        CantLose
    } else if r == 2 && f <= 2 {
        Hibernating
    } else {
        // R = 1 & F ≤ 2: the table covers every pair of scores in 1..=5
        Lost
    }
}

/// Median; for an even count, the mean of the two middle values. Reorders
/// `values`.
pub fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let (left, &mut mid, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        return Some(mid);
    }
    let lower = left.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((lower + mid) / 2.0)
}

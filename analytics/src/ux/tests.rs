use super::*;
use proptest::prelude::*;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn r(date: NaiveDate, t: &str, s: &str, j: &str, x: u8) -> MysteryRating {
    MysteryRating {
        date,
        touchpoint_id: t.into(),
        stage_id: s.into(),
        jtbd: j.into(),
        rating: Rating1to5::try_from(x).unwrap(),
    }
}

const D: (i32, u32, u32) = (2024, 3, 31);

fn as_of() -> NaiveDate {
    d(D.0, D.1, D.2)
}

fn days_before(n: u64) -> NaiveDate {
    as_of().checked_sub_days(Days::new(n)).unwrap()
}

#[test]
fn windows_are_seven_and_twenty_eight_days() {
    let w = Windows::ending_on(as_of());
    // current 25–31 March, baseline 26 Feb – 24 March (2024 is a leap year)
    assert_eq!(w.current_from, d(2024, 3, 25));
    assert_eq!(w.baseline_to, d(2024, 3, 24));
    assert_eq!(w.baseline_from, d(2024, 2, 26));
    assert_eq!(window_of(as_of(), d(2024, 4, 1)), None);
    assert_eq!(window_of(as_of(), d(2024, 3, 25)), Some(Window::Current));
    assert_eq!(window_of(as_of(), d(2024, 3, 24)), Some(Window::Baseline));
    assert_eq!(window_of(as_of(), d(2024, 2, 26)), Some(Window::Baseline));
    assert_eq!(window_of(as_of(), d(2024, 2, 25)), Some(Window::Older));
}

#[test]
fn deviation_compares_current_with_baseline() {
    let ratings = vec![
        // current: 3, 4, 2 → mean 3
        r(days_before(0), "t1", "s1", "lunch", 3),
        r(days_before(3), "t1", "s1", "lunch", 4),
        r(days_before(6), "t1", "s1", "lunch", 2),
        // baseline: 4, 5, 4, 3 → mean 4
        r(days_before(7), "t1", "s1", "lunch", 4),
        r(days_before(7), "t1", "s1", "lunch", 5),
        r(days_before(20), "t1", "s1", "lunch", 4),
        r(days_before(34), "t1", "s1", "lunch", 3),
        // older: 1; after D: 1 (ignored everywhere)
        r(days_before(35), "t1", "s1", "lunch", 1),
        r(as_of().succ_opt().unwrap(), "t1", "s1", "lunch", 1),
    ];
    let map = compute(&ratings, &[], as_of(), &UxConfig::default());
    let st = &map.by_touchpoint_jtbd[0].stats;
    assert_eq!(
        st.current,
        WindowStats {
            mean: Some(3.0),
            n: 3
        }
    );
    assert_eq!(
        st.baseline,
        WindowStats {
            mean: Some(4.0),
            n: 4
        }
    );
    // all-time: (3+4+2+4+5+4+3+1)/8 = 26/8
    assert_eq!(
        st.all_time,
        WindowStats {
            mean: Some(3.25),
            n: 8
        }
    );
    // 3 − 4 = −1 ≤ −0.5
    assert_eq!(st.deviation, Some(-1.0));
    assert_eq!(st.flag, Some(Flag::Negative));
    // daily series: 7 distinct days, ascending; the day with 4 and 5 → 4.5
    assert_eq!(st.daily.len(), 7);
    assert!(st.daily.windows(2).all(|p| p[0].date < p[1].date));
    let day7 = st.daily.iter().find(|p| p.date == days_before(7)).unwrap();
    assert_eq!((day7.mean, day7.n), (4.5, 2));
}

#[test]
fn deviation_needs_three_ratings_in_each_window() {
    let mut ratings = vec![
        r(days_before(0), "t1", "s1", "j", 5),
        r(days_before(1), "t1", "s1", "j", 5),
        r(days_before(10), "t1", "s1", "j", 1),
        r(days_before(11), "t1", "s1", "j", 1),
        r(days_before(12), "t1", "s1", "j", 1),
    ];
    let map = compute(&ratings, &[], as_of(), &UxConfig::default());
    assert_eq!(map.by_touchpoint[0].stats.deviation, None);
    assert_eq!(map.by_touchpoint[0].stats.flag, None);
    // a third current rating: (5+5+5)/3 − 1 = 4 → positive
    ratings.push(r(days_before(2), "t1", "s1", "j", 5));
    let map = compute(&ratings, &[], as_of(), &UxConfig::default());
    assert_eq!(map.by_touchpoint[0].stats.deviation, Some(4.0));
    assert_eq!(map.by_touchpoint[0].stats.flag, Some(Flag::Positive));
}

#[test]
fn deviation_exactly_on_the_threshold_is_flagged() {
    // current 4, 4, 3 → 11/3; baseline 4, 4, 4, 4, 5, 4 → 25/6;
    // 11/3 − 25/6 = −1/2 exactly
    let mut ratings: Vec<MysteryRating> = [4, 4, 3]
        .iter()
        .map(|&x| r(days_before(1), "t", "s", "j", x))
        .collect();
    ratings.extend(
        [4, 4, 4, 4, 5, 4]
            .iter()
            .map(|&x| r(days_before(9), "t", "s", "j", x)),
    );
    let map = compute(&ratings, &[], as_of(), &UxConfig::default());
    let st = &map.by_touchpoint[0].stats;
    assert!((st.deviation.unwrap() + 0.5).abs() < 1e-12);
    assert_eq!(st.flag, Some(Flag::Negative));
    // small deviations carry no flag
    assert_eq!(flag(0.49, &UxConfig::default()), None);
    assert_eq!(flag(-0.49, &UxConfig::default()), None);
    assert_eq!(flag(0.5, &UxConfig::default()), Some(Flag::Positive));
}

#[test]
fn groups_cover_touchpoint_jtbd_touchpoint_and_stage() {
    let ratings = vec![
        r(days_before(0), "t1", "s1", "a", 5),
        r(days_before(0), "t1", "s1", "b", 3),
        r(days_before(1), "t2", "s1", "a", 1),
        r(days_before(1), "t3", "s2", "b", 2),
        r(days_before(20), "t3", "s2", "a", 4),
    ];
    let map = compute(&ratings, &[], as_of(), &UxConfig::default());
    assert_eq!(map.by_touchpoint_jtbd.len(), 5);
    // t1 over all JTBDs: (5 + 3)/2 = 4
    assert_eq!(map.by_touchpoint[0].touchpoint_id, "t1");
    assert_eq!(map.by_touchpoint[0].stats.current.mean, Some(4.0));
    // s1 current: (5 + 3 + 1)/3 = 3
    assert_eq!(
        map.by_stage[0].stats.current,
        WindowStats {
            mean: Some(3.0),
            n: 3
        }
    );
    // heatmap: stages s1, s2 × jtbds a, b; (s2, a) has only a baseline rating
    let h = &map.heatmap;
    assert_eq!(h.stages, vec!["s1", "s2"]);
    assert_eq!(h.jtbds, vec!["a", "b"]);
    let cell = |s: &str, j: &str| {
        h.cells
            .iter()
            .find(|c| c.stage_id == s && c.jtbd == j)
            .map(|c| (c.mean, c.n))
            .unwrap()
    };
    // (s1, a): (5 + 1)/2 = 3
    assert_eq!(cell("s1", "a"), (Some(3.0), 2));
    assert_eq!(cell("s1", "b"), (Some(3.0), 1));
    assert_eq!(cell("s2", "a"), (None, 0));
    assert_eq!(cell("s2", "b"), (Some(2.0), 1));
}

#[test]
fn ideas_are_grouped_by_touchpoint_newest_first() {
    let idea = |date, t: &str, text: &str| Idea {
        date,
        touchpoint_id: t.into(),
        text: text.into(),
    };
    let ideas = vec![
        idea(days_before(5), "t2", "older"),
        idea(days_before(1), "t2", "newer"),
        idea(days_before(1), "t2", "same day, later"),
        idea(days_before(3), "t1", " only "),
        idea(days_before(0), "t1", "   "),
        idea(as_of().succ_opt().unwrap(), "t1", "future"),
    ];
    let groups = group_ideas(&ideas, as_of());
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].touchpoint_id, "t1");
    assert_eq!(groups[0].ideas.len(), 1);
    assert_eq!(groups[0].ideas[0].text, "only");
    let texts: Vec<&str> = groups[1].ideas.iter().map(|i| i.text.as_str()).collect();
    assert_eq!(texts, vec!["newer", "same day, later", "older"]);
}

#[test]
fn only_new_negative_flags_are_alerted() {
    let t = |id: &str| FlagKey::Touchpoint {
        touchpoint_id: id.into(),
    };
    let s = FlagKey::Stage {
        stage_id: "s1".into(),
    };
    let previous = vec![t("a"), s.clone()];
    let current = vec![t("a"), t("b"), t("b")];
    assert_eq!(new_flags(&previous, &current), vec![t("b")]);
    assert!(new_flags(&current, &current).is_empty());
    // "a" cleared, then raised again: new again
    assert_eq!(new_flags(&[], &[t("a")]), vec![t("a")]);
}

#[test]
fn negative_flags_are_collected_from_the_map() {
    let mut ratings = Vec::new();
    for x in [2, 2, 2] {
        ratings.push(r(days_before(1), "t1", "s1", "j", x));
    }
    for x in [4, 4, 4] {
        ratings.push(r(days_before(10), "t1", "s1", "j", x));
    }
    let map = compute(&ratings, &[], as_of(), &UxConfig::default());
    let flags = negative_flags(&map);
    // 2 − 4 = −2 at every level
    assert_eq!(flags.len(), 3);
    assert!(flags.contains(&FlagKey::TouchpointJtbd {
        touchpoint_id: "t1".into(),
        jtbd: "j".into()
    }));
}

#[test]
fn ratings_outside_one_to_five_are_rejected() {
    assert!(Rating1to5::try_from(0).is_err());
    assert!(Rating1to5::try_from(6).is_err());
    assert_eq!(Rating1to5::try_from(5).map(u8::from), Ok(5));
}

proptest! {
    #[test]
    fn deviation_is_none_when_a_window_is_thin(
        cur in prop::collection::vec(1u8..=5, 0..6),
        base in prop::collection::vec(1u8..=5, 0..6),
    ) {
        let mut ratings = Vec::new();
        for (k, &x) in cur.iter().enumerate() {
            ratings.push(r(days_before(k as u64 % 7), "t", "s", "j", x));
        }
        for (k, &x) in base.iter().enumerate() {
            ratings.push(r(days_before(7 + k as u64 * 5), "t", "s", "j", x));
        }
        let map = compute(&ratings, &[], as_of(), &UxConfig::default());
        if let Some(row) = map.by_touchpoint.first() {
            let st = &row.stats;
            prop_assert_eq!(st.current.n, cur.len() as u64);
            prop_assert_eq!(st.baseline.n, base.len() as u64);
            if cur.len() < 3 || base.len() < 3 {
                prop_assert_eq!(st.deviation, None);
                prop_assert_eq!(st.flag, None);
            } else {
                prop_assert!(st.deviation.is_some());
            }
            let daily_n: u64 = st.daily.iter().map(|p| p.n).sum();
            prop_assert_eq!(daily_n, st.all_time.n);
        } else {
            prop_assert!(cur.is_empty() && base.is_empty());
        }
    }
}

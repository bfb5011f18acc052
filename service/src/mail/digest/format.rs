//! How a digest puts figures into words and pictures: the factor chart,
//! numbers and labels in the client's language, the Cash Journey block and
//! the UX-map flag rows.
use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::commerce::cash::{CashFigureName, CashVariance, LatestPlanVsFact};
use crate::domain::brand::BrandColour;
use crate::infra::error::{AppError, AppResult};

use super::DigestFigures;

/// A bar chart of factor means (0 to 5) as PNG: bars only, the names and
/// values are in the HTML beside it (no fonts needed).
pub(super) fn factor_chart(means: &[f64], colour: BrandColour) -> AppResult<(Vec<u8>, u32)> {
    use plotters::prelude::*;
    let (w, row) = (240u32, 28u32);
    let h = row * means.len().max(1) as u32;
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        let fill = RGBColor(colour.0, colour.1, colour.2).filled();
        for (i, m) in means.iter().enumerate() {
            let top = (i as u32 * row + 6) as i32;
            let len = ((m.clamp(0.0, 5.0) / 5.0) * f64::from(w - 4)) as i32;
            root.draw(&Rectangle::new(
                [(0, top), (len.max(1), top + row as i32 - 12)],
                fill,
            ))
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("chart: {e}")))?;
        }
        root.present()
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("chart: {e}")))?;
    }
    let img = image::RgbImage::from_raw(w, h, rgb)
        .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("chart buffer size")))?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("chart png: {e}")))?;
    Ok((png, h))
}

/// A Cash Journey figure's name in the digest.
pub(super) fn figure_label(f: CashFigureName, ru: bool) -> &'static str {
    use CashFigureName as F;
    match (f, ru) {
        (F::Reach, true) => "Охват",
        (F::Reach, false) => "Reach",
        (F::Ctr, _) => "CTR",
        (F::Traffic, true) => "Трафик",
        (F::Traffic, false) => "Traffic",
        (F::Leads, true) => "Лиды",
        (F::Leads, false) => "Leads",
        (F::FirstSales, true) => "Первые продажи",
        (F::FirstSales, false) => "First sales",
        (F::Check, true) => "Средний чек",
        (F::Check, false) => "Average check",
        (F::Completed, true) => "Завершённые сделки",
        (F::Completed, false) => "Completed deals",
        (F::FirstRevenue, true) => "Выручка первых продаж",
        (F::FirstRevenue, false) => "First-sale revenue",
        (F::RepeatRevenue, true) => "Выручка повторных продаж",
        (F::RepeatRevenue, false) => "Repeat revenue",
        (F::Revenue, true) => "Выручка",
        (F::Revenue, false) => "Revenue",
        (F::GrossProfit, true) => "Валовая прибыль",
        (F::GrossProfit, false) => "Gross profit",
        (F::Profit, true) => "Прибыль",
        (F::Profit, false) => "Profit",
        (F::Romi, _) => "ROMI",
        (F::CostPerSale, true) => "Стоимость продажи",
        (F::CostPerSale, false) => "Cost per sale",
        (F::MarketingCost, true) => "Маркетинговые расходы",
        (F::MarketingCost, false) => "Marketing cost",
    }
}

/// A figure with thousands grouped (a space in Russian, a comma in English);
/// ROMI and CTR, ratios, as percentages.
pub(super) fn amount(f: CashFigureName, x: f64, ru: bool) -> String {
    if matches!(f, CashFigureName::Romi | CashFigureName::Ctr) {
        return format!("{}%", fmt(x * 100.0, ru));
    }
    let decimals = if x.abs() >= 100.0 { 0 } else { 2 };
    let s = format!("{:.*}", decimals, x.abs());
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(if ru { '\u{a0}' } else { ',' });
        }
        grouped.push(ch);
    }
    let sign = if x < 0.0 && s.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        "−"
    } else {
        ""
    };
    match (frac.is_empty(), ru) {
        (true, _) => format!("{sign}{grouped}"),
        (false, true) => format!("{sign}{grouped},{frac}"),
        (false, false) => format!("{sign}{grouped}.{frac}"),
    }
}

/// One row of the plan-vs-fact table: fact against plan, and whether the
/// difference is good news (more is better, except costs: of a sale and of
/// marketing).
pub(super) fn variance_row(v: &CashVariance, ru: bool) -> serde_json::Value {
    let better = if matches!(
        v.figure,
        CashFigureName::CostPerSale | CashFigureName::MarketingCost
    ) {
        v.absolute <= 0.0
    } else {
        v.absolute >= 0.0
    };
    let change = match v.relative {
        Some(r) => format!(
            "{}{}%",
            if r > 0.0 {
                "+"
            } else if r < 0.0 {
                "−"
            } else {
                ""
            },
            fmt((r * 100.0).abs(), ru)
        ),
        None => amount(v.figure, v.absolute, ru),
    };
    serde_json::json!({
        "label": figure_label(v.figure, ru),
        "plan": amount(v.figure, v.plan, ru),
        "actual": amount(v.figure, v.actual, ru),
        "change": change,
        "good": better,
    })
}

/// The digest's plan-vs-fact block of one model: revenue, profit and ROMI
/// (those present in the actuals), then the three other figures furthest
/// from plan.
pub(super) fn cash_section(p: &LatestPlanVsFact, ru: bool) -> serde_json::Value {
    use CashFigureName as F;
    let headline = [F::Revenue, F::Profit, F::Romi];
    let mut rest: Vec<&CashVariance> = p
        .variances
        .iter()
        .filter(|v| !headline.contains(&v.figure))
        .collect();
    rest.sort_by(|a, b| {
        let key = |v: &CashVariance| v.relative.map_or(-1.0, f64::abs);
        key(b).total_cmp(&key(a))
    });
    serde_json::json!({
        "model": p.model,
        "period": p.period,
        "headline": headline
            .iter()
            .filter_map(|f| p.variances.iter().find(|v| v.figure == *f))
            .map(|v| variance_row(v, ru))
            .collect::<Vec<_>>(),
        "biggest": rest.into_iter().take(3).map(|v| variance_row(v, ru)).collect::<Vec<_>>(),
    })
}

pub(super) fn fmt(x: f64, ru: bool) -> String {
    fmt_places(x, 1, ru)
}

/// `x` with `places` decimals, a decimal comma in Russian.
pub(super) fn fmt_places(x: f64, places: usize, ru: bool) -> String {
    let s = format!("{x:.places$}");
    if ru { s.replace('.', ",") } else { s }
}

/// A hypothesis verdict as the digest's reader reads it.
pub(super) fn verdict_label(verdict: &str, ru: bool) -> String {
    match (verdict, ru) {
        ("supported", true) => "подтверждена",
        ("rejected", true) => "не подтвердилась",
        ("insufficient_data", true) => "мало данных",
        ("insufficient_data", false) => "insufficient data",
        (other, _) => other,
    }
    .to_owned()
}

/// A change with its sign: `+4.0`, `-0.5`.
pub(super) fn signed(d: f64, ru: bool) -> String {
    format!("{}{}", if d > 0.0 { "+" } else { "" }, fmt(d, ru))
}

/// The touchpoint flags of the UX map shown in a digest.
pub(super) struct DigestUxFlags {
    /// Rows for the template, the largest change first.
    pub(super) negative: Vec<serde_json::Value>,
    pub(super) positive: Vec<serde_json::Value>,
    /// Touchpoint ids, kept in the digest's figures.
    pub(super) negative_keys: BTreeSet<String>,
    pub(super) positive_keys: BTreeSet<String>,
    /// Flags the last digest did not show.
    pub(super) newly_raised: usize,
}

/// Splits the map's touchpoint rows into negative and positive flags,
/// marking those the last digest did not show (`shown_*`; none without a
/// last digest: everything in a first digest is new anyway).
pub(super) fn ux_flag_rows(
    rows: &[analytics::ux::TouchpointStats],
    names: &BTreeMap<Uuid, String>,
    ru: bool,
    last: Option<&DigestFigures>,
) -> DigestUxFlags {
    use analytics::ux::Flag;
    let mut out = DigestUxFlags {
        negative: vec![],
        positive: vec![],
        negative_keys: BTreeSet::new(),
        positive_keys: BTreeSet::new(),
        newly_raised: 0,
    };
    let mut flagged: Vec<(&analytics::ux::TouchpointStats, Flag, f64)> = rows
        .iter()
        .filter_map(|r| Some((r, r.stats.flag?, r.stats.deviation?)))
        .collect();
    flagged.sort_by(|a, b| b.2.abs().total_cmp(&a.2.abs()));
    for (r, flag, deviation) in flagged {
        let key = r.touchpoint_id.clone();
        let before = last.map(|l| match flag {
            Flag::Negative => &l.ux_negative,
            Flag::Positive => &l.ux_positive,
        });
        let new = before.is_some_and(|b| !b.contains(&key));
        out.newly_raised += usize::from(new);
        let mean = |m: Option<f64>| m.map(|x| fmt(x, ru)).unwrap_or_else(|| "—".into());
        let row = serde_json::json!({
            "label": Uuid::parse_str(&key).ok().and_then(|id| names.get(&id).cloned()).unwrap_or_else(|| "—".into()),
            "deviation": signed(deviation, ru),
            "current": mean(r.stats.current.mean),
            "baseline": mean(r.stats.baseline.mean),
            "new": new,
        });
        match flag {
            Flag::Negative => {
                out.negative.push(row);
                out.negative_keys.insert(key);
            }
            Flag::Positive => {
                out.positive.push(row);
                out.positive_keys.insert(key);
            }
        }
    }
    out
}

/// The funnel block: contacts, qualified, converted and CPA with their
/// change since the last digest (more is good, but a lower CPA).
pub(super) fn funnel_section(
    f: &super::FunnelFigures,
    before: Option<&super::FunnelFigures>,
    ru: bool,
) -> serde_json::Value {
    let count_row = |label: &str, now: u64, was: Option<u64>| {
        let d = was.map(|w| now as f64 - w as f64).filter(|d| *d != 0.0);
        serde_json::json!({
            "label": label,
            "value": fmt_places(now as f64, 0, ru),
            "change": d.map(|d| format!("{:+}", d as i64)),
            "good": d.is_some_and(|d| d > 0.0),
        })
    };
    let (contacts, qualified, converted) = if ru {
        (
            "Новые контакты",
            "Квалифицированные (горячие и тёплые)",
            "Конверсии",
        )
    } else {
        ("New contacts", "Qualified (hot and warm)", "Converted")
    };
    let cpa_change = match (f.cpa, before.and_then(|b| b.cpa)) {
        (Some(now), Some(was)) if (now - was).abs() >= 0.005 => Some(now - was),
        _ => None,
    };
    serde_json::json!({
        "rows": [
            count_row(contacts, f.contacts, before.map(|b| b.contacts)),
            count_row(qualified, f.qualified, before.map(|b| b.qualified)),
            count_row(converted, f.converted, before.map(|b| b.converted)),
            {
                "label": "CPA",
                "value": f.cpa.map_or_else(|| "—".to_owned(), |x| fmt_places(x, 2, ru)),
                "change": cpa_change
                    .map(|d| format!("{}{}", if d > 0.0 { "+" } else { "" }, fmt_places(d, 2, ru))),
                "good": cpa_change.is_some_and(|d| d < 0.0),
            }
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cash_figures_are_grouped_per_locale_and_romi_is_a_percentage() {
        assert_eq!(
            amount(CashFigureName::Revenue, 1_234_567.4, false),
            "1,234,567"
        );
        assert_eq!(
            amount(CashFigureName::Revenue, 1_234_567.4, true),
            "1\u{a0}234\u{a0}567"
        );
        assert_eq!(amount(CashFigureName::Profit, -4_500.0, false), "−4,500");
        assert_eq!(amount(CashFigureName::Check, 12.5, true), "12,50");
        assert_eq!(amount(CashFigureName::Romi, 1.5, false), "150.0%");
    }

    #[test]
    fn the_plan_vs_fact_block_leads_with_revenue_profit_romi_then_the_biggest_gaps() {
        let v = |figure, plan: f64, actual: f64| CashVariance {
            figure,
            plan,
            actual,
            absolute: actual - plan,
            relative: (plan != 0.0).then(|| (actual - plan) / plan),
        };
        use CashFigureName as F;
        let p = LatestPlanVsFact {
            model: "Funnel".into(),
            period: "2026-11".into(),
            variances: vec![
                v(F::Traffic, 1000.0, 990.0),
                v(F::Leads, 100.0, 50.0),
                v(F::FirstSales, 10.0, 12.0),
                v(F::Revenue, 100_000.0, 80_000.0),
                v(F::Profit, 10_000.0, 2_000.0),
                v(F::CostPerSale, 100.0, 130.0),
            ],
        };
        let s = cash_section(&p, false);
        let labels = |k: &str| -> Vec<String> {
            s[k].as_array()
                .unwrap()
                .iter()
                .map(|r| r["label"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(labels("headline"), ["Revenue", "Profit"]);
        assert_eq!(labels("biggest"), ["Leads", "Cost per sale", "First sales"]);
        assert_eq!(s["headline"][0]["change"], "−20.0%");
        assert_eq!(s["headline"][0]["good"], false);
        // A dearer sale is bad news, more sales good news.
        assert_eq!(s["biggest"][1]["good"], false);
        assert_eq!(s["biggest"][2]["good"], true);
    }

    fn tp(id: Uuid, current: f64, baseline: f64) -> analytics::ux::TouchpointStats {
        use analytics::ux::{UxConfig, UxStats, WindowStats, flag};
        let w = |m: f64| WindowStats {
            mean: Some(m),
            n: 3,
        };
        let d = current - baseline;
        analytics::ux::TouchpointStats {
            touchpoint_id: id.to_string(),
            stats: UxStats {
                current: w(current),
                baseline: w(baseline),
                all_time: w(current),
                deviation: Some(d),
                flag: flag(d, &UxConfig::default()),
                daily: vec![],
            },
        }
    }

    #[test]
    fn russian_digests_use_decimal_commas_and_russian_verdicts() {
        assert_eq!(fmt_places(3.806, 2, true), "3,81");
        assert_eq!(fmt_places(3.806, 2, false), "3.81");
        assert_eq!(fmt(-25.66, true), "-25,7");
        assert_eq!(verdict_label("supported", true), "подтверждена");
        assert_eq!(
            verdict_label("insufficient_data", false),
            "insufficient data"
        );
        assert_eq!(verdict_label("—", true), "—");
    }

    #[test]
    fn ux_flags_split_by_sign_biggest_first_and_new_ones_count_as_news() {
        let (a, b, c, d) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let names: BTreeMap<Uuid, String> = [(a, "A"), (b, "B"), (c, "C"), (d, "D")]
            .into_iter()
            .map(|(id, n)| (id, n.to_owned()))
            .collect();
        // A −2, B +0.5 (exactly the threshold), C +3, D +0.2 (no flag).
        let rows = [
            tp(a, 2.0, 4.0),
            tp(b, 3.5, 3.0),
            tp(c, 4.5, 1.5),
            tp(d, 3.2, 3.0),
        ];
        let first = ux_flag_rows(&rows, &names, false, None);
        let labels = |v: &[serde_json::Value]| -> Vec<String> {
            v.iter()
                .map(|r| r["label"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(labels(&first.negative), ["A"]);
        assert_eq!(labels(&first.positive), ["C", "B"]);
        assert_eq!(first.positive[0]["deviation"], "+3.0");
        assert_eq!(first.negative[0]["deviation"], "-2.0");
        assert_eq!(first.negative[0]["current"], "2.0");
        // Without a last digest nothing is marked new (all of it is news).
        assert_eq!(first.newly_raised, 0);
        assert!(first.positive.iter().all(|r| r["new"] == false));
        // The last digest showed A and B: C is the one new flag.
        let last = DigestFigures {
            ux_negative: [a.to_string()].into(),
            ux_positive: [b.to_string()].into(),
            ..Default::default()
        };
        let next = ux_flag_rows(&rows, &names, true, Some(&last));
        assert_eq!(next.newly_raised, 1);
        assert_eq!(next.positive[0]["new"], true);
        assert_eq!(next.positive[1]["new"], false);
        assert_eq!(next.positive[0]["deviation"], "+3,0");
        assert_eq!(
            next.positive_keys,
            [b.to_string(), c.to_string()].into_iter().collect()
        );
        // A flag that changed sign is new on its new side.
        let flipped = DigestFigures {
            ux_negative: [c.to_string()].into(),
            ux_positive: [a.to_string(), b.to_string()].into(),
            ..Default::default()
        };
        assert_eq!(
            ux_flag_rows(&rows, &names, false, Some(&flipped)).newly_raised,
            2
        );
    }

    #[test]
    fn figures_stored_before_ux_flags_were_kept_still_read() {
        let old = serde_json::json!({"fingerprint": 3, "nps": null, "verdicts": {}});
        let f: DigestFigures = serde_json::from_value(old).unwrap();
        assert!(f.ux_negative.is_empty() && f.ux_positive.is_empty());
    }

    #[test]
    fn the_chart_is_a_png_as_tall_as_the_rows() {
        let (png, h) = factor_chart(&[4.5, 3.0, 1.2], BrandColour::DEFAULT).unwrap();
        assert_eq!(h, 84);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn the_chart_is_drawn_in_the_brand_colour() {
        let (png, _) = factor_chart(&[5.0], BrandColour(0xaa, 0x11, 0x22)).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.get_pixel(10, 10).0, [0xaa, 0x11, 0x22]);
        assert_eq!(img.get_pixel(10, 1).0, [0xff, 0xff, 0xff]);
    }

    #[test]
    fn the_funnel_block_shows_changes_and_a_falling_cpa_is_good() {
        let now = super::super::FunnelFigures {
            contacts: 120,
            qualified: 30,
            converted: 6,
            cpa: Some(150.0),
        };
        let was = super::super::FunnelFigures {
            contacts: 100,
            qualified: 30,
            converted: 8,
            cpa: Some(200.0),
        };
        let v = funnel_section(&now, Some(&was), false);
        let rows = v["rows"].as_array().unwrap();
        assert_eq!(rows[0]["value"], "120");
        assert_eq!(rows[0]["change"], "+20");
        assert_eq!(rows[0]["good"], true);
        assert_eq!(rows[1]["change"], serde_json::Value::Null, "unchanged");
        assert_eq!(
            (rows[2]["change"].as_str(), rows[2]["good"].as_bool()),
            (Some("-2"), Some(false))
        );
        assert_eq!(
            (rows[3]["value"].as_str(), rows[3]["good"].as_bool()),
            (Some("150.00"), Some(true))
        );
        assert_eq!(rows[3]["change"], "-50.00");
        let first = funnel_section(&now, None, true);
        assert_eq!(first["rows"][3]["value"], "150,00");
        assert_eq!(first["rows"][0]["change"], serde_json::Value::Null);
    }
}

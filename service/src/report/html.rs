//! The live report's HTML: one minijinja template (autoescaped), the words
//! in Russian or English, numbers formatted for the client's language, and
//! the page's Content-Security-Policy. The only style is one inline
//! `<style>` allowed by its SHA-256 hash; nothing is loaded from anywhere
//! (`default-src 'none'`), so the page works offline and prints to a clean
//! PDF (`@media print`).
use std::sync::OnceLock;

use analytics::hypotheses::Verdict;
use analytics::qfd::Class;
use analytics::ux::Flag;
use base64::Engine;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use minijinja::{Environment, Value as Jinja};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::ReportData;
use super::chart::{Bar, factors_svg};
use crate::infra::error::{AppError, AppResult};

/// A rendered page: its status (found or not), HTML and CSP header.
#[derive(Debug, Clone)]
pub struct Page {
    pub found: bool,
    pub html: String,
    pub csp: String,
}

const PAGE: &str = include_str!("templates/page.html");
const GONE: &str = include_str!("templates/gone.html");

/// The page's style; `{colour}` and `{text}` are the agency's.
const CSS: &str = include_str!("templates/report.css");

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        for (name, source) in [("page.html", PAGE), ("gone.html", GONE)] {
            if let Err(e) = env.add_template(name, source) {
                // A broken template is a build defect; the unit tests catch it.
                tracing::error!(template = name, error = %e, "report template does not compile");
            }
        }
        env
    })
}

/// The CSP of a page whose one style element holds `css`.
fn csp(css: &str) -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(css.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

fn css(colour: &str, text: &str) -> String {
    CSS.replace("{colour}", colour).replace("{text}", text)
}

fn render_template(name: &str, ctx: Value) -> AppResult<String> {
    env()
        .get_template(name)
        .and_then(|t| t.render(Jinja::from_serialize(&ctx)))
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("report template {name}: {e}")))
}

/// The page for a link that is not (or no longer) valid: the same for
/// every reason, in both languages, naming nothing.
pub fn not_found() -> Page {
    let css = css("#52606d", "#ffffff");
    let html = render_template("gone.html", json!({ "css": css }))
        .unwrap_or_else(|_| "<!doctype html><title>404</title>".into());
    Page {
        found: false,
        csp: csp(&css),
        html,
    }
}

/// `x` with `places` decimals, a decimal comma in Russian, and thin-space
/// thousands groups from 10,000 on.
pub fn num(x: f64, places: usize, ru: bool) -> String {
    let s = format!("{x:.places$}");
    let (sign, s) = s.strip_prefix('-').map_or(("", s.as_str()), |r| ("−", r));
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let grouped = if int.len() > 4 {
        let mut out = String::new();
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                out.push('\u{202f}');
            }
            out.push(c);
        }
        out
    } else {
        int.to_owned()
    };
    let sign = if s.chars().all(|c| c == '0' || c == '.') {
        ""
    } else {
        sign
    };
    match (frac.is_empty(), ru) {
        (true, _) => format!("{sign}{grouped}"),
        (false, true) => format!("{sign}{grouped},{frac}"),
        (false, false) => format!("{sign}{grouped}.{frac}"),
    }
}

fn opt(x: Option<f64>, places: usize, ru: bool) -> String {
    x.map_or_else(|| "—".into(), |v| num(v, places, ru))
}

/// A fraction as a percentage.
fn pct(x: Option<f64>, ru: bool) -> String {
    x.map_or_else(|| "—".into(), |v| format!("{}%", num(100.0 * v, 1, ru)))
}

fn interval(lo: Option<f64>, hi: Option<f64>, places: usize, ru: bool) -> String {
    match (lo, hi) {
        (Some(l), Some(h)) => format!("{} … {}", num(l, places, ru), num(h, places, ru)),
        _ => "—".into(),
    }
}

fn when(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

/// Every word of the page: (key, Russian, English).
const WORDS: &[(&str, &str, &str)] = &[
    ("title", "Отчёт", "Report"),
    ("live", "Живой отчёт", "Live report"),
    ("generated", "Сформирован", "Generated"),
    ("version", "версия данных", "data version"),
    ("computed", "рассчитано", "computed"),
    ("panel", "Панель покупателей", "Customer panel"),
    ("respondents", "Ответов", "Respondents"),
    ("nps", "NPS", "NPS"),
    ("ci", "95% ДИ", "95% CI"),
    ("promoters", "Промоутеры", "Promoters"),
    ("passives", "Нейтралы", "Passives"),
    ("detractors", "Критики", "Detractors"),
    ("factors", "Факторы выбора", "Choice factors"),
    ("rank", "Место", "Rank"),
    ("factor", "Фактор", "Factor"),
    ("mean", "Среднее", "Mean"),
    ("n", "n", "n"),
    ("top2", "Доля 4–5", "Top-2 share"),
    ("hypotheses", "Гипотезы", "Hypotheses"),
    ("hypothesis", "Гипотеза", "Hypothesis"),
    ("verdict", "Вердикт", "Verdict"),
    ("difference", "Разница", "Difference"),
    ("p", "p", "p"),
    ("q", "q", "q"),
    ("supported", "подтверждена", "supported"),
    ("rejected", "отклонена", "rejected"),
    ("insufficient_data", "мало данных", "insufficient data"),
    ("recomputing", "пересчитывается", "recomputing"),
    ("pending", "ещё не рассчитано", "not computed yet"),
    (
        "qfd",
        "QFD: приоритеты точек контакта",
        "QFD: touchpoint priorities",
    ),
    ("touchpoint", "Точка контакта", "Touchpoint"),
    ("weight", "Вес", "Weight"),
    ("class", "Класс", "Class"),
    ("rating", "Оценка ТП", "Shopper rating"),
    ("priority", "Приоритет", "Priority"),
    ("critical", "критичная", "critical"),
    ("important", "важная", "important"),
    ("less_important", "менее важная", "less important"),
    ("ux", "UX-карта: отклонения", "UX map: flags"),
    ("as_of", "на дату", "as of"),
    ("current", "Неделя", "This week"),
    ("baseline", "База", "Baseline"),
    ("deviation", "Отклонение", "Change"),
    ("negative", "хуже", "worse"),
    ("positive", "лучше", "better"),
    ("flag", "Флаг", "Flag"),
    ("no_flags", "Отклонений нет.", "No flags."),
    ("cash", "Cash Journey: сценарии", "Cash Journey: scenarios"),
    ("scenario", "Сценарий", "Scenario"),
    ("min", "Мин.", "Min"),
    ("base", "Базовый", "Base"),
    ("max", "Макс.", "Max"),
    ("traffic", "Трафик", "Traffic"),
    ("first_sales", "Первые продажи", "First sales"),
    ("revenue", "Выручка", "Revenue"),
    ("profit", "Прибыль", "Profit"),
    ("romi", "ROMI", "ROMI"),
    ("none", "Данных пока нет.", "No data yet."),
];

fn words(ru: bool) -> Value {
    Value::Object(
        WORDS
            .iter()
            .map(|(k, r, e)| ((*k).to_owned(), Value::from(if ru { *r } else { *e })))
            .collect(),
    )
}

fn stamp(version: i64, computed: Option<DateTime<Utc>>, tz: Tz) -> Value {
    json!({"version": version, "computed": computed.map(|t| when(t, tz))})
}

fn panel_part(d: &ReportData, ru: bool, tz: Tz, title: &str) -> Value {
    let Some((q, view)) = &d.panel else {
        return Value::Null;
    };
    let p = &view.panel;
    let nps = p.nps.as_ref().map(|n| {
        json!({
            "value": opt(n.nps, 1, ru), "raw": n.nps,
            "ci": interval(n.ci95_low, n.ci95_high, 1, ru),
            "low": n.ci95_low, "high": n.ci95_high,
            "promoters": n.promoters, "passives": n.passives, "detractors": n.detractors, "n": n.n,
        })
    });
    let mut factors = p.factors.clone();
    factors.sort_by_key(|f| f.rank);
    let bars: Vec<Bar> = factors
        .iter()
        .filter_map(|f| {
            Some(Bar {
                label: f.name.clone(),
                mean: f.mean?,
                ci: f.ci95_low.zip(f.ci95_high),
                shown: num(f.mean?, 2, ru),
            })
        })
        .collect();
    let chart = (!bars.is_empty()).then(|| factors_svg(&bars, &d.brand.colour, title));
    json!({
        "title": q.title,
        "stamp": stamp(view.data_version, Some(view.computed_at), tz),
        "n": p.n,
        "nps": nps,
        "factors": factors.iter().map(|f| json!({
            "rank": f.rank, "name": f.name, "mean": opt(f.mean, 2, ru), "raw": f.mean,
            "ci": interval(f.ci95_low, f.ci95_high, 2, ru), "n": f.n, "top2": pct(f.top2, ru),
        })).collect::<Vec<_>>(),
        "chart": chart,
    })
}

fn verdict_key(v: Verdict) -> &'static str {
    match v {
        Verdict::Supported => "supported",
        Verdict::Rejected => "rejected",
        Verdict::InsufficientData => "insufficient_data",
    }
}

fn hypotheses_part(d: &ReportData, ru: bool, tz: Tz) -> Value {
    let Some(h) = &d.hypotheses else {
        return Value::Null;
    };
    json!({
        "stamp": stamp(h.data_version, h.computed_at, tz),
        "status": h.status,
        "items": h.items.iter().map(|o| match &o.result {
            Some(r) => json!({
                "name": o.name, "verdict": verdict_key(r.verdict),
                "difference": opt(r.difference, 3, ru), "ci": interval(r.ci_low, r.ci_high, 3, ru),
                "p": opt(r.p_value, 4, ru), "q": opt(r.q_value, 4, ru), "n1": r.n1, "n2": r.n2,
            }),
            None => json!({"name": o.name, "problem": o.problem}),
        }).collect::<Vec<_>>(),
    })
}

fn class_key(c: &Class) -> &'static str {
    match c {
        Class::Critical => "critical",
        Class::Important => "important",
        Class::LessImportant => "less_important",
    }
}

/// Touchpoints shown in the QFD part at most.
const MAX_QFD_ROWS: usize = 20;

fn qfd_part(d: &ReportData, ru: bool, tz: Tz, at: DateTime<Utc>) -> Value {
    let Some(q) = &d.qfd else {
        return Value::Null;
    };
    let mut rows: Vec<_> = q
        .priorities
        .iter()
        .filter(|p| p.relative_weight.is_some_and(|w| w > 0.0))
        .collect();
    // Highest priority first; unrated touchpoints after, by weight.
    rows.sort_by(|a, b| {
        b.priority
            .is_some()
            .cmp(&a.priority.is_some())
            .then(
                b.priority
                    .unwrap_or(0.0)
                    .total_cmp(&a.priority.unwrap_or(0.0)),
            )
            .then(
                b.relative_weight
                    .unwrap_or(0.0)
                    .total_cmp(&a.relative_weight.unwrap_or(0.0)),
            )
    });
    rows.truncate(MAX_QFD_ROWS);
    json!({
        "stamp": stamp(q.data_version, Some(at), tz),
        "rows": rows.iter().map(|p| {
            let class = q.result.touchpoints.iter().find(|t| t.id == p.touchpoint_id).map(|t| class_key(&t.class));
            json!({
                "name": d.touchpoints.get(&p.touchpoint_id).cloned().unwrap_or_else(|| p.touchpoint_id.clone()),
                "weight": pct(p.relative_weight, ru), "class": class,
                "rating": opt(p.mean_rating, 2, ru), "priority": opt(p.priority, 3, ru),
            })
        }).collect::<Vec<_>>(),
    })
}

fn ux_part(d: &ReportData, ru: bool, tz: Tz) -> Value {
    let Some(u) = &d.ux else {
        return Value::Null;
    };
    let flags: Vec<Value> = u
        .map
        .by_touchpoint
        .iter()
        .filter_map(|t| {
            let flag = match t.stats.flag? {
                Flag::Negative => "negative",
                Flag::Positive => "positive",
            };
            Some(json!({
                "name": d.touchpoints.get(&t.touchpoint_id).cloned().unwrap_or_else(|| t.touchpoint_id.clone()),
                "flag": flag,
                "current": opt(t.stats.current.mean, 2, ru), "baseline": opt(t.stats.baseline.mean, 2, ru),
                "deviation": opt(t.stats.deviation, 2, ru),
            }))
        })
        .collect();
    json!({
        "stamp": stamp(u.data_version, Some(u.computed_at), tz),
        "as_of": u.map.as_of.to_string(),
        "rated": u.map.by_touchpoint.len(),
        "flags": flags,
    })
}

fn cash_part(d: &ReportData, ru: bool, tz: Tz) -> Value {
    let money = |x: f64| num(x, 0, ru);
    Value::Array(
        d.cash
            .iter()
            .map(|m| {
                let s = &m.scenarios;
                let scenarios: Vec<Value> = [("min", &s.min), ("base", &s.base), ("max", &s.max)]
                    .iter()
                    .map(|(k, r)| {
                        json!({
                            "key": k, "traffic": money(r.figures.traffic),
                            "first_sales": money(r.figures.first_sales),
                            "revenue": money(r.figures.revenue), "profit": money(r.figures.profit),
                            "romi": pct(r.figures.romi, ru),
                        })
                    })
                    .collect();
                json!({
                    "name": m.name,
                    "stamp": stamp(m.data_version, Some(m.computed_at), tz),
                    "scenarios": scenarios,
                })
            })
            .collect(),
    )
}

/// The report page of `d`, generated at `at`.
pub fn render(d: &ReportData, at: DateTime<Utc>) -> AppResult<Page> {
    let ru = d.client.locale == "ru";
    let tz = crate::platform::digest_schedule::tz_of(&d.client);
    let t = words(ru);
    let css = css(&d.brand.colour, &d.brand.text_colour);
    let ctx = json!({
        "lang": if ru { "ru" } else { "en" },
        "t": t,
        "css": css,
        "agency": d.brand.name,
        "client": d.client.name,
        "generated": when(at, tz),
        "tz": tz.name(),
        "panel": panel_part(d, ru, tz, t["factors"].as_str().unwrap_or_default()),
        "hypotheses": hypotheses_part(d, ru, tz),
        "qfd": qfd_part(d, ru, tz, at),
        "ux": ux_part(d, ru, tz),
        "cash": cash_part(d, ru, tz),
    });
    Ok(Page {
        found: true,
        html: render_template("page.html", ctx)?,
        csp: csp(&css),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_the_language() {
        assert_eq!(num(33.333, 1, false), "33.3");
        assert_eq!(num(33.333, 1, true), "33,3");
        assert_eq!(num(-12.5, 1, true), "−12,5");
        assert_eq!(num(-0.01, 1, false), "0.0", "no negative zero");
        assert_eq!(num(1234.0, 0, false), "1234");
        assert_eq!(num(10500.0, 0, false), "10\u{202f}500");
        assert_eq!(num(1234567.891, 2, true), "1\u{202f}234\u{202f}567,89");
        assert_eq!(pct(Some(0.456), false), "45.6%");
        assert_eq!(opt(None, 2, false), "—");
    }

    #[test]
    fn the_not_found_page_names_nothing_and_allows_only_its_style() {
        let p = not_found();
        assert!(!p.found);
        assert!(p.html.contains("noindex"), "{}", p.html);
        assert!(p.csp.starts_with("default-src 'none'; style-src 'sha256-"));
        assert!(!p.csp.contains("unsafe"));
        // The hash is of the style element's text, exactly.
        let style = p
            .html
            .split("<style>")
            .nth(1)
            .and_then(|s| s.split("</style>").next())
            .unwrap();
        assert_eq!(csp(style), p.csp);
    }
}

//! Every email as HTML and plain text, from minijinja templates compiled
//! into the binary, in Russian or English, with the agency's branding.
use std::sync::OnceLock;

use minijinja::{Environment, context};
use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::brand::BrandColour;
use crate::infra::error::{AppError, AppResult};

/// How an agency's emails look.
#[derive(Debug, Clone, Serialize)]
pub struct Brand {
    pub name: String,
    /// CSS colour of the header band, buttons and charts.
    pub colour: String,
    /// CSS colour of text on `colour`.
    pub text_colour: String,
    pub logo_url: Option<String>,
    #[serde(skip)]
    pub rgb: BrandColour,
}

impl Brand {
    /// The default look with the agency's name.
    pub fn of(agency_name: &str) -> Self {
        Brand::with(agency_name, BrandColour::DEFAULT, None)
    }

    pub fn with(agency_name: &str, colour: BrandColour, logo_url: Option<String>) -> Self {
        Brand {
            name: agency_name.to_owned(),
            colour: colour.css(),
            text_colour: colour.text_on().to_owned(),
            logo_url,
            rgb: colour,
        }
    }

    /// The agency's own settings.
    pub fn of_agency(a: &entity::agency::Model) -> Self {
        Brand::with(
            &a.name,
            BrandColour::from_stored(a.brand_colour.as_deref()),
            a.logo_url.clone(),
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// The kinds with templates.
pub const KINDS: [&str; 5] = ["ux_alerts", "job_failed", "confirm", "newsletter", "digest"];

const TEMPLATES: [(&str, &str); 13] = [
    ("digest.html", include_str!("templates/digest.html")),
    ("digest.txt", include_str!("templates/digest.txt")),
    ("confirm.html", include_str!("templates/confirm.html")),
    ("confirm.txt", include_str!("templates/confirm.txt")),
    ("newsletter.html", include_str!("templates/newsletter.html")),
    ("newsletter.txt", include_str!("templates/newsletter.txt")),
    ("layout.html", include_str!("templates/layout.html")),
    ("ux_alerts.html", include_str!("templates/ux_alerts.html")),
    ("ux_alerts.txt", include_str!("templates/ux_alerts.txt")),
    ("job_failed.html", include_str!("templates/job_failed.html")),
    ("job_failed.txt", include_str!("templates/job_failed.txt")),
    (
        "webhook_disabled.html",
        include_str!("templates/webhook_disabled.html"),
    ),
    (
        "webhook_disabled.txt",
        include_str!("templates/webhook_disabled.txt"),
    ),
];

/// The one template environment (HTML autoescaped by name): the built-in
/// templates, and campaign sources compiled on the fly.
pub fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // .html templates escape what they insert; .txt ones do not.
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                // A broken template is a build defect; the render tests catch it.
                tracing::error!(template = name, error = %e, "email template does not compile");
            }
        }
        env
    })
}

/// The words of each kind, by locale (`ru`, else English). `subject` and
/// `heading` may use the variables of the kind's context.
fn strings(kind: &str, locale: &str) -> Value {
    let ru = locale == "ru";
    let footer = if ru {
        "Это письмо отправлено Growthpoint по поручению агентства."
    } else {
        "Sent by Growthpoint on behalf of your agency."
    };
    let t = match (kind, ru) {
        ("ux_alerts", true) => json!({
            "subject": "{{ client }}: новые отрицательные отклонения на UX-карте ({{ count }})",
            "heading": "Новые отрицательные отклонения: {{ client }}",
            "intro": "Средняя оценка тайных покупателей за последнюю неделю заметно ниже, чем за четыре недели до неё:",
            "where": "Где", "current": "Неделя", "baseline": "База", "change": "Отклонение",
            "jtbd": "Работа (JTBD)",
            "explain": "Флаг ставится, когда отклонение не меньше 0,5 балла и в обоих окнах есть хотя бы 3 оценки. Письмо приходит один раз на флаг.",
        }),
        ("ux_alerts", false) => json!({
            "subject": "{{ client }}: {{ count }} new negative UX-map flags",
            "heading": "New negative flags: {{ client }}",
            "intro": "Mystery-shopper ratings of the last week are clearly below those of the four weeks before:",
            "where": "Where", "current": "This week", "baseline": "Baseline", "change": "Change",
            "jtbd": "Job (JTBD)",
            "explain": "A flag is raised when the change is at least 0.5 points with 3 or more ratings in both windows. You get one email per flag.",
        }),
        ("confirm", true) => json!({
            "subject": "Подтвердите подписку: {{ list }}",
            "heading": "Подтвердите подписку",
            "intro": "Вы (или кто-то от вашего имени) подписались на рассылку «{{ list }}». Подтвердите, что это вы:",
            "button": "Подтвердить подписку",
            "consent": "Вы дали согласие:",
            "ignore": "Если вы не подписывались, просто проигнорируйте это письмо.",
        }),
        ("confirm", false) => json!({
            "subject": "Please confirm your subscription: {{ list }}",
            "heading": "Confirm your subscription",
            "intro": "You (or someone on your behalf) subscribed to '{{ list }}'. Please confirm it was you:",
            "button": "Confirm subscription",
            "consent": "You agreed to:",
            "ignore": "If you did not subscribe, just ignore this email.",
        }),
        ("newsletter", true) => json!({
            "subject": "{{ subject }}",
            "heading": "{{ subject }}",
            "why": "Вы получили это письмо, потому что подписались на рассылку «{{ list }}».",
            "unsubscribe": "Отписаться",
        }),
        ("newsletter", false) => json!({
            "subject": "{{ subject }}",
            "heading": "{{ subject }}",
            "why": "You get this email because you subscribed to '{{ list }}'.",
            "unsubscribe": "Unsubscribe",
        }),
        ("digest", true) => json!({
            "subject": "{{ client }}: {% if nothing_new %}без изменений{% else %}отчёт{% endif %} за {{ period }}",
            "heading": "{{ client }}: отчёт за {{ period }}",
            "nothing_new": "С прошлого отчёта новых данных нет. Следующий отчёт придёт по расписанию.",
            "panel": "Клиентская панель", "respondents": "Респондентов",
            "since_last": "с прошлого отчёта",
            "factors": "Главные факторы выбора (средняя важность, 1–5)",
            "hypotheses": "Гипотезы, сменившие вывод",
            "ux": "UX-карта (тайные покупатели)",
            "ux_negative": "Отрицательные отклонения", "ux_positive": "Положительные отклонения",
            "ux_vs": "против", "ux_new": "новое",
            "ux_explain": "Средняя оценка за неделю по {{ period }} против четырёх недель до неё; отмечены отклонения от 0,5 балла при 3 и более оценках в каждом окне.",
            "cash": "Cash Journey: план и факт",
            "cash_base": "последний период с фактом против базового сценария",
            "figure": "Показатель", "plan": "План", "actual": "Факт", "variance": "Отклонение",
            "cash_biggest": "Наибольшие отклонения",
            "funnel": "Воронка за 4 недели", "funnel_day": "Воронка за", "funnel_value": "Значение",
            "live_report": "Открыть живой отчёт",
        }),
        ("digest", false) => json!({
            "subject": "{{ client }}: {% if nothing_new %}nothing new{% else %}report{% endif %} for {{ period }}",
            "heading": "{{ client }}: report for {{ period }}",
            "nothing_new": "No new data since the last report. The next one follows on schedule.",
            "panel": "Customer panel", "respondents": "Respondents",
            "since_last": "since the last report",
            "factors": "Top choice factors (mean importance, 1-5)",
            "hypotheses": "Hypotheses that changed verdict",
            "ux": "UX map (mystery shoppers)",
            "ux_negative": "Negative flags", "ux_positive": "Positive flags",
            "ux_vs": "vs", "ux_new": "new",
            "ux_explain": "Mean rating of the week to {{ period }} against the four weeks before; changes of 0.5 points or more are flagged when each window has 3 or more ratings.",
            "cash": "Cash Journey: plan vs fact",
            "cash_base": "the latest period with actuals against the base scenario",
            "figure": "Figure", "plan": "Plan", "actual": "Actual", "variance": "Variance",
            "cash_biggest": "Biggest variances",
            "funnel": "Funnel, last 4 weeks", "funnel_day": "Funnel of", "funnel_value": "Value",
            "live_report": "Open the live report",
        }),
        ("job_failed", true) => json!({
            "subject": "Пересчёт не удался{% if count > 1 %} (всего: {{ count }}){% else %}: {{ jobs[0].label }}{% endif %}",
            "heading": "Пересчёт не удался",
            "intro": "Фоновые пересчёты ниже исчерпали все попытки. Данные сохранены, но результаты устарели до следующего успешного пересчёта.",
            "what": "Что", "version": "Версия данных", "attempts": "Попыток", "error": "Ошибка", "when": "Когда",
            "explain": "Пересчёт запустится снова при следующих данных; список неудачных пересчётов — GET /api/v1/jobs?status=failed. О каждой неудаче приходит одно письмо.",
        }),
        ("webhook_disabled", true) => json!({
            "subject": "Вебхук отключён: {{ url }}",
            "heading": "Вебхук отключён",
            "intro": "Доставки на этот адрес не удавались в течение всего срока повторов, поэтому он отключён и события на него больше не отправляются:",
            "why": "Причина",
            "explain": "Исправьте получатель и включите вебхук снова (PATCH /api/v1/webhooks/{id} с enabled: true); журнал доставок — GET /api/v1/webhooks/{id}/deliveries.",
        }),
        ("webhook_disabled", false) => json!({
            "subject": "Webhook endpoint disabled: {{ url }}",
            "heading": "Webhook endpoint disabled",
            "intro": "Deliveries to this endpoint kept failing for the whole retry period, so it was disabled and gets no more events:",
            "why": "Reason",
            "explain": "Fix the receiver and enable the endpoint again (PATCH /api/v1/webhooks/{id} with enabled: true); its delivery log is at GET /api/v1/webhooks/{id}/deliveries.",
        }),
        (_, _) => json!({
            "subject": "{% if count > 1 %}{{ count }} recomputes failed{% else %}Recompute failed: {{ jobs[0].label }}{% endif %}",
            "heading": "{% if count > 1 %}{{ count }} recomputes failed{% else %}A recompute failed{% endif %}",
            "intro": "The background recomputes below used up all their attempts. The data is stored, but results stay stale until the next successful recompute.",
            "what": "What", "version": "Data version", "attempts": "Attempts", "error": "Error", "when": "When",
            "explain": "Each runs again when new data arrives; failed runs are listed at GET /api/v1/jobs?status=failed. You get one email per failure.",
        }),
    };
    let mut t = t;
    t["footer"] = json!(footer);
    t
}

/// Renders `kind` for `locale` with `data` (the kind's variables).
pub fn render(kind: &str, locale: &str, brand: &Brand, data: Value) -> AppResult<Rendered> {
    let fail = |e: minijinja::Error| AppError::Unexpected(anyhow::anyhow!("email {kind}: {e:#}"));
    let env = env();
    let t = strings(kind, locale);
    let line = |key: &str| -> AppResult<String> {
        env.render_str(t[key].as_str().unwrap_or_default(), &data)
            .map_err(fail)
    };
    let subject = line("subject")?;
    let heading = line("heading")?;
    // The other strings may use the kind's variables too.
    let mut t = t;
    if let Some(map) = t.as_object_mut() {
        for (k, v) in map.iter_mut() {
            if k != "subject"
                && k != "heading"
                && let Some(src) = v.as_str()
                && src.contains("{{")
            {
                *v = Value::String(env.render_str(src, &data).map_err(fail)?);
            }
        }
    }
    let ctx = context! {
        ..minijinja::Value::from_serialize(&data),
        ..context! { t => &t, brand => brand, locale => locale, subject => &subject, heading => &heading }
    };
    let html = env
        .get_template(&format!("{kind}.html"))
        .and_then(|tpl| tpl.render(&ctx))
        .map_err(fail)?;
    let text = env
        .get_template(&format!("{kind}.txt"))
        .and_then(|tpl| tpl.render(&ctx))
        .map_err(fail)?;
    Ok(Rendered {
        subject,
        html,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: &str) -> Value {
        match kind {
            "ux_alerts" => json!({
                "client": "Fitness <club>",
                "count": 1,
                "alerts": [{"label": "Reception", "jtbd": "relax", "current": "2.00", "baseline": "4.67", "deviation": "−2.67", "n": 3}],
            }),
            "confirm" => {
                json!({"list": "News", "confirm_url": "http://x/c?token=1", "consent_text": "I agree"})
            }
            "newsletter" => {
                json!({"list": "News", "subject": "Hello", "body": "<p>Hi</p>", "unsubscribe_url": "http://x/u?token=1"})
            }
            "digest" => {
                json!({"client": "Shop", "period": "2026-11-23", "nothing_new": false, "chart_height": 60,
                "panel": {"title": "Panel", "n": 10, "nps": "20.0", "nps_change": "+5.0", "nps_up": true},
                "factors": [{"name": "Price", "mean": "4.50"}], "verdicts": [],
                "ux_negative": [{"label": "Reception <desk>", "deviation": "-2.0", "current": "2.0", "baseline": "4.0", "new": true}],
                "ux_positive": [{"label": "Locker room", "deviation": "+1.5", "current": "4.5", "baseline": "3.0", "new": false}],
                "cash": [{"model": "Funnel", "period": "2026-11",
                    "headline": [{"label": "Revenue", "plan": "1,000", "actual": "900", "change": "−10.0%", "good": false}],
                    "biggest": [{"label": "Leads", "plan": "100", "actual": "120", "change": "+20.0%", "good": true}]}],
                "funnel": {"rows": [{"label": "New contacts", "value": "120", "change": "+20", "good": true},
                    {"label": "CPA <net>", "value": "150.00", "change": null, "good": false}]}})
            }
            _ => {
                json!({"count": 2, "jobs": [
                    {"kind": "client_ux", "label": "UX-map alerts", "target_id": "x", "data_version": 3, "attempt": 5, "error": "boom", "failed_at": "2026-12-01 10:00:00 UTC"},
                    {"kind": "questionnaire_summary", "label": "Questionnaire summary", "target_id": "y", "data_version": 1, "attempt": 5, "error": "bang", "failed_at": "2026-12-01 10:00:01 UTC"},
                ]})
            }
        }
    }

    #[test]
    fn every_kind_renders_in_both_languages_with_escaping() {
        for kind in KINDS {
            for locale in ["ru", "en"] {
                let r = render(kind, locale, &Brand::of("Agency & Co"), sample(kind)).unwrap();
                assert!(
                    !r.subject.is_empty() && !r.subject.contains("{{"),
                    "{kind} {locale}: {:?}",
                    r.subject
                );
                assert!(r.html.contains("Agency &amp; Co"), "{}", r.html);
                assert!(r.text.contains("Agency & Co"), "{}", r.text);
                assert!(!r.html.contains("{{") && !r.text.contains("{{"));
            }
        }
        // The digest's UX map: both kinds of flag, the new one marked.
        let d = render("digest", "en", &Brand::of("A"), sample("digest")).unwrap();
        assert!(
            d.text
                .contains("Negative flags:\n- Reception <desk>: -2.0 (2.0 vs 4.0) [new]\n")
                && d.text
                    .contains("Positive flags:\n- Locker room: +1.5 (4.5 vs 3.0)\n"),
            "{}",
            d.text
        );
        assert!(d.text.contains("week to 2026-11-23"), "{}", d.text);
        assert!(d.text.contains("Funnel, last 4 weeks:"), "{}", d.text);
        // A daily digest's funnel names its one day.
        let mut daily = sample("digest");
        daily["funnel"]["day"] = json!("2026-11-22");
        for (locale, title) in [
            ("en", "Funnel of 2026-11-22"),
            ("ru", "Воронка за 2026-11-22"),
        ] {
            let d = render("digest", locale, &Brand::of("A"), daily.clone()).unwrap();
            assert!(d.text.contains(&format!("{title}:")), "{}", d.text);
            assert!(d.html.contains(title), "{}", d.html);
        }
        assert!(
            d.html.contains("Reception &lt;desk&gt;") && d.html.contains("#0e7c3a"),
            "{}",
            d.html
        );
        let d = render("digest", "ru", &Brand::of("A"), sample("digest")).unwrap();
        assert!(
            d.text
                .contains("Положительные отклонения:\n- Locker room: +1.5 (4.5 против 3.0)"),
            "{}",
            d.text
        );
        let r = render("ux_alerts", "en", &Brand::of("A"), sample("ux_alerts")).unwrap();
        assert!(r.html.contains("Fitness &lt;club&gt;"));
        assert!(
            r.text
                .contains("Reception (Job (JTBD): relax): 2.00 (n=3) vs 4.67")
        );
        let ru = render("ux_alerts", "ru", &Brand::of("A"), sample("ux_alerts")).unwrap();
        assert!(
            ru.subject.contains("отрицательные отклонения"),
            "{}",
            ru.subject
        );
    }
}

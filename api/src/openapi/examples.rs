//! An example for every operation (issue 13): its parameters, its request
//! body and its responses, so that a reader of the reference (and a client
//! generator, and Schemathesis' examples phase) sees a plausible value of
//! each shape rather than a bare schema.
//!
//! The examples are made from the tightened schemas themselves: a value
//! for each type that keeps the schema's enum, range, length and pattern,
//! with the property's name choosing a readable value where it can
//! ("email" → an address, "name" → a name). What a schema cannot carry (the
//! imports' CSV and NDJSON texts) is written out here. Problem responses
//! share one example per status, made by the very function that renders
//! errors (`error::problem_of`). `tests/tests/contract.rs` checks that every
//! example is valid against its schema.
use regex::Regex;
use serde_json::{Map, Value, json};
use service::{AppError, FieldError};

use crate::error::problem_of;

/// Adds the examples (an example already written on a schema is kept).
pub fn add_examples(doc: &mut Value) {
    let schemas = doc
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or(Value::Null);
    let maker = Maker::new(&schemas);
    problem_examples(doc);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut().filter_map(Value::as_object_mut) {
            if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                for p in params.iter_mut() {
                    parameter_example(&maker, p);
                }
            }
            if let Some(content) = op
                .get_mut("requestBody")
                .and_then(|b| b.get_mut("content"))
                .and_then(Value::as_object_mut)
            {
                for (media, m) in content.iter_mut() {
                    let example = match media.as_str() {
                        "application/json" => m.get("schema").map(|s| maker.request(s)),
                        other => import_example(path, other).map(Value::from),
                    };
                    if let (Some(example), Some(m)) = (example, m.as_object_mut()) {
                        m.entry("example").or_insert(example);
                    }
                }
            }
            if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
                for (status, r) in responses.iter_mut() {
                    response_example(&maker, status, r);
                }
            }
        }
    }
}

fn parameter_example(maker: &Maker, p: &mut Value) {
    if p.get("example").is_some() || p.get("examples").is_some() {
        return;
    }
    let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
    if let Some(schema) = p.get("schema") {
        let example = maker.value(schema, Some(name), Side::Request, 0);
        if let Some(m) = p.as_object_mut() {
            m.insert("example".into(), example);
        }
    } else if let Some(schema) = p.pointer("/content/application~1json/schema") {
        // A structured parameter (a segment filter): the example goes on
        // its media type, as JSON.
        let example = maker.request(schema);
        if let Some(m) = p
            .pointer_mut("/content/application~1json")
            .and_then(Value::as_object_mut)
        {
            m.entry("example").or_insert(example);
        }
    }
}

fn response_example(maker: &Maker, status: &str, r: &mut Value) {
    let Some(content) = r.get_mut("content").and_then(Value::as_object_mut) else {
        return;
    };
    for (media, m) in content.iter_mut() {
        let Some(m) = m.as_object_mut() else { continue };
        if m.contains_key("example") || m.contains_key("examples") {
            continue;
        }
        match media.as_str() {
            "application/problem+json" => {
                m.insert(
                    "examples".into(),
                    json!({ status: { "$ref": format!("#/components/examples/problem_{status}") } }),
                );
            }
            "application/json" => {
                if let Some(s) = m.get("schema") {
                    let example = maker.value(s, None, Side::Response, 0);
                    m.insert("example".into(), example);
                }
            }
            "text/html" => {
                m.insert(
                    "example".into(),
                    "<!doctype html><html lang=\"en\"><title>Growthpoint</title><p>Done.</p></html>"
                        .into(),
                );
            }
            "text/plain" => {
                m.insert("example".into(), "Hello Ana,\n\nYour weekly digest…".into());
            }
            // Binary bodies (the tracking pixel) have no useful text example.
            _ => {}
        }
    }
}

/// One problem example per status the document names, under
/// `components/examples`; every problem response refers to its status's.
fn problem_examples(doc: &mut Value) {
    let examples: [(&str, AppError, &str); 10] = [
        (
            "400",
            AppError::BadRequest(
                "the body is not valid JSON: expected value at line 1 column 1".into(),
            ),
            "An unreadable body",
        ),
        (
            "401",
            AppError::Unauthorized("missing bearer token".into()),
            "No credentials",
        ),
        (
            "403",
            AppError::Forbidden("this needs the admin role".into()),
            "A member's token on an admin route",
        ),
        (
            "404",
            AppError::NotFound,
            "Another agency's id, or none at all",
        ),
        (
            "409",
            AppError::Conflict("a client with this name exists".into()),
            "A clash with stored state",
        ),
        ("413", AppError::PayloadTooLarge, "A body over the limit"),
        (
            "422",
            AppError::Validation(vec![FieldError::new("name", "must not be blank")]),
            "A field the server refuses",
        ),
        (
            "429",
            AppError::RateLimited {
                retry_after_secs: 30,
            },
            "Too many sign-in attempts",
        ),
        (
            "500",
            AppError::Unexpected(anyhow::anyhow!("hidden from clients")),
            "A failure on our side (details are only in the server log)",
        ),
        (
            "503",
            AppError::DatabaseUnavailable("hidden from clients".into()),
            "The database is unreachable; retry after the Retry-After header",
        ),
    ];
    let mut out = Map::new();
    for (status, error, summary) in examples {
        let value = serde_json::to_value(problem_of(&error)).unwrap_or(Value::Null);
        out.insert(
            format!("problem_{status}"),
            json!({ "summary": summary, "value": value }),
        );
    }
    if let Some(components) = doc.get_mut("components").and_then(Value::as_object_mut) {
        components.insert("examples".into(), Value::Object(out));
    }
}

/// The CSV imports' bodies: a header and two rows. (Schemathesis' examples
/// phase cannot send an NDJSON example; the CSV one shows the same fields.)
fn import_example(path: &str, media: &str) -> Option<&'static str> {
    if media != "text/csv" {
        return None;
    }
    let text = match path.rsplit('/').nth(1)? {
        "channel-figures" => {
            "day,channel,funnel,spend,impressions,clicks,contacts,leads,mentions,brand_searches\n\
             2026-11-02,search,reach,420,18000,640,0,0,0,35\n\
             2026-11-02,email,warming,0,0,120,40,6,0,0\n"
        }
        "contacts" => {
            "email,consent_source,city,converted\nana@example.com,web_form,msk,true\nboris@example.com,event,spb,\n"
        }
        "purchases" => {
            "external_id,customer_ref,purchased_at,amount,items,party_size,channel\n\
             r-1001,c-17,2026-11-02T12:30:00Z,24.5,2,1,hall\n\
             r-1002,c-42,2026-11-02T19:05:00Z,61,4,3,delivery\n"
        }
        "subscribers" => {
            "email,name,consent_source\nana@example.com,Ana,web_form\nboris@example.com,Boris,event\n"
        }
        "responses" => "external_id,city,nps\nr-1,msk,9\nr-2,spb,6\n",
        _ => return None,
    };
    Some(text)
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    /// What a client sends: optional fields that may be null are left out
    /// (the smallest valid body shows what is needed).
    Request,
    /// What the server sends: every field, with a value.
    Response,
}

struct Maker<'a> {
    schemas: &'a Value,
}

/// How deep `$ref`s are followed before an example stops (the document has
/// no recursive shape this deep; a free-form JSON value is shown as `{}`).
const MAX_DEPTH: usize = 32;

impl<'a> Maker<'a> {
    fn new(schemas: &'a Value) -> Self {
        Self { schemas }
    }

    fn request(&self, schema: &Value) -> Value {
        self.value(schema, None, Side::Request, 0)
    }

    /// An example of `schema`; `name` is the property or parameter it is for.
    fn value(&self, schema: &Value, name: Option<&str>, side: Side, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return json!({});
        }
        let Some(m) = schema.as_object() else {
            return Value::Null;
        };
        if let Some(e) = m.get("example") {
            return e.clone();
        }
        if let Some(e) = m
            .get("examples")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return e.clone();
        }
        if let Some(c) = m.get("const") {
            return c.clone();
        }
        if let Some(e) = m.get("enum").and_then(Value::as_array) {
            return e
                .iter()
                .find(|v| !v.is_null())
                .cloned()
                .unwrap_or(Value::Null);
        }
        if let Some(r) = m.get("$ref").and_then(Value::as_str) {
            let target = r
                .strip_prefix("#/components/schemas/")
                .and_then(|n| self.schemas.get(n));
            return match target {
                Some(t) => self.value(t, name, side, depth + 1),
                None => Value::Null,
            };
        }
        if let Some(parts) = m.get("allOf").and_then(Value::as_array) {
            let mut merged = Map::new();
            for p in parts {
                match self.value(p, name, side, depth + 1) {
                    Value::Object(o) => merged.extend(o),
                    other if merged.is_empty() && parts.len() == 1 => return other,
                    _ => {}
                }
            }
            return Value::Object(merged);
        }
        let branch = ["oneOf", "anyOf"].iter().find_map(|k| {
            m.get(*k)
                .and_then(Value::as_array)
                .and_then(|bs| bs.iter().find(|b| !is_null_schema(b)))
        });
        if let (Some(b), false) = (branch, m.contains_key("properties")) {
            return self.value(b, name, side, depth + 1);
        }
        match primary_type(m) {
            Some("object") => self.object(m, side, depth),
            Some("array") => {
                let item = m
                    .get("items")
                    .map(|i| self.value(i, singular(name), side, depth + 1))
                    .unwrap_or(Value::Null);
                let min = m
                    .get("minItems")
                    .and_then(Value::as_u64)
                    .unwrap_or(1)
                    .max(1);
                let max = m
                    .get("maxItems")
                    .and_then(Value::as_u64)
                    .unwrap_or(u64::MAX);
                let n = min.min(max);
                if n == 0 || (item.is_null() && !m.contains_key("items")) {
                    return json!([]);
                }
                let unique = m.get("uniqueItems").and_then(Value::as_bool) == Some(true);
                if unique || n == 1 {
                    return json!([item]);
                }
                Value::Array(vec![item; usize::try_from(n).unwrap_or(1).min(3)])
            }
            Some("string") => self.string(m, name),
            Some("integer") => number(m, name, true),
            Some("number") => number(m, name, false),
            Some("boolean") => Value::Bool(true),
            Some("null") => Value::Null,
            _ if m.contains_key("properties") => self.object(m, side, depth),
            // `{}`: any JSON value.
            _ => json!({}),
        }
    }

    fn object(&self, m: &Map<String, Value>, side: Side, depth: usize) -> Value {
        let required: Vec<&str> = m
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut out = Map::new();
        if let Some(props) = m.get("properties").and_then(Value::as_object) {
            for (k, s) in props {
                let needed = required.contains(&k.as_str());
                if side == Side::Request && !needed && admits_null(s, self.schemas) {
                    continue;
                }
                out.insert(k.clone(), self.value(s, Some(k), side, depth + 1));
            }
        } else if let Some(extra) = m.get("additionalProperties").filter(|a| a.is_object()) {
            let key = m
                .get("propertyNames")
                .and_then(|p| p.get("pattern"))
                .and_then(Value::as_str)
                .map_or("city", |p| fit_pattern("city", p));
            out.insert(
                key.to_owned(),
                self.value(extra, Some(key), side, depth + 1),
            );
        }
        Value::Object(out)
    }

    fn string(&self, m: &Map<String, Value>, name: Option<&str>) -> Value {
        let format = m.get("format").and_then(Value::as_str);
        let mut s: String = match (format, name) {
            (Some("uuid"), _) => UUID.into(),
            (Some("date-time"), _) => "2026-11-30T09:00:00Z".into(),
            (Some("date"), _) => "2026-11-30".into(),
            (Some("email"), _) => "ana@example.com".into(),
            (Some("uri" | "url"), _) => "https://hooks.example.com/growthpoint".into(),
            (_, Some(n)) if names_an_id(n) => UUID.into(),
            (_, Some(n)) => by_name(n).to_owned(),
            (_, None) => "text".into(),
        };
        if let Some(p) = m.get("pattern").and_then(Value::as_str) {
            s = fit_pattern(&s, p).to_owned();
        }
        let min = m.get("minLength").and_then(Value::as_u64).unwrap_or(0);
        let max = m
            .get("maxLength")
            .and_then(Value::as_u64)
            .unwrap_or(u64::MAX);
        let len = s.chars().count() as u64;
        if len > max {
            s = s.chars().take(usize::try_from(max).unwrap_or(0)).collect();
        }
        while (s.chars().count() as u64) < min {
            s.push('x');
        }
        Value::String(s)
    }
}

/// `id`, `client_id`, `factor_ids`, `next_cursor`: ids (a cursor is one).
fn names_an_id(name: &str) -> bool {
    ["id", "ids", "cursor", "after"]
        .iter()
        .any(|s| name == *s || name.ends_with(&format!("_{s}")))
}

const UUID: &str = "0193a7d2-5c4e-7b1f-9d2a-3e4f5a6b7c8d";

/// Readable strings by property name.
fn by_name(name: &str) -> &'static str {
    match name {
        "email" | "recipient" | "reply_to" | "from_address" => "ana@example.com",
        "password" => "correct horse battery staple",
        "name" | "agency_name" => "Northwind Realty",
        "name_en" => "Website visit",
        "name_ru" => "Посещение сайта",
        "label" | "title" => "How did you hear about us?",
        "subject" => "Your November results",
        "text" | "description" | "message" | "detail" | "consent_text" => {
            "Subscribe to our monthly market notes."
        }
        "html" => "<p>Hello {{ name }}</p>",
        "key" | "question" | "question_key" | "trigger_key" => "city",
        "value" | "option" => "msk",
        "locale" => "en",
        "timezone" => "Europe/Moscow",
        "currency" => "EUR",
        "channel" | "source_channel" | "via" => "search",
        "industry" => "real estate",
        "external_id" => "r-1001",
        "customer_ref" | "respondent_ref" | "next_customer" => "c-17",
        "jtbd" => "family dinner",
        "segment" => "Moscow families",
        "period" => "2026-11",
        "as_of" | "day" | "from" | "to" => "2026-11-30",
        "window_start" => "09:00",
        "window_end" => "18:00",
        "token" | "invitation_token" => "tok_5f1c9a0e2b7d4c36",
        "secret" => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "public_id" => "gpk3x9q2",
        "url" | "logo_url" => "https://hooks.example.com/growthpoint",
        "smtp_url" => "smtp://mailer:secret@smtp.example.com:587",
        "smtp_host" => "smtp.example.com",
        "brand_colour" => "#1f6feb",
        "consent_ip" => "203.0.113.7",
        "consent_source" | "source" | "source_page" | "outcome_source" => "web_form",
        "from_name" => "Northwind Realty",
        "request_id" => "req-7d2f",
        "worker_id" => "worker-1",
        "reason" | "exit_reason" | "disabled_reason" | "last_error" | "error" => {
            "the receiver answered 500"
        }
        "comparison" | "metric" | "rule" | "problem" | "feature" => "price",
        n if n.contains("email") || n.contains("recipient") => "ana@example.com",
        n if n.ends_with("_at") || n.ends_with("_date") => "2026-11-30",
        "stage" => "Evaluation & choice",
        "choice_factor" => "Price",
        "format" => "csv",
        "kind" => "interview",
        "status" => "active",
        "code" => "not_found",
        "type" => "/problems/not_found",
        "field" => "name",
        "message_id" => "<0193a7d2@growthpoint>",
        "scope" => "read",
        _ => "text",
    }
}

/// Other candidates tried when the first value does not fit a pattern.
const CANDIDATES: [&str; 16] = [
    "city",
    "msk",
    UUID,
    "2026-11-30",
    "2026-11-30T09:00:00Z",
    "2026-11",
    "09:00",
    "EUR",
    "monday",
    "ana@example.com",
    "https://hooks.example.com/growthpoint",
    "client.create",
    "user",
    "ux_alerts",
    "1764493200000:0193a7d2-5c4e-7b1f-9d2a-3e4f5a6b7c8d",
    "Northwind Realty",
];

/// `first` if it matches `pattern`, else the first candidate that does
/// (the contract test reports a pattern none fits).
fn fit_pattern<'s>(first: &'s str, pattern: &str) -> &'s str {
    let Ok(re) = Regex::new(pattern) else {
        return first;
    };
    if re.is_match(first) {
        return first;
    }
    CANDIDATES
        .into_iter()
        .find(|c| re.is_match(c))
        .unwrap_or(first)
}

fn number(m: &Map<String, Value>, name: Option<&str>, integer: bool) -> Value {
    let preferred: f64 = match name.unwrap_or_default() {
        "limit" => 50.0,
        "n" | "count" | "total" | "n_answered" | "responses" => 120.0,
        "nps" => 32.0,
        "mean" => 4.2,
        "share" | "p" | "q" | "p_value" | "q_value" | "rate" => 0.35,
        "year" => 2026.0,
        "version" | "data_version" => 7.0,
        "consent_version" => 1.0,
        "wait_ms" => 5000.0,
        _ if integer => 3.0,
        _ => 12.5,
    };
    let f = |k: &str| m.get(k).and_then(Value::as_f64);
    let mut lo = f("minimum").unwrap_or(f64::MIN);
    let mut hi = f("maximum").unwrap_or(f64::MAX);
    if let Some(e) = f("exclusiveMinimum") {
        lo = lo.max(if integer {
            e + 1.0
        } else {
            e + (hi.min(e + 2.0) - e) / 2.0
        });
    }
    if let Some(e) = f("exclusiveMaximum") {
        hi = hi.min(if integer {
            e - 1.0
        } else {
            e - (e - lo.max(e - 2.0)) / 2.0
        });
    }
    let v = preferred.clamp(lo.min(hi), hi.max(lo));
    if integer {
        json!(v.round() as i64)
    } else {
        json!(v)
    }
}

fn primary_type(m: &Map<String, Value>) -> Option<&str> {
    match m.get("type") {
        Some(Value::String(t)) => Some(t),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .or(Some("null")),
        _ => None,
    }
}

fn is_null_schema(s: &Value) -> bool {
    s.get("type").is_some_and(|t| t == "null")
}

/// Whether an optional property may be left out of a request as null.
fn admits_null(s: &Value, schemas: &Value) -> bool {
    let Some(m) = s.as_object() else { return false };
    if let Some(Value::Array(ts)) = m.get("type") {
        return ts.iter().any(|t| t == "null");
    }
    ["oneOf", "anyOf"].iter().any(|k| {
        m.get(*k)
            .and_then(Value::as_array)
            .is_some_and(|bs| bs.iter().any(is_null_schema))
    }) || m
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .and_then(|n| schemas.get(n))
        .is_some_and(|t| admits_null(t, schemas))
}

/// `options` → `option`: the item of a list is named by its singular.
fn singular(name: Option<&str>) -> Option<&str> {
    name.map(|n| n.strip_suffix('s').unwrap_or(n))
}

//! Purchases and the JTBD value-migration map (analytics.md §6, product
//! flow 4): per client, purchases are ingested like responses (one JSON
//! document, or up to 1,000,000 NDJSON/CSV rows, all validated before any is
//! stored, idempotent by `external_id`); the client's ordered labelling
//! rules are one JSON list; the map (RFM, migration matrix, churn, LTV,
//! inter-purchase intervals) is computed on read by `analytics::jtbd`.
//!
//! Computed on read, not by the worker: the figures depend on the caller's
//! as-of date, period and margin, so there is no one snapshot to keep; a
//! read loads the client's purchases up to D (six narrow columns each) and
//! folds them in one pass off the async executor.
//!
//! Times: purchases are stored in UTC. The rules speak of local weekdays and
//! hours, and D is a local date, so every purchase is converted to the
//! client's time zone (`clients.timezone`) before labelling and dating.
//!
//! Viewers read; whoever may ingest (analysts, `ingest`/`write` API keys)
//! pushes purchases; analysts edit the rules.
use std::collections::{BTreeMap, HashSet};

use analytics::jtbd::{self, JtbdConfig, LabelRule, LabelRules, PeriodKind, Purchase};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use entity::{client, jtbd_rule_set, purchase};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::import::{ErrorSink, MAX_EXTERNAL_ID, json_error_field};
use crate::infra::db::begin_write;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::page::{Page, PageParams};
use crate::platform::clients::find_client;
use crate::research::responses::ImportFormat;
use crate::{Perm, RequestCtx, Services, new_id, now};

/// Rows per import.
pub const MAX_IMPORT_ROWS: usize = 1_000_000;
/// Amounts are at most this, so sums stay exact enough and finite.
pub const MAX_AMOUNT: f64 = 1e12;
pub const MAX_ITEMS: i64 = 1_000_000;
pub const MAX_PARTY_SIZE: i64 = 10_000;
pub const MAX_CHANNEL: usize = 64;
/// Rules per client.
pub const MAX_RULES: usize = 100;
pub const MAX_LABEL: usize = 64;
/// RFM rows per page of the results.
pub const DEFAULT_CUSTOMERS: u64 = 100;
pub const MAX_CUSTOMERS: u64 = 1000;

// ---------------------------------------------------------------- inputs/views

/// One purchase as an integration sends it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct PurchaseInput {
    /// Your id for the purchase; re-sending it is a no-op (a duplicate).
    #[serde(default)]
    pub external_id: Option<String>,
    /// The customer (card, phone hash, loyalty id…), 1 to 200 bytes.
    pub customer_ref: String,
    /// When (RFC 3339 with an offset); labelled in the client's time zone.
    pub purchased_at: DateTime<Utc>,
    /// ≥ 0, at most 1e12.
    pub amount: f64,
    /// Items bought, an integer ≥ 0.
    pub items: i64,
    /// Guests, an integer ≥ 1.
    pub party_size: i64,
    /// E.g. `hall`, `delivery`; 1 to 64 bytes.
    #[serde(default)]
    pub channel: Option<String>,
}

/// A validated purchase ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedPurchase {
    pub external_id: Option<String>,
    pub customer_ref: String,
    pub purchased_at: DateTime<Utc>,
    pub amount: f64,
    pub items: i32,
    pub party_size: i32,
    pub channel: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
#[graphql(name = "PurchaseIngestResult")]
pub struct PurchaseIngestResult {
    /// Rows received.
    pub received: u64,
    /// Rows stored now.
    pub inserted: u64,
    /// Rows whose `external_id` was already stored (or repeated in the batch).
    pub duplicates: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct PurchaseView {
    pub id: Uuid,
    pub external_id: Option<String>,
    pub customer_ref: String,
    pub purchased_at: DateTime<Utc>,
    pub amount: f64,
    pub items: i32,
    pub party_size: i32,
    pub channel: Option<String>,
    pub created_at: DateTime<Utc>,
}
crate::has_id!(PurchaseView);

impl From<purchase::Model> for PurchaseView {
    fn from(m: purchase::Model) -> Self {
        Self {
            id: m.id,
            external_id: m.external_id,
            customer_ref: m.customer_ref,
            purchased_at: m.purchased_at,
            amount: m.amount,
            items: m.items,
            party_size: m.party_size,
            channel: m.channel,
            created_at: m.created_at,
        }
    }
}

/// A purchase of one customer with its JTBD label under the current rules.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CustomerPurchaseView {
    pub id: Uuid,
    pub external_id: Option<String>,
    pub purchased_at: DateTime<Utc>,
    /// `purchased_at` in the client's time zone (what the rules see).
    pub local_time: NaiveDateTime,
    pub amount: f64,
    pub items: i32,
    pub party_size: i32,
    pub channel: Option<String>,
    /// The first matching rule's label, or `other`.
    pub label: String,
}
crate::has_id!(CustomerPurchaseView);

/// The rules as sent to `PUT /clients/{id}/jtbd-rules`: `{"rules": [...]}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JtbdRulesInput {
    pub rules: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct JtbdRulesView {
    pub client_id: Uuid,
    /// Ordered; the first matching rule labels a purchase, no match →
    /// `other`. Each: `label`, and optionally `weekdays` (`["Mon", …]`),
    /// `hours` (`{"from": 12, "to": 14}`, inclusive, wraps past midnight),
    /// `items`, `party_size` (`{"min", "max"}`), `amount` (`{"min", "max"}`),
    /// `channels` (`["hall", …]`).
    #[schema(value_type = Vec<Object>)]
    pub rules: serde_json::Value,
    /// Distinct labels in rule order, then `other`.
    pub labels: Vec<String>,
    /// Absent until the rules are first saved.
    pub updated_at: Option<DateTime<Utc>>,
}

/// `?as_of=&period=&margin=&limit=&after=` of the results.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JtbdParams {
    /// D, `YYYY-MM-DD` in the client's time zone; default: today there.
    pub as_of: Option<String>,
    /// `month` (default), `week` (ISO, Monday–Sunday) or `quarter`.
    pub period: Option<String>,
    /// Gross margin m in [0, 1] for the LTV; default 1 (LTV in revenue).
    pub margin: Option<f64>,
    /// RFM rows per page, 1 to 1000 (default 100), by customer_ref.
    pub limit: Option<u64>,
    /// The `next_customer` of the previous page.
    pub after: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CustomerRfmView {
    pub customer_ref: String,
    /// Days from the last purchase to D.
    pub recency_days: i64,
    pub frequency: u64,
    pub monetary: f64,
    pub r_score: u8,
    pub f_score: u8,
    pub m_score: u8,
    /// champions, loyal, potential_loyalist, new, promising, need_attention,
    /// about_to_sleep, at_risk, cant_lose, hibernating or lost.
    pub segment: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct SegmentCount {
    pub segment: String,
    pub customers: u64,
}

/// `states` = labels, then `none`; `counts[a][b]` = transitions a → b
/// between consecutive periods; `probabilities` = row-normalised counts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct MigrationView {
    pub states: Vec<String>,
    pub counts: Vec<Vec<u64>>,
    pub probabilities: Vec<Vec<f64>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct JtbdStatsView {
    pub label: String,
    /// Purchases with this label on or before D.
    pub purchases: u64,
    pub revenue: f64,
    /// Customer-periods whose dominant JTBD this is, D's period included.
    pub customer_periods: u64,
    /// Those before D's period: the base of the churn.
    pub customer_periods_before_current: u64,
    pub mean_period_revenue: Option<f64>,
    /// Share of those followed by a period without purchases.
    pub churn: Option<f64>,
    /// mean_period_revenue · m · min(36, 1/churn) (36 when churn is 0).
    pub ltv: Option<f64>,
    /// Median days between consecutive purchases whose later one has this
    /// label: the timing for trigger campaigns.
    pub median_interval_days: Option<f64>,
    pub intervals: u64,
}

/// Counts the purchase batches of a client: the data version of its JTBD
/// results.
pub const KIND_PURCHASES: &str = "client_purchases";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct JtbdResultsView {
    pub client_id: Uuid,
    /// The number of purchase batches stored for the client so far.
    pub data_version: i64,
    pub computed_at: DateTime<Utc>,
    pub as_of: NaiveDate,
    /// month, week or quarter.
    pub period: String,
    pub margin: f64,
    /// The time zone purchases were read in.
    pub timezone: String,
    /// First day of the period that contains D.
    pub current_period_start: Option<NaiveDate>,
    /// Purchases on or before D.
    pub purchases: u64,
    /// Customers with a purchase on or before D.
    pub customers_total: u64,
    /// Customers per RFM segment, over all customers.
    pub segments: Vec<SegmentCount>,
    /// One page of RFM rows, by customer_ref.
    pub customers: Vec<CustomerRfmView>,
    /// Pass as `after` for the next page of `customers`; absent on the last.
    pub next_customer: Option<String>,
    pub migration: MigrationView,
    /// One per label, in rule order, then `other`.
    pub jtbds: Vec<JtbdStatsView>,
}

// ---------------------------------------------------------------- parsing

fn check_purchase(input: PurchaseInput) -> Result<ParsedPurchase, Vec<FieldError>> {
    let mut errs = Vec::new();
    let text = |v: &str, max: usize| !v.trim().is_empty() && v.len() <= max;
    for (name, v) in [
        ("external_id", input.external_id.as_deref()),
        ("customer_ref", Some(input.customer_ref.as_str())),
        ("channel", input.channel.as_deref()),
    ] {
        if v.is_some_and(crate::domain::nul::has_nul) {
            errs.push(FieldError::new(name, crate::domain::nul::MESSAGE));
        }
    }
    if let Some(e) = &input.external_id
        && !text(e, MAX_EXTERNAL_ID)
    {
        errs.push(FieldError::new(
            "external_id",
            format!("must be 1 to {MAX_EXTERNAL_ID} bytes"),
        ));
    }
    if !text(&input.customer_ref, MAX_EXTERNAL_ID) {
        errs.push(FieldError::new(
            "customer_ref",
            format!("must be 1 to {MAX_EXTERNAL_ID} bytes"),
        ));
    }
    if !(input.amount.is_finite() && (0.0..=MAX_AMOUNT).contains(&input.amount)) {
        errs.push(FieldError::new(
            "amount",
            format!("must be from 0 to {MAX_AMOUNT}"),
        ));
    }
    if !(0..=MAX_ITEMS).contains(&input.items) {
        errs.push(FieldError::new(
            "items",
            format!("must be an integer from 0 to {MAX_ITEMS}"),
        ));
    }
    if !(1..=MAX_PARTY_SIZE).contains(&input.party_size) {
        errs.push(FieldError::new(
            "party_size",
            format!("must be an integer from 1 to {MAX_PARTY_SIZE}"),
        ));
    }
    if let Some(c) = &input.channel
        && !text(c, MAX_CHANNEL)
    {
        errs.push(FieldError::new(
            "channel",
            format!("must be 1 to {MAX_CHANNEL} bytes"),
        ));
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(ParsedPurchase {
        external_id: input.external_id,
        customer_ref: input.customer_ref,
        purchased_at: input.purchased_at,
        amount: input.amount + 0.0,
        // in range, checked above
        items: input.items as i32,
        party_size: input.party_size as i32,
        channel: input.channel,
    })
}

fn too_many_rows(row: usize) -> FieldError {
    FieldError::new("body", format!("at most {MAX_IMPORT_ROWS} rows per import")).at_row(row)
}

/// NDJSON: one purchase object per line; blank lines are skipped.
pub fn parse_ndjson(body: &[u8]) -> Result<Vec<ParsedPurchase>, ErrorSink> {
    let mut sink = ErrorSink::default();
    let mut out = Vec::new();
    let mut row = 0usize;
    for line in body.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        row += 1;
        if row > MAX_IMPORT_ROWS {
            sink.push(too_many_rows(row));
            break;
        }
        let mut de = serde_json::Deserializer::from_slice(line);
        let parsed: Result<PurchaseInput, _> = serde_path_to_error::deserialize(&mut de);
        match parsed {
            Ok(input) => match check_purchase(input) {
                Ok(p) => out.push(p),
                Err(errs) => sink.extend(row, errs),
            },
            Err(e) => sink.push(serde_error(e, "line").at_row(row)),
        }
    }
    if sink.total == 0 { Ok(out) } else { Err(sink) }
}

/// A serde error naming the field; a missing field is named itself, not
/// its parent.
fn serde_error(e: serde_path_to_error::Error<serde_json::Error>, whole: &str) -> FieldError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let malformed = inner.is_syntax() || inner.is_eof();
    let msg = inner.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
    if !malformed
        && let Some(name) = msg
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
    {
        let parent = json_error_field(&path, false, "");
        let field = if parent.is_empty() {
            name.to_owned()
        } else {
            format!("{parent}.{name}")
        };
        return FieldError::new(field, "is required");
    }
    FieldError::new(json_error_field(&path, malformed, whole), msg)
}

/// One purchase from a JSON document (the single-purchase endpoint).
pub fn purchase_from_json(v: serde_json::Value) -> AppResult<PurchaseInput> {
    serde_path_to_error::deserialize(v)
        .map_err(|e| AppError::Validation(vec![serde_error(e, "body")]))
}

const CSV_COLUMNS: [&str; 7] = [
    "external_id",
    "customer_ref",
    "purchased_at",
    "amount",
    "items",
    "party_size",
    "channel",
];
const CSV_REQUIRED: [&str; 5] = [
    "customer_ref",
    "purchased_at",
    "amount",
    "items",
    "party_size",
];

/// CSV with a header naming the columns of [`PurchaseInput`] in any order
/// (`external_id` and `channel` optional); an empty optional cell is absent.
pub fn parse_csv(body: &[u8]) -> Result<Vec<ParsedPurchase>, ErrorSink> {
    let mut sink = ErrorSink::default();
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(body);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            sink.push(FieldError::new("header", csv_message(&e)).at_row(0));
            return Err(sink);
        }
    };
    // position of each known column
    let mut at: [Option<usize>; 7] = [None; 7];
    for (i, name) in headers.iter().enumerate() {
        let name = name.trim();
        match CSV_COLUMNS.iter().position(|c| *c == name) {
            Some(k) if at[k].is_some() => {
                sink.push(FieldError::new(name, "column appears twice in the header").at_row(0));
            }
            Some(k) => at[k] = Some(i),
            None => sink.push(FieldError::new(name, "is not a purchase column").at_row(0)),
        }
    }
    for name in CSV_REQUIRED {
        let k = CSV_COLUMNS.iter().position(|c| *c == name).unwrap_or(0);
        if at[k].is_none() {
            sink.push(FieldError::new(name, "the header lacks this column").at_row(0));
        }
    }
    if sink.total > 0 {
        return Err(sink);
    }
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut row = 0usize;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                sink.push(FieldError::new("row", csv_message(&e)).at_row(row + 1));
                break;
            }
        }
        row += 1;
        if row > MAX_IMPORT_ROWS {
            sink.push(too_many_rows(row));
            break;
        }
        let cell = |k: usize| {
            at[k]
                .and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|c| !c.is_empty())
        };
        let mut errs = Vec::new();
        let required = |k: usize, errs: &mut Vec<FieldError>| {
            let c = cell(k);
            if c.is_none() {
                errs.push(FieldError::new(CSV_COLUMNS[k], "is required"));
            }
            c
        };
        let customer_ref = required(1, &mut errs).unwrap_or_default().to_owned();
        let purchased_at = required(2, &mut errs).and_then(|c| {
            DateTime::parse_from_rfc3339(c)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    errs.push(FieldError::new(
                        "purchased_at",
                        "expected an RFC 3339 time, e.g. 2026-11-02T10:00:00Z",
                    ))
                })
                .ok()
        });
        let amount = required(3, &mut errs).and_then(|c| {
            c.parse::<f64>()
                .map_err(|_| errs.push(FieldError::new("amount", "is not a number")))
                .ok()
        });
        let mut int = |k: usize| {
            required(k, &mut errs).and_then(|c| {
                c.parse::<i64>()
                    .map_err(|_| errs.push(FieldError::new(CSV_COLUMNS[k], "is not an integer")))
                    .ok()
            })
        };
        let items = int(4);
        let party_size = int(5);
        let (Some(purchased_at), Some(amount), Some(items), Some(party_size)) =
            (purchased_at, amount, items, party_size)
        else {
            sink.extend(row, errs);
            continue;
        };
        let input = PurchaseInput {
            external_id: cell(0).map(str::to_owned),
            customer_ref,
            purchased_at,
            amount,
            items,
            party_size,
            channel: cell(6).map(str::to_owned),
        };
        match check_purchase(input) {
            Ok(p) if errs.is_empty() => out.push(p),
            Ok(_) => sink.extend(row, errs),
            Err(e) => {
                // a blank required cell is already reported as such
                for f in e {
                    if !errs.iter().any(|x| x.field == f.field) {
                        errs.push(f);
                    }
                }
                sink.extend(row, errs);
            }
        }
    }
    if sink.total == 0 { Ok(out) } else { Err(sink) }
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("has {len} fields, the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_owned(),
        _ => format!("is not valid CSV: {e}"),
    }
}

const RULE_KEYS: [&str; 7] = [
    "label",
    "weekdays",
    "hours",
    "items",
    "party_size",
    "amount",
    "channels",
];

/// The field of a rule that [`LabelRules::parse`]'s reason speaks of.
fn rule_field(reason: &str) -> &'static str {
    if reason.starts_with("the label") || reason.contains("reserved") {
        "label"
    } else if reason.contains("weekday") {
        "weekdays"
    } else if reason.starts_with("hours") {
        "hours"
    } else if reason.starts_with("items") {
        "items"
    } else if reason.starts_with("party size") {
        "party_size"
    } else if reason.starts_with("amount") {
        "amount"
    } else if reason.contains("channel") {
        "channels"
    } else {
        ""
    }
}

/// Rules as JSON → validated rules, errors naming `rules[i].field`.
pub fn parse_rules(raw: Vec<serde_json::Value>) -> AppResult<LabelRules> {
    if raw.len() > MAX_RULES {
        return Err(AppError::field(
            "rules",
            format!("at most {MAX_RULES} rules"),
        ));
    }
    let mut rules = Vec::with_capacity(raw.len());
    let mut errs = Vec::new();
    for (i, v) in raw.into_iter().enumerate() {
        if let Some(obj) = v.as_object() {
            for k in obj.keys() {
                if !RULE_KEYS.contains(&k.as_str()) {
                    errs.push(FieldError::new(format!("rules[{i}].{k}"), "unknown field"));
                }
            }
        }
        match serde_path_to_error::deserialize::<_, LabelRule>(v) {
            Ok(rule) => {
                let label = rule.label.trim();
                if label.len() > MAX_LABEL {
                    errs.push(FieldError::new(
                        format!("rules[{i}].label"),
                        format!("at most {MAX_LABEL} bytes"),
                    ));
                }
                if let Some(cs) = &rule.channels
                    && cs.iter().any(|c| !(1..=MAX_CHANNEL).contains(&c.len()))
                {
                    errs.push(FieldError::new(
                        format!("rules[{i}].channels"),
                        format!("each channel is 1 to {MAX_CHANNEL} bytes"),
                    ));
                }
                rules.push(LabelRule {
                    label: label.to_owned(),
                    ..rule
                });
            }
            Err(e) => {
                let f = serde_error(e, "");
                let field = if f.field.is_empty() {
                    format!("rules[{i}]")
                } else {
                    format!("rules[{i}].{}", f.field)
                };
                errs.push(FieldError::new(field, f.message));
            }
        }
    }
    if !errs.is_empty() {
        return Err(AppError::Validation(errs));
    }
    LabelRules::parse(rules).map_err(|e| {
        let field = match rule_field(&e.reason) {
            "" => format!("rules[{}]", e.index),
            f => format!("rules[{}].{f}", e.index),
        };
        AppError::field(field, e.reason)
    })
}

fn parse_period(s: Option<&str>) -> AppResult<PeriodKind> {
    match s.unwrap_or("month") {
        "month" => Ok(PeriodKind::Month),
        "week" => Ok(PeriodKind::Week),
        "quarter" => Ok(PeriodKind::Quarter),
        _ => Err(AppError::field("period", "must be month, week or quarter")),
    }
}

fn period_name(p: PeriodKind) -> &'static str {
    match p {
        PeriodKind::Month => "month",
        PeriodKind::Week => "week",
        PeriodKind::Quarter => "quarter",
    }
}

fn segment_name(s: jtbd::RfmSegment) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn client_tz(c: &client::Model) -> Tz {
    // validated when the client is saved; UTC only for legacy rows
    c.timezone.parse::<Tz>().unwrap_or(Tz::UTC)
}

fn chunk_rows(backend: DbBackend) -> usize {
    // 11 bound values per row: PostgreSQL takes 65,535 per statement,
    // SQLite 32,766.
    match backend {
        DbBackend::Sqlite => 1_000,
        _ => 5_000,
    }
}

// ---------------------------------------------------------------- repository

async fn load_rules<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
) -> AppResult<Option<jtbd_rule_set::Model>> {
    Ok(jtbd_rule_set::Entity::find()
        .filter(jtbd_rule_set::Column::AgencyId.eq(agency_id))
        .filter(jtbd_rule_set::Column::ClientId.eq(client_id))
        .one(db)
        .await?)
}

fn compiled_rules(row: Option<&jtbd_rule_set::Model>) -> AppResult<LabelRules> {
    match row {
        None => Ok(LabelRules::parse(Vec::new())
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("empty rules: {e}")))?),
        Some(r) => {
            let rules: Vec<LabelRule> = serde_json::from_value(r.rules.clone())
                .map_err(|e| AppError::Unexpected(anyhow::anyhow!("stored jtbd rules: {e}")))?;
            LabelRules::parse(rules)
                .map_err(|e| AppError::Unexpected(anyhow::anyhow!("stored jtbd rules: {e}")))
        }
    }
}

fn rules_view(client_id: Uuid, row: Option<&jtbd_rule_set::Model>) -> AppResult<JtbdRulesView> {
    let rules = compiled_rules(row)?;
    Ok(JtbdRulesView {
        client_id,
        rules: serde_json::to_value(rules.rules()).map_err(|e| AppError::Unexpected(e.into()))?,
        labels: rules.labels().to_vec(),
        updated_at: row.map(|r| r.updated_at),
    })
}

impl Services {
    pub async fn submit_purchase(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: PurchaseInput,
    ) -> AppResult<PurchaseIngestResult> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Ingest)?;
        let parsed = check_purchase(input).map_err(AppError::Validation)?;
        self.store_purchases(ctx.agency_id, client_id, vec![parsed])
            .await
    }

    pub async fn import_purchases(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        format: ImportFormat,
        body: bytes::Bytes,
    ) -> AppResult<PurchaseIngestResult> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Ingest)?;
        // Parsing a million rows is CPU work: keep it off the async executor.
        let parsed = tokio::task::spawn_blocking(move || match format {
            ImportFormat::Ndjson => parse_ndjson(&body),
            ImportFormat::Csv => parse_csv(&body),
        })
        .await
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("purchase import parser: {e}")))?;
        let rows = parsed.map_err(|sink| AppError::Validation(sink.errors))?;
        if rows.is_empty() {
            return Err(AppError::field("body", "no rows to import"));
        }
        self.store_purchases(ctx.agency_id, client_id, rows).await
    }

    /// Stores validated rows in one transaction. Rows with an external id
    /// are inserted in external-id order, so two racing imports of
    /// overlapping batches take the unique index's locks in the same order
    /// and the later one waits and skips instead of deadlocking.
    async fn store_purchases(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
        rows: Vec<ParsedPurchase>,
    ) -> AppResult<PurchaseIngestResult> {
        let received = rows.len() as u64;
        let t = now();
        // Ids first, in input order: equal timestamps are ordered by id.
        let mut seen = HashSet::new();
        let mut models: Vec<purchase::ActiveModel> = rows
            .into_iter()
            .filter(|r| match &r.external_id {
                Some(e) => seen.insert(e.clone()),
                None => true,
            })
            .map(|r| purchase::ActiveModel {
                id: Set(new_id()),
                agency_id: Set(agency_id),
                client_id: Set(client_id),
                external_id: Set(r.external_id),
                customer_ref: Set(r.customer_ref),
                purchased_at: Set(r.purchased_at),
                amount: Set(r.amount),
                items: Set(r.items),
                party_size: Set(r.party_size),
                channel: Set(r.channel),
                created_at: Set(t),
            })
            .collect();
        drop(seen);
        models.sort_by(|a, b| a.external_id.as_ref().cmp(b.external_id.as_ref()));
        let txn = begin_write(&self.db).await?;
        let chunk = chunk_rows(txn.get_database_backend());
        let mut inserted = 0u64;
        let mut models = models.into_iter().peekable();
        while models.peek().is_some() {
            let batch: Vec<purchase::ActiveModel> = models.by_ref().take(chunk).collect();
            let res = purchase::Entity::insert_many(batch)
                .on_conflict(
                    OnConflict::columns([
                        purchase::Column::AgencyId,
                        purchase::Column::ClientId,
                        purchase::Column::ExternalId,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await;
            inserted += match res {
                Ok(n) => n,
                Err(DbErr::RecordNotInserted) => 0,
                Err(e) => return Err(e.into()),
            };
        }
        if inserted > 0 {
            crate::infra::ledger::bump_version(&txn, agency_id, KIND_PURCHASES, client_id).await?;
        }
        txn.commit().await?;
        tracing::info!(%agency_id, %client_id, received, inserted, "purchases stored");
        Ok(PurchaseIngestResult {
            received,
            inserted,
            duplicates: received - inserted,
        })
    }

    pub async fn list_purchases(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        page: PageParams,
    ) -> AppResult<Page<PurchaseView>> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let req = page.parse()?;
        let q = purchase::Entity::find()
            .filter(purchase::Column::AgencyId.eq(ctx.agency_id))
            .filter(purchase::Column::ClientId.eq(client_id));
        req.fetch(q, purchase::Column::Id, &self.db, PurchaseView::from)
            .await
    }

    /// One customer's purchases, oldest stored first, each labelled by the
    /// client's current rules in the client's time zone.
    pub async fn customer_purchases(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        customer_ref: &str,
        page: PageParams,
    ) -> AppResult<Page<CustomerPurchaseView>> {
        let c = find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let req = page.parse()?;
        let rules = compiled_rules(
            load_rules(&self.db, ctx.agency_id, client_id)
                .await?
                .as_ref(),
        )?;
        let tz = client_tz(&c);
        let q = purchase::Entity::find()
            .filter(purchase::Column::AgencyId.eq(ctx.agency_id))
            .filter(purchase::Column::ClientId.eq(client_id))
            .filter(purchase::Column::CustomerRef.eq(customer_ref));
        req.fetch(q, purchase::Column::Id, &self.db, |m: purchase::Model| {
            let local_time = m.purchased_at.with_timezone(&tz).naive_local();
            let p = Purchase {
                customer_ref: String::new(),
                at: local_time,
                amount: m.amount,
                items: u32::try_from(m.items).unwrap_or(0),
                party_size: u32::try_from(m.party_size).unwrap_or(0),
                channel: m.channel.clone().unwrap_or_default(),
            };
            CustomerPurchaseView {
                id: m.id,
                external_id: m.external_id,
                purchased_at: m.purchased_at,
                local_time,
                amount: m.amount,
                items: m.items,
                party_size: m.party_size,
                label: rules.label_of(&p).to_owned(),
                channel: m.channel,
            }
        })
        .await
    }

    pub async fn get_jtbd_rules(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
    ) -> AppResult<JtbdRulesView> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let row = load_rules(&self.db, ctx.agency_id, client_id).await?;
        rules_view(client_id, row.as_ref())
    }

    /// Replaces the client's rules as a whole (analysts and up).
    pub async fn put_jtbd_rules(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: JtbdRulesInput,
    ) -> AppResult<JtbdRulesView> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::WriteResearch)?;
        let rules = parse_rules(input.rules)?;
        let json =
            serde_json::to_value(rules.rules()).map_err(|e| AppError::Unexpected(e.into()))?;
        let t = now();
        let row = jtbd_rule_set::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(ctx.agency_id),
            client_id: Set(client_id),
            rules: Set(json),
            created_at: Set(t),
            updated_at: Set(t),
        };
        let txn = begin_write(&self.db).await?;
        jtbd_rule_set::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    jtbd_rule_set::Column::AgencyId,
                    jtbd_rule_set::Column::ClientId,
                ])
                .update_columns([
                    jtbd_rule_set::Column::Rules,
                    jtbd_rule_set::Column::UpdatedAt,
                ])
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        let saved = load_rules(&txn, ctx.agency_id, client_id).await?;
        txn.commit().await?;
        rules_view(client_id, saved.as_ref())
    }

    /// A client's purchases before `cut`, oldest first, at local times of
    /// `tz`. PostgreSQL: one binary COPY, rows built as they arrive (a
    /// million purchases in about a second, see docs/performance.md).
    pub async fn purchases_before(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
        cut: Option<DateTime<Utc>>,
        tz: Tz,
    ) -> AppResult<Vec<Purchase>> {
        if self.db.get_database_backend() == DbBackend::Postgres {
            let before = cut
                .map(|c| format!(" AND purchased_at < '{}'", c.to_rfc3339()))
                .unwrap_or_default();
            // Unordered: PostgreSQL's sort of a million rows costs more than
            // sorting their keys here (the order is (purchased_at, id) as
            // the SQLite path's ORDER BY; uuids compare as big-endian bytes).
            let sql = format!(
                "COPY (SELECT purchased_at, id, customer_ref, amount, items, party_size, channel \
                 FROM purchases WHERE agency_id = '{agency_id}' AND client_id = '{client_id}'{before}) \
                 TO STDOUT (FORMAT binary)"
            );
            use crate::infra::pgcopy::{float8, int4, text, timestamptz_us};
            type Keyed = (Vec<(i64, u128)>, Vec<Purchase>);
            let (keys, rows): Keyed = crate::infra::pgcopy::copy_out(
                self.db.get_postgres_connection_pool(),
                sql,
                7,
                (Vec::new(), Vec::new()),
                move |(keys, out): &mut Keyed, f| {
                    let us = timestamptz_us(f[0])?;
                    let id: [u8; 16] = f[1]
                        .and_then(|b| b.try_into().ok())
                        .ok_or("id: expected a uuid")?;
                    let at =
                        DateTime::from_timestamp_micros(us).ok_or("purchased_at out of range")?;
                    keys.push((us, u128::from_be_bytes(id)));
                    out.push(Purchase {
                        customer_ref: text(f[2])?.unwrap_or_default().to_owned(),
                        at: at.with_timezone(&tz).naive_local(),
                        amount: float8(f[3])?,
                        items: u32::try_from(int4(f[4])?).unwrap_or(0),
                        party_size: u32::try_from(int4(f[5])?).unwrap_or(0),
                        channel: text(f[6])?.unwrap_or_default().to_owned(),
                    });
                    Ok(())
                },
            )
            .await?;
            return tokio::task::spawn_blocking(move || {
                let mut order: Vec<u32> = (0..keys.len() as u32).collect();
                order.sort_unstable_by_key(|&i| keys[i as usize]);
                let mut rows: Vec<Option<Purchase>> = rows.into_iter().map(Some).collect();
                order
                    .into_iter()
                    .filter_map(|i| rows[i as usize].take())
                    .collect()
            })
            .await
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("purchases: {e}")));
        }
        let mut q = purchase::Entity::find()
            .select_only()
            .columns([
                purchase::Column::CustomerRef,
                purchase::Column::PurchasedAt,
                purchase::Column::Amount,
                purchase::Column::Items,
                purchase::Column::PartySize,
                purchase::Column::Channel,
            ])
            .filter(purchase::Column::AgencyId.eq(agency_id))
            .filter(purchase::Column::ClientId.eq(client_id));
        if let Some(cut) = cut {
            q = q.filter(purchase::Column::PurchasedAt.lt(cut));
        }
        type Row = (String, DateTime<Utc>, f64, i32, i32, Option<String>);
        let rows: Vec<Row> = q
            .order_by_asc(purchase::Column::PurchasedAt)
            .order_by_asc(purchase::Column::Id)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(customer_ref, at, amount, items, party_size, channel)| Purchase {
                    customer_ref,
                    at: at.with_timezone(&tz).naive_local(),
                    amount,
                    items: u32::try_from(items).unwrap_or(0),
                    party_size: u32::try_from(party_size).unwrap_or(0),
                    channel: channel.unwrap_or_default(),
                },
            )
            .collect())
    }

    /// The whole map as of D, computed from the stored purchases — or taken
    /// from this process's cache when nothing it depends on changed since
    /// ([`crate::commerce::jtbd_cache`]), e.g. for the next page of customers.
    pub async fn jtbd_results(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        params: JtbdParams,
    ) -> AppResult<JtbdResultsView> {
        let c = find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let tz = client_tz(&c);
        let mut errs = Vec::new();
        let as_of = match &params.as_of {
            None => Some(now().with_timezone(&tz).date_naive()),
            Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| errs.push(FieldError::new("as_of", "expected YYYY-MM-DD")))
                .ok(),
        };
        let period = parse_period(params.period.as_deref())
            .map_err(|_| errs.push(FieldError::new("period", "must be month, week or quarter")))
            .ok();
        let margin = params.margin.unwrap_or(1.0);
        if !(margin.is_finite() && (0.0..=1.0).contains(&margin)) {
            errs.push(FieldError::new("margin", "must be from 0 to 1"));
        }
        let limit = params.limit.unwrap_or(DEFAULT_CUSTOMERS);
        if !(1..=MAX_CUSTOMERS).contains(&limit) {
            errs.push(FieldError::new(
                "limit",
                format!("must be from 1 to {MAX_CUSTOMERS}"),
            ));
        }
        let (Some(as_of), Some(period)) = (as_of, period) else {
            return Err(AppError::Validation(errs));
        };
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let rule_set = load_rules(&self.db, ctx.agency_id, client_id).await?;
        // Every local date ≤ D is before D + 2 days at 00:00 UTC whatever
        // the offset; the exact cut is made on local dates by `compute`.
        let cut = as_of
            .checked_add_days(chrono::Days::new(2))
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc());
        // Read before the rows: the figures reflect at least this version.
        let data_version = crate::infra::ledger::wanted_version(
            &self.db,
            ctx.agency_id,
            KIND_PURCHASES,
            client_id,
        )
        .await?;
        let key = crate::commerce::jtbd_cache::ReportKey {
            agency_id: ctx.agency_id,
            client_id,
            data_version,
            rules: rule_set
                .as_ref()
                .map(|r| r.rules.to_string())
                .unwrap_or_default(),
            timezone: tz.name().to_owned(),
            as_of,
            period,
            margin,
        };
        let computed = self
            .jtbd_reports
            .get_or_compute(key, || async {
                let rules = compiled_rules(rule_set.as_ref())?;
                let purchases = self
                    .purchases_before(ctx.agency_id, client_id, cut, tz)
                    .await?;
                let config = JtbdConfig {
                    as_of,
                    period,
                    margin,
                };
                tokio::task::spawn_blocking(move || jtbd::compute(&purchases, &rules, &config))
                    .await
                    .map_err(|e| AppError::Unexpected(anyhow::anyhow!("jtbd compute: {e}")))?
                    .map_err(|e| AppError::Unexpected(anyhow::anyhow!("jtbd compute: {e}")))
            })
            .await?;
        let (report, computed_at) = (&computed.0, computed.1);

        let mut segments: BTreeMap<String, u64> = BTreeMap::new();
        for c in &report.customers {
            *segments.entry(segment_name(c.segment)).or_default() += 1;
        }
        let customers_total = report.customers.len() as u64;
        // `customers` is ascending by customer_ref: the cursor is the last ref.
        let start = match &params.after {
            None => 0,
            Some(after) => report
                .customers
                .partition_point(|c| c.customer_ref.as_str() <= after.as_str()),
        };
        let page: Vec<CustomerRfmView> = report
            .customers
            .iter()
            .skip(start)
            .take(limit as usize)
            .map(|c| CustomerRfmView {
                customer_ref: c.customer_ref.clone(),
                recency_days: c.recency_days,
                frequency: c.frequency,
                monetary: c.monetary,
                r_score: c.r_score,
                f_score: c.f_score,
                m_score: c.m_score,
                segment: segment_name(c.segment),
            })
            .collect();
        let next_customer = if start + page.len() < report.customers.len() {
            page.last().map(|c| c.customer_ref.clone())
        } else {
            None
        };
        Ok(JtbdResultsView {
            client_id,
            data_version,
            computed_at,
            as_of: report.as_of,
            period: period_name(report.period).to_owned(),
            margin,
            timezone: tz.name().to_owned(),
            current_period_start: report.current_period_start,
            purchases: report.purchases,
            customers_total,
            segments: segments
                .into_iter()
                .map(|(segment, customers)| SegmentCount { segment, customers })
                .collect(),
            customers: page,
            next_customer,
            migration: MigrationView {
                states: report.migration.states.clone(),
                counts: report.migration.counts.clone(),
                probabilities: report.migration.probabilities.clone(),
            },
            jtbds: report
                .jtbds
                .iter()
                .map(|s| JtbdStatsView {
                    label: s.label.clone(),
                    purchases: s.purchases,
                    revenue: s.revenue,
                    customer_periods: s.customer_periods,
                    customer_periods_before_current: s.customer_periods_before_current,
                    mean_period_revenue: s.mean_period_revenue,
                    churn: s.churn,
                    ltv: s.ltv,
                    median_interval_days: s.median_interval_days,
                    intervals: s.intervals,
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_rows_become_purchases() {
        let body = b"customer_ref,purchased_at,amount,items,party_size,channel,external_id\n\
                     c1,2026-01-05T09:30:00Z,20.5,2,1,hall,e1\n\
                     c2,2026-01-05T10:00:00+03:00,0,0,3,,\n";
        let rows = parse_csv(body).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].external_id.as_deref(), Some("e1"));
        assert_eq!(rows[0].channel.as_deref(), Some("hall"));
        assert_eq!(rows[1].channel, None);
        assert_eq!(
            rows[1].purchased_at.to_rfc3339(),
            "2026-01-05T07:00:00+00:00"
        );
    }

    #[test]
    fn malformed_csv_names_the_row_and_field() {
        let err = parse_csv(b"customer_ref,purchased_at,amount,items\nc,x,1,1\n").unwrap_err();
        assert_eq!(err.errors[0].field, "party_size");
        let err = parse_csv(
            b"customer_ref,purchased_at,amount,items,party_size\nc,2026-01-01T00:00:00Z,1,1,1\nc,1\n",
        )
        .unwrap_err();
        assert_eq!(
            (err.errors[0].field.as_str(), err.errors[0].row),
            ("row", Some(2))
        );
        let err = parse_csv(
            b"customer_ref,purchased_at,amount,items,party_size\nc,2026-01-01T00:00:00Z,-1,1,0\nc,2026-01-01T00:00:00Z,1,1.5,1\n",
        )
        .unwrap_err();
        let fields: Vec<_> = err
            .errors
            .iter()
            .map(|e| (e.row, e.field.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                (Some(1), "amount"),
                (Some(1), "party_size"),
                (Some(2), "items")
            ]
        );
    }

    #[test]
    fn rule_errors_name_the_index_and_field() {
        let fields = |v: serde_json::Value| match parse_rules(serde_json::from_value(v).unwrap()) {
            Err(AppError::Validation(e)) => e.into_iter().map(|f| f.field).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            fields(json!([{"label": "a"}, {"label": "b", "hours": {"from": 25, "to": 3}}])),
            ["rules[1].hours"]
        );
        assert_eq!(fields(json!([{"label": " "}])), ["rules[0].label"]);
        assert_eq!(
            fields(json!([{"label": "a", "party_size": {"min": 3, "max": 2}}])),
            ["rules[0].party_size"]
        );
        assert_eq!(
            fields(json!([{"label": "a", "weekdays": ["Funday"]}])),
            ["rules[0].weekdays[0]"]
        );
        assert_eq!(
            fields(json!([{"label": "a", "weekday": []}])),
            ["rules[0].weekday"]
        );
    }
}

//! Schemas for the OpenAPI document where a field's Rust type says less
//! than the server checks: a string that must be one of a few words, a
//! date within the years the server takes. Used with utoipa's
//! `schema_with`, so the document states exactly what is enforced.
use utoipa::openapi::schema::{Array, ArrayBuilder, ObjectBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{KnownFormat, Object};

/// A hyphenated UUID, unanchored (ids as this API writes them).
pub const UUID: &str =
    "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";

/// A string that is one of `values`.
pub fn one_of(values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// `YYYY-MM-DD`, a real date from 2000-01-01 to 2100-12-31.
pub fn date_2000_2100() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .pattern(Some(DATE_2000_2100))
        .build()
}

/// `YYYY-MM-DD`, any real date (four-digit year).
pub fn date() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .pattern(Some(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))
        .build()
}

pub const DATE_2000_2100: &str = r"^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";

pub fn contact_tier() -> Object {
    one_of(&["hot", "warm", "cold"])
}

pub fn contact_status() -> Object {
    one_of(&["active", "unsubscribed", "bounced"])
}

pub fn funnel_type() -> Object {
    one_of(&["reach", "warming", "reverse"])
}

pub fn jtbd_period() -> Object {
    one_of(&["month", "week", "quarter"])
}

pub fn job_status() -> Object {
    one_of(&["succeeded", "retrying", "failed"])
}

pub fn delivery_status() -> Object {
    one_of(&["queued", "sent", "deferred", "failed"])
}

pub fn preview_part() -> Object {
    one_of(&["html", "text"])
}

/// Rust's `char::is_whitespace` (what `trim` removes) as a class body, and
/// no NUL: the class of a character that makes a text non-blank.
const VISIBLE: &str =
    r"[^\u0000\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// A required text (`domain::text::fits`): 1 to `max` characters as sent,
/// at least one of them not white space, no NUL.
fn text(max: usize, nullable: bool) -> Object {
    let ty = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::new(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(ty)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(format!(r"^[^\u0000]*{VISIBLE}[^\u0000]*$")))
        .build()
}

pub fn text_200() -> Object {
    text(200, false)
}

pub fn text_200_or_null() -> Object {
    text(200, true)
}

pub fn text_300() -> Object {
    text(300, false)
}

pub fn text_5000() -> Object {
    text(5_000, false)
}

pub fn touchpoint_channel() -> Object {
    one_of(&["online", "offline"])
}

/// White space (`char::is_whitespace`) and control characters (`Cc`): none
/// may appear in an e-mail address.
const NOT_IN_EMAIL: &str =
    r"\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// An e-mail address as `domain::answers::valid_email` takes it: one `@`,
/// a non-empty local part, a domain with a dot neither first nor last, no
/// white space or control characters, at most 254 characters.
pub fn email() -> Object {
    let any = format!("[^@{NOT_IN_EMAIL}]");
    let no_dot = format!("[^@.{NOT_IN_EMAIL}]");
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(254))
        .pattern(Some(format!(r"^{any}+@{no_dot}{any}*\.{any}*{no_dot}$")))
        .build()
}

/// `["string", "null"]` with the given enum, `null` included.
fn one_of_or_null(values: impl IntoIterator<Item = String>) -> Object {
    let mut all: Vec<serde_json::Value> = values.into_iter().map(Into::into).collect();
    all.push(serde_json::Value::Null);
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(all))
        .build()
}

/// `ru` or `en` (`domain::locale::Locale`), or null.
pub fn locale_or_null() -> Object {
    one_of_or_null(["ru".to_owned(), "en".to_owned()])
}

/// An IANA time zone name as chrono-tz knows it, or null.
pub fn timezone_or_null() -> Object {
    one_of_or_null(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name().to_owned()))
}

/// Three upper-case letters (an ISO 4217 code), or null.
pub fn currency_or_null() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some("^[A-Z]{3}$"))
        .build()
}

pub fn hypothesis_direction() -> Object {
    one_of(&["greater", "less", "different"])
}

/// One or more of `read`, `write`, `ingest`.
pub fn api_key_scopes() -> Array {
    ArrayBuilder::new()
        .items(one_of(&["read", "write", "ingest"]))
        .min_items(Some(1))
        .build()
}

/// `ru`, `en`, `""` (back to the default) or null.
pub fn locale_or_empty_or_null() -> Object {
    one_of_or_null(["ru".to_owned(), "en".to_owned(), String::new()])
}

/// `true` only: a consent box that must be ticked.
pub fn must_be_true() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Boolean)
        .enum_values(Some([true]))
        .build()
}

/// Rust's `char::is_whitespace` as a class body (no brackets).
const WHITE: &str =
    r"\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Origins a list takes (`mail::lists::check_list`): at most 20, each
/// `http://` or `https://`, no white space, not ending in `/`, at most 200
/// characters.
pub fn origins() -> Array {
    let origin = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(200))
        .pattern(Some(format!(
            r"^https?://[^\u0000{WHITE}]*[^\u0000/{WHITE}]$"
        )))
        .build();
    ArrayBuilder::new()
        .items(origin)
        .max_items(Some(20))
        .build()
}

/// A wall-clock date and time without an offset (`NaiveDateTime`), as
/// chrono writes it: `2026-11-30T12:00:00`, fractions when there are any.
pub fn local_date_time() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(
            r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?$",
        ))
        .examples(["2026-11-30T12:00:00"])
        .build()
}

/// Attributes of a person, for segments (`domain::attributes::Attributes`):
/// at most 50 keys like `city`; each value a string of at most 500
/// characters, a number, or an array of at most 50 such strings.
pub fn attributes_or_null() -> Object {
    let text = serde_json::json!({ "type": "string", "maxLength": 500 });
    let schema = serde_json::json!({
        "type": ["object", "null"],
        "maxProperties": 50,
        "propertyNames": { "pattern": "^[a-z][a-z0-9_]{0,63}$" },
        "additionalProperties": {
            "oneOf": [
                text,
                { "type": "number" },
                { "type": "array", "maxItems": 50, "items": text }
            ]
        },
        "example": { "city": "msk", "age": 34, "interests": ["flats", "mortgage"] }
    });
    serde_json::from_value(schema).unwrap_or_default()
}

/// A text of at most `max` characters (empty allowed), or null.
fn short_text_or_null(max: usize) -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(max))
        .build()
}

pub fn text_200_any_or_null() -> Object {
    short_text_or_null(200)
}

pub fn text_2000_any_or_null() -> Object {
    short_text_or_null(2_000)
}

/// 1 to 10 e-mail addresses.
pub fn emails_1_to_10() -> Array {
    ArrayBuilder::new()
        .items(email())
        .min_items(Some(1))
        .max_items(Some(10))
        .build()
}

/// At most 50 e-mail addresses, or null.
pub fn recipients_or_null() -> Array {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(email())
        .max_items(Some(50))
        .build()
}

pub fn text_64() -> Object {
    text(64, false)
}

pub fn text_64_or_null() -> Object {
    text(64, true)
}

pub fn text_300_or_null() -> Object {
    text(300, true)
}

pub fn text_500() -> Object {
    text(500, false)
}

pub fn text_100() -> Object {
    text(100, false)
}

//! What the handlers' annotations cannot say, stated on the generated
//! document so that it is the exact contract the server enforces (issue 13):
//! a `filter` parameter's JSON shape, closed request objects, no NUL in any
//! string, the text patterns of formats, and a segment condition's
//! either-values-or-range rule. Each rule names the server code it mirrors.
use serde_json::{Value, json};

/// Applies every rule below to the document (as JSON).
pub fn tighten(doc: &mut Value) {
    filters_as_json(doc);
    condition_values_or_range(doc);
    on_request_side(doc, close_objects);
    on_request_side(doc, refuse_nul);
}

/// `domain::segment_filter::Condition::validate`: a condition gives either
/// `values` (and no bound) or at least one of `min`/`max` (and no values).
/// (`min` ≤ `max` is also checked; JSON Schema cannot compare two fields.)
fn condition_values_or_range(doc: &mut Value) {
    let Some(c) = doc.pointer_mut("/components/schemas/Condition") else {
        return;
    };
    if let Some(m) = c.as_object_mut() {
        // The examples (`examples.rs`) take this rather than a value of
        // every property, which no branch admits.
        m.insert(
            "example".into(),
            json!({ "question": "city", "values": ["msk", "spb"] }),
        );
        m.insert(
            "oneOf".into(),
            json!([
                {
                    "required": ["values"],
                    "properties": {
                        "values": { "type": "array" },
                        "min": { "type": "null" },
                        "max": { "type": "null" }
                    }
                },
                {
                    "properties": { "values": { "type": "null" } },
                    "anyOf": [
                        { "required": ["min"], "properties": { "min": { "type": "number" } } },
                        { "required": ["max"], "properties": { "max": { "type": "number" } } }
                    ]
                }
            ]),
        );
    }
    if let Some(v) = c.pointer_mut("/properties/values") {
        // "needs non-empty values"
        *v = json!({
            "type": ["array", "null"],
            "minItems": 1,
            "items": { "type": "string", "minLength": 1 }
        });
    }
}

/// A `filter` query parameter is a segment filter written as JSON
/// (`extract::filter_param`): said with the parameter's `content`, as
/// OpenAPI does for a structured value in one parameter, so that clients
/// and generators know its shape rather than "a string".
fn filters_as_json(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for op in paths.values_mut().filter_map(|p| p.as_object_mut()) {
        for params in op
            .values_mut()
            .filter_map(|o| o.get_mut("parameters"))
            .filter_map(|p| p.as_array_mut())
        {
            for p in params.iter_mut().filter_map(|p| p.as_object_mut()) {
                if p.get("name").is_some_and(|n| n == "filter")
                    && p.get("in").is_some_and(|i| i == "query")
                    && p.remove("schema").is_some()
                {
                    p.insert(
                        "content".into(),
                        json!({ "application/json": {
                            "schema": { "$ref": "#/components/schemas/SegmentFilter" }
                        } }),
                    );
                }
            }
        }
    }
}

/// The request side of the document: request bodies and parameters of
/// every operation, and the components they name, transitively. `rule` is
/// applied to each; responses are left as written (an error may echo what
/// was refused).
fn on_request_side(doc: &mut Value, rule: fn(&mut Value)) {
    use std::collections::BTreeSet;

    fn refs(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref")
                    && let Some(name) = r.strip_prefix("#/components/schemas/")
                {
                    out.insert(name.to_owned());
                }
                m.values().for_each(|c| refs(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
            _ => {}
        }
    }

    let mut seen = BTreeSet::new();
    if let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) {
        for op in paths.values_mut().filter_map(|p| p.as_object_mut()) {
            for o in op.values_mut().filter_map(|o| o.as_object_mut()) {
                for key in ["requestBody", "parameters"] {
                    if let Some(part) = o.get_mut(key) {
                        refs(part, &mut seen);
                        rule(part);
                    }
                }
            }
        }
    }
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(|s| s.as_object_mut())
    else {
        return;
    };
    let mut todo: Vec<String> = seen.iter().cloned().collect();
    while let Some(name) = todo.pop() {
        if let Some(schema) = schemas.get(&name) {
            let mut more = BTreeSet::new();
            refs(schema, &mut more);
            for m in more {
                if seen.insert(m.clone()) {
                    todo.push(m);
                }
            }
        }
    }
    for name in &seen {
        if let Some(schema) = schemas.get_mut(name) {
            rule(schema);
        }
    }
}

/// Every object a request carries is closed: the server reads bodies with
/// `deny_unknown_fields` throughout (`domain::strict`), so an unknown field
/// is a 422. Said as `additionalProperties: false` on each object schema of
/// the request side, except inside `allOf`, where closing one part would
/// refuse the fields of the others.
fn close_objects(v: &mut Value) {
    match v {
        Value::Object(m) => {
            // An object's own schema; not a branch of a `oneOf` that only
            // constrains some properties of the object around it.
            let object = m.get("type").is_some_and(|t| t == "object");
            if object && m.contains_key("properties") && !m.contains_key("additionalProperties") {
                m.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (key, child) in m.iter_mut() {
                if key != "allOf" && key != "example" && key != "examples" {
                    close_objects(child);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(close_objects),
        _ => {}
    }
}

/// No string the server reads may hold U+0000 (`service::domain::nul`
/// refuses it in every body, parameter, header and import, keys of free-form
/// objects included); PostgreSQL could not store it.
const NO_NUL: &str = r"^[^\u0000]*$";
const UUID: &str = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
/// RFC 3339, as chrono reads a `DateTime`.
const DATE_TIME: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$";
const DATE: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$";

/// States [`NO_NUL`] on every string schema the document gives no tighter
/// rule (a pattern, an enum, a format) and on the keys of every free-form
/// object.
fn refuse_nul(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let has_type = |m: &serde_json::Map<String, Value>, name: &str| match m.get("type") {
                Some(Value::String(t)) => t == name,
                Some(Value::Array(ts)) => ts.iter().any(|t| t == name),
                _ => false,
            };
            let tight = ["pattern", "enum", "const"]
                .iter()
                .any(|k| m.contains_key(*k));
            if has_type(m, "string") && !tight {
                // A format is an annotation to most validators (and to
                // Schemathesis, which sends "" for a uuid); the pattern
                // says the same as text.
                let pattern = match m.get("format").and_then(Value::as_str) {
                    Some("uuid") => Some(UUID),
                    Some("date-time") => Some(DATE_TIME),
                    Some("date") => Some(DATE),
                    Some(_) => None,
                    None => Some(NO_NUL),
                };
                if let Some(p) = pattern {
                    m.insert("pattern".into(), p.into());
                }
            }
            // Objects with named properties are closed by now; what is
            // left open takes any key.
            let free_form = m.get("additionalProperties") != Some(&Value::Bool(false));
            if has_type(m, "object") && free_form && !m.contains_key("propertyNames") {
                m.insert("propertyNames".into(), json!({ "pattern": NO_NUL }));
            }
            for (key, child) in m.iter_mut() {
                // Examples are values, not schemas.
                if key != "example" && key != "examples" {
                    refuse_nul(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(refuse_nul),
        _ => {}
    }
}

//! U+0000 in input. PostgreSQL's `text` and `jsonb` cannot hold it (SQLite
//! can), so a NUL character that reached a write would fail there as a
//! database error. Input is checked at the edge instead: JSON bodies as a
//! whole, CSV and NDJSON imports field by field.
use serde_json::Value;

/// The message for a field that holds U+0000.
pub const MESSAGE: &str = "must not contain the NUL character (U+0000)";

pub fn has_nul(s: &str) -> bool {
    s.contains('\0')
}

/// The path (`a.b[2].c`, `body` for the top level) of the first string, key
/// or value, of the JSON `body` that holds U+0000; None when there is none,
/// or when `body` is not JSON (its own parser reports that).
pub fn json_nul_path(body: &[u8]) -> Option<String> {
    if !has_escaped_nul(body) {
        return None;
    }
    let value: Value = serde_json::from_slice(body).ok()?;
    find(&value, "")
}

/// JSON carries U+0000 only as the escape `\u0000` (a raw control character
/// is invalid in a string): look for one whose backslash is not itself
/// escaped. Cheap enough to run on every body.
fn has_escaped_nul(body: &[u8]) -> bool {
    body.windows(6).enumerate().any(|(i, w)| {
        w == b"\\u0000" && body[..i].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 0
    })
}

fn find(v: &Value, path: &str) -> Option<String> {
    let at = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match v {
        Value::String(s) if has_nul(s) => Some(if path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| find(x, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, x)| {
            if has_nul(k) {
                Some(at(&k.replace('\0', "\\u0000")))
            } else {
                find(x, &at(k))
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_string_holding_nul() {
        let cases: [(&str, Option<&str>); 7] = [
            (r#"{"name": "Acme"}"#, None),
            (r#"{"name": "a\u0000b"}"#, Some("name")),
            (r#"{"a": {"b": [1, "x", "\u0000"]}}"#, Some("a.b[2]")),
            (r#"{"q": [{"label\u0000": 1}]}"#, Some("q[0].label\\u0000")),
            // An escaped backslash followed by the text u0000 is no NUL.
            (r#"{"path": "C:\\u0000"}"#, None),
            (r#"{"path": "C:\\\u0000"}"#, Some("path")),
            (r#""\u0000""#, Some("body")),
        ];
        for (body, want) in cases {
            assert_eq!(json_nul_path(body.as_bytes()).as_deref(), want, "{body}");
        }
    }

    #[test]
    fn malformed_json_is_left_to_its_parser() {
        assert_eq!(json_nul_path(br#"{"name": "\u0000"#), None);
    }
}

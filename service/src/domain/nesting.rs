//! How deeply a document nests, found by one flat scan before any
//! recursive parser sees it. Parsers of nested input (serde_json, the
//! GraphQL grammar) recurse once per level; a 4 KB GraphQL document of
//! 2,000 nested lists overflowed a server thread's stack and aborted the
//! process. Every such input is measured here first and refused when it
//! nests deeper than any real request does.

/// The deepest nesting any accepted document may have. Real requests stay
/// far below: GraphQL selections are limited to 10 levels, segment filters
/// and JTBD rules to 3 or 4, answers to 2.
pub const MAX_NESTING: usize = 64;

/// The message for a document that nests too deeply.
pub fn message(max: usize) -> String {
    format!("nests deeper than {max} levels")
}

/// True when the JSON text `body` opens more than `max` arrays or objects
/// inside each other (brackets inside strings do not count). Invalid JSON
/// is measured as far as it goes; its own parser reports what is wrong.
pub fn json_exceeds(body: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// True when the GraphQL document `query` opens more than `max` selection
/// sets, argument lists, list or object values inside each other. Strings
/// (`"…"` with escapes, block strings `"""…"""`) and `#` comments are
/// skipped, as the GraphQL grammar reads them.
pub fn graphql_exceeds(query: &str, max: usize) -> bool {
    let b = query.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if b[i..].starts_with(b"\"\"\"") => {
                i += 3;
                // A block string ends at the first `"""` not escaped as `\"""`.
                while i < b.len() && !b[i..].starts_with(b"\"\"\"") {
                    i += if b[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, close: &str, n: usize) -> String {
        format!("{}{}", open.repeat(n), close.repeat(n))
    }

    #[test]
    fn json_depth_counts_brackets_outside_strings() {
        assert!(!json_exceeds(br#"{"a": [1, {"b": 2}]}"#, 3));
        assert!(json_exceeds(br#"{"a": [1, {"b": [2]}]}"#, 3));
        assert!(!json_exceeds(br#"{"a": "[[[[[[[[", "b": "\"[[[["}"#, 1));
        assert!(!json_exceeds(nested("[", "]", 64).as_bytes(), MAX_NESTING));
        assert!(json_exceeds(nested("[", "]", 65).as_bytes(), MAX_NESTING));
        assert!(json_exceeds(
            nested("{\"a\":", "}", 100_000).as_bytes(),
            MAX_NESTING
        ));
        // Unbalanced or truncated input is measured as far as it goes.
        assert!(!json_exceeds(b"]]]]}}}}[", 1));
        assert!(!json_exceeds(b"\"\\", 1));
    }

    #[test]
    fn graphql_depth_skips_strings_and_comments() {
        let q = "{ clients(after: \"[[[[\") { items { id } } }";
        assert!(!graphql_exceeds(q, 3));
        assert!(graphql_exceeds(q, 2));
        let bomb = format!(
            "{{ clients(after: {}) {{ items {{ id }} }} }}",
            nested("[", "]", 2_000)
        );
        assert!(graphql_exceeds(&bomb, MAX_NESTING));
        let objects = format!("{{ a(f: {}) }}", nested("{x: ", "}", 100_000));
        assert!(graphql_exceeds(&objects, MAX_NESTING));
        let commented = format!("# {}\n{{ a }}", "[".repeat(500));
        assert!(!graphql_exceeds(&commented, MAX_NESTING));
        let block = format!("{{ a(s: \"\"\" {} \\\"\"\" [[[ \"\"\") }}", "{".repeat(500));
        assert!(!graphql_exceeds(&block, 3));
        let escaped = format!("{{ a(s: \"\\\" {} \") }}", "(".repeat(500));
        assert!(!graphql_exceeds(&escaped, 3));
        // Truncated strings and comments end the scan without a panic.
        for s in ["\"", "\"\"\"", "\"\\", "#", "\"\"\"\\\"\"", "{\"\"\"\"\""] {
            let _ = graphql_exceeds(s, 1);
        }
    }
}

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

/// True when a minijinja template nests more than `max` levels: brackets
/// (`(`, `[`, `{`) and block tags (`{% if/for/macro/call/filter/with/block
/// … %}` against their `end…` tags) both count, wherever they stand — the
/// template parser recurses once per level of either, and a plain HTML body
/// nests neither deeply.
pub fn template_exceeds(src: &str, max: usize) -> bool {
    const BLOCKS: [&str; 8] = [
        "if",
        "for",
        "macro",
        "call",
        "filter",
        "with",
        "block",
        "autoescape",
    ];
    let bytes = src.as_bytes();
    let (mut brackets, mut blocks) = (0usize, 0usize);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' | b'{' => brackets += 1,
            b')' | b']' | b'}' => brackets = brackets.saturating_sub(1),
            _ => {}
        }
        if bytes[i] == b'{' && bytes.get(i + 1) == Some(&b'%') {
            let tag = src[i + 2..]
                .trim_start_matches(['-', '+', ' ', '\t', '\n', '\r'])
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .next()
                .unwrap_or("");
            if BLOCKS.contains(&tag) {
                blocks += 1;
            } else if tag.starts_with("end") {
                blocks = blocks.saturating_sub(1);
            }
        }
        if brackets > max || blocks > max {
            return true;
        }
        i += 1;
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

    #[test]
    fn templates_nest_by_brackets_and_blocks() {
        assert!(!template_exceeds(
            "<p>{{ (a + (b)) }}</p>{% if x %}{% for y in z %}{% endfor %}{% endif %}",
            8
        ));
        assert!(template_exceeds(&"(".repeat(65), 64));
        assert!(template_exceeds(&"{% if x %}".repeat(65), 64));
        assert!(!template_exceeds(&"{% if x %}{% endif %}".repeat(200), 64));
        assert!(!template_exceeds(&"<div>".repeat(500), 64));
    }
}

//! The one rule for a required text field (names, titles): it holds at
//! least one character that is not white space, and at most `max`
//! characters as sent — counted before trimming, as the OpenAPI document's
//! `maxLength` counts them (`infra::docs::text`). The stored value is
//! trimmed.

/// Whether `s` is a non-blank text of at most `max` characters.
pub fn fits(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && !longer_than(s, max)
}

/// Whether `s` has more than `max` characters (`maxLength`); the byte
/// length answers for most texts without counting.
pub fn longer_than(s: &str, max: usize) -> bool {
    s.len() > max && s.chars().count() > max
}

#[cfg(test)]
mod tests {
    use super::fits;

    #[test]
    fn blank_and_long_texts_do_not_fit() {
        assert!(fits("a", 1));
        assert!(fits(" a ", 3));
        assert!(!fits(" a ", 2), "counted as sent, before trimming");
        assert!(!fits("", 5));
        assert!(!fits(" \t\u{3000}", 5));
        assert!(fits("ёж", 2), "characters, not bytes");
    }
}

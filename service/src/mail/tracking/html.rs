//! The one HTML rewrite engagement tracking needs: the `href` of every
//! `<a>` element, and a 1×1 pixel at the end of the body.
//!
//! A small scanner rather than an HTML library (none is in the lock file,
//! and this needs only tags and attributes): it walks the markup as the
//! HTML tokenizer does for start tags — comments, `<!…>` / `<?…>` and the
//! raw text of `<script>`, `<style>`, `<title>` and `<textarea>` are passed
//! over — reads attribute values double-quoted, single-quoted or bare,
//! decodes character references (`&amp;`, `&#x2f;`, …) the way a browser
//! does before following the link, and writes a replaced value back
//! double-quoted and escaped. Everything it does not replace is copied
//! byte for byte.

/// `html` with the first `href` of each `<a>` element replaced by
/// `replace(decoded_href)` where that gives `Some`; all else unchanged.
pub fn rewrite_links(html: &str, mut replace: impl FnMut(&str) -> Option<String>) -> String {
    let b = html.as_bytes();
    let mut out = String::with_capacity(html.len() + html.len() / 4);
    // Copied up to here.
    let mut copied = 0;
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        let lt = i + off;
        let rest = &html[lt..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            i = comment.find("-->").map_or(b.len(), |e| lt + 4 + e + 3);
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") || rest.starts_with("</") {
            i = rest.find('>').map_or(b.len(), |e| lt + e + 1);
            continue;
        }
        let name_end = rest[1..]
            .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
            .map_or(rest.len(), |e| e + 1);
        let name = &rest[1..name_end];
        if name.is_empty() || !name.as_bytes()[0].is_ascii_alphabetic() {
            // Not a tag: a literal `<`.
            i = lt + 1;
            continue;
        }
        let tag = parse_attributes(html, lt + name_end);
        if name.eq_ignore_ascii_case("a")
            && let Some(href) = tag
                .attributes
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case("href"))
            && let Some((start, end)) = href.value
            && let Some(new) = replace(&decode_entities(
                &html[href.value_inner.0..href.value_inner.1],
            ))
        {
            out.push_str(&html[copied..start]);
            out.push('"');
            out.push_str(&escape_attribute(&new));
            out.push('"');
            copied = end;
        }
        i = tag.end;
        let raw_text = ["script", "style", "title", "textarea"]
            .iter()
            .find(|t| name.eq_ignore_ascii_case(t));
        if let Some(t) = raw_text {
            i = find_close(html, i, t).unwrap_or(b.len());
        }
    }
    out.push_str(&html[copied..]);
    out
}

/// `html` with a 1×1 image loading `src` appended: just before `</body>`
/// if there is one, else at the end.
pub fn append_pixel(html: &str, src: &str) -> String {
    let img = format!(
        "<img src=\"{}\" width=\"1\" height=\"1\" alt=\"\" border=\"0\" style=\"display:block;width:1px;height:1px;border:0;\">",
        escape_attribute(src)
    );
    match html.to_ascii_lowercase().rfind("</body") {
        Some(at) => format!("{}{img}{}", &html[..at], &html[at..]),
        None => format!("{html}{img}"),
    }
}

struct Attribute<'a> {
    name: &'a str,
    /// Byte range of the value as written, quotes included.
    value: Option<(usize, usize)>,
    /// Byte range of the value without its quotes.
    value_inner: (usize, usize),
}

struct Tag<'a> {
    attributes: Vec<Attribute<'a>>,
    /// Just past the closing `>` (or the end of the input).
    end: usize,
}

/// The attributes of a start tag whose name ended at `i`.
fn parse_attributes(html: &str, mut i: usize) -> Tag<'_> {
    let b = html.as_bytes();
    let mut attributes = Vec::new();
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            return Tag {
                attributes,
                end: b.len(),
            };
        }
        if b[i] == b'>' {
            return Tag {
                attributes,
                end: i + 1,
            };
        }
        // A name runs to whitespace, `/`, `>` or `=` (a leading `=` is part
        // of the name, as in the HTML tokenizer).
        let name_start = i;
        i += 1;
        while i < b.len() && !(b[i].is_ascii_whitespace() || matches!(b[i], b'/' | b'>' | b'=')) {
            i += 1;
        }
        let name = &html[name_start..i];
        let mut j = i;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if j >= b.len() || b[j] != b'=' {
            attributes.push(Attribute {
                name,
                value: None,
                value_inner: (i, i),
            });
            continue;
        }
        j += 1;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        let (value, inner, next) = match b.get(j) {
            Some(&q @ (b'"' | b'\'')) => match html[j + 1..].find(q as char) {
                Some(e) => ((j, j + 1 + e + 1), (j + 1, j + 1 + e), j + 1 + e + 1),
                // Unterminated: the tag runs to the end; nothing to rewrite.
                None => {
                    return Tag {
                        attributes,
                        end: b.len(),
                    };
                }
            },
            _ => {
                let mut e = j;
                while e < b.len() && !(b[e].is_ascii_whitespace() || b[e] == b'>') {
                    e += 1;
                }
                ((j, e), (j, e), e)
            }
        };
        attributes.push(Attribute {
            name,
            value: Some(value),
            value_inner: inner,
        });
        i = next;
    }
}

/// Just past the `</name …>` that ends a raw text element opened before `i`.
fn find_close(html: &str, i: usize, name: &str) -> Option<usize> {
    let lower = html[i..].to_ascii_lowercase();
    let mut from = 0;
    loop {
        let at = from + lower[from..].find("</")?;
        let after = at + 2 + name.len();
        if lower[at + 2..].starts_with(name)
            && lower[after..]
                .chars()
                .next()
                .is_none_or(|c| c.is_ascii_whitespace() || c == '>' || c == '/')
        {
            return Some(
                i + lower[after..]
                    .find('>')
                    .map_or(lower.len(), |e| after + e + 1),
            );
        }
        from = at + 2;
    }
}

/// Character references as a browser reads them in an attribute value:
/// the named ones a URL may hold, and every numeric one. Unknown names are
/// kept as written.
pub fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest[1..].find(';').map(|e| e + 1).filter(|e| *e <= 12) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let ch = match entity {
            "amp" | "AMP" => Some('&'),
            "lt" | "LT" => Some('<'),
            "gt" | "GT" => Some('>'),
            "quot" | "QUOT" => Some('"'),
            "apos" => Some('\''),
            "sol" => Some('/'),
            "equals" => Some('='),
            "quest" => Some('?'),
            "num" => Some('#'),
            "percnt" => Some('%'),
            "colon" => Some(':'),
            _ => entity
                .strip_prefix('#')
                .and_then(|n| match n.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => n.parse().ok(),
                })
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Safe inside a double-quoted attribute.
pub fn escape_attribute(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wraps every link it is given, to see what the scanner passed.
    fn wrap(html: &str) -> String {
        rewrite_links(html, |u| Some(format!("T[{u}]")))
    }

    #[test]
    fn rewrites_double_single_and_bare_hrefs() {
        for (html, want) in [
            (
                r#"<a href="https://a.example/x">x</a>"#,
                r#"<a href="T[https://a.example/x]">x</a>"#,
            ),
            (
                r#"<a href='https://a.example/x'>x</a>"#,
                r#"<a href="T[https://a.example/x]">x</a>"#,
            ),
            (
                r#"<a href=https://a.example/x>x</a>"#,
                r#"<a href="T[https://a.example/x]">x</a>"#,
            ),
            (
                r#"<A class="b" HREF = "https://a.example/x" target=_blank>x</A>"#,
                r#"<A class="b" HREF = "T[https://a.example/x]" target=_blank>x</A>"#,
            ),
            // A quote of the other kind inside the value.
            (
                r#"<a href='https://a.example/?q="x"'>x</a>"#,
                r#"<a href="T[https://a.example/?q=&quot;x&quot;]">x</a>"#,
            ),
        ] {
            assert_eq!(wrap(html), want, "{html}");
        }
    }

    #[test]
    fn decodes_entities_before_and_escapes_after() {
        let mut seen = Vec::new();
        let out = rewrite_links(
            r#"<a href="https:&#x2f;&#x2f;a.example&#47;p?a=1&amp;b=2&c=3&unknown;">x</a>"#,
            |u| {
                seen.push(u.to_owned());
                Some(format!("https://t.example/c?u={u}"))
            },
        );
        assert_eq!(seen, ["https://a.example/p?a=1&b=2&c=3&unknown;"]);
        assert_eq!(
            out,
            r#"<a href="https://t.example/c?u=https://a.example/p?a=1&amp;b=2&amp;c=3&amp;unknown;">x</a>"#
        );
    }

    #[test]
    fn leaves_what_the_callback_declines_and_everything_else_untouched() {
        let html = concat!(
            "<p title=\"<a href='https://no.example'>\">t</p>",
            "<!-- <a href=\"https://comment.example\"> -->",
            "<style>a[href=\"x\"] { color: red }</style>",
            "<area href=\"https://area.example\"><abbr href=\"https://abbr.example\">a</abbr>",
            "<a name=\"top\">top</a>",
            "<a href=\"mailto:x@example.com\">mail</a>",
            "<a href=\"#top\">up</a>",
            "<a data-href=\"https://data.example\" href=\"https://yes.example\" href=\"https://second.example\">y</a>",
            "1 < 2 <a href=\"https://yes2.example\">z</a>",
        );
        let mut seen = Vec::new();
        let out = rewrite_links(html, |u| {
            seen.push(u.to_owned());
            u.starts_with("https://")
                .then(|| "https://t.example".to_owned())
        });
        assert_eq!(
            seen,
            [
                "mailto:x@example.com",
                "#top",
                "https://yes.example",
                "https://yes2.example"
            ]
        );
        assert_eq!(
            out,
            html.replace("\"https://yes.example\"", "\"https://t.example\"")
                .replace("\"https://yes2.example\"", "\"https://t.example\"")
        );
    }

    #[test]
    fn survives_broken_markup() {
        for html in [
            "<a href=\"https://x.example",
            "<a href=",
            "<a",
            "<",
            "<!--",
            "<script>",
            "<a href='x'",
            "text & more <b>bold</b> <é>",
        ] {
            // Nothing to rewrite in an unterminated value; no panic.
            let out = rewrite_links(html, |_| Some("T".into()));
            assert!(out == html || out.contains("\"T\""), "{html} -> {out}");
        }
        assert_eq!(wrap("<a href=x"), "<a href=\"T[x]\"");
    }

    #[test]
    fn the_pixel_goes_before_the_body_end() {
        assert_eq!(
            append_pixel("<html><body><p>x</p></BODY></html>", "https://t/o/a&b"),
            "<html><body><p>x</p><img src=\"https://t/o/a&amp;b\" width=\"1\" height=\"1\" alt=\"\" border=\"0\" style=\"display:block;width:1px;height:1px;border:0;\"></BODY></html>"
        );
        assert!(append_pixel("<p>x</p>", "u").starts_with("<p>x</p><img src=\"u\""));
    }

    #[test]
    fn decodes_numeric_and_named_references() {
        assert_eq!(
            decode_entities("a&amp;b&#38;c&#x26;d&lt;&gt;&quot;&apos;"),
            "a&b&c&d<>\"'"
        );
        assert_eq!(decode_entities("&&;&#;&#xZZ;&nbsp;"), "&&;&#;&#xZZ;&nbsp;");
        assert_eq!(decode_entities("x&#x1F600;y"), "x\u{1F600}y");
    }
}

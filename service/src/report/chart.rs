//! The live report's factors chart: hand-written SVG (no script, no font
//! or image to fetch, no `style` attribute, so the page's CSP needs nothing
//! for it) — one bar per choice factor on the 1–5 scale, its 95% CI as a
//! whisker, in the agency's colour.
use std::fmt::Write;

/// One bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub mean: f64,
    pub ci: Option<(f64, f64)>,
    /// The mean as shown beside the bar.
    pub shown: String,
}

const WIDTH: f64 = 640.0;
const LABEL_W: f64 = 190.0;
const VALUE_W: f64 = 50.0;
const ROW_H: f64 = 30.0;
const TOP: f64 = 24.0;
const SCALE: (f64, f64) = (1.0, 5.0);

/// Text for SVG content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A label cut to `max` characters (an ellipsis marks the cut).
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// The x of `v` on the scale, clamped to the plot.
fn x_of(v: f64) -> f64 {
    let plot = WIDTH - LABEL_W - VALUE_W;
    let t = ((v - SCALE.0) / (SCALE.1 - SCALE.0)).clamp(0.0, 1.0);
    LABEL_W + t * plot
}

/// The chart of `bars` in `colour` (`#rrggbb`); `title` names it for
/// screen readers.
pub fn factors_svg(bars: &[Bar], colour: &str, title: &str) -> String {
    let height = TOP + ROW_H * bars.len() as f64 + 8.0;
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" font-family="system-ui, sans-serif" font-size="13"><title>{}</title>"##,
        escape(title)
    );
    for tick in 1..=5 {
        let x = x_of(f64::from(tick));
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{height:.1}" stroke="#d9dee3" stroke-width="1"/><text x="{x:.1}" y="14" text-anchor="middle" fill="#52606d">{tick}</text>"##,
            TOP - 4.0
        );
    }
    let colour = escape(colour);
    for (i, b) in bars.iter().enumerate() {
        let y = TOP + ROW_H * i as f64;
        let mid = y + ROW_H / 2.0;
        let (x0, x1) = (x_of(SCALE.0), x_of(b.mean));
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#1f2933">{}</text><rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}" rx="2"/>"##,
            LABEL_W - 8.0,
            mid + 4.0,
            escape(&cut(&b.label, 26)),
            y + 6.0,
            (x1 - x0).max(1.0),
            ROW_H - 12.0,
        );
        if let Some((lo, hi)) = b.ci {
            let (xl, xh) = (x_of(lo), x_of(hi));
            let _ = write!(
                s,
                r##"<path d="M{xl:.1} {:.1}V{:.1}M{xl:.1} {mid:.1}H{xh:.1}M{xh:.1} {:.1}V{:.1}" stroke="#1f2933" stroke-width="1.5" fill="none"/>"##,
                mid - 6.0,
                mid + 6.0,
                mid - 6.0,
                mid + 6.0,
            );
        }
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" fill="#1f2933" font-weight="600">{}</text>"##,
            WIDTH - VALUE_W + 6.0,
            mid + 4.0,
            escape(&b.shown)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_has_a_bar_per_factor_and_escapes_names() {
        let bars = vec![
            Bar {
                label: "Price <b>&</b>".into(),
                mean: 4.5,
                ci: Some((4.0, 5.0)),
                shown: "4.50".into(),
            },
            Bar {
                label: "Location".into(),
                mean: 0.5,
                ci: None,
                shown: "0.50".into(),
            },
        ];
        let svg = factors_svg(&bars, "#aa0000", "Factors \"x\"");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 2);
        assert_eq!(svg.matches("<path").count(), 1, "one whisker");
        assert!(svg.contains("Price &lt;b&gt;&amp;&lt;/b&gt;"));
        assert!(svg.contains("Factors &quot;x&quot;"));
        assert!(!svg.contains("style="), "no inline style for the CSP");
        // A mean off the scale is drawn at its edge, never outside.
        assert!(x_of(0.5) >= LABEL_W && x_of(9.0) <= WIDTH - VALUE_W);
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}

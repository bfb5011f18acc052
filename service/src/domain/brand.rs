//! An agency's email branding: the logo's URL and the brand colour.
use crate::infra::error::FieldError;

/// An `https` URL of an image, without credentials, at most 2,000 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoUrl(String);

impl LogoUrl {
    pub fn parse(field: &str, s: &str) -> Result<LogoUrl, FieldError> {
        let bad = |m: &str| FieldError::new(field, m);
        let s = s.trim();
        if s.len() > 2_000 {
            return Err(bad("at most 2000 characters"));
        }
        let url = url::Url::parse(s).map_err(|_| bad("is not a URL"))?;
        if url.scheme() != "https" {
            return Err(bad("must be an https:// URL"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("needs a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry credentials"));
        }
        Ok(LogoUrl(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A colour `#rrggbb` (stored lower-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrandColour(pub u8, pub u8, pub u8);

impl BrandColour {
    /// The colour emails had before agencies could choose one.
    pub const DEFAULT: BrandColour = BrandColour(0x1f, 0x4e, 0x79);

    pub fn parse(field: &str, s: &str) -> Result<BrandColour, FieldError> {
        let s = s.trim();
        let hex = s
            .strip_prefix('#')
            .filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| FieldError::new(field, "must be a colour such as #1f4e79"))?;
        let at = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0);
        Ok(BrandColour(at(0), at(2), at(4)))
    }

    /// Stored form; anything unreadable falls back to the default.
    pub fn from_stored(s: Option<&str>) -> BrandColour {
        s.and_then(|s| BrandColour::parse("brand_colour", s).ok())
            .unwrap_or(BrandColour::DEFAULT)
    }

    pub fn css(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// Text on this colour: white on dark colours, near-black on light ones
    /// (WCAG relative luminance against both).
    pub fn text_on(self) -> &'static str {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let l = 0.2126 * lin(self.0) + 0.7152 * lin(self.1) + 0.0722 * lin(self.2);
        // Contrast with white (1.05 / (l + 0.05)) against near-black #1f2933.
        let dark = 0.0161;
        if 1.05 / (l + 0.05) >= (l + 0.05) / (dark + 0.05) {
            "#ffffff"
        } else {
            "#1f2933"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logo_urls_must_be_https_without_credentials() {
        assert_eq!(
            LogoUrl::parse("logo_url", " https://cdn.example.com/logo.png ")
                .unwrap()
                .as_str(),
            "https://cdn.example.com/logo.png"
        );
        for bad in [
            "http://cdn.example.com/logo.png",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "https://user:pw@cdn.example.com/logo.png",
            "cdn.example.com/logo.png",
            "",
            &format!("https://x.example.com/{}", "a".repeat(2_000)),
        ] {
            assert!(LogoUrl::parse("logo_url", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn colours_are_six_hex_digits_and_pick_a_readable_text_colour() {
        let c = BrandColour::parse("c", "#FF8800").unwrap();
        assert_eq!(c.css(), "#ff8800");
        for bad in ["ff8800", "#ff880", "#ff88000", "#gg8800", "red", ""] {
            assert!(BrandColour::parse("c", bad).is_err(), "{bad}");
        }
        assert_eq!(BrandColour::DEFAULT.text_on(), "#ffffff");
        assert_eq!(BrandColour(0xff, 0xeb, 0x3b).text_on(), "#1f2933");
        assert_eq!(
            BrandColour::from_stored(Some("nonsense")),
            BrandColour::DEFAULT
        );
    }
}

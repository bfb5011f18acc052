//! Signed links that work without login (confirm a subscription,
//! unsubscribe, the open pixel and click-through of a delivery):
//! `<id>.<mac>`, the MAC an HMAC-SHA256 over purpose and id with a key
//! derived from the JWT secret, so they cannot be forged or moved from one
//! purpose to another. A click-through link also carries the original URL
//! and a MAC over (delivery id, exact URL), so its redirect only goes where
//! that email's links went: never an open redirect.
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with 32 bytes (zero-padded to the block, which is
/// what HMAC does with a short key anyway): no fallible key setup.
fn keyed(key: &[u8; 32]) -> HmacSha256 {
    use hmac::digest::KeyInit;
    let mut k = hmac::digest::Key::<HmacSha256>::default();
    k[..32].copy_from_slice(key);
    <HmacSha256 as KeyInit>::new(&k)
}

pub struct LinkSigner {
    key: [u8; 32],
    /// Where the API is reached from outside, e.g. `https://api.example.com`.
    pub public_url: String,
}

/// What a link may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Confirm,
    Unsubscribe,
    /// The open pixel of a delivery (the id is the delivery's).
    Open,
    /// A click-through of a delivery (the id is the delivery's).
    Click,
    /// A contact leaving all of its client's marketing email (chain
    /// emails; the id is the contact's).
    ContactUnsubscribe,
}

impl Purpose {
    fn tag(self) -> &'static [u8] {
        match self {
            Purpose::Confirm => b"confirm",
            Purpose::Unsubscribe => b"unsubscribe",
            Purpose::Open => b"open",
            Purpose::Click => b"click",
            Purpose::ContactUnsubscribe => b"contact-unsubscribe",
        }
    }
}

impl LinkSigner {
    pub fn new(secret: &[u8], public_url: &str) -> Self {
        use sha2::Digest;
        // A key of its own, so a link MAC is never a token MAC.
        let mut mac = keyed(&Sha256::digest(secret).into());
        mac.update(b"growthpoint link signing v1");
        LinkSigner {
            key: mac.finalize().into_bytes().into(),
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    fn mac(&self, purpose: Purpose, id: Uuid) -> HmacSha256 {
        let mut mac = keyed(&self.key);
        mac.update(purpose.tag());
        mac.update(b":");
        mac.update(id.as_bytes());
        mac
    }

    pub fn token(&self, purpose: Purpose, id: Uuid) -> String {
        let tag = self.mac(purpose, id).finalize().into_bytes();
        format!(
            "{}.{}",
            id.simple(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag[..16])
        )
    }

    /// The id a token was made for, if it is genuine.
    pub fn verify(&self, purpose: Purpose, token: &str) -> Option<Uuid> {
        let (id, tag) = token.split_once('.')?;
        let id = Uuid::parse_str(id).ok()?;
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(tag)
            .ok()?;
        if tag.len() != 16 {
            return None;
        }
        self.mac(purpose, id)
            .verify_truncated_left(&tag)
            .ok()
            .map(|()| id)
    }

    /// The public link of `purpose` for `id`; for [`Purpose::Click`] use
    /// [`LinkSigner::click_url`], which names the target too.
    pub fn url(&self, purpose: Purpose, id: Uuid) -> String {
        let (base, token) = (&self.public_url, self.token(purpose, id));
        match purpose {
            Purpose::Confirm => format!("{base}/api/v1/public/confirm?token={token}"),
            Purpose::Unsubscribe | Purpose::ContactUnsubscribe => {
                format!("{base}/api/v1/public/unsubscribe?token={token}")
            }
            Purpose::Open => format!("{base}/api/v1/public/t/o/{token}"),
            Purpose::Click => format!("{base}/api/v1/public/t/c/{token}"),
        }
    }

    /// MAC of the exact `url` a delivery's link pointed to.
    fn url_mac(&self, delivery: Uuid, url: &str) -> HmacSha256 {
        let mut mac = keyed(&self.key);
        mac.update(b"click-url:");
        mac.update(delivery.as_bytes());
        mac.update(b":");
        mac.update(url.as_bytes());
        mac
    }

    /// The `s` parameter of a click-through to `url` from `delivery`.
    pub fn url_signature(&self, delivery: Uuid, url: &str) -> String {
        let tag = self.url_mac(delivery, url).finalize().into_bytes();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag[..16])
    }

    /// Whether `signature` is [`LinkSigner::url_signature`] of exactly this
    /// delivery and URL (compared in constant time).
    pub fn verify_url(&self, delivery: Uuid, url: &str, signature: &str) -> bool {
        let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        tag.len() == 16
            && self
                .url_mac(delivery, url)
                .verify_truncated_left(&tag)
                .is_ok()
    }

    /// The click-through link of `delivery` that redirects to `url`:
    /// `/api/v1/public/t/c/{token}?u=<url, percent-encoded>&s=<mac>`.
    pub fn click_url(&self, delivery: Uuid, url: &str) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("u", url)
            .append_pair("s", &self.url_signature(delivery, url))
            .finish();
        format!("{}?{query}", self.url(Purpose::Click, delivery))
    }
}

/// What a live report token names: the link and its expiry (Unix
/// seconds), read before the MAC is checked against the link's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportClaim {
    pub link_id: Uuid,
    pub expires_at: i64,
}

impl LinkSigner {
    /// MAC of a live report link: agency, client, link and expiry, so a
    /// token moved to another client's link (or another expiry) fails.
    fn report_mac(&self, agency_id: Uuid, client_id: Uuid, claim: ReportClaim) -> HmacSha256 {
        let mut mac = keyed(&self.key);
        mac.update(b"report:");
        mac.update(agency_id.as_bytes());
        mac.update(client_id.as_bytes());
        mac.update(claim.link_id.as_bytes());
        mac.update(&claim.expires_at.to_be_bytes());
        mac
    }

    /// The token of a live report link: `base64url(link id ‖ expiry) "."
    /// base64url(HMAC-SHA256)`. Derived from the row alone, so it is never
    /// stored and a digest can include it.
    pub fn report_token(&self, agency_id: Uuid, client_id: Uuid, claim: ReportClaim) -> String {
        let mut payload = claim.link_id.as_bytes().to_vec();
        payload.extend_from_slice(&claim.expires_at.to_be_bytes());
        let tag = self
            .report_mac(agency_id, client_id, claim)
            .finalize()
            .into_bytes();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}", b64.encode(payload), b64.encode(tag))
    }

    /// The link a token names, unverified (the row gives agency and client).
    pub fn report_claim(token: &str) -> Option<ReportClaim> {
        let (payload, _) = token.split_once('.')?;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?;
        if raw.len() != 24 {
            return None;
        }
        let (id, exp) = raw.split_at(16);
        Some(ReportClaim {
            link_id: Uuid::from_slice(id).ok()?,
            expires_at: i64::from_be_bytes(exp.try_into().ok()?),
        })
    }

    /// Whether `token` is the genuine token of this link of this client
    /// (compared in constant time); expiry and revocation are the caller's.
    pub fn verify_report(
        &self,
        token: &str,
        agency_id: Uuid,
        client_id: Uuid,
    ) -> Option<ReportClaim> {
        let claim = Self::report_claim(token)?;
        let (_, tag) = token.split_once('.')?;
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(tag)
            .ok()?;
        self.report_mac(agency_id, client_id, claim)
            .verify_slice(&tag)
            .ok()
            .map(|()| claim)
    }

    /// The public URL of the live report page of a link.
    pub fn report_url(&self, agency_id: Uuid, client_id: Uuid, claim: ReportClaim) -> String {
        format!(
            "{}/r/{}",
            self.public_url,
            self.report_token(agency_id, client_id, claim)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_for_their_purpose_and_key() {
        let s = LinkSigner::new(b"a secret of at least thirty-two bytes!!", "http://x/");
        let id = Uuid::now_v7();
        let t = s.token(Purpose::Unsubscribe, id);
        assert_eq!(s.verify(Purpose::Unsubscribe, &t), Some(id));
        assert_eq!(s.verify(Purpose::Confirm, &t), None);
        let other = LinkSigner::new(b"another secret of at least 32 bytes!!!", "http://x");
        assert_eq!(other.verify(Purpose::Unsubscribe, &t), None);
        // Any changed character breaks it.
        let mut bad = t.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            s.verify(Purpose::Unsubscribe, std::str::from_utf8(&bad).unwrap()),
            None
        );
        let moved = format!(
            "{}.{}",
            Uuid::now_v7().simple(),
            t.split_once('.').unwrap().1
        );
        assert_eq!(s.verify(Purpose::Unsubscribe, &moved), None);
        for junk in ["", ".", "x.y", "not-a-token"] {
            assert_eq!(s.verify(Purpose::Unsubscribe, junk), None);
        }
        assert!(
            s.url(Purpose::Confirm, id)
                .starts_with("http://x/api/v1/public/confirm?token=")
        );
        // Delivery tokens: an open token is no click token.
        let open = s.token(Purpose::Open, id);
        assert_eq!(s.verify(Purpose::Open, &open), Some(id));
        assert_eq!(s.verify(Purpose::Click, &open), None);
        assert_eq!(
            s.url(Purpose::Open, id),
            format!("http://x/api/v1/public/t/o/{open}")
        );
    }

    #[test]
    fn click_signatures_bind_the_delivery_and_the_exact_url() {
        let s = LinkSigner::new(b"a secret of at least thirty-two bytes!!", "http://x");
        let (d, other) = (Uuid::now_v7(), Uuid::now_v7());
        let url = "https://shop.example.com/a?b=1&c=2";
        let sig = s.url_signature(d, url);
        assert!(s.verify_url(d, url, &sig));
        assert!(!s.verify_url(other, url, &sig), "another delivery");
        assert!(!s.verify_url(d, "https://shop.example.com/a?b=1&c=3", &sig));
        assert!(!s.verify_url(d, "https://evil.example.com/", &sig));
        assert!(!s.verify_url(d, url, ""));
        assert!(!s.verify_url(d, url, "!!"));
        let click = s.click_url(d, url);
        let token = s.token(Purpose::Click, d);
        assert_eq!(
            click,
            format!(
                "http://x/api/v1/public/t/c/{token}?u=https%3A%2F%2Fshop.example.com%2Fa%3Fb%3D1%26c%3D2&s={sig}"
            )
        );
    }
    #[test]
    fn report_tokens_bind_agency_client_link_and_expiry() {
        let s = LinkSigner::new(b"a secret of at least thirty-two bytes!!", "http://x/");
        let (agency, client, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let claim = ReportClaim {
            link_id: Uuid::now_v7(),
            expires_at: 1_900_000_000,
        };
        let t = s.report_token(agency, client, claim);
        assert_eq!(LinkSigner::report_claim(&t), Some(claim));
        assert_eq!(s.verify_report(&t, agency, client), Some(claim));
        assert_eq!(s.verify_report(&t, agency, other), None, "another client");
        assert_eq!(s.verify_report(&t, other, client), None, "another agency");
        let other_key = LinkSigner::new(b"another secret of at least 32 bytes!!!", "http://x");
        assert_eq!(other_key.verify_report(&t, agency, client), None);
        // A later expiry with the old MAC does not hold.
        let later = ReportClaim {
            expires_at: claim.expires_at + 86_400,
            ..claim
        };
        let moved = format!(
            "{}.{}",
            s.report_token(agency, client, later)
                .split_once('.')
                .unwrap()
                .0,
            t.split_once('.').unwrap().1
        );
        assert_eq!(s.verify_report(&moved, agency, client), None);
        for junk in ["", ".", "x.y", "AAAA.AAAA", &t[..t.len() - 2]] {
            assert_eq!(s.verify_report(junk, agency, client), None, "{junk}");
        }
        assert_eq!(
            s.report_url(agency, client, claim),
            format!("http://x/r/{t}")
        );
        // Only URL-safe characters.
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        );
    }
}

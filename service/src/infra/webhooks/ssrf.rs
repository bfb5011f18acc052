//! Where webhooks may go: in production only `https://` URLs whose host is
//! a public address. Checked when an endpoint is saved (syntax, literal
//! addresses, names that resolve privately) and again at every delivery,
//! where the HTTP client connects only to the addresses [`PublicOnly`]
//! resolved and kept, so a name re-pointed at a private address after the
//! check (DNS rebinding) still cannot be reached.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether an address is routable on the public internet: not loopback,
/// private (RFC 1918), CGNAT, link-local (cloud metadata at
/// 169.254.169.254), unique-local, unspecified, multicast, documentation,
/// benchmarking or otherwise reserved, also when written as IPv4-mapped,
/// IPv4-compatible, NAT64 or 6to4 IPv6.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => is_public_v4(a),
        IpAddr::V6(a) => is_public_v6(a),
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let o = a.octets();
    !(o[0] == 0
        || o[0] == 10
        || o[0] == 127
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
        || (o[0] == 169 && o[1] == 254)
        || (o[0] == 172 && (o[1] & 0xf0) == 16)
        || (o[0] == 192 && o[1] == 168)
        || (o[0] == 192 && o[1] == 0 && (o[2] == 0 || o[2] == 2))
        || (o[0] == 192 && o[1] == 88 && o[2] == 99)
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || (o[0] == 198 && o[1] == 51 && o[2] == 100)
        || (o[0] == 203 && o[1] == 0 && o[2] == 113)
        || o[0] >= 224)
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    let s = a.segments();
    if let Some(v4) = a.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(Ipv4Addr::from(((s[6] as u32) << 16) | s[7] as u32));
    }
    !(s[..6] == [0; 6] // ::, ::1 and IPv4-compatible ::a.b.c.d
        || a.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocols, Teredo
        || s[0] == 0x2002 // 6to4: an IPv4 address inside
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])) // discard-only
}

/// Host names that mean this machine or a private network whatever DNS says.
fn is_local_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost"
        || [".localhost", ".local", ".internal", ".home.arpa", ".lan"]
            .iter()
            .any(|s| h.ends_with(s))
}

/// The URL if a webhook may be sent to it: `https` (or `http` when private
/// targets are allowed), no credentials, a host, and — unless private
/// targets are allowed — no literal non-public address or local name.
pub fn check_url(raw: &str, allow_private: bool) -> Result<url::Url, String> {
    if raw.len() > 2048 {
        return Err("must be at most 2048 characters".into());
    }
    let url = url::Url::parse(raw).map_err(|e| format!("is not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err("must be an https:// URL".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    let refused =
        || Err("must point to a public address (not loopback, private or reserved)".into());
    match url.host() {
        None => Err("must name a host".into()),
        Some(_) if allow_private => Ok(url),
        Some(url::Host::Ipv4(a)) if !is_public_v4(a) => refused(),
        Some(url::Host::Ipv6(a)) if !is_public_v6(a) => refused(),
        Some(url::Host::Domain(d)) if is_local_name(d) => refused(),
        Some(_) => Ok(url),
    }
}

/// [`check_url`], then — for a host name — its current addresses: a name
/// that resolves to any non-public address is refused. A name that does
/// not resolve now is accepted (deliveries check again).
pub async fn check_target(raw: &str, allow_private: bool) -> Result<url::Url, String> {
    let url = check_url(raw, allow_private)?;
    if allow_private {
        return Ok(url);
    }
    if let Some(url::Host::Domain(d)) = url.host() {
        let port = url.port_or_known_default().unwrap_or(443);
        let lookup = tokio::net::lookup_host((d.to_owned(), port));
        if let Ok(Ok(addrs)) = tokio::time::timeout(std::time::Duration::from_secs(2), lookup).await
            && addrs.into_iter().any(|a| !is_public(a.ip()))
        {
            return Err("resolves to a non-public address".into());
        }
    }
    Ok(url)
}

/// The HTTP client's resolver in production: a name's public addresses
/// only, or an error when it has none. The client connects to exactly
/// what this returns.
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if is_local_name(&host) {
                return Err(format!("{host} is a local name").into());
            }
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok::<reqwest::dns::Addrs, Box<dyn std::error::Error + Send + Sync>>(Box::new(
                addrs.into_iter(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        let private = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2001::1",
        ];
        for a in private {
            assert!(
                !is_public(a.parse().unwrap()),
                "{a} must not count as public"
            );
        }
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "169.255.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ];
        for a in public {
            assert!(is_public(a.parse().unwrap()), "{a} must count as public");
        }
    }

    #[test]
    fn urls_must_be_https_to_public_hosts_unless_private_targets_are_allowed() {
        assert!(check_url("https://hooks.example.com/x", false).is_ok());
        for bad in [
            "http://hooks.example.com/x",
            "https://127.0.0.1/x",
            "https://[::1]/x",
            "https://[::ffff:7f00:1]/x",
            "https://2130706433/x",
            "https://0x7f.1/x",
            "https://169.254.169.254/latest/meta-data",
            "https://localhost/x",
            "https://db.internal/x",
            "https://user:pw@hooks.example.com/x",
            "ftp://hooks.example.com/x",
            "not a url",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad} must be refused");
        }
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check_url("ftp://127.0.0.1/hook", true).is_err());
    }
}

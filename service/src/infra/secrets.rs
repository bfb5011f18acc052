//! Secrets kept encrypted at rest (a client's SMTP URL, which carries a
//! password): XChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`, an
//! audited AEAD with 192-bit random nonces, so no nonce bookkeeping) under a
//! key derived from the configured secret (`GROWTHPOINT_SECRET_KEY`). Each
//! value is bound to its row by associated data (its agency and client), so
//! a sealed value copied into another row does not open.
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

/// The prefix of a sealed value: the scheme, so that another can follow.
const V1: &str = "v1.";

pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer keyed by `secret` (at least 32 bytes; the key is its
    /// SHA-256 under a label of this use).
    pub fn new(secret: &[u8]) -> Result<Self, String> {
        if secret.len() < 32 {
            return Err("the secret key must be at least 32 bytes".into());
        }
        let key = Sha256::new()
            .chain_update(b"growthpoint secrets v1\0")
            .chain_update(secret)
            .finalize();
        Ok(Sealer {
            cipher: XChaCha20Poly1305::new(&key),
        })
    }

    /// `plain` encrypted and authenticated with `bound_to`: `v1.` and the
    /// nonce and ciphertext in base64.
    pub fn seal(&self, plain: &str, bound_to: &[u8]) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encryption fails only for messages beyond 256 GiB.
        let ct = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: bound_to,
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("{V1}{}", B64.encode(out))
    }

    /// The plain text of a sealed value, if it opens with this key and
    /// `bound_to`.
    pub fn open(&self, sealed: &str, bound_to: &[u8]) -> Result<String, String> {
        let raw = sealed
            .strip_prefix(V1)
            .and_then(|b| B64.decode(b).ok())
            .filter(|r| r.len() > 24)
            .ok_or("not a sealed value")?;
        let (nonce, ct) = raw.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| "not a sealed value")?;
        let plain = self
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: bound_to,
                },
            )
            .map_err(|_| "does not open with this key (was the secret key changed?)")?;
        String::from_utf8(plain).map_err(|_| "not text".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_row() {
        let s = Sealer::new(&[7u8; 32]).unwrap();
        let a = s.seal("smtp://u:p@mail.example:587", b"row-a");
        assert!(a.starts_with("v1.") && !a.contains("mail.example"));
        assert_eq!(s.open(&a, b"row-a").unwrap(), "smtp://u:p@mail.example:587");
        // A fresh nonce each time.
        assert_ne!(a, s.seal("smtp://u:p@mail.example:587", b"row-a"));
        assert!(s.open(&a, b"row-b").is_err());
        assert!(Sealer::new(&[8u8; 32]).unwrap().open(&a, b"row-a").is_err());
        assert!(s.open("v1.AAAA", b"row-a").is_err());
        assert!(s.open("plain", b"row-a").is_err());
        assert!(Sealer::new(b"short").is_err());
    }
}

//! Who is calling: JWTs, passwords, API-key authentication, and a short-lived
//! cache of memberships and keys. Sign-up, login and the caller's own
//! account are in [`account`].
use anyhow::Context;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use argon2::{Algorithm as ArgonAlg, Argon2, Params, Version};
use chrono::{Duration, Utc};
use entity::{api_key, membership};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use uuid::Uuid;

use crate::infra::ctx::{Principal, RequestCtx, Role};
use crate::infra::error::{AppError, AppResult};
use crate::{Services, now};

mod account;
pub use account::*;

/// Short-lived memory of memberships and API keys, so that a burst of
/// requests does not re-read them each time. Changes made in this process
/// are seen at once (entries are dropped); changes made by another replica
/// within `ttl`.
pub struct AuthCache {
    ttl: std::time::Duration,
    members: TimedMap<(Uuid, Uuid), Option<Role>>,
    keys: TimedMap<String, Option<api_key::Model>>,
    touched: std::sync::Mutex<HashMap<Uuid, std::time::Instant>>,
}

type TimedMap<K, V> = std::sync::Mutex<HashMap<K, (V, std::time::Instant)>>;

const AUTH_CACHE_MAX: usize = 10_000;

impl AuthCache {
    pub fn new(ttl: std::time::Duration) -> Self {
        Self {
            ttl,
            members: Default::default(),
            keys: Default::default(),
            touched: Default::default(),
        }
    }

    fn get<K: std::hash::Hash + Eq + ?Sized, V: Clone, Q>(
        &self,
        map: &std::sync::Mutex<HashMap<Q, (V, std::time::Instant)>>,
        k: &K,
    ) -> Option<V>
    where
        Q: std::borrow::Borrow<K> + std::hash::Hash + Eq,
    {
        let map = map.lock().ok()?;
        map.get(k)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(v, _)| v.clone())
    }

    fn put<K: std::hash::Hash + Eq, V>(
        &self,
        map: &std::sync::Mutex<HashMap<K, (V, std::time::Instant)>>,
        k: K,
        v: V,
    ) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut map) = map.lock() {
            if map.len() >= AUTH_CACHE_MAX {
                let ttl = self.ttl;
                map.retain(|_, (_, at)| at.elapsed() < ttl);
                if map.len() >= AUTH_CACHE_MAX {
                    map.clear();
                }
            }
            map.insert(k, (v, std::time::Instant::now()));
        }
    }

    fn get_member(&self, k: &(Uuid, Uuid)) -> Option<Option<Role>> {
        self.get(&self.members, k)
    }

    fn put_member(&self, k: (Uuid, Uuid), role: Option<Role>) {
        self.put(&self.members, k, role);
    }

    fn get_key(&self, public_id: &str) -> Option<Option<api_key::Model>> {
        self.get(&self.keys, public_id)
    }

    fn put_key(&self, public_id: &str, k: Option<api_key::Model>) {
        self.put(&self.keys, public_id.to_owned(), k);
    }

    /// True at most once a minute per key: whether to record its use.
    fn should_touch(&self, id: Uuid) -> bool {
        let Ok(mut map) = self.touched.lock() else {
            return true;
        };
        let now = std::time::Instant::now();
        match map.get(&id) {
            Some(at) if now.duration_since(*at) < std::time::Duration::from_secs(60) => false,
            _ => {
                if map.len() >= AUTH_CACHE_MAX {
                    map.clear();
                }
                map.insert(id, now);
                true
            }
        }
    }

    /// Forgets everything known of an agency's members (after a change).
    pub fn forget_members(&self, agency_id: Uuid) {
        if let Ok(mut map) = self.members.lock() {
            map.retain(|(a, _), _| *a != agency_id);
        }
    }

    pub fn clear(&self) {
        if let Ok(mut map) = self.members.lock() {
            map.clear();
        }
        if let Ok(mut map) = self.keys.lock() {
            map.clear();
        }
    }

    /// Forgets a key (after revocation).
    pub fn forget_key(&self, public_id: &str) {
        if let Ok(mut map) = self.keys.lock() {
            map.remove(public_id);
        }
    }
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl JwtKeys {
    pub fn from_secret(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub agency: Uuid,
    pub role: Role,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(ArgonAlg::Argon2id, Version::V0x13, params)
}

pub async fn hash_password(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || {
        argon2()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    })
    .await
    .context("while hashing a password")?
    .map_err(AppError::Unexpected)
}

pub async fn verify_password(password: String, hash: String) -> AppResult<bool> {
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .context("while verifying a password")
    .map_err(AppError::Unexpected)
}

/// A dummy hash so that logins for unknown emails take as long as real ones.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$4Z3Vc7Fd8sAXX6cG9h3o5cJ1q6k5hZq4qv8Vb4o5kkA";

impl Services {
    pub fn issue_token(&self, user_id: Uuid, agency_id: Uuid, role: Role) -> AppResult<String> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user_id,
            agency: agency_id,
            role,
            iat: now,
            nbf: now,
            exp: now + self.config.jwt_ttl_secs,
            iss: self.config.jwt_issuer.clone(),
            aud: self.config.jwt_audience.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.jwt.encoding)
            .context("while signing a token")
            .map_err(AppError::Unexpected)
    }

    fn decode_token(&self, token: &str) -> AppResult<Claims> {
        let mut v = Validation::new(Algorithm::HS256);
        v.algorithms = vec![Algorithm::HS256];
        v.leeway = 30;
        v.validate_nbf = true;
        v.set_audience(&[&self.config.jwt_audience]);
        v.set_issuer(&[&self.config.jwt_issuer]);
        v.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.jwt.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| AppError::Unauthorized(format!("invalid token: {}", token_reason(&e))))
    }

    /// Resolves a bearer credential (JWT or `gp_…` API key) into a context.
    pub async fn authenticate(&self, bearer: &str) -> AppResult<RequestCtx> {
        if let Some(rest) = bearer.strip_prefix("gp_") {
            return self.authenticate_key(rest).await;
        }
        let claims = self.decode_token(bearer)?;
        // The membership may have changed since the token was issued: it is
        // re-read, at most `auth_cache_ms` old.
        let key = (claims.agency, claims.sub);
        let role = match self.auth_cache.get_member(&key) {
            Some(role) => role,
            None => {
                let role = membership::Entity::find()
                    .filter(membership::Column::AgencyId.eq(claims.agency))
                    .filter(membership::Column::UserId.eq(claims.sub))
                    .one(&self.db)
                    .await?
                    .and_then(|m| Role::parse(&m.role));
                self.auth_cache.put_member(key, role);
                role
            }
        };
        let role =
            role.ok_or_else(|| AppError::Unauthorized("membership no longer exists".into()))?;
        Ok(RequestCtx {
            agency_id: claims.agency,
            principal: Principal::User(claims.sub),
            role: Some(role),
            scopes: vec![],
            request_id: None,
        })
    }

    async fn authenticate_key(&self, rest: &str) -> AppResult<RequestCtx> {
        let bad = || AppError::Unauthorized("invalid API key".into());
        let (public_id, secret) = rest.split_once('_').ok_or_else(bad)?;
        let key = match self.auth_cache.get_key(public_id) {
            Some(k) => k,
            None => {
                let k = api_key::Entity::find()
                    .filter(api_key::Column::PublicId.eq(public_id))
                    .one(&self.db)
                    .await?;
                self.auth_cache.put_key(public_id, k.clone());
                k
            }
        }
        .ok_or_else(bad)?;
        if !crate::platform::api_keys::secret_matches(secret, &key.secret_hash) {
            return Err(bad());
        }
        let now = now();
        if key.revoked_at.is_some() {
            return Err(AppError::Unauthorized("API key revoked".into()));
        }
        if key.expires_at.is_some_and(|t| t <= now) {
            return Err(AppError::Unauthorized("API key expired".into()));
        }
        // Recording every use would turn each read into a write; a minute's
        // resolution is enough for "last used".
        if key
            .last_used_at
            .is_none_or(|t| now - t > Duration::seconds(60))
            && self.auth_cache.should_touch(key.id)
        {
            api_key::Entity::update_many()
                .col_expr(
                    api_key::Column::LastUsedAt,
                    sea_orm::sea_query::Expr::value(now),
                )
                .filter(api_key::Column::Id.eq(key.id))
                .exec(&self.db)
                .await?;
        }
        let scopes = crate::platform::api_keys::scopes_of(&key);
        Ok(RequestCtx {
            agency_id: key.agency_id,
            principal: Principal::ApiKey(key.id),
            role: None,
            scopes,
            request_id: None,
        })
    }
}

fn token_reason(e: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "expired",
        K::ImmatureSignature => "not yet valid",
        K::InvalidSignature => "bad signature",
        K::InvalidAlgorithm | K::InvalidAlgorithmName => "algorithm not allowed",
        K::InvalidAudience => "wrong audience",
        K::InvalidIssuer => "wrong issuer",
        K::MissingRequiredClaim(_) => "missing claim",
        _ => "malformed",
    }
}

//! Sign-up, login, JWTs, passwords and API-key authentication.
use anyhow::Context;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use argon2::{Algorithm as ArgonAlg, Argon2, Params, Version};
use chrono::{Duration, Utc};
use entity::{agency, api_key, membership, user};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use uuid::Uuid;

use crate::domain::answers::valid_email;
use crate::domain::locale::Locale;
use crate::infra::ctx::{Principal, RequestCtx, Role, Scope};
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::{Services, infra::db, new_id, now};

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
        })
    }

    pub async fn signup(&self, input: SignupInput) -> AppResult<SignupOutput> {
        let mut errs = Vec::new();
        let agency_name = input.agency_name.trim().to_owned();
        let name = input.name.trim().to_owned();
        let email = input.email.trim().to_lowercase();
        if agency_name.is_empty() || agency_name.chars().count() > 200 {
            errs.push(FieldError::new(
                "agency_name",
                "must be 1 to 200 characters",
            ));
        }
        if name.is_empty() || name.chars().count() > 200 {
            errs.push(FieldError::new("name", "must be 1 to 200 characters"));
        }
        if !valid_email(&email) {
            errs.push(FieldError::new("email", "is not an email address"));
        }
        check_password(&input.password, &mut errs);
        let locale = match input.locale.as_deref().map(|l| Locale::parse("locale", l)) {
            None => DEFAULT_AGENCY_LOCALE,
            Some(Ok(l)) => l,
            Some(Err(e)) => {
                errs.push(e);
                DEFAULT_AGENCY_LOCALE
            }
        };
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let existing = user::Entity::find()
            .filter(user::Column::Email.eq(&email))
            .one(&self.db)
            .await?;
        // An existing user may open another agency, but only with their password.
        let own_locale = existing.as_ref().and_then(|u| u.locale.clone());
        let (user_id, password_hash) = match existing {
            Some(u) => {
                if !verify_password(input.password.clone(), u.password_hash.clone()).await? {
                    return Err(AppError::Conflict(
                        "this email is registered; sign up with its password to add an agency"
                            .into(),
                    ));
                }
                (u.id, None)
            }
            None => (new_id(), Some(hash_password(input.password).await?)),
        };
        let t = now();
        let agency_id = new_id();
        let txn = db::begin_write(&self.db).await?;
        agency::ActiveModel {
            id: Set(agency_id),
            name: Set(agency_name.clone()),
            logo_url: Set(None),
            brand_colour: Set(None),
            locale: Set(locale.as_str().to_owned()),
            created_at: Set(t),
        }
        .insert(&txn)
        .await?;
        if let Some(hash) = password_hash {
            let inserted = user::ActiveModel {
                id: Set(user_id),
                email: Set(email.clone()),
                name: Set(name.clone()),
                password_hash: Set(hash),
                locale: Set(None),
                created_at: Set(t),
            }
            .insert(&txn)
            .await;
            if let Err(e) = inserted {
                return Err(if crate::infra::db::is_unique_violation(&e) {
                    AppError::Conflict("this email is already registered".into())
                } else {
                    e.into()
                });
            }
        }
        membership::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(agency_id),
            user_id: Set(user_id),
            role: Set(Role::Owner.as_str().into()),
            created_at: Set(t),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        let token = self.issue_token(user_id, agency_id, Role::Owner)?;
        Ok(SignupOutput {
            token,
            agency: AgencyView {
                id: agency_id,
                name: agency_name,
                role: Role::Owner,
            },
            user: UserView {
                id: user_id,
                email,
                name,
                locale: own_locale,
            },
        })
    }

    pub async fn login(&self, input: LoginInput) -> AppResult<LoginOutput> {
        let email = input.email.trim().to_lowercase();
        let bad = || AppError::Unauthorized("wrong email or password".into());
        let found = user::Entity::find()
            .filter(user::Column::Email.eq(&email))
            .one(&self.db)
            .await?;
        let Some(u) = found else {
            let _ = verify_password(input.password, DUMMY_HASH.into()).await;
            return Err(bad());
        };
        if !verify_password(input.password, u.password_hash.clone()).await? {
            return Err(bad());
        }
        let mut q = membership::Entity::find()
            .filter(membership::Column::UserId.eq(u.id))
            .order_by_asc(membership::Column::CreatedAt);
        if let Some(a) = input.agency_id {
            q = q.filter(membership::Column::AgencyId.eq(a));
        }
        let m = q
            .one(&self.db)
            .await?
            .ok_or_else(|| AppError::Forbidden("the user is not a member of that agency".into()))?;
        let role = Role::parse(&m.role).context("stored role")?;
        Ok(LoginOutput {
            token: self.issue_token(u.id, m.agency_id, role)?,
            agency_id: m.agency_id,
            role,
        })
    }

    pub async fn me(&self, ctx: &RequestCtx) -> AppResult<MeView> {
        let agency = agency::Entity::find_by_id(ctx.agency_id)
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?;
        let user = match ctx.user_id() {
            Some(id) => user::Entity::find_by_id(id)
                .one(&self.db)
                .await?
                .map(|u| UserView {
                    id: u.id,
                    email: u.email,
                    name: u.name,
                    locale: u.locale,
                }),
            None => None,
        };
        let agencies = match ctx.user_id() {
            Some(id) => memberships_of(&self.db, id).await?,
            None => vec![],
        };
        Ok(MeView {
            agency: AgencyView {
                id: agency.id,
                name: agency.name,
                role: ctx.role.unwrap_or(Role::Viewer),
            },
            user,
            api_key_id: match ctx.principal {
                Principal::ApiKey(id) => Some(id),
                Principal::User(_) => None,
            },
            scopes: ctx.scopes.clone(),
            agencies,
        })
    }

    /// The signed-in user changes their own settings (any role; not API
    /// keys, which have no person behind them).
    pub async fn update_me(&self, ctx: &RequestCtx, input: UpdateMe) -> AppResult<MeView> {
        let Some(user_id) = ctx.user_id() else {
            return Err(AppError::Forbidden(
                "an API key has no user settings; sign in as a user".into(),
            ));
        };
        // "" goes back to the language of the agency or client concerned.
        let locale = match input.locale.as_deref() {
            None => None,
            Some("") => Some(None),
            Some(l) => Some(Some(
                Locale::parse("locale", l).map_err(|e| AppError::Validation(vec![e]))?,
            )),
        };
        if let Some(l) = locale {
            user::Entity::update_many()
                .col_expr(
                    user::Column::Locale,
                    Expr::value(l.map(|l| l.as_str().to_owned())),
                )
                .filter(user::Column::Id.eq(user_id))
                .exec(&self.db)
                .await?;
        }
        self.me(ctx).await
    }
}

async fn memberships_of<C: ConnectionTrait>(db: &C, user_id: Uuid) -> AppResult<Vec<AgencyView>> {
    let ms = membership::Entity::find()
        .filter(membership::Column::UserId.eq(user_id))
        .all(db)
        .await?;
    let ids: Vec<Uuid> = ms.iter().map(|m| m.agency_id).collect();
    let agencies = agency::Entity::find()
        .filter(agency::Column::Id.is_in(ids))
        .all(db)
        .await?;
    Ok(ms
        .into_iter()
        .filter_map(|m| {
            let a = agencies.iter().find(|a| a.id == m.agency_id)?;
            Some(AgencyView {
                id: a.id,
                name: a.name.clone(),
                role: Role::parse(&m.role)?,
            })
        })
        .collect())
}

pub fn check_password(password: &str, errs: &mut Vec<FieldError>) {
    let n = password.chars().count();
    if !(10..=256).contains(&n) {
        errs.push(FieldError::new("password", "must be 10 to 256 characters"));
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupInput {
    pub agency_name: String,
    pub name: String,
    pub email: String,
    pub password: String,
    /// `ru` or `en`: the agency's staff emails; default `en`.
    #[serde(default)]
    pub locale: Option<String>,
}

/// The language new agencies' staff emails come in unless chosen.
pub const DEFAULT_AGENCY_LOCALE: Locale = Locale::En;

/// The caller's own settings; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    /// `ru` or `en`: the language of the emails you get (alerts), whatever
    /// the agency's; an empty string goes back to the agency's (or, for a
    /// client's UX alerts, the client's).
    #[serde(default)]
    pub locale: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub agency_id: Option<Uuid>,
}

#[derive(Debug, Serialize, Clone, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct AgencyView {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Serialize, Clone, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    /// `ru` or `en` if the user chose the language of their emails; absent:
    /// the agency's (or client's) language.
    pub locale: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignupOutput {
    pub token: String,
    pub agency: AgencyView,
    pub user: UserView,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginOutput {
    pub token: String,
    pub agency_id: Uuid,
    pub role: Role,
}

#[derive(Debug, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct MeView {
    pub agency: AgencyView,
    pub user: Option<UserView>,
    pub api_key_id: Option<Uuid>,
    pub scopes: Vec<Scope>,
    pub agencies: Vec<AgencyView>,
}

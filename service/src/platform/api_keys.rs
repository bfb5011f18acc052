//! API keys: shown once, stored as a hash, scoped, revocable, expiring.
use chrono::{DateTime, Utc};
use entity::api_key;
use rand::Rng;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::infra::audit::{self, Audit};
use crate::infra::ctx::Scope;
use crate::infra::db::begin_write;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::page::{Page, PageParams};
use crate::{Perm, RequestCtx, Services, new_id, now};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    /// The public part of the key, `gp_<public_id>_…`.
    pub public_id: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}
crate::has_id!(ApiKeyView);

/// A new key; `key` is shown this once and never again.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CreatedApiKey {
    pub key: String,
    pub api_key: ApiKeyView,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    #[schema(schema_with = crate::infra::docs::text_200)]
    pub name: String,
    /// Any of `read`, `write`, `ingest`.
    #[schema(schema_with = crate::infra::docs::api_key_scopes)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<api_key::Model> for ApiKeyView {
    fn from(m: api_key::Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            public_id: m.public_id,
            scopes: serde_json::from_value(m.scopes).unwrap_or_default(),
            expires_at: m.expires_at,
            revoked_at: m.revoked_at,
            last_used_at: m.last_used_at,
            created_at: m.created_at,
        }
    }
}

pub fn scopes_of(m: &api_key::Model) -> Vec<Scope> {
    let names: Vec<String> = serde_json::from_value(m.scopes.clone()).unwrap_or_default();
    names.iter().filter_map(|s| Scope::parse(s)).collect()
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time comparison of a presented secret with the stored hash.
/// The secret has 190 bits of entropy, so a fast hash is enough.
pub fn secret_matches(secret: &str, stored_hash: &str) -> bool {
    let a = hash_secret(secret);
    a.len() == stored_hash.len()
        && a.bytes()
            .zip(stored_hash.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn random_alnum(n: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

impl Services {
    pub async fn create_api_key(
        &self,
        ctx: &RequestCtx,
        input: CreateApiKey,
    ) -> AppResult<CreatedApiKey> {
        ctx.require(Perm::Admin)?;
        let mut errs = Vec::new();
        let name = input.name.trim().to_owned();
        if !crate::domain::text::fits(&input.name, 200) {
            errs.push(FieldError::new("name", "must be 1 to 200 characters"));
        }
        let mut scopes: Vec<String> = Vec::new();
        for (i, s) in input.scopes.iter().enumerate() {
            if Scope::parse(s).is_none() {
                errs.push(FieldError::new(
                    format!("scopes[{i}]"),
                    "must be read, write or ingest",
                ));
            } else if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        if input.scopes.is_empty() {
            errs.push(FieldError::new("scopes", "needs at least one scope"));
        }
        if input.expires_at.is_some_and(|t| t <= now()) {
            errs.push(FieldError::new("expires_at", "must be in the future"));
        }
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let public_id = random_alnum(12).to_lowercase();
        let secret = random_alnum(32);
        let m = api_key::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(ctx.agency_id),
            name: Set(name),
            public_id: Set(public_id.clone()),
            secret_hash: Set(hash_secret(&secret)),
            scopes: Set(serde_json::json!(scopes)),
            expires_at: Set(input.expires_at),
            revoked_at: Set(None),
            last_used_at: Set(None),
            created_by: Set(ctx.actor_id()),
            created_at: Set(now()),
        };
        let txn = begin_write(&self.db).await?;
        let view = ApiKeyView::from(m.insert(&txn).await?);
        // The view holds no secret: only its hash is stored, and not here.
        audit::commit(txn, ctx, Audit::create("api_key", view.id, &view)).await?;
        Ok(CreatedApiKey {
            key: format!("gp_{public_id}_{secret}"),
            api_key: view,
        })
    }

    pub async fn list_api_keys(
        &self,
        ctx: &RequestCtx,
        page: PageParams,
    ) -> AppResult<Page<ApiKeyView>> {
        ctx.require(Perm::Admin)?;
        let q = api_key::Entity::find().filter(api_key::Column::AgencyId.eq(ctx.agency_id));
        page.parse()?
            .fetch(q, api_key::Column::Id, &self.db, ApiKeyView::from)
            .await
    }

    pub async fn revoke_api_key(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<ApiKeyView> {
        let existing = api_key::Entity::find_by_id(id)
            .filter(api_key::Column::AgencyId.eq(ctx.agency_id))
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?;
        ctx.require(Perm::Admin)?;
        if existing.revoked_at.is_some() {
            return Ok(existing.into());
        }
        let public_id = existing.public_id.clone();
        let mut m: api_key::ActiveModel = existing.into();
        m.revoked_at = Set(Some(now()));
        let txn = begin_write(&self.db).await?;
        let m = m.update(&txn).await?;
        audit::commit(txn, ctx, Audit::new("api_key", "revoke", Some(id))).await?;
        self.invalidate(crate::infra::cache::Invalidation::ApiKey(public_id))
            .await;
        Ok(m.into())
    }
}

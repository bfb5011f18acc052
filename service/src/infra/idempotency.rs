//! `Idempotency-Key` for side-effecting requests (REST and GraphQL alike):
//! the first response is stored and replayed for a retry with the same key
//! and the same request.
//!
//! The key is taken inside the write's own transaction, before the write
//! ([`claim`], as zero-to-production's `try_processing`): the row is
//! inserted first, with a placeholder, and filled with the response
//! ([`finish`]) before commit. A concurrent retry's insert of the same key
//! waits on the unique index (PostgreSQL) or for the write lock (SQLite)
//! until the first commits, then finds the stored response and replays it;
//! if the first rolled back, the retry writes instead. So two requests
//! with one key store one result.
use entity::idempotency_key;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::infra::error::{AppError, AppResult};
use crate::{Services, new_id, now};

#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub status: u16,
    pub body: serde_json::Value,
}

/// A request's `Idempotency-Key` and the hash of what it asks for.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub hash: String,
}

impl IdempotencyKey {
    /// Checks the key (1–200 characters); `field` names it in errors.
    pub fn new(key: &str, hash: String) -> AppResult<Self> {
        if key.is_empty() || key.len() > 200 {
            return Err(AppError::field(
                "Idempotency-Key",
                "must be 1 to 200 characters",
            ));
        }
        Ok(Self {
            key: key.to_owned(),
            hash,
        })
    }
}

/// What a keyed write did: stored now, or replayed the first answer.
#[derive(Debug, Clone)]
pub enum Keyed<T> {
    New(T),
    Replayed(StoredResponse),
}

/// Placeholder status of a claimed key whose response is not stored yet;
/// never visible outside the claiming transaction.
const CLAIMED: i32 = 0;

/// Takes `key` for this request inside the write's transaction `txn`:
/// `None` when the caller goes on with the write (then [`finish`] before
/// commit), or the stored response of the request that had it first.
pub async fn claim<C: ConnectionTrait>(
    txn: &C,
    agency_id: Uuid,
    key: &IdempotencyKey,
) -> AppResult<Option<StoredResponse>> {
    let res = idempotency_key::Entity::insert(idempotency_key::ActiveModel {
        id: Set(new_id()),
        agency_id: Set(agency_id),
        key: Set(key.key.clone()),
        request_hash: Set(key.hash.clone()),
        status: Set(CLAIMED),
        body: Set(serde_json::Value::Null),
        created_at: Set(now()),
    })
    .on_conflict(
        sea_orm::sea_query::OnConflict::columns([
            idempotency_key::Column::AgencyId,
            idempotency_key::Column::Key,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(txn)
    .await;
    match res {
        Ok(n) if n > 0 => return Ok(None),
        Ok(_) | Err(sea_orm::DbErr::RecordNotInserted) => {}
        Err(e) => return Err(e.into()),
    }
    let found = idempotency_key::Entity::find()
        .filter(idempotency_key::Column::AgencyId.eq(agency_id))
        .filter(idempotency_key::Column::Key.eq(&key.key))
        .one(txn)
        .await?
        .ok_or_else(|| {
            AppError::Conflict("a request with this Idempotency-Key is in progress".into())
        })?;
    replay(found, &key.hash).map(Some)
}

/// Stores the response of the write that claimed `key`, in its transaction.
pub async fn finish<C: ConnectionTrait>(
    txn: &C,
    agency_id: Uuid,
    key: &IdempotencyKey,
    status: u16,
    body: serde_json::Value,
) -> AppResult<()> {
    idempotency_key::Entity::update_many()
        .col_expr(
            idempotency_key::Column::Status,
            sea_orm::sea_query::Expr::value(i32::from(status)),
        )
        .col_expr(
            idempotency_key::Column::Body,
            sea_orm::sea_query::Expr::value(body),
        )
        .filter(idempotency_key::Column::AgencyId.eq(agency_id))
        .filter(idempotency_key::Column::Key.eq(&key.key))
        .exec(txn)
        .await?;
    Ok(())
}

fn replay(found: idempotency_key::Model, hash: &str) -> AppResult<StoredResponse> {
    if found.request_hash != hash {
        return Err(AppError::field(
            "Idempotency-Key",
            "was used for a different request",
        ));
    }
    if found.status == CLAIMED {
        return Err(AppError::Conflict(
            "a request with this Idempotency-Key is in progress".into(),
        ));
    }
    Ok(StoredResponse {
        status: u16::try_from(found.status).unwrap_or(200),
        body: found.body,
    })
}

pub fn request_hash(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b" ");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

impl Services {
    /// Stores a response outside a write's transaction (a request that
    /// wrote nothing); a concurrent retry's stored response stands.
    pub async fn idempotent_store(
        &self,
        agency_id: Uuid,
        key: &IdempotencyKey,
        status: u16,
        body: serde_json::Value,
    ) -> AppResult<()> {
        let res = idempotency_key::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(agency_id),
            key: Set(key.key.clone()),
            request_hash: Set(key.hash.clone()),
            status: Set(status as i32),
            body: Set(body),
            created_at: Set(now()),
        }
        .insert(&self.db)
        .await;
        match res {
            Ok(_) => Ok(()),
            // A concurrent retry stored it first: theirs stands.
            Err(e) if crate::infra::db::is_unique_violation(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

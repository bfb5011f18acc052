//! `Idempotency-Key` for side-effecting POSTs: the first response is stored
//! and replayed for a retry with the same key and the same request.
use entity::idempotency_key;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};
use crate::{RequestCtx, Services, new_id, now};

pub struct StoredResponse {
    pub status: u16,
    pub body: serde_json::Value,
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
    /// The stored response for this key, if any; a key reused for another
    /// request is an error.
    pub async fn idempotent_lookup(
        &self,
        ctx: &RequestCtx,
        key: &str,
        hash: &str,
    ) -> AppResult<Option<StoredResponse>> {
        if key.is_empty() || key.len() > 200 {
            return Err(AppError::field(
                "Idempotency-Key",
                "must be 1 to 200 characters",
            ));
        }
        let found = idempotency_key::Entity::find()
            .filter(idempotency_key::Column::AgencyId.eq(ctx.agency_id))
            .filter(idempotency_key::Column::Key.eq(key))
            .one(&self.db)
            .await?;
        match found {
            None => Ok(None),
            Some(r) if r.request_hash == hash => Ok(Some(StoredResponse {
                status: r.status as u16,
                body: r.body,
            })),
            Some(_) => Err(AppError::field(
                "Idempotency-Key",
                "was used for a different request",
            )),
        }
    }

    pub async fn idempotent_store(
        &self,
        ctx: &RequestCtx,
        key: &str,
        hash: &str,
        status: u16,
        body: serde_json::Value,
    ) -> AppResult<()> {
        let res = idempotency_key::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(ctx.agency_id),
            key: Set(key.into()),
            request_hash: Set(hash.into()),
            status: Set(status as i32),
            body: Set(body),
            created_at: Set(now()),
        }
        .insert(&self.db)
        .await;
        match res {
            Ok(_) => Ok(()),
            // A concurrent retry stored it first: theirs stands.
            Err(e) if crate::auth::is_unique_violation(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

//! Purchases and the JTBD value-migration map (analytics.md §6, product
//! flow 4): per client, purchases are ingested like responses (one JSON
//! document, or up to 1,000,000 NDJSON/CSV rows, all validated before any is
//! stored, idempotent by `external_id`); the client's ordered labelling
//! rules are one JSON list; the map (RFM, migration matrix, churn, LTV,
//! inter-purchase intervals) is computed on read by `analytics::jtbd`.
//!
//! Computed on read, not by the worker: the figures depend on the caller's
//! as-of date, period and margin, so there is no one snapshot to keep; a
//! read loads the client's purchases up to D (six narrow columns each) and
//! folds them in one pass off the async executor.
//!
//! Times: purchases are stored in UTC. The rules speak of local weekdays and
//! hours, and D is a local date, so every purchase is converted to the
//! client's time zone (`clients.timezone`) before labelling and dating.
//!
//! Viewers read; whoever may ingest (analysts, `ingest`/`write` API keys)
//! pushes purchases; analysts edit the rules.
use std::collections::HashSet;

use analytics::jtbd::Purchase;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use entity::{client, purchase};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::audit::{self, Audit};
use crate::infra::db::begin_write;
use crate::infra::error::{AppError, AppResult};
use crate::infra::page::{Page, PageParams};
use crate::infra::webhooks::{ImportEvent, emit_import};
use crate::platform::clients::find_client;
use crate::research::responses::ImportFormat;
use crate::{Perm, RequestCtx, Services, new_id, now};

mod parse;
pub use parse::*;

/// Rows per import.
pub const MAX_IMPORT_ROWS: usize = 1_000_000;

/// Amounts are at most this, so sums stay exact enough and finite.
pub const MAX_AMOUNT: f64 = 1e12;

pub const MAX_ITEMS: i64 = 1_000_000;

pub const MAX_PARTY_SIZE: i64 = 10_000;

pub const MAX_CHANNEL: usize = 64;

/// One purchase as an integration sends it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct PurchaseInput {
    /// Your id for the purchase; re-sending it is a no-op (a duplicate).
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::text_200_or_null)]
    pub external_id: Option<String>,
    /// The customer (card, phone hash, loyalty id…), 1 to 200 bytes.
    #[schema(schema_with = crate::infra::docs::text_200)]
    pub customer_ref: String,
    /// When (RFC 3339 with an offset); labelled in the client's time zone.
    pub purchased_at: DateTime<Utc>,
    /// ≥ 0, at most 1e12.
    #[schema(minimum = 0, maximum = 1e12)]
    pub amount: f64,
    /// Items bought, an integer ≥ 0.
    #[schema(minimum = 0, maximum = 1000000)]
    pub items: i64,
    /// Guests, an integer ≥ 1.
    #[schema(minimum = 1, maximum = 10000)]
    pub party_size: i64,
    /// E.g. `hall`, `delivery`; 1 to 64 bytes.
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::text_64_or_null)]
    pub channel: Option<String>,
}

/// A validated purchase ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedPurchase {
    pub external_id: Option<String>,
    pub customer_ref: String,
    pub purchased_at: DateTime<Utc>,
    pub amount: f64,
    pub items: i32,
    pub party_size: i32,
    pub channel: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
#[graphql(name = "PurchaseIngestResult")]
pub struct PurchaseIngestResult {
    /// Rows received.
    pub received: u64,
    /// Rows stored now.
    pub inserted: u64,
    /// Rows whose `external_id` was already stored (or repeated in the batch).
    pub duplicates: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct PurchaseView {
    pub id: Uuid,
    pub external_id: Option<String>,
    pub customer_ref: String,
    pub purchased_at: DateTime<Utc>,
    pub amount: f64,
    pub items: i32,
    pub party_size: i32,
    pub channel: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<purchase::Model> for PurchaseView {
    fn from(m: purchase::Model) -> Self {
        Self {
            id: m.id,
            external_id: m.external_id,
            customer_ref: m.customer_ref,
            purchased_at: m.purchased_at,
            amount: m.amount,
            items: m.items,
            party_size: m.party_size,
            channel: m.channel,
            created_at: m.created_at,
        }
    }
}

/// Counts the purchase batches of a client: the data version of its JTBD
/// results.
pub const KIND_PURCHASES: &str = "client_purchases";

pub(crate) fn client_tz(c: &client::Model) -> Tz {
    // validated when the client is saved; UTC only for legacy rows
    c.timezone.parse::<Tz>().unwrap_or(Tz::UTC)
}

pub(crate) fn chunk_rows(backend: DbBackend) -> usize {
    // 11 bound values per row: PostgreSQL takes 65,535 per statement,
    // SQLite 32,766.
    match backend {
        DbBackend::Sqlite => 1_000,
        _ => 5_000,
    }
}

impl Services {
    pub async fn submit_purchase(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: PurchaseInput,
    ) -> AppResult<PurchaseIngestResult> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Ingest)?;
        let parsed = check_purchase(input).map_err(AppError::Validation)?;
        let a = Audit::new("purchase", "create", Some(client_id));
        self.store_purchases(ctx, a, None, client_id, vec![parsed])
            .await
    }

    pub async fn import_purchases(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        format: ImportFormat,
        body: bytes::Bytes,
    ) -> AppResult<PurchaseIngestResult> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Ingest)?;
        // Parsing a million rows is CPU work: keep it off the async executor.
        let parsed = tokio::task::spawn_blocking(move || match format {
            ImportFormat::Ndjson => parse_ndjson(&body),
            ImportFormat::Csv => parse_csv(&body),
        })
        .await
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("purchase import parser: {e}")))?;
        let rows = parsed.map_err(|sink| AppError::Validation(sink.errors))?;
        if rows.is_empty() {
            return Err(AppError::field("body", "no rows to import"));
        }
        let a = Audit::new("purchases", "import", Some(client_id));
        let event = ImportEvent {
            kind: crate::infra::metrics::ImportKind::Purchases,
            subject: ("client_id", client_id),
        };
        self.store_purchases(ctx, a, Some(event), client_id, rows)
            .await
    }

    /// Stores validated rows in one transaction. Rows with an external id
    /// are inserted in external-id order, so two racing imports of
    /// overlapping batches take the unique index's locks in the same order
    /// and the later one waits and skips instead of deadlocking.
    /// `audit`: one row for the request (its counts added here);
    /// `import`: an import's `import.finished`, written with the rows.
    async fn store_purchases(
        &self,
        ctx: &RequestCtx,
        audit: Audit,
        import: Option<ImportEvent>,
        client_id: Uuid,
        rows: Vec<ParsedPurchase>,
    ) -> AppResult<PurchaseIngestResult> {
        let agency_id = ctx.agency_id;
        let received = rows.len() as u64;
        let t = now();
        // Ids first, in input order: equal timestamps are ordered by id.
        let mut seen = HashSet::new();
        let mut models: Vec<purchase::ActiveModel> = rows
            .into_iter()
            .filter(|r| match &r.external_id {
                Some(e) => seen.insert(e.clone()),
                None => true,
            })
            .map(|r| purchase::ActiveModel {
                id: Set(new_id()),
                agency_id: Set(agency_id),
                client_id: Set(client_id),
                external_id: Set(r.external_id),
                customer_ref: Set(r.customer_ref),
                purchased_at: Set(r.purchased_at),
                amount: Set(r.amount),
                items: Set(r.items),
                party_size: Set(r.party_size),
                channel: Set(r.channel),
                created_at: Set(t),
            })
            .collect();
        drop(seen);
        models.sort_by(|a, b| a.external_id.as_ref().cmp(b.external_id.as_ref()));
        let txn = begin_write(&self.db).await?;
        let chunk = chunk_rows(txn.get_database_backend());
        let mut inserted = 0u64;
        let mut models = models.into_iter().peekable();
        while models.peek().is_some() {
            let batch: Vec<purchase::ActiveModel> = models.by_ref().take(chunk).collect();
            let res = purchase::Entity::insert_many(batch)
                .on_conflict(
                    OnConflict::columns([
                        purchase::Column::AgencyId,
                        purchase::Column::ClientId,
                        purchase::Column::ExternalId,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await;
            inserted += match res {
                Ok(n) => n,
                Err(DbErr::RecordNotInserted) => 0,
                Err(e) => return Err(e.into()),
            };
        }
        let mut wake_contacts = false;
        if inserted > 0 {
            crate::infra::ledger::bump_version(&txn, agency_id, KIND_PURCHASES, client_id).await?;
            // Purchases convert linked contacts and feed purchase rules.
            wake_contacts = crate::infra::ledger::bump_target(
                &txn,
                agency_id,
                crate::infra::ledger::KIND_CONTACTS,
                client_id,
            )
            .await?;
        }
        let counts = serde_json::json!({"received": received, "inserted": inserted});
        let deliveries = emit_import(&txn, agency_id, import, received).await?;
        audit::commit(txn, ctx, audit.with(counts)).await?;
        self.import_committed(agency_id, import, received, deliveries)
            .await;
        if wake_contacts {
            self.enqueue_recompute(crate::infra::queue::RecomputeJob {
                agency_id,
                kind: crate::infra::ledger::KIND_CONTACTS.into(),
                target_id: client_id,
            })
            .await;
        }
        tracing::info!(%agency_id, %client_id, received, inserted, "purchases stored");
        Ok(PurchaseIngestResult {
            received,
            inserted,
            duplicates: received - inserted,
        })
    }

    pub async fn list_purchases(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        page: PageParams,
    ) -> AppResult<Page<PurchaseView>> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let req = page.parse()?;
        let q = purchase::Entity::find()
            .filter(purchase::Column::AgencyId.eq(ctx.agency_id))
            .filter(purchase::Column::ClientId.eq(client_id));
        req.fetch(q, purchase::Column::Id, &self.db, PurchaseView::from)
            .await
    }

    /// A client's purchases before `cut`, oldest first, at local times of
    /// `tz`. PostgreSQL: one binary COPY, rows built as they arrive (a
    /// million purchases in about a second, see docs/performance.md).
    pub async fn purchases_before(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
        cut: Option<DateTime<Utc>>,
        tz: Tz,
    ) -> AppResult<Vec<Purchase>> {
        if self.db.get_database_backend() == DbBackend::Postgres {
            let before = cut
                .map(|c| format!(" AND purchased_at < '{}'", c.to_rfc3339()))
                .unwrap_or_default();
            // Unordered: PostgreSQL's sort of a million rows costs more than
            // sorting their keys here (the order is (purchased_at, id) as
            // the SQLite path's ORDER BY; uuids compare as big-endian bytes).
            let sql = format!(
                "COPY (SELECT purchased_at, id, customer_ref, amount, items, party_size, channel \
                 FROM purchases WHERE agency_id = '{agency_id}' AND client_id = '{client_id}'{before}) \
                 TO STDOUT (FORMAT binary)"
            );
            use crate::infra::pgcopy::{float8, int4, text, timestamptz_us};
            type Keyed = (Vec<(i64, u128)>, Vec<Purchase>);
            let (keys, rows): Keyed = crate::infra::pgcopy::copy_out(
                self.db.get_postgres_connection_pool(),
                sql,
                7,
                (Vec::new(), Vec::new()),
                move |(keys, out): &mut Keyed, f| {
                    let us = timestamptz_us(f[0])?;
                    let id: [u8; 16] = f[1]
                        .and_then(|b| b.try_into().ok())
                        .ok_or("id: expected a uuid")?;
                    let at =
                        DateTime::from_timestamp_micros(us).ok_or("purchased_at out of range")?;
                    keys.push((us, u128::from_be_bytes(id)));
                    out.push(Purchase {
                        customer_ref: text(f[2])?.unwrap_or_default().to_owned(),
                        at: at.with_timezone(&tz).naive_local(),
                        amount: float8(f[3])?,
                        items: u32::try_from(int4(f[4])?).unwrap_or(0),
                        party_size: u32::try_from(int4(f[5])?).unwrap_or(0),
                        channel: text(f[6])?.unwrap_or_default().to_owned(),
                    });
                    Ok(())
                },
            )
            .await?;
            return tokio::task::spawn_blocking(move || {
                let mut order: Vec<u32> = (0..keys.len() as u32).collect();
                order.sort_unstable_by_key(|&i| keys[i as usize]);
                let mut rows: Vec<Option<Purchase>> = rows.into_iter().map(Some).collect();
                order
                    .into_iter()
                    .filter_map(|i| rows[i as usize].take())
                    .collect()
            })
            .await
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("purchases: {e}")));
        }
        let mut q = purchase::Entity::find()
            .select_only()
            .columns([
                purchase::Column::CustomerRef,
                purchase::Column::PurchasedAt,
                purchase::Column::Amount,
                purchase::Column::Items,
                purchase::Column::PartySize,
                purchase::Column::Channel,
            ])
            .filter(purchase::Column::AgencyId.eq(agency_id))
            .filter(purchase::Column::ClientId.eq(client_id));
        if let Some(cut) = cut {
            q = q.filter(purchase::Column::PurchasedAt.lt(cut));
        }
        type Row = (String, DateTime<Utc>, f64, i32, i32, Option<String>);
        let rows: Vec<Row> = q
            .order_by_asc(purchase::Column::PurchasedAt)
            .order_by_asc(purchase::Column::Id)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(customer_ref, at, amount, items, party_size, channel)| Purchase {
                    customer_ref,
                    at: at.with_timezone(&tz).naive_local(),
                    amount,
                    items: u32::try_from(items).unwrap_or(0),
                    party_size: u32::try_from(party_size).unwrap_or(0),
                    channel: channel.unwrap_or_default(),
                },
            )
            .collect())
    }
}
crate::has_id!(PurchaseView);

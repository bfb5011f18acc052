//! The rescoring's bulk paths on PostgreSQL.
//!
//! - Read: two binary `COPY … TO STDOUT`s at once, the client's contacts
//!   and their current scores, sorted and merged by id here. PostgreSQL
//!   sends while blocking threads decode: the fold hands raw rows to
//!   decoders, one per core (attributes are `json`, so PostgreSQL sends
//!   their text as stored and the decode goes straight into attribute
//!   maps).
//! - Write: the scores in COPY's binary format, either every contact into
//!   a fresh set (then the set switched and the old one queued for the
//!   sweeper to purge), or the changed ones into a temporary table and
//!   upserted into the current set — in one transaction either way.
use analytics::funnel::Tier;
use uuid::Uuid;

use super::attrs::Attrs;
use super::rescore::{Written, use_set};
use super::score::{Row, ScoreCtx, Scored, Stored};
use crate::Services;
use crate::infra::error::{AppError, AppResult};
use crate::infra::pgcopy::{CopyOut, copy_out, float8, json, text, timestamptz};
use crate::infra::pgtx::PgTx;

fn uuid(f: Option<&[u8]>) -> Result<Uuid, String> {
    f.and_then(|b| Uuid::from_slice(b).ok())
        .ok_or_else(|| "uuid: expected 16 bytes".to_owned())
}

fn boolean(f: Option<&[u8]>) -> Option<bool> {
    f.and_then(|b| b.first()).map(|b| *b != 0)
}

/// The columns of the read, in order.
const COLUMNS: usize = 6;

/// One contact row of the COPY (its stored scores come from their own).
fn decode(f: &[Option<&[u8]>]) -> Result<Row, String> {
    Ok(Row {
        id: uuid(f[0])?,
        attributes: Attrs::Json(json(f[1])?.into()),
        converted: boolean(f[2]),
        customer_ref: text(f[3])?.map(str::to_owned),
        confirmed_at: f[4].map(|_| timestamptz(f[4])).transpose()?,
        email: text(f[5])?.unwrap_or_default().to_owned(),
        stored: None,
    })
}

/// Each row's stored scores, from the set's (both in id order).
fn with_scores(mut rows: Vec<Row>, scores: Vec<(Uuid, Stored)>) -> Vec<Row> {
    let mut scores = scores.into_iter().peekable();
    for r in &mut rows {
        while scores.next_if(|(id, _)| *id < r.id).is_some() {}
        if let Some((_, s)) = scores.next_if(|(id, _)| *id == r.id) {
            r.stored = Some(s);
        }
    }
    rows
}

/// Rows travel from the COPY's fold to the decoders in batches of this
/// many, as (field offsets, bytes) so the fold only copies.
const DECODE_BATCH: usize = 2_048;

/// A batch of raw rows: every row's fields as byte ranges into `bytes`.
#[derive(Default)]
struct RawRows {
    bytes: Vec<u8>,
    fields: Vec<Option<(u32, u32)>>,
}

impl RawRows {
    fn decode(&self) -> Result<Vec<Row>, String> {
        let mut out = Vec::with_capacity(self.fields.len() / COLUMNS);
        let mut f: Vec<Option<&[u8]>> = Vec::with_capacity(COLUMNS);
        for row in self.fields.chunks(COLUMNS) {
            f.clear();
            f.extend(
                row.iter()
                    .map(|r| r.map(|(a, b)| &self.bytes[a as usize..b as usize])),
            );
            out.push(decode(&f)?);
        }
        Ok(out)
    }
}

/// Scores streamed to a `COPY contact_scores` (or its temporary twin) in
/// COPY's binary format, a megabyte at a time.
struct ScoresOut {
    out: CopyOut,
    set: Uuid,
    agency_id: Uuid,
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
}

const SCORES_CHUNK: usize = 1 << 20;

const FRESH_COPY: &str = "COPY contact_scores (set_id, contact_id, agency_id, score, \
    probability, tier) FROM STDIN (FORMAT binary)";

impl ScoresOut {
    fn new(set: Uuid, agency_id: Uuid, tx: tokio::sync::mpsc::Sender<Vec<u8>>) -> Self {
        Self {
            out: CopyOut::with_header(SCORES_CHUNK + 256),
            set,
            agency_id,
            tx,
        }
    }

    /// Encodes `rows`; false when the COPY stopped taking chunks.
    fn put(&mut self, rows: &[Scored]) -> bool {
        for s in rows {
            let out = &mut self.out;
            out.row(6);
            out.field(self.set.as_bytes());
            out.field(s.id.as_bytes());
            out.field(self.agency_id.as_bytes());
            out.float8(Some(s.q.score));
            out.float8(s.q.probability);
            out.field(s.q.tier.name().as_bytes());
            if out.buf.len() >= SCORES_CHUNK {
                let full = std::mem::replace(&mut self.out, CopyOut::more(SCORES_CHUNK + 256));
                if self.tx.blocking_send(full.buf).is_err() {
                    return false;
                }
            }
        }
        true
    }

    fn finish(mut self) {
        self.out.trailer();
        let _ = self.tx.blocking_send(self.out.buf);
    }
}

impl Services {
    /// Every contact into a fresh set, scored (two batches at a time, on
    /// two cores) while PostgreSQL stores the batches before; then the set
    /// switched and the old one queued for purging, in one transaction. `sample`: the
    /// first `k` rows, already scored. Returns how many scores changed.
    pub(super) async fn write_fresh_pg(
        &self,
        w: &Written,
        ctx: std::sync::Arc<ScoreCtx>,
        sample: Vec<Scored>,
        mut rows: Vec<Row>,
        k: usize,
    ) -> AppResult<usize> {
        const BATCH: usize = 16_384;
        let set = crate::new_id();
        let txn = PgTx::begin(self.db.get_postgres_connection_pool()).await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
        let agency_id = w.agency_id;
        let encode = tokio::task::spawn_blocking(move || {
            let mut out = ScoresOut::new(set, agency_id, tx);
            let mut changed = sample.iter().filter(|s| s.changed).count();
            if !out.put(&sample) {
                return changed;
            }
            drop(sample);
            for pair in rows[k..].chunks_mut(2 * BATCH) {
                let (a, b) = pair.split_at_mut(pair.len().min(BATCH));
                let (sa, sb) = std::thread::scope(|s| {
                    let h = s.spawn(|| ctx.score(b));
                    let sa = ctx.score(a);
                    (
                        sa,
                        h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
                    )
                });
                changed += sa.iter().chain(&sb).filter(|s| s.changed).count();
                if !out.put(&sa) || !out.put(&sb) {
                    return changed;
                }
            }
            out.finish();
            changed
        });
        let copied = txn.copy_in(FRESH_COPY, rx).await;
        let changed = encode
            .await
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("rescoring encoder: {e}")))?;
        copied.map_err(sea_orm::DbErr::from)?;
        use_set(&txn, w, set).await?;
        txn.commit().await?;
        Ok(changed)
    }

    pub(super) async fn scoring_rows_pg(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
        set: Option<Uuid>,
    ) -> AppResult<Vec<Row>> {
        // Two COPYs at once, on two connections: the contacts, and the
        // current set's scores. Neither is ordered nor joined by
        // PostgreSQL (a join of a million rows cost a sort that spilled to
        // disk whenever the set's statistics were stale); both are sorted
        // by id here and merged. Id order is what the fit sums the labelled
        // rows in, so the same data gives bit-identical weights and no
        // contact looks changed when nothing changed.
        let (rows, scores) = tokio::try_join!(
            self.contact_rows_pg(agency_id, client_id),
            self.stored_scores_pg(set)
        )?;
        Ok(tokio::task::block_in_place(|| with_scores(rows, scores)))
    }

    /// The current set's scores, by contact id.
    async fn stored_scores_pg(&self, set: Option<Uuid>) -> AppResult<Vec<(Uuid, Stored)>> {
        let Some(set) = set else {
            return Ok(Vec::new());
        };
        // Only a uuid is formatted into the statement (COPY takes no
        // parameters).
        let sql = format!(
            "COPY (SELECT contact_id, score, probability, tier FROM contact_scores \
             WHERE set_id = '{set}') TO STDOUT (FORMAT binary)"
        );
        let mut scores = copy_out(
            self.db.get_postgres_connection_pool(),
            sql,
            4,
            Vec::new(),
            |v: &mut Vec<(Uuid, Stored)>, f| {
                v.push((
                    uuid(f[0])?,
                    Stored {
                        score: float8(f[1])?,
                        probability: f[2].map(|_| float8(f[2])).transpose()?,
                        tier: text(f[3])?.and_then(Tier::parse).unwrap_or(Tier::Cold),
                    },
                ));
                Ok(())
            },
        )
        .await?;
        tokio::task::block_in_place(|| scores.sort_unstable_by_key(|(id, _)| *id));
        Ok(scores)
    }

    /// The client's contacts, decoded on every core, in id order.
    async fn contact_rows_pg(&self, agency_id: Uuid, client_id: Uuid) -> AppResult<Vec<Row>> {
        // Only uuids are formatted into the statement.
        let sql = format!(
            "COPY (SELECT id, attributes, converted, customer_ref, confirmed_at, email \
             FROM contacts WHERE agency_id = '{agency_id}' AND client_id = '{client_id}') \
             TO STDOUT (FORMAT binary)"
        );
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        // Decoders take batches from the fold and return them numbered, so
        // the rows come back in id order.
        let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<(usize, RawRows)>(threads * 2);
        let work_rx = std::sync::Arc::new(std::sync::Mutex::new(work_rx));
        let decoders: Vec<_> = (0..threads)
            .map(|_| {
                let rx = work_rx.clone();
                tokio::task::spawn_blocking(move || {
                    let mut done: Vec<(usize, Vec<Row>)> = Vec::new();
                    loop {
                        let next = rx.lock().map_err(|_| "decoder poisoned".to_owned())?.recv();
                        let Ok((n, raw)) = next else { break };
                        done.push((n, raw.decode()?));
                    }
                    Ok::<_, String>(done)
                })
            })
            .collect();
        struct Fold {
            batch: RawRows,
            n: usize,
            tx: std::sync::mpsc::SyncSender<(usize, RawRows)>,
        }
        let fold = Fold {
            batch: RawRows::default(),
            n: 0,
            tx: work_tx,
        };
        let read = copy_out(
            self.db.get_postgres_connection_pool(),
            sql,
            COLUMNS,
            fold,
            |s: &mut Fold, f| {
                for field in f {
                    s.batch.fields.push(field.map(|b| {
                        let a = s.batch.bytes.len();
                        s.batch.bytes.extend_from_slice(b);
                        (a as u32, s.batch.bytes.len() as u32)
                    }));
                }
                if s.batch.fields.len() >= DECODE_BATCH * COLUMNS {
                    let full = std::mem::take(&mut s.batch);
                    s.tx.send((s.n, full))
                        .map_err(|_| "decoders stopped".to_owned())?;
                    s.n += 1;
                }
                Ok(())
            },
        )
        .await;
        // The last batch, then the decoders see the channel close.
        let read = read.and_then(|s| {
            if !s.batch.fields.is_empty() {
                s.tx.send((s.n, s.batch))
                    .map_err(|_| AppError::Unexpected(anyhow::anyhow!("decoders stopped")))?;
            }
            Ok(())
        });
        let mut parts = Vec::new();
        let mut failed = None;
        for d in decoders {
            match d.await {
                Ok(Ok(done)) => parts.extend(done),
                Ok(Err(e)) => failed = Some(e),
                Err(e) => failed = Some(e.to_string()),
            }
        }
        read?;
        if let Some(e) = failed {
            return Err(AppError::Unexpected(anyhow::anyhow!("bulk read: {e}")));
        }
        parts.sort_unstable_by_key(|(n, _)| *n);
        let mut rows = Vec::with_capacity(parts.iter().map(|(_, r)| r.len()).sum());
        for (_, part) in parts {
            rows.extend(part);
        }
        // Contacts mostly lie in id order already (ids are UUID v7, time
        // first): the stable sort finds the runs and is near linear then.
        tokio::task::block_in_place(|| rows.sort_by_key(|r| r.id));
        Ok(rows)
    }

    pub(super) async fn write_scores_pg(&self, w: &Written, scored: Vec<Scored>) -> AppResult<()> {
        let fresh_set = match (w.fresh, w.set) {
            (false, Some(_)) => None,
            _ => Some(crate::new_id()),
        };
        if fresh_set.is_none() && !scored.iter().any(|s| s.changed) {
            // Nothing changed: nothing is written (`scored_at` stays when
            // the scores were last written).
            return Ok(());
        }
        let txn = PgTx::begin(self.db.get_postgres_connection_pool()).await?;
        let copy_sql = if fresh_set.is_some() {
            FRESH_COPY
        } else {
            sea_orm::ConnectionTrait::execute_unprepared(
                &txn,
                "CREATE TEMP TABLE rescored (set_id uuid, contact_id uuid, agency_id uuid, \
                 score float8, probability float8, tier text) ON COMMIT DROP",
            )
            .await?;
            "COPY rescored FROM STDIN (FORMAT binary)"
        };
        let set = fresh_set.or(w.set).unwrap_or_default();
        let (agency_id, fresh) = (w.agency_id, fresh_set.is_some());
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
        let encode = tokio::task::spawn_blocking(move || {
            let mut out = ScoresOut::new(set, agency_id, tx);
            let rows: Vec<Scored> = scored.into_iter().filter(|s| fresh || s.changed).collect();
            if out.put(&rows) {
                out.finish();
            }
        });
        let copied = txn.copy_in(copy_sql, rx).await;
        encode
            .await
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("rescoring encoder: {e}")))?;
        copied.map_err(sea_orm::DbErr::from)?;
        if !fresh {
            sea_orm::ConnectionTrait::execute_unprepared(
                &txn,
                "INSERT INTO contact_scores (set_id, contact_id, agency_id, score, probability, tier) \
                 SELECT set_id, contact_id, agency_id, score, probability, tier FROM rescored \
                 ON CONFLICT (set_id, contact_id) DO UPDATE SET score = EXCLUDED.score, \
                 probability = EXCLUDED.probability, tier = EXCLUDED.tier",
            )
            .await?;
        }
        use_set(&txn, w, set).await?;
        txn.commit().await?;
        Ok(())
    }
}

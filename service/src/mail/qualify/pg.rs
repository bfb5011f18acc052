//! The rescoring's bulk paths on PostgreSQL: the client's contacts read by
//! one binary `COPY … TO STDOUT` (decoded on a blocking thread while
//! PostgreSQL sends the next rows), and the changed qualifications written
//! by one `COPY` into a temporary table and one `UPDATE … FROM` it, in one
//! transaction — instead of a query per page and a statement per 500 rows.
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::rescore::{Row, Scored, attr_values};
use crate::Services;
use crate::infra::error::{AppError, AppResult};
use crate::infra::pgcopy::{copy_out, float8, json, text, timestamptz};
use crate::infra::pgtx::PgTx;

fn uuid(f: Option<&[u8]>) -> Result<Uuid, String> {
    f.and_then(|b| Uuid::from_slice(b).ok())
        .ok_or_else(|| "uuid: expected 16 bytes".to_owned())
}

fn boolean(f: Option<&[u8]>) -> Option<bool> {
    f.and_then(|b| b.first()).map(|b| *b != 0)
}

/// One contact row of the COPY.
fn decode(f: &[Option<&[u8]>]) -> Result<Row, String> {
    let attributes: serde_json::Value =
        serde_json::from_slice(json(f[1])?).map_err(|e| format!("attributes: {e}"))?;
    let explanation = match f[9] {
        None => None,
        Some(_) => {
            Some(serde_json::from_slice(json(f[9])?).map_err(|e| format!("explanation: {e}"))?)
        }
    };
    Ok(Row {
        id: uuid(f[0])?,
        attributes: attr_values(&attributes),
        converted: boolean(f[2]),
        customer_ref: text(f[3])?.map(str::to_owned),
        confirmed_at: f[4].map(|_| timestamptz(f[4])).transpose()?,
        email: text(f[5])?.unwrap_or_default().to_owned(),
        stored: (
            float8(f[6])?,
            f[7].map(|_| float8(f[7])).transpose()?,
            text(f[8])?.unwrap_or_default().to_owned(),
            explanation,
        ),
    })
}

/// A value for COPY's text format: backslash, tab and line breaks escaped.
fn copy_text(s: &str, out: &mut String) {
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

impl Services {
    pub(super) async fn scoring_rows_pg(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
    ) -> AppResult<Vec<Row>> {
        // Only uuids are formatted into the statement (COPY takes no
        // parameters). In id order, like the SQLite path: the fit sums the
        // labelled rows in that order, so the same data gives bit-identical
        // weights and no contact looks changed when nothing changed.
        let sql = format!(
            "COPY (SELECT id, attributes, converted, customer_ref, confirmed_at, email, score, \
             probability, tier, explanation FROM contacts \
             WHERE agency_id = '{agency_id}' AND client_id = '{client_id}' ORDER BY id) \
             TO STDOUT (FORMAT binary)"
        );
        copy_out(
            self.db.get_postgres_connection_pool(),
            sql,
            10,
            Vec::new(),
            |rows: &mut Vec<Row>, f| {
                rows.push(decode(f)?);
                Ok(())
            },
        )
        .await
    }

    pub(super) async fn write_scores_pg(
        &self,
        agency_id: Uuid,
        changed: Vec<Scored>,
        t: DateTime<Utc>,
    ) -> AppResult<()> {
        if changed.is_empty() {
            return Ok(());
        }
        let txn = PgTx::begin(self.db.get_postgres_connection_pool()).await?;
        sea_orm::ConnectionTrait::execute_unprepared(
            &txn,
            "CREATE TEMP TABLE rescored (id uuid, score float8, probability float8, \
             tier text, explanation jsonb) ON COMMIT DROP",
        )
        .await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
        let encode = tokio::task::spawn_blocking(move || {
            let mut buf = String::with_capacity(1 << 20);
            for s in changed {
                buf.push_str(&s.id.to_string());
                buf.push('\t');
                buf.push_str(&format!("{:?}", s.score));
                buf.push('\t');
                match s.probability {
                    Some(p) => buf.push_str(&format!("{p:?}")),
                    None => buf.push_str("\\N"),
                }
                buf.push('\t');
                copy_text(&s.tier, &mut buf);
                buf.push('\t');
                copy_text(&s.explanation.to_string(), &mut buf);
                buf.push('\n');
                if buf.len() >= 1 << 20 {
                    let full = std::mem::replace(&mut buf, String::with_capacity(1 << 20));
                    if tx.blocking_send(full.into_bytes()).is_err() {
                        return;
                    }
                }
            }
            if !buf.is_empty() {
                let _ = tx.blocking_send(buf.into_bytes());
            }
        });
        let copied = txn
            .copy_in("COPY rescored FROM STDIN (FORMAT text)", rx)
            .await;
        encode
            .await
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("rescoring encoder: {e}")))?;
        copied.map_err(sea_orm::DbErr::from)?;
        let update = sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "UPDATE contacts c SET score = r.score, probability = r.probability, tier = r.tier, \
             explanation = r.explanation, scored_at = $2 \
             FROM rescored r WHERE c.id = r.id AND c.agency_id = $1",
            [agency_id.into(), t.into()],
        );
        sea_orm::ConnectionTrait::execute_raw(&txn, update).await?;
        txn.commit().await?;
        Ok(())
    }
}

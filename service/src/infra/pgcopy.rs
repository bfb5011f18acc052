//! Bulk reads from PostgreSQL by `COPY (SELECT …) TO STDOUT (FORMAT
//! binary)`: rows arrive as length-prefixed fields with no per-row protocol
//! or type-decoding work in sqlx, and are handed to a blocking thread that
//! folds them into whatever the caller builds, while PostgreSQL produces
//! the next ones. Used where a million rows are read at once (the panel's
//! full recompute, JTBD maps).
use chrono::{DateTime, Utc};
use sea_orm::sqlx;

use crate::infra::error::{AppError, AppResult};

/// Streams the rows of `sql` (a binary `COPY … TO STDOUT`, which takes no
/// parameters: the caller formats only uuids and numbers into it) through
/// `each`, called on a blocking thread with every row's `columns` fields
/// (None = NULL) and the caller's `state`, which is returned at the end.
pub async fn copy_out<S, F>(
    pool: &sqlx::PgPool,
    sql: String,
    columns: usize,
    state: S,
    mut each: F,
) -> AppResult<S>
where
    S: Send + 'static,
    F: FnMut(&mut S, &[Option<&[u8]>]) -> Result<(), String> + Send + 'static,
{
    use futures::TryStreamExt;
    let fail = |e: sqlx::Error| AppError::Unexpected(anyhow::Error::new(e).context("bulk read"));
    // PostgreSQL sends one message per row: rows travel to the fold in
    // batches, or a million channel hand-offs cost more than the decoding.
    const BATCH_BYTES: usize = 256 * 1024;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
    let fold = tokio::task::spawn_blocking(move || {
        let mut state = state;
        let mut rows = CopyRows::new(columns);
        while let Some(chunk) = rx.blocking_recv() {
            rows.feed(&chunk, |fields| each(&mut state, fields))?;
        }
        rows.finish()?;
        Ok::<S, String>(state)
    });
    let read = async {
        let mut conn = pool.acquire().await.map_err(fail)?;
        let mut stream = conn.copy_out_raw(&sql).await.map_err(fail)?;
        let mut batch = Vec::with_capacity(BATCH_BYTES * 2);
        while let Some(chunk) = stream.try_next().await.map_err(fail)? {
            batch.extend_from_slice(&chunk);
            if batch.len() >= BATCH_BYTES {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_BYTES * 2));
                if tx.send(full).await.is_err() {
                    // The fold stopped; its error is reported below.
                    return Ok(());
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(batch).await;
        }
        Ok::<(), AppError>(())
    }
    .await;
    drop(tx);
    let folded = fold
        .await
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("bulk read: {e}")))?;
    read?;
    folded.map_err(|e| AppError::Unexpected(anyhow::anyhow!("bulk read: {e}")))
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

fn be_i16(b: &[u8]) -> i16 {
    i16::from_be_bytes([b[0], b[1]])
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn fixed<const N: usize>(f: Option<&[u8]>, what: &str) -> Result<[u8; N], String> {
    f.and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{what}: expected {N} bytes"))
}

/// A `timestamptz` field as microseconds since the Unix epoch.
pub fn timestamptz_us(f: Option<&[u8]>) -> Result<i64, String> {
    Ok(i64::from_be_bytes(fixed::<8>(f, "timestamptz")?) + PG_EPOCH_US)
}

pub fn timestamptz(f: Option<&[u8]>) -> Result<DateTime<Utc>, String> {
    let us = timestamptz_us(f)?;
    DateTime::from_timestamp_micros(us).ok_or_else(|| format!("timestamptz {us} out of range"))
}

/// A `json` field's text, or a `jsonb` field's (after its version byte 1,
/// which no JSON text starts with).
pub fn json(f: Option<&[u8]>) -> Result<&[u8], String> {
    match f {
        Some([1, text @ ..]) => Ok(text),
        Some(text) => Ok(text),
        None => Err("json: NULL".into()),
    }
}

pub fn text(f: Option<&[u8]>) -> Result<Option<&str>, String> {
    f.map(|b| std::str::from_utf8(b).map_err(|e| format!("text: {e}")))
        .transpose()
}

pub fn float8(f: Option<&[u8]>) -> Result<f64, String> {
    Ok(f64::from_be_bytes(fixed::<8>(f, "float8")?))
}

pub fn int4(f: Option<&[u8]>) -> Result<i32, String> {
    Ok(i32::from_be_bytes(fixed::<4>(f, "int4")?))
}

/// Splits a binary COPY stream into rows, whatever the chunk boundaries.
pub struct CopyRows {
    columns: usize,
    /// Bytes of an incomplete row (or header) carried to the next chunk.
    pending: Vec<u8>,
    header_seen: bool,
    finished: bool,
    fields: Vec<Option<(usize, usize)>>,
}

impl CopyRows {
    pub fn new(columns: usize) -> Self {
        Self {
            columns,
            pending: Vec::new(),
            header_seen: false,
            finished: false,
            fields: Vec::with_capacity(columns),
        }
    }

    /// Calls `row` with the fields of every complete row in `chunk` (plus
    /// what earlier chunks left over).
    pub fn feed(
        &mut self,
        chunk: &[u8],
        mut row: impl FnMut(&[Option<&[u8]>]) -> Result<(), String>,
    ) -> Result<(), String> {
        if self.pending.is_empty() {
            let used = self.parse(chunk, &mut row)?;
            self.pending.extend_from_slice(&chunk[used..]);
        } else {
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(chunk);
            let used = self.parse(&buf, &mut row)?;
            buf.drain(..used);
            self.pending = buf;
        }
        Ok(())
    }

    /// Whether the trailer arrived and nothing is left over.
    pub fn finish(&self) -> Result<(), String> {
        if self.finished && self.pending.is_empty() {
            Ok(())
        } else {
            Err("the COPY output ended in the middle of a row".into())
        }
    }

    /// Parses complete rows from the start of `buf`; returns the bytes used.
    fn parse(
        &mut self,
        buf: &[u8],
        row: &mut impl FnMut(&[Option<&[u8]>]) -> Result<(), String>,
    ) -> Result<usize, String> {
        let mut at = 0;
        if !self.header_seen {
            // Signature, flags, header extension length, extension.
            if buf.len() < SIGNATURE.len() + 8 {
                return Ok(0);
            }
            if &buf[..SIGNATURE.len()] != SIGNATURE {
                return Err("not a binary COPY stream".into());
            }
            let ext = be_i32(&buf[SIGNATURE.len() + 4..]).max(0) as usize;
            let end = SIGNATURE.len() + 8 + ext;
            if buf.len() < end {
                return Ok(0);
            }
            at = end;
            self.header_seen = true;
        }
        let mut values: Vec<Option<&[u8]>> = Vec::with_capacity(self.columns);
        loop {
            let rest = &buf[at..];
            if rest.len() < 2 {
                return Ok(at);
            }
            if self.finished {
                return Err("data after the end of the COPY output".into());
            }
            let count = be_i16(rest);
            if count == -1 {
                self.finished = true;
                at += 2;
                continue;
            }
            if count as usize != self.columns {
                return Err(format!("expected {} columns, got {count}", self.columns));
            }
            // Locate every field before handing out the row.
            self.fields.clear();
            let mut pos = 2;
            for _ in 0..self.columns {
                if rest.len() < pos + 4 {
                    return Ok(at);
                }
                let len = be_i32(&rest[pos..]);
                pos += 4;
                if len < 0 {
                    self.fields.push(None);
                    continue;
                }
                let len = len as usize;
                if rest.len() < pos + len {
                    return Ok(at);
                }
                self.fields.push(Some((pos, len)));
                pos += len;
            }
            values.clear();
            values.extend(self.fields.iter().map(|f| f.map(|(p, l)| &rest[p..p + l])));
            row(&values)?;
            at += pos;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary COPY stream of rows of (timestamptz, jsonb, text or NULL),
    /// as PostgreSQL writes it.
    fn stream(rows: &[(i64, &str, Option<&str>)]) -> Vec<u8> {
        let mut b = SIGNATURE.to_vec();
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        for (us, json, t) in rows {
            b.extend_from_slice(&3i16.to_be_bytes());
            b.extend_from_slice(&8i32.to_be_bytes());
            b.extend_from_slice(&(us - PG_EPOCH_US).to_be_bytes());
            b.extend_from_slice(&(json.len() as i32 + 1).to_be_bytes());
            b.push(1);
            b.extend_from_slice(json.as_bytes());
            match t {
                Some(t) => {
                    b.extend_from_slice(&(t.len() as i32).to_be_bytes());
                    b.extend_from_slice(t.as_bytes());
                }
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        b.extend_from_slice(&(-1i16).to_be_bytes());
        b
    }

    type Got = (i64, String, Option<String>);

    fn read(rows: &mut CopyRows, chunk: &[u8], got: &mut Vec<Got>) -> Result<(), String> {
        rows.feed(chunk, |f| {
            got.push((
                timestamptz_us(f[0])?,
                String::from_utf8(json(f[1])?.to_vec()).map_err(|e| e.to_string())?,
                text(f[2])?.map(str::to_owned),
            ));
            Ok(())
        })
    }

    #[test]
    fn rows_come_out_whole_whatever_the_chunk_size() {
        let rows = [
            (1_700_000_000_123_456, r#"{"a":1}"#, Some("тест")),
            (-1_500, r#"{"b":"x"}"#, None),
            (0, "{}", Some("")),
        ];
        let bytes = stream(&rows);
        let want: Vec<Got> = rows
            .iter()
            .map(|(us, j, t)| (*us, j.to_string(), t.map(str::to_owned)))
            .collect();
        for size in [1, 2, 3, 7, 19, 64, bytes.len()] {
            let mut parser = CopyRows::new(3);
            let mut got = Vec::new();
            for chunk in bytes.chunks(size) {
                read(&mut parser, chunk, &mut got).unwrap();
            }
            parser.finish().unwrap();
            assert_eq!(got, want, "chunks of {size}");
        }
    }

    #[test]
    fn truncated_or_foreign_streams_are_errors() {
        let bytes = stream(&[(0, "{}", None)]);
        let mut parser = CopyRows::new(3);
        read(&mut parser, &bytes[..bytes.len() - 3], &mut Vec::new()).unwrap();
        assert!(parser.finish().is_err());
        let mut parser = CopyRows::new(2);
        assert!(read(&mut parser, &bytes, &mut Vec::new()).is_err());
        let mut parser = CopyRows::new(3);
        assert!(
            read(
                &mut parser,
                b"PGCOPX\n\xff\r\n\0\0\0\0\0\0\0\0\0",
                &mut Vec::new()
            )
            .is_err()
        );
    }

    #[test]
    fn json_and_jsonb_fields_give_the_same_text() {
        assert_eq!(json(Some(b"{\"a\":1}")).unwrap(), b"{\"a\":1}");
        assert_eq!(json(Some(b"\x01{\"a\":1}")).unwrap(), b"{\"a\":1}");
        assert!(json(None).is_err());
    }

    #[test]
    fn times_before_2000_and_1970_convert_exactly() {
        let us = -86_400_000_001i64;
        let f = (us - PG_EPOCH_US).to_be_bytes();
        assert_eq!(timestamptz_us(Some(&f)).unwrap(), us);
        assert_eq!(
            timestamptz(Some(&f)).unwrap(),
            DateTime::from_timestamp_micros(us).unwrap()
        );
        assert!(timestamptz(Some(&[0; 4])).is_err());
    }
}

/// Rows written in COPY's binary format (`COPY … FROM STDIN (FORMAT
/// binary)`): the header, then per row its field count and each field as
/// its byte length and its binary value (`-1` for NULL), then the trailer.
pub struct CopyOut {
    pub buf: Vec<u8>,
}

impl CopyOut {
    /// A buffer that starts with the header.
    pub fn with_header(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity);
        buf.extend_from_slice(SIGNATURE);
        buf.extend_from_slice(&[0; 8]);
        Self { buf }
    }

    /// A buffer for the rows that follow an earlier one.
    pub fn more(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    pub fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    pub fn field(&mut self, value: &[u8]) {
        // A field of ours is far below 2 GiB.
        self.buf
            .extend_from_slice(&(value.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(value);
    }

    pub fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    pub fn float8(&mut self, v: Option<f64>) {
        match v {
            Some(v) => self.field(&v.to_be_bytes()),
            None => self.null(),
        }
    }

    /// The end of the stream.
    pub fn trailer(&mut self) {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
    }
}

#[cfg(test)]
mod copy_out_tests {
    use super::*;

    #[test]
    fn rows_written_read_back() {
        let mut out = CopyOut::with_header(64);
        out.row(3);
        out.field(b"abc");
        out.null();
        out.float8(Some(1.5));
        out.trailer();
        let mut got = Vec::new();
        let mut rows = CopyRows::new(3);
        rows.feed(&out.buf, |f| {
            got.push((
                text(f[0])?.map(str::to_owned),
                f[1].is_none(),
                float8(f[2])?,
            ));
            Ok(())
        })
        .unwrap();
        rows.finish().unwrap();
        assert_eq!(got, vec![(Some("abc".to_owned()), true, 1.5)]);
    }
}

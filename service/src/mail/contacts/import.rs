//! Contacts in bulk: NDJSON (one [`ContactInput`] per line) or CSV (the
//! fixed columns below, every other column an attribute), every row
//! validated before any is stored, errors naming row and field; an upsert
//! by e-mail, so a re-import changes nothing.
use uuid::Uuid;

use super::write::{ContactIngestResult, ContactInput, ParsedContact, check_contact};
use crate::domain::attributes::{Attributes, MAX_KEYS};
use crate::domain::import::{ErrorSink, MAX_IMPORT_ROWS, ndjson_rows};
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::platform::clients::find_client;
use crate::research::responses::ImportFormat;
use crate::{Perm, RequestCtx, Services};

/// The CSV columns that are not attributes; `email` is required.
pub const CONTACT_COLUMNS: [&str; 9] = [
    "email",
    "name",
    "locale",
    "source_channel",
    "funnel",
    "customer_ref",
    "converted",
    "converted_at",
    "conversion_value",
];

/// NDJSON: one contact object per line; blank lines are skipped.
pub fn parse_contacts_ndjson(body: &[u8]) -> Result<Vec<ParsedContact>, ErrorSink> {
    ndjson_rows(body, MAX_IMPORT_ROWS, check_contact)
}

/// One CSV record as a [`ContactInput`], cell errors named.
fn csv_row(
    fixed: &[Option<&str>; 9],
    attrs: Vec<(&str, &str)>,
) -> Result<ContactInput, Vec<FieldError>> {
    let mut errs = Vec::new();
    let s = |k: usize| fixed[k].map(str::to_owned);
    let funnel = fixed[4].and_then(|f| {
        analytics::funnel::FunnelType::parse(f).or_else(|| {
            errs.push(FieldError::new(
                "funnel",
                "must be reach, warming or reverse",
            ));
            None
        })
    });
    let converted = fixed[6].and_then(|c| match c.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => {
            errs.push(FieldError::new("converted", "must be true or false"));
            None
        }
    });
    let converted_at = fixed[7].and_then(|c| {
        chrono::DateTime::parse_from_rfc3339(c)
            .map(|d| d.with_timezone(&chrono::Utc))
            .map_err(|_| errs.push(FieldError::new("converted_at", "must be RFC 3339")))
            .ok()
    });
    let conversion_value = fixed[8].and_then(|c| {
        c.parse::<f64>()
            .map_err(|_| errs.push(FieldError::new("conversion_value", "is not a number")))
            .ok()
    });
    let attributes = (!attrs.is_empty()).then(|| {
        serde_json::Value::Object(
            attrs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Attributes::cell(v)))
                .collect(),
        )
    });
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(ContactInput {
        email: s(0).unwrap_or_default(),
        name: s(1),
        locale: s(2),
        source_channel: s(3),
        funnel,
        attributes,
        customer_ref: s(5),
        converted,
        converted_at,
        conversion_value,
    })
}

/// CSV with a header; the columns of [`CONTACT_COLUMNS`] in any order, any
/// other column an attribute (a number, a `;`-separated list or a string;
/// an empty cell is left out).
pub fn parse_contacts_csv(body: &[u8]) -> Result<Vec<ParsedContact>, ErrorSink> {
    let mut sink = ErrorSink::default();
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(body);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            sink.push(FieldError::new("header", format!("unreadable CSV: {e}")).at_row(0));
            return Err(sink);
        }
    };
    let mut fixed_at = [None; 9];
    let mut extra = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let h = h.trim();
        match CONTACT_COLUMNS.iter().position(|c| *c == h) {
            Some(k) if fixed_at[k].is_some() => {
                sink.push(FieldError::new(h, "column appears twice in the header").at_row(0))
            }
            Some(k) => fixed_at[k] = Some(i),
            None if crate::domain::questions::valid_key(h) => {
                if extra.iter().any(|(_, e)| e == h) {
                    sink.push(FieldError::new(h, "column appears twice in the header").at_row(0));
                }
                extra.push((i, h.to_owned()));
            }
            None => sink.push(
                FieldError::new(
                    "header",
                    format!(
                        "column '{h}': attribute names are lower-case letters, digits and _, starting with a letter"
                    ),
                )
                .at_row(0),
            ),
        }
    }
    if fixed_at[0].is_none() {
        sink.push(FieldError::new("email", "the header lacks this column").at_row(0));
    }
    if extra.len() > MAX_KEYS {
        sink.push(
            FieldError::new("header", format!("at most {MAX_KEYS} attribute columns")).at_row(0),
        );
    }
    if sink.total > 0 {
        return Err(sink);
    }
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut row = 0usize;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                sink.push(FieldError::new("row", format!("malformed CSV: {e}")).at_row(row + 1));
                break;
            }
        }
        row += 1;
        if row > MAX_IMPORT_ROWS {
            sink.push(
                FieldError::new("body", format!("at most {MAX_IMPORT_ROWS} rows per import"))
                    .at_row(row),
            );
            break;
        }
        let cell = |i: usize| record.get(i).map(str::trim).filter(|c| !c.is_empty());
        let fixed: [Option<&str>; 9] = std::array::from_fn(|k| fixed_at[k].and_then(cell));
        let attrs: Vec<(&str, &str)> = extra
            .iter()
            .filter_map(|(i, h)| Some((h.as_str(), cell(*i)?)))
            .collect();
        match csv_row(&fixed, attrs).and_then(check_contact) {
            Ok(p) => out.push(p),
            Err(errs) => sink.extend(row, errs),
        }
    }
    if sink.total == 0 { Ok(out) } else { Err(sink) }
}

impl Services {
    /// Imports contacts (NDJSON or CSV, up to 100,000 rows); all or nothing.
    pub async fn import_contacts(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        format: ImportFormat,
        body: bytes::Bytes,
    ) -> AppResult<ContactIngestResult> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Ingest)?;
        let parsed = tokio::task::spawn_blocking(move || match format {
            ImportFormat::Ndjson => parse_contacts_ndjson(&body),
            ImportFormat::Csv => parse_contacts_csv(&body),
        })
        .await
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("contacts parser: {e}")))?;
        let rows = parsed.map_err(|sink| AppError::Validation(sink.errors))?;
        if rows.is_empty() {
            return Err(AppError::field("body", "no rows to import"));
        }
        let a = crate::infra::audit::Audit::new("contacts", "import", Some(client_id));
        let event = crate::infra::webhooks::ImportEvent {
            kind: crate::infra::metrics::ImportKind::Contacts,
            subject: ("client_id", client_id),
        };
        let (res, _) = self
            .store_contacts(ctx, a, Some(event), client_id, rows)
            .await?;
        tracing::info!(agency_id = %ctx.agency_id, %client_id, received = res.received,
            created = res.created, updated = res.updated, "contacts imported");
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_columns_and_attributes() {
        let body = b"email,city,converted,conversion_value,funnel\nA@x.io,msk,true,12.5,warming\nb@x.io,,false,,\n";
        let rows = parse_contacts_csv(body).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].email, "a@x.io");
        assert_eq!(rows[0].outcome, Some((true, None, Some(12.5))));
        assert_eq!(rows[0].funnel, Some(analytics::funnel::FunnelType::Warming));
        assert_eq!(
            rows[0].attributes.as_ref().unwrap().get("city"),
            Some(&serde_json::json!("msk"))
        );
        assert_eq!(rows[1].outcome, Some((false, None, None)));
        assert!(rows[1].attributes.is_none());
    }

    #[test]
    fn csv_errors_name_row_and_field() {
        let err = parse_contacts_csv(b"email,converted\nnot-an-email,maybe\n").unwrap_err();
        let got: Vec<_> = err
            .errors
            .iter()
            .map(|e| (e.row, e.field.as_str()))
            .collect();
        assert!(got.contains(&(Some(1), "converted")), "{got:?}");
        let err = parse_contacts_csv(b"name\nx\n").unwrap_err();
        assert_eq!(err.errors[0].field, "email");
        let err = parse_contacts_csv(b"email,Bad Col\na@x.io,1\n").unwrap_err();
        assert_eq!(err.errors[0].field, "header");
    }

    #[test]
    fn ndjson_rejects_unknown_fields() {
        let err = parse_contacts_ndjson(b"{\"email\":\"a@x.io\",\"bogus\":1}\n").unwrap_err();
        assert_eq!(err.errors[0].row, Some(1));
        let ok = parse_contacts_ndjson(b"{\"email\":\"a@x.io\",\"attributes\":{\"age\":31}}\n\n")
            .unwrap();
        assert_eq!(ok.len(), 1);
    }
}

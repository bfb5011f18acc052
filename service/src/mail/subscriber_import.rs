//! Subscriber import from CSV: consent carried over, attributes from the
//! other columns, all-or-nothing.
use chrono::{DateTime, Utc};
use entity::subscriber;
use sea_orm::{EntityTrait, Set};
use uuid::Uuid;

use crate::domain::answers::valid_email;
use crate::domain::attributes::Attributes;
use crate::infra::audit::{self, Audit};
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::metrics::ImportKind;
use crate::infra::webhooks::{ImportEvent, emit_import};
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services, new_id, now};

use crate::mail::lists::find_list;

/// The columns of a subscriber import that are not attributes.
const RESERVED_COLUMNS: [&str; 5] = ["email", "name", "locale", "consent_at", "consent_source"];

fn iloc(rec: &csv::StringRecord, i: Option<usize>) -> Option<String> {
    i.and_then(|i| rec.get(i))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

impl Services {
    /// Imports existing subscribers (CSV header `email,name,locale,consent_at,consent_source`)
    /// as active, with the consent they gave elsewhere; every other column
    /// is an attribute (a number, a `;`-separated list or a string; empty
    /// cells are left out). All or nothing.
    pub async fn import_subscribers(
        &self,
        ctx: &RequestCtx,
        list_id: Uuid,
        csv_body: &[u8],
    ) -> AppResult<crate::research::responses::IngestResult> {
        let list = find_list(&self.db, ctx.agency_id, list_id).await?;
        ctx.require(Perm::ManageClients)?;
        let client_locale = find_client(&self.db, ctx.agency_id, list.client_id)
            .await?
            .locale;
        let mut reader = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(csv_body);
        let headers = reader
            .headers()
            .map_err(|e| AppError::field("header", format!("unreadable CSV: {e}")))?
            .clone();
        let col = |name: &str| headers.iter().position(|h| h.trim() == name);
        let (Some(ie), Some(is)) = (col("email"), col("consent_source")) else {
            return Err(AppError::field(
                "header",
                "needs the columns email and consent_source",
            ));
        };
        let (iname, ilocale, iat) = (col("name"), col("locale"), col("consent_at"));
        let mut errs = Vec::new();
        let extra: Vec<(usize, String)> = headers
            .iter()
            .enumerate()
            .map(|(i, h)| (i, h.trim().to_owned()))
            .filter(|(_, h)| !RESERVED_COLUMNS.contains(&h.as_str()))
            .collect();
        for (_, h) in &extra {
            if !crate::domain::questions::valid_key(h) {
                errs.push(FieldError::new(
                    "header",
                    format!("column '{h}': attribute names are lower-case letters, digits and _, starting with a letter"),
                ));
            }
        }
        if extra.len() > crate::domain::attributes::MAX_KEYS {
            errs.push(FieldError::new("header", "at most 50 attribute columns"));
        }
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let mut rows = Vec::new();
        let t = now();
        for (i, rec) in reader.records().enumerate() {
            let row = i + 1;
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    errs.push(FieldError::new("row", format!("malformed CSV: {e}")).at_row(row));
                    continue;
                }
            };
            let email = rec.get(ie).unwrap_or("").trim().to_lowercase();
            if !valid_email(&email) {
                errs.push(FieldError::new("email", "is not an email address").at_row(row));
            }
            let source = rec.get(is).unwrap_or("").trim().to_owned();
            if source.is_empty() {
                errs.push(FieldError::new("consent_source", "is required").at_row(row));
            }
            let locale = iloc(&rec, ilocale).unwrap_or_else(|| client_locale.clone());
            if locale != "ru" && locale != "en" {
                errs.push(FieldError::new("locale", "must be ru or en").at_row(row));
            }
            let at = match iat
                .and_then(|i| rec.get(i))
                .filter(|s| !s.trim().is_empty())
            {
                None => t,
                Some(s) => match DateTime::parse_from_rfc3339(s.trim()) {
                    Ok(d) => d.with_timezone(&Utc),
                    Err(_) => {
                        errs.push(FieldError::new("consent_at", "must be RFC 3339").at_row(row));
                        t
                    }
                },
            };
            let name = iname
                .and_then(|i| rec.get(i))
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty());
            let cells: serde_json::Map<String, serde_json::Value> = extra
                .iter()
                .filter_map(|(i, h)| {
                    let v = rec.get(*i)?.trim();
                    (!v.is_empty()).then(|| (h.clone(), Attributes::cell(v)))
                })
                .collect();
            let attributes =
                match Attributes::parse("attributes", &serde_json::Value::Object(cells)) {
                    Ok(a) => a,
                    Err(e) => {
                        errs.extend(e.into_iter().map(|f| {
                            FieldError::new(f.field.trim_start_matches("attributes."), f.message)
                                .at_row(row)
                        }));
                        Attributes::default()
                    }
                };
            rows.push(subscriber::ActiveModel {
                id: Set(new_id()),
                agency_id: Set(ctx.agency_id),
                client_id: Set(list.client_id),
                list_id: Set(list.id),
                email: Set(email),
                name: Set(name),
                locale: Set(locale),
                status: Set("active".into()),
                consent_at: Set(at),
                consent_version: Set(list.consent_version),
                consent_text: Set(list.consent_text.clone()),
                consent_source: Set(format!("import: {source}")),
                consent_ip: Set(None),
                confirmed_at: Set(Some(at)),
                unsubscribed_at: Set(None),
                attributes: Set(attributes.to_value()),
                contact_id: Set(None),
                created_at: Set(t),
                updated_at: Set(t),
            });
            if errs.len() >= crate::domain::import::MAX_REPORTED_ERRORS {
                break;
            }
        }
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let received = rows.len() as u64;
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let mut inserted = 0;
        for chunk in rows.chunks(500) {
            let res = subscriber::Entity::insert_many(chunk.to_vec())
                .on_conflict(
                    sea_orm::sea_query::OnConflict::columns([
                        subscriber::Column::AgencyId,
                        subscriber::Column::ListId,
                        subscriber::Column::Email,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await;
            inserted += match res {
                Ok(n) => n,
                Err(sea_orm::DbErr::RecordNotInserted) => 0,
                Err(e) => return Err(e.into()),
            };
        }
        let counts = serde_json::json!({"received": received, "inserted": inserted});
        let a = Audit::new("subscribers", "import", Some(list_id)).with(counts);
        let event = Some(ImportEvent {
            kind: ImportKind::Subscribers,
            subject: ("list_id", list.id),
        });
        let deliveries = emit_import(&txn, ctx.agency_id, event, received).await?;
        audit::commit(txn, ctx, a).await?;
        self.import_committed(ctx.agency_id, event, received, deliveries)
            .await;
        self.sync_contacts(ctx.agency_id, list.client_id, None, false)
            .await?;
        Ok(crate::research::responses::IngestResult {
            received,
            inserted,
            duplicates: received - inserted,
            data_version: 0,
        })
    }
}

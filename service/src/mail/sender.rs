//! A client's own sender for the emails to its audience and report
//! recipients (confirmations, newsletters, chains, digests): From name and
//! address, Reply-To, and optionally its own SMTP server, whose URL (it
//! carries a password) is kept sealed with the configured secret key and
//! never returned. Unset parts fall back to the global settings; sending
//! resolves them per batch ([`crate::infra::email::sender`]).
use chrono::{DateTime, Utc};
use entity::client_sender::{self, ActiveModel, Column as C, Entity};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::audit::{self, Audit};
use crate::infra::email::sender::smtp_url_binding;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services, now};

/// A client's sender; unset parts are the global ones.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct SenderView {
    pub client_id: Uuid,
    pub from_name: Option<String>,
    pub from_address: Option<String>,
    pub reply_to: Option<String>,
    /// Whether the client's emails go through its own SMTP server (its URL
    /// is never returned).
    pub smtp_configured: bool,
    /// That server's host, for display.
    pub smtp_host: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// The client's sender, replacing the one before: an absent From name,
/// From address or Reply-To is the global one. The SMTP URL is kept unless
/// a new one is given or `clear_smtp_url` is true.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct SenderInput {
    /// At most 100 characters, no line breaks.
    #[serde(default)]
    #[schema(max_length = 100)]
    pub from_name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 254, format = "email")]
    pub from_address: Option<String>,
    #[serde(default)]
    #[schema(max_length = 254, format = "email")]
    pub reply_to: Option<String>,
    /// `smtp://user:password@host:port` (plain, or `?tls=required` for
    /// STARTTLS) or `smtps://…` (TLS). Write-only: kept encrypted at rest.
    #[serde(default)]
    #[schema(max_length = 2048)]
    pub smtp_url: Option<String>,
    /// True: forget the SMTP URL (the global server is used again).
    #[serde(default)]
    pub clear_smtp_url: bool,
}

/// How a test email went.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct SenderTestView {
    /// Whether the server took the message.
    pub delivered: bool,
    /// `client_smtp` or `global`.
    pub via: String,
    /// The server's answer when it did not.
    pub error: Option<String>,
}

/// Where a test email goes.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct SenderTestInput {
    #[schema(max_length = 254, format = "email")]
    pub to: String,
}

fn view(client_id: Uuid, r: Option<client_sender::Model>) -> SenderView {
    match r {
        None => SenderView {
            client_id,
            from_name: None,
            from_address: None,
            reply_to: None,
            smtp_configured: false,
            smtp_host: None,
            updated_at: None,
        },
        Some(r) => SenderView {
            client_id,
            smtp_configured: r.smtp_url_sealed.is_some(),
            from_name: r.from_name,
            from_address: r.from_address,
            reply_to: r.reply_to,
            smtp_host: r.smtp_host,
            updated_at: Some(r.updated_at),
        },
    }
}

/// An address as a mailbox takes it (lettre's parser), at most 254 bytes.
fn check_address(field: &str, v: &Option<String>, errs: &mut Vec<FieldError>) {
    if let Some(a) = v
        && (a.len() > 254 || a.parse::<lettre::Address>().is_err())
    {
        errs.push(FieldError::new(field, "must be an e-mail address"));
    }
}

/// The host of a valid SMTP URL.
fn smtp_host(url: &str) -> Result<String, String> {
    if url.len() > 2048 {
        return Err("at most 2048 characters".into());
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "smtp" | "smtps") {
        return Err("must be an smtp:// or smtps:// URL".into());
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("must name a host")?
        .to_owned();
    crate::infra::email::Mailer::check_url(url)?;
    Ok(host)
}

impl Services {
    async fn sender_row(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
    ) -> AppResult<Option<client_sender::Model>> {
        Ok(Entity::find()
            .filter(C::AgencyId.eq(agency_id))
            .filter(C::ClientId.eq(client_id))
            .one(&self.db)
            .await?)
    }

    pub async fn client_sender(&self, ctx: &RequestCtx, client_id: Uuid) -> AppResult<SenderView> {
        let c = find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        Ok(view(c.id, self.sender_row(c.agency_id, c.id).await?))
    }

    pub async fn set_client_sender(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: SenderInput,
    ) -> AppResult<SenderView> {
        let c = find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::ManageClients)?;
        let mut errs = Vec::new();
        if let Some(n) = &input.from_name
            && (n.trim().is_empty() || n.chars().count() > 100 || n.contains(['\r', '\n']))
        {
            errs.push(FieldError::new(
                "from_name",
                "must be 1 to 100 characters without line breaks",
            ));
        }
        check_address("from_address", &input.from_address, &mut errs);
        check_address("reply_to", &input.reply_to, &mut errs);
        let mut sealed = None;
        if let Some(url) = &input.smtp_url {
            if input.clear_smtp_url {
                errs.push(FieldError::new(
                    "clear_smtp_url",
                    "cannot be true while smtp_url is given",
                ));
            }
            match (smtp_host(url), &self.config.sealer) {
                (Err(e), _) => errs.push(FieldError::new("smtp_url", e)),
                (Ok(_), None) => errs.push(FieldError::new(
                    "smtp_url",
                    "this server has no secret key (GROWTHPOINT_SECRET_KEY) to keep it encrypted",
                )),
                (Ok(host), Some(s)) => {
                    sealed = Some((s.seal(url, &smtp_url_binding(c.agency_id, c.id)), host))
                }
            }
        }
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let existing = self.sender_row(c.agency_id, c.id).await?;
        let before = view(c.id, existing.clone());
        let t = now();
        let (smtp_url_sealed, smtp_host) = match (sealed, &existing) {
            (Some((s, h)), _) => (Some(s), Some(h)),
            (None, _) if input.clear_smtp_url => (None, None),
            (None, Some(e)) => (e.smtp_url_sealed.clone(), e.smtp_host.clone()),
            (None, None) => (None, None),
        };
        let mut row = ActiveModel {
            from_name: Set(input.from_name),
            from_address: Set(input.from_address),
            reply_to: Set(input.reply_to),
            smtp_url_sealed: Set(smtp_url_sealed),
            smtp_host: Set(smtp_host),
            updated_at: Set(t),
            ..Default::default()
        };
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let saved = match existing {
            Some(e) => {
                row.id = Set(e.id);
                row.agency_id = Set(e.agency_id);
                row.client_id = Set(e.client_id);
                row.created_at = Set(e.created_at);
                sea_orm::ActiveModelTrait::reset_all(row)
                    .update(&txn)
                    .await?
            }
            None => {
                row.id = Set(crate::new_id());
                row.agency_id = Set(c.agency_id);
                row.client_id = Set(c.id);
                row.created_at = Set(t);
                row.insert(&txn).await?
            }
        };
        // The view carries the SMTP host only, never the URL.
        let after = view(c.id, Some(saved));
        let change = Audit::new("sender", "put", Some(c.id)).changed(&before, &after);
        audit::commit(txn, ctx, change).await?;
        Ok(after)
    }

    /// Back to the global sender.
    pub async fn delete_client_sender(&self, ctx: &RequestCtx, client_id: Uuid) -> AppResult<()> {
        let c = find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::ManageClients)?;
        let txn = crate::infra::db::begin_write(&self.db).await?;
        Entity::delete_many()
            .filter(C::AgencyId.eq(c.agency_id))
            .filter(C::ClientId.eq(c.id))
            .exec(&txn)
            .await?;
        audit::commit(txn, ctx, Audit::new("sender", "delete", Some(c.id))).await
    }

    /// Sends a short test email through the client's sender now (not
    /// through the ledger) and says how it went.
    pub async fn test_client_sender(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: SenderTestInput,
    ) -> AppResult<SenderTestView> {
        let c = find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::ManageClients)?;
        let mut errs = Vec::new();
        check_address("to", &Some(input.to.clone()), &mut errs);
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let (via_client, outcome) = self
            .send_sender_test(c.agency_id, c.id, &c.name, &input.to)
            .await?;
        let sent = serde_json::json!({"to": input.to, "delivered": outcome.is_ok()});
        audit::alone(
            &self.db,
            ctx,
            Audit::new("sender", "test", Some(c.id)).with(sent),
        )
        .await?;
        Ok(SenderTestView {
            delivered: outcome.is_ok(),
            via: if via_client { "client_smtp" } else { "global" }.into(),
            error: outcome.err(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::email::sender::from_mailbox;

    #[test]
    fn smtp_urls_are_checked_and_their_host_kept() {
        assert_eq!(
            smtp_host("smtp://u:p@mail.example:587?tls=required").unwrap(),
            "mail.example"
        );
        assert_eq!(smtp_host("smtps://mail.example").unwrap(), "mail.example");
        assert!(smtp_host("http://mail.example").is_err());
        assert!(smtp_host("smtp://").is_err());
        assert!(smtp_host("not a url").is_err());
        assert!(smtp_host(&format!("smtp://{}", "a".repeat(2050))).is_err());
    }

    #[test]
    fn from_mailboxes_fall_back_to_the_global_parts() {
        let global: lettre::message::Mailbox = "Growthpoint <r@gp.example>".parse().unwrap();
        let m = from_mailbox(Some("Shop"), None, &global).unwrap();
        assert_eq!(m.to_string(), "Shop <r@gp.example>");
        let m = from_mailbox(None, Some("news@shop.example"), &global).unwrap();
        assert_eq!(m.to_string(), "Growthpoint <news@shop.example>");
        assert!(from_mailbox(None, Some("nope"), &global).is_err());
    }
}

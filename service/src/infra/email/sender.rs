//! Which sender a delivery leaves from: for the emails to a client's
//! audience and report recipients, the client's own From, Reply-To and SMTP
//! server where it set them (`client_senders`); else the global ones. The
//! senders of a claimed batch are read in one query; a client's SMTP
//! transport (and its pool) is kept for as long as its URL stays the same.
use std::collections::HashMap;
use std::sync::Arc;

use entity::{client_sender, email_delivery};
use lettre::message::Mailbox;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::Mailer;
use super::send::EmailSettings;
use crate::Services;
use crate::infra::error::AppResult;

/// The kinds of email that leave from their client's sender.
pub const CLIENT_KINDS: [&str; 4] = ["confirm", "newsletter", "chain", "digest"];

/// A client's sender as a delivery uses it; None: the global one.
#[derive(Default)]
pub(super) struct ClientSender {
    pub(super) from: Option<Mailbox>,
    pub(super) reply_to: Option<Mailbox>,
    pub(super) mailer: Option<Arc<Mailer>>,
}

/// What a sealed SMTP URL is bound to: its row's agency and client.
pub fn smtp_url_binding(agency_id: Uuid, client_id: Uuid) -> Vec<u8> {
    [agency_id.as_bytes().as_slice(), client_id.as_bytes()].concat()
}

/// The From mailbox of a name and address, either of which may be unset
/// (then the global sender's).
pub fn from_mailbox(
    name: Option<&str>,
    address: Option<&str>,
    global: &Mailbox,
) -> Result<Mailbox, String> {
    let email = match address {
        Some(a) => a.parse().map_err(|e| format!("{e}"))?,
        None => global.email.clone(),
    };
    let name = name.map(str::to_owned).or_else(|| global.name.clone());
    Ok(Mailbox::new(name, email))
}

impl Services {
    /// The senders of the clients of `batch` that set one, by (agency,
    /// client).
    pub(super) async fn senders_of(
        &self,
        settings: &EmailSettings,
        batch: &[email_delivery::Model],
    ) -> AppResult<HashMap<(Uuid, Uuid), Arc<ClientSender>>> {
        let mut clients: Vec<Uuid> = batch
            .iter()
            .filter(|d| CLIENT_KINDS.contains(&d.kind.as_str()))
            .filter_map(|d| d.client_id)
            .collect();
        clients.sort_unstable();
        clients.dedup();
        let mut out = HashMap::new();
        if clients.is_empty() {
            return Ok(out);
        }
        let rows = client_sender::Entity::find()
            .filter(client_sender::Column::ClientId.is_in(clients))
            .all(&self.db)
            .await?;
        for r in rows {
            let sender = self.resolve_sender(settings, &r);
            out.insert((r.agency_id, r.client_id), Arc::new(sender));
        }
        Ok(out)
    }

    fn resolve_sender(&self, settings: &EmailSettings, r: &client_sender::Model) -> ClientSender {
        let from = from_mailbox(
            r.from_name.as_deref(),
            r.from_address.as_deref(),
            &settings.from,
        )
        .map_err(|e| tracing::warn!(client = %r.client_id, error = %e, "client sender's From unusable; the global one is used"))
        .ok();
        let reply_to = r.reply_to.as_deref().and_then(|a| a.parse().ok());
        let mailer = r.smtp_url_sealed.as_deref().and_then(|sealed| {
            let url = self
                .config
                .sealer
                .as_ref()
                .ok_or_else(|| "no secret key configured".to_owned())
                .and_then(|s| s.open(sealed, &smtp_url_binding(r.agency_id, r.client_id)));
            let mailer = url.and_then(|url| settings.client_mailer(r.client_id, sealed, &url));
            mailer
                .map_err(|e| tracing::warn!(client = %r.client_id, error = %e, "client SMTP server unusable; the global one is used"))
                .ok()
        });
        ClientSender {
            from,
            reply_to,
            mailer,
        }
    }
}

impl EmailSettings {
    /// The transport of a client's SMTP URL, kept while the URL (its
    /// sealed form) stays the same.
    fn client_mailer(&self, client: Uuid, sealed: &str, url: &str) -> Result<Arc<Mailer>, String> {
        let mut cache = self
            .client_mailers
            .lock()
            .map_err(|_| "client mailers poisoned".to_owned())?;
        if let Some((s, m)) = cache.get(&client)
            && s == sealed
        {
            return Ok(m.clone());
        }
        let pool = u32::try_from(self.mailer.parallelism().min(8)).unwrap_or(4);
        let m = Arc::new(Mailer::smtp(url, pool).map_err(|e| e.to_string())?);
        cache.insert(client, (sealed.to_owned(), m.clone()));
        Ok(m)
    }
}

impl Services {
    /// A short test email from a client's sender to `to`, sent now; whether
    /// it went through the client's own SMTP server, and the outcome.
    pub async fn send_sender_test(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
        client_name: &str,
        to: &str,
    ) -> AppResult<(bool, Result<(), String>)> {
        let settings = self.email()?.clone();
        let row = client_sender::Entity::find()
            .filter(client_sender::Column::AgencyId.eq(agency_id))
            .filter(client_sender::Column::ClientId.eq(client_id))
            .one(&self.db)
            .await?;
        let sender = row
            .map(|r| self.resolve_sender(&settings, &r))
            .unwrap_or_default();
        let from = sender.from.as_ref().unwrap_or(&settings.from);
        let mut b = lettre::Message::builder().from(from.clone());
        if let Some(r) = &sender.reply_to {
            b = b.reply_to(r.clone());
        }
        let to: Mailbox = match to.parse() {
            Ok(t) => t,
            Err(e) => return Ok((sender.mailer.is_some(), Err(format!("recipient: {e}")))),
        };
        let msg = b
            .to(to)
            .subject(format!("Growthpoint test email for {client_name}"))
            .body(format!(
                "This is a test of {client_name}'s sender in Growthpoint: its emails leave from {from}.\n"
            ))
            .map_err(|e| crate::infra::error::AppError::Unexpected(anyhow::anyhow!(e)))?;
        let mailer = sender.mailer.as_deref().unwrap_or(&settings.mailer);
        let outcome = mailer
            .send(msg, &format!("sender-test-{}", crate::new_id()))
            .await
            .map_err(|e| match e {
                super::SendError::Transient(e) | super::SendError::Permanent(e) => e,
            });
        Ok((sender.mailer.is_some(), outcome))
    }
}

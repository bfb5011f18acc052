//! Writing contacts: an upsert by e-mail that merges what is sent into what
//! is stored (attributes key by key), so the same body sent again changes
//! nothing; outcomes; erasure.
use std::collections::BTreeMap;

use analytics::funnel::FunnelType;
use chrono::{DateTime, Utc};
use entity::{contact, subscriber};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, Set,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ContactView, MAX_CHANNEL, MAX_CUSTOMER_REF, MAX_NAME, MAX_VALUE, find_contact};
use crate::domain::answers::valid_email;
use crate::domain::attributes::Attributes;
use crate::domain::nul::has_nul;
use crate::infra::audit::{self, Audit};
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::ledger::KIND_CONTACTS;
use crate::infra::queue::RecomputeJob;
use crate::infra::webhooks::{ImportEvent, emit_import};
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services, new_id, now};

/// Contacts per JSON request.
pub const MAX_BATCH: usize = 10_000;

/// A contact as the API takes it; only `email` is required. Sent for an
/// e-mail the client already has, the fields given replace the stored ones
/// and the attributes given are merged into the stored ones.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    #[schema(schema_with = crate::infra::docs::email)]
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
    /// `ru` or `en`.
    #[serde(default)]
    pub locale: Option<String>,
    /// Where the contact came from, e.g. `yandex_rtb` (1 to 64 bytes).
    #[serde(default)]
    pub source_channel: Option<String>,
    /// Default `reach` for a new contact.
    #[serde(default)]
    pub funnel: Option<FunnelType>,
    /// Keys like `city`; values a string, a number or an array of strings
    /// (at most 50 keys).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<serde_json::Value>,
    /// The purchases' `customer_ref` of this person (1 to 200 characters).
    #[serde(default)]
    pub customer_ref: Option<String>,
    /// The outcome, when known: true converted, false did not.
    #[serde(default)]
    pub converted: Option<bool>,
    /// When it converted (default: now, for `converted: true`).
    #[serde(default)]
    pub converted_at: Option<DateTime<Utc>>,
    /// What the conversion was worth, 0 to 1e12.
    #[serde(default)]
    pub conversion_value: Option<f64>,
}

/// `POST /contacts/{id}/outcome`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct OutcomeInput {
    pub converted: bool,
    /// When (default now; only with `converted: true`).
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    /// What it was worth, 0 to 1e12.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1e12)]
    pub value: Option<f64>,
}

/// What a bulk write did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct ContactIngestResult {
    /// Rows received.
    pub received: u64,
    /// Contacts created.
    pub created: u64,
    /// Stored contacts that changed.
    pub updated: u64,
    /// Rows that changed nothing (sent before, or repeated in the body).
    pub unchanged: u64,
}

/// A validated row.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedContact {
    pub email: String,
    pub name: Option<String>,
    pub locale: Option<String>,
    pub source_channel: Option<String>,
    pub funnel: Option<FunnelType>,
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    pub customer_ref: Option<String>,
    /// converted, at, value.
    pub outcome: Option<(bool, Option<DateTime<Utc>>, Option<f64>)>,
}

fn text(field: &str, v: Option<String>, max: usize, errs: &mut Vec<FieldError>) -> Option<String> {
    let v = v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())?;
    if has_nul(&v) {
        errs.push(FieldError::new(field, crate::domain::nul::MESSAGE));
    } else if v.chars().count() > max {
        errs.push(FieldError::new(field, format!("at most {max} characters")));
    }
    Some(v)
}

fn check_value(field: &str, v: Option<f64>, errs: &mut Vec<FieldError>) {
    if v.is_some_and(|v| !(v.is_finite() && (0.0..=MAX_VALUE).contains(&v))) {
        errs.push(FieldError::new(
            field,
            format!("must be from 0 to {MAX_VALUE}"),
        ));
    }
}

/// Validates one contact; every offending field named.
pub fn check_contact(input: ContactInput) -> Result<ParsedContact, Vec<FieldError>> {
    let mut errs = Vec::new();
    let email = input.email.trim().to_lowercase();
    if has_nul(&email) || !valid_email(&email) {
        errs.push(FieldError::new("email", "is not an email address"));
    }
    let name = text("name", input.name, MAX_NAME, &mut errs);
    let locale = text("locale", input.locale, 2, &mut errs);
    if locale.as_deref().is_some_and(|l| l != "ru" && l != "en") {
        errs.push(FieldError::new("locale", "must be ru or en"));
    }
    let source_channel = text(
        "source_channel",
        input.source_channel,
        MAX_CHANNEL,
        &mut errs,
    );
    if source_channel
        .as_ref()
        .is_some_and(|s| crate::domain::text::longer_than(s, MAX_CHANNEL))
    {
        errs.push(FieldError::new(
            "source_channel",
            format!("at most {MAX_CHANNEL} characters"),
        ));
    }
    let customer_ref = text(
        "customer_ref",
        input.customer_ref,
        MAX_CUSTOMER_REF,
        &mut errs,
    );
    let attributes = match &input.attributes {
        None => None,
        Some(v) => match Attributes::parse("attributes", v) {
            Ok(a) => match a.to_value() {
                serde_json::Value::Object(m) => Some(m),
                _ => None,
            },
            Err(e) => {
                errs.extend(e);
                None
            }
        },
    };
    check_value("conversion_value", input.conversion_value, &mut errs);
    let outcome = match input.converted {
        Some(c) => {
            if !c && input.converted_at.is_some() {
                errs.push(FieldError::new("converted_at", "only with converted: true"));
            }
            Some((c, input.converted_at, input.conversion_value))
        }
        None => {
            if input.converted_at.is_some() || input.conversion_value.is_some() {
                errs.push(FieldError::new(
                    "converted",
                    "is required with converted_at or conversion_value",
                ));
            }
            None
        }
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(ParsedContact {
        email,
        name,
        locale,
        source_channel,
        funnel: input.funnel,
        attributes,
        customer_ref,
        outcome,
    })
}

/// `m` with `p` merged in; `t` stamps a change.
fn merge(m: &contact::Model, p: &ParsedContact, t: DateTime<Utc>) -> contact::Model {
    let mut n = m.clone();
    if p.name.is_some() {
        n.name.clone_from(&p.name);
    }
    if p.locale.is_some() {
        n.locale.clone_from(&p.locale);
    }
    if p.source_channel.is_some() {
        n.source_channel.clone_from(&p.source_channel);
    }
    if let Some(f) = p.funnel {
        n.funnel = f.name().to_owned();
    }
    if let Some(attrs) = &p.attributes {
        let mut map = match &m.attributes {
            serde_json::Value::Object(o) => o.clone(),
            _ => serde_json::Map::new(),
        };
        for (k, v) in attrs {
            map.insert(k.clone(), v.clone());
        }
        n.attributes = serde_json::Value::Object(map);
    }
    if p.customer_ref.is_some() {
        n.customer_ref.clone_from(&p.customer_ref);
    }
    if let Some((c, at, value)) = p.outcome {
        apply_outcome(&mut n, c, at, value, "api", t);
    }
    n
}

/// Sets the outcome; the time of an unchanged conversion is kept.
pub(crate) fn apply_outcome(
    n: &mut contact::Model,
    converted: bool,
    at: Option<DateTime<Utc>>,
    value: Option<f64>,
    source: &str,
    t: DateTime<Utc>,
) {
    let was = n.converted;
    n.converted = Some(converted);
    n.converted_at = if converted {
        at.or(if was == Some(true) {
            n.converted_at
        } else {
            None
        })
        .or(Some(t))
    } else {
        None
    };
    n.conversion_value = if converted {
        value.or(n.conversion_value)
    } else {
        None
    };
    n.outcome_source = Some(source.to_owned());
}

fn fresh(agency_id: Uuid, client_id: Uuid, email: &str, t: DateTime<Utc>) -> contact::Model {
    contact::Model {
        id: new_id(),
        agency_id,
        client_id,
        email: email.to_owned(),
        name: None,
        locale: None,
        status: "active".into(),
        source_channel: None,
        funnel: FunnelType::Reach.name().to_owned(),
        attributes: serde_json::json!({}),
        customer_ref: None,
        confirmed_at: None,
        converted: None,
        converted_at: None,
        conversion_value: None,
        outcome_source: None,
        created_at: t,
        updated_at: t,
    }
}

/// Whether two contacts differ in anything a write can change.
fn same(a: &contact::Model, b: &contact::Model) -> bool {
    a.name == b.name
        && a.locale == b.locale
        && a.source_channel == b.source_channel
        && a.funnel == b.funnel
        && a.attributes == b.attributes
        && a.customer_ref == b.customer_ref
        && a.converted == b.converted
        && a.converted_at == b.converted_at
        && a.conversion_value == b.conversion_value
        && a.outcome_source == b.outcome_source
}

/// Upserts validated rows in one transaction (the caller's), a later row
/// of an e-mail merged over an earlier one; marks the client's contacts
/// target pending. True when a job must be pushed after commit.
pub async fn upsert_contacts<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    rows: Vec<ParsedContact>,
) -> AppResult<(ContactIngestResult, bool, Vec<contact::Model>)> {
    let mut res = ContactIngestResult {
        received: rows.len() as u64,
        ..Default::default()
    };
    let t = now();
    let mut by_email: BTreeMap<String, Vec<ParsedContact>> = BTreeMap::new();
    for r in rows {
        by_email.entry(r.email.clone()).or_default().push(r);
    }
    let emails: Vec<String> = by_email.keys().cloned().collect();
    let mut stored: BTreeMap<String, contact::Model> = BTreeMap::new();
    for chunk in emails.chunks(500) {
        for m in contact::Entity::find()
            .filter(contact::Column::AgencyId.eq(agency_id))
            .filter(contact::Column::ClientId.eq(client_id))
            .filter(contact::Column::Email.is_in(chunk.iter().cloned()))
            .all(db)
            .await?
        {
            stored.insert(m.email.clone(), m);
        }
    }
    let mut inserts = Vec::new();
    let mut out = Vec::with_capacity(by_email.len());
    for (email, ps) in by_email {
        let before = stored.remove(&email);
        let mut cur = before
            .clone()
            .unwrap_or_else(|| fresh(agency_id, client_id, &email, t));
        for p in &ps {
            cur = merge(&cur, p, t);
        }
        match before {
            None => {
                res.created += 1;
                inserts.push(cur.clone().into_active_model());
            }
            Some(b) if !same(&b, &cur) => {
                res.updated += 1;
                cur.updated_at = t;
                let mut a = b.into_active_model();
                a.name = Set(cur.name.clone());
                a.locale = Set(cur.locale.clone());
                a.source_channel = Set(cur.source_channel.clone());
                a.funnel = Set(cur.funnel.clone());
                a.attributes = Set(cur.attributes.clone());
                a.customer_ref = Set(cur.customer_ref.clone());
                a.converted = Set(cur.converted);
                a.converted_at = Set(cur.converted_at);
                a.conversion_value = Set(cur.conversion_value);
                a.outcome_source = Set(cur.outcome_source.clone());
                a.updated_at = Set(t);
                a.update(db).await?;
            }
            Some(_) => {}
        }
        out.push(cur);
    }
    // One row per contact created or changed; every other row changed nothing.
    res.unchanged = res.received - res.created - res.updated;
    let mut inserts = inserts.into_iter().peekable();
    while inserts.peek().is_some() {
        let batch: Vec<contact::ActiveModel> = inserts.by_ref().take(500).collect();
        contact::Entity::insert_many(batch)
            .exec_without_returning(db)
            .await?;
    }
    let wake = if res.created + res.updated > 0 {
        crate::infra::ledger::bump_target(db, agency_id, KIND_CONTACTS, client_id).await?
    } else {
        false
    };
    Ok((res, wake, out))
}

impl Services {
    /// Wakes the worker to rescore a client's contacts.
    pub async fn wake_contacts(&self, agency_id: Uuid, client_id: Uuid) {
        self.enqueue_recompute(RecomputeJob {
            agency_id,
            kind: KIND_CONTACTS.into(),
            target_id: client_id,
        })
        .await;
    }

    /// Marks a client's contacts for rescoring (new events, purchases…).
    pub async fn contacts_changed(&self, agency_id: Uuid, client_id: Uuid) -> AppResult<()> {
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let wake =
            crate::infra::ledger::bump_target(&txn, agency_id, KIND_CONTACTS, client_id).await?;
        txn.commit().await?;
        if wake {
            self.wake_contacts(agency_id, client_id).await;
        }
        Ok(())
    }

    /// Creates the contact of an e-mail, or merges what is sent into it.
    pub async fn put_contact(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: ContactInput,
    ) -> AppResult<ContactView> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Ingest)?;
        let parsed = check_contact(input).map_err(AppError::Validation)?;
        let a = Audit::new("contact", "put", None);
        let (_, out) = self
            .store_contacts(ctx, a, None, client_id, vec![parsed])
            .await?;
        self.stored_view(ctx.agency_id, out).await
    }

    /// Up to [`MAX_BATCH`] contacts in one request, upserted by e-mail; any
    /// invalid one → 422 naming `contacts[i].field`, and nothing is stored.
    pub async fn put_contacts(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        contacts: Vec<ContactInput>,
    ) -> AppResult<ContactIngestResult> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Ingest)?;
        if contacts.is_empty() || contacts.len() > MAX_BATCH {
            return Err(AppError::field(
                "contacts",
                format!("must hold 1 to {MAX_BATCH} contacts"),
            ));
        }
        let mut errs = Vec::new();
        let mut rows = Vec::with_capacity(contacts.len());
        for (i, c) in contacts.into_iter().enumerate() {
            match check_contact(c) {
                Ok(p) => rows.push(p),
                Err(e) => errs.extend(
                    e.into_iter()
                        .map(|f| FieldError::new(format!("contacts[{i}].{}", f.field), f.message)),
                ),
            }
        }
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let a = Audit::new("contacts", "put", Some(client_id));
        Ok(self.store_contacts(ctx, a, None, client_id, rows).await?.0)
    }

    /// The one contact an upsert stored, with its current score.
    async fn stored_view(
        &self,
        agency_id: Uuid,
        mut out: Vec<contact::Model>,
    ) -> AppResult<ContactView> {
        let c = out
            .pop()
            .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("upsert returned no contact")))?;
        Ok(super::find_scored(&self.db, agency_id, c.id).await?.into())
    }

    /// `audit`: the request's one row; the counts are added here (and the
    /// contact's id when one was sent). `import`: the `import.finished`
    /// event of an import, written in the same transaction.
    pub(crate) async fn store_contacts(
        &self,
        ctx: &RequestCtx,
        audit: Audit,
        import: Option<ImportEvent>,
        client_id: Uuid,
        rows: Vec<ParsedContact>,
    ) -> AppResult<(ContactIngestResult, Vec<contact::Model>)> {
        let agency_id = ctx.agency_id;
        let single = rows.len() == 1;
        let received = rows.len() as u64;
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let (res, wake, out) = upsert_contacts(&txn, agency_id, client_id, rows).await?;
        let audit = match out.first() {
            Some(c) if single => audit.on(c.id),
            _ => audit,
        };
        let deliveries = emit_import(&txn, agency_id, import, received).await?;
        audit::commit(txn, ctx, audit.set(&res)).await?;
        self.import_committed(agency_id, import, received, deliveries)
            .await;
        if wake {
            self.wake_contacts(agency_id, client_id).await;
        }
        Ok((res, out))
    }

    /// Records a contact's outcome (by the API; purchases of its linked
    /// customer record conversions too).
    pub async fn record_outcome(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        input: OutcomeInput,
    ) -> AppResult<ContactView> {
        let c = find_contact(&self.db, ctx.agency_id, id).await?;
        ctx.require(Perm::Ingest)?;
        let mut errs = Vec::new();
        check_value("value", input.value, &mut errs);
        if !input.converted && (input.at.is_some() || input.value.is_some()) {
            errs.push(FieldError::new("at", "only with converted: true"));
        }
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let p = ParsedContact {
            email: c.email.clone(),
            name: None,
            locale: None,
            source_channel: None,
            funnel: None,
            attributes: None,
            customer_ref: None,
            outcome: Some((input.converted, input.at, input.value)),
        };
        let a = Audit::new("contact", "outcome", Some(id));
        let (_, out) = self
            .store_contacts(ctx, a, None, c.client_id, vec![p])
            .await?;
        self.stored_view(ctx.agency_id, out).await
    }

    /// Erases a contact and its subscriptions (an erasure request); the
    /// address and bodies of its emails and the questionnaire answers that
    /// gave its address are blanked.
    pub async fn delete_contact(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<()> {
        let c = find_contact(&self.db, ctx.agency_id, id).await?;
        ctx.require(Perm::ManageClients)?;
        let txn = crate::infra::db::begin_write(&self.db).await?;
        super::link::erase_address(&txn, ctx.agency_id, c.client_id, &c.email).await?;
        super::responses::unlink_contact(&txn, ctx.agency_id, id).await?;
        subscriber::Entity::delete_many()
            .filter(subscriber::Column::AgencyId.eq(ctx.agency_id))
            .filter(subscriber::Column::ClientId.eq(c.client_id))
            .filter(subscriber::Column::Email.eq(c.email.clone()))
            .exec(&txn)
            .await?;
        contact::Entity::delete_many()
            .filter(contact::Column::AgencyId.eq(ctx.agency_id))
            .filter(contact::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        // Its score in the client's current set and in any set queued for
        // purging (by the key: set, contact).
        txn.execute_raw(crate::infra::db::stmt(
            &txn,
            "DELETE FROM contact_scores WHERE agency_id = $1 AND contact_id = $2 \
             AND (set_id IN (SELECT set_id FROM contact_score_sets \
               WHERE agency_id = $1 AND client_id = $3) \
               OR set_id IN (SELECT id FROM contact_score_purges WHERE agency_id = $1))",
            vec![ctx.agency_id.into(), id.into(), c.client_id.into()],
        ))
        .await?;
        let wake =
            crate::infra::ledger::bump_target(&txn, ctx.agency_id, KIND_CONTACTS, c.client_id)
                .await?;
        // An erasure: the log keeps the id, not the address.
        let gone = serde_json::json!({"id": id, "client_id": c.client_id});
        audit::commit(txn, ctx, Audit::delete("contact", id, &gone)).await?;
        if wake {
            self.wake_contacts(ctx.agency_id, c.client_id).await;
        }
        Ok(())
    }
}

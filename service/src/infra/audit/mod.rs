//! The audit log's writer: one row per write, stored on the write's own
//! transaction (so it commits or rolls back with the change), naming the
//! actor, the request id, the action, the resource and the changed fields.
//! One-row updates use [`update_one`] (the update and its row in one
//! statement on PostgreSQL) or, inside a longer transaction,
//! [`record_update`] before the `UPDATE`.
//!
//! Secrets never reach a row: [`redact`] replaces every value whose field
//! name is on [`SECRET_FIELDS`] (or contains one of [`SECRET_PARTS`]) and
//! every string that looks like an API key or a URL with a password by
//! `"[redacted]"`, whatever the call site passed. Call sites also leave
//! secret fields out of what they pass (defence in depth).
use std::sync::atomic::{AtomicBool, Ordering};

use entity::audit_log;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, Set,
    TryIntoModel,
};
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::infra::ctx::{Principal, RequestCtx};
use crate::infra::error::AppResult;
use crate::{new_id, now};

mod cte;
pub use cte::{insert_counted, update_one};

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Field names whose values are never stored.
pub const SECRET_FIELDS: &[&str] = &[
    "password",
    "new_password",
    "current_password",
    "password_hash",
    "token",
    "access_token",
    "secret",
    "api_key",
    "secret_hash",
    "key_hash",
    "smtp_url",
    "smtp_url_sealed",
    "smtp_password",
    "invitation_token",
    "webhook_secret",
];

/// Parts of field names that mark a secret wherever they occur.
pub const SECRET_PARTS: &[&str] = &["password", "secret", "token", "sealed", "smtp_url"];

/// Every resource type an audit row can name (the listing's filter refuses
/// others).
pub const RESOURCE_TYPES: &[&str] = &[
    "agency",
    "api_key",
    "campaign",
    "cash_actuals",
    "cash_channel",
    "cash_model",
    "chain",
    "choice_factor",
    "channel_figures",
    "client",
    "contact",
    "contacts",
    "digest",
    "digest_settings",
    "hypothesis",
    "jtbd_rules",
    "list",
    "member",
    "purchase",
    "purchases",
    "qfd_matrix",
    "report_link",
    "questionnaire",
    "response",
    "responses",
    "scoring",
    "segment",
    "sender",
    "subscriber",
    "subscribers",
    "touchpoint",
    "touchpoint_library",
    "track",
    "track_note",
    "cjm_stage",
    "user",
    "webhook",
];

/// Every verb an action can end in (`client.create`).
pub const VERBS: &[&str] = &[
    "create",
    "update",
    "delete",
    "archive",
    "unarchive",
    "import",
    "put",
    "revoke",
    "invite",
    "accept_invitation",
    "signup",
    "login",
    "change_role",
    "remove",
    "subscribe",
    "unsubscribe",
    "erase",
    "schedule",
    "send",
    "cancel",
    "test",
    "pause",
    "resume",
    "clone",
    "outcome",
    "from_channels",
    "rotate_secret",
    "ping",
    "resend",
];

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the writer off for the whole process: only for the overhead
/// benchmark (`GROWTHPOINT_AUDIT=false`), never in production.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    User(Uuid),
    ApiKey(Uuid),
    /// An unauthenticated caller of a public link (subscribe, unsubscribe).
    Public,
    /// The service itself.
    System,
}

impl Actor {
    pub fn kind(self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::ApiKey(_) => "api_key",
            Actor::Public => "public",
            Actor::System => "system",
        }
    }

    pub fn of(ctx: &RequestCtx) -> Self {
        match ctx.principal {
            // The worker's own context (`RequestCtx::worker`).
            Principal::User(id) if id.is_nil() => Actor::System,
            Principal::User(id) => Actor::User(id),
            Principal::ApiKey(id) => Actor::ApiKey(id),
        }
    }
}

/// One audited action, built at the call site.
#[derive(Debug, Clone)]
pub struct Audit {
    resource_type: &'static str,
    verb: &'static str,
    resource_id: Option<Uuid>,
    changes: Value,
}

/// Fields that only mirror the write itself.
const NOISE: &[&str] = &["updated_at", "created_at", "agency_id"];

impl Audit {
    /// `resource.verb` on one resource (or none: a bulk action).
    pub fn new(resource_type: &'static str, verb: &'static str, id: Option<Uuid>) -> Self {
        Self {
            resource_type,
            verb,
            resource_id: id,
            changes: json!({}),
        }
    }

    /// A create: the fields it set.
    pub fn create(resource_type: &'static str, id: Uuid, after: &impl Serialize) -> Self {
        Self::new(resource_type, "create", Some(id)).set(after)
    }

    /// An update: the fields that changed, `{field: {from, to}}`.
    pub fn update(
        resource_type: &'static str,
        id: Uuid,
        before: &impl Serialize,
        after: &impl Serialize,
    ) -> Self {
        Self::new(resource_type, "update", Some(id)).changed(before, after)
    }

    /// A delete: what was deleted (its id and name-like fields).
    pub fn delete(resource_type: &'static str, id: Uuid, before: &impl Serialize) -> Self {
        Self::new(resource_type, "delete", Some(id)).removed(before)
    }

    /// The fields of `after` (nulls and bookkeeping left out).
    pub fn set(mut self, after: &impl Serialize) -> Self {
        if let Value::Object(m) = to_value(after) {
            let kept: Map<String, Value> = m
                .into_iter()
                .filter(|(k, v)| !v.is_null() && !NOISE.contains(&k.as_str()))
                .collect();
            self.changes = Value::Object(kept);
        }
        self
    }

    /// The fields that differ between `before` and `after`.
    pub fn changed(mut self, before: &impl Serialize, after: &impl Serialize) -> Self {
        self.changes = diff(&to_value(before), &to_value(after));
        self
    }

    /// Id and name-like fields of what was removed.
    pub fn removed(mut self, before: &impl Serialize) -> Self {
        const NAMES: &[&str] = &["id", "name", "title", "email", "period", "channel", "role"];
        if let Value::Object(m) = to_value(before) {
            let kept: Map<String, Value> = m
                .into_iter()
                .filter(|(k, _)| NAMES.contains(&k.as_str()))
                .collect();
            self.changes = Value::Object(kept);
        }
        self
    }

    /// The resource it concerns, when known only after the write.
    pub fn on(mut self, id: Uuid) -> Self {
        self.resource_id = Some(id);
        self
    }

    /// Any other description, e.g. counts of an import.
    pub fn with(mut self, changes: Value) -> Self {
        self.changes = changes;
        self
    }

    pub fn action(&self) -> String {
        format!("{}.{}", self.resource_type, self.verb)
    }
}

fn to_value(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// `{field: {from, to}}` for every top-level field that differs.
pub fn diff(before: &Value, after: &Value) -> Value {
    let none = Map::new();
    let (b, a) = match (before, after) {
        // Nothing before (an upsert that created): every field is new.
        (Value::Null, Value::Object(a)) => (&none, a),
        (Value::Object(b), Value::Object(a)) => (b, a),
        _ if before == after => return json!({}),
        _ => return json!({"value": {"from": before, "to": after}}),
    };
    let mut out = Map::new();
    for (k, to) in a {
        if NOISE.contains(&k.as_str()) {
            continue;
        }
        let from = b.get(k).unwrap_or(&Value::Null);
        if from != to {
            out.insert(k.clone(), json!({"from": from, "to": to}));
        }
    }
    for (k, from) in b {
        if !a.contains_key(k) && !NOISE.contains(&k.as_str()) {
            out.insert(k.clone(), json!({"from": from, "to": Value::Null}));
        }
    }
    Value::Object(out)
}

fn secret_field(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_FIELDS.contains(&n.as_str()) || SECRET_PARTS.iter().any(|p| n.contains(p))
}

/// A string that is a secret whatever its field: an API key
/// (`gp_<public>_<secret>`), a URL with a password, a bearer token.
fn secret_value(s: &str) -> bool {
    if s.starts_with("gp_") && s.len() > 20 {
        return true;
    }
    if let Some(scheme_end) = s.find("://") {
        let rest = &s[scheme_end + 3..];
        let authority = rest.split('/').next().unwrap_or("");
        if let Some(at) = authority.rfind('@') {
            return authority[..at].contains(':');
        }
    }
    // JWTs: three base64url parts.
    s.starts_with("eyJ") && s.matches('.').count() == 2
}

/// Replaces every secret in `v` (by field name or by shape) with
/// [`REDACTED`].
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if secret_field(k) && !x.is_null() {
                    *x = Value::String(REDACTED.into());
                } else {
                    redact(x);
                }
            }
        }
        Value::Array(xs) => xs.iter_mut().for_each(redact),
        Value::String(s) if secret_value(s) => *s = REDACTED.into(),
        _ => {}
    }
}

/// Records `a` as done by the caller of `ctx`, on `db` — the write's own
/// transaction.
pub async fn record<C: ConnectionTrait>(db: &C, ctx: &RequestCtx, a: Audit) -> AppResult<()> {
    record_as(
        db,
        ctx.agency_id,
        Actor::of(ctx),
        ctx.request_id.as_deref(),
        a,
    )
    .await
}

/// Records the update of one row — `before` (as the API shows it) becoming
/// what `a` will save — on `txn`, *before* the caller's `UPDATE`.
///
/// The order matters for concurrent writers of one row: the `UPDATE` holds
/// the row's lock until the `COMMIT`, and an audit `INSERT` after it would
/// add a round trip to that time, which every writer queued on the row
/// pays (a one-row `PATCH` lost 30 % of its throughput that way, see
/// `docs/performance.md`). Written first, the row costs no lock time.
/// What the row calls `after` is read off `a` (every column set or
/// unchanged, as when it was made from the stored model), which is what
/// `UPDATE … RETURNING` gives back.
pub async fn record_update<A, V>(
    txn: &DatabaseTransaction,
    ctx: &RequestCtx,
    resource_type: &'static str,
    id: Uuid,
    before: &V,
    a: &A,
    view: impl FnOnce(<A::Entity as EntityTrait>::Model) -> V,
) -> AppResult<()>
where
    A: ActiveModelTrait + TryIntoModel<<A::Entity as EntityTrait>::Model> + Clone,
    V: Serialize,
{
    if !enabled() {
        return Ok(());
    }
    let after = view(a.clone().try_into_model()?);
    record(txn, ctx, Audit::update(resource_type, id, before, &after)).await
}

/// Records `a` on `txn` and commits it: the last step of a write.
pub async fn commit(txn: DatabaseTransaction, ctx: &RequestCtx, a: Audit) -> AppResult<()> {
    record(&txn, ctx, a).await?;
    txn.commit().await?;
    Ok(())
}

/// Records `a` in a transaction of its own: for actions whose effect is
/// not a row of ours (a test email sent now).
pub async fn alone(db: &DatabaseConnection, ctx: &RequestCtx, a: Audit) -> AppResult<()> {
    commit(crate::infra::db::begin_write(db).await?, ctx, a).await
}

/// Records `a` for an actor that has no [`RequestCtx`] (public links, the
/// system, sign-up and login).
pub async fn record_as<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    actor: Actor,
    request_id: Option<&str>,
    a: Audit,
) -> AppResult<()> {
    if !enabled() {
        return Ok(());
    }
    audit_log::Entity::insert(row(agency_id, actor, request_id, a))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The row that records `a`, its changes redacted.
fn row(
    agency_id: Uuid,
    actor: Actor,
    request_id: Option<&str>,
    a: Audit,
) -> audit_log::ActiveModel {
    let action = a.action();
    let mut changes = a.changes;
    redact(&mut changes);
    let (user_id, api_key_id) = match actor {
        Actor::User(id) => (Some(id), None),
        Actor::ApiKey(id) => (None, Some(id)),
        Actor::Public | Actor::System => (None, None),
    };
    audit_log::ActiveModel {
        id: Set(new_id()),
        agency_id: Set(agency_id),
        at: Set(now()),
        actor_kind: Set(actor.kind().to_owned()),
        user_id: Set(user_id),
        api_key_id: Set(api_key_id),
        request_id: Set(request_id.map(str::to_owned)),
        action: Set(action),
        resource_type: Set(a.resource_type.to_owned()),
        resource_id: Set(a.resource_id),
        changes: Set(changes),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn redaction_replaces_secrets_by_name_and_by_shape() {
        let mut v = json!({
            "name": "Acme",
            "password": "hunter2",
            "smtp_url": "smtp://u:p@mail.example.com:587",
            "nested": [{"api_key": "gp_abc_def"}, {"note": "gp_abcdefgh_ijklmnopqrstuvwxyz"}],
            "server": "smtp://u:pw@host",
            "site": "https://example.com/a@b",
            "invitation_token": "t0k3n",
        });
        redact(&mut v);
        let s = v.to_string();
        for secret in ["hunter2", "u:p@", "gp_abc", "u:pw@", "t0k3n"] {
            assert!(!s.contains(secret), "{secret} left in {s}");
        }
        assert!(s.contains("Acme") && s.contains("https://example.com/a@b"));
    }

    #[test]
    fn diff_names_only_changed_fields() {
        let d = diff(
            &json!({"name": "a", "currency": "RUB", "updated_at": 1}),
            &json!({"name": "b", "currency": "RUB", "updated_at": 2}),
        );
        assert_eq!(d, json!({"name": {"from": "a", "to": "b"}}));
    }

    #[test]
    fn every_verb_and_resource_is_unique() {
        let mut r = RESOURCE_TYPES.to_vec();
        r.sort_unstable();
        r.dedup();
        assert_eq!(r.len(), RESOURCE_TYPES.len());
        let mut v = VERBS.to_vec();
        v.sort_unstable();
        v.dedup();
        assert_eq!(v.len(), VERBS.len());
    }
}

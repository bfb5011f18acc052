//! Reading the audit log (owners and admins): filters and cursor paging
//! over the rows [`crate::infra::audit`] writes.
use chrono::{DateTime, Utc};
use entity::audit_log;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::audit::{RESOURCE_TYPES, VERBS};
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::page::{Page, PageParams};
use crate::{Perm, RequestCtx, Services};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct AuditEntryView {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// `user`, `api_key`, `public` or `system`.
    pub actor_kind: String,
    pub user_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    /// The `x-request-id` of the request that made the change.
    pub request_id: Option<String>,
    /// `<resource_type>.<verb>`, e.g. `client.update`.
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<Uuid>,
    /// Updates: `{field: {from, to}}`; creates: the fields set; deletes:
    /// what was deleted; imports: counts. Secrets are never stored.
    #[schema(value_type = Object)]
    pub changes: serde_json::Value,
}
crate::has_id!(AuditEntryView);

impl From<audit_log::Model> for AuditEntryView {
    fn from(m: audit_log::Model) -> Self {
        Self {
            id: m.id,
            at: m.at,
            actor_kind: m.actor_kind,
            user_id: m.user_id,
            api_key_id: m.api_key_id,
            request_id: m.request_id,
            action: m.action,
            resource_type: m.resource_type,
            resource_id: m.resource_id,
            changes: m.changes,
        }
    }
}

/// Filters of the audit log; all optional, combined with AND.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams, async_graphql::InputObject)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// An actor kind (`user`, `api_key`, `public`, `system`) or the id of a
    /// user or an API key.
    #[param(schema_with = actor_schema)]
    pub actor: Option<String>,
    /// e.g. `client`.
    #[param(schema_with = resource_type_schema)]
    pub resource_type: Option<String>,
    pub resource_id: Option<Uuid>,
    /// `<resource_type>.<verb>`, e.g. `client.update`.
    #[param(schema_with = action_schema)]
    pub action: Option<String>,
    /// From this time on (RFC 3339), inclusive.
    pub since: Option<DateTime<Utc>>,
    /// Before this time (RFC 3339), exclusive.
    pub until: Option<DateTime<Utc>>,
}

const ACTOR_KINDS: &[&str] = &["user", "api_key", "public", "system"];

fn pattern(p: String) -> utoipa::openapi::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(p))
        .build()
}

/// [`ACTOR_KINDS`] or a hyphenated id.
fn actor_schema() -> utoipa::openapi::Object {
    let uuid = crate::infra::docs::UUID;
    pattern(format!("^({}|{uuid})$", ACTOR_KINDS.join("|")))
}

fn resource_type_schema() -> utoipa::openapi::Object {
    crate::infra::docs::one_of(RESOURCE_TYPES)
}

/// `<resource_type>.<verb>` of the known ones.
fn action_schema() -> utoipa::openapi::Object {
    pattern(format!(
        r"^({})\.({})$",
        RESOURCE_TYPES.join("|"),
        VERBS.join("|")
    ))
}

impl Services {
    /// The agency's audit log, oldest first, one page after the cursor.
    pub async fn list_audit_log(
        &self,
        ctx: &RequestCtx,
        f: AuditFilter,
        page: PageParams,
    ) -> AppResult<Page<AuditEntryView>> {
        ctx.require(Perm::Admin)?;
        let mut errs = Vec::new();
        let page = match page.parse() {
            Ok(p) => Some(p),
            Err(AppError::Validation(e)) => {
                errs.extend(e);
                None
            }
            Err(e) => return Err(e),
        };
        let mut q = audit_log::Entity::find().filter(audit_log::Column::AgencyId.eq(ctx.agency_id));
        if let Some(a) = &f.actor {
            if ACTOR_KINDS.contains(&a.as_str()) {
                q = q.filter(audit_log::Column::ActorKind.eq(a.as_str()));
            } else if let Some(id) = crate::infra::page::parse_hyphenated(a) {
                q = q.filter(
                    Condition::any()
                        .add(audit_log::Column::UserId.eq(id))
                        .add(audit_log::Column::ApiKeyId.eq(id)),
                );
            } else {
                errs.push(FieldError::new(
                    "actor",
                    "must be user, api_key, public, system or the id of a user or API key",
                ));
            }
        }
        if let Some(t) = &f.resource_type {
            if RESOURCE_TYPES.contains(&t.as_str()) {
                q = q.filter(audit_log::Column::ResourceType.eq(t.as_str()));
            } else {
                errs.push(FieldError::new("resource_type", "is not a resource type"));
            }
        }
        if let Some(id) = f.resource_id {
            q = q.filter(audit_log::Column::ResourceId.eq(id));
        }
        if let Some(a) = &f.action {
            let known = a
                .split_once('.')
                .is_some_and(|(r, v)| RESOURCE_TYPES.contains(&r) && VERBS.contains(&v));
            if known {
                q = q.filter(audit_log::Column::Action.eq(a.as_str()));
            } else {
                errs.push(FieldError::new(
                    "action",
                    "must be <resource_type>.<verb>, e.g. client.update",
                ));
            }
        }
        if let (Some(s), Some(u)) = (f.since, f.until)
            && u < s
        {
            errs.push(FieldError::new("until", "must not be before since"));
        }
        if let Some(s) = f.since {
            q = q.filter(audit_log::Column::At.gte(s));
        }
        if let Some(u) = f.until {
            q = q.filter(audit_log::Column::At.lt(u));
        }
        match page {
            Some(page) if errs.is_empty() => {
                page.fetch(q, audit_log::Column::Id, &self.db, AuditEntryView::from)
                    .await
            }
            _ => Err(AppError::Validation(errs)),
        }
    }
}

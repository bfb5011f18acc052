//! Members of an agency and invitations to join it.
use chrono::{DateTime, Duration, Utc};
use entity::{invitation, membership, user};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::answers::valid_email;
use crate::infra::audit::{self, Actor, Audit};
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::page::{Page, PageParams};
use crate::platform::auth::{check_password, hash_password};
use crate::{Perm, RequestCtx, Role, Services, infra::db, new_id, now};
use serde_json::json;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct MemberView {
    /// The membership id.
    pub id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}
crate::has_id!(MemberView);

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct InviteMember {
    #[schema(schema_with = crate::infra::docs::email)]
    pub email: String,
    pub role: Role,
}

/// The result of an invitation: an existing user is added at once; anyone
/// else gets a token (shown once) to accept with.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct InvitationResult {
    /// `added` or `invited`.
    pub status: String,
    pub member: Option<MemberView>,
    pub invitation_token: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    pub token: String,
    #[schema(schema_with = crate::infra::docs::text_200)]
    pub name: String,
    #[schema(min_length = 10, max_length = 256)]
    pub password: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    pub role: Role,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Services {
    async fn member_view(&self, m: membership::Model) -> AppResult<MemberView> {
        let u = user::Entity::find_by_id(m.user_id)
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?;
        Ok(MemberView {
            id: m.id,
            user_id: u.id,
            email: u.email,
            name: u.name,
            role: Role::parse(&m.role).unwrap_or(Role::Viewer),
            created_at: m.created_at,
        })
    }

    pub async fn list_members(
        &self,
        ctx: &RequestCtx,
        page: PageParams,
    ) -> AppResult<Page<MemberView>> {
        ctx.require(Perm::Read)?;
        let q = membership::Entity::find().filter(membership::Column::AgencyId.eq(ctx.agency_id));
        let page = page
            .parse()?
            .fetch(q, membership::Column::Id, &self.db, |m| m)
            .await?;
        let ids: Vec<Uuid> = page.items.iter().map(|m| m.user_id).collect();
        let users = user::Entity::find()
            .filter(user::Column::Id.is_in(ids))
            .all(&self.db)
            .await?;
        let items = page
            .items
            .into_iter()
            .filter_map(|m| {
                let u = users.iter().find(|u| u.id == m.user_id)?;
                Some(MemberView {
                    id: m.id,
                    user_id: u.id,
                    email: u.email.clone(),
                    name: u.name.clone(),
                    role: Role::parse(&m.role)?,
                    created_at: m.created_at,
                })
            })
            .collect();
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    }

    pub async fn invite_member(
        &self,
        ctx: &RequestCtx,
        input: InviteMember,
    ) -> AppResult<InvitationResult> {
        ctx.require(Perm::Admin)?;
        if input.role == Role::Owner {
            ctx.require_role(Role::Owner)?;
        }
        let email = input.email.trim().to_lowercase();
        if !valid_email(&email) {
            return Err(AppError::field("email", "is not an email address"));
        }
        let existing = user::Entity::find()
            .filter(user::Column::Email.eq(&email))
            .one(&self.db)
            .await?;
        if let Some(u) = existing {
            let already = membership::Entity::find()
                .filter(membership::Column::AgencyId.eq(ctx.agency_id))
                .filter(membership::Column::UserId.eq(u.id))
                .one(&self.db)
                .await?;
            if already.is_some() {
                return Err(AppError::Conflict("already a member".into()));
            }
            let m = membership::ActiveModel {
                id: Set(new_id()),
                agency_id: Set(ctx.agency_id),
                user_id: Set(u.id),
                role: Set(input.role.as_str().into()),
                created_at: Set(now()),
            };
            let txn = db::begin_write(&self.db).await?;
            let m = m.insert(&txn).await?;
            let added = json!({"user_id": u.id, "email": email, "role": input.role.as_str(), "status": "added"});
            audit::commit(
                txn,
                ctx,
                Audit::new("member", "invite", Some(m.id)).with(added),
            )
            .await?;
            self.invalidate(crate::infra::cache::Invalidation::Members(ctx.agency_id))
                .await;
            return Ok(InvitationResult {
                status: "added".into(),
                member: Some(self.member_view(m).await?),
                invitation_token: None,
                expires_at: None,
            });
        }
        let token = format!("inv_{}", uuid::Uuid::new_v4().simple());
        let expires_at = now() + Duration::hours(self.config.invitation_ttl_hours);
        let txn = db::begin_write(&self.db).await?;
        let invited = json!({"email": email, "role": input.role.as_str(), "status": "invited"});
        let inv = invitation::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(ctx.agency_id),
            email: Set(email),
            role: Set(input.role.as_str().into()),
            token_hash: Set(token_hash(&token)),
            invited_by: Set(ctx.actor_id()),
            expires_at: Set(expires_at),
            accepted_at: Set(None),
            created_at: Set(now()),
        }
        .insert(&txn)
        .await?;
        // The token is never stored in the log (nor anywhere but its hash).
        audit::commit(
            txn,
            ctx,
            Audit::new("member", "invite", Some(inv.id)).with(invited),
        )
        .await?;
        Ok(InvitationResult {
            status: "invited".into(),
            member: None,
            invitation_token: Some(token),
            expires_at: Some(expires_at),
        })
    }

    /// Public: a new user accepts an invitation and gets a token.
    pub async fn accept_invitation(
        &self,
        input: AcceptInvitation,
        request_id: Option<&str>,
    ) -> AppResult<crate::platform::auth::LoginOutput> {
        let mut errs = Vec::new();
        let name = input.name.trim().to_owned();
        if !crate::domain::text::fits(&input.name, 200) {
            errs.push(FieldError::new("name", "must be 1 to 200 characters"));
        }
        check_password(&input.password, &mut errs);
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let inv = invitation::Entity::find()
            .filter(invitation::Column::TokenHash.eq(token_hash(&input.token)))
            .one(&self.db)
            .await?
            .filter(|i| i.accepted_at.is_none() && i.expires_at > now())
            // A token that names no open invitation (unknown, used or
            // expired) is a missing resource, like a forged confirm link.
            .ok_or(AppError::NotFound)?;
        let role = Role::parse(&inv.role).unwrap_or(Role::Viewer);
        let hash = hash_password(input.password).await?;
        let txn = db::begin_write(&self.db).await?;
        let user_id = new_id();
        let inserted = user::ActiveModel {
            id: Set(user_id),
            email: Set(inv.email.clone()),
            name: Set(name),
            password_hash: Set(hash),
            locale: Set(None),
            created_at: Set(now()),
        }
        .insert(&txn)
        .await;
        if let Err(e) = inserted {
            return Err(if crate::infra::db::is_unique_violation(&e) {
                AppError::Conflict("this email is registered; ask to be added instead".into())
            } else {
                e.into()
            });
        }
        membership::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(inv.agency_id),
            user_id: Set(user_id),
            role: Set(role.as_str().into()),
            created_at: Set(now()),
        }
        .insert(&txn)
        .await?;
        let agency_id = inv.agency_id;
        let mut a: invitation::ActiveModel = inv.into();
        a.accepted_at = Set(Some(now()));
        let inv = a.update(&txn).await?;
        let joined = Audit::new("user", "accept_invitation", Some(user_id))
            .with(json!({"invitation_id": inv.id, "email": inv.email, "role": role.as_str()}));
        audit::record_as(&txn, agency_id, Actor::User(user_id), request_id, joined).await?;
        txn.commit().await?;
        self.invalidate(crate::infra::cache::Invalidation::Members(agency_id))
            .await;
        Ok(crate::platform::auth::LoginOutput {
            token: self.issue_token(user_id, agency_id, role)?,
            agency_id,
            role,
        })
    }

    async fn find_membership(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<membership::Model> {
        membership::Entity::find_by_id(id)
            .filter(membership::Column::AgencyId.eq(ctx.agency_id))
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)
    }

    async fn owners_left(&self, ctx: &RequestCtx, except: Uuid) -> AppResult<bool> {
        Ok(membership::Entity::find()
            .filter(membership::Column::AgencyId.eq(ctx.agency_id))
            .filter(membership::Column::Role.eq(Role::Owner.as_str()))
            .filter(membership::Column::Id.ne(except))
            .one(&self.db)
            .await?
            .is_some())
    }

    pub async fn change_member_role(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        input: ChangeRole,
    ) -> AppResult<MemberView> {
        let m = self.find_membership(ctx, id).await?;
        ctx.require(Perm::Admin)?;
        let current = Role::parse(&m.role).unwrap_or(Role::Viewer);
        if current == Role::Owner || input.role == Role::Owner {
            ctx.require_role(Role::Owner)?;
        }
        if current == Role::Owner && input.role != Role::Owner && !self.owners_left(ctx, id).await?
        {
            return Err(AppError::Conflict(
                "an agency keeps at least one owner".into(),
            ));
        }
        let mut a: membership::ActiveModel = m.into();
        a.role = Set(input.role.as_str().into());
        let txn = db::begin_write(&self.db).await?;
        let m = a.update(&txn).await?;
        let change = json!({"role": {"from": current.as_str(), "to": input.role.as_str()}});
        audit::commit(
            txn,
            ctx,
            Audit::new("member", "change_role", Some(id)).with(change),
        )
        .await?;
        self.invalidate(crate::infra::cache::Invalidation::Members(ctx.agency_id))
            .await;
        self.member_view(m).await
    }

    pub async fn remove_member(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<()> {
        let m = self.find_membership(ctx, id).await?;
        ctx.require(Perm::Admin)?;
        if m.role == Role::Owner.as_str() {
            ctx.require_role(Role::Owner)?;
            if !self.owners_left(ctx, id).await? {
                return Err(AppError::Conflict(
                    "an agency keeps at least one owner".into(),
                ));
            }
        }
        let txn = db::begin_write(&self.db).await?;
        membership::Entity::delete_many()
            .filter(membership::Column::AgencyId.eq(ctx.agency_id))
            .filter(membership::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        let gone = json!({"id": id, "user_id": m.user_id, "role": m.role});
        audit::commit(
            txn,
            ctx,
            Audit::new("member", "remove", Some(id)).with(gone),
        )
        .await?;
        self.invalidate(crate::infra::cache::Invalidation::Members(ctx.agency_id))
            .await;
        Ok(())
    }
}

//! Sign-up, login, and the caller's own account.
use anyhow::Context;
use entity::{agency, membership, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};

use uuid::Uuid;

use super::*;
use crate::domain::answers::valid_email;
use crate::domain::locale::Locale;
use crate::infra::audit::{self, Actor, Audit};
use crate::infra::ctx::{Principal, RequestCtx, Role, Scope};
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::{Services, infra::db, new_id, now};
use serde_json::json;

async fn memberships_of<C: ConnectionTrait>(db: &C, user_id: Uuid) -> AppResult<Vec<AgencyView>> {
    let ms = membership::Entity::find()
        .filter(membership::Column::UserId.eq(user_id))
        .all(db)
        .await?;
    let ids: Vec<Uuid> = ms.iter().map(|m| m.agency_id).collect();
    let agencies = agency::Entity::find()
        .filter(agency::Column::Id.is_in(ids))
        .all(db)
        .await?;
    Ok(ms
        .into_iter()
        .filter_map(|m| {
            let a = agencies.iter().find(|a| a.id == m.agency_id)?;
            Some(AgencyView {
                id: a.id,
                name: a.name.clone(),
                role: Role::parse(&m.role)?,
            })
        })
        .collect())
}

pub fn check_password(password: &str, errs: &mut Vec<FieldError>) {
    let n = password.chars().count();
    if !(10..=256).contains(&n) {
        errs.push(FieldError::new("password", "must be 10 to 256 characters"));
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupInput {
    pub agency_name: String,
    pub name: String,
    pub email: String,
    pub password: String,
    /// `ru` or `en`: the agency's staff emails; default `en`.
    #[serde(default)]
    pub locale: Option<String>,
}

/// The caller's own settings; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    /// `ru` or `en`: the language of the emails you get (alerts), whatever
    /// the agency's; an empty string goes back to the agency's (or, for a
    /// client's UX alerts, the client's).
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::locale_or_empty_or_null)]
    pub locale: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub agency_id: Option<Uuid>,
}

#[derive(Debug, Serialize, Clone, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct AgencyView {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Serialize, Clone, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    /// `ru` or `en` if the user chose the language of their emails; absent:
    /// the agency's (or client's) language.
    pub locale: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignupOutput {
    pub token: String,
    pub agency: AgencyView,
    pub user: UserView,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginOutput {
    pub token: String,
    pub agency_id: Uuid,
    pub role: Role,
}

#[derive(Debug, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct MeView {
    pub agency: AgencyView,
    pub user: Option<UserView>,
    pub api_key_id: Option<Uuid>,
    pub scopes: Vec<Scope>,
    pub agencies: Vec<AgencyView>,
}

/// The language new agencies' staff emails come in unless chosen.
pub const DEFAULT_AGENCY_LOCALE: Locale = Locale::En;

impl Services {
    /// `request_id`: the HTTP request's, for the audit log (the new owner is
    /// its actor).
    pub async fn signup(
        &self,
        input: SignupInput,
        request_id: Option<&str>,
    ) -> AppResult<SignupOutput> {
        let mut errs = Vec::new();
        let agency_name = input.agency_name.trim().to_owned();
        let name = input.name.trim().to_owned();
        let email = input.email.trim().to_lowercase();
        if !crate::domain::text::fits(&input.agency_name, 200) {
            errs.push(FieldError::new(
                "agency_name",
                "must be 1 to 200 characters",
            ));
        }
        if !crate::domain::text::fits(&input.name, 200) {
            errs.push(FieldError::new("name", "must be 1 to 200 characters"));
        }
        if !valid_email(&email) {
            errs.push(FieldError::new("email", "is not an email address"));
        }
        check_password(&input.password, &mut errs);
        let locale = match input.locale.as_deref().map(|l| Locale::parse("locale", l)) {
            None => DEFAULT_AGENCY_LOCALE,
            Some(Ok(l)) => l,
            Some(Err(e)) => {
                errs.push(e);
                DEFAULT_AGENCY_LOCALE
            }
        };
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let existing = user::Entity::find()
            .filter(user::Column::Email.eq(&email))
            .one(&self.db)
            .await?;
        // An existing user may open another agency, but only with their password.
        let own_locale = existing.as_ref().and_then(|u| u.locale.clone());
        let (user_id, password_hash) = match existing {
            Some(u) => {
                if !verify_password(input.password.clone(), u.password_hash.clone()).await? {
                    return Err(AppError::Conflict(
                        "this email is registered; sign up with its password to add an agency"
                            .into(),
                    ));
                }
                (u.id, None)
            }
            None => (new_id(), Some(hash_password(input.password).await?)),
        };
        let t = now();
        let agency_id = new_id();
        let txn = db::begin_write(&self.db).await?;
        agency::ActiveModel {
            id: Set(agency_id),
            name: Set(agency_name.clone()),
            logo_url: Set(None),
            brand_colour: Set(None),
            locale: Set(locale.as_str().to_owned()),
            created_at: Set(t),
        }
        .insert(&txn)
        .await?;
        if let Some(hash) = password_hash {
            let inserted = user::ActiveModel {
                id: Set(user_id),
                email: Set(email.clone()),
                name: Set(name.clone()),
                password_hash: Set(hash),
                locale: Set(None),
                created_at: Set(t),
            }
            .insert(&txn)
            .await;
            if let Err(e) = inserted {
                return Err(if crate::infra::db::is_unique_violation(&e) {
                    AppError::Conflict("this email is already registered".into())
                } else {
                    e.into()
                });
            }
        }
        membership::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(agency_id),
            user_id: Set(user_id),
            role: Set(Role::Owner.as_str().into()),
            created_at: Set(t),
        }
        .insert(&txn)
        .await?;
        let opened = Audit::new("agency", "signup", Some(agency_id)).with(json!({
            "agency_name": agency_name, "user_id": user_id, "email": email, "name": name,
            "locale": locale.as_str(),
        }));
        audit::record_as(&txn, agency_id, Actor::User(user_id), request_id, opened).await?;
        txn.commit().await?;
        let token = self.issue_token(user_id, agency_id, Role::Owner)?;
        Ok(SignupOutput {
            token,
            agency: AgencyView {
                id: agency_id,
                name: agency_name,
                role: Role::Owner,
            },
            user: UserView {
                id: user_id,
                email,
                name,
                locale: own_locale,
            },
        })
    }

    /// A successful login is audited in the agency it signs in to.
    pub async fn login(
        &self,
        input: LoginInput,
        request_id: Option<&str>,
    ) -> AppResult<LoginOutput> {
        let email = input.email.trim().to_lowercase();
        let bad = || AppError::Unauthorized("wrong email or password".into());
        let found = user::Entity::find()
            .filter(user::Column::Email.eq(&email))
            .one(&self.db)
            .await?;
        let Some(u) = found else {
            let _ = verify_password(input.password, DUMMY_HASH.into()).await;
            return Err(bad());
        };
        if !verify_password(input.password, u.password_hash.clone()).await? {
            return Err(bad());
        }
        let mut q = membership::Entity::find()
            .filter(membership::Column::UserId.eq(u.id))
            .order_by_asc(membership::Column::CreatedAt);
        if let Some(a) = input.agency_id {
            q = q.filter(membership::Column::AgencyId.eq(a));
        }
        let m = q
            .one(&self.db)
            .await?
            .ok_or_else(|| AppError::Forbidden("the user is not a member of that agency".into()))?;
        let role = Role::parse(&m.role).context("stored role")?;
        let txn = db::begin_write(&self.db).await?;
        let login = Audit::new("user", "login", Some(u.id)).with(json!({"email": email}));
        audit::record_as(&txn, m.agency_id, Actor::User(u.id), request_id, login).await?;
        txn.commit().await?;
        Ok(LoginOutput {
            token: self.issue_token(u.id, m.agency_id, role)?,
            agency_id: m.agency_id,
            role,
        })
    }

    pub async fn me(&self, ctx: &RequestCtx) -> AppResult<MeView> {
        let agency = agency::Entity::find_by_id(ctx.agency_id)
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?;
        let user = match ctx.user_id() {
            Some(id) => user::Entity::find_by_id(id)
                .one(&self.db)
                .await?
                .map(|u| UserView {
                    id: u.id,
                    email: u.email,
                    name: u.name,
                    locale: u.locale,
                }),
            None => None,
        };
        let agencies = match ctx.user_id() {
            Some(id) => memberships_of(&self.db, id).await?,
            None => vec![],
        };
        Ok(MeView {
            agency: AgencyView {
                id: agency.id,
                name: agency.name,
                role: ctx.role.unwrap_or(Role::Viewer),
            },
            user,
            api_key_id: match ctx.principal {
                Principal::ApiKey(id) => Some(id),
                Principal::User(_) => None,
            },
            scopes: ctx.scopes.clone(),
            agencies,
        })
    }

    /// The signed-in user changes their own settings (any role; not API
    /// keys, which have no person behind them).
    pub async fn update_me(&self, ctx: &RequestCtx, input: UpdateMe) -> AppResult<MeView> {
        let Some(user_id) = ctx.user_id() else {
            return Err(AppError::Forbidden(
                "an API key has no user settings; sign in as a user".into(),
            ));
        };
        // "" goes back to the language of the agency or client concerned.
        let locale = match input.locale.as_deref() {
            None => None,
            Some("") => Some(None),
            Some(l) => Some(Some(
                Locale::parse("locale", l).map_err(|e| AppError::Validation(vec![e]))?,
            )),
        };
        if let Some(l) = locale {
            let txn = db::begin_write(&self.db).await?;
            let to = l.map(|l| l.as_str().to_owned());
            user::Entity::update_many()
                .col_expr(
                    user::Column::Locale,
                    Expr::value(l.map(|l| l.as_str().to_owned())),
                )
                .filter(user::Column::Id.eq(user_id))
                .exec(&txn)
                .await?;
            let change =
                Audit::new("user", "update", Some(user_id)).with(json!({"locale": {"to": to}}));
            audit::commit(txn, ctx, change).await?;
        }
        self.me(ctx).await
    }
}

//! Sign-up, login, invitations, members, API keys and the caller itself.
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use service::agency::{AgencySettingsView, UpdateAgencySettings};
use service::api_keys::{ApiKeyView, CreateApiKey, CreatedApiKey};
use service::auth::{LoginInput, LoginOutput, MeView, SignupInput, SignupOutput, UpdateMe};
use service::jobs::JobRunView;
use service::members::{AcceptInvitation, ChangeRole, InvitationResult, InviteMember, MemberView};
use service::page::{Page, PageParams};
use service::platform::audit::{AuditEntryView, AuditFilter};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, State};
use crate::rest::{Errors, created, no_content, ok};

/// Schema of sign-up input.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Signup {
    #[schema(schema_with = service::docs::text_200)]
    agency_name: String,
    #[schema(schema_with = service::docs::text_200)]
    name: String,
    #[schema(schema_with = service::docs::email)]
    email: String,
    /// 10 to 256 characters.
    #[schema(min_length = 10, max_length = 256)]
    password: String,
    /// `ru` or `en` (default `en`): the language of the agency's staff
    /// emails (failed-job alerts) for users who chose none.
    #[schema(schema_with = service::docs::locale_or_null)]
    locale: Option<String>,
}

/// Schema of login input.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Login {
    email: String,
    password: String,
    /// Which agency to sign in to, for members of several.
    agency_id: Option<Uuid>,
}

/// Create an agency and its owner; returns a token.
#[utoipa::path(tag = "auth", request_body = Signup, responses((status = 201, body = SignupOutput), Errors))]
#[post("/auth/signup")]
async fn signup(
    state: State,
    req: HttpRequest,
    JsonBody(input): JsonBody<SignupInput>,
) -> ApiResult<HttpResponse> {
    state.check_auth_rate(&req)?;
    let request_id = crate::extract::request_id(&req);
    Ok(created(
        state.services.signup(input, request_id.as_deref()).await?,
    ))
}

/// Exchange email and password for a token.
#[utoipa::path(tag = "auth", request_body = Login, responses((status = 200, body = LoginOutput), Errors))]
#[post("/auth/login")]
async fn login(
    state: State,
    req: HttpRequest,
    JsonBody(input): JsonBody<LoginInput>,
) -> ApiResult<HttpResponse> {
    state.check_auth_rate(&req)?;
    let request_id = crate::extract::request_id(&req);
    Ok(ok(state
        .services
        .login(input, request_id.as_deref())
        .await?))
}

/// Accept an invitation as a new user; returns a token.
#[utoipa::path(tag = "auth", request_body = AcceptInvitation, responses((status = 201, body = LoginOutput), Errors))]
#[post("/auth/accept-invitation")]
async fn accept_invitation(
    state: State,
    req: HttpRequest,
    JsonBody(input): JsonBody<AcceptInvitation>,
) -> ApiResult<HttpResponse> {
    state.check_auth_rate(&req)?;
    let request_id = crate::extract::request_id(&req);
    Ok(created(
        state
            .services
            .accept_invitation(input, request_id.as_deref())
            .await?,
    ))
}

/// The caller: agency, user or API key, and the user's agencies.
#[utoipa::path(tag = "auth", responses((status = 200, body = MeView), Errors), security(("bearer" = [])))]
#[get("/me")]
async fn me(state: State, Auth(ctx): Auth) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.me(&ctx).await?))
}

/// Change the caller's own settings (users, not API keys): `locale`, the
/// language of the alert emails they get (`ru` or `en`; "" goes back to
/// the agency's, or for a client's UX alerts the client's).
#[utoipa::path(tag = "auth", request_body = UpdateMe, responses((status = 200, body = MeView), Errors), security(("bearer" = [])))]
#[patch("/me")]
async fn update_me(
    state: State,
    Auth(ctx): Auth,
    JsonBody(input): JsonBody<UpdateMe>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.update_me(&ctx, input).await?))
}

/// The caller's agency: name and email branding.
#[utoipa::path(tag = "agency", responses((status = 200, body = AgencySettingsView), Errors), security(("bearer" = [])))]
#[get("/agency")]
async fn get_agency(state: State, Auth(ctx): Auth) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.agency_settings(&ctx).await?))
}

/// Change the agency's name, logo (https URL; "" removes it), brand
/// colour (`#rrggbb`; "" restores the default) — every email the agency
/// sends shows them — or `locale` (`ru`/`en`), the language of its staff's
/// alert emails for users who chose none. Owners and admins.
#[utoipa::path(tag = "agency", request_body = UpdateAgencySettings, responses((status = 200, body = AgencySettingsView), Errors), security(("bearer" = [])))]
#[patch("/agency")]
async fn update_agency(
    state: State,
    Auth(ctx): Auth,
    JsonBody(input): JsonBody<UpdateAgencySettings>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .update_agency_settings(&ctx, input)
        .await?))
}

#[utoipa::path(tag = "members", params(PageParams), responses((status = 200, body = Page<MemberView>), Errors), security(("bearer" = [])))]
#[get("/members")]
async fn list_members(
    state: State,
    Auth(ctx): Auth,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_members(&ctx, page.into_inner())
        .await?))
}

/// Invite by email (owner/admin): existing users are added, others get a token.
#[utoipa::path(tag = "members", request_body = InviteMember, responses((status = 201, body = InvitationResult), Errors), security(("bearer" = [])))]
#[post("/members")]
async fn invite_member(
    state: State,
    Auth(ctx): Auth,
    JsonBody(input): JsonBody<InviteMember>,
) -> ApiResult<HttpResponse> {
    Ok(created(state.services.invite_member(&ctx, input).await?))
}

#[utoipa::path(tag = "members", params(("id" = Uuid, Path, description = "membership id")), request_body = ChangeRole, responses((status = 200, body = MemberView), Errors), security(("bearer" = [])))]
#[patch("/members/{id}")]
async fn change_role(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<ChangeRole>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .change_member_role(&ctx, *id, input)
        .await?))
}

#[utoipa::path(tag = "members", params(("id" = Uuid, Path, description = "membership id")), responses((status = 204), Errors), security(("bearer" = [])))]
#[delete("/members/{id}")]
async fn remove_member(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    state.services.remove_member(&ctx, *id).await?;
    Ok(no_content())
}

#[utoipa::path(tag = "api-keys", params(PageParams), responses((status = 200, body = Page<ApiKeyView>), Errors), security(("bearer" = [])))]
#[get("/api-keys")]
async fn list_api_keys(
    state: State,
    Auth(ctx): Auth,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_api_keys(&ctx, page.into_inner())
        .await?))
}

/// Create a key; the `key` in the answer is shown this once.
#[utoipa::path(tag = "api-keys", request_body = CreateApiKey, responses((status = 201, body = CreatedApiKey), Errors), security(("bearer" = [])))]
#[post("/api-keys")]
async fn create_api_key(
    state: State,
    Auth(ctx): Auth,
    JsonBody(input): JsonBody<CreateApiKey>,
) -> ApiResult<HttpResponse> {
    Ok(created(state.services.create_api_key(&ctx, input).await?))
}

/// Revoke a key; it gets 401 from then on.
#[utoipa::path(tag = "api-keys", params(("id" = Uuid, Path)), responses((status = 200, body = ApiKeyView), Errors), security(("bearer" = [])))]
#[delete("/api-keys/{id}")]
async fn revoke_api_key(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.revoke_api_key(&ctx, *id).await?))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobFilter {
    /// `succeeded`, `retrying` or `failed`.
    #[param(schema_with = service::docs::job_status)]
    status: Option<String>,
}

/// Recompute runs of the agency (admins).
#[utoipa::path(tag = "jobs", params(JobFilter, PageParams), responses((status = 200, body = Page<JobRunView>), Errors), security(("bearer" = [])))]
#[get("/jobs")]
async fn list_jobs(
    state: State,
    Auth(ctx): Auth,
    filter: web::Query<JobFilter>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    let filter = filter.into_inner();
    Ok(ok(state
        .services
        .list_job_runs(&ctx, filter.status, page.into_inner())
        .await?))
}

/// The agency's audit log (owners and admins): every write, who made it,
/// its request id and changed fields; oldest first.
#[utoipa::path(tag = "audit", params(AuditFilter, PageParams), responses((status = 200, body = Page<AuditEntryView>), Errors), security(("bearer" = [])))]
#[get("/audit-log")]
async fn list_audit_log(
    state: State,
    Auth(ctx): Auth,
    filter: web::Query<AuditFilter>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_audit_log(&ctx, filter.into_inner(), page.into_inner())
        .await?))
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(signup)
        .service(login)
        .service(accept_invitation)
        .service(me)
        .service(update_me)
        .service(get_agency)
        .service(update_agency)
        .service(list_members)
        .service(invite_member)
        .service(change_role)
        .service(remove_member)
        .service(list_api_keys)
        .service(create_api_key)
        .service(revoke_api_key)
        .service(list_jobs)
        .service(list_audit_log);
}

//! Subscriber lists, consent, newsletters; and the public endpoints a
//! client's site and its subscribers use without login.
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, delete, get, options, post, put, web};
use service::page::{Page, PageParams};
use service::subscribers::{
    CampaignInput, CampaignStats, CampaignView, ListInput, ListView, ScheduleInput,
    SubscribeAccepted, SubscribeInput, SubscriberExport, SubscriberView, TestSendInput,
};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, ImportBody, JsonBody, State};
use crate::rest::{Errors, created, no_content, ok};

#[utoipa::path(tag = "subscribers", params(("id" = Uuid, Path, description = "client id")), request_body = ListInput, responses((status = 201, body = ListView), Errors), security(("bearer" = [])))]
#[post("/clients/{id}/lists")]
async fn create_list(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<ListInput>,
) -> ApiResult<HttpResponse> {
    Ok(created(state.services.create_list(&ctx, *id, input).await?))
}

#[utoipa::path(tag = "subscribers", params(("id" = Uuid, Path, description = "client id"), PageParams), responses((status = 200, body = Page<ListView>), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/lists")]
async fn list_lists(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_lists(&ctx, *id, page.into_inner())
        .await?))
}

#[utoipa::path(tag = "subscribers", params(("id" = Uuid, Path)), responses((status = 200, body = ListView), Errors), security(("bearer" = [])))]
#[get("/lists/{id}")]
async fn get_list(state: State, Auth(ctx): Auth, id: web::Path<Uuid>) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.get_list(&ctx, *id).await?))
}

/// Change a list; a changed consent text becomes the next version.
#[utoipa::path(tag = "subscribers", params(("id" = Uuid, Path)), request_body = ListInput, responses((status = 200, body = ListView), Errors), security(("bearer" = [])))]
#[put("/lists/{id}")]
async fn update_list(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<ListInput>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.update_list(&ctx, *id, input).await?))
}

#[utoipa::path(tag = "subscribers", params(("id" = Uuid, Path, description = "list id"), PageParams), responses((status = 200, body = Page<SubscriberView>), Errors), security(("bearer" = [])))]
#[get("/lists/{id}/subscribers")]
async fn list_subscribers(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_subscribers(&ctx, *id, page.into_inner())
        .await?))
}

/// Import existing subscribers with their consent: CSV with the columns
/// `email`, `consent_source` and optionally `name`, `locale`, `consent_at`;
/// any other column is an attribute of that name (a number, a `;`-separated
/// list or a string; empty cells are left out). All or nothing; an address
/// already on the list is a duplicate.
#[utoipa::path(tag = "subscribers", params(("id" = Uuid, Path, description = "list id")), request_body(content = String, content_type = "text/csv"), responses((status = 201, body = service::responses::IngestResult), Errors), security(("bearer" = [])))]
#[post("/lists/{id}/subscribers/import")]
async fn import_subscribers(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    body: ImportBody,
) -> ApiResult<HttpResponse> {
    Ok(created(
        state
            .services
            .import_subscribers(&ctx, *id, &body.0)
            .await?,
    ))
}

/// Everything kept about a subscriber (access request).
#[utoipa::path(tag = "subscribers", params(("id" = Uuid, Path)), responses((status = 200, body = SubscriberExport), Errors), security(("bearer" = [])))]
#[get("/subscribers/{id}/export")]
async fn export_subscriber(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.export_subscriber(&ctx, *id).await?))
}

/// Erase a subscriber (erasure request): the record goes, their emails'
/// address and content are blanked.
#[utoipa::path(tag = "subscribers", params(("id" = Uuid, Path)), responses((status = 204), Errors), security(("bearer" = [])))]
#[delete("/subscribers/{id}")]
async fn erase_subscriber(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    state.services.erase_subscriber(&ctx, *id).await?;
    Ok(no_content())
}

#[utoipa::path(tag = "newsletters", params(("id" = Uuid, Path, description = "client id")), request_body = CampaignInput, responses((status = 201, body = CampaignView), Errors), security(("bearer" = [])))]
#[post("/clients/{id}/campaigns")]
async fn create_campaign(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<CampaignInput>,
) -> ApiResult<HttpResponse> {
    Ok(created(
        state.services.create_campaign(&ctx, *id, input).await?,
    ))
}

#[utoipa::path(tag = "newsletters", params(("id" = Uuid, Path, description = "client id"), PageParams), responses((status = 200, body = Page<CampaignView>), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/campaigns")]
async fn list_campaigns(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_campaigns(&ctx, *id, page.into_inner())
        .await?))
}

#[utoipa::path(tag = "newsletters", params(("id" = Uuid, Path)), responses((status = 200, body = CampaignView), Errors), security(("bearer" = [])))]
#[get("/campaigns/{id}")]
async fn get_campaign(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.get_campaign(&ctx, *id).await?))
}

/// Send now to every active subscriber of the list (in its segment, if any).
#[utoipa::path(tag = "newsletters", params(("id" = Uuid, Path)), responses((status = 200, body = CampaignView), Errors), security(("bearer" = [])))]
#[post("/campaigns/{id}/send")]
async fn send_campaign(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.send_campaign(&ctx, *id, None).await?))
}

/// Send at a time in the future.
#[utoipa::path(tag = "newsletters", params(("id" = Uuid, Path)), request_body = ScheduleInput, responses((status = 200, body = CampaignView), Errors), security(("bearer" = [])))]
#[post("/campaigns/{id}/schedule")]
async fn schedule_campaign(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<ScheduleInput>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .send_campaign(&ctx, *id, Some(input.at))
        .await?))
}

/// Stop: nothing not yet sent is sent.
#[utoipa::path(tag = "newsletters", params(("id" = Uuid, Path)), responses((status = 200, body = CampaignView), Errors), security(("bearer" = [])))]
#[post("/campaigns/{id}/cancel")]
async fn cancel_campaign(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.cancel_campaign(&ctx, *id).await?))
}

/// Send a copy marked [TEST] to up to 10 addresses.
#[utoipa::path(tag = "newsletters", params(("id" = Uuid, Path)), request_body = TestSendInput, responses((status = 200, body = Vec<service::email::DeliveryView>), Errors), security(("bearer" = [])))]
#[post("/campaigns/{id}/test")]
async fn test_campaign(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<TestSendInput>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .test_send_campaign(&ctx, *id, input)
        .await?))
}

/// Progress (sent of total) and delivery figures.
#[utoipa::path(tag = "newsletters", params(("id" = Uuid, Path)), responses((status = 200, body = CampaignStats), Errors), security(("bearer" = [])))]
#[get("/campaigns/{id}/stats")]
async fn campaign_stats(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.campaign_stats(&ctx, *id).await?))
}

// ----------------------------------------------------------- public ---

/// The Origin header, if the list allows it.
async fn allowed_origin(state: &State, req: &HttpRequest, list: Uuid) -> ApiResult<Option<String>> {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let allowed = state.services.list_origins(list).await?;
    Ok(allowed
        .iter()
        .any(|o| o == origin)
        .then(|| origin.to_owned()))
}

fn with_cors(mut res: HttpResponse, origin: Option<String>) -> HttpResponse {
    if let Some(o) = origin
        && let Ok(v) = header::HeaderValue::from_str(&o)
    {
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(header::VARY, header::HeaderValue::from_static("Origin"));
    }
    res
}

/// Subscribe from a client's site (no login; rate-limited per IP; CORS for
/// the list's allowed origins). Records the consent and sends a
/// confirmation email; the answer is the same whether or not the address
/// was known.
#[utoipa::path(tag = "public", params(("id" = Uuid, Path, description = "list id")), request_body = SubscribeInput, responses((status = 202, body = SubscribeAccepted), Errors))]
#[post("/public/lists/{id}/subscribe")]
async fn subscribe(
    state: State,
    req: HttpRequest,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<SubscribeInput>,
) -> ApiResult<HttpResponse> {
    state.check_auth_rate(&req)?;
    let origin = allowed_origin(&state, &req, *id).await?;
    let ip = req.peer_addr().map(|a| a.ip().to_string());
    let request_id = crate::extract::request_id(&req);
    let out = state
        .services
        .subscribe(*id, input, ip, request_id.as_deref())
        .await?;
    Ok(with_cors(HttpResponse::Accepted().json(out), origin))
}

/// CORS preflight of the subscribe endpoint.
#[utoipa::path(tag = "public", params(("id" = Uuid, Path, description = "list id")), responses((status = 204), Errors))]
#[options("/public/lists/{id}/subscribe")]
async fn subscribe_preflight(
    state: State,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let origin = allowed_origin(&state, &req, *id).await?;
    let mut res = HttpResponse::NoContent();
    if origin.is_some() {
        res.insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"));
    }
    Ok(with_cors(res.finish(), origin))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// The signed token from the email's link.
    token: String,
}

fn page(title: &str, text: &str) -> HttpResponse {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
             <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto;\"><h1>{t}</h1><p>{x}</p></body></html>",
            t = esc(title),
            x = esc(text)
        ))
}

/// The confirm link of the double opt-in email (idempotent).
#[utoipa::path(tag = "public", params(TokenQuery), responses((status = 200, content_type = "text/html", body = String), Errors))]
#[get("/public/confirm")]
async fn confirm(state: State, q: web::Query<TokenQuery>) -> ApiResult<HttpResponse> {
    let s = state.services.confirm_subscription(&q.token).await?;
    Ok(page(
        "Subscription confirmed",
        &format!("{} is subscribed. Thank you!", s.email),
    ))
}

/// The unsubscribe link: a page with a button (a GET changes nothing, so
/// link scanners cannot unsubscribe anyone).
#[utoipa::path(tag = "public", params(TokenQuery), responses((status = 200, content_type = "text/html", body = String), Errors))]
#[get("/public/unsubscribe")]
async fn unsubscribe_page(state: State, q: web::Query<TokenQuery>) -> ApiResult<HttpResponse> {
    let links = &state.services.links;
    if [
        service::email::links::Purpose::Unsubscribe,
        service::email::links::Purpose::ContactUnsubscribe,
    ]
    .into_iter()
    .all(|p| links.verify(p, &q.token).is_none())
    {
        return Err(service::AppError::NotFound.into());
    }
    let token: String = q
        .token
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-' || *c == '_')
        .collect();
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Unsubscribe</title></head>\
             <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto;\"><h1>Unsubscribe</h1>\
             <form method=\"post\" action=\"?token={token}\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">Unsubscribe me</button></form></body></html>"
        )))
}

/// One-click unsubscribe (RFC 8058: mail clients POST
/// `List-Unsubscribe=One-Click` here). Idempotent.
#[utoipa::path(tag = "public", params(TokenQuery), responses((status = 200, content_type = "text/html", body = String), Errors))]
#[post("/public/unsubscribe")]
async fn unsubscribe(
    state: State,
    req: HttpRequest,
    q: web::Query<TokenQuery>,
) -> ApiResult<HttpResponse> {
    let services = &state.services;
    let request_id = crate::extract::request_id(&req);
    let request_id = request_id.as_deref();
    let contact = services
        .links
        .verify(service::email::links::Purpose::ContactUnsubscribe, &q.token)
        .is_some();
    let text = if contact {
        let email = services.unsubscribe_contact(&q.token, request_id).await?;
        format!("{email} will get no more emails from this sender.")
    } else {
        let s = services.unsubscribe(&q.token, request_id).await?;
        format!("{} will get no more emails from this list.", s.email)
    };
    Ok(page("Unsubscribed", &text))
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_list)
        .service(list_lists)
        .service(get_list)
        .service(update_list)
        .service(list_subscribers)
        .service(import_subscribers)
        .service(export_subscriber)
        .service(erase_subscriber)
        .service(create_campaign)
        .service(list_campaigns)
        .service(get_campaign)
        .service(send_campaign)
        .service(schedule_campaign)
        .service(cancel_campaign)
        .service(test_campaign)
        .service(campaign_stats)
        .service(subscribe)
        .service(subscribe_preflight)
        .service(confirm)
        .service(unsubscribe_page)
        .service(unsubscribe);
}

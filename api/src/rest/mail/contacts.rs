//! Contacts (analytics.md §7): one per client and e-mail, written one at a
//! time, in a JSON batch or imported (NDJSON/CSV), all upserts by e-mail;
//! their outcomes; and the client's qualification: point rules, tier
//! thresholds and the fitted model.
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use service::channels::ChannelReportParams;
use service::contacts::{
    ContactFilter, ContactIngestResult, ContactInput, ContactResponseView, ContactView,
    OutcomeInput,
};
use service::funnel::FunnelReport;
use service::page::{Page, PageParams};
use service::qualify::{ModelView, ScoringInput, ScoringView};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, ImportBody, JsonBody, State};
use crate::rest::{Errors, no_content, ok};

/// The body of `POST /clients/{id}/contacts/batch`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactBatch {
    /// 1 to 10,000 contacts.
    #[schema(min_items = 1, max_items = 10000)]
    pub contacts: Vec<ContactInput>,
}

/// How many contacts a segment matches.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ContactCount {
    pub segment_id: Uuid,
    pub contacts: u64,
}

/// Create the contact of an e-mail, or merge what is sent into the stored
/// one (fields given replace, attributes are merged key by key): sending
/// the same body again changes nothing. Analysts and `ingest`/`write` keys.
#[utoipa::path(tag = "contacts", params(("id" = Uuid, Path, description = "client id")), request_body = ContactInput, responses((status = 200, body = ContactView), Errors), security(("bearer" = [])))]
#[post("/clients/{id}/contacts")]
async fn put_contact(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<ContactInput>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.put_contact(&ctx, *id, input).await?))
}

/// Up to 10,000 contacts, upserted by e-mail; any invalid one → 422 naming
/// `contacts[i].field`, and nothing is stored.
#[utoipa::path(tag = "contacts", params(("id" = Uuid, Path, description = "client id")), request_body = ContactBatch, responses((status = 200, body = ContactIngestResult), Errors), security(("bearer" = [])))]
#[post("/clients/{id}/contacts/batch")]
async fn put_contacts(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<ContactBatch>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .put_contacts(&ctx, *id, input.contacts)
        .await?))
}

/// Import contacts: `application/x-ndjson` (one contact object per line)
/// or `text/csv` (header: `email` and optionally `name`, `locale`,
/// `source_channel`, `funnel`, `customer_ref`, `converted`,
/// `converted_at`, `conversion_value`; every other column an attribute — a
/// number, a `;`-separated list or a string). Up to 100,000 rows, upserted
/// by e-mail, so a re-import changes nothing. Any invalid row → 422 listing
/// the first 100 row/field errors, and nothing is stored.
#[utoipa::path(
    tag = "contacts",
    params(("id" = Uuid, Path, description = "client id")),
    request_body(content(
        (String = "application/x-ndjson"),
        (String = "text/csv")
    )),
    responses((status = 200, body = ContactIngestResult), Errors),
    security(("bearer" = []))
)]
#[post("/clients/{id}/contacts/import")]
async fn import_contacts(
    state: State,
    req: HttpRequest,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    body: ImportBody,
) -> ApiResult<HttpResponse> {
    let format = crate::extract::import_format(&req)?;
    Ok(ok(state
        .services
        .import_contacts(&ctx, *id, format, body.0)
        .await?))
}

/// A client's contacts by id, filtered by tier, status, funnel type, score,
/// e-mail prefix or a saved segment of the client.
#[utoipa::path(tag = "contacts", params(("id" = Uuid, Path, description = "client id"), ContactFilter, PageParams), responses((status = 200, body = Page<ContactView>), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/contacts")]
async fn list_contacts(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    filter: web::Query<ContactFilter>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_contacts(&ctx, *id, filter.into_inner(), page.into_inner())
        .await?))
}

/// One contact with its score, tier and explanation.
#[utoipa::path(tag = "contacts", params(("id" = Uuid, Path, description = "contact id")), responses((status = 200, body = ContactView), Errors), security(("bearer" = [])))]
#[get("/contacts/{id}")]
async fn get_contact(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.get_contact(&ctx, *id).await?))
}

/// The questionnaire responses that carried the contact's e-mail (its
/// answer to an `email` question), by id: each response's id,
/// questionnaire and submission time.
#[utoipa::path(tag = "contacts", params(("id" = Uuid, Path, description = "contact id"), PageParams), responses((status = 200, body = Page<ContactResponseView>), Errors), security(("bearer" = [])))]
#[get("/contacts/{id}/responses")]
async fn contact_responses(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .contact_responses(&ctx, *id, page.into_inner())
        .await?))
}

/// Record a contact's outcome: converted (when, worth what) or not.
#[utoipa::path(tag = "contacts", params(("id" = Uuid, Path, description = "contact id")), request_body = OutcomeInput, responses((status = 200, body = ContactView), Errors), security(("bearer" = [])))]
#[post("/contacts/{id}/outcome")]
async fn record_outcome(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<OutcomeInput>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.record_outcome(&ctx, *id, input).await?))
}

/// Erase a contact and its subscriptions; its emails' addresses and bodies
/// are blanked (counts stay).
#[utoipa::path(tag = "contacts", params(("id" = Uuid, Path, description = "contact id")), responses((status = 204), Errors), security(("bearer" = [])))]
#[delete("/contacts/{id}")]
async fn delete_contact(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    state.services.delete_contact(&ctx, *id).await?;
    Ok(no_content())
}

/// How many of its client's contacts a saved segment matches now (its
/// conditions over attributes and `tier`, `score`, `probability`, `status`,
/// `funnel`, `source_channel`).
#[utoipa::path(tag = "contacts", params(("id" = Uuid, Path, description = "segment id")), responses((status = 200, body = ContactCount), Errors), security(("bearer" = [])))]
#[get("/segments/{id}/contact-count")]
async fn segment_contact_count(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let contacts = state.services.segment_contact_count(&ctx, *id).await?;
    Ok(ok(ContactCount {
        segment_id: *id,
        contacts,
    }))
}

/// The client's point rules, tier thresholds and λ.
#[utoipa::path(tag = "contacts", params(("id" = Uuid, Path, description = "client id")), responses((status = 200, body = ScoringView), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/scoring")]
async fn get_scoring(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.get_scoring(&ctx, *id).await?))
}

/// Replace the client's point rules (and thresholds, λ); the worker
/// rescores every contact.
#[utoipa::path(tag = "contacts", params(("id" = Uuid, Path, description = "client id")), request_body = ScoringInput, responses((status = 200, body = ScoringView), Errors), security(("bearer" = [])))]
#[put("/clients/{id}/scoring")]
async fn put_scoring(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<ScoringInput>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.put_scoring(&ctx, *id, input).await?))
}

/// The client's logistic model (intercept, weight per feature, fit
/// figures), retrained by the worker when outcomes change, or why there is
/// none yet.
#[utoipa::path(tag = "contacts", params(("id" = Uuid, Path, description = "client id")), responses((status = 200, body = ModelView), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/scoring/model")]
async fn contact_model(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.contact_model(&ctx, *id).await?))
}

/// The funnel per funnel type over `[from, to]` (default: the last 12
/// weeks): contacts that arrived then → qualified (hot or warm) → enrolled
/// in a chain → converted, each step's rate (null for a zero denominator),
/// and the spend of those days per contact, qualified contact and
/// conversion.
#[utoipa::path(tag = "contacts", params(("id" = Uuid, Path, description = "client id"), ChannelReportParams), responses((status = 200, body = FunnelReport), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/funnel-report")]
async fn funnel_report(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    params: web::Query<ChannelReportParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .funnel_report(&ctx, *id, params.into_inner())
        .await?))
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(funnel_report)
        .service(put_contact)
        .service(put_contacts)
        .service(import_contacts)
        .service(list_contacts)
        .service(get_contact)
        .service(contact_responses)
        .service(record_outcome)
        .service(delete_contact)
        .service(segment_contact_count)
        .service(get_scoring)
        .service(put_scoring)
        .service(contact_model);
}

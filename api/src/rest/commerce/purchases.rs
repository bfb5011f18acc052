//! Purchases in, the JTBD value-migration map out (analytics.md §6).
use actix_web::{HttpRequest, HttpResponse, get, post, put, web};
use service::page::{Page, PageParams};
use service::purchases::{
    CustomerPurchaseView, JtbdParams, JtbdResultsView, JtbdRulesInput, JtbdRulesView,
    PurchaseIngestResult, PurchaseInput, PurchaseView,
};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, ImportBody, JsonBody, State};
use crate::rest::{Errors, created, ok};

/// Schema of the rules as sent.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct JtbdRulesIn {
    /// Ordered rules: `{"label": "business_lunch", "weekdays": ["Mon",
    /// "Tue", "Wed", "Thu", "Fri"], "hours": {"from": 12, "to": 14}}`;
    /// other predicates: `items`, `party_size`, `amount` (`{"min", "max"}`)
    /// and `channels`. Every predicate given must hold.
    #[schema(max_items = 100)]
    rules: Vec<JtbdRuleIn>,
}

/// Schema of one labelling rule: every predicate given must hold.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct JtbdRuleIn {
    /// The JTBD label; not `none` (reserved for periods without purchases).
    #[schema(schema_with = service::docs::text_64)]
    label: String,
    /// Days of the purchase's local date: `Mon` … `Sun` (or the full
    /// names, in any case).
    #[schema(schema_with = weekdays)]
    weekdays: Option<Vec<String>>,
    hours: Option<HourRangeIn>,
    items: Option<CountRangeIn>,
    party_size: Option<CountRangeIn>,
    amount: Option<AmountRangeIn>,
    /// The purchase's channel is one of these.
    #[schema(schema_with = channels)]
    channels: Option<Vec<String>>,
}

/// Hours `from..=to` of the local time; wraps past midnight when
/// `from > to`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct HourRangeIn {
    #[schema(minimum = 0, maximum = 23)]
    from: u32,
    #[schema(minimum = 0, maximum = 23)]
    to: u32,
}

/// A closed range of counts; a missing bound is open (`min` ≤ `max`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CountRangeIn {
    #[schema(minimum = 0, maximum = 4294967295_u32)]
    min: Option<u32>,
    #[schema(minimum = 0, maximum = 4294967295_u32)]
    max: Option<u32>,
}

/// A closed range of money; a missing bound is open (`min` ≤ `max`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct AmountRangeIn {
    #[schema(minimum = 0, maximum = 1e12)]
    min: Option<f64>,
    #[schema(minimum = 0, maximum = 1e12)]
    max: Option<f64>,
}

/// chrono's weekday names as it reads them: the three-letter or the full
/// English name, in any case.
fn weekdays() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    let any_case = |w: &str| -> String {
        w.chars()
            .map(|c| format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase()))
            .collect()
    };
    let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let rests = ["day", "sday", "nesday", "rsday", "day", "urday", "day"];
    let alternatives: Vec<String> = days
        .iter()
        .zip(rests)
        .map(|(d, r)| format!("{}({})?", any_case(d), any_case(r)))
        .collect();
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(format!("^({})$", alternatives.join("|")))),
        )
        .min_items(Some(1))
        .build()
}

/// 1 to 64 characters each, at least one.
fn channels() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(64)),
        )
        .min_items(Some(1))
        .build()
}

/// Submit one purchase (analysts and `ingest`/`write` API keys).
#[utoipa::path(tag = "purchases", params(("id" = Uuid, Path, description = "client id")), request_body = PurchaseInput, responses((status = 201, body = PurchaseIngestResult), Errors), security(("bearer" = [])))]
#[post("/clients/{id}/purchases")]
async fn submit_purchase(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let input = service::purchases::purchase_from_json(input)?;
    Ok(created(
        state.services.submit_purchase(&ctx, *id, input).await?,
    ))
}

/// Import many purchases at once: `application/x-ndjson` (one purchase
/// object per line) or `text/csv` (header: `customer_ref`, `purchased_at`,
/// `amount`, `items`, `party_size`, optional `external_id`, `channel`). Up to
/// 1,000,000 rows. Any invalid row → 422 listing the first 100 row/field
/// errors, and nothing is stored. Re-sent `external_id`s are duplicates.
#[utoipa::path(
    tag = "purchases",
    params(("id" = Uuid, Path, description = "client id")),
    request_body(content(
        (String = "application/x-ndjson"),
        (String = "text/csv")
    )),
    responses((status = 201, body = PurchaseIngestResult), Errors),
    security(("bearer" = []))
)]
#[post("/clients/{id}/purchases/import")]
async fn import_purchases(
    state: State,
    req: HttpRequest,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    body: ImportBody,
) -> ApiResult<HttpResponse> {
    let format = crate::extract::import_format(&req)?;
    Ok(created(
        state
            .services
            .import_purchases(&ctx, *id, format, body.0)
            .await?,
    ))
}

#[utoipa::path(tag = "purchases", params(("id" = Uuid, Path, description = "client id"), PageParams), responses((status = 200, body = Page<PurchaseView>), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/purchases")]
async fn list_purchases(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_purchases(&ctx, *id, page.into_inner())
        .await?))
}

/// One customer's purchases with their JTBD labels under the current rules.
#[utoipa::path(tag = "purchases", params(("id" = Uuid, Path, description = "client id"), ("customer_ref" = String, Path), PageParams), responses((status = 200, body = Page<CustomerPurchaseView>), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/customers/{customer_ref}/purchases")]
async fn customer_purchases(
    state: State,
    Auth(ctx): Auth,
    path: web::Path<(Uuid, String)>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    let (id, customer_ref) = path.into_inner();
    Ok(ok(state
        .services
        .customer_purchases(&ctx, id, &customer_ref, page.into_inner())
        .await?))
}

#[utoipa::path(tag = "purchases", params(("id" = Uuid, Path, description = "client id")), responses((status = 200, body = JtbdRulesView), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/jtbd-rules")]
async fn get_jtbd_rules(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.get_jtbd_rules(&ctx, *id).await?))
}

/// Replace the client's ordered labelling rules (analysts and up); an
/// invalid rule → 422 naming `rules[i].field`.
#[utoipa::path(tag = "purchases", params(("id" = Uuid, Path, description = "client id")), request_body = JtbdRulesIn, responses((status = 200, body = JtbdRulesView), Errors), security(("bearer" = [])))]
#[put("/clients/{id}/jtbd-rules")]
async fn put_jtbd_rules(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<JtbdRulesInput>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.put_jtbd_rules(&ctx, *id, input).await?))
}

/// The JTBD value-migration map as of D: RFM per customer (paginated by
/// customer_ref) and per segment, the migration matrix between consecutive
/// periods, churn, LTV and inter-purchase intervals per JTBD. Computed on
/// read from the stored purchases, read in the client's time zone.
#[utoipa::path(tag = "purchases", params(("id" = Uuid, Path, description = "client id"), JtbdParams), responses((status = 200, body = JtbdResultsView), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/jtbd")]
async fn jtbd_results(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    params: web::Query<JtbdParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .jtbd_results(&ctx, *id, params.into_inner())
        .await?))
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(submit_purchase)
        .service(import_purchases)
        .service(list_purchases)
        .service(customer_purchases)
        .service(get_jtbd_rules)
        .service(put_jtbd_rules)
        .service(jtbd_results);
}

//! Engagement tracking in campaign emails: the public open pixel and
//! click-through redirect (no login; the signed token names the delivery,
//! and only that delivery's row is touched), and a campaign's link clicks.
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use service::mail::tracking::LinkClicks;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, State};
use crate::rest::{Errors, ok};

/// The campaign's clicked links: clicks and unique clickers per URL, most
/// unique clickers first (links nobody clicked are not listed).
#[utoipa::path(tag = "newsletters", params(("id" = Uuid, Path)), responses((status = 200, body = Vec<LinkClicks>), Errors), security(("bearer" = [])))]
#[get("/campaigns/{id}/links")]
async fn campaign_links(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.campaign_links(&ctx, *id).await?))
}

/// A transparent 1×1 GIF (42 bytes).
const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x01, 0x44, 0x00, 0x3b,
];

/// Every open and click must reach us, not a cache.
const NO_STORE: &str = "no-store, no-cache, must-revalidate, private";

fn user_agent(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
}

/// The open pixel of a campaign email: always the 1×1 GIF, uncached. A
/// genuine token of a tracked delivery records an `opened` event; a forged
/// or unknown one records nothing (a broken image would show in the mail
/// client), nor does a failure to record, which is logged.
#[utoipa::path(tag = "public", params(("token" = String, Path, description = "the signed delivery token of the email's pixel")), responses((status = 200, content_type = "image/gif", body = Vec<u8>), Errors))]
#[get("/public/t/o/{token}")]
async fn open_pixel(
    state: State,
    req: HttpRequest,
    token: web::Path<String>,
) -> ApiResult<HttpResponse> {
    if let Err(e) = state.services.record_open(&token, user_agent(&req)).await {
        tracing::warn!(error = %format!("{e:?}"), "an email open was not recorded");
    }
    Ok(HttpResponse::Ok()
        .content_type("image/gif")
        .insert_header((header::CACHE_CONTROL, NO_STORE))
        .body(PIXEL_GIF))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClickQuery {
    /// The original URL the email linked to.
    u: Option<String>,
    /// The signature of this delivery and exactly that URL.
    s: Option<String>,
}

/// A click-through link of a campaign email: a 302 to the original URL,
/// only for a genuine token and a signature of exactly that URL for that
/// delivery (so it redirects only to links the email contained); anything
/// else is 404 and never redirects. Records a `clicked` event when the
/// delivery is tracked.
#[utoipa::path(tag = "public", params(("token" = String, Path, description = "the signed delivery token of the email's link"), ClickQuery), responses((status = 302, description = "to the original URL (`Location`)"), Errors))]
#[get("/public/t/c/{token}")]
async fn click_through(
    state: State,
    req: HttpRequest,
    token: web::Path<String>,
    q: web::Query<ClickQuery>,
) -> ApiResult<HttpResponse> {
    let (Some(url), Some(signature)) = (q.u.as_deref(), q.s.as_deref()) else {
        return Err(service::AppError::NotFound.into());
    };
    let to = state
        .services
        .follow_click(&token, url, signature, user_agent(&req))
        .await?;
    let location = header::HeaderValue::from_str(&to).map_err(|_| service::AppError::NotFound)?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, NO_STORE))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .finish())
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(campaign_links)
        .service(open_pixel)
        .service(click_through);
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_pixel_is_a_one_by_one_gif() {
        let gif = super::PIXEL_GIF;
        assert_eq!(&gif[..6], b"GIF89a");
        assert_eq!(&gif[6..10], &[1, 0, 1, 0], "width and height 1");
        assert_eq!(gif.last(), Some(&0x3b), "the trailer");
    }
}

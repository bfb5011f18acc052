//! The OpenAPI 3.1 document, generated from the handlers' annotations.
use actix_web::App;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_actix_web::{AppExt, scope};

use crate::rest;

mod contract;
mod examples;
mod links;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Growthpoint API",
        version = "1.0.0",
        description = "Customer research in, living analytics out. Authenticate with `Authorization: Bearer <JWT>` (from /auth/signup or /auth/login) or `Bearer gp_…` (an API key). Errors are RFC 9457 problem documents with a stable `code`. Lists take `limit` (1–200) and `after` (the previous page's `next_cursor`)."
    ),
    modifiers(&BearerAuth),
    components(schemas(crate::error::Problem, crate::error::ProblemField))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A JWT, or an API key `gp_<public id>_<secret>`"))
                    .build(),
            ),
        );
    }
}

/// Registers every documented route on a utoipa-aware app.
pub fn routes<T>(app: utoipa_actix_web::UtoipaApp<T>) -> utoipa_actix_web::UtoipaApp<T>
where
    T: actix_web::dev::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Error = actix_web::Error,
            InitError = (),
        >,
{
    app.openapi(ApiDoc::openapi())
        .service(rest::health::healthz)
        .service(rest::health::readyz)
        .service(scope::scope("/api/v1").configure(rest::configure))
}

/// The document, without a running server.
pub fn document() -> utoipa::openapi::OpenApi {
    routes(App::new().into_utoipa_app()).split_for_parts().1
}

/// The document as served and as checked in: pretty JSON, newline-terminated.
pub fn document_json() -> String {
    let mut doc = serde_json::to_value(document()).unwrap_or_default();
    contract::tighten(&mut doc);
    examples::add_examples(&mut doc);
    links::add_links(&mut doc);
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

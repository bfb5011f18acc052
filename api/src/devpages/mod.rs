//! The developer pages: GraphiQL at `GET /graphql` and the REST reference
//! (Swagger UI over `/api/v1/openapi.json`) at `GET /api/v1/docs`.
//!
//! Every byte they load is in the binary: the vendored npm builds under
//! `api/assets/` (versions, licences and checksums in its README) and the
//! pages and init scripts beside this file. They work without internet
//! access, and their Content-Security-Policy lets them reach only this
//! origin.
use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256};

use crate::error::problem_response;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Under `/graphql/assets/`.
const GRAPHIQL_ASSETS: &[Asset] = &[
    Asset {
        name: "react.production.min.js",
        content_type: JS,
        bytes: include_bytes!("../../assets/graphiql/react.production.min.js"),
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: JS,
        bytes: include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    },
    Asset {
        name: "graphiql.min.js",
        content_type: JS,
        bytes: include_bytes!("../../assets/graphiql/graphiql.min.js"),
    },
    Asset {
        name: "graphiql.min.css",
        content_type: CSS,
        bytes: include_bytes!("../../assets/graphiql/graphiql.min.css"),
    },
    Asset {
        name: "graphiql-init.js",
        content_type: JS,
        bytes: include_bytes!("graphiql-init.js"),
    },
    Asset {
        name: "devpages.css",
        content_type: CSS,
        bytes: include_bytes!("devpages.css"),
    },
];

/// Under `/api/v1/docs/assets/`.
const DOCS_ASSETS: &[Asset] = &[
    Asset {
        name: "swagger-ui-bundle.js",
        content_type: JS,
        bytes: include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
    },
    Asset {
        name: "swagger-ui.css",
        content_type: CSS,
        bytes: include_bytes!("../../assets/swagger-ui/swagger-ui.css"),
    },
    Asset {
        name: "docs-init.js",
        content_type: JS,
        bytes: include_bytes!("docs-init.js"),
    },
    Asset {
        name: "devpages.css",
        content_type: CSS,
        bytes: include_bytes!("devpages.css"),
    },
];

pub const GRAPHIQL_ASSETS_PREFIX: &str = "/graphql/assets";
pub const DOCS_PATH: &str = "/api/v1/docs";
pub const DOCS_ASSETS_PREFIX: &str = "/api/v1/docs/assets";

/// Only this origin, and no inline script or style. `data:` images and fonts
/// are the icons and typefaces inlined in the vendored stylesheets.
/// `{style}` is `style-src`: `'self'`, plus a nonce on GraphiQL.
fn csp(style: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src {style}; \
         img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// A page with its `{{asset}}` placeholders replaced by the asset's URL,
/// which carries a digest of its content: the assets can then be cached
/// for good, and a new binary's page names new URLs.
fn render(template: &str, prefix: &str, assets: &[Asset]) -> String {
    assets.iter().fold(template.to_owned(), |page, a| {
        let digest = hex::encode(&Sha256::digest(a.bytes)[..8]);
        page.replace(
            &format!("{{{{{}}}}}", a.name),
            &format!("{prefix}/{}?v={digest}", a.name),
        )
    })
}

static GRAPHIQL_PAGE: LazyLock<String> = LazyLock::new(|| {
    render(
        include_str!("graphiql.html"),
        GRAPHIQL_ASSETS_PREFIX,
        GRAPHIQL_ASSETS,
    )
});

static DOCS_PAGE: LazyLock<String> =
    LazyLock::new(|| render(include_str!("docs.html"), DOCS_ASSETS_PREFIX, DOCS_ASSETS));

fn page(html: String, csp: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(html)
}

fn asset(assets: &[Asset], name: &str) -> HttpResponse {
    match assets.iter().find(|a| a.name == name) {
        Some(a) => HttpResponse::Ok()
            .content_type(a.content_type)
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .body(a.bytes),
        None => problem_response(&service::AppError::NotFound),
    }
}

/// GraphiQL's dialogs lock scrolling with a `<style>` element they create,
/// stamped with the global `__webpack_nonce__` if there is one: the init
/// script sets it from its own `nonce`, fresh for every response.
pub async fn graphiql() -> HttpResponse {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    page(
        GRAPHIQL_PAGE.replace("{{nonce}}", &nonce),
        csp(&format!("'self' 'nonce-{nonce}'")),
    )
}

pub async fn graphiql_asset(name: web::Path<String>) -> HttpResponse {
    asset(GRAPHIQL_ASSETS, &name)
}

pub async fn docs() -> HttpResponse {
    page(DOCS_PAGE.clone(), csp("'self'"))
}

pub async fn docs_asset(name: web::Path<String>) -> HttpResponse {
    asset(DOCS_ASSETS, &name)
}

/// The pages and their assets need no database: they answer during an
/// outage, like `/api/v1/openapi.json`.
pub fn is_static(method: &actix_web::http::Method, path: &str) -> bool {
    *method == actix_web::http::Method::GET
        && (path == "/graphql"
            || path == DOCS_PATH
            || path
                .strip_prefix(GRAPHIQL_ASSETS_PREFIX)
                .or_else(|| path.strip_prefix(DOCS_ASSETS_PREFIX))
                .is_some_and(|rest| rest.starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_name_every_asset_by_a_same_origin_url_and_nothing_else() {
        for (page, prefix) in [
            (GRAPHIQL_PAGE.as_str(), GRAPHIQL_ASSETS_PREFIX),
            (DOCS_PAGE.as_str(), DOCS_ASSETS_PREFIX),
        ] {
            let page = page.replace("{{nonce}}", "n");
            assert!(!page.contains("{{"), "a placeholder is left: {page}");
            assert!(
                !page.contains("//"),
                "an absolute or protocol-relative URL: {page}"
            );
            for src in page.split(['"', '\'']).filter(|s| s.starts_with('/')) {
                assert!(src.starts_with(prefix), "{src} is not under {prefix}");
            }
        }
    }

    #[test]
    fn only_the_pages_and_their_assets_are_static() {
        use actix_web::http::Method;
        assert!(is_static(&Method::GET, "/graphql"));
        assert!(is_static(&Method::GET, "/graphql/assets/graphiql.min.js"));
        assert!(is_static(&Method::GET, "/api/v1/docs"));
        assert!(is_static(&Method::GET, "/api/v1/docs/assets/docs-init.js"));
        assert!(!is_static(&Method::POST, "/graphql"));
        assert!(!is_static(&Method::GET, "/graphql/assetsx"));
        assert!(!is_static(&Method::GET, "/api/v1/docsx"));
        assert!(!is_static(&Method::GET, "/api/v1/clients"));
    }
}

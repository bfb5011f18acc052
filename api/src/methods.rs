//! Which methods each known path takes, so that a request no route took is
//! told apart: an undeclared method on a known path is 405 with `Allow`, an
//! unknown path 404.
//!
//! The table is the OpenAPI document's `paths` (built from the very
//! registrations actix routes by, so it is exact for every documented
//! route) plus the few routes outside the document, listed where they are
//! registered (`startup.rs`).
//!
//! `HEAD` is taken wherever `GET` is (RFC 9110 §9.3.2): the guard hands
//! it on as a `GET`, and the connection, which saw the request's own
//! method, sends the headers without the body. `Allow` names it.
//!
//! It is consulted before routing ([`guard`]): where a literal path sits
//! beside a template (`/cash-models/{id}/actuals/from-channels`, POST, and
//! `/cash-models/{id}/actuals/{period}`, GET PUT DELETE), actix would hand
//! `PUT …/from-channels` to the template's handler; OpenAPI matches the
//! literal path first, and so does this: it is a 405.
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::{HttpRequest, HttpResponse};
use futures::future::{Either, Ready, ready};
use serde_json::Value;
use service::AppError;

use crate::error::{Problem, problem_response};

/// The methods an OpenAPI path item may declare, in `Allow` order.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: any one non-empty segment.
    Param,
}

#[derive(Debug)]
struct Template {
    segments: Vec<Segment>,
    methods: Vec<&'static str>,
}

/// Path templates and their methods.
#[derive(Debug, Default)]
pub struct AllowedMethods {
    templates: Vec<Template>,
}

fn segments(path: &str) -> Vec<Segment> {
    path.split('/')
        .skip(1)
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                Segment::Param
            } else {
                Segment::Literal(s.to_owned())
            }
        })
        .collect()
}

impl AllowedMethods {
    /// From an OpenAPI document (as JSON) and `extra` routes outside it.
    pub fn new(openapi: &Value, extra: &[(&str, &[&'static str])]) -> Self {
        let mut table = Self::default();
        if let Some(paths) = openapi["paths"].as_object() {
            for (path, item) in paths {
                let methods = METHODS
                    .into_iter()
                    .filter(|m| item.get(m.to_ascii_lowercase()).is_some())
                    .collect();
                table.add(path, methods);
            }
        }
        for (path, methods) in extra {
            table.add(path, methods.to_vec());
        }
        table
    }

    fn add(&mut self, path: &str, methods: Vec<&'static str>) {
        let segments = segments(path);
        match self.templates.iter_mut().find(|t| t.segments == segments) {
            Some(t) => {
                t.methods.extend(methods);
                t.methods
                    .sort_by_key(|m| METHODS.iter().position(|x| x == m));
                t.methods.dedup();
            }
            None => self.templates.push(Template { segments, methods }),
        }
    }

    /// The methods of the template `path` matches, the most literal one
    /// when several do (`/clients/archived` before `/clients/{id}`, as
    /// OpenAPI reads them); None for an unknown path.
    pub fn allowed(&self, path: &str) -> Option<&[&'static str]> {
        let parts: Vec<&str> = path.split('/').skip(1).collect();
        self.templates
            .iter()
            .filter(|t| {
                t.segments.len() == parts.len()
                    && t.segments.iter().zip(&parts).all(|(s, p)| match s {
                        Segment::Literal(l) => l == p,
                        Segment::Param => !p.is_empty(),
                    })
            })
            .max_by(|a, b| {
                let literal = |t: &Template| {
                    t.segments
                        .iter()
                        .map(|s| matches!(s, Segment::Literal(_)))
                        .collect::<Vec<_>>()
                };
                literal(a).cmp(&literal(b))
            })
            .map(|t| t.methods.as_slice())
    }

    /// The answer to a request no route took: 405 with `Allow` when its
    /// path is known and its method is not among the path's, else 404.
    pub fn refuse(&self, req: &HttpRequest) -> HttpResponse {
        match self.allowed(req.path()) {
            Some(methods) if !takes(methods, req.method().as_str()) => {
                method_not_allowed(req.method().as_str(), methods)
            }
            _ => problem_response(&AppError::NotFound),
        }
    }
}

/// Whether a path with `methods` takes `method` (`HEAD` wherever `GET`).
fn takes(methods: &[&str], method: &str) -> bool {
    methods.contains(&method) || (method == "HEAD" && methods.contains(&"GET"))
}

/// `methods` as `Allow` names them: with `HEAD` after `GET`.
fn allow(methods: &[&str]) -> String {
    let mut all: Vec<&str> = Vec::with_capacity(methods.len() + 1);
    for m in methods {
        all.push(m);
        if *m == "GET" && !methods.contains(&"HEAD") {
            all.push("HEAD");
        }
    }
    all.join(", ")
}

/// The middleware: a request whose path is known and whose method is not
/// among the path's is answered 405 here, before routing; the rest go on.
pub fn guard<S>(
    table: &AllowedMethods,
    mut req: ServiceRequest,
    srv: &S,
) -> Either<Ready<Result<ServiceResponse, actix_web::Error>>, S::Future>
where
    S: Service<ServiceRequest, Response = ServiceResponse, Error = actix_web::Error>,
{
    match table.allowed(req.path()) {
        Some(methods) if !takes(methods, req.method().as_str()) => {
            let res = method_not_allowed(req.method().as_str(), methods);
            Either::Left(ready(Ok(req.into_response(res))))
        }
        Some(methods) if req.method() == Method::HEAD && !methods.contains(&"HEAD") => {
            req.head_mut().method = Method::GET;
            Either::Right(srv.call(req))
        }
        _ => Either::Right(srv.call(req)),
    }
}

/// 405 as a problem document, `Allow` naming the path's methods.
fn method_not_allowed(method: &str, allowed: &[&str]) -> HttpResponse {
    let allow = allow(allowed);
    let body = Problem {
        type_: "/problems/method_not_allowed".into(),
        title: "Method Not Allowed".into(),
        status: 405,
        detail: format!("{method} is not allowed here; this path allows {allow}"),
        code: "method_not_allowed".into(),
        errors: vec![],
    };
    HttpResponse::MethodNotAllowed()
        .insert_header((header::CONTENT_TYPE, "application/problem+json"))
        .insert_header((header::ALLOW, allow))
        .body(serde_json::to_string(&body).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::AllowedMethods;

    fn table() -> AllowedMethods {
        AllowedMethods::new(
            &json!({"paths": {
                "/api/v1/clients/{id}": {"get": {}, "patch": {}, "delete": {}, "parameters": []},
                "/api/v1/clients/archived": {"get": {}},
                "/api/v1/clients": {"post": {}, "get": {}},
            }}),
            &[("/graphql", &["POST"]), ("/graphql", &["GET"])],
        )
    }

    #[test]
    fn methods_come_in_allow_order_from_the_most_literal_template() {
        let t = table();
        assert_eq!(
            t.allowed("/api/v1/clients/0190"),
            Some(&["GET", "PATCH", "DELETE"][..])
        );
        assert_eq!(t.allowed("/api/v1/clients/archived"), Some(&["GET"][..]));
        assert_eq!(t.allowed("/api/v1/clients"), Some(&["GET", "POST"][..]));
        assert_eq!(t.allowed("/graphql"), Some(&["GET", "POST"][..]));
    }

    #[test]
    fn head_goes_wherever_get_does() {
        let t = table();
        let get = t.allowed("/api/v1/clients/archived").unwrap();
        assert!(super::takes(get, "HEAD") && !super::takes(get, "POST"));
        assert_eq!(super::allow(get), "GET, HEAD");
        let no_get = &["POST", "DELETE"][..];
        assert!(!super::takes(no_get, "HEAD"));
        assert_eq!(super::allow(no_get), "POST, DELETE");
        assert_eq!(
            super::allow(t.allowed("/api/v1/clients/0190").unwrap()),
            "GET, HEAD, PATCH, DELETE"
        );
    }

    #[test]
    fn unknown_paths_have_no_methods() {
        let t = table();
        for path in [
            "/api/v1/clients/",
            "/api/v1/clients/x/y",
            "/api/v1/client",
            "/",
            "",
        ] {
            assert_eq!(t.allowed(path), None, "{path}");
        }
    }
}

//! `extensions.code` on the errors async-graphql raises itself, before any
//! resolver runs: a document that does not parse, fails validation, or
//! passes the depth or complexity limits. Resolver errors get theirs from
//! [`super::gql_error`]; with this, every error a client sees has a code.
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Variables};

/// The document is not GraphQL.
pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
/// The document does not fit the schema (unknown field, bad argument,
/// unknown or missing operation name, …).
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
/// Past [`super::MAX_COMPLEXITY`].
pub const TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";
/// Past [`super::MAX_DEPTH`], or nested past the parser's recursion limit.
pub const TOO_DEEP: &str = "QUERY_TOO_DEEP";

/// The schema extension (`build_schema` adds it).
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

/// async-graphql tells its limit errors apart only by their messages
/// (`validation/mod.rs`, `schema.rs` of async-graphql 7); the API test
/// pins them, so an upgrade that rewords one fails there.
fn limit_code(message: &str) -> Option<&'static str> {
    if message == "Query is too complex." {
        Some(TOO_COMPLEX)
    } else if message == "Query is nested too deep."
        || message.starts_with("The recursion depth of the query cannot be greater than")
    {
        Some(TOO_DEEP)
    } else {
        None
    }
}

/// Sets `code` unless the error has one.
fn with_code(mut e: ServerError, fallback: &'static str) -> ServerError {
    let ext = e.extensions.get_or_insert_with(Default::default);
    if ext.get("code").is_none() {
        ext.set("code", limit_code(&e.message).unwrap_or(fallback));
    }
    e
}

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables)
            .await
            .map_err(|e| with_code(e, PARSE_FAILED))
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| with_code(e, VALIDATION_FAILED))
                .collect()
        })
    }

    /// What is refused after validation but before execution (an unknown
    /// or missing operation name) has no path: a validation failure too.
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        response.errors = std::mem::take(&mut response.errors)
            .into_iter()
            .map(|e| {
                if e.path.is_empty() {
                    with_code(e, VALIDATION_FAILED)
                } else {
                    e
                }
            })
            .collect();
        response
    }
}

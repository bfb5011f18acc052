//! GraphQL at `/graphql`: a thin adapter over the same service calls as REST.
//! Depth and complexity are limited; lists are paginated like REST.
pub mod codes;
mod commerce;
mod loaders;
mod mail;
mod platform;
mod research;

use async_graphql::{EmptySubscription, ErrorExtensions, MergedObject, Schema, SimpleObject};
use service::page::Page;
use service::{AppError, RequestCtx, Services};

/// Every query, one object per area.
#[derive(MergedObject, Default)]
pub struct Query(
    platform::PlatformQuery,
    research::ResearchQuery,
    research::TracksQuery,
    commerce::CommerceQuery,
    mail::MailQuery,
    mail::ContactsQuery,
    mail::ChainsQuery,
    mail::SenderQuery,
    platform::WebhooksQuery,
    platform::ReportLinksQuery,
);

// Every mutation, one object per area (no doc comment: it would change the schema).
#[derive(MergedObject, Default)]
pub struct Mutation(
    platform::PlatformMutation,
    research::ResearchMutation,
    research::TracksMutation,
    commerce::CommerceMutation,
    mail::MailMutation,
    mail::ContactsMutation,
    mail::ChainsMutation,
    mail::SenderMutation,
    platform::WebhooksMutation,
    platform::ReportLinksMutation,
);

pub type GpSchema = Schema<Query, Mutation, EmptySubscription>;

pub const MAX_DEPTH: usize = 10;
pub const MAX_COMPLEXITY: usize = 1000;

/// `extensions.code` of an error that means the database is unreachable.
pub const CODE_UNAVAILABLE: &str = "DATABASE_UNAVAILABLE";

/// The one place the schema is built.
pub fn build_schema(services: Services) -> GpSchema {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .data(services)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .extension(codes::ErrorCodes)
        .finish()
}

/// The caller as resolved from the request's bearer token, or why not.
pub struct Caller(pub Result<RequestCtx, AppError>);

/// What one request carries: its caller, and the caller's DataLoaders.
pub fn request_data(
    request: async_graphql::Request,
    services: &Services,
    caller: Result<RequestCtx, AppError>,
) -> async_graphql::Request {
    let request = match &caller {
        Ok(ctx) => request.data(loaders::Loaders::new(services, ctx)),
        Err(_) => request,
    };
    request.data(Caller(caller))
}

pub(crate) fn caller<'a>(
    ctx: &async_graphql::Context<'a>,
) -> async_graphql::Result<&'a RequestCtx> {
    match ctx.data::<Caller>() {
        Ok(Caller(Ok(c))) => Ok(c),
        Ok(Caller(Err(e))) => Err(gql_error(clone_err(e))),
        Err(_) => Err(gql_error(AppError::Unauthorized(
            "missing bearer token".into(),
        ))),
    }
}

pub(crate) fn services<'a>(ctx: &async_graphql::Context<'a>) -> &'a Services {
    ctx.data_unchecked::<Services>()
}

fn clone_err(e: &AppError) -> AppError {
    match e {
        AppError::Unauthorized(m) => AppError::Unauthorized(m.clone()),
        AppError::RateLimited { retry_after_secs } => AppError::RateLimited {
            retry_after_secs: *retry_after_secs,
        },
        AppError::DatabaseUnavailable(m) => AppError::DatabaseUnavailable(m.clone()),
        other => AppError::Unauthorized(other.public_detail()),
    }
}

/// `AppError` → a GraphQL error with `extensions.code` (and `fields`).
pub fn gql_error(e: AppError) -> async_graphql::Error {
    let e = e.normalized();
    if let AppError::Unexpected(inner) = &e {
        tracing::error!(error = %format!("{inner:?}"), "graphql request failed");
    }
    let code = e.code().to_uppercase();
    let fields = match &e {
        AppError::Validation(errs) => Some(errs.clone()),
        _ => None,
    };
    async_graphql::Error::new(e.public_detail()).extend_with(|_, ext| {
        ext.set("code", code.clone());
        if let Some(fields) = &fields {
            let list: Vec<async_graphql::Value> = fields
                .iter()
                .map(|f| {
                    let mut m = async_graphql::indexmap::IndexMap::new();
                    m.insert(
                        async_graphql::Name::new("field"),
                        async_graphql::Value::from(f.field.clone()),
                    );
                    m.insert(
                        async_graphql::Name::new("message"),
                        async_graphql::Value::from(f.message.clone()),
                    );
                    if let Some(r) = f.row {
                        m.insert(
                            async_graphql::Name::new("row"),
                            async_graphql::Value::from(r as u64),
                        );
                    }
                    async_graphql::Value::Object(m)
                })
                .collect();
            ext.set("fields", async_graphql::Value::List(list));
        }
    })
}

pub(crate) trait OrGql<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> OrGql<T> for Result<T, AppError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(gql_error)
    }
}

macro_rules! gql_page {
    ($($name:ident => $t:ty),* $(,)?) => {
        $(
            #[derive(SimpleObject)]
            pub struct $name {
                pub items: Vec<$t>,
                /// Pass as `after` for the next page; null on the last.
                pub next_cursor: Option<String>,
            }
            impl From<Page<$t>> for $name {
                fn from(p: Page<$t>) -> Self {
                    Self { items: p.items, next_cursor: p.next_cursor }
                }
            }
        )*
    };
}

gql_page!(
    ClientPage => service::clients::ClientView,
    ApiKeyPage => service::api_keys::ApiKeyView,
    MemberPage => service::members::MemberView,
    LibraryPage => service::libraries::LibrarySummary,
    QuestionnairePage => service::questionnaires::QuestionnaireView,
    ResponsePage => service::responses::ResponseView,
    SegmentPage => service::segments::SegmentView,
    TrackPage => service::tracks::TrackView,
    JobRunPage => service::jobs::JobRunView,
    AuditPage => service::platform::audit::AuditEntryView,
    CashModelPage => service::cash::CashModelView,
    PurchasePage => service::purchases::PurchaseView,
    CustomerPurchasePage => service::purchases::CustomerPurchaseView,
    UxAlertPage => service::ux::UxAlertView,
    DeliveryPage => service::email::DeliveryView,
    ContactPage => service::contacts::ContactView,
    ContactResponsePage => service::contacts::ContactResponseView,
    ChainPage => service::chains::ChainView,
    EnrolmentPage => service::chains::EnrolmentView,
    WebhookDeliveryPage => service::webhook_endpoints::WebhookDeliveryView,
    ReportLinkPage => service::report_links::ReportLinkView,
);

pub(crate) fn page(first: Option<i32>, after: Option<String>) -> service::page::PageParams {
    service::page::PageParams {
        // A negative page size becomes out of range and is refused as such.
        limit: first.map(|f| u64::try_from(f).unwrap_or(0)),
        after,
    }
}

/// A `POST /graphql` body → the request, refusing what the parser must not
/// see: U+0000, and JSON or GraphQL nested deeper than
/// [`service::domain::nesting::MAX_NESTING`] (the parsers recurse once per
/// level). The document itself is parsed when the schema executes it.
pub fn parse_request(body: &[u8]) -> Result<async_graphql::Request, service::AppError> {
    use service::AppError;
    use service::domain::nesting;
    if let Some(field) = service::domain::nul::json_nul_path(body) {
        return Err(AppError::field(field, service::domain::nul::MESSAGE));
    }
    if nesting::json_exceeds(body, nesting::MAX_NESTING) {
        return Err(AppError::field(
            "body",
            nesting::message(nesting::MAX_NESTING),
        ));
    }
    let request: async_graphql::Request = serde_json::from_slice(body)
        .map_err(|e| AppError::field("body", format!("is not a GraphQL request: {e}")))?;
    // Before the parser, which recurses once per level of the document.
    if nesting::graphql_exceeds(&request.query, nesting::MAX_NESTING) {
        return Err(AppError::field(
            "query",
            nesting::message(nesting::MAX_NESTING),
        ));
    }
    Ok(request)
}

/// An `ID` argument as a uuid, or an error naming `field`.
pub(crate) fn parse_id(id: &async_graphql::ID, field: &str) -> async_graphql::Result<uuid::Uuid> {
    uuid::Uuid::parse_str(id)
        .map_err(|_| gql_error(service::AppError::field(field, "is not an id")))
}

/// A JSON input parsed like a REST body, errors naming `input.<field>`.
pub(crate) fn parse_input<T: serde::de::DeserializeOwned + 'static>(
    v: serde_json::Value,
) -> async_graphql::Result<T> {
    let body = serde_json::to_vec(&v).map_err(|e| gql_error(AppError::Unexpected(e.into())))?;
    crate::extract::parse_json::<T>(&body)
        .map_err(|e| match e {
            AppError::Validation(mut errs) => {
                for f in &mut errs {
                    f.field = format!("input.{}", f.field);
                }
                AppError::Validation(errs)
            }
            other => other,
        })
        .gql()
}

pub(crate) fn parse_filter(
    v: serde_json::Value,
) -> async_graphql::Result<service::domain::segment_filter::SegmentFilter> {
    let body = serde_json::to_vec(&v).map_err(|e| gql_error(AppError::Unexpected(e.into())))?;
    crate::extract::parse_json::<service::domain::segment_filter::SegmentFilter>(&body)
        .map_err(|e| match e {
            AppError::Validation(mut errs) => {
                for f in &mut errs {
                    f.field = format!("filter.{}", f.field);
                }
                AppError::Validation(errs)
            }
            other => other,
        })
        .gql()
}

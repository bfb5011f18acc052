//! GraphQL of the platform area, beside its REST twin in `rest/platform/`.
mod mutation;
mod query;
mod report_links;
mod webhooks;
pub use mutation::PlatformMutation;
pub use query::PlatformQuery;
pub use report_links::{ReportLinksMutation, ReportLinksQuery};
pub use webhooks::{WebhooksMutation, WebhooksQuery};

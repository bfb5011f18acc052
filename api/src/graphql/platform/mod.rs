//! GraphQL of the platform area, beside its REST twin in `rest/platform/`.
mod mutation;
mod query;
pub use mutation::PlatformMutation;
pub use query::PlatformQuery;

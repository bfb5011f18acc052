//! GraphQL of the commerce area, beside its REST twin in `rest/commerce/`.
mod mutation;
mod query;
pub use mutation::CommerceMutation;
pub use query::CommerceQuery;

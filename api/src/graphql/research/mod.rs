//! GraphQL of the research area, beside its REST twin in `rest/research/`.
mod mutation;
mod query;
pub use mutation::ResearchMutation;
pub use query::ResearchQuery;

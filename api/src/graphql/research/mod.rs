//! GraphQL of the research area, beside its REST twin in `rest/research/`.
mod mutation;
mod query;
mod tracks;
pub use mutation::ResearchMutation;
pub use query::ResearchQuery;
pub use tracks::{TracksMutation, TracksQuery};

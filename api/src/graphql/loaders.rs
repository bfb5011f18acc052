//! DataLoaders: a relation resolved for every item of a page is fetched in
//! one batch per request, scoped to the caller's agency like any service
//! call (one per request, since they hold the caller).
use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use service::segments::SegmentView;
use service::subscribers::{CampaignStats, ListView};
use service::{AppError, RequestCtx, Services};
use uuid::Uuid;

use super::gql_error;

pub struct Batch {
    services: Services,
    ctx: RequestCtx,
}

pub struct Loaders {
    pub lists: DataLoader<ListLoader>,
    pub segments: DataLoader<SegmentLoader>,
    pub campaign_stats: DataLoader<CampaignStatsLoader>,
}

impl Loaders {
    pub fn new(services: &Services, ctx: &RequestCtx) -> Self {
        let batch = || Batch {
            services: services.clone(),
            ctx: ctx.clone(),
        };
        Loaders {
            lists: DataLoader::new(ListLoader(batch()), tokio::spawn),
            segments: DataLoader::new(SegmentLoader(batch()), tokio::spawn),
            campaign_stats: DataLoader::new(CampaignStatsLoader(batch()), tokio::spawn),
        }
    }
}

/// The loaders of this request, or why there are none (no valid caller).
pub(crate) fn loaders<'a>(ctx: &async_graphql::Context<'a>) -> async_graphql::Result<&'a Loaders> {
    super::caller(ctx)?;
    ctx.data::<Loaders>().map_err(|_| {
        gql_error(AppError::Unexpected(anyhow::anyhow!(
            "no loaders in the request"
        )))
    })
}

/// A loader of `$value`s by id through one batch method of `Services`.
macro_rules! batch_loader {
    ($($name:ident => $value:ty, $method:ident, $key:ident);* $(;)?) => {
        $(
            pub struct $name(Batch);

            impl Loader<Uuid> for $name {
                type Value = $value;
                type Error = async_graphql::Error;

                async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, $value>, Self::Error> {
                    let b = &self.0;
                    b.services
                        .$method(&b.ctx, keys)
                        .await
                        .map(|v| v.into_iter().map(|x| (x.$key, x)).collect())
                        .map_err(gql_error)
                }
            }
        )*
    };
}

batch_loader!(
    ListLoader => ListView, lists_by_ids, id;
    SegmentLoader => SegmentView, segments_by_ids, id;
    CampaignStatsLoader => CampaignStats, campaign_stats_many, campaign_id;
);

//! The email product over GraphQL: subscriber lists, subscribers (list,
//! export, erase), newsletter campaigns, client digests and the agency's
//! branding. Each field calls the `Services` method its REST route calls;
//! relations of listed items (a campaign's list, segment and stats, a
//! subscriber's list) go through the request's DataLoaders.
use async_graphql::{ComplexObject, Context, Result, SimpleObject};
use service::AppError;

use crate::graphql::loaders::loaders;
use service::page::Page;
use service::segments::SegmentView;
use service::subscribers::{CampaignStats, CampaignView, ListView, SubscriberView};

use crate::graphql::gql_error;

mod chains;
mod contacts;
mod mutation;
mod query;
mod sender;
pub use chains::{ChainsMutation, ChainsQuery};
pub use contacts::{ContactsMutation, ContactsQuery};
pub use mutation::MailMutation;
pub use query::MailQuery;
pub use sender::{SenderMutation, SenderQuery};

/// A newsletter campaign with its list, segment and progress.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Campaign {
    #[graphql(flatten)]
    pub campaign: CampaignView,
}

#[ComplexObject]
impl Campaign {
    /// The list it goes to.
    async fn list(&self, ctx: &Context<'_>) -> Result<ListView> {
        loaders(ctx)?
            .lists
            .load_one(self.campaign.list_id)
            .await?
            .ok_or_else(|| gql_error(AppError::NotFound))
    }

    /// The saved segment narrowing the list, if any (null if deleted since
    /// the campaign was sent).
    async fn segment(&self, ctx: &Context<'_>) -> Result<Option<SegmentView>> {
        match self.campaign.segment_id {
            None => Ok(None),
            Some(id) => loaders(ctx)?.segments.load_one(id).await,
        }
    }

    /// Progress and delivery figures, as `campaignStats`.
    async fn stats(&self, ctx: &Context<'_>) -> Result<CampaignStats> {
        loaders(ctx)?
            .campaign_stats
            .load_one(self.campaign.id)
            .await?
            .ok_or_else(|| gql_error(AppError::NotFound))
    }
}

impl From<CampaignView> for Campaign {
    fn from(campaign: CampaignView) -> Self {
        Campaign { campaign }
    }
}

/// A subscriber of a list, with their consent record.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Subscriber {
    #[graphql(flatten)]
    pub subscriber: SubscriberView,
}

#[ComplexObject]
impl Subscriber {
    async fn list(&self, ctx: &Context<'_>) -> Result<ListView> {
        loaders(ctx)?
            .lists
            .load_one(self.subscriber.list_id)
            .await?
            .ok_or_else(|| gql_error(AppError::NotFound))
    }
}

impl From<SubscriberView> for Subscriber {
    fn from(subscriber: SubscriberView) -> Self {
        Subscriber { subscriber }
    }
}

macro_rules! wrapped_page {
    ($($name:ident => $t:ty),* $(,)?) => {
        $(
            #[derive(SimpleObject)]
            pub struct $name {
                pub items: Vec<$t>,
                /// Pass as `after` for the next page; null on the last.
                pub next_cursor: Option<String>,
            }
            impl<V: Into<$t>> From<Page<V>> for $name {
                fn from(p: Page<V>) -> Self {
                    Self {
                        items: p.items.into_iter().map(Into::into).collect(),
                        next_cursor: p.next_cursor,
                    }
                }
            }
        )*
    };
}

wrapped_page!(
    ListPage => ListView,
    SubscriberPage => Subscriber,
    CampaignPage => Campaign,
);

/// An email as it would be sent now.
#[derive(SimpleObject)]
pub struct EmailPreview {
    pub subject: String,
    pub html: String,
    pub text: String,
}

impl From<service::email::Rendered> for EmailPreview {
    fn from(r: service::email::Rendered) -> Self {
        EmailPreview {
            subject: r.subject,
            html: r.html,
            text: r.text,
        }
    }
}

//! The email product over GraphQL: subscriber lists, subscribers (list,
//! export, erase), newsletter campaigns, client digests and the agency's
//! branding. Each field calls the `Services` method its REST route calls;
//! relations of listed items (a campaign's list, segment and stats, a
//! subscriber's list) go through the request's DataLoaders.
use async_graphql::{ComplexObject, Context, ID, Object, Result, SimpleObject};
use service::AppError;
use service::agency::{AgencySettingsView, UpdateAgencySettings};
use service::digest::{DigestSettingsInput, DigestSettingsView};
use service::email::DeliveryView;
use service::page::Page;
use service::segments::SegmentView;
use service::subscribers::{
    CampaignInput, CampaignStats, CampaignView, ListInput, ListView, SubscriberExport,
    SubscriberView, TestSendInput,
};

use super::loaders::loaders;
use super::query::parse_id;
use super::{OrGql, caller, gql_error, page, services};

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

#[derive(Default)]
pub struct EmailQuery;

#[Object]
impl EmailQuery {
    /// The caller's agency: name and email branding.
    async fn agency_settings(&self, ctx: &Context<'_>) -> Result<AgencySettingsView> {
        services(ctx).agency_settings(caller(ctx)?).await.gql()
    }

    /// A client's subscriber lists.
    async fn lists(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<ListPage> {
        services(ctx)
            .list_lists(
                caller(ctx)?,
                parse_id(&client_id, "clientId")?,
                page(first, after),
            )
            .await
            .map(Into::into)
            .gql()
    }

    async fn list(&self, ctx: &Context<'_>, id: ID) -> Result<ListView> {
        services(ctx)
            .get_list(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
    }

    /// A list's subscribers, every status.
    async fn subscribers(
        &self,
        ctx: &Context<'_>,
        list_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<SubscriberPage> {
        services(ctx)
            .list_subscribers(
                caller(ctx)?,
                parse_id(&list_id, "listId")?,
                page(first, after),
            )
            .await
            .map(Into::into)
            .gql()
    }

    /// Everything kept about a subscriber (access request; owners and admins).
    async fn subscriber_export(&self, ctx: &Context<'_>, id: ID) -> Result<SubscriberExport> {
        services(ctx)
            .export_subscriber(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
    }

    /// A client's newsletter campaigns.
    async fn campaigns(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<CampaignPage> {
        services(ctx)
            .list_campaigns(
                caller(ctx)?,
                parse_id(&client_id, "clientId")?,
                page(first, after),
            )
            .await
            .map(Into::into)
            .gql()
    }

    async fn campaign(&self, ctx: &Context<'_>, id: ID) -> Result<Campaign> {
        services(ctx)
            .get_campaign(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .map(Into::into)
            .gql()
    }

    /// Progress (sent of total) and delivery figures.
    async fn campaign_stats(&self, ctx: &Context<'_>, id: ID) -> Result<CampaignStats> {
        services(ctx)
            .campaign_stats(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
    }

    /// The email of `kind` (`digest` or `ux_alerts`) for a client as it
    /// would be sent now, without sending it.
    async fn email_preview(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        kind: String,
    ) -> Result<EmailPreview> {
        services(ctx)
            .preview_email(caller(ctx)?, parse_id(&client_id, "clientId")?, &kind)
            .await
            .map(Into::into)
            .gql()
    }

    /// When and to whom the client's digest goes, with the next send.
    async fn digest_settings(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
    ) -> Result<DigestSettingsView> {
        services(ctx)
            .digest_settings(caller(ctx)?, parse_id(&client_id, "clientId")?)
            .await
            .gql()
    }
}

#[derive(Default)]
pub struct EmailMutation;

#[Object]
impl EmailMutation {
    /// Name, logo (https URL; "" removes it) and brand colour (`#rrggbb`;
    /// "" restores the default) of every email, and the staff's email
    /// language `locale` (`ru`/`en`) (owners and admins).
    async fn update_agency_settings(
        &self,
        ctx: &Context<'_>,
        input: UpdateAgencySettings,
    ) -> Result<AgencySettingsView> {
        services(ctx)
            .update_agency_settings(caller(ctx)?, input)
            .await
            .gql()
    }

    async fn create_list(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        input: ListInput,
    ) -> Result<ListView> {
        services(ctx)
            .create_list(caller(ctx)?, parse_id(&client_id, "clientId")?, input)
            .await
            .gql()
    }

    /// A changed consent text becomes the next version.
    async fn update_list(&self, ctx: &Context<'_>, id: ID, input: ListInput) -> Result<ListView> {
        services(ctx)
            .update_list(caller(ctx)?, parse_id(&id, "id")?, input)
            .await
            .gql()
    }

    /// Erasure request: the record goes, their emails' address and content
    /// are blanked.
    async fn erase_subscriber(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        services(ctx)
            .erase_subscriber(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .map(|_| true)
            .gql()
    }

    /// A draft campaign to a list, optionally narrowed to a saved segment
    /// of the same client.
    async fn create_campaign(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        input: CampaignInput,
    ) -> Result<Campaign> {
        services(ctx)
            .create_campaign(caller(ctx)?, parse_id(&client_id, "clientId")?, input)
            .await
            .map(Into::into)
            .gql()
    }

    /// Send now to the list's active subscribers (in the segment, if any).
    async fn send_campaign(&self, ctx: &Context<'_>, id: ID) -> Result<Campaign> {
        services(ctx)
            .send_campaign(caller(ctx)?, parse_id(&id, "id")?, None)
            .await
            .map(Into::into)
            .gql()
    }

    /// Send at a time in the future.
    async fn schedule_campaign(
        &self,
        ctx: &Context<'_>,
        id: ID,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Campaign> {
        services(ctx)
            .send_campaign(caller(ctx)?, parse_id(&id, "id")?, Some(at))
            .await
            .map(Into::into)
            .gql()
    }

    /// Stop: nothing not yet sent is sent.
    async fn cancel_campaign(&self, ctx: &Context<'_>, id: ID) -> Result<Campaign> {
        services(ctx)
            .cancel_campaign(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .map(Into::into)
            .gql()
    }

    /// A copy marked [TEST] to up to 10 addresses.
    async fn test_send_campaign(
        &self,
        ctx: &Context<'_>,
        id: ID,
        emails: Vec<String>,
    ) -> Result<Vec<DeliveryView>> {
        services(ctx)
            .test_send_campaign(caller(ctx)?, parse_id(&id, "id")?, TestSendInput { emails })
            .await
            .gql()
    }

    /// The client's digest now, to its report recipients (owners and
    /// admins); the number of emails queued.
    async fn send_digest_now(&self, ctx: &Context<'_>, client_id: ID) -> Result<u64> {
        services(ctx)
            .send_digest_now(caller(ctx)?, parse_id(&client_id, "clientId")?)
            .await
            .gql()
    }

    async fn update_digest_settings(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        input: DigestSettingsInput,
    ) -> Result<DigestSettingsView> {
        services(ctx)
            .update_digest_settings(caller(ctx)?, parse_id(&client_id, "clientId")?, input)
            .await
            .gql()
    }
}

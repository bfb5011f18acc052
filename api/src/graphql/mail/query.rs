//! GraphQL queries of deliveries, previews, digests, lists, subscribers and
//! campaigns.
use async_graphql::{Context, ID, Object, Result};

use service::digest::DigestSettingsView;
use service::subscribers::{CampaignStats, ListView, SubscriberExport};

use super::*;
use crate::graphql::{DeliveryPage, OrGql, caller, page, parse_id, services};

#[derive(Default)]
pub struct MailQuery;

#[Object]
impl MailQuery {
    /// The agency's emails and their status (owners and admins).
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        filter: Option<service::email::DeliveryFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<DeliveryPage> {
        services(ctx)
            .list_deliveries(caller(ctx)?, filter.unwrap_or_default(), page(first, after))
            .await
            .map(Into::into)
            .gql()
    }

    async fn delivery(&self, ctx: &Context<'_>, id: ID) -> Result<service::email::DeliveryView> {
        services(ctx)
            .get_delivery(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
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

    /// The campaign's clicked links, most unique clickers first.
    async fn campaign_links(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<Vec<service::mail::tracking::LinkClicks>> {
        services(ctx)
            .campaign_links(caller(ctx)?, parse_id(&id, "id")?)
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

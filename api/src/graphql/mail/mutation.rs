//! GraphQL mutations of deliveries, previews, digests, lists, subscribers
//! and campaigns.
use async_graphql::{Context, ID, Object, Result};

use service::digest::{DigestSettingsInput, DigestSettingsView};
use service::email::DeliveryView;
use service::subscribers::{CampaignInput, ListInput, ListView, TestSendInput};

use super::*;
use crate::graphql::{OrGql, caller, parse_id, services};

#[derive(Default)]
pub struct MailMutation;

#[Object]
impl MailMutation {
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

//! Webhook endpoints over GraphQL: the same service calls as
//! `rest/platform/webhooks.rs`.
use async_graphql::{Context, ID, Object, Result};
use service::webhook_endpoints::{
    WebhookDeliveryView, WebhookEndpointInput, WebhookEndpointPatch, WebhookEndpointView,
    WebhookEventTypeView, WebhookSecretView,
};

use crate::graphql::{OrGql, WebhookDeliveryPage, caller, page, parse_id, services};

#[derive(Default)]
pub struct WebhooksQuery;

#[Object]
impl WebhooksQuery {
    /// The event types an endpoint may subscribe to.
    async fn webhook_event_types(&self, ctx: &Context<'_>) -> Result<Vec<WebhookEventTypeView>> {
        services(ctx).webhook_event_types(caller(ctx)?).gql()
    }

    /// The agency's webhook endpoints (owners and admins).
    async fn webhook_endpoints(&self, ctx: &Context<'_>) -> Result<Vec<WebhookEndpointView>> {
        services(ctx)
            .list_webhook_endpoints(caller(ctx)?)
            .await
            .gql()
    }

    async fn webhook_endpoint(&self, ctx: &Context<'_>, id: ID) -> Result<WebhookEndpointView> {
        services(ctx)
            .get_webhook_endpoint(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
    }

    /// An endpoint's deliveries, oldest first.
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        endpoint_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<WebhookDeliveryPage> {
        services(ctx)
            .list_webhook_deliveries(
                caller(ctx)?,
                parse_id(&endpoint_id, "endpointId")?,
                page(first, after),
            )
            .await
            .map(Into::into)
            .gql()
    }
}

#[derive(Default)]
pub struct WebhooksMutation;

#[Object]
impl WebhooksMutation {
    /// Adds an endpoint; the answer holds its secret, shown only now.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: WebhookEndpointInput,
    ) -> Result<WebhookSecretView> {
        services(ctx)
            .create_webhook_endpoint(caller(ctx)?, input)
            .await
            .gql()
    }

    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: WebhookEndpointPatch,
    ) -> Result<WebhookEndpointView> {
        services(ctx)
            .update_webhook_endpoint(caller(ctx)?, parse_id(&id, "id")?, input)
            .await
            .gql()
    }

    /// Removes an endpoint and its delivery log; true when done.
    async fn delete_webhook_endpoint(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        services(ctx)
            .delete_webhook_endpoint(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()?;
        Ok(true)
    }

    /// A new secret (shown only now); the previous one signs for 24 h more.
    async fn rotate_webhook_secret(&self, ctx: &Context<'_>, id: ID) -> Result<WebhookSecretView> {
        services(ctx)
            .rotate_webhook_secret(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
    }

    /// Sends a `webhook.ping` event to the endpoint.
    async fn ping_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<WebhookDeliveryView> {
        services(ctx)
            .ping_webhook_endpoint(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
    }

    /// Sends one delivery again (same `webhook-id`).
    async fn resend_webhook_delivery(
        &self,
        ctx: &Context<'_>,
        endpoint_id: ID,
        delivery_id: ID,
    ) -> Result<WebhookDeliveryView> {
        services(ctx)
            .resend_webhook_delivery(
                caller(ctx)?,
                parse_id(&endpoint_id, "endpointId")?,
                parse_id(&delivery_id, "deliveryId")?,
            )
            .await
            .gql()
    }
}

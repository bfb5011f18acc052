//! A client's own sender over GraphQL: the same service calls as
//! `rest/mail/sender.rs`.
use async_graphql::{Context, ID, Object, Result};
use service::sender::{SenderInput, SenderTestInput, SenderTestView, SenderView};

use crate::graphql::{OrGql, caller, parse_id, services};

#[derive(Default)]
pub struct SenderQuery;

#[Object]
impl SenderQuery {
    /// The client's sender (its SMTP URL is never returned).
    async fn client_sender(&self, ctx: &Context<'_>, client_id: ID) -> Result<SenderView> {
        services(ctx)
            .client_sender(caller(ctx)?, parse_id(&client_id, "clientId")?)
            .await
            .gql()
    }
}

#[derive(Default)]
pub struct SenderMutation;

#[Object]
impl SenderMutation {
    /// Sets the client's sender (owners and admins).
    async fn set_client_sender(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        input: SenderInput,
    ) -> Result<SenderView> {
        services(ctx)
            .set_client_sender(caller(ctx)?, parse_id(&client_id, "clientId")?, input)
            .await
            .gql()
    }

    /// Back to the global sender; true when done.
    async fn delete_client_sender(&self, ctx: &Context<'_>, client_id: ID) -> Result<bool> {
        services(ctx)
            .delete_client_sender(caller(ctx)?, parse_id(&client_id, "clientId")?)
            .await
            .gql()?;
        Ok(true)
    }

    /// Sends a test email from the client's sender now.
    async fn test_client_sender(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        input: SenderTestInput,
    ) -> Result<SenderTestView> {
        services(ctx)
            .test_client_sender(caller(ctx)?, parse_id(&client_id, "clientId")?, input)
            .await
            .gql()
    }
}

//! Nurture chains over GraphQL: the same service calls as
//! `rest/mail/chains.rs`.
use async_graphql::{Context, ID, Object, Result};
use service::chains::{ChainInput, ChainStats, ChainView};

use crate::graphql::{ChainPage, EnrolmentPage, OrGql, caller, page, parse_id, services};

#[derive(Default)]
pub struct ChainsQuery;

#[Object]
impl ChainsQuery {
    /// A client's nurture chains.
    async fn chains(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<ChainPage> {
        services(ctx)
            .list_chains(
                caller(ctx)?,
                parse_id(&client_id, "clientId")?,
                page(first, after),
            )
            .await
            .map(Into::into)
            .gql()
    }

    async fn chain(&self, ctx: &Context<'_>, id: ID) -> Result<ChainView> {
        services(ctx)
            .get_chain(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
    }

    /// Enrolments by status and exit reason, and per-step figures.
    async fn chain_stats(&self, ctx: &Context<'_>, id: ID) -> Result<ChainStats> {
        services(ctx)
            .chain_stats(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
    }

    async fn chain_enrolments(
        &self,
        ctx: &Context<'_>,
        id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<EnrolmentPage> {
        services(ctx)
            .list_enrolments(caller(ctx)?, parse_id(&id, "id")?, page(first, after))
            .await
            .map(Into::into)
            .gql()
    }
}

#[derive(Default)]
pub struct ChainsMutation;

#[Object]
impl ChainsMutation {
    async fn create_chain(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        input: ChainInput,
    ) -> Result<ChainView> {
        services(ctx)
            .create_chain(caller(ctx)?, parse_id(&client_id, "clientId")?, input)
            .await
            .gql()
    }

    async fn update_chain(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ChainInput,
    ) -> Result<ChainView> {
        services(ctx)
            .update_chain(caller(ctx)?, parse_id(&id, "id")?, input)
            .await
            .gql()
    }

    async fn pause_chain(&self, ctx: &Context<'_>, id: ID) -> Result<ChainView> {
        services(ctx)
            .set_chain_status(caller(ctx)?, parse_id(&id, "id")?, false)
            .await
            .gql()
    }

    async fn resume_chain(&self, ctx: &Context<'_>, id: ID) -> Result<ChainView> {
        services(ctx)
            .set_chain_status(caller(ctx)?, parse_id(&id, "id")?, true)
            .await
            .gql()
    }
}

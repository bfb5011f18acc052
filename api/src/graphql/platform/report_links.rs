//! Report links over GraphQL: the same service calls as
//! `rest/platform/report_links.rs`.
use async_graphql::{Context, ID, Object, Result};
use service::report_links::{ReportLinkInput, ReportLinkView};

use crate::graphql::{OrGql, ReportLinkPage, caller, page, parse_id, services};

#[derive(Default)]
pub struct ReportLinksQuery;

#[Object]
impl ReportLinksQuery {
    /// A client's report links, revoked and expired ones too, oldest first
    /// (owners and admins).
    async fn report_links(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<ReportLinkPage> {
        services(ctx)
            .list_report_links(
                caller(ctx)?,
                parse_id(&client_id, "clientId")?,
                page(first, after),
            )
            .await
            .map(Into::into)
            .gql()
    }
}

#[derive(Default)]
pub struct ReportLinksMutation;

#[Object]
impl ReportLinksMutation {
    /// A new signed link to the client's live report page (`url`).
    async fn create_report_link(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        #[graphql(default)] input: ReportLinkInput,
    ) -> Result<ReportLinkView> {
        services(ctx)
            .create_report_link(caller(ctx)?, parse_id(&client_id, "clientId")?, input)
            .await
            .gql()
    }

    /// Revokes a link: its page is gone at once; it stays listed.
    async fn revoke_report_link(&self, ctx: &Context<'_>, id: ID) -> Result<ReportLinkView> {
        services(ctx)
            .revoke_report_link(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
    }
}

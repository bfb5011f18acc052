//! GraphQL queries of the agency, its people, API keys, job runs, clients
//! and touchpoint libraries.
use async_graphql::{Context, ID, Object, Result};

use service::agency::AgencySettingsView;
use service::auth::MeView;
use service::clients::ClientView;
use service::libraries::LibraryView;

use crate::graphql::{
    ApiKeyPage, AuditPage, ClientPage, JobRunPage, LibraryPage, MemberPage, OrGql, caller, page,
    parse_id, services,
};

#[derive(Default)]
pub struct PlatformQuery;

#[Object]
impl PlatformQuery {
    /// The caller: agency, user or API key.
    async fn me(&self, ctx: &Context<'_>) -> Result<MeView> {
        services(ctx).me(caller(ctx)?).await.gql()
    }

    async fn clients(
        &self,
        ctx: &Context<'_>,
        include_archived: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<ClientPage> {
        services(ctx)
            .list_clients(
                caller(ctx)?,
                include_archived.unwrap_or(false),
                page(first, after),
            )
            .await
            .map(Into::into)
            .gql()
    }

    async fn client(&self, ctx: &Context<'_>, id: ID) -> Result<ClientView> {
        services(ctx)
            .get_client(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
    }

    async fn touchpoint_libraries(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<LibraryPage> {
        services(ctx)
            .list_libraries(caller(ctx)?, page(first, after))
            .await
            .map(Into::into)
            .gql()
    }

    async fn touchpoint_library(&self, ctx: &Context<'_>, id: ID) -> Result<LibraryView> {
        services(ctx)
            .get_library(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
    }

    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<ApiKeyPage> {
        services(ctx)
            .list_api_keys(caller(ctx)?, page(first, after))
            .await
            .map(Into::into)
            .gql()
    }

    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<MemberPage> {
        services(ctx)
            .list_members(caller(ctx)?, page(first, after))
            .await
            .map(Into::into)
            .gql()
    }

    /// Recompute runs (admins); `status`: succeeded, retrying or failed.
    async fn job_runs(
        &self,
        ctx: &Context<'_>,
        status: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<JobRunPage> {
        services(ctx)
            .list_job_runs(caller(ctx)?, status, page(first, after))
            .await
            .map(Into::into)
            .gql()
    }

    /// The agency's audit log (owners and admins), oldest first; the
    /// filters of `GET /audit-log`.
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        filter: Option<service::platform::audit::AuditFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<AuditPage> {
        services(ctx)
            .list_audit_log(caller(ctx)?, filter.unwrap_or_default(), page(first, after))
            .await
            .map(Into::into)
            .gql()
    }

    /// The caller's agency: name and email branding.
    async fn agency_settings(&self, ctx: &Context<'_>) -> Result<AgencySettingsView> {
        services(ctx).agency_settings(caller(ctx)?).await.gql()
    }
}

//! GraphQL mutations of the agency, its people, API keys, job runs, clients
//! and touchpoint libraries.
use async_graphql::{Context, ID, Object, Result};

use service::Role;
use service::agency::{AgencySettingsView, UpdateAgencySettings};
use service::api_keys::{ApiKeyView, CreateApiKey, CreatedApiKey};
use service::clients::{ClientView, CreateClient, UpdateClient};
use service::libraries::{CloneLibrary, LibraryView, StageInput, TouchpointInput, TouchpointView};
use service::members::{ChangeRole, InvitationResult, InviteMember, MemberView};

use crate::graphql::{OrGql, caller, parse_id, services};

#[derive(Default)]
pub struct PlatformMutation;

#[Object]
impl PlatformMutation {
    /// The caller's own settings (users, not API keys): `locale` is the
    /// language of the alert emails they get ("" = the agency's).
    async fn update_me(
        &self,
        ctx: &Context<'_>,
        input: service::auth::UpdateMe,
    ) -> Result<service::auth::MeView> {
        services(ctx).update_me(caller(ctx)?, input).await.gql()
    }

    async fn create_client(&self, ctx: &Context<'_>, input: CreateClient) -> Result<ClientView> {
        services(ctx).create_client(caller(ctx)?, input).await.gql()
    }

    async fn update_client(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateClient,
    ) -> Result<ClientView> {
        services(ctx)
            .update_client(caller(ctx)?, parse_id(&id, "id")?, input)
            .await
            .gql()
    }

    async fn archive_client(&self, ctx: &Context<'_>, id: ID) -> Result<ClientView> {
        services(ctx)
            .set_client_archived(caller(ctx)?, parse_id(&id, "id")?, true)
            .await
            .gql()
    }

    async fn unarchive_client(&self, ctx: &Context<'_>, id: ID) -> Result<ClientView> {
        services(ctx)
            .set_client_archived(caller(ctx)?, parse_id(&id, "id")?, false)
            .await
            .gql()
    }

    async fn delete_client(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        services(ctx)
            .delete_client(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
            .map(|_| true)
    }

    async fn clone_touchpoint_library(
        &self,
        ctx: &Context<'_>,
        id: ID,
        name: Option<String>,
    ) -> Result<LibraryView> {
        services(ctx)
            .clone_library(caller(ctx)?, parse_id(&id, "id")?, CloneLibrary { name })
            .await
            .gql()
    }

    async fn delete_touchpoint_library(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        services(ctx)
            .delete_library(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
            .map(|_| true)
    }

    async fn add_stage(
        &self,
        ctx: &Context<'_>,
        library_id: ID,
        input: StageInput,
    ) -> Result<LibraryView> {
        services(ctx)
            .add_stage(caller(ctx)?, parse_id(&library_id, "libraryId")?, input)
            .await
            .gql()
    }

    async fn delete_stage(&self, ctx: &Context<'_>, library_id: ID, stage_id: ID) -> Result<bool> {
        services(ctx)
            .delete_stage(
                caller(ctx)?,
                parse_id(&library_id, "libraryId")?,
                parse_id(&stage_id, "stageId")?,
            )
            .await
            .gql()
            .map(|_| true)
    }

    async fn add_touchpoint(
        &self,
        ctx: &Context<'_>,
        library_id: ID,
        input: TouchpointInput,
    ) -> Result<TouchpointView> {
        services(ctx)
            .add_touchpoint(caller(ctx)?, parse_id(&library_id, "libraryId")?, input)
            .await
            .gql()
    }

    async fn update_touchpoint(
        &self,
        ctx: &Context<'_>,
        library_id: ID,
        touchpoint_id: ID,
        input: TouchpointInput,
    ) -> Result<TouchpointView> {
        services(ctx)
            .update_touchpoint(
                caller(ctx)?,
                parse_id(&library_id, "libraryId")?,
                parse_id(&touchpoint_id, "touchpointId")?,
                input,
            )
            .await
            .gql()
    }

    async fn delete_touchpoint(
        &self,
        ctx: &Context<'_>,
        library_id: ID,
        touchpoint_id: ID,
    ) -> Result<bool> {
        services(ctx)
            .delete_touchpoint(
                caller(ctx)?,
                parse_id(&library_id, "libraryId")?,
                parse_id(&touchpoint_id, "touchpointId")?,
            )
            .await
            .gql()
            .map(|_| true)
    }

    /// The `key` in the answer is shown this once.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKey,
    ) -> Result<CreatedApiKey> {
        services(ctx)
            .create_api_key(caller(ctx)?, input)
            .await
            .gql()
    }

    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> Result<ApiKeyView> {
        services(ctx)
            .revoke_api_key(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
    }

    async fn invite_member(
        &self,
        ctx: &Context<'_>,
        input: InviteMember,
    ) -> Result<InvitationResult> {
        services(ctx).invite_member(caller(ctx)?, input).await.gql()
    }

    async fn change_member_role(
        &self,
        ctx: &Context<'_>,
        id: ID,
        role: Role,
    ) -> Result<MemberView> {
        services(ctx)
            .change_member_role(caller(ctx)?, parse_id(&id, "id")?, ChangeRole { role })
            .await
            .gql()
    }

    async fn remove_member(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        services(ctx)
            .remove_member(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
            .map(|_| true)
    }

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
}

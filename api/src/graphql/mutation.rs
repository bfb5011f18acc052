use async_graphql::{Context, ID, Json, Object, Result};
use service::api_keys::{ApiKeyView, CreateApiKey, CreatedApiKey};
use service::clients::{ClientView, CreateClient, UpdateClient};
use service::domain::import::ResponseInput;
use service::domain::segment_filter::SegmentFilter;
use service::factors::{FactorInput, FactorView};
use service::idempotency::Keyed;
use service::libraries::{CloneLibrary, LibraryView, StageInput, TouchpointInput, TouchpointView};
use service::members::{ChangeRole, InvitationResult, InviteMember, MemberView};
use service::questionnaires::{CreateQuestionnaire, QuestionnaireView, UpdateQuestionnaire};
use service::responses::IngestResult;
use service::segments::{SegmentInput, SegmentView};
use service::{AppError, Role};

use super::query::parse_id;
use super::{OrGql, caller, services};

#[derive(Default)]
pub struct CoreMutation;

#[Object]
impl CoreMutation {
    /// The caller's own settings (users, not API keys): `locale` is the
    /// language of the alert emails they get ("" = the agency's).
    async fn update_me(
        &self,
        ctx: &Context<'_>,
        input: service::auth::UpdateMe,
    ) -> Result<service::auth::MeView> {
        services(ctx).update_me(caller(ctx)?, input).await.gql()
    }

    /// Bulk upsert of QFD cells and importance overrides.
    async fn update_qfd_matrix(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        input: service::qfd::QfdMatrixInput,
    ) -> Result<service::qfd::QfdMatrix> {
        services(ctx)
            .update_qfd_matrix(caller(ctx)?, parse_id(&client_id, "clientId")?, input)
            .await
            .gql()
    }

    /// `input` as in REST `POST /clients/{id}/hypotheses`.
    async fn create_hypothesis(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        input: Json<serde_json::Value>,
    ) -> Result<service::hypotheses::HypothesisView> {
        let input = parse_input(input.0)?;
        services(ctx)
            .create_hypothesis(caller(ctx)?, parse_id(&client_id, "clientId")?, input)
            .await
            .gql()
    }

    async fn update_hypothesis(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: Json<serde_json::Value>,
    ) -> Result<service::hypotheses::HypothesisView> {
        let input = parse_input(input.0)?;
        services(ctx)
            .update_hypothesis(caller(ctx)?, parse_id(&id, "id")?, input)
            .await
            .gql()
    }

    async fn delete_hypothesis(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        services(ctx)
            .delete_hypothesis(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
            .map(|_| true)
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

    async fn create_choice_factor(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        input: FactorInput,
    ) -> Result<FactorView> {
        services(ctx)
            .create_factor(caller(ctx)?, parse_id(&client_id, "clientId")?, input)
            .await
            .gql()
    }

    async fn update_choice_factor(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: FactorInput,
    ) -> Result<FactorView> {
        services(ctx)
            .update_factor(caller(ctx)?, parse_id(&id, "id")?, input)
            .await
            .gql()
    }

    async fn delete_choice_factor(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        services(ctx)
            .delete_factor(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
            .map(|_| true)
    }

    async fn create_questionnaire(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        input: CreateQuestionnaire,
    ) -> Result<QuestionnaireView> {
        services(ctx)
            .create_questionnaire(caller(ctx)?, parse_id(&client_id, "clientId")?, input)
            .await
            .gql()
    }

    async fn update_questionnaire(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateQuestionnaire,
    ) -> Result<QuestionnaireView> {
        services(ctx)
            .update_questionnaire(caller(ctx)?, parse_id(&id, "id")?, input)
            .await
            .gql()
    }

    async fn archive_questionnaire(&self, ctx: &Context<'_>, id: ID) -> Result<QuestionnaireView> {
        services(ctx)
            .set_questionnaire_archived(caller(ctx)?, parse_id(&id, "id")?, true)
            .await
            .gql()
    }

    /// Submit one response; `answers` is an object keyed by question key.
    /// With `idempotencyKey` (as REST's `Idempotency-Key` header, shared
    /// with it), a retry with the same key and input stores nothing again
    /// and answers with the first result.
    #[allow(clippy::too_many_arguments)]
    async fn submit_response(
        &self,
        ctx: &Context<'_>,
        questionnaire_id: ID,
        answers: Json<serde_json::Map<String, serde_json::Value>>,
        external_id: Option<String>,
        respondent_ref: Option<String>,
        submitted_at: Option<chrono::DateTime<chrono::Utc>>,
        idempotency_key: Option<String>,
    ) -> Result<IngestResult> {
        let input = ResponseInput {
            external_id,
            submitted_at,
            respondent_ref,
            answers: answers.0,
        };
        let services = services(ctx);
        let caller = caller(ctx)?;
        let id = parse_id(&questionnaire_id, "questionnaireId")?;
        let Some(key) = idempotency_key else {
            return services.submit_response(caller, id, input).await.gql();
        };
        match services
            .submit_response_keyed(caller, id, input, &key)
            .await
            .map_err(|e| match e {
                AppError::Validation(mut errs) => {
                    for f in &mut errs {
                        if f.field == "Idempotency-Key" {
                            f.field = "idempotencyKey".into();
                        }
                    }
                    AppError::Validation(errs)
                }
                other => other,
            })
            .gql()?
        {
            Keyed::New(result) => Ok(result),
            Keyed::Replayed(stored) => serde_json::from_value(stored.body)
                .map_err(|e| AppError::Unexpected(anyhow::anyhow!("stored response: {e}")))
                .gql(),
        }
    }

    /// `filter`: `{"conditions": [{"question": "key", "values": [...]} | {"question": "key", "min": 1, "max": 5}]}`.
    async fn create_segment(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        name: String,
        filter: Json<serde_json::Value>,
    ) -> Result<SegmentView> {
        let filter = parse_filter(filter.0)?;
        services(ctx)
            .create_segment(
                caller(ctx)?,
                parse_id(&client_id, "clientId")?,
                SegmentInput { name, filter },
            )
            .await
            .gql()
    }

    async fn update_segment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        name: String,
        filter: Json<serde_json::Value>,
    ) -> Result<SegmentView> {
        let filter = parse_filter(filter.0)?;
        services(ctx)
            .update_segment(
                caller(ctx)?,
                parse_id(&id, "id")?,
                SegmentInput { name, filter },
            )
            .await
            .gql()
    }

    async fn delete_segment(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        services(ctx)
            .delete_segment(caller(ctx)?, parse_id(&id, "id")?)
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

    /// A Cash Journey model with its three scenarios.
    async fn create_cash_model(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        input: service::cash::CashModelInput,
    ) -> Result<service::cash::CashModelView> {
        services(ctx)
            .create_cash_model(caller(ctx)?, parse_id(&client_id, "clientId")?, input)
            .await
            .gql()
    }

    /// Replaces the name and all three scenarios.
    async fn update_cash_model(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: service::cash::CashModelInput,
    ) -> Result<service::cash::CashModelView> {
        services(ctx)
            .update_cash_model(caller(ctx)?, parse_id(&id, "id")?, input)
            .await
            .gql()
    }

    async fn delete_cash_model(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        services(ctx)
            .delete_cash_model(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
            .map(|_| true)
    }

    /// Stores or replaces one month's (`YYYY-MM`) actual figures.
    async fn put_cash_actuals(
        &self,
        ctx: &Context<'_>,
        model_id: ID,
        period: String,
        input: service::cash::CashActualFigures,
    ) -> Result<service::cash::CashActualsView> {
        services(ctx)
            .put_cash_actuals(
                caller(ctx)?,
                parse_id(&model_id, "modelId")?,
                &period,
                input,
            )
            .await
            .gql()
    }

    async fn delete_cash_actuals(
        &self,
        ctx: &Context<'_>,
        model_id: ID,
        period: String,
    ) -> Result<bool> {
        services(ctx)
            .delete_cash_actuals(caller(ctx)?, parse_id(&model_id, "modelId")?, &period)
            .await
            .gql()
            .map(|_| true)
    }

    /// Stores or replaces a channel's on/off calendar with the daily metric.
    async fn put_cash_channel(
        &self,
        ctx: &Context<'_>,
        model_id: ID,
        channel: String,
        input: service::cash::CashChannelInput,
    ) -> Result<service::cash::CashChannelView> {
        services(ctx)
            .put_cash_channel(
                caller(ctx)?,
                parse_id(&model_id, "modelId")?,
                &channel,
                input,
            )
            .await
            .gql()
    }

    async fn delete_cash_channel(
        &self,
        ctx: &Context<'_>,
        model_id: ID,
        channel: String,
    ) -> Result<bool> {
        services(ctx)
            .delete_cash_channel(caller(ctx)?, parse_id(&model_id, "modelId")?, &channel)
            .await
            .gql()
            .map(|_| true)
    }

    /// Submit one purchase of a client's customer.
    async fn submit_purchase(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        input: service::purchases::PurchaseInput,
    ) -> Result<service::purchases::PurchaseIngestResult> {
        services(ctx)
            .submit_purchase(caller(ctx)?, parse_id(&client_id, "clientId")?, input)
            .await
            .gql()
    }

    /// Replace a client's JTBD rules; `rules` as in REST
    /// `PUT /clients/{id}/jtbd-rules`.
    async fn put_jtbd_rules(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        rules: Json<Vec<serde_json::Value>>,
    ) -> Result<service::purchases::JtbdRulesView> {
        services(ctx)
            .put_jtbd_rules(
                caller(ctx)?,
                parse_id(&client_id, "clientId")?,
                service::purchases::JtbdRulesInput { rules: rules.0 },
            )
            .await
            .gql()
    }
}

/// A JSON input parsed like a REST body, errors naming `input.<field>`.
fn parse_input<T: serde::de::DeserializeOwned + 'static>(v: serde_json::Value) -> Result<T> {
    let body =
        serde_json::to_vec(&v).map_err(|e| super::gql_error(AppError::Unexpected(e.into())))?;
    crate::extract::parse_json::<T>(&body)
        .map_err(|e| match e {
            AppError::Validation(mut errs) => {
                for f in &mut errs {
                    f.field = format!("input.{}", f.field);
                }
                AppError::Validation(errs)
            }
            other => other,
        })
        .gql()
}

fn parse_filter(v: serde_json::Value) -> Result<SegmentFilter> {
    let body =
        serde_json::to_vec(&v).map_err(|e| super::gql_error(AppError::Unexpected(e.into())))?;
    crate::extract::parse_json::<SegmentFilter>(&body)
        .map_err(|e| match e {
            AppError::Validation(mut errs) => {
                for f in &mut errs {
                    f.field = format!("filter.{}", f.field);
                }
                AppError::Validation(errs)
            }
            other => other,
        })
        .gql()
}

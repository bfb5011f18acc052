//! GraphQL mutations of factors, questionnaires, responses, segments,
//! panel, hypotheses, QFD and the UX map.
use async_graphql::{Context, ID, Json, Object, Result};

use service::AppError;
use service::domain::import::ResponseInput;
use service::factors::{FactorInput, FactorView};
use service::idempotency::Keyed;
use service::questionnaires::{CreateQuestionnaire, QuestionnaireView, UpdateQuestionnaire};
use service::responses::IngestResult;
use service::segments::{SegmentInput, SegmentView};

use crate::graphql::{OrGql, caller, parse_filter, parse_id, parse_input, services};

#[derive(Default)]
pub struct ResearchMutation;

#[Object]
impl ResearchMutation {
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

    /// A new questionnaire of the client from a document of
    /// `exportQuestionnaire` (`input`, JSON), as REST `POST
    /// /clients/{id}/questionnaires/import`: factors found by exact name
    /// (or created, with `createMissingFactors`), touchpoints by stage and
    /// key in the client's library (without one: the agency's, if only one
    /// touchpoint matches); a link not found is a validation error
    /// naming it (`questions[3].choice_factor`); nothing is stored unless
    /// all is well.
    async fn import_questionnaire(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        input: Json<serde_json::Value>,
        #[graphql(default)] create_missing_factors: bool,
    ) -> Result<QuestionnaireView> {
        let doc = parse_input(input.0)?;
        services(ctx)
            .import_questionnaire(
                caller(ctx)?,
                parse_id(&client_id, "clientId")?,
                doc,
                service::questionnaire_transfer::ImportOptions {
                    create_missing_factors,
                },
            )
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
}

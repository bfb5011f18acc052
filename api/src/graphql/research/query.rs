//! GraphQL queries of factors, questionnaires, responses, segments, panel,
//! hypotheses, QFD, the UX map and sales barriers.
use async_graphql::{Context, ID, Json, Object, Result};

use service::factors::FactorView;
use service::questionnaires::QuestionnaireView;
use service::segments::SegmentView;
use service::summary::SummaryView;

use crate::graphql::{
    OrGql, QuestionnairePage, ResponsePage, SegmentPage, UxAlertPage, caller, page, parse_id,
    services,
};

#[derive(Default)]
pub struct ResearchQuery;

#[Object]
impl ResearchQuery {
    /// The UX dynamic map of a client's mystery-shopper audits as of a date
    /// (default: today in the client's time zone).
    async fn ux_map(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        as_of: Option<chrono::NaiveDate>,
    ) -> Result<service::ux::UxMapView> {
        services(ctx)
            .ux_map(caller(ctx)?, parse_id(&client_id, "clientId")?, as_of)
            .await
            .gql()
    }

    /// Negative flags of a client's UX map, raised by the worker as audits
    /// arrive; `open: true` for those not cleared yet.
    async fn ux_alerts(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        open: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<UxAlertPage> {
        services(ctx)
            .ux_alerts(
                caller(ctx)?,
                parse_id(&client_id, "clientId")?,
                service::ux::AlertFilter {
                    open_only: open.unwrap_or(false),
                },
                page(first, after),
            )
            .await
            .map(Into::into)
            .gql()
    }

    async fn qfd_matrix(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
    ) -> Result<service::qfd::QfdMatrix> {
        services(ctx)
            .qfd_matrix(caller(ctx)?, parse_id(&client_id, "clientId")?)
            .await
            .gql()
    }

    /// QFD results; `filter` (or `segmentId`) for a segment QFD.
    async fn qfd(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        questionnaire_id: Option<ID>,
        filter: Option<service::domain::segment_filter::SegmentFilter>,
        segment_id: Option<ID>,
    ) -> Result<service::qfd::QfdView> {
        let caller = caller(ctx)?;
        let segment_id = match segment_id {
            Some(s) => Some(parse_id(&s, "segmentId")?),
            None => None,
        };
        let segment = services(ctx)
            .resolve_segment(caller, filter, segment_id, "segmentId")
            .await
            .gql()?;
        let questionnaire_id = match questionnaire_id {
            Some(q) => Some(parse_id(&q, "questionnaireId")?),
            None => None,
        };
        services(ctx)
            .qfd(
                caller,
                parse_id(&client_id, "clientId")?,
                questionnaire_id,
                segment,
            )
            .await
            .gql()
    }

    /// Sales barriers of a client, as `GET /clients/{id}/barriers`: per
    /// barrier (an option of a `barrier` question) its share among
    /// non-buyers and buyers with 95% Wilson intervals, the non-buyers'
    /// lift (one-sided two-proportion test, BH q-values), ranked by refusals
    /// explained = max(0, count_nb − n_nb · share among buyers), or the
    /// non-buyer count without a buyer comparison. `segmentId`: a saved
    /// segment of the client; `stageId`: a CJM stage of its library.
    async fn client_barriers(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        segment_id: Option<ID>,
        stage_id: Option<ID>,
    ) -> Result<service::barriers::BarrierAnalysis> {
        let client_id = parse_id(&client_id, "clientId")?;
        let segment_id = segment_id.map(|s| parse_id(&s, "segmentId")).transpose()?;
        let stage_id = stage_id.map(|s| parse_id(&s, "stageId")).transpose()?;
        services(ctx)
            .client_barriers(caller(ctx)?, client_id, segment_id, stage_id)
            .await
            .map_err(|e| match e {
                // Named as this field's arguments are.
                service::AppError::Validation(mut errs) => {
                    for f in &mut errs {
                        f.field = match f.field.as_str() {
                            "segment_id" => "segmentId".into(),
                            "stage_id" => "stageId".into(),
                            _ => std::mem::take(&mut f.field),
                        };
                    }
                    service::AppError::Validation(errs)
                }
                other => other,
            })
            .gql()
    }

    async fn choice_factors(&self, ctx: &Context<'_>, client_id: ID) -> Result<Vec<FactorView>> {
        services(ctx)
            .list_factors(caller(ctx)?, parse_id(&client_id, "clientId")?)
            .await
            .gql()
    }

    async fn questionnaires(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<QuestionnairePage> {
        services(ctx)
            .list_questionnaires(
                caller(ctx)?,
                parse_id(&client_id, "clientId")?,
                page(first, after),
            )
            .await
            .map(Into::into)
            .gql()
    }

    async fn questionnaire(&self, ctx: &Context<'_>, id: ID) -> Result<QuestionnaireView> {
        services(ctx)
            .get_questionnaire(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
    }

    /// The questionnaire's current version as a self-contained JSON
    /// document (`format: "growthpoint.questionnaire"`, version 1), as REST
    /// `GET /questionnaires/{id}/export`: choice factors by name,
    /// touchpoints by stage and key, no ids. `importQuestionnaire` takes it.
    async fn export_questionnaire(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<Json<service::questionnaire_transfer::QuestionnaireDocument>> {
        services(ctx)
            .export_questionnaire(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .map(Json)
            .gql()
    }

    /// The latest summary and the data version it reflects.
    async fn questionnaire_summary(&self, ctx: &Context<'_>, id: ID) -> Result<SummaryView> {
        services(ctx)
            .questionnaire_summary(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
    }

    /// The customer panel of all responses or of those matching `filter`
    /// (or a saved segment's filter).
    async fn questionnaire_panel(
        &self,
        ctx: &Context<'_>,
        id: ID,
        filter: Option<service::domain::segment_filter::SegmentFilter>,
        segment_id: Option<ID>,
    ) -> Result<service::panel::PanelView> {
        let caller = caller(ctx)?;
        let segment_id = match segment_id {
            Some(s) => Some(parse_id(&s, "segmentId")?),
            None => None,
        };
        let filter = services(ctx)
            .resolve_segment(caller, filter, segment_id, "segmentId")
            .await
            .gql()?;
        services(ctx)
            .questionnaire_panel(caller, parse_id(&id, "id")?, filter)
            .await
            .gql()
    }

    async fn hypotheses(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
    ) -> Result<Vec<service::hypotheses::HypothesisView>> {
        services(ctx)
            .list_hypotheses(caller(ctx)?, parse_id(&client_id, "clientId")?)
            .await
            .gql()
    }

    /// Verdicts of a client's active hypotheses, as last computed.
    async fn hypotheses_results(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
    ) -> Result<service::hypotheses::HypothesesResults> {
        services(ctx)
            .hypotheses_results(caller(ctx)?, parse_id(&client_id, "clientId")?)
            .await
            .gql()
    }

    /// A questionnaire's responses in stored order (data version, then id);
    /// `after` is the `nextCursor` of the previous page.
    async fn responses(
        &self,
        ctx: &Context<'_>,
        questionnaire_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<ResponsePage> {
        services(ctx)
            .list_responses(
                caller(ctx)?,
                parse_id(&questionnaire_id, "questionnaireId")?,
                page(first, after),
            )
            .await
            .map(Into::into)
            .gql()
    }

    async fn segments(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<SegmentPage> {
        services(ctx)
            .list_segments(
                caller(ctx)?,
                parse_id(&client_id, "clientId")?,
                page(first, after),
            )
            .await
            .map(Into::into)
            .gql()
    }

    async fn segment(&self, ctx: &Context<'_>, id: ID) -> Result<SegmentView> {
        services(ctx)
            .get_segment(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
    }
}

use async_graphql::{Context, ID, Object, Result};
use service::auth::MeView;
use service::clients::ClientView;
use service::factors::FactorView;
use service::libraries::LibraryView;
use service::questionnaires::QuestionnaireView;
use service::segments::SegmentView;
use service::summary::SummaryView;
use uuid::Uuid;

use super::{
    ApiKeyPage, ClientPage, DeliveryPage, JobRunPage, LibraryPage, MemberPage, OrGql,
    QuestionnairePage, ResponsePage, SegmentPage, UxAlertPage, caller, page, services,
};

#[derive(Default)]
pub struct CoreQuery;

pub(crate) fn parse_id(id: &ID, field: &str) -> Result<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| super::gql_error(service::AppError::field(field, "is not an id")))
}

#[Object]
impl CoreQuery {
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

    /// The agency's emails and their status (owners and admins).
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        filter: Option<service::email::DeliveryFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<DeliveryPage> {
        services(ctx)
            .list_deliveries(caller(ctx)?, filter.unwrap_or_default(), page(first, after))
            .await
            .map(Into::into)
            .gql()
    }

    async fn delivery(&self, ctx: &Context<'_>, id: ID) -> Result<service::email::DeliveryView> {
        services(ctx)
            .get_delivery(caller(ctx)?, parse_id(&id, "id")?)
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

    /// A client's Cash Journey models.
    async fn cash_models(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<super::CashModelPage> {
        services(ctx)
            .list_cash_models(
                caller(ctx)?,
                parse_id(&client_id, "clientId")?,
                page(first, after),
            )
            .await
            .map(Into::into)
            .gql()
    }

    async fn cash_model(&self, ctx: &Context<'_>, id: ID) -> Result<service::cash::CashModelView> {
        services(ctx)
            .get_cash_model(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
    }

    /// A model's actual figures per period, by period.
    async fn cash_actuals(
        &self,
        ctx: &Context<'_>,
        model_id: ID,
    ) -> Result<Vec<service::cash::CashActualsView>> {
        services(ctx)
            .list_cash_actuals(caller(ctx)?, parse_id(&model_id, "modelId")?)
            .await
            .gql()
    }

    /// A model's channel on/off calendars, by channel.
    async fn cash_channels(
        &self,
        ctx: &Context<'_>,
        model_id: ID,
    ) -> Result<Vec<service::cash::CashChannelView>> {
        services(ctx)
            .list_cash_channels(caller(ctx)?, parse_id(&model_id, "modelId")?)
            .await
            .gql()
    }

    /// Every figure per scenario and stage, sensitivity, plan vs fact per
    /// period and each channel's effect.
    async fn cash_results(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<service::cash::CashResultsView> {
        services(ctx)
            .cash_results(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
    }

    /// A client's purchases, oldest stored first.
    async fn purchases(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<super::PurchasePage> {
        services(ctx)
            .list_purchases(
                caller(ctx)?,
                parse_id(&client_id, "clientId")?,
                page(first, after),
            )
            .await
            .map(Into::into)
            .gql()
    }

    /// One customer's purchases with their JTBD labels.
    async fn customer_purchases(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        customer_ref: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<super::CustomerPurchasePage> {
        services(ctx)
            .customer_purchases(
                caller(ctx)?,
                parse_id(&client_id, "clientId")?,
                &customer_ref,
                page(first, after),
            )
            .await
            .map(Into::into)
            .gql()
    }

    /// A client's ordered JTBD labelling rules.
    async fn jtbd_rules(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
    ) -> Result<service::purchases::JtbdRulesView> {
        services(ctx)
            .get_jtbd_rules(caller(ctx)?, parse_id(&client_id, "clientId")?)
            .await
            .gql()
    }

    /// The JTBD value-migration map as of `asOf` (`YYYY-MM-DD`, client-local;
    /// default today), `period` month|week|quarter, `margin` in [0, 1];
    /// `first`/`after` page the RFM rows by customer ref.
    #[allow(clippy::too_many_arguments)]
    async fn jtbd_results(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        as_of: Option<String>,
        period: Option<String>,
        margin: Option<f64>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<service::purchases::JtbdResultsView> {
        let params = service::purchases::JtbdParams {
            as_of,
            period,
            margin,
            limit: first.map(|f| u64::try_from(f).unwrap_or(0)),
            after,
        };
        services(ctx)
            .jtbd_results(caller(ctx)?, parse_id(&client_id, "clientId")?, params)
            .await
            .gql()
    }
}

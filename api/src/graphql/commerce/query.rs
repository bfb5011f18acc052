//! GraphQL queries of purchases, the JTBD map and Cash Journey models.
use async_graphql::{Context, ID, Object, Result};

use crate::graphql::{OrGql, caller, page, parse_id, services};

#[derive(Default)]
pub struct CommerceQuery;

#[Object]
impl CommerceQuery {
    /// A client's Cash Journey models.
    async fn cash_models(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<crate::graphql::CashModelPage> {
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
    ) -> Result<crate::graphql::PurchasePage> {
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
    ) -> Result<crate::graphql::CustomerPurchasePage> {
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

    /// CPM, CTR, CPC, cost per contact and CPA over `from`..`to`
    /// (`YYYY-MM-DD`; default the last 12 weeks) per channel, funnel type,
    /// in total and per ISO week, with the last full week's change.
    async fn channel_report(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        from: Option<String>,
        to: Option<String>,
    ) -> Result<analytics::funnel::ChannelReport> {
        let params = service::channels::ChannelReportParams { from, to };
        services(ctx)
            .channel_report(caller(ctx)?, parse_id(&client_id, "clientId")?, params)
            .await
            .gql()
    }

    /// The stored channel figures of a range, by day, channel and funnel type.
    async fn channel_figures(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        from: Option<String>,
        to: Option<String>,
    ) -> Result<Vec<service::channels::ChannelDayView>> {
        let params = service::channels::ChannelReportParams { from, to };
        services(ctx)
            .list_channel_figures(caller(ctx)?, parse_id(&client_id, "clientId")?, params)
            .await
            .gql()
    }
}

//! GraphQL mutations of purchases, the JTBD map and Cash Journey models.
use async_graphql::{Context, ID, Json, Object, Result};

use crate::graphql::{OrGql, caller, parse_id, services};

#[derive(Default)]
pub struct CommerceMutation;

#[Object]
impl CommerceMutation {
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

    /// Takes one month's reach (= impressions), ctr (= clicks / impressions)
    /// and marketing cost (= spend) from the client's channel figures, as
    /// REST `POST /cash-models/{id}/actuals/from-channels`.
    async fn take_cash_actuals_from_channels(
        &self,
        ctx: &Context<'_>,
        model_id: ID,
        input: service::cash::CashActualsFromChannelsInput,
    ) -> Result<service::cash::CashActualsFromChannelsView> {
        services(ctx)
            .cash_actuals_from_channels(caller(ctx)?, parse_id(&model_id, "modelId")?, input)
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

    /// Stores days of channel figures; a stored day, channel and funnel type
    /// is replaced, so re-sending changes nothing.
    async fn put_channel_figures(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        rows: Vec<service::channels::ChannelDayInput>,
    ) -> Result<service::channels::ChannelIngestResult> {
        services(ctx)
            .put_channel_figures(caller(ctx)?, parse_id(&client_id, "clientId")?, rows)
            .await
            .gql()
    }
}

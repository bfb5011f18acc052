//! Contacts and their qualification over GraphQL: the same service calls
//! as `rest/mail/contacts.rs`.
use async_graphql::{Context, ID, Object, Result, SimpleObject};
use service::contacts::{
    ContactFilter, ContactIngestResult, ContactInput, ContactView, OutcomeInput,
};
use service::qualify::{ModelView, ScoringInput, ScoringView};

use crate::graphql::{
    ContactPage, ContactResponsePage, OrGql, caller, gql_error, page, parse_id, services,
};

/// A client's point rules, tier thresholds and λ. `rules` and
/// `thresholds` are JSON shaped as in the REST API's `ScoringView`.
#[derive(SimpleObject)]
pub struct Scoring {
    pub client_id: ID,
    pub rules: serde_json::Value,
    pub thresholds: serde_json::Value,
    pub lambda: f64,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<ScoringView> for Scoring {
    fn from(v: ScoringView) -> Self {
        Scoring {
            client_id: ID(v.client_id.to_string()),
            rules: serde_json::to_value(&v.rules).unwrap_or_default(),
            thresholds: serde_json::to_value(v.thresholds).unwrap_or_default(),
            lambda: v.lambda,
            updated_at: v.updated_at,
        }
    }
}

#[derive(Default)]
pub struct ContactsQuery;

#[Object]
impl ContactsQuery {
    /// A client's contacts, filtered by tier, status, funnel type, score or
    /// a saved segment.
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        filter: Option<ContactFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<ContactPage> {
        services(ctx)
            .list_contacts(
                caller(ctx)?,
                parse_id(&client_id, "clientId")?,
                filter.unwrap_or_default(),
                page(first, after),
            )
            .await
            .map(Into::into)
            .gql()
    }

    async fn contact(&self, ctx: &Context<'_>, id: ID) -> Result<ContactView> {
        services(ctx)
            .get_contact(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
    }

    /// The questionnaire responses that carried a contact's e-mail, by id.
    async fn contact_responses(
        &self,
        ctx: &Context<'_>,
        contact_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<ContactResponsePage> {
        services(ctx)
            .contact_responses(
                caller(ctx)?,
                parse_id(&contact_id, "contactId")?,
                page(first, after),
            )
            .await
            .map(Into::into)
            .gql()
    }

    /// How many of its client's contacts a saved segment matches now.
    async fn segment_contact_count(&self, ctx: &Context<'_>, segment_id: ID) -> Result<u64> {
        services(ctx)
            .segment_contact_count(caller(ctx)?, parse_id(&segment_id, "segmentId")?)
            .await
            .gql()
    }

    async fn scoring(&self, ctx: &Context<'_>, client_id: ID) -> Result<Scoring> {
        services(ctx)
            .get_scoring(caller(ctx)?, parse_id(&client_id, "clientId")?)
            .await
            .map(Into::into)
            .gql()
    }

    /// contacts → qualified → enrolled → converted per funnel type over
    /// `from`–`to` (`YYYY-MM-DD`; default the last 12 weeks), with rates and
    /// spend per step.
    async fn funnel_report(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        from: Option<String>,
        to: Option<String>,
    ) -> Result<service::funnel::FunnelReport> {
        services(ctx)
            .funnel_report(
                caller(ctx)?,
                parse_id(&client_id, "clientId")?,
                service::channels::ChannelReportParams { from, to },
            )
            .await
            .gql()
    }

    /// The client's fitted model (weights by feature), or why there is none.
    async fn contact_model(&self, ctx: &Context<'_>, client_id: ID) -> Result<ModelView> {
        services(ctx)
            .contact_model(caller(ctx)?, parse_id(&client_id, "clientId")?)
            .await
            .gql()
    }
}

#[derive(Default)]
pub struct ContactsMutation;

#[Object]
impl ContactsMutation {
    /// Creates the contact of an e-mail, or merges what is sent into it.
    async fn put_contact(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        input: ContactInput,
    ) -> Result<ContactView> {
        services(ctx)
            .put_contact(caller(ctx)?, parse_id(&client_id, "clientId")?, input)
            .await
            .gql()
    }

    /// Up to 10,000 contacts at once, upserted by e-mail.
    async fn put_contacts(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        contacts: Vec<ContactInput>,
    ) -> Result<ContactIngestResult> {
        services(ctx)
            .put_contacts(caller(ctx)?, parse_id(&client_id, "clientId")?, contacts)
            .await
            .gql()
    }

    async fn record_outcome(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: OutcomeInput,
    ) -> Result<ContactView> {
        services(ctx)
            .record_outcome(caller(ctx)?, parse_id(&id, "id")?, input)
            .await
            .gql()
    }

    async fn delete_contact(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        services(ctx)
            .delete_contact(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .map(|()| true)
            .gql()
    }

    /// Replaces the client's point rules (JSON list of `{name, points,
    /// when}`), and optionally its thresholds and λ.
    async fn put_scoring(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        rules: serde_json::Value,
        thresholds: Option<serde_json::Value>,
        lambda: Option<f64>,
    ) -> Result<Scoring> {
        let body =
            serde_json::json!({ "rules": rules, "thresholds": thresholds, "lambda": lambda });
        let input: ScoringInput = serde_path_to_error::deserialize(body).map_err(|e| {
            let path = e.path().to_string();
            gql_error(service::AppError::field(path, e.into_inner().to_string()))
        })?;
        services(ctx)
            .put_scoring(caller(ctx)?, parse_id(&client_id, "clientId")?, input)
            .await
            .map(Into::into)
            .gql()
    }
}

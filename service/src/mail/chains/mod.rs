//! Nurture chains (analytics.md §7): per client, ordered steps (template,
//! delay after the previous step, optional condition on the previous step:
//! opened / clicked / not) for the contacts of a saved segment, or — a
//! reverse chain — for contacts whose linked customer bought, the first
//! step waiting the median inter-purchase interval of that purchase's JTBD
//! (§6) minus a lead time.
//!
//! The worker enrols ([`enrol`]) after every rescoring of the client's
//! contacts — once per contact and chain (reverse: per triggering
//! purchase) — and its tick ([`tick`]) sends due steps: each send is a
//! delivery of the email ledger, queued in the transaction that moves the
//! enrolment on, with a dedupe key per enrolment and step, so a step is
//! never queued twice, also when a worker dies. Step times are moved into
//! the client's send window in its time zone ([`schedule`]). Conversion,
//! unsubscribe, bounce and leaving the segment end an enrolment.
use chrono::{DateTime, Utc};
use entity::chain;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::error::{AppError, AppResult};

mod crud;
pub mod enrol;
pub mod schedule;
mod stats;
pub mod tick;
pub use crud::*;
pub use stats::*;

pub const MAX_STEPS: usize = 20;
/// The longest delay of a step: a year.
pub const MAX_DELAY_MINUTES: i64 = 525_600;
pub const MAX_LEAD_DAYS: f64 = 365.0;

/// Segment chains enrol the contacts of a saved segment; reverse chains
/// are triggered by purchases of linked customers.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum ChainKind {
    Segment,
    Reverse,
}

impl ChainKind {
    pub fn name(self) -> &'static str {
        match self {
            ChainKind::Segment => "segment",
            ChainKind::Reverse => "reverse",
        }
    }

    pub fn parse(s: &str) -> Option<ChainKind> {
        match s {
            "segment" => Some(ChainKind::Segment),
            "reverse" => Some(ChainKind::Reverse),
            _ => None,
        }
    }
}

/// A condition on the previous step's email: when it does not hold at the
/// step's time, the step is skipped (logged) and the chain goes on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum StepCondition {
    Opened,
    Clicked,
    NotOpened,
    NotClicked,
}

/// One step of a chain.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    async_graphql::InputObject,
    async_graphql::SimpleObject,
)]
#[serde(deny_unknown_fields)]
#[graphql(input_name = "ChainStepInput")]
pub struct ChainStep {
    /// minijinja templates; `{{ contact.email }}`, `{{ contact.name }}`,
    /// `{{ contact.attributes.city }}`.
    #[schema(schema_with = crate::infra::docs::text_500)]
    pub subject: String,
    #[schema(max_length = 200000)]
    pub html: String,
    #[schema(max_length = 200000)]
    pub text: String,
    /// Minutes after the previous step (the first step: after enrolment;
    /// ignored for the first step of a reverse chain, which waits the JTBD's
    /// interval), 0 to 525,600.
    #[schema(minimum = 0, maximum = 525600)]
    pub delay_minutes: i64,
    /// On the previous step's email (not allowed on the first step).
    #[serde(default)]
    pub condition: Option<StepCondition>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct ChainView {
    pub id: Uuid,
    pub client_id: Uuid,
    pub name: String,
    pub kind: ChainKind,
    pub segment_id: Option<Uuid>,
    pub lead_days: f64,
    /// The local send window, `HH:MM`–`HH:MM`.
    pub window_start: String,
    pub window_end: String,
    /// `active` or `paused`.
    pub status: String,
    pub steps: Vec<ChainStep>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
crate::has_id!(ChainView);

pub(crate) fn hhmm(m: i32) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

pub(crate) fn steps_of(m: &chain::Model) -> Vec<ChainStep> {
    serde_json::from_value(m.steps.clone()).unwrap_or_default()
}

impl From<chain::Model> for ChainView {
    fn from(m: chain::Model) -> Self {
        Self {
            id: m.id,
            client_id: m.client_id,
            name: m.name.clone(),
            kind: ChainKind::parse(&m.kind).unwrap_or(ChainKind::Segment),
            segment_id: m.segment_id,
            lead_days: m.lead_days,
            window_start: hhmm(m.window_start),
            window_end: hhmm(m.window_end),
            status: m.status.clone(),
            steps: steps_of(&m),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// The chain `id` of `agency_id`, or 404.
pub async fn find_chain<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    id: Uuid,
) -> AppResult<chain::Model> {
    chain::Entity::find_by_id(id)
        .filter(chain::Column::AgencyId.eq(agency_id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound)
}

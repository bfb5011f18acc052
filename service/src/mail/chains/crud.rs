//! Chains written and read: validated field by field (templates compiled),
//! paused and resumed; every change marks the client's contacts so the
//! worker enrols.
use chrono::NaiveTime;
use entity::chain;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::schedule::DEFAULT_WINDOW;
use super::*;
use crate::domain::nul::has_nul;
use crate::infra::audit::{self, Audit};
use crate::infra::db::begin_write;
use crate::infra::error::FieldError;
use crate::infra::page::{Page, PageParams};
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services, new_id, now};

/// A chain as the API takes it (create and replace).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct ChainInput {
    /// 1 to 200 characters.
    #[schema(schema_with = crate::infra::docs::text_200)]
    pub name: String,
    pub kind: ChainKind,
    /// The saved segment of the client whose contacts a `segment` chain
    /// enrols (its conditions over attributes, `tier`, `score`, …).
    #[serde(default)]
    pub segment_id: Option<Uuid>,
    /// Reverse chains: how many days before the median inter-purchase
    /// interval the first step goes out, 0 to 365 (default 0).
    #[serde(default)]
    pub lead_days: Option<f64>,
    /// Local send window start, `HH:MM` (default `09:00`).
    #[serde(default)]
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub window_start: Option<String>,
    /// Local send window end, `HH:MM`, after the start (default `20:00`).
    #[serde(default)]
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub window_end: Option<String>,
    /// 1 to 20 steps.
    #[schema(min_items = 1, max_items = 20)]
    pub steps: Vec<ChainStep>,
}

fn minutes(field: &str, v: &Option<String>, default: i32, errs: &mut Vec<FieldError>) -> i32 {
    let Some(s) = v else { return default };
    // Exactly `HH:MM` (chrono alone would also take `9:5`).
    let shaped = s.len() == 5
        && s.as_bytes()[2] == b':'
        && s.bytes()
            .enumerate()
            .all(|(i, b)| i == 2 || b.is_ascii_digit());
    match NaiveTime::parse_from_str(s, "%H:%M")
        .ok()
        .filter(|_| shaped)
    {
        Some(t) => {
            use chrono::Timelike;
            i32::try_from(t.hour() * 60 + t.minute()).unwrap_or(default)
        }
        None => {
            errs.push(FieldError::new(field, "expected HH:MM"));
            default
        }
    }
}

fn check_template(field: String, src: &str, errs: &mut Vec<FieldError>) {
    if has_nul(src) {
        errs.push(FieldError::new(field, crate::domain::nul::MESSAGE));
    } else if crate::domain::text::longer_than(src, 200_000) {
        errs.push(FieldError::new(field, "at most 200,000 characters"));
    } else if crate::domain::nesting::template_exceeds(src, crate::domain::nesting::MAX_NESTING) {
        errs.push(FieldError::new(
            field,
            crate::domain::nesting::message(crate::domain::nesting::MAX_NESTING),
        ));
    } else if let Err(e) = crate::infra::email::render::env().template_from_str(src) {
        errs.push(FieldError::new(field, format!("template error: {e}")));
    }
}

impl Services {
    /// The input checked against the client: every offending field named.
    async fn check_chain(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: &ChainInput,
    ) -> AppResult<(i32, i32)> {
        let mut errs = Vec::new();
        if !crate::domain::text::fits(&input.name, 200) || has_nul(&input.name) {
            errs.push(FieldError::new("name", "must be 1 to 200 characters"));
        }
        match (input.kind, input.segment_id) {
            (ChainKind::Segment, None) => errs.push(FieldError::new(
                "segment_id",
                "a segment chain needs a segment",
            )),
            (ChainKind::Segment, Some(id)) => {
                if let Err(e) = self.contact_segment(ctx.agency_id, client_id, id).await {
                    match e {
                        AppError::Validation(v) => errs.extend(v),
                        other => return Err(other),
                    }
                }
            }
            (ChainKind::Reverse, Some(_)) => errs.push(FieldError::new(
                "segment_id",
                "a reverse chain is triggered by purchases, not a segment",
            )),
            (ChainKind::Reverse, None) => {}
        }
        if input
            .lead_days
            .is_some_and(|d| !(d.is_finite() && (0.0..=MAX_LEAD_DAYS).contains(&d)))
        {
            errs.push(FieldError::new("lead_days", "must be from 0 to 365"));
        }
        if input.kind == ChainKind::Segment && input.lead_days.is_some() {
            errs.push(FieldError::new("lead_days", "only for reverse chains"));
        }
        let start = minutes(
            "window_start",
            &input.window_start,
            DEFAULT_WINDOW.0,
            &mut errs,
        );
        let end = minutes("window_end", &input.window_end, DEFAULT_WINDOW.1, &mut errs);
        if start >= end {
            errs.push(FieldError::new("window_end", "must be after window_start"));
        }
        if input.steps.is_empty() || input.steps.len() > MAX_STEPS {
            errs.push(FieldError::new("steps", format!("1 to {MAX_STEPS} steps")));
        }
        for (i, s) in input.steps.iter().enumerate() {
            let f = |n: &str| format!("steps[{i}].{n}");
            if !crate::domain::text::fits(&s.subject, 500) {
                errs.push(FieldError::new(f("subject"), "must be 1 to 500 characters"));
            }
            check_template(f("subject"), &s.subject, &mut errs);
            check_template(f("html"), &s.html, &mut errs);
            check_template(f("text"), &s.text, &mut errs);
            if !(0..=MAX_DELAY_MINUTES).contains(&s.delay_minutes) {
                errs.push(FieldError::new(
                    f("delay_minutes"),
                    format!("must be from 0 to {MAX_DELAY_MINUTES}"),
                ));
            }
            if i == 0 && s.condition.is_some() {
                errs.push(FieldError::new(
                    f("condition"),
                    "the first step has no previous step",
                ));
            }
        }
        if errs.is_empty() {
            Ok((start, end))
        } else {
            Err(AppError::Validation(errs))
        }
    }

    pub async fn create_chain(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: ChainInput,
    ) -> AppResult<ChainView> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::WriteResearch)?;
        let (start, end) = self.check_chain(ctx, client_id, &input).await?;
        let t = now();
        let m = chain::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(ctx.agency_id),
            client_id: Set(client_id),
            name: Set(input.name.trim().to_owned()),
            kind: Set(input.kind.name().to_owned()),
            segment_id: Set(input.segment_id),
            lead_days: Set(input.lead_days.unwrap_or(0.0) + 0.0),
            window_start: Set(start),
            window_end: Set(end),
            status: Set("active".into()),
            steps: Set(serde_json::to_value(&input.steps).unwrap_or_default()),
            created_at: Set(t),
            updated_at: Set(t),
        };
        let txn = begin_write(&self.db).await?;
        let m = m.insert(&txn).await?;
        audit::commit(txn, ctx, Audit::create("chain", m.id, &m)).await?;
        self.contacts_changed(ctx.agency_id, client_id).await?;
        Ok(m.into())
    }

    /// Replaces a chain's settings and steps; enrolments go on from the
    /// step they are at.
    pub async fn update_chain(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        input: ChainInput,
    ) -> AppResult<ChainView> {
        let c = find_chain(&self.db, ctx.agency_id, id).await?;
        ctx.require(Perm::WriteResearch)?;
        let (start, end) = self.check_chain(ctx, c.client_id, &input).await?;
        if input.kind.name() != c.kind {
            return Err(AppError::field("kind", "cannot change once created"));
        }
        let client_id = c.client_id;
        let before = c.clone();
        let mut a = c.into_active_model();
        a.name = Set(input.name.trim().to_owned());
        a.segment_id = Set(input.segment_id);
        a.lead_days = Set(input.lead_days.unwrap_or(0.0) + 0.0);
        a.window_start = Set(start);
        a.window_end = Set(end);
        a.steps = Set(serde_json::to_value(&input.steps).unwrap_or_default());
        a.updated_at = Set(now());
        let m = audit::update_one(&self.db, ctx, "chain", id, &before, a, |m| m).await?;
        self.contacts_changed(ctx.agency_id, client_id).await?;
        Ok(m.into())
    }

    pub async fn list_chains(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        page: PageParams,
    ) -> AppResult<Page<ChainView>> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let q = chain::Entity::find()
            .filter(chain::Column::AgencyId.eq(ctx.agency_id))
            .filter(chain::Column::ClientId.eq(client_id));
        page.parse()?
            .fetch(q, chain::Column::Id, &self.db, ChainView::from)
            .await
    }

    pub async fn get_chain(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<ChainView> {
        let c = find_chain(&self.db, ctx.agency_id, id).await?;
        ctx.require(Perm::Read)?;
        Ok(c.into())
    }

    /// Paused: nothing is enrolled or sent; resumed: due steps go out (in
    /// the send window) and waiting contacts are enrolled.
    pub async fn set_chain_status(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        active: bool,
    ) -> AppResult<ChainView> {
        let c = find_chain(&self.db, ctx.agency_id, id).await?;
        ctx.require(Perm::WriteResearch)?;
        let client_id = c.client_id;
        let mut a = c.into_active_model();
        a.status = Set(if active { "active" } else { "paused" }.into());
        a.updated_at = Set(now());
        let txn = begin_write(&self.db).await?;
        let m = a.update(&txn).await?;
        let verb = if active { "resume" } else { "pause" };
        audit::commit(txn, ctx, Audit::new("chain", verb, Some(id))).await?;
        if active {
            self.contacts_changed(ctx.agency_id, client_id).await?;
            self.wake_mailer(ctx.agency_id).await;
        }
        Ok(m.into())
    }
}

/// One contact's way through a chain.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct EnrolmentView {
    pub id: Uuid,
    pub chain_id: Uuid,
    pub contact_id: Uuid,
    /// `segment`, or the id of the purchase that triggered it.
    pub trigger_key: String,
    /// `active`, `completed` or `exited`.
    pub status: String,
    pub exit_reason: Option<String>,
    /// The next step to send (0 for the first).
    pub step: i32,
    /// When it is due (UTC), moved into the send window.
    pub next_at: Option<DateTime<Utc>>,
    pub enrolled_at: DateTime<Utc>,
}
crate::has_id!(EnrolmentView);

impl From<entity::chain_enrolment::Model> for EnrolmentView {
    fn from(m: entity::chain_enrolment::Model) -> Self {
        Self {
            id: m.id,
            chain_id: m.chain_id,
            contact_id: m.contact_id,
            trigger_key: m.trigger_key,
            status: m.status,
            exit_reason: m.exit_reason,
            step: m.step,
            next_at: m.next_at,
            enrolled_at: m.enrolled_at,
        }
    }
}

impl Services {
    pub async fn list_enrolments(
        &self,
        ctx: &RequestCtx,
        chain_id: Uuid,
        page: PageParams,
    ) -> AppResult<Page<EnrolmentView>> {
        find_chain(&self.db, ctx.agency_id, chain_id).await?;
        ctx.require(Perm::Read)?;
        use entity::chain_enrolment::{Column as E, Entity};
        let q = Entity::find()
            .filter(E::AgencyId.eq(ctx.agency_id))
            .filter(E::ChainId.eq(chain_id));
        page.parse()?
            .fetch(q, E::Id, &self.db, EnrolmentView::from)
            .await
    }
}

//! A client's digest settings and the preview of its next digest.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::error::{AppError, AppResult};
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services, now};

use super::*;

/// When and to whom a client's digest goes.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct DigestSettingsView {
    pub client_id: Uuid,
    /// `daily`, `weekly` (Mondays), `monthly` (the 1st) or `off`; 09:00
    /// in the client's time zone.
    #[schema(value_type = DigestSchedule)]
    pub schedule: String,
    pub timezone: String,
    pub report_recipients: Vec<String>,
    /// The next scheduled send, if any.
    pub next_at: Option<DateTime<Utc>>,
    /// The last digest sent, scheduled or "send now".
    pub last_sent_at: Option<DateTime<Utc>>,
}

/// Fields to change; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct DigestSettingsInput {
    /// `daily`, `weekly` (Mondays), `monthly` (the 1st) or `off`; 09:00
    /// in the client's time zone.
    #[serde(default)]
    #[schema(value_type = Option<DigestSchedule>)]
    pub schedule: Option<String>,
    /// At most 50 addresses.
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::recipients_or_null)]
    pub report_recipients: Option<Vec<String>>,
}

impl Services {
    pub async fn digest_settings(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
    ) -> AppResult<DigestSettingsView> {
        let c = find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let tz = tz_of(&c);
        let last_sent = last_run(&self.db, c.agency_id, c.id, None).await?;
        // A stored slot already past is the one the next tick sends.
        let schedule = DigestSchedule::of(&c);
        let next_at = c.next_digest_at.and_then(|from| {
            latest_slot_from(schedule, tz, from, now())
                .or_else(|| first_slot_from(schedule, tz, from))
        });
        Ok(DigestSettingsView {
            client_id: c.id,
            report_recipients: serde_json::from_value(c.report_recipients.clone())
                .unwrap_or_default(),
            schedule: c.digest_schedule,
            timezone: c.timezone,
            next_at,
            last_sent_at: last_sent.map(|r| r.created_at),
        })
    }

    /// Changes the schedule or recipients (as the client update does).
    pub async fn update_digest_settings(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: DigestSettingsInput,
    ) -> AppResult<DigestSettingsView> {
        self.update_client(
            ctx,
            client_id,
            crate::platform::clients::UpdateClient {
                digest_schedule: input.schedule,
                report_recipients: input.report_recipients,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| match e {
            // Named as in this input.
            AppError::Validation(errs) => AppError::Validation(
                errs.into_iter()
                    .map(|mut f| {
                        if f.field == "digest_schedule" {
                            f.field = "schedule".into();
                        }
                        f
                    })
                    .collect(),
            ),
            other => other,
        })?;
        self.digest_settings(ctx, client_id).await
    }

    /// The digest as it would be sent now (preview).
    pub async fn preview_digest(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
    ) -> AppResult<crate::infra::email::Rendered> {
        let c = find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        Ok(self.build_digest(&c, now()).await?.rendered)
    }
}

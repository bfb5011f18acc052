//! A chain's figures: enrolments by status and exit reason, and per step
//! the emails sent, steps skipped, unique opens and clicks of the step's
//! emails, conversions after it, and exits instead of it by reason.
use std::collections::BTreeMap;

use entity::{chain_enrolment, chain_log};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use serde::Serialize;
use uuid::Uuid;

use super::*;
use crate::mail::contacts::link::stmt;
use crate::{Perm, RequestCtx, Services};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct ReasonCount {
    /// converted, unsubscribed, bounced, left_segment, repurchased, erased
    pub reason: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct StepStats {
    /// 0 for the first step.
    pub step: i32,
    pub sent: u64,
    /// Not sent because the condition on the previous email did not hold.
    pub skipped: u64,
    /// Recipients who opened this step's email (a click counts as an open).
    pub opened: u64,
    pub clicked: u64,
    /// Contacts that converted after this step was the last one sent.
    pub converted: u64,
    /// Enrolments that ended instead of getting this step, by reason.
    pub exited: Vec<ReasonCount>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct ChainStats {
    pub chain_id: Uuid,
    pub enrolled: u64,
    pub active: u64,
    pub completed: u64,
    pub exited: Vec<ReasonCount>,
    pub steps: Vec<StepStats>,
}

fn counts(m: BTreeMap<String, u64>) -> Vec<ReasonCount> {
    m.into_iter()
        .map(|(reason, count)| ReasonCount { reason, count })
        .collect()
}

impl Services {
    pub async fn chain_stats(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<ChainStats> {
        let ch = find_chain(&self.db, ctx.agency_id, id).await?;
        ctx.require(Perm::Read)?;
        let n_steps = steps_of(&ch).len();
        let by_status: Vec<(String, Option<String>, i64)> = chain_enrolment::Entity::find()
            .select_only()
            .column(chain_enrolment::Column::Status)
            .column(chain_enrolment::Column::ExitReason)
            .column_as(chain_enrolment::Column::Id.count(), "n")
            .filter(chain_enrolment::Column::AgencyId.eq(ctx.agency_id))
            .filter(chain_enrolment::Column::ChainId.eq(id))
            .group_by(chain_enrolment::Column::Status)
            .group_by(chain_enrolment::Column::ExitReason)
            .into_tuple()
            .all(&self.db)
            .await?;
        let (mut enrolled, mut active, mut completed) = (0u64, 0u64, 0u64);
        let mut exited = BTreeMap::new();
        for (status, reason, n) in by_status {
            let n = u64::try_from(n).unwrap_or(0);
            enrolled += n;
            match status.as_str() {
                "active" => active += n,
                "completed" => completed += n,
                _ => *exited.entry(reason.unwrap_or_default()).or_default() += n,
            }
        }
        let logged: Vec<(i32, String, Option<String>, i64)> = chain_log::Entity::find()
            .select_only()
            .column(chain_log::Column::Step)
            .column(chain_log::Column::Action)
            .column(chain_log::Column::Reason)
            .column_as(chain_log::Column::Id.count(), "n")
            .filter(chain_log::Column::AgencyId.eq(ctx.agency_id))
            .filter(chain_log::Column::ChainId.eq(id))
            .group_by(chain_log::Column::Step)
            .group_by(chain_log::Column::Action)
            .group_by(chain_log::Column::Reason)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut steps: Vec<StepStats> = (0..n_steps)
            .map(|s| StepStats {
                step: i32::try_from(s).unwrap_or(i32::MAX),
                sent: 0,
                skipped: 0,
                opened: 0,
                clicked: 0,
                converted: 0,
                exited: Vec::new(),
            })
            .collect();
        let mut step_exits: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); n_steps];
        for (s, action, reason, n) in logged {
            let n = u64::try_from(n).unwrap_or(0);
            let Ok(i) = usize::try_from(s) else { continue };
            match action.as_str() {
                "sent" | "skipped" if i < n_steps => {
                    let st = &mut steps[i];
                    if action == "sent" {
                        st.sent += n;
                    } else {
                        st.skipped += n;
                    }
                }
                "exited" => {
                    if reason.as_deref() == Some("converted") && i > 0 && i <= n_steps {
                        steps[i - 1].converted += n;
                    }
                    if i < n_steps {
                        *step_exits[i].entry(reason.unwrap_or_default()).or_default() += n;
                    }
                }
                _ => {}
            }
        }
        for (st, ex) in steps.iter_mut().zip(step_exits) {
            st.exited = counts(ex);
        }
        // Unique opens (any event: a click counts as an open) and clicks of
        // each step's emails.
        for (kind_filter, clicks) in [("", false), (" AND ev.kind = 'clicked'", true)] {
            let sql = format!(
                "SELECT l.step AS step, COUNT(DISTINCT l.enrolment_id) AS n \
                 FROM chain_log l \
                 JOIN email_deliveries d ON d.agency_id = l.agency_id AND d.dedupe_key = l.dedupe_key \
                 JOIN email_events ev ON ev.agency_id = d.agency_id AND ev.delivery_id = d.id \
                 WHERE l.agency_id = $1 AND l.chain_id = $2 AND l.action = 'sent'{kind_filter} \
                 GROUP BY l.step"
            );
            let rows = sea_orm::ConnectionTrait::query_all_raw(
                &self.db,
                stmt(&self.db, &sql, vec![ctx.agency_id.into(), id.into()]),
            )
            .await?;
            for r in rows {
                let step: i32 = r.try_get("", "step")?;
                let n: i64 = r.try_get("", "n")?;
                if let Some(st) = usize::try_from(step).ok().and_then(|i| steps.get_mut(i)) {
                    let n = u64::try_from(n).unwrap_or(0);
                    if clicks {
                        st.clicked = n;
                    } else {
                        st.opened = n;
                    }
                }
            }
        }
        Ok(ChainStats {
            chain_id: id,
            enrolled,
            active,
            completed,
            exited: counts(exited),
            steps,
        })
    }
}

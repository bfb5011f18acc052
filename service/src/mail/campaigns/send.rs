//! A campaign going out: started when due, fanned out to one delivery per
//! active subscriber of its lists and segment.
use anyhow::Context;
use entity::{campaign, client, subscriber, subscriber_list};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::domain::attributes::Attributes;
use crate::domain::segment_filter::SegmentFilter;
use crate::infra::email::links::Purpose;
use crate::infra::email::{Brand, NewDelivery, enqueue_with_ids, render::render};
use crate::infra::error::{AppError, AppResult};
use crate::infra::webhooks;
use crate::mail::tracking::track_html;
use crate::platform::clients::find_client;
use crate::{Services, new_id, now};

use super::*;

impl Services {
    /// Campaigns whose time came become deliveries, then every due delivery
    /// is sent, until none is due. Returns how many were sent.
    pub async fn deliver_due(&self, worker_id: &str) -> AppResult<usize> {
        self.start_due_campaigns().await?;
        self.chain_tick(now()).await?;
        self.send_due_deliveries(worker_id).await
    }

    pub(super) async fn campaign_context(
        &self,
        c: &campaign::Model,
    ) -> AppResult<(subscriber_list::Model, client::Model, Brand)> {
        let list = find_list(&self.db, c.agency_id, c.list_id).await?;
        let client = find_client(&self.db, c.agency_id, c.client_id).await?;
        let agency = entity::agency::Entity::find_by_id(c.agency_id)
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?;
        Ok((list, client, Brand::of_agency(&agency)))
    }

    /// One subscriber's copy, personalised, with the one-click unsubscribe
    /// link and headers (RFC 8058), and — if its client tracks engagement —
    /// the open pixel and click-through links of the delivery id it comes
    /// with (the id its ledger row gets).
    pub(super) fn newsletter_delivery(
        &self,
        c: &campaign::Model,
        client: &client::Model,
        list: &subscriber_list::Model,
        brand: &Brand,
        s: &subscriber::Model,
    ) -> AppResult<(Uuid, NewDelivery)> {
        let id = new_id();
        let env = crate::infra::email::render::env();
        let fail =
            |e: minijinja::Error| AppError::Unexpected(anyhow::anyhow!("campaign {}: {e:#}", c.id));
        let vars = serde_json::json!({
            "subscriber": {"email": s.email, "name": s.name.clone().unwrap_or_default(), "attributes": s.attributes},
            "list": list.name,
        });
        let subject = env.render_str(&c.subject, &vars).map_err(fail)?;
        let body_html = env
            .template_from_named_str("campaign.html", &c.html)
            .and_then(|t| t.render(&vars))
            .map_err(fail)?;
        // The campaign's own body only: the layout's unsubscribe link stays.
        let body_html = if client.track_engagement {
            track_html(&self.links, id, &body_html)
        } else {
            body_html
        };
        let body_text = env.render_str(&c.text, &vars).map_err(fail)?;
        let unsubscribe_url = self.links.url(Purpose::Unsubscribe, s.id);
        let rendered = render(
            "newsletter",
            &s.locale,
            brand,
            serde_json::json!({
                "list": list.name,
                "subject": subject,
                "body_html": body_html,
                "body_text": body_text,
                "unsubscribe_url": unsubscribe_url,
            }),
        )?;
        let delivery = NewDelivery {
            agency_id: c.agency_id,
            client_id: Some(c.client_id),
            kind: "newsletter".into(),
            source_id: Some(c.id),
            recipient: s.email.clone(),
            dedupe_key: format!("newsletter:{}:{}", c.id, s.id),
            rendered: crate::infra::email::Rendered {
                subject,
                ..rendered
            },
            headers: vec![
                ("List-Unsubscribe".into(), format!("<{unsubscribe_url}>")),
                (
                    "List-Unsubscribe-Post".into(),
                    "List-Unsubscribe=One-Click".into(),
                ),
            ],
            inline: vec![],
        };
        Ok((id, delivery))
    }

    /// Worker: starts campaigns that are due, turning each into deliveries
    /// page by page (idempotent: a delivery per subscriber at most).
    pub async fn start_due_campaigns(&self) -> AppResult<usize> {
        // Scheduled ones whose time came are sending from now on.
        campaign::Entity::update_many()
            .col_expr(campaign::Column::Status, Expr::value("sending"))
            .filter(campaign::Column::Status.eq("scheduled"))
            .filter(campaign::Column::ScheduledAt.lte(now()))
            .exec(&self.db)
            .await?;
        // Campaigns not fully queued yet whose fan-out nobody is running: never
        // started, or started by a worker that stopped (no heartbeat for two
        // minutes). The fan-out is idempotent, so a resumed one just goes on.
        let stale = now() - chrono::Duration::minutes(2);
        let due = campaign::Entity::find()
            .filter(campaign::Column::Status.eq("sending"))
            .filter(campaign::Column::FinishedAt.is_null())
            .filter(
                sea_orm::Condition::any()
                    .add(campaign::Column::StartedAt.is_null())
                    .add(campaign::Column::UpdatedAt.lt(stale)),
            )
            .limit(20)
            .all(&self.db)
            .await?;
        let mut n = 0;
        for c in due {
            // One worker per campaign: the claim only succeeds on the row as read.
            let claimed = campaign::Entity::update_many()
                .col_expr(
                    campaign::Column::StartedAt,
                    Expr::value(c.started_at.unwrap_or_else(now)),
                )
                .col_expr(campaign::Column::UpdatedAt, Expr::value(now()))
                .filter(campaign::Column::Id.eq(c.id))
                .filter(campaign::Column::UpdatedAt.eq(c.updated_at))
                .filter(campaign::Column::FinishedAt.is_null())
                .exec(&self.db)
                .await?;
            if claimed.rows_affected == 1 {
                self.fan_out(&c).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn fan_out(&self, c: &campaign::Model) -> AppResult<()> {
        let (list, client, brand) = self.campaign_context(c).await?;
        // Read once: the audience is the segment as it was when sending began.
        let segment: Option<SegmentFilter> = match c.segment_id {
            None => None,
            Some(id) => Some(
                crate::research::segments::segment_filter_of(&self.db, c.agency_id, id)
                    .await
                    .context("while reading the campaign's segment")?,
            ),
        };
        let mut after = Uuid::nil();
        let mut total = 0i64;
        loop {
            let still = campaign::Entity::find_by_id(c.id)
                .one(&self.db)
                .await?
                .is_some_and(|x| x.status == "sending");
            if !still {
                return Ok(());
            }
            let page = subscriber::Entity::find()
                .filter(subscriber::Column::AgencyId.eq(c.agency_id))
                .filter(subscriber::Column::ListId.eq(c.list_id))
                .filter(subscriber::Column::Status.eq("active"))
                .filter(subscriber::Column::Id.gt(after))
                .order_by_asc(subscriber::Column::Id)
                .limit(1_000)
                .all(&self.db)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            let audience: Vec<&subscriber::Model> = page
                .iter()
                .filter(|s| {
                    segment
                        .as_ref()
                        .is_none_or(|f| Attributes::from_stored(&s.attributes).matches(f))
                })
                .collect();
            total += audience.len() as i64;
            let items = audience
                .into_iter()
                .map(|s| self.newsletter_delivery(c, &client, &list, &brand, s))
                .collect::<AppResult<Vec<_>>>()?;
            enqueue_with_ids(&self.db, items).await?;
            self.wake_mailer(c.agency_id).await;
            // Still at it: keeps other workers from taking the fan-out over.
            campaign::Entity::update_many()
                .col_expr(campaign::Column::UpdatedAt, Expr::value(now()))
                .filter(campaign::Column::Id.eq(c.id))
                .exec(&self.db)
                .await?;
        }
        // Every recipient is queued: the campaign is finished, and webhooks
        // hear of it once (the row as still unfinished, same transaction).
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let done = campaign::Entity::update_many()
            .col_expr(campaign::Column::Total, Expr::value(total))
            .col_expr(campaign::Column::FinishedAt, Expr::value(now()))
            .col_expr(campaign::Column::UpdatedAt, Expr::value(now()))
            .filter(campaign::Column::Id.eq(c.id))
            .filter(campaign::Column::FinishedAt.is_null())
            .exec(&txn)
            .await?;
        let hooks = if done.rows_affected == 1 {
            let data = serde_json::json!({
                "campaign_id": c.id, "client_id": c.client_id, "list_id": c.list_id,
                "segment_id": c.segment_id, "recipients": total,
            });
            webhooks::emit(&txn, c.agency_id, webhooks::CAMPAIGN_FINISHED, data).await?
        } else {
            0
        };
        txn.commit().await?;
        if hooks > 0 {
            self.wake_webhooks(c.agency_id).await;
        }
        Ok(())
    }
}

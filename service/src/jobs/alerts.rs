//! Failed-job alerts: collected per agency, mailed to its admins once none
//! came for the alert window.

use anyhow::Context;
use chrono::Utc;
use entity::job_alert;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::infra::error::{AppError, AppResult};
use crate::infra::ledger::KIND_QUESTIONNAIRE;
use crate::{Services, new_id};

/// What a recompute kind is called in an email.
fn kind_label(kind: &str, ru: bool) -> &str {
    match (kind, ru) {
        (KIND_QUESTIONNAIRE, true) => "Сводка анкеты",
        (KIND_QUESTIONNAIRE, false) => "Questionnaire summary",
        (crate::research::hypotheses::KIND_HYPOTHESES, true) => "Выводы по гипотезам",
        (crate::research::hypotheses::KIND_HYPOTHESES, false) => "Hypothesis verdicts",
        (crate::research::ux::KIND_UX, true) => "Оповещения UX-карты",
        (crate::research::ux::KIND_UX, false) => "UX-map alerts",
        (crate::research::summary::KIND_PANEL, true) => "Панель клиентов",
        (crate::research::summary::KIND_PANEL, false) => "Customer panel",
        (crate::commerce::purchases::KIND_PURCHASES, true) => "Покупки и миграция JTBD",
        (crate::commerce::purchases::KIND_PURCHASES, false) => "Purchases and JTBD migration",
        (crate::commerce::cash::KIND_CASH, true) => "Модель Cash Journey",
        (crate::commerce::cash::KIND_CASH, false) => "Cash Journey model",
        (crate::infra::ledger::KIND_CONTACTS, true) => "Квалификация контактов",
        (crate::infra::ledger::KIND_CONTACTS, false) => "Contact qualification",
        (crate::infra::email::KIND_WAKE, true) => "Отправка писем",
        (crate::infra::email::KIND_WAKE, false) => "Email delivery",
        (other, _) => other,
    }
}

/// The email listing failed recomputes, in `locale`.
fn job_alert_mail(
    brand: &crate::infra::email::Brand,
    alerts: &[job_alert::Model],
    locale: &str,
) -> AppResult<crate::infra::email::Rendered> {
    let ru = locale == "ru";
    let jobs: Vec<serde_json::Value> = alerts
        .iter()
        .map(|a| {
            let when = a
                .failed_at
                .format(if ru {
                    "%d.%m.%Y %H:%M:%S UTC"
                } else {
                    "%Y-%m-%d %H:%M:%S UTC"
                })
                .to_string();
            serde_json::json!({
                "kind": a.kind, "label": kind_label(&a.kind, ru), "target_id": a.target_id,
                "data_version": a.data_version, "attempt": a.attempts, "error": a.error,
                "failed_at": when,
            })
        })
        .collect();
    crate::infra::email::render::render(
        "job_failed",
        locale,
        brand,
        serde_json::json!({"count": jobs.len(), "jobs": jobs}),
    )
}

impl Services {
    pub async fn flush_job_alerts(&self, now: chrono::DateTime<Utc>) -> AppResult<u64> {
        let window = chrono::Duration::milliseconds(std::cmp::max(self.config.alert_window_ms, 0));
        let waiting = job_alert::Entity::find()
            .filter(job_alert::Column::NotifiedAt.is_null())
            .order_by_asc(job_alert::Column::FailedAt)
            .limit(5_000)
            .all(&self.db)
            .await
            .context("while looking for failed-job alerts")?;
        let mut by_agency: std::collections::BTreeMap<Uuid, Vec<job_alert::Model>> =
            Default::default();
        for a in waiting {
            by_agency.entry(a.agency_id).or_default().push(a);
        }
        let mut queued = 0;
        for (agency_id, alerts) in by_agency {
            let (Some(first), Some(last)) = (alerts.first(), alerts.last()) else {
                continue;
            };
            let quiet = now - last.failed_at >= window;
            let overdue = now - first.failed_at >= window * 12;
            if quiet || overdue {
                let n = self
                    .mail_job_alerts(agency_id, now)
                    .await
                    .with_context(|| {
                        format!("while mailing the failed jobs of agency {agency_id}")
                    })?;
                if n > 0 {
                    self.wake_mailer(agency_id).await;
                }
                queued += n;
            }
        }
        Ok(queued)
    }

    async fn mail_job_alerts(&self, agency_id: Uuid, now: chrono::DateTime<Utc>) -> AppResult<u64> {
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let batch = new_id();
        // The claim re-checks `notified_at` on each row as it updates it: a
        // failure claimed by another sweeper is not claimed again.
        job_alert::Entity::update_many()
            .col_expr(job_alert::Column::NotifiedAt, Expr::value(now))
            .col_expr(job_alert::Column::BatchId, Expr::value(batch))
            .filter(job_alert::Column::AgencyId.eq(agency_id))
            .filter(job_alert::Column::NotifiedAt.is_null())
            .exec(&txn)
            .await?;
        let alerts = job_alert::Entity::find()
            .filter(job_alert::Column::AgencyId.eq(agency_id))
            .filter(job_alert::Column::BatchId.eq(batch))
            .order_by_asc(job_alert::Column::FailedAt)
            .order_by_asc(job_alert::Column::Id)
            .all(&txn)
            .await?;
        if alerts.is_empty() {
            txn.rollback().await?;
            return Ok(0);
        }
        let agency = entity::agency::Entity::find_by_id(agency_id)
            .one(&txn)
            .await?
            .ok_or(AppError::NotFound)?;
        let brand = crate::infra::email::Brand::of_agency(&agency);
        // Each admin reads it in their own language, else the agency's.
        let mail = crate::infra::email::admin_deliveries(
            &txn,
            agency_id,
            None,
            "job_failed",
            batch,
            &agency.locale,
            |locale| job_alert_mail(&brand, &alerts, locale),
        )
        .await?;
        let n = crate::infra::email::enqueue(&txn, mail).await?;
        txn.commit().await?;
        Ok(n)
    }
}

impl Services {
    /// Sweeper: one email per owner/admin of each agency whose webhook
    /// endpoint was disabled for failing, queued in the transaction that
    /// takes the endpoint's `alert_pending` (so each is told once).
    pub async fn flush_webhook_alerts(&self) -> AppResult<u64> {
        use entity::webhook_endpoint as we;
        let pending = we::Entity::find()
            .filter(we::Column::AlertPending.eq(true))
            .limit(100)
            .all(&self.db)
            .await
            .context("while looking for disabled webhook endpoints")?;
        let mut queued = 0;
        for ep in pending {
            let txn = crate::infra::db::begin_write(&self.db).await?;
            let taken = we::Entity::update_many()
                .col_expr(we::Column::AlertPending, Expr::value(false))
                .filter(we::Column::Id.eq(ep.id))
                .filter(we::Column::AlertPending.eq(true))
                .exec(&txn)
                .await?;
            if taken.rows_affected == 0 {
                txn.rollback().await?;
                continue;
            }
            let agency = entity::agency::Entity::find_by_id(ep.agency_id)
                .one(&txn)
                .await?
                .ok_or(AppError::NotFound)?;
            let brand = crate::infra::email::Brand::of_agency(&agency);
            let data = serde_json::json!({
                "url": ep.url, "description": ep.description, "endpoint_id": ep.id,
                "reason": ep.disabled_reason,
            });
            let mail = crate::infra::email::admin_deliveries(
                &txn,
                ep.agency_id,
                None,
                "webhook_disabled",
                new_id(),
                &agency.locale,
                |locale| {
                    crate::infra::email::render::render(
                        "webhook_disabled",
                        locale,
                        &brand,
                        data.clone(),
                    )
                },
            )
            .await?;
            let n = crate::infra::email::enqueue(&txn, mail).await?;
            txn.commit().await?;
            if n > 0 {
                self.wake_mailer(ep.agency_id).await;
            }
            queued += n;
        }
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(kind: &str) -> job_alert::Model {
        job_alert::Model {
            id: Uuid::nil(),
            agency_id: Uuid::nil(),
            kind: kind.into(),
            target_id: Uuid::nil(),
            data_version: 7,
            attempts: 5,
            error: "boom".into(),
            failed_at: "2026-12-01T10:00:00Z".parse().unwrap(),
            notified_at: None,
            batch_id: None,
        }
    }

    #[test]
    fn failed_job_mail_names_the_kind_and_the_date_in_each_language() {
        let brand = crate::infra::email::Brand::of("Acme");
        let ru = job_alert_mail(&brand, &[alert(KIND_QUESTIONNAIRE)], "ru").unwrap();
        assert_eq!(ru.subject, "Пересчёт не удался: Сводка анкеты");
        assert!(
            ru.text
                .contains("- Сводка анкеты (questionnaire_summary) · 00000000")
                && ru.text.contains("Когда: 01.12.2026 10:00:00 UTC"),
            "{}",
            ru.text
        );
        let en = job_alert_mail(
            &brand,
            &[alert(crate::research::ux::KIND_UX), alert("odd_kind")],
            "en",
        )
        .unwrap();
        assert_eq!(en.subject, "2 recomputes failed");
        assert!(
            en.text.contains("- UX-map alerts (client_ux) · ")
                && en.text.contains("- odd_kind · ")
                && en.text.contains("When: 2026-12-01 10:00:00 UTC"),
            "{}",
            en.text
        );
    }

    #[test]
    fn every_job_kind_has_a_name_in_both_languages() {
        for kind in [
            KIND_QUESTIONNAIRE,
            crate::research::summary::KIND_PANEL,
            crate::research::hypotheses::KIND_HYPOTHESES,
            crate::research::ux::KIND_UX,
            crate::commerce::purchases::KIND_PURCHASES,
            crate::commerce::cash::KIND_CASH,
            crate::infra::email::KIND_WAKE,
        ] {
            for ru in [true, false] {
                let label = kind_label(kind, ru);
                assert_ne!(label, kind, "{kind} has no name (ru: {ru})");
                assert_eq!(
                    label
                        .chars()
                        .any(|c| ('а'..='я').contains(&c.to_lowercase().next().unwrap())),
                    ru,
                    "{kind}: {label}"
                );
            }
        }
    }
}

//! The UX dynamic map (analytics.md §4) of a client, from its
//! mystery-shopper questionnaires: each response's visit date (a
//! `visit_date` question, else the submission date in the client's time
//! zone), simulated JTBD (a `jtbd` question, else `unspecified`), ratings of
//! `touchpoint_rating` questions and ideas of `touchpoint_idea` questions.
use std::collections::{BTreeMap, BTreeSet, HashMap};

use analytics::ux::{Flag, FlagKey, Idea, MysteryRating, UxConfig, UxMap, UxStats, compute};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{client, questionnaire, response, touchpoint, ux_alert};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use uuid::Uuid;

use crate::domain::questions::QuestionRole;
use crate::infra::error::AppResult;
use crate::infra::webhooks;
use crate::platform::clients::find_client;
use crate::research::questionnaires::load_questions;
use crate::{Perm, RequestCtx, Services};

/// Label of ratings whose response names no JTBD.
pub const NO_JTBD: &str = "unspecified";

/// The recompute kind of a client's UX alerts.
pub const KIND_UX: &str = "client_ux";

/// The UX map with the data version it reflects.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct UxMapView {
    pub client_id: Uuid,
    /// The sum of the data versions of the client's mystery-shopper
    /// questionnaires: it grows with every batch of audits.
    pub data_version: i64,
    pub computed_at: DateTime<Utc>,
    #[serde(flatten)]
    #[graphql(flatten)]
    pub map: UxMap,
}

/// A negative flag of the UX map, from the recompute that raised it until
/// one no longer sees it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct UxAlertView {
    pub id: Uuid,
    pub client_id: Uuid,
    /// `touchpoint_jtbd`, `touchpoint` or `stage`.
    pub scope: String,
    pub touchpoint_id: Option<Uuid>,
    pub stage_id: Option<Uuid>,
    pub jtbd: Option<String>,
    /// Current-window mean minus baseline mean when raised.
    pub deviation: Option<f64>,
    pub current_mean: Option<f64>,
    pub baseline_mean: Option<f64>,
    pub current_n: i64,
    /// The as-of date of the map that raised it.
    pub as_of: String,
    pub data_version: i64,
    pub raised_at: DateTime<Utc>,
    /// When a recompute no longer saw the flag; absent while open.
    pub cleared_at: Option<DateTime<Utc>>,
    /// When the email to the agency's owners and admins was queued (its
    /// delivery: `GET /api/v1/deliveries?kind=ux_alerts`).
    pub notified_at: Option<DateTime<Utc>>,
}
crate::has_id!(UxAlertView);

impl From<ux_alert::Model> for UxAlertView {
    fn from(m: ux_alert::Model) -> Self {
        Self {
            id: m.id,
            client_id: m.client_id,
            scope: m.scope,
            touchpoint_id: m.touchpoint_id,
            stage_id: m.stage_id,
            jtbd: m.jtbd,
            deviation: m.deviation,
            current_mean: m.current_mean,
            baseline_mean: m.baseline_mean,
            current_n: m.current_n,
            as_of: m.as_of,
            data_version: m.data_version,
            raised_at: m.raised_at,
            cleared_at: m.cleared_at,
            notified_at: m.notified_at,
        }
    }
}

/// `?open=` of the alert list.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlertFilter {
    /// Only alerts not cleared yet.
    pub open_only: bool,
}

impl Services {
    pub async fn ux_map(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        as_of: Option<NaiveDate>,
    ) -> AppResult<UxMapView> {
        let client = find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let (map, data_version) = self.build_ux_map(&client, as_of).await?;
        Ok(UxMapView {
            client_id,
            data_version,
            computed_at: crate::now(),
            map,
        })
    }

    /// Worker: computes today's map of a client (in its time zone) and keeps
    /// its alerts in step: a negative flag not open yet is raised, an open
    /// one the map no longer shows is cleared. Returns the version of the
    /// client's UX target it reflects.
    pub async fn recompute_client_ux(&self, agency_id: Uuid, client_id: Uuid) -> AppResult<i64> {
        let version =
            crate::infra::ledger::wanted_version(&self.db, agency_id, KIND_UX, client_id).await?;
        let client = find_client(&self.db, agency_id, client_id).await?;
        let (map, data_version) = self.build_ux_map(&client, None).await?;
        let mut raised: Vec<ux_alert::ActiveModel> = Vec::new();
        let key_of = |k: &FlagKey| serde_json::to_string(k).unwrap_or_default();
        let current: BTreeMap<String, (FlagKey, &UxStats)> = map
            .by_touchpoint_jtbd
            .iter()
            .map(|r| {
                (
                    FlagKey::TouchpointJtbd {
                        touchpoint_id: r.touchpoint_id.clone(),
                        jtbd: r.jtbd.clone(),
                    },
                    &r.stats,
                )
            })
            .chain(map.by_touchpoint.iter().map(|r| {
                (
                    FlagKey::Touchpoint {
                        touchpoint_id: r.touchpoint_id.clone(),
                    },
                    &r.stats,
                )
            }))
            .chain(map.by_stage.iter().map(|r| {
                (
                    FlagKey::Stage {
                        stage_id: r.stage_id.clone(),
                    },
                    &r.stats,
                )
            }))
            .filter(|(_, st)| st.flag == Some(Flag::Negative))
            .map(|(k, st)| (key_of(&k), (k, st)))
            .collect();
        let open = ux_alert::Entity::find()
            .filter(ux_alert::Column::AgencyId.eq(agency_id))
            .filter(ux_alert::Column::ClientId.eq(client_id))
            .filter(ux_alert::Column::ClearedAt.is_null())
            .all(&self.db)
            .await?;
        let open_keys: BTreeSet<&str> = open.iter().map(|a| a.flag_key.as_str()).collect();
        let t = crate::now();
        let mut raised_events = Vec::new();
        for (key, (flag, st)) in &current {
            if open_keys.contains(key.as_str()) {
                continue;
            }
            let parse = |s: &str| Uuid::parse_str(s).ok();
            let (scope, tp, stage, jtbd) = match flag {
                FlagKey::TouchpointJtbd {
                    touchpoint_id,
                    jtbd,
                } => (
                    "touchpoint_jtbd",
                    parse(touchpoint_id),
                    None,
                    Some(jtbd.clone()),
                ),
                FlagKey::Touchpoint { touchpoint_id } => {
                    ("touchpoint", parse(touchpoint_id), None, None)
                }
                FlagKey::Stage { stage_id } => ("stage", None, parse(stage_id), None),
            };
            let alert_id = crate::new_id();
            raised_events.push(serde_json::json!({
                "client_id": client_id, "alert_id": alert_id, "scope": scope,
                "flag_key": flag, "touchpoint_id": tp, "stage_id": stage, "jtbd": jtbd,
                "deviation": st.deviation, "current_mean": st.current.mean,
                "baseline_mean": st.baseline.mean, "as_of": map.as_of.to_string(),
            }));
            raised.push(ux_alert::ActiveModel {
                id: Set(alert_id),
                agency_id: Set(agency_id),
                client_id: Set(client_id),
                scope: Set(scope.into()),
                flag_key: Set(key.clone()),
                touchpoint_id: Set(tp),
                stage_id: Set(stage),
                jtbd: Set(jtbd),
                deviation: Set(st.deviation),
                current_mean: Set(st.current.mean),
                baseline_mean: Set(st.baseline.mean),
                current_n: Set(st.current.n as i64),
                as_of: Set(map.as_of.to_string()),
                data_version: Set(data_version),
                raised_at: Set(t),
                cleared_at: Set(None),
                // The email to the agency is queued in the same transaction.
                notified_at: Set(Some(t)),
            });
        }
        let cleared_alerts: Vec<&ux_alert::Model> = open
            .iter()
            .filter(|a| !current.contains_key(&a.flag_key))
            .collect();
        let cleared: Vec<Uuid> = cleared_alerts.iter().map(|a| a.id).collect();
        let mail = if raised.is_empty() {
            vec![]
        } else {
            self.ux_alert_mail(&client, &raised).await?
        };
        let mut wake = false;
        let txn = crate::infra::db::begin_write(&self.db).await?;
        if !raised.is_empty() {
            ux_alert::Entity::insert_many(raised)
                .exec_without_returning(&txn)
                .await?;
            // The agency hears of them in one email per admin, queued with
            // the alerts themselves.
            crate::infra::email::enqueue(&txn, mail).await?;
            wake = true;
        }
        if !cleared.is_empty() {
            ux_alert::Entity::update_many()
                .col_expr(ux_alert::Column::ClearedAt, Expr::value(t))
                .filter(ux_alert::Column::AgencyId.eq(agency_id))
                .filter(ux_alert::Column::Id.is_in(cleared))
                .exec(&txn)
                .await?;
        }
        // Webhooks, in the transaction that raises and clears.
        let mut hooks = 0;
        for data in raised_events {
            hooks += webhooks::emit(&txn, agency_id, webhooks::UX_FLAG_RAISED, data).await?;
        }
        for a in cleared_alerts {
            let data = serde_json::json!({
                "client_id": client_id, "alert_id": a.id, "scope": a.scope,
                "flag_key": serde_json::from_str::<serde_json::Value>(&a.flag_key).unwrap_or_default(),
                "touchpoint_id": a.touchpoint_id, "stage_id": a.stage_id, "jtbd": a.jtbd,
            });
            hooks += webhooks::emit(&txn, agency_id, webhooks::UX_FLAG_CLEARED, data).await?;
        }
        txn.commit().await?;
        if wake {
            self.wake_mailer(agency_id).await;
        }
        if hooks > 0 {
            self.wake_webhooks(agency_id).await;
        }
        Ok(version)
    }

    /// One email per owner/admin listing newly raised alerts, in the
    /// admin's own language, else the client's.
    async fn ux_alert_mail(
        &self,
        client: &client::Model,
        raised: &[ux_alert::ActiveModel],
    ) -> AppResult<Vec<crate::infra::email::NewDelivery>> {
        let mail = self.ux_alert_renderer(client, raised).await?;
        // The batch is named by its first alert: each alert is in one batch.
        let batch = raised[0].id.clone().unwrap();
        crate::infra::email::admin_deliveries(
            &self.db,
            client.agency_id,
            Some(client.id),
            "ux_alerts",
            batch,
            &client.locale,
            |locale| mail.render(locale),
        )
        .await
    }

    /// What the alert email of `raised` needs, in either language.
    pub(crate) async fn ux_alert_renderer(
        &self,
        client: &client::Model,
        raised: &[ux_alert::ActiveModel],
    ) -> AppResult<UxAlertMail> {
        let agency = entity::agency::Entity::find_by_id(client.agency_id)
            .one(&self.db)
            .await?
            .ok_or(crate::AppError::NotFound)?;
        let tps = touchpoint::Entity::find()
            .filter(touchpoint::Column::AgencyId.eq(client.agency_id))
            .all(&self.db)
            .await?;
        let stages = entity::cjm_stage::Entity::find()
            .filter(entity::cjm_stage::Column::AgencyId.eq(client.agency_id))
            .all(&self.db)
            .await?;
        let mut labels: HashMap<(Uuid, bool), String> = HashMap::new();
        let names = tps
            .into_iter()
            .map(|t| (t.id, t.name_ru, t.name_en))
            .chain(stages.into_iter().map(|st| (st.id, st.name_ru, st.name_en)));
        for (id, ru, en) in names {
            labels.insert((id, true), ru);
            labels.insert((id, false), en);
        }
        Ok(UxAlertMail {
            brand: crate::infra::email::Brand::of_agency(&agency),
            client: client.name.clone(),
            raised: raised.to_vec(),
            labels,
        })
    }

    /// A client's UX alerts, in the order raised.
    pub async fn ux_alerts(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        filter: AlertFilter,
        page: crate::infra::page::PageParams,
    ) -> AppResult<crate::infra::page::Page<UxAlertView>> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let page = page.parse()?;
        let mut q = ux_alert::Entity::find()
            .filter(ux_alert::Column::AgencyId.eq(ctx.agency_id))
            .filter(ux_alert::Column::ClientId.eq(client_id));
        if filter.open_only {
            q = q.filter(ux_alert::Column::ClearedAt.is_null());
        }
        page.fetch(q, ux_alert::Column::Id, &self.db, UxAlertView::from)
            .await
    }

    /// The map of `client` as of `as_of` (default: today in its time zone),
    /// and the data version it reflects.
    pub(crate) async fn build_ux_map(
        &self,
        client: &client::Model,
        as_of: Option<NaiveDate>,
    ) -> AppResult<(UxMap, i64)> {
        let agency_id = client.agency_id;
        let client_id = client.id;
        let tz: chrono_tz::Tz = client.timezone.parse().unwrap_or(chrono_tz::Europe::Moscow);
        let as_of = as_of.unwrap_or_else(|| Utc::now().with_timezone(&tz).date_naive());
        let audits = questionnaire::Entity::find()
            .filter(questionnaire::Column::AgencyId.eq(agency_id))
            .filter(questionnaire::Column::ClientId.eq(client_id))
            .filter(questionnaire::Column::Kind.eq("mystery_shopper"))
            .all(&self.db)
            .await?;
        let data_version: i64 = audits.iter().map(|q| q.data_version).sum();
        let stage_of: HashMap<Uuid, Uuid> = touchpoint::Entity::find()
            .filter(touchpoint::Column::AgencyId.eq(agency_id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| (t.id, t.stage_id))
            .collect();
        let mut ratings = Vec::new();
        let mut ideas = Vec::new();
        for q in audits {
            let questions = load_questions(&self.db, agency_id, q.id, q.version).await?;
            let visit_key = questions
                .iter()
                .find(|x| x.role == Some(QuestionRole::VisitDate))
                .map(|x| x.key.clone());
            let jtbd_key = questions
                .iter()
                .find(|x| x.role == Some(QuestionRole::Jtbd))
                .map(|x| x.key.clone());
            let rated: Vec<(String, Uuid)> = questions
                .iter()
                .filter(|x| x.role == Some(QuestionRole::TouchpointRating))
                .filter_map(|x| Some((x.key.clone(), x.touchpoint_id?)))
                .collect();
            let idea_qs: Vec<(String, Uuid)> = questions
                .iter()
                .filter(|x| x.role == Some(QuestionRole::TouchpointIdea))
                .filter_map(|x| Some((x.key.clone(), x.touchpoint_id?)))
                .collect();
            let rows: Vec<(DateTime<Utc>, serde_json::Value)> = response::Entity::find()
                .filter(response::Column::AgencyId.eq(agency_id))
                .filter(response::Column::QuestionnaireId.eq(q.id))
                .select_only()
                .column(response::Column::SubmittedAt)
                .column(response::Column::Answers)
                .into_tuple()
                .all(&self.db)
                .await?;
            for (at, answers) in rows {
                let date = visit_key
                    .as_ref()
                    .and_then(|k| answers.get(k)?.as_str())
                    .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                    .unwrap_or_else(|| at.with_timezone(&tz).date_naive());
                let jtbd = jtbd_key
                    .as_ref()
                    .and_then(|k| answers.get(k)?.as_str())
                    .unwrap_or(NO_JTBD)
                    .to_owned();
                for (key, tp) in &rated {
                    let Some(r) = answers.get(key).and_then(|v| v.as_u64()) else {
                        continue;
                    };
                    let (Ok(rating), Some(stage)) = (
                        analytics::ux::Rating1to5::try_from(r as u8),
                        stage_of.get(tp),
                    ) else {
                        continue;
                    };
                    ratings.push(MysteryRating {
                        date,
                        touchpoint_id: tp.to_string(),
                        stage_id: stage.to_string(),
                        jtbd: jtbd.clone(),
                        rating,
                    });
                }
                for (key, tp) in &idea_qs {
                    if let Some(text) = answers.get(key).and_then(|v| v.as_str()) {
                        ideas.push(Idea {
                            date,
                            touchpoint_id: tp.to_string(),
                            text: text.to_owned(),
                        });
                    }
                }
            }
        }
        let map = tokio::task::spawn_blocking(move || {
            compute(&ratings, &ideas, as_of, &UxConfig::default())
        })
        .await
        .map_err(|e| crate::AppError::Unexpected(anyhow::anyhow!("ux map: {e}")))?;
        Ok((map, data_version))
    }
}

/// The UX alert email of some raised alerts, ready to render per language.
pub(crate) struct UxAlertMail {
    brand: crate::infra::email::Brand,
    client: String,
    raised: Vec<ux_alert::ActiveModel>,
    /// (touchpoint or stage id, Russian?) → name.
    labels: HashMap<(Uuid, bool), String>,
}

impl UxAlertMail {
    pub(crate) fn render(&self, locale: &str) -> AppResult<crate::infra::email::Rendered> {
        use sea_orm::ActiveValue;
        let ru = locale == "ru";
        let get = |v: &ActiveValue<Option<f64>>| match v {
            ActiveValue::Set(x) | ActiveValue::Unchanged(x) => *x,
            ActiveValue::NotSet => None,
        };
        let id = |v: &ActiveValue<Option<Uuid>>| match v {
            ActiveValue::Set(x) | ActiveValue::Unchanged(x) => *x,
            ActiveValue::NotSet => None,
        };
        let num = |x: Option<f64>| {
            x.map(|x| {
                let s = format!("{x:.2}");
                if ru { s.replace('.', ",") } else { s }
            })
            .unwrap_or_else(|| "—".into())
        };
        let label = |v: &ActiveValue<Option<Uuid>>| id(v).and_then(|i| self.labels.get(&(i, ru)));
        let alerts: Vec<serde_json::Value> = self
            .raised
            .iter()
            .map(|a| {
                serde_json::json!({
                    "label": label(&a.touchpoint_id).or(label(&a.stage_id)).cloned().unwrap_or_else(|| "—".into()),
                    "jtbd": a.jtbd.clone().unwrap(),
                    "current": num(get(&a.current_mean)),
                    "baseline": num(get(&a.baseline_mean)),
                    "deviation": num(get(&a.deviation)),
                    "n": a.current_n.clone().unwrap(),
                })
            })
            .collect();
        crate::infra::email::render::render(
            "ux_alerts",
            locale,
            &self.brand,
            serde_json::json!({"client": self.client, "count": alerts.len(), "alerts": alerts}),
        )
    }
}

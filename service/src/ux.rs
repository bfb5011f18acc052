//! The UX dynamic map (analytics.md §4) of a client, from its
//! mystery-shopper questionnaires: each response's visit date (a
//! `visit_date` question, else the submission date in the client's time
//! zone), simulated JTBD (a `jtbd` question, else `unspecified`), ratings of
//! `touchpoint_rating` questions and ideas of `touchpoint_idea` questions.
use std::collections::HashMap;

use analytics::ux::{Idea, MysteryRating, UxConfig, UxMap, compute};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{questionnaire, response, touchpoint};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::clients::find_client;
use crate::domain::questions::QuestionRole;
use crate::error::AppResult;
use crate::questionnaires::load_questions;
use crate::{Perm, RequestCtx, Services};

/// Label of ratings whose response names no JTBD.
pub const NO_JTBD: &str = "unspecified";

impl Services {
    pub async fn ux_map(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        as_of: Option<NaiveDate>,
    ) -> AppResult<UxMap> {
        let client = find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let tz: chrono_tz::Tz = client.timezone.parse().unwrap_or(chrono_tz::Europe::Moscow);
        let as_of = as_of.unwrap_or_else(|| Utc::now().with_timezone(&tz).date_naive());
        let audits = questionnaire::Entity::find()
            .filter(questionnaire::Column::AgencyId.eq(ctx.agency_id))
            .filter(questionnaire::Column::ClientId.eq(client_id))
            .filter(questionnaire::Column::Kind.eq("mystery_shopper"))
            .all(&self.db)
            .await?;
        let stage_of: HashMap<Uuid, Uuid> = touchpoint::Entity::find()
            .filter(touchpoint::Column::AgencyId.eq(ctx.agency_id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| (t.id, t.stage_id))
            .collect();
        let mut ratings = Vec::new();
        let mut ideas = Vec::new();
        for q in audits {
            let questions = load_questions(&self.db, ctx.agency_id, q.id, q.version).await?;
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
                .filter(response::Column::AgencyId.eq(ctx.agency_id))
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
        tokio::task::spawn_blocking(move || compute(&ratings, &ideas, as_of, &UxConfig::default()))
            .await
            .map_err(|e| crate::AppError::Unexpected(anyhow::anyhow!("ux map: {e}")))
    }
}

//! Why a contact has its tier, computed when the contact is read: the
//! client's rules it matched with their points, and the model's features
//! with the largest signed contributions — from the contact's facts as of
//! its last scoring (`scored_at`: the rules' time windows are judged then),
//! the client's current rules and model. The rescoring stores only score,
//! probability and tier; a change of rules or model is followed by a
//! rescoring within seconds, after which the explanation and the stored
//! figures agree again.
use std::collections::HashMap;

use analytics::funnel::qualify;
use uuid::Uuid;

use super::rescore::{answer_keys, attr_values, event_times, last_purchases_of};
use super::score::facts;
use super::{model_of, settings_of};
use crate::infra::error::AppResult;
use crate::infra::page::{Page, PageParams};
use crate::mail::contacts::{ContactFilter, ContactView, Explanation};
use crate::{RequestCtx, Services};

impl Services {
    /// One contact with its score, tier and explanation.
    pub async fn get_contact(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<ContactView> {
        let mut v = self.read_contact(ctx, id).await?;
        self.explain(ctx.agency_id, v.client_id, std::slice::from_mut(&mut v))
            .await?;
        Ok(v)
    }

    /// A client's contacts, by id, filtered, each with its explanation.
    pub async fn list_contacts(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        filter: ContactFilter,
        page: PageParams,
    ) -> AppResult<Page<ContactView>> {
        let mut p = self.read_contacts(ctx, client_id, filter, page).await?;
        self.explain(ctx.agency_id, client_id, &mut p.items).await?;
        Ok(p)
    }

    /// Fills in the explanation of every scored contact of `views` (all of
    /// `client_id`): one read each of the settings, the model, the events
    /// of these addresses and the purchases of these customers.
    async fn explain(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
        views: &mut [ContactView],
    ) -> AppResult<()> {
        if views.iter().all(|v| v.scored_at.is_none()) {
            return Ok(());
        }
        let (rules, thresholds, _, _) = settings_of(&self.db, agency_id, client_id).await?;
        let model = model_of(&self.db, agency_id, client_id)
            .await?
            .map(|(s, _)| s.model);
        let emails: Vec<String> = views.iter().map(|v| v.email.clone()).collect();
        let events = event_times(&self.db, agency_id, client_id, Some(&emails)).await?;
        let refs: Vec<String> = views
            .iter()
            .filter_map(|v| v.customer_ref.clone())
            .collect();
        let keys = answer_keys(&rules);
        let answers = if keys.is_empty() {
            HashMap::new()
        } else {
            let ids: Vec<Uuid> = views.iter().map(|v| v.id).collect();
            crate::mail::contacts::responses::answers_by_contact(
                &self.db,
                agency_id,
                client_id,
                &keys,
                Some(&ids),
            )
            .await?
        };
        let purchases = if refs.is_empty() {
            HashMap::new()
        } else {
            last_purchases_of(&self.db, agency_id, client_id, Some(&refs)).await?
        };
        for v in views {
            let Some(at) = v.scored_at else { continue };
            let f = facts(
                attr_values(&v.attributes),
                v.confirmed_at,
                events.get(&v.email),
                v.customer_ref
                    .as_ref()
                    .and_then(|c| purchases.get(c).copied()),
                answers.get(&v.id).cloned().unwrap_or_default(),
            );
            let q = qualify(&rules, model.as_ref(), &thresholds, &f, at);
            v.explanation = Some(Explanation {
                rules: q.rules,
                features: q.features,
            });
        }
        Ok(())
    }
}

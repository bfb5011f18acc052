//! Enrolment and exits, run by the worker after each rescoring of a
//! client's contacts: a contact in a segment chain's segment is enrolled
//! once; a purchase of a linked customer (after the chain was created)
//! enrols the contact in each reverse chain, timed by the JTBD's median
//! inter-purchase interval minus the lead time, superseding the enrolment
//! of an earlier purchase; active enrolments whose contact converted,
//! unsubscribed, bounced or left the segment end.
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use entity::{chain, chain_enrolment, chain_log, purchase, scored_contact};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;

use super::schedule::in_window;
use super::*;
use crate::mail::contacts::segment_view;
use crate::platform::clients::find_client;
use crate::{Services, new_id};

/// Why an enrolment of `c` must end now, if it must.
pub(crate) fn exit_reason(
    c: &scored_contact::Model,
    e: &chain_enrolment::Model,
    segment: Option<&crate::domain::segment_filter::SegmentFilter>,
) -> Option<&'static str> {
    if c.converted == Some(true) && c.converted_at.is_some_and(|t| t >= e.enrolled_at) {
        return Some("converted");
    }
    match c.status.as_str() {
        "unsubscribed" => return Some("unsubscribed"),
        "bounced" => return Some("bounced"),
        _ => {}
    }
    if let Some(f) = segment
        && !segment_view(c).matches(f)
    {
        return Some("left_segment");
    }
    None
}

/// Ends an enrolment (if still active at `step`) and logs why, in `db`.
pub(crate) async fn end_enrolment<C: ConnectionTrait>(
    db: &C,
    e: &chain_enrolment::Model,
    reason: &str,
    t: DateTime<Utc>,
) -> AppResult<bool> {
    use chain_enrolment::Column as E;
    let done = chain_enrolment::Entity::update_many()
        .col_expr(E::Status, "exited".into())
        .col_expr(E::ExitReason, reason.into())
        .col_expr(E::NextAt, Option::<DateTime<Utc>>::None.into())
        .col_expr(E::UpdatedAt, t.into())
        .filter(E::AgencyId.eq(e.agency_id))
        .filter(E::Id.eq(e.id))
        .filter(E::Status.eq("active"))
        .filter(E::Step.eq(e.step))
        .exec(db)
        .await?
        .rows_affected
        == 1;
    if done {
        log(db, e, e.step, "exited", Some(reason), None, t).await?;
    }
    Ok(done)
}

pub(crate) async fn log<C: ConnectionTrait>(
    db: &C,
    e: &chain_enrolment::Model,
    step: i32,
    action: &str,
    reason: Option<&str>,
    dedupe_key: Option<String>,
    t: DateTime<Utc>,
) -> AppResult<()> {
    let res = chain_log::Entity::insert(chain_log::ActiveModel {
        id: Set(new_id()),
        agency_id: Set(e.agency_id),
        chain_id: Set(e.chain_id),
        enrolment_id: Set(e.id),
        contact_id: Set(e.contact_id),
        step: Set(step),
        action: Set(action.to_owned()),
        reason: Set(reason.map(str::to_owned)),
        dedupe_key: Set(dedupe_key),
        created_at: Set(t),
    })
    .on_conflict(
        OnConflict::columns([
            chain_log::Column::AgencyId,
            chain_log::Column::EnrolmentId,
            chain_log::Column::Step,
            chain_log::Column::Action,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(db)
    .await;
    match res {
        Ok(_) | Err(sea_orm::DbErr::RecordNotInserted) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn new_enrolment(
    ch: &chain::Model,
    contact_id: Uuid,
    trigger_key: String,
    next_at: DateTime<Utc>,
    t: DateTime<Utc>,
) -> chain_enrolment::ActiveModel {
    chain_enrolment::ActiveModel {
        id: Set(new_id()),
        agency_id: Set(ch.agency_id),
        client_id: Set(ch.client_id),
        chain_id: Set(ch.id),
        contact_id: Set(contact_id),
        trigger_key: Set(trigger_key),
        status: Set("active".into()),
        exit_reason: Set(None),
        step: Set(0),
        next_at: Set(Some(next_at)),
        enrolled_at: Set(t),
        updated_at: Set(t),
    }
}

impl Services {
    /// Worker: enrols and exits the client's contacts in its active chains
    /// as of `now`. Returns how many were enrolled.
    pub async fn enrol_contacts(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
        now: DateTime<Utc>,
    ) -> AppResult<usize> {
        let chains = chain::Entity::find()
            .filter(chain::Column::AgencyId.eq(agency_id))
            .filter(chain::Column::ClientId.eq(client_id))
            .filter(chain::Column::Status.eq("active"))
            .all(&self.db)
            .await?;
        if chains.is_empty() {
            return Ok(0);
        }
        let client = find_client(&self.db, agency_id, client_id).await?;
        let tz = crate::commerce::purchases::client_tz(&client);
        let contacts: HashMap<Uuid, scored_contact::Model> = scored_contact::Entity::find()
            .filter(scored_contact::Column::AgencyId.eq(agency_id))
            .filter(scored_contact::Column::ClientId.eq(client_id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        let mut enrolled = 0;
        for ch in &chains {
            let steps = steps_of(ch);
            let Some(first) = steps.first() else { continue };
            let kind = ChainKind::parse(&ch.kind).unwrap_or(ChainKind::Segment);
            let segment = match (kind, ch.segment_id) {
                (ChainKind::Segment, Some(id)) => Some(
                    crate::research::segments::segment_filter_of(&self.db, agency_id, id).await?,
                ),
                _ => None,
            };
            let existing = chain_enrolment::Entity::find()
                .filter(chain_enrolment::Column::AgencyId.eq(agency_id))
                .filter(chain_enrolment::Column::ChainId.eq(ch.id))
                .all(&self.db)
                .await?;
            // Exits first: a contact that left is not enrolled again.
            for e in existing.iter().filter(|e| e.status == "active") {
                if let Some(c) = contacts.get(&e.contact_id)
                    && let Some(reason) = exit_reason(c, e, segment.as_ref())
                {
                    end_enrolment(&self.db, e, reason, now).await?;
                }
            }
            let window = (ch.window_start, ch.window_end);
            let mut rows = Vec::new();
            match kind {
                ChainKind::Segment => {
                    let Some(f) = &segment else { continue };
                    let known: HashSet<Uuid> = existing.iter().map(|e| e.contact_id).collect();
                    let at = in_window(now + Duration::minutes(first.delay_minutes), tz, window);
                    for c in contacts.values() {
                        if c.status == "active"
                            && c.converted != Some(true)
                            && !known.contains(&c.id)
                            && segment_view(c).matches(f)
                        {
                            rows.push(new_enrolment(ch, c.id, "segment".into(), at, now));
                        }
                    }
                }
                ChainKind::Reverse => {
                    rows = self
                        .reverse_enrolments(ch, &contacts, &existing, tz, now)
                        .await?;
                }
            }
            enrolled += rows.len();
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                let batch: Vec<_> = rows.by_ref().take(500).collect();
                let res = chain_enrolment::Entity::insert_many(batch)
                    .on_conflict(
                        OnConflict::columns([
                            chain_enrolment::Column::AgencyId,
                            chain_enrolment::Column::ChainId,
                            chain_enrolment::Column::ContactId,
                            chain_enrolment::Column::TriggerKey,
                        ])
                        .do_nothing()
                        .to_owned(),
                    )
                    .exec_without_returning(&self.db)
                    .await;
                match res {
                    Ok(_) | Err(sea_orm::DbErr::RecordNotInserted) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        if enrolled > 0 {
            self.wake_mailer(agency_id).await;
        }
        Ok(enrolled)
    }

    /// New enrolments of a reverse chain: for each linked contact, its
    /// latest purchase since the chain was created, if not enrolled for it
    /// yet (an active enrolment of an earlier purchase ends, `repurchased`).
    async fn reverse_enrolments(
        &self,
        ch: &chain::Model,
        contacts: &HashMap<Uuid, scored_contact::Model>,
        existing: &[chain_enrolment::Model],
        tz: chrono_tz::Tz,
        now: DateTime<Utc>,
    ) -> AppResult<Vec<chain_enrolment::ActiveModel>> {
        let by_ref: BTreeMap<&str, &scored_contact::Model> = contacts
            .values()
            .filter(|c| c.status == "active")
            .filter_map(|c| Some((c.customer_ref.as_deref()?, c)))
            .collect();
        if by_ref.is_empty() {
            return Ok(Vec::new());
        }
        let mut latest: BTreeMap<String, purchase::Model> = BTreeMap::new();
        let refs: Vec<String> = by_ref.keys().map(|r| (*r).to_owned()).collect();
        for chunk in refs.chunks(500) {
            for p in purchase::Entity::find()
                .filter(purchase::Column::AgencyId.eq(ch.agency_id))
                .filter(purchase::Column::ClientId.eq(ch.client_id))
                .filter(purchase::Column::CustomerRef.is_in(chunk.to_vec()))
                .filter(purchase::Column::PurchasedAt.gte(ch.created_at))
                .order_by_asc(purchase::Column::PurchasedAt)
                .all(&self.db)
                .await?
            {
                latest.insert(p.customer_ref.clone(), p);
            }
        }
        let known: HashSet<(Uuid, &str)> = existing
            .iter()
            .map(|e| (e.contact_id, e.trigger_key.as_str()))
            .collect();
        let fresh: Vec<purchase::Model> = latest
            .into_values()
            .filter(|p| {
                by_ref
                    .get(p.customer_ref.as_str())
                    .is_some_and(|c| !known.contains(&(c.id, p.id.to_string().as_str())))
            })
            .collect();
        if fresh.is_empty() {
            return Ok(Vec::new());
        }
        let (labels, medians) = self
            .purchase_timing(ch.agency_id, ch.client_id, &fresh)
            .await?;
        let mut out = Vec::new();
        for (p, label) in fresh.iter().zip(labels) {
            let Some(c) = by_ref.get(p.customer_ref.as_str()) else {
                continue;
            };
            // No interval known for this JTBD yet: nothing to time it by.
            let Some(days) = medians.get(&label) else {
                continue;
            };
            for e in existing
                .iter()
                .filter(|e| e.contact_id == c.id && e.status == "active")
            {
                end_enrolment(&self.db, e, "repurchased", now).await?;
            }
            let wait = ((days - ch.lead_days).max(0.0) * 86_400.0).round() as i64;
            let due = (p.purchased_at + Duration::seconds(wait)).max(now);
            let at = in_window(due, tz, (ch.window_start, ch.window_end));
            out.push(new_enrolment(ch, c.id, p.id.to_string(), at, now));
        }
        Ok(out)
    }
}

//! Subscriptions and contacts kept in step: every subscription points at
//! the contact of its client and e-mail (created when missing), and a
//! contact's status and first confirmation follow its subscriptions. Set
//! statements over the client's rows, so a 100,000-row list import links in
//! two statements.
use sea_orm::ConnectionTrait;
use uuid::Uuid;

pub(crate) use crate::infra::db::stmt;
use crate::infra::error::AppResult;

/// Contacts for the client's subscriptions that have none (one per
/// e-mail; a new contact takes the subscription's id, name, locale and
/// attributes), then every such subscription pointed at its contact.
pub async fn link_subscribers<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
) -> AppResult<()> {
    const INSERT: &str = r#"INSERT INTO contacts (id, agency_id, client_id, email, name, locale,
        status, source_channel, funnel, attributes, customer_ref, confirmed_at, converted,
        converted_at, conversion_value, outcome_source, created_at, updated_at)
      SELECT s.id, s.agency_id, s.client_id, s.email, s.name, s.locale, 'active', NULL,
        'reach', s.attributes, NULL, s.confirmed_at, NULL, NULL, NULL, NULL,
        s.created_at, s.updated_at
      FROM subscribers s
      WHERE s.agency_id = $1 AND s.client_id = $2 AND s.contact_id IS NULL
        AND NOT EXISTS (SELECT 1 FROM subscribers e WHERE e.agency_id = s.agency_id
          AND e.client_id = s.client_id AND e.email = s.email AND e.contact_id IS NULL
          AND (e.created_at < s.created_at OR (e.created_at = s.created_at AND e.id < s.id)))
      ON CONFLICT (agency_id, client_id, email) DO NOTHING"#;
    const POINT: &str = r#"UPDATE subscribers SET contact_id = (SELECT c.id FROM contacts c
        WHERE c.agency_id = subscribers.agency_id AND c.client_id = subscribers.client_id
          AND c.email = subscribers.email)
      WHERE agency_id = $1 AND client_id = $2 AND contact_id IS NULL"#;
    for sql in [INSERT, POINT] {
        db.execute_raw(stmt(db, sql, vec![agency_id.into(), client_id.into()]))
            .await?;
    }
    Ok(())
}

/// A contact's status and first confirmation from its subscriptions:
/// `bounced` when one bounced, `unsubscribed` when none is active or
/// pending, else unchanged (a contact may have unsubscribed from its
/// chains while a list subscription stands). `email`: only that contact.
pub async fn refresh_status<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    email: Option<&str>,
) -> AppResult<()> {
    const STATUS: &str = "CASE
          WHEN EXISTS (SELECT 1 FROM subscribers s WHERE s.agency_id = contacts.agency_id
            AND s.contact_id = contacts.id AND s.status = 'bounced') THEN 'bounced'
          WHEN NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.agency_id = contacts.agency_id
            AND s.contact_id = contacts.id AND s.status IN ('active', 'pending')) THEN 'unsubscribed'
          ELSE status END";
    const CONFIRMED: &str = "COALESCE(confirmed_at, (SELECT MIN(s.confirmed_at) FROM subscribers s
          WHERE s.agency_id = contacts.agency_id AND s.contact_id = contacts.id))";
    // Only rows whose values change are written: an UPDATE that sets the
    // same values still writes a new version of every row.
    let mut sql = format!(
        "UPDATE contacts SET status = {STATUS}, confirmed_at = {CONFIRMED}
      WHERE agency_id = $1 AND client_id = $2
        AND EXISTS (SELECT 1 FROM subscribers s WHERE s.agency_id = contacts.agency_id
          AND s.contact_id = contacts.id)
        AND (status IS DISTINCT FROM {STATUS} OR confirmed_at IS DISTINCT FROM {CONFIRMED})"
    );
    let mut values: Vec<sea_orm::Value> = vec![agency_id.into(), client_id.into()];
    if let Some(e) = email {
        sql.push_str(" AND email = $3");
        values.push(e.into());
    }
    db.execute_raw(stmt(db, &sql, values)).await?;
    Ok(())
}

/// A new consent makes an unsubscribed contact active again.
pub async fn reactivate<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    email: &str,
) -> AppResult<()> {
    let sql = "UPDATE contacts SET status = 'active' WHERE agency_id = $1 AND client_id = $2 \
               AND email = $3 AND status = 'unsubscribed'";
    db.execute_raw(stmt(
        db,
        sql,
        vec![agency_id.into(), client_id.into(), email.into()],
    ))
    .await?;
    Ok(())
}

/// Blanks the address and bodies of the emails sent to an address of a
/// client (counts stay), cancels those not sent yet, deletes its opens
/// and clicks, and blanks the questionnaire answers that gave it (in the
/// responses linked to its contact and wherever else an `email` answer is
/// the address): part of erasure.
pub async fn erase_address<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    email: &str,
) -> AppResult<()> {
    use entity::email_delivery;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    email_delivery::Entity::update_many()
        .col_expr(
            email_delivery::Column::Recipient,
            Expr::value(crate::mail::tracking::ERASED),
        )
        .col_expr(
            email_delivery::Column::Body,
            Expr::value(serde_json::json!({"html": "", "text": ""})),
        )
        .col_expr(email_delivery::Column::Subject, Expr::value(""))
        .col_expr(
            email_delivery::Column::Status,
            Expr::cust(
                "CASE WHEN status IN ('queued','deferred') THEN 'cancelled' ELSE status END",
            ),
        )
        .filter(email_delivery::Column::AgencyId.eq(agency_id))
        .filter(email_delivery::Column::ClientId.eq(client_id))
        .filter(email_delivery::Column::Recipient.eq(email))
        .exec(db)
        .await?;
    crate::mail::tracking::erase_events(db, agency_id, client_id, email).await?;
    let linked = super::responses::linked_to_address(db, agency_id, client_id, email).await?;
    crate::research::responses::emails::erase_email_answers(
        db, agency_id, client_id, email, &linked,
    )
    .await?;
    Ok(())
}

impl crate::Services {
    /// After subscriptions of a client changed: links them to contacts,
    /// brings contact statuses up to date (`email`: only that address;
    /// `consented`: a new consent, which reactivates an unsubscribed
    /// contact) and marks the contacts for rescoring.
    pub(crate) async fn sync_contacts(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
        email: Option<&str>,
        consented: bool,
    ) -> AppResult<()> {
        let txn = crate::infra::db::begin_write(&self.db).await?;
        link_subscribers(&txn, agency_id, client_id).await?;
        if consented && let Some(e) = email {
            reactivate(&txn, agency_id, client_id, e).await?;
        }
        refresh_status(&txn, agency_id, client_id, email).await?;
        let wake = crate::infra::ledger::bump_target(
            &txn,
            agency_id,
            crate::infra::ledger::KIND_CONTACTS,
            client_id,
        )
        .await?;
        txn.commit().await?;
        if wake {
            self.wake_contacts(agency_id, client_id).await;
        }
        Ok(())
    }
}

impl crate::Services {
    /// Public: the unsubscribe link of a chain email. The contact and all
    /// its subscriptions to the client's lists are unsubscribed, its queued
    /// emails cancelled, and its enrolments end. Idempotent; returns the
    /// address.
    pub async fn unsubscribe_contact(
        &self,
        token: &str,
        request_id: Option<&str>,
    ) -> AppResult<String> {
        use entity::{contact, email_delivery, subscriber};
        use sea_orm::sea_query::Expr;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let id = self
            .links
            .verify(
                crate::infra::email::links::Purpose::ContactUnsubscribe,
                token,
            )
            .ok_or(crate::infra::error::AppError::NotFound)?;
        let c = contact::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(crate::infra::error::AppError::NotFound)?;
        let t = crate::now();
        let txn = crate::infra::db::begin_write(&self.db).await?;
        contact::Entity::update_many()
            .col_expr(contact::Column::Status, Expr::value("unsubscribed"))
            .col_expr(contact::Column::UpdatedAt, Expr::value(t))
            .filter(contact::Column::AgencyId.eq(c.agency_id))
            .filter(contact::Column::Id.eq(id))
            .filter(contact::Column::Status.eq("active"))
            .exec(&txn)
            .await?;
        subscriber::Entity::update_many()
            .col_expr(subscriber::Column::Status, Expr::value("unsubscribed"))
            .col_expr(subscriber::Column::UnsubscribedAt, Expr::value(t))
            .col_expr(subscriber::Column::UpdatedAt, Expr::value(t))
            .filter(subscriber::Column::AgencyId.eq(c.agency_id))
            .filter(subscriber::Column::ClientId.eq(c.client_id))
            .filter(subscriber::Column::Email.eq(c.email.clone()))
            .filter(subscriber::Column::Status.is_in(["active", "pending"]))
            .exec(&txn)
            .await?;
        email_delivery::Entity::update_many()
            .col_expr(email_delivery::Column::Status, Expr::value("cancelled"))
            .filter(email_delivery::Column::AgencyId.eq(c.agency_id))
            .filter(email_delivery::Column::ClientId.eq(c.client_id))
            .filter(email_delivery::Column::Recipient.eq(c.email.clone()))
            .filter(email_delivery::Column::Kind.is_in(["newsletter", "chain"]))
            .filter(email_delivery::Column::Status.is_in(["queued", "deferred"]))
            .exec(&txn)
            .await?;
        let wake = crate::infra::ledger::bump_target(
            &txn,
            c.agency_id,
            crate::infra::ledger::KIND_CONTACTS,
            c.client_id,
        )
        .await?;
        let a = crate::infra::audit::Audit::new("contact", "unsubscribe", Some(id));
        let public = crate::infra::audit::Actor::Public;
        crate::infra::audit::record_as(&txn, c.agency_id, public, request_id, a).await?;
        txn.commit().await?;
        if wake {
            self.wake_contacts(c.agency_id, c.client_id).await;
        }
        Ok(c.email)
    }
}

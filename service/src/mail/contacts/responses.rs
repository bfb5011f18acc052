//! Contacts from questionnaire responses (analytics.md §7): a response
//! whose questionnaire version has an `email` question and that answered
//! it becomes a link to the contact of that address (created when
//! missing), and the rules' `answer` conditions read the answers of a
//! contact's linked responses.
//!
//! The links live in `response_contacts` (id = the response's id): one row
//! per examined response, its `contact_id` null when the response carried
//! no address, so each response is read once; the highest data version
//! examined per questionnaire is where the next pass starts. Linking is a
//! handful of set statements over the new responses, whatever their number.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use super::{MAX_CHANNEL, find_contact};
use crate::domain::answers::valid_email;
use crate::infra::db::stmt;
use crate::infra::error::AppResult;
use crate::infra::page::{Page, PageParams};
use crate::research::responses::emails::{AddressQuestions, address_questions};
use crate::{Perm, RequestCtx, Services, now};

/// The client's responses not examined yet, as `cand(id, questionnaire_id,
/// data_version, submitted_at, raw, channel)`: `raw` the first e-mail answer
/// (in question order) that looks like an address, as stored; `channel`
/// the first source-channel answer (a multi-choice answer's first option).
/// `$1` is the agency, `$2` the client, `$3` now.
struct Candidates {
    sql: String,
    values: Vec<Value>,
}

/// Per questionnaire of the client: its data version now, and the highest
/// one examined (0: none).
#[derive(Debug, FromQueryResult)]
struct Range {
    id: Uuid,
    stored: i64,
    examined: i64,
}

impl Candidates {
    /// `None` when no questionnaire has responses newer than those examined.
    async fn read<C: ConnectionTrait>(
        db: &C,
        agency_id: Uuid,
        client_id: Uuid,
    ) -> AppResult<Option<Self>> {
        let groups = address_questions(db, agency_id, client_id).await?;
        if groups.is_empty() {
            return Ok(None);
        }
        // Versions are gapless and in commit order per questionnaire, so
        // every response up to the version read here is visible, and every
        // one up to the highest version examined has been examined. Fixing
        // the range keeps one pass's statements on the same rows.
        let ranges: HashMap<Uuid, (i64, i64)> = Range::find_by_statement(stmt(
            db,
            "SELECT qq.id, qq.data_version AS stored,
               COALESCE((SELECT MAX(l.data_version) FROM response_contacts l
                 WHERE l.agency_id = qq.agency_id AND l.questionnaire_id = qq.id), 0) AS examined
             FROM questionnaires qq WHERE qq.agency_id = $1 AND qq.client_id = $2",
            vec![agency_id.into(), client_id.into()],
        ))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.id, (r.examined, r.stored)))
        .collect();
        let mut values: Vec<Value> = vec![agency_id.into(), client_id.into(), now().into()];
        let mut branches = Vec::new();
        for g in &groups {
            let Some(&(from, to)) = ranges.get(&g.questionnaire_id).filter(|(f, t)| f < t) else {
                continue;
            };
            branches.push(branch(g, from, to, &mut values));
        }
        if branches.is_empty() {
            return Ok(None);
        }
        Ok(Some(Candidates {
            sql: format!("WITH cand AS ({})\n", branches.join("\nUNION ALL\n")),
            values,
        }))
    }

    /// Runs `tail`, a statement over `cand`; the rows it wrote.
    async fn execute<C: ConnectionTrait>(&self, db: &C, tail: &str) -> AppResult<u64> {
        let sql = format!("{}{tail}", self.sql);
        Ok(db
            .execute_raw(stmt(db, &sql, self.values.clone()))
            .await?
            .rows_affected())
    }
}

/// The part of `cand` from one questionnaire version's responses of data
/// versions `(from, to]` (none of them examined: `from` is the highest
/// examined), its values appended to `values`.
fn branch(g: &AddressQuestions, from: i64, to: i64, values: &mut Vec<Value>) -> String {
    let mut param = |v: Value| {
        values.push(v);
        format!("${}", values.len())
    };
    // SQLite's coalesce() wants two arguments or more.
    fn first_of(parts: Vec<String>) -> String {
        match parts.len() {
            0 => "CAST(NULL AS TEXT)".to_owned(),
            1 => parts.into_iter().next().unwrap_or_default(),
            _ => format!("COALESCE({})", parts.join(", ")),
        }
    }
    let (q, v, from, to) = (
        param(g.questionnaire_id.into()),
        param(g.version.into()),
        param(from.into()),
        param(to.into()),
    );
    let emails = g
        .email_keys
        .iter()
        .map(|k| {
            let k = param(k.clone().into());
            format!("CASE WHEN r.answers ->> {k} LIKE '%_@_%' THEN r.answers ->> {k} END")
        })
        .collect();
    let channels = g
        .channel_keys
        .iter()
        .map(|(k, multi)| {
            let k = param(k.clone().into());
            if *multi {
                format!("r.answers -> {k} ->> 0")
            } else {
                format!("r.answers ->> {k}")
            }
        })
        .collect();
    format!(
        "SELECT r.id, r.questionnaire_id, r.data_version, r.submitted_at, {} AS raw, \
         {} AS channel FROM responses r \
         WHERE r.agency_id = $1 AND r.questionnaire_id = {q} \
         AND r.data_version > {from} AND r.data_version <= {to} \
         AND r.questionnaire_version = {v}",
        first_of(emails),
        first_of(channels)
    )
}

/// Addresses SQL lower-cases as Rust does: ASCII ones (SQLite's lower()
/// folds ASCII only; PostgreSQL's depends on the collation).
const ASCII: &str = "LENGTH(cand.raw) = OCTET_LENGTH(cand.raw)";

/// Links the client's responses that carried an e-mail and were not
/// linked yet to the contact of that address (lower-cased), creating the
/// contacts that are missing: status `active`, funnel `reach`, source
/// channel the response's `source_channel` answer when there is one (and
/// it fits a contact's), created at the submission of the earliest
/// response of the address. Existing contacts are never changed. A
/// response is examined once; one without a usable address is recorded as
/// such. Idempotent; returns how many responses were linked to a contact.
/// It does not mark the contacts target: the contacts job calls it, in its
/// transaction (which it should: see the join below).
pub async fn link_responses<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
) -> AppResult<u64> {
    let Some(cand) = Candidates::read(db, agency_id, client_id).await? else {
        return Ok(0);
    };
    cand.execute(
        db,
        &format!(
            "INSERT INTO contacts (id, agency_id, client_id, email, name, locale, status,
               source_channel, funnel, attributes, customer_ref, confirmed_at, converted,
               converted_at, conversion_value, outcome_source, created_at, updated_at)
             SELECT f.id, $1, $2, f.email, NULL, NULL, 'active',
               CASE WHEN OCTET_LENGTH(f.channel) <= {MAX_CHANNEL} THEN f.channel END, 'reach',
               '{{}}', NULL, NULL, NULL, NULL, NULL, NULL,
               f.submitted_at, $3
             FROM (SELECT cand.id, cand.submitted_at, LOWER(cand.raw) AS email, cand.channel,
                 ROW_NUMBER() OVER (PARTITION BY LOWER(cand.raw)
                   ORDER BY cand.submitted_at, cand.id) AS n
               FROM cand WHERE cand.raw IS NOT NULL AND {ASCII}) f
             WHERE f.n = 1
             ON CONFLICT DO NOTHING"
        ),
    )
    .await?;
    // Right after a bulk import (the usual reason to be here) PostgreSQL's
    // statistics do not know the new contacts and responses: it estimates a
    // row or two on each side and may look every address up by a scan of
    // the client's contacts (at those estimates the index on agency, client
    // and customer_ref looks as good as the e-mail one). Measured on 100,000
    // fresh responses: still running after 15 minutes that way; the whole
    // pass takes 4 s with a hash join, which is linear whatever the sizes.
    // `SET LOCAL` holds in the caller's transaction (the contacts job's)
    // and is undone at once; a failed statement aborts that transaction.
    let pg = db.get_database_backend() == DbBackend::Postgres;
    if pg {
        db.execute_unprepared("SET LOCAL enable_nestloop = off")
            .await?;
    }
    let linked = cand
        .execute(
            db,
            &format!(
                "INSERT INTO response_contacts (id, agency_id, client_id, questionnaire_id,
                   data_version, contact_id, created_at)
                 SELECT cand.id, $1, $2, cand.questionnaire_id, cand.data_version, c.id, $3
                 FROM cand JOIN contacts c ON c.agency_id = $1 AND c.client_id = $2
                   AND c.email = LOWER(cand.raw)
                 WHERE cand.raw IS NOT NULL AND {ASCII}
                 ON CONFLICT DO NOTHING"
            ),
        )
        .await?;
    if pg {
        db.execute_unprepared("SET LOCAL enable_nestloop = on")
            .await?;
    }
    cand.execute(
        db,
        "INSERT INTO response_contacts (id, agency_id, client_id, questionnaire_id, data_version,
           contact_id, created_at)
         SELECT cand.id, $1, $2, cand.questionnaire_id, cand.data_version, NULL, $3
         FROM cand WHERE cand.raw IS NULL
         ON CONFLICT DO NOTHING",
    )
    .await?;
    Ok(linked + link_non_ascii(db, &cand, agency_id, client_id).await?)
}

#[derive(Debug, FromQueryResult)]
struct Candidate {
    id: Uuid,
    questionnaire_id: Uuid,
    data_version: i64,
    submitted_at: DateTime<Utc>,
    raw: String,
    channel: Option<String>,
}

/// The rare addresses with non-ASCII letters, lower-cased by Rust as
/// every other write of an address is, one response at a time (earliest
/// first, so the earliest response of an address makes its contact).
async fn link_non_ascii<C: ConnectionTrait>(
    db: &C,
    cand: &Candidates,
    agency_id: Uuid,
    client_id: Uuid,
) -> AppResult<u64> {
    let sql = format!(
        "{}SELECT cand.id, cand.questionnaire_id, cand.data_version, cand.submitted_at,
           cand.raw, cand.channel
         FROM cand WHERE cand.raw IS NOT NULL AND NOT ({ASCII})
         ORDER BY cand.submitted_at, cand.id",
        cand.sql
    );
    let rows = Candidate::find_by_statement(stmt(db, &sql, cand.values.clone()))
        .all(db)
        .await?;
    let mut linked = 0;
    for r in rows {
        let email = Some(r.raw.trim().to_lowercase()).filter(|e| valid_email(e));
        if let Some(email) = &email {
            let channel = r.channel.filter(|c| c.len() <= MAX_CHANNEL);
            db.execute_raw(stmt(
                db,
                "INSERT INTO contacts (id, agency_id, client_id, email, status, source_channel,
                   funnel, attributes, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 'active', $5, 'reach', '{}', $6, $7)
                 ON CONFLICT DO NOTHING",
                vec![
                    r.id.into(),
                    agency_id.into(),
                    client_id.into(),
                    email.clone().into(),
                    channel.into(),
                    r.submitted_at.into(),
                    now().into(),
                ],
            ))
            .await?;
        }
        let n = db
            .execute_raw(stmt(
                db,
                "INSERT INTO response_contacts (id, agency_id, client_id, questionnaire_id,
                   data_version, contact_id, created_at)
                 SELECT $1, $2, $3, $4, $5, (SELECT c.id FROM contacts c WHERE c.agency_id = $2
                   AND c.client_id = $3 AND c.email = $6), $7
                 WHERE TRUE ON CONFLICT DO NOTHING",
                vec![
                    r.id.into(),
                    agency_id.into(),
                    client_id.into(),
                    r.questionnaire_id.into(),
                    r.data_version.into(),
                    email.clone().into(),
                    now().into(),
                ],
            ))
            .await?
            .rows_affected();
        if email.is_some() {
            linked += n;
        }
    }
    Ok(linked)
}

/// The text a rule's `answer` condition compares with one stored answer:
/// text as stored; a choice as its option, exactly as listed in the
/// question (a multi-choice answer gives one text per chosen option, none
/// for "none of these"); a number in its shortest form (`4`, not `4.0`;
/// `5.5`).
pub fn answer_texts(answer: &serde_json::Value) -> Vec<String> {
    use serde_json::Value as J;
    match answer {
        J::Null => Vec::new(),
        J::String(s) => vec![s.clone()],
        J::Array(items) => items.iter().flat_map(answer_texts).collect(),
        J::Number(n) => match n.as_f64() {
            Some(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => vec![format!("{}", x as i64)],
            Some(x) => vec![x.to_string()],
            None => vec![n.to_string()],
        },
        J::Bool(b) => vec![b.to_string()],
        J::Object(_) => vec![answer.to_string()],
    }
}

/// For the question keys `question_keys` only: the (question key, answer
/// text) pairs of every response linked to a contact of the client, per
/// contact — what `ContactFacts.answers` holds. Texts as
/// [`answer_texts`] gives them; a pair repeated by several responses is
/// listed once; a contact without any is left out. One query (90,000
/// linked responses: under a second on PostgreSQL).
pub async fn answers_by_contact<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    question_keys: &[String],
    only: Option<&[Uuid]>,
) -> AppResult<HashMap<Uuid, Vec<(String, String)>>> {
    let mut keys: Vec<&String> = question_keys.iter().collect();
    keys.sort();
    keys.dedup();
    let mut out: HashMap<Uuid, Vec<(String, String)>> = HashMap::new();
    if keys.is_empty() {
        return Ok(out);
    }
    let mut values: Vec<Value> = vec![agency_id.into(), client_id.into()];
    let mut columns = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        values.push((*k).clone().into());
        columns.push(format!("CAST(r.answers -> ${} AS TEXT) AS a{i}", i + 3));
    }
    // `only`: these contacts (a page being explained).
    let mut filter = String::new();
    if let Some(ids) = only {
        if ids.is_empty() {
            return Ok(out);
        }
        let at = values.len();
        let marks: Vec<String> = (0..ids.len()).map(|i| format!("${}", at + i + 1)).collect();
        values.extend(ids.iter().map(|id| Value::from(*id)));
        filter = format!(" AND l.contact_id IN ({})", marks.join(", "));
    }
    let sql = format!(
        "SELECT l.contact_id, {} FROM response_contacts l
           JOIN responses r ON r.agency_id = l.agency_id AND r.id = l.id
         WHERE l.agency_id = $1 AND l.client_id = $2 AND l.contact_id IS NOT NULL{filter}
         ORDER BY l.contact_id, l.id",
        columns.join(", ")
    );
    for row in db.query_all_raw(stmt(db, &sql, values)).await? {
        let contact: Uuid = row.try_get_by_index(0)?;
        let pairs = out.entry(contact).or_default();
        for (i, k) in keys.iter().enumerate() {
            let Some(text) = row.try_get_by_index::<Option<String>>(i + 1)? else {
                continue;
            };
            let Ok(answer) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            for t in answer_texts(&answer) {
                let pair = ((*k).clone(), t);
                if !pairs.contains(&pair) {
                    pairs.push(pair);
                }
            }
        }
    }
    out.retain(|_, pairs| !pairs.is_empty());
    Ok(out)
}

/// The responses linked to a contact being erased stop pointing at it
/// (they stay examined: their e-mail answers are blanked by erasure).
pub async fn unlink_contact<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    contact_id: Uuid,
) -> AppResult<()> {
    db.execute_raw(stmt(
        db,
        "UPDATE response_contacts SET contact_id = NULL WHERE agency_id = $1 AND contact_id = $2",
        vec![agency_id.into(), contact_id.into()],
    ))
    .await?;
    Ok(())
}

/// The ids of the responses linked to the client's contact of `email`.
pub async fn linked_to_address<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    email: &str,
) -> AppResult<Vec<Uuid>> {
    let rows = db
        .query_all_raw(stmt(
            db,
            "SELECT l.id FROM response_contacts l
               JOIN contacts c ON c.agency_id = l.agency_id AND c.id = l.contact_id
             WHERE c.agency_id = $1 AND c.client_id = $2 AND c.email = $3",
            vec![agency_id.into(), client_id.into(), email.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| r.try_get_by_index::<Uuid>(0).map_err(Into::into))
        .collect()
}

/// A questionnaire response linked to a contact.
#[derive(
    Debug, Clone, Serialize, FromQueryResult, utoipa::ToSchema, async_graphql::SimpleObject,
)]
pub struct ContactResponseView {
    /// The response's id.
    pub id: Uuid,
    pub questionnaire_id: Uuid,
    pub submitted_at: DateTime<Utc>,
}
crate::has_id!(ContactResponseView);

impl Services {
    /// The questionnaire responses that carried a contact's e-mail, by id.
    pub async fn contact_responses(
        &self,
        ctx: &RequestCtx,
        contact_id: Uuid,
        page: PageParams,
    ) -> AppResult<Page<ContactResponseView>> {
        find_contact(&self.db, ctx.agency_id, contact_id).await?;
        ctx.require(Perm::Read)?;
        let page = page.parse()?;
        let mut values: Vec<Value> = vec![ctx.agency_id.into(), contact_id.into()];
        let mut sql = String::from(
            "SELECT r.id, r.questionnaire_id, r.submitted_at FROM response_contacts l
               JOIN responses r ON r.agency_id = l.agency_id AND r.id = l.id
             WHERE l.agency_id = $1 AND l.contact_id = $2",
        );
        if let Some(after) = page.after {
            values.push(after.into());
            sql.push_str(" AND l.id > $3");
        }
        values.push(i64::try_from(page.limit + 1).unwrap_or(i64::MAX).into());
        sql.push_str(&format!(" ORDER BY l.id LIMIT ${}", values.len()));
        let rows = ContactResponseView::find_by_statement(stmt(&self.db, &sql, values))
            .all(&self.db)
            .await?;
        Ok(Page::from_rows(page.limit, rows, |v| v.id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answer_texts_are_what_a_rule_value_is_written_as() {
        let cases = [
            (json!("msk"), vec!["msk"]),
            (json!(["price", "care"]), vec!["price", "care"]),
            (json!([]), vec![]),
            (json!(4), vec!["4"]),
            (json!(1500.0), vec!["1500"]),
            (json!(-0.0), vec!["0"]),
            (json!(5.5), vec!["5.5"]),
            (json!(null), vec![]),
        ];
        for (answer, texts) in cases {
            assert_eq!(answer_texts(&answer), texts, "{answer}");
        }
    }
}

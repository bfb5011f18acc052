//! Responses that carry e-mail addresses: which questions of a client's
//! questionnaires hold them (per questionnaire version, since a response is
//! stored under the questions of its version), and erasing an address from
//! stored answers. The mail area makes contacts of these answers
//! (`mail::contacts::responses`); nothing here knows of contacts.
use entity::{question, questionnaire, response};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::questions::{QuestionRole, QuestionType};
use crate::infra::db::stmt;
use crate::infra::error::AppResult;

/// The questions of one questionnaire version that say who answered and
/// where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressQuestions {
    pub questionnaire_id: Uuid,
    pub version: i32,
    /// Keys of its `email` questions, in question order.
    pub email_keys: Vec<String>,
    /// Keys of its `source_channel` questions, in question order, each
    /// with whether it is multi-choice (its answer a list of options).
    pub channel_keys: Vec<(String, bool)>,
}

/// Every version of the client's questionnaires that has an `email`
/// question, with its e-mail and source-channel question keys; ordered by
/// questionnaire and version. One query.
pub async fn address_questions<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
) -> AppResult<Vec<AddressQuestions>> {
    let of_client = Query::select()
        .column(questionnaire::Column::Id)
        .from(questionnaire::Entity)
        .and_where(questionnaire::Column::AgencyId.eq(agency_id))
        .and_where(questionnaire::Column::ClientId.eq(client_id))
        .to_owned();
    let rows: Vec<(Uuid, i32, String, String, Option<String>)> = question::Entity::find()
        .select_only()
        .columns([
            question::Column::QuestionnaireId,
            question::Column::Version,
            question::Column::Key,
            question::Column::Qtype,
            question::Column::Role,
        ])
        .filter(question::Column::AgencyId.eq(agency_id))
        .filter(question::Column::QuestionnaireId.in_subquery(of_client))
        .filter(
            question::Column::Qtype
                .eq(QuestionType::Email.as_str())
                .or(question::Column::Role.eq(QuestionRole::SourceChannel.as_str())),
        )
        .order_by_asc(question::Column::QuestionnaireId)
        .order_by_asc(question::Column::Version)
        .order_by_asc(question::Column::Position)
        .into_tuple()
        .all(db)
        .await?;
    let mut out: Vec<AddressQuestions> = Vec::new();
    for (questionnaire_id, version, key, qtype, role) in rows {
        let same = out
            .last()
            .is_some_and(|g| g.questionnaire_id == questionnaire_id && g.version == version);
        if !same {
            out.push(AddressQuestions {
                questionnaire_id,
                version,
                email_keys: Vec::new(),
                channel_keys: Vec::new(),
            });
        }
        let Some(g) = out.last_mut() else { continue };
        if qtype == QuestionType::Email.as_str() {
            g.email_keys.push(key);
        } else if role.as_deref() == Some(QuestionRole::SourceChannel.as_str()) {
            let multi = qtype == QuestionType::MultiChoice.as_str();
            g.channel_keys.push((key, multi));
        }
    }
    out.retain(|g| !g.email_keys.is_empty());
    Ok(out)
}

/// `answers` without the `email` answers (of `keys`) that are `email`,
/// ignoring case and surrounding space; `None` when none is.
fn without_address(answers: &Value, keys: &[String], email: &str) -> Option<Value> {
    let Value::Object(map) = answers else {
        return None;
    };
    let mut kept = map.clone();
    kept.retain(|k, v| {
        !(keys.contains(k) && v.as_str().is_some_and(|s| s.trim().to_lowercase() == email))
    });
    (kept.len() != map.len()).then_some(Value::Object(kept))
}

/// Removes the address `email` (lower-cased) from the client's stored
/// responses: every `email` question answered with it, ignoring case,
/// loses its answer (stored as no answer at all, as a blank answer is at
/// ingest). Looks in the responses `ids` and in every response of the
/// client whose e-mail answer is the address; returns how many changed.
///
/// The data version stays: panels and summaries do not count `email`
/// answers, and a bumped version would make the panels fold the row twice.
pub async fn erase_email_answers<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    email: &str,
    ids: &[Uuid],
) -> AppResult<u64> {
    let groups = address_questions(db, agency_id, client_id).await?;
    let mut found: Vec<response::Model> = Vec::new();
    for chunk in ids.chunks(500) {
        found.extend(
            response::Entity::find()
                .filter(response::Column::AgencyId.eq(agency_id))
                .filter(response::Column::Id.is_in(chunk.iter().copied()))
                .all(db)
                .await?,
        );
    }
    for g in &groups {
        // SQL's lower() may leave non-ASCII letters as they are: answers
        // with such letters are compared below, in Rust, like every other.
        let mut values: Vec<sea_orm::Value> = vec![
            agency_id.into(),
            g.questionnaire_id.into(),
            g.version.into(),
            email.into(),
        ];
        let mut carries = Vec::with_capacity(g.email_keys.len());
        for key in &g.email_keys {
            values.push(key.clone().into());
            let a = format!("r.answers ->> ${}", values.len());
            carries.push(format!(
                "LOWER({a}) = $4 OR LENGTH({a}) <> OCTET_LENGTH({a})"
            ));
        }
        let sql = format!(
            "SELECT r.* FROM responses r WHERE r.agency_id = $1 AND r.questionnaire_id = $2 \
             AND r.questionnaire_version = $3 AND ({})",
            carries.join(" OR ")
        );
        found.extend(
            response::Entity::find()
                .from_raw_sql(stmt(db, &sql, values))
                .all(db)
                .await?,
        );
    }
    found.sort_by_key(|r| r.id);
    found.dedup_by_key(|r| r.id);
    let mut changed = 0;
    for r in found {
        let Some(g) = groups.iter().find(|g| {
            g.questionnaire_id == r.questionnaire_id && g.version == r.questionnaire_version
        }) else {
            continue;
        };
        let Some(answers) = without_address(&r.answers, &g.email_keys, email) else {
            continue;
        };
        response::Entity::update_many()
            .col_expr(response::Column::Answers, Expr::value(answers))
            .filter(response::Column::AgencyId.eq(agency_id))
            .filter(response::Column::Id.eq(r.id))
            .exec(db)
            .await?;
        changed += 1;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_erased_address_leaves_the_answers() {
        let keys = vec!["mail".to_owned(), "friend".to_owned()];
        let a = json!({"mail": " Ann@Example.com", "friend": "bob@example.com", "city": "ann@example.com"});
        assert_eq!(
            without_address(&a, &keys, "ann@example.com"),
            Some(json!({"friend": "bob@example.com", "city": "ann@example.com"}))
        );
        assert_eq!(without_address(&a, &keys, "eve@example.com"), None);
    }
}

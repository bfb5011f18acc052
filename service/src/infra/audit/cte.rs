//! Audited writes whose audit row rides on the write's own statement: a
//! one-row update ([`update_one`]) and an ingest's rows
//! ([`insert_counted`]).
//!
//! A plain update through the pool is one statement; recording it in the
//! audit log the obvious way — `BEGIN`, `UPDATE`, `INSERT`, `COMMIT` —
//! makes it four round trips, and the row's lock is held across all of
//! them, which every concurrent writer of that row waits out (a one-row
//! `PATCH` lost 30 % of its throughput that way, see
//! `docs/performance.md`). On PostgreSQL [`update_one`] sends both writes
//! as one statement instead, a data-modifying CTE whose audit row is
//! inserted from the updated row:
//!
//! ```sql
//! WITH "updated" AS (UPDATE "clients" SET … WHERE "id" = $1 RETURNING …),
//!      "audited" AS (INSERT INTO "audit_log" (…) SELECT $9, … FROM "updated")
//! SELECT * FROM "updated"
//! ```
//!
//! One statement, so atomic, and an audit row exactly when a row was
//! updated (none when it went away since it was read: the statement then
//! returns nothing, as a plain update would). The row's lock is held for
//! the insert too: on a row every writer waits for, that adds 40–70 µs to
//! each hand-over of the lock (`docs/performance.md`, session 18). An
//! earlier form inserted the audit row first and raised when the update
//! then matched nothing, which pgbench ran 7–13 % slower and no faster
//! under contention for one row (`tests/pgbench/audit`).
//! SQLite has no data-modifying CTE (and one writer at a time anyway):
//! there it is one transaction, the audit row first.
use std::fmt::Write;

use sea_orm::sea_query::{Expr, InsertStatement, Query, Values};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait,
    DatabaseConnection, DbBackend, DbErr, EntityName, EntityTrait, IdenStatic, IntoActiveModel,
    Iterable, QueryTrait, Statement, TryIntoModel, Update,
};
use serde::Serialize;
use uuid::Uuid;

use super::{Actor, Audit, enabled, row};
use crate::infra::ctx::RequestCtx;
use entity::audit_log;

type ModelOf<A> = <<A as ActiveModelTrait>::Entity as EntityTrait>::Model;

const UPDATED: &str = "updated";
const AUDITED: &str = "audited";
const INSERTED: &str = "inserted";

/// Saves `a` — an update of one row, every column set or unchanged (as
/// when it was made from the stored model) — and records it as
/// `resource_type.update` of `id`, from `before` to what `view` makes of
/// the saved row, atomically. Returns the saved row, as
/// [`ActiveModelTrait::update`] would (and its errors, so that callers can
/// still tell a unique violation).
pub async fn update_one<A, V>(
    db: &DatabaseConnection,
    ctx: &RequestCtx,
    resource_type: &'static str,
    id: Uuid,
    before: &V,
    a: A,
    view: impl FnOnce(ModelOf<A>) -> V,
) -> Result<ModelOf<A>, DbErr>
where
    A: ActiveModelTrait + ActiveModelBehavior + TryIntoModel<ModelOf<A>> + Clone + Send,
    ModelOf<A>: IntoActiveModel<A>,
    V: Serialize,
{
    if !enabled() {
        return a.update(db).await;
    }
    let a = A::before_save(a, db, false).await?;
    let after = view(a.clone().try_into_model()?);
    let entry = Audit::update(resource_type, id, before, &after);
    let audit = row(
        ctx.agency_id,
        Actor::of(ctx),
        ctx.request_id.as_deref(),
        entry,
    );
    let backend = db.get_database_backend();
    if backend != DbBackend::Postgres || !a.is_changed() {
        let txn = crate::infra::db::begin_write(db).await?;
        audit_log::Entity::insert(audit)
            .exec_without_returning(&txn)
            .await?;
        // `before_save` ran above; `update` would run it again.
        let m = Update::one(a).exec(&txn).await?;
        let m = A::after_save(m, &txn, false).await?;
        txn.commit().await?;
        return Ok(m);
    }
    let saved = <A::Entity as EntityTrait>::find()
        .from_raw_sql(statement(a, audit)?)
        .one(db)
        .await?
        .ok_or(DbErr::RecordNotUpdated)?;
    A::after_save(saved, db, false).await
}

/// The CTE of the module's doc: the update, the audit row inserted from
/// what it updated, the updated row selected. The update is sea-orm's own
/// statement; the rest is fixed text with placeholders after the
/// update's (building it with sea-query cost 10 µs a write, this costs 1).
fn statement<A: ActiveModelTrait>(a: A, audit: audit_log::ActiveModel) -> Result<Statement, DbErr> {
    let mut update = Update::one(a).validate()?.into_query();
    update.returning(
        Query::returning().exprs(
            <A::Entity as EntityTrait>::Column::iter()
                .map(|c| c.select_as(c.into_returning_expr(DbBackend::Postgres))),
        ),
    );
    let mut stmt = DbBackend::Postgres.build(&update);
    let mut values = stmt.values.take().map(|v| v.0).unwrap_or_default();
    let insert = audit_insert(audit, &mut values, None);
    stmt.sql = format!(
        r#"WITH "{UPDATED}" AS ({}), "{AUDITED}" AS ({insert} FROM "{UPDATED}") SELECT * FROM "{UPDATED}""#,
        stmt.sql
    );
    stmt.values = Some(Values(values));
    Ok(stmt)
}

/// `INSERT INTO "audit_log" (…) SELECT $n, …` for `audit`, its values
/// appended to `values` (placeholders numbered after those already
/// there); `changes`, when given, is the SQL expression that replaces the
/// row's own `changes`. The caller adds the `FROM`.
fn audit_insert(
    audit: audit_log::ActiveModel,
    values: &mut Vec<sea_orm::Value>,
    changes: Option<&str>,
) -> String {
    let (mut columns, mut params) = (String::new(), String::new());
    for c in audit_log::Column::iter() {
        if let ActiveValue::Set(v) | ActiveValue::Unchanged(v) = audit.get(c) {
            let sep = if columns.is_empty() { "" } else { ", " };
            // Column names are the entity's own snake_case identifiers.
            let _ = write!(columns, "{sep}\"{}\"", c.as_str());
            match changes {
                Some(expr) if matches!(c, audit_log::Column::Changes) => {
                    let _ = write!(params, "{sep}{expr}");
                }
                _ => {
                    values.push(v);
                    let _ = write!(params, "{sep}${}", values.len());
                }
            }
        }
    }
    format!(
        r#"INSERT INTO "{}" ({columns}) SELECT {params}"#,
        audit_log::Entity.table_name()
    )
}

/// Runs `insert` — an `INSERT … ON CONFLICT DO NOTHING` of `received`
/// rows stamped with `data_version` — and records `a` with its counts
/// (`received`, `inserted`, `duplicates`, `data_version`, as
/// `ingest_counts` writes them), in one statement on PostgreSQL; no audit
/// row when nothing was inserted. Returns the rows inserted.
///
/// For the ingest's transaction, which holds the questionnaire's version
/// lock from its first statement: a separate audit `INSERT` would add a
/// round trip to the time every concurrent ingest of that questionnaire
/// waits. PostgreSQL only (the caller's other backends insert, then
/// [`super::commit`]).
pub async fn insert_counted<C: ConnectionTrait>(
    db: &C,
    ctx: &RequestCtx,
    a: Audit,
    mut insert: InsertStatement,
    received: u64,
    data_version: i64,
) -> Result<u64, DbErr> {
    insert.returning(Query::returning().expr(Expr::cust("1")));
    let mut stmt = DbBackend::Postgres.build(&insert);
    let mut values = stmt.values.take().map(|v| v.0).unwrap_or_default();
    let sql = if enabled() {
        let audit = row(ctx.agency_id, Actor::of(ctx), ctx.request_id.as_deref(), a);
        values.push((received as i64).into());
        values.push(data_version.into());
        let (r, v) = (values.len() - 1, values.len());
        let counts = format!(
            "jsonb_build_object('received', ${r}::bigint, 'inserted', \"c\", \
             'duplicates', ${r}::bigint - \"c\", 'data_version', ${v}::bigint)"
        );
        let audited = audit_insert(audit, &mut values, Some(&counts));
        format!(
            r#"WITH "{INSERTED}" AS ({}), "n" AS (SELECT count(*) AS "c" FROM "{INSERTED}"), "{AUDITED}" AS ({audited} FROM "n" WHERE "c" > 0) SELECT "c" FROM "n""#,
            stmt.sql
        )
    } else {
        format!(
            r#"WITH "{INSERTED}" AS ({}) SELECT count(*) AS "c" FROM "{INSERTED}""#,
            stmt.sql
        )
    };
    stmt.sql = sql;
    stmt.values = Some(Values(values));
    let n = db
        .query_one_raw(stmt)
        .await?
        .map(|r| r.try_get::<i64>("", "c"))
        .transpose()?
        .unwrap_or(0);
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sea_orm::Set;

    #[test]
    fn the_update_and_its_audit_row_are_one_statement() {
        let id = Uuid::nil();
        let a = entity::segment::ActiveModel {
            id: sea_orm::Unchanged(id),
            name: Set("Buyers".into()),
            ..Default::default()
        };
        let audit = row(
            id,
            Actor::User(id),
            Some("req-1"),
            Audit::new("segment", "update", Some(id)),
        );
        let sql = statement(a, audit).unwrap().to_string();
        assert!(
            sql.starts_with(r#"WITH "updated" AS (UPDATE "segments" SET "name" = 'Buyers'"#),
            "{sql}"
        );
        assert!(
            sql.contains(r#"), "audited" AS (INSERT INTO "audit_log" ("id", "agency_id""#),
            "{sql}"
        );
        assert!(
            sql.ends_with(r#"FROM "updated") SELECT * FROM "updated""#),
            "{sql}"
        );
    }
}

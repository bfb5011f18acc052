//! A small table-driven schema description shared by the migrations: every
//! table gets a UUID primary key `id`, and its indexes are named
//! `ix_<table>_<columns>`. A migration that used it stays valid as long as
//! this module keeps producing the same DDL for the same description.
use sea_orm_migration::prelude::*;

/// Column kinds.
#[derive(Clone, Copy)]
pub enum K {
    Uuid,
    Text,
    Int,
    BigInt,
    Double,
    Bool,
    Time,
    Json,
    Date,
}

/// One column: name, kind, nullable.
pub type C = (&'static str, K, bool);

/// Nullable.
pub const N: bool = true;
/// Required.
pub const R: bool = false;

fn column((name, kind, nullable): C) -> ColumnDef {
    let mut def = ColumnDef::new(Alias::new(name));
    match kind {
        K::Uuid => def.uuid(),
        K::Text => def.text(),
        K::Int => def.integer(),
        K::BigInt => def.big_integer(),
        K::Double => def.double(),
        K::Bool => def.boolean(),
        K::Time => def.timestamp_with_time_zone(),
        K::Json => def.json_binary(),
        K::Date => def.date(),
    };
    if nullable {
        def.null();
    } else {
        def.not_null();
    }
    def
}

pub struct T {
    pub name: &'static str,
    pub columns: &'static [C],
    /// (unique, columns)
    pub indexes: &'static [(bool, &'static [&'static str])],
}

pub async fn create_all(manager: &SchemaManager<'_>, tables: &[T]) -> Result<(), DbErr> {
    for t in tables {
        let mut create = Table::create();
        create.table(Alias::new(t.name)).if_not_exists().col(
            ColumnDef::new(Alias::new("id"))
                .uuid()
                .not_null()
                .primary_key(),
        );
        for c in t.columns {
            create.col(column(*c));
        }
        manager.create_table(create).await?;
        for (unique, cols) in t.indexes {
            let mut index = Index::create();
            index
                .name(format!("ix_{}_{}", t.name, cols.join("_")))
                .table(Alias::new(t.name))
                .if_not_exists();
            for c in *cols {
                index.col(Alias::new(*c));
            }
            if *unique {
                index.unique();
            }
            manager.create_index(index).await?;
        }
    }
    Ok(())
}

pub async fn drop_all(manager: &SchemaManager<'_>, tables: &[T]) -> Result<(), DbErr> {
    for t in tables.iter().rev() {
        manager
            .drop_table(Table::drop().table(Alias::new(t.name)).to_owned())
            .await?;
    }
    Ok(())
}

/// A column added to an existing table, with the SQL literal existing rows
/// get (needed for a required column).
pub type Added = (C, Option<&'static str>);

/// Adds columns one `ALTER TABLE` at a time (SQLite takes one per statement).
pub async fn add_columns(
    manager: &SchemaManager<'_>,
    table: &'static str,
    columns: &[Added],
) -> Result<(), DbErr> {
    for (c, default) in columns {
        let mut def = column(*c);
        if let Some(lit) = default {
            def.default(Expr::cust(*lit));
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new(table))
                    .add_column(def)
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

pub async fn drop_columns(
    manager: &SchemaManager<'_>,
    table: &'static str,
    columns: &[Added],
) -> Result<(), DbErr> {
    for ((name, _, _), _) in columns.iter().rev() {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new(table))
                    .drop_column(Alias::new(*name))
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

/// Runs `sql` (one or more statements) on PostgreSQL; nothing on SQLite,
/// for schema tuning the embedded mode does without.
pub async fn postgres_only(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    manager
        .get_connection()
        .execute_unprepared(sql)
        .await
        .map(drop)
}

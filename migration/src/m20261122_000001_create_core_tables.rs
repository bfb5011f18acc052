//! The foundation schema. Every tenant table carries `agency_id`, and every
//! index on a tenant table starts with it, so the schema can be distributed
//! by `agency_id` (e.g. Citus) without changes.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Column kinds used by this schema.
#[derive(Clone, Copy)]
enum K {
    Uuid,
    Text,
    Int,
    BigInt,
    Double,
    Bool,
    Time,
    Json,
}

/// One column: name, kind, nullable.
type C = (&'static str, K, bool);

const N: bool = true; // nullable
const R: bool = false; // required

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
    };
    if nullable {
        def.null();
    } else {
        def.not_null();
    }
    def
}

struct T {
    name: &'static str,
    columns: &'static [C],
    /// (unique, columns)
    indexes: &'static [(bool, &'static [&'static str])],
}

const TABLES: &[T] = &[
    T {
        name: "agencies",
        columns: &[("name", K::Text, R), ("created_at", K::Time, R)],
        indexes: &[],
    },
    T {
        name: "users",
        columns: &[
            ("email", K::Text, R),
            ("name", K::Text, R),
            ("password_hash", K::Text, R),
            ("created_at", K::Time, R),
        ],
        indexes: &[(true, &["email"])],
    },
    T {
        name: "memberships",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("user_id", K::Uuid, R),
            ("role", K::Text, R),
            ("created_at", K::Time, R),
        ],
        indexes: &[(true, &["agency_id", "user_id"]), (false, &["user_id"])],
    },
    T {
        name: "invitations",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("email", K::Text, R),
            ("role", K::Text, R),
            ("token_hash", K::Text, R),
            ("invited_by", K::Uuid, R),
            ("expires_at", K::Time, R),
            ("accepted_at", K::Time, N),
            ("created_at", K::Time, R),
        ],
        indexes: &[(false, &["agency_id", "email"]), (true, &["token_hash"])],
    },
    T {
        name: "api_keys",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("name", K::Text, R),
            ("public_id", K::Text, R),
            ("secret_hash", K::Text, R),
            ("scopes", K::Json, R),
            ("expires_at", K::Time, N),
            ("revoked_at", K::Time, N),
            ("last_used_at", K::Time, N),
            ("created_by", K::Uuid, R),
            ("created_at", K::Time, R),
        ],
        indexes: &[(false, &["agency_id", "id"]), (true, &["public_id"])],
    },
    T {
        name: "clients",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("name", K::Text, R),
            ("industry", K::Text, N),
            ("currency", K::Text, R),
            ("timezone", K::Text, R),
            ("locale", K::Text, R),
            ("report_recipients", K::Json, R),
            ("digest_schedule", K::Text, R),
            ("touchpoint_library_id", K::Uuid, N),
            ("min_segment_n", K::Int, R),
            ("archived_at", K::Time, N),
            ("created_at", K::Time, R),
            ("updated_at", K::Time, R),
        ],
        indexes: &[(false, &["agency_id", "id"])],
    },
    T {
        name: "touchpoint_libraries",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("name", K::Text, R),
            ("source", K::Text, N),
            ("created_at", K::Time, R),
            ("updated_at", K::Time, R),
        ],
        indexes: &[(false, &["agency_id", "id"])],
    },
    T {
        name: "cjm_stages",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("library_id", K::Uuid, R),
            ("key", K::Text, R),
            ("name_en", K::Text, R),
            ("name_ru", K::Text, R),
            ("position", K::Int, R),
        ],
        indexes: &[(true, &["agency_id", "library_id", "key"])],
    },
    T {
        name: "touchpoints",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("library_id", K::Uuid, R),
            ("stage_id", K::Uuid, R),
            ("key", K::Text, R),
            ("name_en", K::Text, R),
            ("name_ru", K::Text, R),
            ("channel", K::Text, R),
            ("position", K::Int, R),
        ],
        indexes: &[(true, &["agency_id", "library_id", "key"])],
    },
    T {
        name: "choice_factors",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("client_id", K::Uuid, R),
            ("name", K::Text, R),
            ("description", K::Text, N),
            ("position", K::Int, R),
            ("created_at", K::Time, R),
        ],
        indexes: &[(false, &["agency_id", "client_id"])],
    },
    T {
        name: "questionnaires",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("client_id", K::Uuid, R),
            ("title", K::Text, R),
            ("kind", K::Text, R),
            ("version", K::Int, R),
            ("data_version", K::BigInt, R),
            ("archived_at", K::Time, N),
            ("created_at", K::Time, R),
            ("updated_at", K::Time, R),
        ],
        indexes: &[(false, &["agency_id", "client_id"])],
    },
    T {
        name: "questions",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("questionnaire_id", K::Uuid, R),
            ("version", K::Int, R),
            ("position", K::Int, R),
            ("key", K::Text, R),
            ("label", K::Text, R),
            ("qtype", K::Text, R),
            ("role", K::Text, N),
            ("required", K::Bool, R),
            ("options", K::Json, R),
            ("min_value", K::Double, N),
            ("max_value", K::Double, N),
            ("choice_factor_id", K::Uuid, N),
            ("touchpoint_id", K::Uuid, N),
        ],
        indexes: &[(true, &["agency_id", "questionnaire_id", "version", "key"])],
    },
    T {
        name: "responses",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("questionnaire_id", K::Uuid, R),
            ("questionnaire_version", K::Int, R),
            ("external_id", K::Text, N),
            ("respondent_ref", K::Text, N),
            ("submitted_at", K::Time, R),
            ("answers", K::Json, R),
            ("data_version", K::BigInt, R),
            ("created_at", K::Time, R),
        ],
        indexes: &[
            (true, &["agency_id", "questionnaire_id", "external_id"]),
            (false, &["agency_id", "questionnaire_id", "id"]),
            (false, &["agency_id", "questionnaire_id", "data_version"]),
        ],
    },
    T {
        name: "segments",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("client_id", K::Uuid, R),
            ("name", K::Text, R),
            ("filter", K::Json, R),
            ("created_at", K::Time, R),
            ("updated_at", K::Time, R),
        ],
        indexes: &[(false, &["agency_id", "client_id"])],
    },
    T {
        name: "idempotency_keys",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("key", K::Text, R),
            ("request_hash", K::Text, R),
            ("status", K::Int, R),
            ("body", K::Json, R),
            ("created_at", K::Time, R),
        ],
        indexes: &[(true, &["agency_id", "key"])],
    },
    T {
        name: "recompute_targets",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("kind", K::Text, R),
            ("target_id", K::Uuid, R),
            ("wanted_version", K::BigInt, R),
            ("computed_version", K::BigInt, R),
            ("pending", K::Bool, R),
            ("pending_since_ms", K::BigInt, R),
            ("lease_owner", K::Text, N),
            ("lease_until_ms", K::BigInt, R),
            ("next_attempt_ms", K::BigInt, R),
            ("attempts", K::Int, R),
            ("last_error", K::Text, N),
            ("updated_at", K::Time, R),
        ],
        indexes: &[
            (true, &["agency_id", "kind", "target_id"]),
            (false, &["pending", "pending_since_ms"]),
        ],
    },
    T {
        name: "job_runs",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("kind", K::Text, R),
            ("target_id", K::Uuid, R),
            ("data_version", K::BigInt, R),
            ("status", K::Text, R),
            ("attempt", K::Int, R),
            ("error", K::Text, N),
            ("worker_id", K::Text, R),
            ("started_at", K::Time, R),
            ("finished_at", K::Time, N),
        ],
        indexes: &[
            (false, &["agency_id", "status", "id"]),
            (false, &["agency_id", "kind", "target_id", "data_version"]),
        ],
    },
    T {
        name: "snapshots",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("kind", K::Text, R),
            ("target_id", K::Uuid, R),
            ("data_version", K::BigInt, R),
            ("computed_at", K::Time, R),
            ("payload", K::Json, R),
        ],
        indexes: &[(true, &["agency_id", "kind", "target_id"])],
    },
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in TABLES {
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

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in TABLES.iter().rev() {
            manager
                .drop_table(Table::drop().table(Alias::new(t.name)).to_owned())
                .await?;
        }
        Ok(())
    }
}

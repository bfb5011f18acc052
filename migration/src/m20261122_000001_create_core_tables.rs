//! The foundation schema. Every tenant table carries `agency_id`, and every
//! index on a tenant table starts with it, so the schema can be distributed
//! by `agency_id` (e.g. Citus) without changes.
use sea_orm_migration::prelude::*;

use crate::tables::{K, N, R, T, create_all, drop_all};

#[derive(DeriveMigrationName)]
pub struct Migration;

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
        create_all(manager, TABLES).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, TABLES).await
    }
}

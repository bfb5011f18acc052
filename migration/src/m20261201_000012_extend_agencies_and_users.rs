//! The language of the emails agency staff get (failed-job alerts, and UX
//! alerts for those who chose one): the agency's default, and each user's
//! own choice, which wins where set.
use sea_orm_migration::prelude::*;

use crate::tables::{Added, K, N, R, add_columns, drop_columns};

#[derive(DeriveMigrationName)]
pub struct Migration;

const AGENCIES: &[Added] = &[
    // `ru` or `en`. Existing agencies keep getting the English they got.
    (("locale", K::Text, R), Some("'en'")),
];

const USERS: &[Added] = &[
    // `ru` or `en`; null: the language of the agency (or client) concerned.
    (("locale", K::Text, N), None),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(manager, "agencies", AGENCIES).await?;
        add_columns(manager, "users", USERS).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, "users", USERS).await?;
        drop_columns(manager, "agencies", AGENCIES).await
    }
}

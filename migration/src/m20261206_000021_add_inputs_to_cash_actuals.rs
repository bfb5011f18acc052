//! Actuals of the Cash Journey's inputs R (reach), ctr and C (marketing
//! cost), typed in or taken from the client's channel figures, so plan vs
//! fact compares them too. Existing periods simply lack them.
use sea_orm_migration::prelude::*;

use crate::tables::{Added, K, N, add_columns, drop_columns};

#[derive(DeriveMigrationName)]
pub struct Migration;

const CASH_ACTUALS: &[Added] = &[
    (("reach", K::Double, N), None),
    (("ctr", K::Double, N), None),
    (("marketing_cost", K::Double, N), None),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(manager, "cash_actuals", CASH_ACTUALS).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, "cash_actuals", CASH_ACTUALS).await
    }
}

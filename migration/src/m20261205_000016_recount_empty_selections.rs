//! Recounts every derived result that a multi-choice question feeds. Until
//! now an explicit empty selection (`[]`, "none of these") was read as a
//! blank, so the stored summaries, panels and hypothesis results of
//! questionnaires holding such answers overstate option shares. Responses
//! themselves were stored as sent, so no data is rewritten: the snapshots
//! are dropped (no stale figure is served) and their targets marked
//! pending from version 0, which the worker's sweeper recomputes within its
//! grace period of starting. Like every migration, run it with the workers
//! stopped (`growthpoint migrate`, or `serve` before its worker starts): a
//! recompute finishing meanwhile would record its version as computed.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "DELETE FROM snapshots WHERE kind IN \
             ('questionnaire_summary', 'questionnaire_panel', 'client_hypotheses')",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE recompute_targets SET computed_version = 0, pending = TRUE, \
             pending_since_ms = 0, attempts = 0, next_attempt_ms = 0, last_error = NULL \
             WHERE kind IN ('questionnaire_summary', 'client_hypotheses') \
             AND wanted_version > 0",
        )
        .await?;
        Ok(())
    }

    /// Nothing to undo: the worker recomputes what was dropped.
    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}

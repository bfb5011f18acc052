//! Schema migrations, written once per change and never edited after landing.
pub use sea_orm_migration::prelude::*;

mod tables;

mod m20261122_000001_create_core_tables;
mod m20261122_000002_create_cash_tables;
mod m20261122_000003_create_hypotheses;
mod m20261122_000004_create_purchases;
mod m20261122_000005_create_qfd;
mod m20261122_000006_create_ux_alerts;
mod m20261122_000007_create_email_deliveries;
mod m20261122_000008_create_subscribers;
mod m20261122_000009_create_digest_runs;
mod m20261201_000010_extend_email_tables;
mod m20261201_000011_index_responses_by_version;
mod m20261201_000012_extend_agencies_and_users;
mod m20261201_000013_schedule_clients;
mod m20261202_000014_store_answers_as_json;
mod m20261202_000015_drop_responses_id_index;
mod m20261205_000016_recount_empty_selections;
mod m20261206_000017_create_channel_days;
mod m20261206_000018_create_contacts;
mod m20261206_000019_create_email_events;
mod m20261206_000020_create_chains;
mod m20261206_000021_add_inputs_to_cash_actuals;
mod m20261206_000022_split_contact_scores;
mod m20261206_000023_link_responses_to_contacts;
mod m20261207_000024_queue_score_set_purges;
mod m20261207_000025_create_client_senders;
mod m20261207_000026_create_webhooks;
mod m20261207_000027_create_audit_log;
mod m20261207_000028_add_stage_to_questions;
mod m20261207_000029_create_report_links;
mod m20261207_000030_create_tracks;
mod m20261207_000031_tune_audit_log;
mod m20261207_000032_drop_audited_update_missed;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_core_tables::Migration),
            Box::new(m20261122_000002_create_cash_tables::Migration),
            Box::new(m20261122_000003_create_hypotheses::Migration),
            Box::new(m20261122_000004_create_purchases::Migration),
            Box::new(m20261122_000005_create_qfd::Migration),
            Box::new(m20261122_000006_create_ux_alerts::Migration),
            Box::new(m20261122_000007_create_email_deliveries::Migration),
            Box::new(m20261122_000008_create_subscribers::Migration),
            Box::new(m20261122_000009_create_digest_runs::Migration),
            Box::new(m20261201_000010_extend_email_tables::Migration),
            Box::new(m20261201_000011_index_responses_by_version::Migration),
            Box::new(m20261201_000012_extend_agencies_and_users::Migration),
            Box::new(m20261201_000013_schedule_clients::Migration),
            Box::new(m20261202_000014_store_answers_as_json::Migration),
            Box::new(m20261202_000015_drop_responses_id_index::Migration),
            Box::new(m20261205_000016_recount_empty_selections::Migration),
            Box::new(m20261206_000017_create_channel_days::Migration),
            Box::new(m20261206_000018_create_contacts::Migration),
            Box::new(m20261206_000019_create_email_events::Migration),
            Box::new(m20261206_000020_create_chains::Migration),
            Box::new(m20261206_000021_add_inputs_to_cash_actuals::Migration),
            Box::new(m20261206_000022_split_contact_scores::Migration),
            Box::new(m20261206_000023_link_responses_to_contacts::Migration),
            Box::new(m20261207_000024_queue_score_set_purges::Migration),
            Box::new(m20261207_000025_create_client_senders::Migration),
            Box::new(m20261207_000026_create_webhooks::Migration),
            Box::new(m20261207_000027_create_audit_log::Migration),
            Box::new(m20261207_000028_add_stage_to_questions::Migration),
            Box::new(m20261207_000029_create_report_links::Migration),
            Box::new(m20261207_000030_create_tracks::Migration),
            Box::new(m20261207_000031_tune_audit_log::Migration),
            Box::new(m20261207_000032_drop_audited_update_missed::Migration),
        ]
    }
}

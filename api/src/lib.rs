//! The Growthpoint HTTP API (REST + GraphQL) and the `growthpoint` binary's
//! start-up code.
pub mod cli;
pub mod configuration;
pub mod demo;
pub mod devpages;
pub mod error;
pub mod extract;
pub mod graphql;
pub mod methods;
pub mod metrics;
pub mod openapi;
pub mod report_page;
pub mod rest;
pub mod startup;
pub mod telemetry;

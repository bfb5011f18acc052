//! analytics.md — work in progress.

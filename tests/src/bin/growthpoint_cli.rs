//! `growthpoint` (see `api::cli`), for the tests to run as a process.
fn main() -> anyhow::Result<()> {
    api::cli::run()
}

//! Writes the OpenAPI document generated from the handlers to
//! `openapi/openapi.json` (`cargo run -p openapi`); with `--check`, fails
//! when the checked-in file differs.
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let doc = api::openapi::document_json();
    if std::env::args().any(|a| a == "--check") {
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        if on_disk == doc {
            return ExitCode::SUCCESS;
        }
        eprintln!("{} is stale: run `cargo run -p openapi`", path.display());
        return ExitCode::FAILURE;
    }
    match std::fs::write(&path, doc) {
        Ok(()) => {
            eprintln!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("could not write {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

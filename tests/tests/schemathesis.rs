//! The OpenAPI document as an exact contract, checked by an independent
//! tool: Schemathesis (PyPI, installed by `.ci/run`) runs every phase
//! (examples, coverage, fuzzing, stateful) with every check against the
//! served document, on SQLite and on PostgreSQL+Redis, and the test fails on
//! any failure it reports. What JSON Schema cannot state (rules between
//! fields or on stored data) is configured, each with its reason, in
//! `tests/schemathesis/schemathesis.toml`; nothing else is relaxed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Stdio;

use tests::{Mode, both_modes, panel, spawn_with};
use uuid::Uuid;

async fn schemathesis_reports_no_failure(mode: Mode) {
    // Schemathesis signs up and logs in many times over.
    let app = spawn_with(mode, |s| s.auth_rate_per_minute = 1_000_000).await;
    let t = app.signup("Contract").await;
    // Something to find: a client with a library, factors and a panel.
    panel(&app, &t).await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemathesis");
    let reports = std::env::temp_dir().join(format!("gp-schemathesis-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&reports).unwrap();
    let out = tokio::process::Command::new("st")
        .arg("--config-file")
        .arg(dir.join("schemathesis.toml"))
        .args([
            "run",
            &format!("{}/api/v1/openapi.json", app.base),
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--header",
            &format!("Authorization: Bearer {}", t.token),
            "--max-examples",
            "10",
            "--workers",
            "1",
            "--no-color",
            "--report",
            "junit",
            "--report-dir",
        ])
        .arg(&reports)
        // Its example cache (`.schemathesis/`) goes with the reports.
        .current_dir(&reports)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("schemathesis (`st`, PyPI) must be installed: .ci/run installs it");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .find("SUMMARY")
        .map(|i| &stdout[i..])
        .unwrap_or(&stdout);
    assert!(
        out.status.success(),
        "schemathesis reported failures ({mode:?}):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every phase ran and tested every operation of the document.
    for phase in ["Examples", "Coverage", "Fuzzing", "Stateful"] {
        assert!(summary.contains(phase), "{phase} did not run:\n{summary}");
    }
    assert!(summary.contains("Tested: "), "{summary}");
    let _ = std::fs::remove_dir_all(&reports);
}

both_modes!(schemathesis_reports_no_failure);

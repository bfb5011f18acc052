//! The command line of the `growthpoint` binary: `serve | worker | migrate |
//! demo | openapi`. It lives in the library so that other packages' binaries
//! (the black-box tests spawn a worker process to kill it) run the very same
//! program.
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::configuration::Settings;
use crate::startup::{Application, connect, start_worker};

#[derive(Parser)]
#[command(
    name = "growthpoint",
    version,
    about = "Growthpoint: customer research in, living analytics out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (and run a worker in-process unless --no-worker).
    Serve {
        /// Address to listen on [env: GROWTHPOINT_BIND; default 127.0.0.1:8080].
        #[arg(long)]
        bind: Option<String>,
        /// Data folder of the embedded default [env: GROWTHPOINT_DATA_DIR].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Do not run the worker in this process.
        #[arg(long)]
        no_worker: bool,
    },
    /// Run a worker only (scale out beside `serve --no-worker`).
    Worker {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Load the demo agency (once) and serve, like `serve`.
    Demo {
        #[arg(long)]
        bind: Option<String>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print the OpenAPI document.
    Openapi,
}

fn apply(settings: &mut Settings, data_dir: Option<PathBuf>) {
    if let Some(d) = data_dir {
        settings.data_dir = d;
    }
}

/// Parses the command line and runs the command (the whole `main`).
#[tokio::main]
pub async fn run() -> anyhow::Result<()> {
    crate::telemetry::init();
    let cli = Cli::parse();
    let mut settings = Settings::load()?;
    match cli.command {
        Command::Serve {
            bind,
            data_dir,
            no_worker,
        } => {
            apply(&mut settings, data_dir);
            if let Some(b) = bind {
                settings.bind = b;
            }
            if no_worker {
                settings.run_worker = false;
            }
            let app = Application::build(settings.clone()).await?;
            let base = format!("http://{}", display_addr(&settings.bind, app.port()));
            let mode = if settings.is_postgres() {
                "PostgreSQL".to_owned()
            } else {
                format!("embedded (SQLite in {})", settings.data_dir.display())
            };
            tracing::info!(%base, %mode, worker = settings.run_worker, "growthpoint is up");
            eprintln!(
                "Growthpoint is running ({mode}{}).\n  REST API:  {base}/api/v1\n  API docs:  {base}/api/v1/docs\n  GraphiQL:  {base}/graphql\n  OpenAPI:   {base}/api/v1/openapi.json\n  Health:    {base}/healthz{}",
                if settings.run_worker {
                    ", worker in-process"
                } else {
                    ", no worker"
                },
                metrics_banner(&settings, &base, app.metrics_port()),
            );
            app.run_until_stopped().await?;
        }
        Command::Worker { data_dir } => {
            apply(&mut settings, data_dir);
            let metrics_listener = crate::metrics::bind(settings.metrics_addr.as_deref())?;
            let services = connect(&settings).await?;
            // A worker has no API port: its counters are only on its own
            // metrics listener.
            if let Some(listener) = metrics_listener {
                tokio::spawn(crate::metrics::server(listener, services.clone())?);
            }
            let handle = start_worker(services, &settings);
            tokio::select! {
                _ = handle.join() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Command::Migrate { data_dir } => {
            apply(&mut settings, data_dir);
            connect(&settings).await.context("while migrating")?;
            eprintln!("migrations applied");
        }
        Command::Demo { bind, data_dir } => {
            apply(&mut settings, data_dir);
            if let Some(b) = bind {
                settings.bind = b;
            }
            let app = Application::build(settings.clone()).await?;
            match crate::demo::load(app.services()).await? {
                Some(demo) => {
                    eprintln!("Demo agency loaded:");
                    for (name, id) in &demo.clients {
                        eprintln!("  client {id}  {name}");
                    }
                }
                None => eprintln!("The demo agency exists already."),
            }
            let base = format!("http://{}", display_addr(&settings.bind, app.port()));
            eprintln!(
                "Sign in: curl -s -X POST {base}/api/v1/auth/login -H 'content-type: application/json' -d '{{\"email\":\"{}\",\"password\":\"{}\"}}'\n  REST API:  {base}/api/v1\n  API docs:  {base}/api/v1/docs\n  GraphiQL:  {base}/graphql",
                crate::demo::DEMO_EMAIL,
                crate::demo::DEMO_PASSWORD
            );
            app.run_until_stopped().await?;
        }
        Command::Openapi => {
            print!("{}", crate::openapi::document_json());
        }
    }
    Ok(())
}

/// Where `/metrics` answers, if anywhere.
fn metrics_banner(settings: &Settings, base: &str, metrics_port: Option<u16>) -> String {
    let mut lines = String::new();
    if let (Some(addr), Some(port)) = (&settings.metrics_addr, metrics_port) {
        lines += &format!(
            "\n  Metrics:   http://{}{}",
            display_addr(addr, port),
            crate::metrics::PATH
        );
    }
    if settings.metrics_token.is_some() {
        lines += &format!(
            "\n  Metrics:   {base}{} (bearer token)",
            crate::metrics::PATH
        );
    }
    lines
}

fn display_addr(bind: &str, port: u16) -> String {
    let host = bind.rsplit_once(':').map(|(h, _)| h).unwrap_or("127.0.0.1");
    let host = if host == "0.0.0.0" { "127.0.0.1" } else { host };
    format!("{host}:{port}")
}

/// Stack of every thread the server starts (actix's HTTP workers, tokio's
/// runtime threads): 8 MiB instead of Rust's 2 MiB. Recursive parsers are
/// bounded before they run (`service::domain::nesting`); this is headroom,
/// not the defence.
const THREAD_STACK_BYTES: &str = "8388608";

/// mimalloc: the worker's rescoring allocates and frees millions of small
/// attribute maps; see docs/performance.md (session 10).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // std reads the default stack size of new threads from RUST_MIN_STACK,
    // and actix offers no setting of its own; setting the variable in this
    // process would need `unsafe`, so the binary starts itself again with
    // it (exec keeps the process id, arguments and the rest of the
    // environment).
    #[cfg(unix)]
    if std::env::var_os("RUST_MIN_STACK").is_none() {
        use std::os::unix::process::CommandExt;
        if let Ok(exe) = std::env::current_exe() {
            let err = std::process::Command::new(exe)
                .args(std::env::args_os().skip(1))
                .env("RUST_MIN_STACK", THREAD_STACK_BYTES)
                .exec();
            eprintln!(
                "note: could not restart with {THREAD_STACK_BYTES}-byte thread stacks: {err}"
            );
        }
    }
    api::cli::run()
}

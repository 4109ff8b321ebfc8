//! The `renkei` binary; everything lives in the library (see `cli`).

use clap::Parser;

/// mimalloc instead of glibc's allocator: a GraphQL response is built from
/// many small allocations on several threads, and under load glibc's malloc
/// and free (with their arena locks) took a quarter of the hub's CPU time
/// (see bench/RESULTS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = renkei_server::cli::Cli::parse();
    match renkei_server::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("renkei: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

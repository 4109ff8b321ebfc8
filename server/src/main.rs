//! The `renkei` binary; everything lives in the library (see `cli`).

use clap::Parser;

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

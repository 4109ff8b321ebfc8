//! Structured logs: human-readable by default, JSON lines with
//! `RENKEI_LOG_FORMAT=json`; the level from `RENKEI_LOG` (or `RUST_LOG`),
//! default `info`. The access log is the target `access`
//! (`crate::observe::access_log`): `RENKEI_LOG=info,access=off` silences it.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::{EnvFilter, fmt};

pub fn init() {
    let filter = std::env::var("RENKEI_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info,sqlx=warn,sea_orm=warn".to_string());
    let json = std::env::var("RENKEI_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    install(&filter, json, std::io::stderr);
}

/// Installs the process's subscriber: `filter` (an `EnvFilter` directive),
/// JSON lines or text, written to `writer`. Returns false when a
/// subscriber was installed already (a second initialisation, in tests, is
/// not an error worth dying for).
pub fn install<W>(filter: &str, json: bool, writer: W) -> bool
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("renkei: ignoring invalid log filter {filter:?}: {e}");
        EnvFilter::new("info")
    });
    let builder = fmt().with_env_filter(filter).with_writer(writer);
    if json {
        builder.json().flatten_event(true).try_init().is_ok()
    } else {
        builder.try_init().is_ok()
    }
}

//! Structured logs: human-readable by default, JSON lines with
//! `RENKEI_LOG_FORMAT=json`; the level from `RENKEI_LOG` (or `RUST_LOG`),
//! default `info`.

use tracing_subscriber::{EnvFilter, fmt};

pub fn init() {
    let filter = std::env::var("RENKEI_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info,sqlx=warn,sea_orm=warn".to_string());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|e| {
        eprintln!("renkei: ignoring invalid log filter {filter:?}: {e}");
        EnvFilter::new("info")
    });
    let json = std::env::var("RENKEI_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // `try_init`: a second initialisation (tests) is not an error worth dying for.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

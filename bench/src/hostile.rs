//! `renkei-bench hostile`: what a few hostile clients cost everyone else.
//!
//! One client (or `--concurrency` of them) sends the benchmark's summary
//! query in a loop, as a clinic would; every response it counts must be a
//! full summary (HTTP 200, no `errors`). The measured time is cut into
//! `--rounds` pairs of slices, *quiet* (the normal client alone) then
//! *hostile* (the same, while `--hostile-clients` clients send, as fast as
//! the hub answers, documents that cost the hub work: half a query with a
//! 900 KB string literal, half 1,000 aliases of `patient(id: $id) { name }`).
//! It reports p50 / p99 / max of the normal queries on each side and their
//! ratio, and what the hostile clients got back (status and code, each
//! response read in full), into a Markdown file in `--out`.
//!
//! Run the hub with `RENKEI_RATE_LIMIT=off`: the measurement is of what a
//! document costs, not of the rate limits (a hub before them has none).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sea_orm::sqlx::postgres::PgPoolOptions;
use sea_orm::sqlx::{self};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::generate::RegionFile;
use crate::load::{
    SUMMARY_QUERY, check, command_line, cpu_model, mint_token, percentile, shell_out,
};

#[derive(clap::Args, Debug)]
pub struct HostileArgs {
    /// The running hub (its `/graphql` endpoint, or the base URL).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The hub's database: the bench clinic's patients are read from it once.
    #[arg(long, env = "RENKEI_DATABASE_URL")]
    pub database_url: String,
    /// Bearer token of the bench physician (else minted from --jwt-secret).
    #[arg(long)]
    pub token: Option<String>,
    #[arg(long, env = "RENKEI_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    #[arg(long, default_value = "renkei")]
    pub jwt_issuer: String,
    #[arg(long, default_value = "renkei")]
    pub jwt_audience: String,
    /// The file written by `generate`.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/target/region.json"))]
    pub region: PathBuf,
    /// Measured seconds per side (quiet, hostile).
    #[arg(long, default_value_t = 20)]
    pub duration_secs: u64,
    /// Unmeasured seconds of normal load first.
    #[arg(long, default_value_t = 3)]
    pub warmup_secs: u64,
    /// Pairs of slices (quiet, hostile) the measured time is cut into, so
    /// a drift of the machine's speed weighs on both sides alike.
    #[arg(long, default_value_t = 4)]
    pub rounds: u32,
    /// Normal clients sending the summary query.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Clients sending hostile documents during the hostile slices.
    #[arg(long, default_value_t = 4)]
    pub hostile_clients: usize,
    /// Size of the string literal of the literal-heavy hostile document.
    #[arg(long, default_value_t = 900_000)]
    pub literal_bytes: usize,
    /// Aliases of the alias-heavy hostile document.
    #[arg(long, default_value_t = 1000)]
    pub aliases: usize,
    /// Folder the results are written to (`hostile-<label>-<time>.md`).
    #[arg(long)]
    pub out: PathBuf,
    /// What is measured (e.g. `fix`, `main`), in the file name and table.
    #[arg(long, default_value = "hub")]
    pub label: String,
    /// Free text recorded with the results.
    #[arg(long)]
    pub note: Option<String>,
}

/// Latencies (µs) and failures of the normal client in one kind of slice.
#[derive(Default)]
struct Side {
    micros: Vec<u32>,
    failures: u64,
    messages: Vec<String>,
}

impl Side {
    fn line(&mut self, name: &str) -> String {
        self.micros.sort_unstable();
        format!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {} |",
            self.micros.len(),
            percentile(&self.micros, 50.0),
            percentile(&self.micros, 99.0),
            percentile(&self.micros, 100.0),
            self.failures
        )
    }
}

/// The two hostile requests' bodies (serialised once: the driver shares
/// the CPUs with the hub and should spend little of them).
fn hostile_documents(args: &HostileArgs, patient: Uuid) -> [Vec<u8>; 2] {
    let literal = json!({
        "query": format!("query {{ patient(id: \"{}\") {{ name }} }}", "x".repeat(args.literal_bytes)),
    });
    let fields: Vec<String> = (0..args.aliases)
        .map(|i| format!("p{i}: patient(id: $id) {{ name }}"))
        .collect();
    let aliases = json!({
        "query": format!("query($id: ID!) {{ {} }}", fields.join(" ")),
        "variables": { "id": patient },
    });
    [
        literal.to_string().into_bytes(),
        aliases.to_string().into_bytes(),
    ]
}

/// What a hostile response was: status and first error code, read in full.
async fn outcome(response: reqwest::Result<reqwest::Response>) -> String {
    let response = match response {
        Ok(r) => r,
        Err(e) => return format!("transport error ({})", e.without_url()),
    };
    let status = response.status().as_u16();
    match response.bytes().await {
        Err(e) => format!("{status}, body unreadable ({})", e.without_url()),
        Ok(body) => match serde_json::from_slice::<Value>(&body) {
            Err(_) => format!("{status}, not JSON"),
            Ok(v) => {
                let code = v["errors"][0]["extensions"]["code"]
                    .as_str()
                    .unwrap_or(if v["data"].is_object() { "data" } else { "-" })
                    .to_string();
                format!("{status} {code}")
            }
        },
    }
}

pub async fn run(args: HostileArgs) -> anyhow::Result<()> {
    let region: RegionFile =
        serde_json::from_str(&std::fs::read_to_string(&args.region).with_context(|| {
            format!(
                "reading {} (written by `renkei-bench generate`)",
                args.region.display()
            )
        })?)
        .with_context(|| format!("parsing {}", args.region.display()))?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let loadavg_at_start = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let token = match &args.token {
        Some(t) => t.clone(),
        None => mint_token(
            args.jwt_secret.as_deref(),
            &args.jwt_issuer,
            &args.jwt_audience,
            &region,
        )?,
    };
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&args.database_url)
        .await
        .context("connecting to PostgreSQL")?;
    let patients: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT patient_id FROM care_team_memberships WHERE organization_id = $1 AND end_date IS NULL ORDER BY patient_id",
    )
    .bind(region.bench_clinic_id)
    .fetch_all(&pool)
    .await
    .context("reading the bench clinic's patients")?;
    pool.close().await;
    if patients.is_empty() {
        bail!(
            "the bench clinic has no patients: run `renkei-bench generate` on this database first"
        );
    }
    let endpoint = if args.url.trim_end_matches('/').ends_with("/graphql") {
        args.url.clone()
    } else {
        format!("{}/graphql", args.url.trim_end_matches('/'))
    };
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()?;
    let hostile = Arc::new(hostile_documents(&args, patients[0]));

    // The normal clients run throughout; each result is filed under the
    // kind of slice it started in (none during warm-up and hand-overs);
    // every response counted is checked to be a full summary.
    let phase = Arc::new(std::sync::atomic::AtomicU8::new(PHASE_NONE));
    let stop = Arc::new(AtomicBool::new(false));
    let mut normal = Vec::new();
    for n in 0..args.concurrency {
        let (client, endpoint, token, patients, phase, stop) = (
            client.clone(),
            endpoint.clone(),
            token.clone(),
            patients.clone(),
            phase.clone(),
            stop.clone(),
        );
        normal.push(tokio::spawn(async move {
            let mut sides = [Side::default(), Side::default()];
            let mut i = n * 7919;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let id = patients[i % patients.len()];
                let at = phase.load(Ordering::Relaxed);
                let started = Instant::now();
                let result = match client
                    .post(&endpoint)
                    .bearer_auth(&token)
                    .json(&json!({ "query": SUMMARY_QUERY, "variables": { "id": id } }))
                    .send()
                    .await
                {
                    Ok(r) => {
                        let status = r.status();
                        match r.bytes().await {
                            Ok(body) => check(status, &body),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                let spent = started.elapsed();
                // Filed under the slice it started in (a request started
                // under attack and finished after it still waited on it).
                if at == PHASE_NONE {
                    continue;
                }
                let side = &mut sides[usize::from(at)];
                match result {
                    Ok(()) => side
                        .micros
                        .push(spent.as_micros().min(u32::MAX as u128) as u32),
                    Err(m) => {
                        side.failures += 1;
                        if side.messages.len() < 3 {
                            side.messages.push(m);
                        }
                    }
                }
            }
            sides
        }));
    }

    tokio::time::sleep(Duration::from_secs(args.warmup_secs)).await;
    let slice = Duration::from_secs_f64(args.duration_secs as f64 / f64::from(args.rounds.max(1)));
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    for _ in 0..args.rounds.max(1) {
        phase.store(PHASE_QUIET, Ordering::Relaxed);
        tokio::time::sleep(slice).await;
        phase.store(PHASE_NONE, Ordering::Relaxed);
        // The hostile clients, until the end of the hostile slice.
        let hostile_stop = Arc::new(AtomicBool::new(false));
        let mut attackers = Vec::new();
        for h in 0..args.hostile_clients {
            let (client, endpoint, token, hostile, hostile_stop) = (
                client.clone(),
                endpoint.clone(),
                token.clone(),
                hostile.clone(),
                hostile_stop.clone(),
            );
            attackers.push(tokio::spawn(async move {
                let mut seen: BTreeMap<String, u64> = BTreeMap::new();
                let document = reqwest::Body::from(hostile[h % 2].clone());
                while !hostile_stop.load(Ordering::Relaxed) {
                    let body = document.as_bytes().map(|b| b.to_vec()).unwrap_or_default();
                    let response = client
                        .post(&endpoint)
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    let kind = if h % 2 == 0 { "literal" } else { "aliases" };
                    *seen
                        .entry(format!("{kind}: {}", outcome(response).await))
                        .or_default() += 1;
                }
                seen
            }));
        }
        // Let the attack take hold before measuring under it.
        tokio::time::sleep(Duration::from_millis(500)).await;
        phase.store(PHASE_HOSTILE, Ordering::Relaxed);
        tokio::time::sleep(slice).await;
        phase.store(PHASE_NONE, Ordering::Relaxed);
        hostile_stop.store(true, Ordering::Relaxed);
        for a in attackers {
            for (k, v) in a.await? {
                *outcomes.entry(k).or_default() += v;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (mut quiet, mut under_attack) = (Side::default(), Side::default());
    for task in normal {
        let [q, h] = task.await?;
        quiet.micros.extend(q.micros);
        quiet.failures += q.failures;
        quiet.messages.extend(q.messages);
        under_attack.micros.extend(h.micros);
        under_attack.failures += h.failures;
        under_attack.messages.extend(h.messages);
    }

    let quiet_line = quiet.line("quiet");
    let hostile_line = under_attack.line(&format!("{} hostile clients", args.hostile_clients));
    let ratio = |p: f64| percentile(&under_attack.micros, p) / percentile(&quiet.micros, p);
    let mut report = String::new();
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    report.push_str(&format!("## Hostile load: {} ({now})\n\n", args.label));
    report.push_str(&format!(
        "- machine: {} × {} (`{}`), load average at start {}\n",
        shell_out("nproc", &[]),
        cpu_model(),
        shell_out("uname", &["-srm"]),
        loadavg_at_start
    ));
    report.push_str(&format!("- command: `{}`\n", command_line()));
    report.push_str(&format!(
        "- {} normal client(s), {} s per side in {} rounds; hostile: {} clients ({} B literal / {} aliases)\n",
        args.concurrency,
        args.duration_secs,
        args.rounds,
        args.hostile_clients,
        args.literal_bytes,
        args.aliases
    ));
    if let Some(note) = &args.note {
        report.push_str(&format!("- note: {note}\n"));
    }
    report.push_str("\n| summary queries | n | p50 ms | p99 ms | max ms | failed |\n|---|--:|--:|--:|--:|--:|\n");
    report.push_str(&format!("{quiet_line}\n{hostile_line}\n\n"));
    report.push_str(&format!(
        "**p99 ratio (hostile / quiet): ×{:.2}**; p50 ratio ×{:.2}\n\n",
        ratio(99.0),
        ratio(50.0)
    ));
    report.push_str("| hostile responses | count |\n|---|--:|\n");
    for (k, v) in &outcomes {
        report.push_str(&format!("| {k} | {v} |\n"));
    }
    for m in quiet.messages.iter().chain(&under_attack.messages) {
        report.push_str(&format!("\n- failure: {m}"));
    }
    report.push('\n');
    print!("{report}");
    let file = args.out.join(format!(
        "hostile-{}-{}.md",
        args.label,
        chrono::Utc::now().format("%Y%m%dT%H%M%S")
    ));
    std::fs::write(&file, &report).with_context(|| format!("writing {}", file.display()))?;
    eprintln!("written to {}", file.display());
    if quiet.failures + under_attack.failures > 0 {
        bail!("some normal queries failed (see the report)");
    }
    Ok(())
}

const PHASE_QUIET: u8 = 0;
const PHASE_HOSTILE: u8 = 1;
const PHASE_NONE: u8 = 2;

//! `renkei-bench writes`: records written through the hub's `writeRecords`
//! in batches, beside the floor — a plain `COPY` of the same rows into
//! `records` on as many connections (issue 16, *Writes*).
//!
//! Both sides write the same generated records (lab results, prescriptions,
//! vital signs and conditions of the bench clinic's patients, drawn from a
//! pool so that concurrent batches share patients and series) in the same
//! batches. Every hub response is checked — HTTP 200, no `errors`, one
//! result per item at its index, each `CREATED` — and afterwards both sides'
//! rows are counted in the database through the unique index of source
//! record IDs; a shortfall fails the run. The floor's rows are deleted again
//! (they bypass the summary flag and the audit, which the hub's keep
//! consistent). Results go to `--out DIR` only.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, TimeZone, Utc};
use renkei_schema::records::{RecordData, RecordKind};
use sea_orm::sqlx::postgres::{PgPool, PgPoolOptions};
use sea_orm::sqlx::{self};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::copy::CopyBuf;
use crate::generate::RegionFile;
use crate::load::{mint_token, percentile, shell_out};
use crate::rng::Rng;

const WRITE: &str =
    "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { index outcome record { id } } }";

#[derive(clap::Args, Debug)]
pub struct WritesArgs {
    /// The running hub (its `/graphql` endpoint, or the base URL).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The database the hub uses (the floor COPYs into it).
    #[arg(long, env = "RENKEI_DATABASE_URL")]
    pub database_url: String,
    /// Bearer token of the bench physician; without it one is minted.
    #[arg(long)]
    pub token: Option<String>,
    /// The hub's HS256 secret (RENKEI_JWT_SECRET), to mint the token.
    #[arg(long, env = "RENKEI_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    #[arg(long, default_value = "renkei")]
    pub jwt_issuer: String,
    #[arg(long, default_value = "renkei")]
    pub jwt_audience: String,
    /// The file written by `generate`.
    #[arg(long)]
    pub region: PathBuf,
    /// Records written per side and concurrency level.
    #[arg(long, default_value_t = 100_000)]
    pub records: usize,
    /// Records per `writeRecords` call (and per floor COPY).
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Concurrent connections, comma-separated levels.
    #[arg(long, value_delimiter = ',', default_value = "4")]
    pub concurrency: Vec<usize>,
    /// How many of the bench clinic's patients the records are spread over.
    #[arg(long, default_value_t = 2_000)]
    pub patients: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Folder the results are written to (never a tracked file).
    #[arg(long)]
    pub out: PathBuf,
    /// Names the results file.
    #[arg(long, default_value = "run")]
    pub label: String,
    /// Free text recorded with the results.
    #[arg(long)]
    pub note: Option<String>,
}

/// One generated record: the GraphQL item and the row the floor copies.
struct Item {
    patient_id: Uuid,
    effective_at: DateTime<Utc>,
    kind: RecordKind,
    /// The payload as the GraphQL input's `data` holds it, under its kind's key.
    input_key: &'static str,
    payload: Value,
}

/// Lab tests with plausible ranges: (JLAC10 code, name, unit, low, high).
const LABS: [(&str, &str, &str, f64, f64); 6] = [
    ("3D045000001906202", "HbA1c", "%", 5.2, 8.8),
    ("3C015000002327101", "Cre", "mg/dL", 0.5, 2.2),
    ("8A065000002391901", "eGFR", "mL/min/1.73m2", 20.0, 90.0),
    ("3A015000002327101", "Alb", "g/dL", 2.6, 4.6),
    ("2A030000001930101", "Hb", "g/dL", 9.0, 15.5),
    ("3H015000002327101", "K", "mmol/L", 3.4, 5.4),
];

/// Drugs: (YJ code, name).
const DRUGS: [(&str, &str); 4] = [
    ("2149039F1020", "アムロジピン錠5mg"),
    ("3969007F1025", "メトホルミン塩酸塩錠250mg"),
    ("2171014F1020", "ニフェジピン徐放錠20mg"),
    ("1124007F1020", "ブロチゾラム錠0.25mg"),
];

fn generate(seed: u64, n: usize, pool: &[Uuid]) -> Vec<Item> {
    let base = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    (0..n)
        .map(|i| {
            let mut rng = Rng::for_entity(seed, 16, i as u64);
            let patient_id = pool[rng.below(pool.len())];
            // Distinct times: ties would make "the newest" depend on ids.
            let effective_at = base + chrono::Duration::seconds(i as i64 * 7 + rng.range(0, 6));
            let (kind, input_key, payload) = match i % 10 {
                0..=5 => {
                    let (code, name, unit, lo, hi) = LABS[rng.below(LABS.len())];
                    let value = lo + (hi - lo) * rng.unit();
                    (
                        RecordKind::LabResult,
                        "labResult",
                        json!({ "code": code, "name": name, "value": format!("{value:.1}"),
                                "unit": unit, "abnormal": "NORMAL" }),
                    )
                }
                6 | 7 => {
                    let (yj, drug) = DRUGS[rng.below(DRUGS.len())];
                    let start = effective_at.date_naive();
                    (
                        RecordKind::Prescription,
                        "prescription",
                        json!({ "medicationType": "PRESCRIPTION", "drug": drug, "yjCode": yj,
                                "dose": "1錠", "route": "ORAL", "frequency": "1日1回朝食後",
                                "days": 28, "startDate": start.format("%Y-%m-%d").to_string() }),
                    )
                }
                8 => (
                    RecordKind::VitalSigns,
                    "vitalSigns",
                    json!({ "temperature": 36.2 + rng.unit(), "systolic": 110.0 + 40.0 * rng.unit(),
                            "diastolic": 60.0 + 25.0 * rng.unit(), "pulse": 60.0 + 30.0 * rng.unit(),
                            "spo2": 93.0 + 5.0 * rng.unit() }),
                ),
                _ => (
                    RecordKind::Condition,
                    "condition",
                    json!({ "name": "高血圧症", "icd10": "I10", "clinicalStatus": "ACTIVE" }),
                ),
            };
            Item {
                patient_id,
                effective_at,
                kind,
                input_key,
                payload,
            }
        })
        .collect()
}

fn source_id(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i}")
}

/// One side's run at one concurrency level.
struct Side {
    records: usize,
    seconds: f64,
    batch_micros: Vec<u32>,
    failures: Vec<String>,
}

impl Side {
    fn rate(&self) -> f64 {
        self.records as f64 / self.seconds
    }
}

async fn run_hub(
    args: &WritesArgs,
    token: &str,
    items: &Arc<Vec<Item>>,
    prefix: &str,
    concurrency: usize,
) -> anyhow::Result<Side> {
    let url = if args.url.ends_with("/graphql") {
        args.url.clone()
    } else {
        format!("{}/graphql", args.url.trim_end_matches('/'))
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let batches = items.len().div_ceil(args.batch);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, token, items, next) = (
            client.clone(),
            url.clone(),
            token.to_string(),
            items.clone(),
            next.clone(),
        );
        let (batch, prefix) = (args.batch, prefix.to_string());
        tasks.push(tokio::spawn(async move {
            let mut micros = Vec::new();
            let mut failures = Vec::new();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    break;
                }
                let range = b * batch..((b + 1) * batch).min(items.len());
                let records: Vec<Value> = range
                    .clone()
                    .map(|i| {
                        let it = &items[i];
                        json!({ "patientId": it.patient_id, "sourceRecordId": source_id(&prefix, i),
                                "effectiveAt": it.effective_at.to_rfc3339(),
                                "data": { it.input_key: it.payload } })
                    })
                    .collect();
                let body = json!({ "query": WRITE, "variables": { "i": { "records": records } } });
                let t = Instant::now();
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await;
                let checked = match response {
                    Ok(r) => {
                        let status = r.status();
                        match r.bytes().await {
                            Ok(bytes) => check(status, &bytes, range.len()),
                            Err(e) => Err(format!("reading the body: {e}")),
                        }
                    }
                    Err(e) => Err(format!("sending: {e}")),
                };
                micros.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                if let Err(e) = checked {
                    failures.push(format!("batch {b}: {e}"));
                }
            }
            (micros, failures)
        }));
    }
    let mut side = Side {
        records: items.len(),
        seconds: 0.0,
        batch_micros: Vec::new(),
        failures: Vec::new(),
    };
    for t in tasks {
        let (m, f) = t.await?;
        side.batch_micros.extend(m);
        side.failures.extend(f);
    }
    side.seconds = started.elapsed().as_secs_f64();
    Ok(side)
}

/// A `writeRecords` response: one `CREATED` result per item, at its index.
fn check(status: reqwest::StatusCode, body: &[u8], n: usize) -> Result<(), String> {
    if !status.is_success() {
        return Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(errors) = v.get("errors") {
        // By characters: the hub's messages are often Japanese, and a byte
        // cut inside a character would panic.
        let text: String = errors.to_string().chars().take(300).collect();
        return Err(format!("errors: {text}"));
    }
    let results = v["data"]["writeRecords"]
        .as_array()
        .ok_or("no writeRecords in the response")?;
    if results.len() != n {
        return Err(format!("{} results for {n} records", results.len()));
    }
    for (i, r) in results.iter().enumerate() {
        if r["index"].as_u64() != Some(i as u64) || r["outcome"] != "CREATED" {
            return Err(format!("result {i} is {r}"));
        }
    }
    Ok(())
}

const RECORD_COLUMNS: &str = "id, patient_id, kind, category, source_organization_id, author_member_id, author_api_key_id, source_record_id, version, status, effective_at, recorded_at, undisclosed, in_summary, series_key, data";

/// The floor's rows of one batch, as the hub would store them (the payload
/// through the hub's own types), but with the summary flag off: a plain
/// COPY does not keep it.
fn copy_rows(
    items: &[Item],
    range: std::ops::Range<usize>,
    prefix: &str,
    region: &RegionFile,
    now: DateTime<Utc>,
) -> anyhow::Result<CopyBuf> {
    let mut buf = CopyBuf::with_capacity(range.len() * 400);
    for i in range {
        let it = &items[i];
        let data = RecordData::from_json(it.kind, &it.payload.to_string())
            .map_err(|e| anyhow::anyhow!("payload {i}: {e:?}"))?;
        buf.uuid(Uuid::now_v7())
            .uuid(it.patient_id)
            .text(it.kind.as_str())
            .text(data.category().as_str())
            .uuid(region.bench_clinic_id)
            .uuid(region.physician_id)
            .null()
            .text(&source_id(prefix, i))
            .num(1)
            .raw("ACTIVE")
            .time(it.effective_at)
            .time(now)
            .bool(false)
            .bool(false)
            .opt_text(data.series_key().as_deref())
            .text(&data.to_json());
        buf.end_row();
    }
    Ok(buf)
}

async fn run_floor(
    args: &WritesArgs,
    pool: &PgPool,
    region: &RegionFile,
    items: &Arc<Vec<Item>>,
    prefix: &str,
    concurrency: usize,
) -> anyhow::Result<Side> {
    let batches = items.len().div_ceil(args.batch);
    let next = Arc::new(AtomicUsize::new(0));
    let now = Utc::now();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (pool, items, next, region) =
            (pool.clone(), items.clone(), next.clone(), region.clone());
        let (batch, prefix) = (args.batch, prefix.to_string());
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            let mut micros = Vec::new();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    break;
                }
                let t = Instant::now();
                let range = b * batch..((b + 1) * batch).min(items.len());
                let rows = copy_rows(&items, range, &prefix, &region, now)?;
                crate::generate::copy(&mut conn, "records", RECORD_COLUMNS, &rows).await?;
                micros.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
            }
            anyhow::Ok(micros)
        }));
    }
    let mut side = Side {
        records: items.len(),
        seconds: 0.0,
        batch_micros: Vec::new(),
        failures: Vec::new(),
    };
    for t in tasks {
        match t.await? {
            Ok(m) => side.batch_micros.extend(m),
            Err(e) => side.failures.push(format!("{e:#}")),
        }
    }
    side.seconds = started.elapsed().as_secs_f64();
    Ok(side)
}

/// The ids of the rows a side wrote, found through the unique index of
/// (organisation, kind, source record ID).
async fn written_ids(
    pool: &PgPool,
    region: &RegionFile,
    items: &[Item],
    prefix: &str,
) -> anyhow::Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(items.len());
    for kind in [
        RecordKind::LabResult,
        RecordKind::Prescription,
        RecordKind::VitalSigns,
        RecordKind::Condition,
    ] {
        let sources: Vec<String> = items
            .iter()
            .enumerate()
            .filter(|(_, it)| it.kind == kind)
            .map(|(i, _)| source_id(prefix, i))
            .collect();
        let found: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM records WHERE source_organization_id = $1 AND kind = $2 AND source_record_id = ANY($3)",
        )
        .bind(region.bench_clinic_id)
        .bind(kind.as_str())
        .bind(&sources)
        .fetch_all(pool)
        .await
        .context("counting the written rows")?;
        ids.extend(found);
    }
    Ok(ids)
}

fn row(side: &str, concurrency: usize, s: &Side) -> String {
    let mut m = s.batch_micros.clone();
    m.sort_unstable();
    format!(
        "| {side} | {concurrency} | {} | {:.1} | {:.0} | {:.0} | {:.0} | {} |",
        s.records,
        s.seconds,
        s.rate(),
        percentile(&m, 50.0),
        percentile(&m, 99.0),
        s.failures.len()
    )
}

pub async fn run(args: WritesArgs) -> anyhow::Result<()> {
    if args.batch == 0 || args.records == 0 || args.patients == 0 {
        bail!("--records, --batch and --patients must be positive");
    }
    let region: RegionFile = serde_json::from_slice(
        &std::fs::read(&args.region)
            .with_context(|| format!("reading {}", args.region.display()))?,
    )
    .context("parsing the region file")?;
    let token = match &args.token {
        Some(t) => t.clone(),
        None => mint_token(
            args.jwt_secret.as_deref(),
            &args.jwt_issuer,
            &args.jwt_audience,
            &region,
        )?,
    };
    let max_c = args.concurrency.iter().copied().max().unwrap_or(1);
    let pool = PgPoolOptions::new()
        .max_connections(max_c as u32 + 1)
        .connect(&args.database_url)
        .await
        .context("connecting to PostgreSQL")?;
    let patients: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT patient_id FROM care_team_memberships WHERE organization_id = $1 AND end_date IS NULL ORDER BY patient_id LIMIT $2",
    )
    .bind(region.bench_clinic_id)
    .bind(args.patients as i64)
    .fetch_all(&pool)
    .await
    .context("reading the bench clinic's patients")?;
    if patients.is_empty() {
        bail!("the bench clinic has no patients: run `renkei-bench generate` first");
    }
    let run_id = Utc::now().format("%Y%m%dT%H%M%S").to_string();
    let items = Arc::new(generate(args.seed, args.records, &patients));
    let load_before = shell_out("cat", &["/proc/loadavg"]);
    let mut lines = Vec::new();
    let mut failed = Vec::new();
    for &c in &args.concurrency {
        let hub_prefix = format!("W{run_id}-{c}");
        let floor_prefix = format!("F{run_id}-{c}");
        eprintln!(
            "hub: {} records in batches of {} on {c} connections …",
            items.len(),
            args.batch
        );
        let hub = run_hub(&args, &token, &items, &hub_prefix, c).await?;
        let hub_rows = written_ids(&pool, &region, &items, &hub_prefix).await?;
        eprintln!("floor: COPY of the same rows …");
        let floor = run_floor(&args, &pool, &region, &items, &floor_prefix, c).await?;
        let floor_rows = written_ids(&pool, &region, &items, &floor_prefix).await?;
        sqlx::query("DELETE FROM records WHERE id = ANY($1)")
            .bind(&floor_rows)
            .execute(&pool)
            .await
            .context("deleting the floor's rows")?;
        for (side, s, rows) in [
            ("hub", &hub, hub_rows.len()),
            ("floor", &floor, floor_rows.len()),
        ] {
            failed.extend(
                s.failures
                    .iter()
                    .take(5)
                    .map(|f| format!("{side} c={c}: {f}")),
            );
            if rows != items.len() {
                failed.push(format!(
                    "{side} c={c}: {rows} rows in the database for {} records",
                    items.len()
                ));
            }
        }
        lines.push(row("hub (writeRecords)", c, &hub));
        lines.push(row("floor (COPY)", c, &floor));
        lines.push(format!(
            "| **ratio hub / floor** | {c} | | | **{:.2}** | | | |",
            hub.rate() / floor.rate()
        ));
    }
    let mut report = crate::report::heading("writes", &args.label, &load_before, &pool).await;
    report.push_str(&format!(
        "- {} records per side and level, batches of {}, over {} of the bench clinic's patients\n",
        args.records,
        args.batch,
        patients.len(),
    ));
    if let Some(note) = &args.note {
        report.push_str(&format!("- note: {note}\n"));
    }
    report.push_str("\n| side | connections | records | seconds | records/s | batch p50 ms | batch p99 ms | failed batches |\n|---|---|---|---|---|---|---|---|\n");
    for l in &lines {
        report.push_str(l);
        report.push('\n');
    }
    crate::report::finish(
        &args.out,
        &format!("writes-{}-{run_id}.md", args.label),
        report,
        &failed,
    )
}

//! `renkei-bench load`: the patient summary through the running hub at each
//! concurrency, beside floors — the same data fetched by hand-written SQL on
//! a pool of the server's size: the minimal statements (two prepared
//! statements, one per dependent step), the same with one audit row per
//! request, and the six-statement floor of the first benchmark. Every
//! response is checked against the database (the requested patient, and
//! the number of entries of each summary part). The results go to a file in
//! `--out DIR`, and are appended to a results file only with `--append-to`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{NaiveDate, Utc};
use sea_orm::sqlx::postgres::{PgPool, PgPoolOptions};
use sea_orm::sqlx::{self, Row};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::generate::{RegionFile, redact};
use crate::rng::Rng;

/// The summary query of the benchmark (every part a newcomer to the care team reads).
pub const SUMMARY_QUERY: &str = "query($id: ID!) { patient(id: $id) { id name nameKana birthDate summary { primaryPhysician { organization { name phone } member { name } } careManager { organization { name phone } } activeConditions { data { ... on ConditionData { name icd10 } } } allergies { data { ... on AllergyData { substance severity } } } currentPrescriptions { data { ... on PrescriptionData { drug dose frequency } } } latestDispensing { effectiveAt data { ... on DispensingData { drug days } } } latestLabResults { effectiveAt data { ... on LabResultData { name value unit abnormal } } } careCertification { data { ... on CareCertificationData { level validTo } } } latestAdl { data { ... on AdlAssessmentData { eating walking cognition } } } latestAdvanceCarePlan { data { ... on AdvanceCarePlanData { cpr placeOfDeath } } } } } }";

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// The running hub (its `/graphql` endpoint, or the base URL).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The database the hub uses: patient ids are read from it once, and the
    /// floor runs its SQL on it.
    #[arg(long, env = "RENKEI_DATABASE_URL")]
    pub database_url: String,
    /// Bearer token of the bench physician. Without it, one is minted from
    /// --jwt-secret and the physician id in the region file.
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
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/target/region.json"))]
    pub region: PathBuf,
    /// Measured seconds per concurrency level (per side).
    #[arg(long, default_value_t = 20)]
    pub duration_secs: u64,
    /// Unmeasured seconds before each measurement.
    #[arg(long, default_value_t = 3)]
    pub warmup_secs: u64,
    /// Concurrency levels, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    pub concurrency: Vec<usize>,
    /// Connections of the floor's pool: the server's default
    /// RENKEI_DATABASE_MAX_CONNECTIONS.
    #[arg(long, default_value_t = 16)]
    pub pool_size: u32,
    /// Seed of the random choice of patients.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Folder the results are written to (`load-<label>-<time>.md`).
    #[arg(long)]
    pub out: PathBuf,
    /// Names the results file.
    #[arg(long, default_value = "run")]
    pub label: String,
    /// Also append the results to this file (e.g. bench/RESULTS.md); only
    /// when asked.
    #[arg(long)]
    pub append_to: Option<PathBuf>,
    /// The floors measured beside the hub, comma-separated: `minimal` (two
    /// prepared statements), `audited` (the same and one audit row per
    /// request), `six` (the first benchmark's six statements).
    #[arg(long, value_delimiter = ',', default_value = "minimal,audited")]
    pub floors: Vec<Floor>,
    /// Free text recorded with the results (e.g. why N is smaller).
    #[arg(long)]
    pub note: Option<String>,
    /// The hub's process id, to report its CPU time per request (default: the
    /// only local process named `renkei`, if there is one).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Each level's measured time is split into this many slices, taken in
    /// turn from the server and the floor (server, floor, server, floor …),
    /// so that a drift in the machine's speed — a shared VM's neighbours —
    /// weighs on both sides alike instead of on whichever ran second.
    #[arg(long, default_value_t = 4)]
    pub rounds: u32,
    /// Only the server, or only the floors.
    #[arg(long, value_parser = ["both", "server", "floor"], default_value = "both")]
    pub only: String,
}

/// The hub's side in the tables.
const SERVER: &str = "GraphQL summary (renkei-server)";

/// A hand-written floor.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Floor {
    /// Access, patient and care team in one statement, the summary's records
    /// in a second: the minimal round trips of a hand-written service.
    Minimal,
    /// `minimal` and one audit row per request (a third statement, committed).
    Audited,
    /// The first benchmark's floor: six statements, one after the other.
    Six,
}

impl Floor {
    fn name(self) -> &'static str {
        match self {
            Floor::Minimal => "floor: 2 statements",
            Floor::Audited => "floor: 2 statements + audit row",
            Floor::Six => "floor: 6 statements",
        }
    }
}

/// One measurement.
#[derive(Debug, Clone)]
struct Measure {
    side: &'static str,
    concurrency: usize,
    ok: u64,
    failures: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    rps: f64,
    /// Summary candidate rows per request (floor only), for comparison.
    rows_per_request: Option<f64>,
    /// CPU milliseconds per request of the server, of all PostgreSQL
    /// processes and of this driver, over the measured window.
    cpu: Option<CpuPerRequest>,
    /// Database transactions per request (approximate).
    xacts_per_request: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
struct CpuPerRequest {
    server: Option<f64>,
    postgres: f64,
    driver: f64,
}

/// CPU seconds used so far (user + system), from /proc.
#[derive(Debug, Clone, Copy, Default)]
struct CpuSnapshot {
    server: Option<f64>,
    postgres: f64,
    driver: f64,
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| shell_out("getconf", &["CLK_TCK"]).parse().unwrap_or(100.0))
}

fn proc_cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// The CPU seconds of the benchmark database's backends so far, by process:
/// only the connections to this database (the hub's pool, the floor's, this
/// driver's), not PostgreSQL's other processes nor other databases'.
async fn backend_cpu(pool: &PgPool) -> HashMap<i32, f64> {
    let pids: Vec<i32> =
        sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            .fetch_all(pool)
            .await
            .unwrap_or_default();
    pids.into_iter()
        .filter_map(|pid| proc_cpu_secs(&pid.to_string()).map(|s| (pid, s)))
        .collect()
}

/// CPU seconds of the backends between two readings: those that started
/// meanwhile count from zero (one that ended meanwhile is lost: the pools
/// keep their connections, so there are none in a run).
fn backend_delta(before: &HashMap<i32, f64>, after: &HashMap<i32, f64>) -> f64 {
    after
        .iter()
        .map(|(pid, s)| s - before.get(pid).copied().unwrap_or(0.0))
        .sum()
}

fn cpu_snapshot(server_pid: Option<u32>) -> Option<CpuSnapshot> {
    Some(CpuSnapshot {
        server: server_pid.and_then(|p| proc_cpu_secs(&p.to_string())),
        postgres: 0.0,
        driver: proc_cpu_secs("self")?,
    })
}

pub(crate) fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn summarise(side: &'static str, concurrency: usize, run: Run, with_rows: bool) -> Measure {
    let Run {
        mut micros,
        failures,
        elapsed,
        rows,
        cpu,
        xacts,
        ..
    } = run;
    let rows = with_rows.then_some(rows);
    micros.sort_unstable();
    let ok = micros.len() as u64;
    Measure {
        side,
        concurrency,
        ok,
        failures,
        p50_ms: percentile(&micros, 50.0),
        p99_ms: percentile(&micros, 99.0),
        max_ms: micros.last().map_or(f64::NAN, |m| *m as f64 / 1000.0),
        rps: ok as f64 / elapsed.as_secs_f64(),
        rows_per_request: rows.map(|r| r as f64 / ok.max(1) as f64),
        xacts_per_request: xacts.map(|x| x as f64 / ok.max(1) as f64),
        cpu: cpu.map(|(a, b)| {
            let per = |x: f64, y: f64| 1000.0 * (y - x) / ok.max(1) as f64;
            CpuPerRequest {
                server: a.server.zip(b.server).map(|(x, y)| per(x, y)),
                postgres: per(a.postgres, b.postgres),
                driver: per(a.driver, b.driver),
            }
        }),
    }
}

#[derive(serde::Serialize)]
struct Claims {
    sub: String,
    iss: String,
    aud: String,
    iat: u64,
    exp: u64,
}

fn mint(args: &LoadArgs, region: &RegionFile) -> anyhow::Result<String> {
    mint_token(
        args.jwt_secret.as_deref(),
        &args.jwt_issuer,
        &args.jwt_audience,
        region,
    )
}

/// The bench physician's token, signed with the hub's HS256 secret.
pub(crate) fn mint_token(
    secret: Option<&str>,
    issuer: &str,
    audience: &str,
    region: &RegionFile,
) -> anyhow::Result<String> {
    let Some(secret) = secret else {
        bail!(
            "give --token, or --jwt-secret (RENKEI_JWT_SECRET) to mint the bench physician's token"
        );
    };
    mint_for(secret, issuer, audience, region.physician_id)
}

/// A member's token, signed with the hub's HS256 secret.
pub(crate) fn mint_for(
    secret: &str,
    issuer: &str,
    audience: &str,
    member: Uuid,
) -> anyhow::Result<String> {
    let now = Utc::now().timestamp().max(0) as u64;
    let claims = Claims {
        sub: member.to_string(),
        iss: issuer.to_string(),
        aud: audience.to_string(),
        iat: now,
        exp: now + 24 * 3600,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .context("signing the token")
}

/// Checks one response: HTTP 200, no `errors`, the patient and its summary present.
pub(crate) fn check(status: reqwest::StatusCode, body: &[u8]) -> Result<(), String> {
    if !status.is_success() {
        return Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(errors) = v.get("errors")
        && errors.as_array().is_none_or(|a| !a.is_empty())
    {
        return Err(format!(
            "errors: {}",
            errors.to_string().chars().take(300).collect::<String>()
        ));
    }
    let summary = &v["data"]["patient"]["summary"];
    if summary.is_null() || summary["primaryPhysician"].is_null() {
        return Err(format!(
            "no summary: {}",
            v.to_string().chars().take(300).collect::<String>()
        ));
    }
    Ok(())
}

/// The summary parts the query asks for that are lists, by the kind of
/// their records: their lengths are checked. A part holds the records of
/// its kind in every category the caller may read — a psychiatric diagnosis
/// among the conditions — and the bench physician may read them all
/// (docs/access-policy.md), so every summary row of the kind counts.
const LIST_PARTS: [(&str, &str); 5] = [
    ("activeConditions", "CONDITION"),
    ("allergies", "ALLERGY"),
    ("currentPrescriptions", "PRESCRIPTION"),
    ("latestDispensing", "DISPENSING"),
    ("latestLabResults", "LAB_RESULT"),
];
/// The parts that are one record: present exactly when there is one.
const ONE_PARTS: [(&str, &str); 3] = [
    ("careCertification", "CARE_CERTIFICATION"),
    ("latestAdl", "ADL_ASSESSMENT"),
    ("latestAdvanceCarePlan", "ADVANCE_CARE_PLAN"),
];

/// The summary rows of each patient, by (kind, category), read from the
/// database before the run: what every response must show.
type Expected = HashMap<Uuid, HashMap<(String, String), usize>>;

async fn expected_parts(
    pool: &PgPool,
    patients: &[Uuid],
    today: NaiveDate,
) -> anyhow::Result<Expected> {
    let rows: Vec<(Uuid, String, String, i64)> = sqlx::query_as(
        "SELECT patient_id, kind, category, count(*) FROM records WHERE patient_id = ANY($1) AND in_summary AND status = 'ACTIVE' AND summary_until >= $2 GROUP BY 1, 2, 3",
    )
    .bind(patients)
    .bind(today)
    .fetch_all(pool)
    .await
    .context("reading the expected summary parts")?;
    let mut out: Expected = HashMap::new();
    for (patient, kind, category, n) in rows {
        out.entry(patient)
            .or_default()
            .insert((kind, category), n as usize);
    }
    Ok(out)
}

/// Checks a summary against the database: the requested patient, and each
/// part with as many entries as the patient has summary rows of its kind.
fn check_parts(expected: &Expected, id: Uuid, patient: &Value) -> Result<(), String> {
    if patient["id"].as_str() != Some(id.to_string().as_str()) {
        return Err(format!("asked for {id}, got patient {}", patient["id"]));
    }
    let none = HashMap::new();
    let rows = expected.get(&id).unwrap_or(&none);
    let count = |kind: &str| -> usize {
        rows.iter()
            .filter(|((k, _), _)| k == kind)
            .map(|(_, n)| *n)
            .sum()
    };
    let summary = &patient["summary"];
    for (part, kind) in LIST_PARTS {
        let got = summary[part].as_array().map_or(0, Vec::len);
        let want = count(kind);
        if got != want {
            return Err(format!(
                "{id}: {part} has {got} entries, the database {want}"
            ));
        }
    }
    for (part, kind) in ONE_PARTS {
        let got = usize::from(!summary[part].is_null());
        let want = count(kind).min(1);
        if got != want {
            return Err(format!(
                "{id}: {part} present {got}, the database has {want}"
            ));
        }
    }
    Ok(())
}

struct Shared {
    expected: Expected,
    patients: Vec<Uuid>,
    endpoint: String,
    token: String,
    client: reqwest::Client,
    pool: PgPool,
    clinic: Uuid,
    physician: Uuid,
    today: NaiveDate,
    server_pid: Option<u32>,
}

/// Runs `concurrency` loops of `op` for `warmup` (unmeasured) then `duration`.
async fn drive<F, Fut>(
    shared: &Arc<Shared>,
    concurrency: usize,
    seed: u64,
    warmup: Duration,
    duration: Duration,
    op: F,
) -> Run
where
    F: Fn(Arc<Shared>, Uuid) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<u64, String>> + Send,
{
    let warm_until = Instant::now() + warmup;
    let measure_from = warm_until;
    let until = measure_from + duration;
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let shared = shared.clone();
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::for_entity(seed, 100 + concurrency as u64, t as u64);
            let mut micros = Vec::with_capacity(4096);
            let mut failures = 0u64;
            let mut messages = Vec::new();
            let mut rows = 0u64;
            loop {
                let start = Instant::now();
                if start >= until {
                    break;
                }
                let id = shared.patients[rng.below(shared.patients.len())];
                let result = op(shared.clone(), id).await;
                let spent = start.elapsed();
                if start < measure_from {
                    continue;
                }
                match result {
                    Ok(r) => {
                        micros.push(spent.as_micros().min(u32::MAX as u128) as u32);
                        rows += r;
                    }
                    Err(m) => {
                        failures += 1;
                        if messages.len() < 3 {
                            messages.push(m);
                        }
                    }
                }
            }
            (micros, failures, messages, rows)
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let backends_before = backend_cpu(&shared.pool).await;
    let cpu_before = cpu_snapshot(shared.server_pid);
    let xacts_before = transactions(&shared.pool).await;
    let mut all = Vec::new();
    let mut failures = 0;
    let mut messages = Vec::new();
    let mut rows = 0;
    for t in tasks {
        let (m, f, msg, r) = t.await.expect("load task panicked");
        all.extend(m);
        failures += f;
        messages.extend(msg);
        rows += r;
    }
    let elapsed = Instant::now().saturating_duration_since(measure_from);
    let cpu = cpu_before
        .zip(cpu_snapshot(shared.server_pid))
        .map(|(a, mut b)| {
            b.postgres = a.postgres;
            (a, b)
        });
    let backends = backend_delta(&backends_before, &backend_cpu(&shared.pool).await);
    let cpu = cpu.map(|(a, mut b)| {
        b.postgres = a.postgres + backends;
        (a, b)
    });
    let xacts = xacts_before
        .zip(transactions(&shared.pool).await)
        .map(|(a, b)| (b - a).max(0) as u64);
    Run {
        micros: all,
        failures,
        messages,
        elapsed,
        rows,
        cpu,
        xacts,
    }
}

/// Committed and rolled-back transactions of the database so far
/// (`pg_stat_database`; each statement outside a transaction is one).
async fn transactions(pool: &PgPool) -> Option<i64> {
    sqlx::query_scalar(
        "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .ok()
}

/// What one level of one side gave.
struct Run {
    micros: Vec<u32>,
    failures: u64,
    messages: Vec<String>,
    elapsed: Duration,
    rows: u64,
    cpu: Option<(CpuSnapshot, CpuSnapshot)>,
    /// Database transactions during the window (approximate: statistics are
    /// flushed about once a second).
    xacts: Option<u64>,
}

impl Run {
    /// The slices of one side and level as one run: latencies together,
    /// counts, time, CPU and transactions summed.
    fn merge(runs: Vec<Run>) -> Option<Run> {
        let mut runs = runs.into_iter();
        let mut total = runs.next()?;
        // CPU as (zero, sum of deltas), so that summarise's difference is the sum.
        total.cpu = total.cpu.map(|(a, b)| {
            let delta = b.minus(a);
            let zero = CpuSnapshot {
                server: delta.server.map(|_| 0.0),
                ..CpuSnapshot::default()
            };
            (zero, delta)
        });
        for r in runs {
            total.micros.extend(r.micros);
            total.failures += r.failures;
            total.messages.extend(r.messages);
            total.elapsed += r.elapsed;
            total.rows += r.rows;
            total.cpu = total
                .cpu
                .zip(r.cpu)
                .map(|((zero, sum), (a, b))| (zero, sum.plus(b.minus(a))));
            total.xacts = total.xacts.zip(r.xacts).map(|(x, y)| x + y);
        }
        Some(total)
    }
}

impl CpuSnapshot {
    fn minus(self, earlier: CpuSnapshot) -> CpuSnapshot {
        CpuSnapshot {
            server: self.server.zip(earlier.server).map(|(b, a)| b - a),
            postgres: self.postgres - earlier.postgres,
            driver: self.driver - earlier.driver,
        }
    }

    fn plus(self, other: CpuSnapshot) -> CpuSnapshot {
        CpuSnapshot {
            server: self.server.zip(other.server).map(|(a, b)| a + b),
            postgres: self.postgres + other.postgres,
            driver: self.driver + other.driver,
        }
    }
}

/// The hub's process: `--server-pid`, else the only process named `renkei`.
fn find_server_pid() -> Option<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "renkei")
        {
            found.push(pid);
        }
    }
    (found.len() == 1).then(|| found[0])
}

async fn server_op(s: Arc<Shared>, id: Uuid) -> Result<u64, String> {
    let body = json!({ "query": SUMMARY_QUERY, "variables": { "id": id.to_string() } });
    let resp = s
        .client
        .post(&s.endpoint)
        .bearer_auth(&s.token)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| format!("body: {e}"))?;
    check(status, &bytes)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))?;
    check_parts(&s.expected, id, &v["data"]["patient"])?;
    Ok(0)
}

/// The floor's statements, in order (see README.md):
const FLOOR_MEMBER: &str = "SELECT organization_id, profession, status FROM members WHERE id = $1";
const FLOOR_CARE_TEAM_CHECK: &str = "SELECT EXISTS (SELECT 1 FROM care_team_memberships WHERE patient_id = $1 AND organization_id = $2 AND start_date <= $3 AND (end_date IS NULL OR end_date >= $3))";
const FLOOR_CONSENT: &str = "SELECT scope, organization_ids, excluded_categories FROM consents WHERE patient_id = $1 AND status = 'IN_FORCE'";
const FLOOR_PATIENT: &str = "SELECT name, name_kana, birth_date FROM patients WHERE id = $1";
const FLOOR_CARE_TEAM: &str = "SELECT c.role, o.name, o.phone, m.name FROM care_team_memberships c JOIN organizations o ON o.id = c.organization_id LEFT JOIN members m ON m.id = c.member_id WHERE c.patient_id = $1 AND c.start_date <= $2 AND (c.end_date IS NULL OR c.end_date >= $2)";
const FLOOR_RECORDS: &str = "SELECT id, kind, category, effective_at, data FROM records WHERE patient_id = $1 AND in_summary AND status = 'ACTIVE' AND summary_until >= $2 ORDER BY effective_at DESC, id DESC";

/// The minimal floor's first statement: the caller may read the patient
/// (the member active, its organisation on the care team today, a
/// network-wide consent in force that does not exclude it), with the
/// patient and its care team — no row when it may not.
const MINIMAL_ACCESS: &str = "SELECT p.id, p.name, p.name_kana, p.birth_date, \
  (SELECT json_agg(json_build_array(c.role, o.name, o.phone, m.name)) FROM care_team_memberships c JOIN organizations o ON o.id = c.organization_id LEFT JOIN members m ON m.id = c.member_id \
    WHERE c.patient_id = p.id AND c.start_date <= $3 AND (c.end_date IS NULL OR c.end_date >= $3))::text AS team \
  FROM patients p JOIN members me ON me.id = $2 AND me.status = 'ACTIVE' \
  WHERE p.id = $1 \
    AND EXISTS (SELECT 1 FROM care_team_memberships t WHERE t.patient_id = p.id AND t.organization_id = me.organization_id AND t.start_date <= $3 AND (t.end_date IS NULL OR t.end_date >= $3)) \
    AND EXISTS (SELECT 1 FROM consents k WHERE k.patient_id = p.id AND k.status = 'IN_FORCE' AND k.scope = 'NETWORK' AND k.organization_ids NOT LIKE '%' || me.organization_id::text || '%')";
/// The minimal floor's second statement: the records the summary shows.
const MINIMAL_RECORDS: &str = "SELECT id, kind, category, effective_at, data FROM records WHERE patient_id = $1 AND in_summary AND status = 'ACTIVE' AND summary_until >= $2 ORDER BY effective_at DESC, id DESC";
/// The audited floor's third: one audit row, committed.
const FLOOR_AUDIT: &str = "INSERT INTO bench_floor_audit (at, member_id, organization_id, patient_id, action, categories) VALUES (now(), $1, $2, $3, 'READ', $4)";

async fn floor_minimal_op(s: Arc<Shared>, id: Uuid) -> Result<u64, String> {
    minimal(s, id, false).await
}

async fn floor_audited_op(s: Arc<Shared>, id: Uuid) -> Result<u64, String> {
    minimal(s, id, true).await
}

async fn minimal(s: Arc<Shared>, id: Uuid, audit: bool) -> Result<u64, String> {
    let row = sqlx::query(MINIMAL_ACCESS)
        .bind(id)
        .bind(s.physician)
        .bind(s.today)
        .fetch_optional(&s.pool)
        .await
        .map_err(|e| format!("access: {e}"))?
        .ok_or_else(|| format!("{id}: not readable"))?;
    let (pid, _, _, _, team): (Uuid, String, String, NaiveDate, Option<String>) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    let records = sqlx::query(MINIMAL_RECORDS)
        .bind(id)
        .bind(s.today)
        .fetch_all(&s.pool)
        .await
        .map_err(|e| format!("records: {e}"))?;
    let mut per_kind: HashMap<(String, String), usize> = HashMap::new();
    for r in &records {
        let (_, kind, category, _, _): (Uuid, String, String, chrono::DateTime<Utc>, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        *per_kind.entry((kind, category)).or_default() += 1;
    }
    if pid != id || team.is_none() || s.expected.get(&id).is_some_and(|e| *e != per_kind) {
        return Err(format!(
            "{id}: the floor read another summary than the database holds"
        ));
    }
    if audit {
        sqlx::query(FLOOR_AUDIT)
            .bind(s.physician)
            .bind(s.clinic)
            .bind(id)
            .bind("[\"CONDITIONS\",\"ALLERGIES\",\"MEDICATIONS\",\"DISPENSING\",\"LAB_RESULTS\",\"CARE_CERTIFICATION\",\"ADL\",\"ADVANCE_CARE_PLANNING\"]")
            .execute(&s.pool)
            .await
            .map_err(|e| format!("audit: {e}"))?;
    }
    Ok(records.len() as u64)
}

async fn floor_op(s: Arc<Shared>, id: Uuid) -> Result<u64, String> {
    fn e(w: &'static str) -> impl Fn(sqlx::Error) -> String {
        move |err| format!("{w}: {err}")
    }
    let m = sqlx::query(FLOOR_MEMBER)
        .bind(s.physician)
        .fetch_one(&s.pool)
        .await
        .map_err(e("member"))?;
    let org: Uuid = m.get(0);
    let _: String = m.get(1);
    let status: String = m.get(2);
    if status != "ACTIVE" || org != s.clinic {
        return Err("bench physician not active at the bench clinic".into());
    }
    let on_team: bool = sqlx::query_scalar(FLOOR_CARE_TEAM_CHECK)
        .bind(id)
        .bind(org)
        .bind(s.today)
        .fetch_one(&s.pool)
        .await
        .map_err(e("care-team check"))?;
    if !on_team {
        return Err("not on the care team".into());
    }
    let consents = sqlx::query(FLOOR_CONSENT)
        .bind(id)
        .fetch_all(&s.pool)
        .await
        .map_err(e("consent"))?;
    let covered = consents.iter().any(|c| {
        let scope: String = c.get(0);
        let orgs: String = c.get(1);
        scope == "NETWORK" && !orgs.contains(&org.to_string())
    });
    if !covered {
        return Err("no consent".into());
    }
    let p = sqlx::query(FLOOR_PATIENT)
        .bind(id)
        .fetch_one(&s.pool)
        .await
        .map_err(e("patient"))?;
    let _: (String, String, NaiveDate) = (p.get(0), p.get(1), p.get(2));
    let team = sqlx::query(FLOOR_CARE_TEAM)
        .bind(id)
        .bind(s.today)
        .fetch_all(&s.pool)
        .await
        .map_err(e("care team"))?;
    for r in &team {
        let _: (String, String, Option<String>, Option<String>) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
    }
    let records = sqlx::query(FLOOR_RECORDS)
        .bind(id)
        .bind(s.today)
        .fetch_all(&s.pool)
        .await
        .map_err(e("records"))?;
    for r in &records {
        let _: (Uuid, String, String, chrono::DateTime<Utc>, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
    }
    Ok(records.len() as u64)
}

pub(crate) fn shell_out(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The command line as typed, with the token and the secret hidden.
pub(crate) fn command_line() -> String {
    let mut out = Vec::new();
    // The placeholder for the next argument's value, when it is hidden.
    let mut hide_next: Option<&str> = None;
    for a in std::env::args() {
        if let Some(placeholder) = hide_next.take() {
            out.push(placeholder.to_string());
            continue;
        }
        let key = a.split_once('=').map_or(a.as_str(), |(k, _)| k);
        let placeholder = match key {
            "--token" | "--jwt-secret" => Some("***"),
            // Recorded on a line of its own.
            "--note" => Some("\"…\""),
            _ => None,
        };
        match placeholder {
            Some(p) if a.contains('=') => out.push(format!("{key}={p}")),
            Some(p) => {
                out.push(a);
                hide_next = Some(p);
            }
            None if a.starts_with("postgres://") || a.starts_with("postgresql://") => {
                out.push(redact(&a))
            }
            None => out.push(a),
        }
    }
    out.join(" ")
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let region: RegionFile =
        serde_json::from_str(&std::fs::read_to_string(&args.region).with_context(|| {
            format!(
                "reading {} (written by `renkei-bench generate`)",
                args.region.display()
            )
        })?)
        .with_context(|| format!("parsing {}", args.region.display()))?;
    let loadavg_at_start = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let token = match &args.token {
        Some(t) => t.clone(),
        None => mint(&args, &region)?,
    };
    let max_c = args.concurrency.iter().copied().max().unwrap_or(1);
    let pool = PgPoolOptions::new()
        .max_connections(args.pool_size)
        .min_connections(args.pool_size)
        .acquire_timeout(Duration::from_secs(30))
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
    if patients.is_empty() {
        bail!(
            "the bench clinic has no patients: run `renkei-bench generate` on this database first"
        );
    }
    let records_total: i64 =
        sqlx::query_scalar("SELECT reltuples::bigint FROM pg_class WHERE relname = 'records'")
            .fetch_one(&pool)
            .await
            .unwrap_or(-1);
    let pg_version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await
        .unwrap_or_default();
    let endpoint = if args.url.trim_end_matches('/').ends_with("/graphql") {
        args.url.clone()
    } else {
        format!("{}/graphql", args.url.trim_end_matches('/'))
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(max_c)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    let today = (Utc::now() + chrono::TimeDelta::hours(9)).date_naive();
    let expected = expected_parts(&pool, &patients, today).await?;
    if args.floors.contains(&Floor::Audited) {
        // The audited floor's log: the columns an audit entry needs to be
        // found again, and an index to find a patient's, as the hub's has.
        sqlx::query("DROP TABLE IF EXISTS bench_floor_audit")
            .execute(&pool)
            .await?;
        sqlx::query("CREATE TABLE bench_floor_audit (id bigserial PRIMARY KEY, at timestamptz NOT NULL, member_id uuid NOT NULL, organization_id uuid NOT NULL, patient_id uuid NOT NULL, action text NOT NULL, categories text NOT NULL)")
            .execute(&pool)
            .await?;
        sqlx::query("CREATE INDEX ON bench_floor_audit (patient_id, at)")
            .execute(&pool)
            .await?;
    }
    let shared = Arc::new(Shared {
        expected,
        patients,
        endpoint,
        token,
        client,
        pool,
        clinic: region.bench_clinic_id,
        physician: region.physician_id,
        today,
        server_pid: args.server_pid.or_else(find_server_pid),
    });
    println!(
        "renkei-bench load: {} patients of the bench clinic, {} records (estimate), {} s per level after {} s warm-up, concurrency {:?}",
        shared.patients.len(),
        records_total,
        args.duration_secs,
        args.warmup_secs,
        args.concurrency
    );

    let run_server = args.only != "floor";
    let run_floor = args.only != "server";
    if run_server {
        // One request first: a wrong token or URL should fail loudly, not 20 s later.
        server_op(shared.clone(), shared.patients[0])
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "the first summary request failed at {}: {e}",
                    shared.endpoint
                )
            })?;
    }
    let warm = Duration::from_secs(args.warmup_secs);
    let dur = Duration::from_secs(args.duration_secs);
    let mut results = Vec::new();
    let mut failure_messages = Vec::new();
    let rounds = args.rounds.max(1);
    let slice = dur / rounds;
    // Later slices need only a short warm-up: connections are open, caches warm.
    let rewarm = warm.min(Duration::from_secs(1));
    let floors: Vec<Floor> = if run_floor {
        args.floors.clone()
    } else {
        Vec::new()
    };
    for &c in &args.concurrency {
        let mut server_runs = Vec::new();
        let mut floor_runs: Vec<Vec<Run>> = floors.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds {
            let w = if round == 0 { warm } else { rewarm };
            let seed = args.seed + u64::from(round);
            if run_server {
                println!("server, concurrency {c}, slice {}/{rounds} …", round + 1);
                server_runs.push(drive(&shared, c, seed, w, slice, server_op).await);
            }
            for (floor, runs) in floors.iter().zip(floor_runs.iter_mut()) {
                println!(
                    "{}, concurrency {c}, slice {}/{rounds} …",
                    floor.name(),
                    round + 1
                );
                runs.push(match floor {
                    Floor::Minimal => drive(&shared, c, seed, w, slice, floor_minimal_op).await,
                    Floor::Audited => drive(&shared, c, seed, w, slice, floor_audited_op).await,
                    Floor::Six => drive(&shared, c, seed, w, slice, floor_op).await,
                });
            }
        }
        let sides = std::iter::once((SERVER, server_runs, false)).chain(
            floors
                .iter()
                .zip(floor_runs)
                .map(|(f, runs)| (f.name(), runs, true)),
        );
        for (side, runs, with_rows) in sides {
            let Some(run) = Run::merge(runs) else {
                continue;
            };
            let tag = side;
            failure_messages.extend(run.messages.iter().map(|m| format!("{tag} c={c}: {m}")));
            let r = summarise(side, c, run, with_rows);
            println!(
                "  {tag}: p50 {:.2} ms, p99 {:.2} ms, {:.0} req/s, {} failures",
                r.p50_ms, r.p99_ms, r.rps, r.failures
            );
            results.push(r);
        }
    }

    // The table and the verdict on the targets.
    let mut table = String::new();
    table.push_str(
        "| side | concurrency | requests | failures | p50 ms | p99 ms | max ms | req/s | CPU ms/req: server | postgres | driver | DB xacts/req |\n",
    );
    table.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    let ms = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.2}"));
    for r in &results {
        table.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.1} | {:.0} | {} | {} | {} | {} |\n",
            r.side,
            r.concurrency,
            r.ok,
            r.failures,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.rps,
            ms(r.cpu.and_then(|c| c.server)),
            ms(r.cpu.map(|c| c.postgres)),
            ms(r.cpu.map(|c| c.driver)),
            r.xacts_per_request
                .map_or("–".to_string(), |x| format!("≈{x:.1}")),
        ));
    }
    let find = |side: &str, c: usize| {
        results
            .iter()
            .find(|r| r.side == side && r.concurrency == c)
    };
    let mut verdict = Vec::new();
    if let (Some(s), Some(f)) = (find(SERVER, 1), find(Floor::Minimal.name(), 1)) {
        let ratio = s.p50_ms / f.p50_ms;
        verdict.push(format!(
            "- median at concurrency 1: {:.2} ms = {ratio:.2}× the minimal floor's {:.2} ms — target ≤ 1.5×: **{}**",
            s.p50_ms,
            f.p50_ms,
            if ratio <= 1.5 { "met" } else { "missed" }
        ));
    }
    if let Some(s) = find(SERVER, 1) {
        verdict.push(format!(
            "- p99 at concurrency 1: {:.2} ms — target ≤ 10 ms: **{}**",
            s.p99_ms,
            if s.p99_ms <= 10.0 { "met" } else { "missed" }
        ));
    }
    if let (Some(s), Some(f)) = (find(SERVER, 32), find(Floor::Audited.name(), 32)) {
        let ratio = s.rps / f.rps;
        verdict.push(format!(
            "- throughput at concurrency 32: {:.0} req/s = {ratio:.2}× the audited minimal floor's {:.0} req/s — target ≥ 0.85×: **{}**",
            s.rps,
            f.rps,
            if ratio >= 0.85 { "met" } else { "missed" }
        ));
    }
    if let (Some(s), Some(f)) = (find(SERVER, 32), find(Floor::Minimal.name(), 32)) {
        verdict.push(format!(
            "- throughput at concurrency 32 against the minimal floor without audit: {:.2}×",
            s.rps / f.rps
        ));
    }
    if let Some(rows) = results.iter().find_map(|r| r.rows_per_request) {
        verdict.push(format!(
            "- summary candidate rows per patient (floor's records query): {rows:.1} on average"
        ));
    }
    println!();
    println!("{table}");
    for v in &verdict {
        println!("{v}");
    }
    let total_failures: u64 = results.iter().map(|r| r.failures).sum();
    if total_failures > 0 {
        println!("\n{total_failures} FAILED requests; first messages:");
        for m in &failure_messages {
            println!("  {m}");
        }
    }

    {
        let mut md = String::new();
        md.push_str(&format!(
            "\n## Run of {}\n\n",
            Utc::now().format("%Y-%m-%d %H:%M UTC")
        ));
        md.push_str(&format!(
            "- machine: `{}`; {} CPUs ({}); PostgreSQL {}\n",
            shell_out("uname", &["-a"]),
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            cpu_model(),
            pg_version
        ));
        md.push_str(&format!(
            "- load average at the start: {} (other work on the machine skews the numbers)\n",
            loadavg_at_start
        ));
        md.push_str(&format!(
            "- region: N = {} patients × R = {} records per patient ({} records; seed {}; generated in {:.0} s at {})\n",
            region.patients, region.records_per_patient, region.records, region.seed, region.generation_seconds, region.generated_at
        ));
        md.push_str(&format!(
            "- load: {} s measured per level and side, in {} alternating slices (server, floor, …) after {} s warm-up; floor pool {} connections\n",
            args.duration_secs, rounds, args.warmup_secs, args.pool_size
        ));
        md.push_str(&format!("- command: `{}`\n", command_line()));
        if let Some(note) = &args.note {
            md.push_str(&format!("- note: {note}\n"));
        }
        md.push('\n');
        md.push_str(&table);
        md.push('\n');
        for v in &verdict {
            md.push_str(v);
            md.push('\n');
        }
        if total_failures > 0 {
            md.push_str(&format!("- **{total_failures} failed requests**, e.g.:\n"));
            for m in &failure_messages {
                md.push_str(&format!("  - `{}`\n", m.replace('`', "'")));
            }
        }
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("creating {}", args.out.display()))?;
        let file = args.out.join(format!(
            "load-{}-{}.md",
            args.label,
            Utc::now().format("%Y%m%dT%H%M%S")
        ));
        std::fs::write(&file, &md).with_context(|| format!("writing {}", file.display()))?;
        println!("\nwritten to {}", file.display());
        if let Some(path) = &args.append_to {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            f.write_all(md.as_bytes())?;
            println!("appended to {}", path.display());
        }
    }
    if floors.contains(&Floor::Audited) {
        sqlx::query("DROP TABLE IF EXISTS bench_floor_audit")
            .execute(&shared.pool)
            .await?;
    }
    shared.pool.close().await;
    if total_failures > 0 {
        bail!("{total_failures} requests failed");
    }
    Ok(())
}

//! `renkei-bench fhir-import`: FHIR resources per second through
//! `renkei import fhir` (issue 13, *Bulk*), beside the floor — a plain
//! `COPY` of the very rows the import wrote.
//!
//! The bench writes FHIR Bulk Data NDJSON files (`Patient.ndjson`,
//! `Observation.ndjson`, `MedicationRequest.ndjson`, `Condition.ndjson`,
//! `AllergyIntolerance.ndjson`) for `--patients` of the bench clinic's
//! patients of a generated region — JP Core shapes, with the clinic's local
//! patient IDs, JLAC10 / YJ / ICD-10 codes and an identifier per resource —
//! and runs the hub's own binary on them as the bench physician, timed. The
//! import's exit status and summary must say every resource was created,
//! and the records are then counted in the database through the unique
//! index of source IDs; a shortfall fails the run. The floor copies exactly
//! those rows again (new ids, other source IDs) with `COPY … FROM STDIN` on
//! `--jobs` connections, in chunks of a bundle's size, and deletes them
//! afterwards. The report goes to `--out DIR/fhir-import-<label>-<time>.md`.
//!
//! Beside the rates, the report gives the CPU each side cost, per
//! resource: the import's own (its process's user and system time) and,
//! when the database runs on this machine, PostgreSQL's (the time of its
//! processes, during the import and during the floor). On a shared
//! virtual machine the rates swing from run to run with what else runs
//! (the floor alone by a third within minutes); CPU per resource swings
//! much less, and is what tells whether a change made the work cheaper.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use sea_orm::sqlx::postgres::PgPoolOptions;
use sea_orm::sqlx::{self, Row};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::generate::RegionFile;
use crate::load::{command_line, cpu_model, mint_token, shell_out};
use crate::rng::Rng;

#[derive(clap::Args, Debug)]
pub struct FhirImportArgs {
    /// The `renkei` binary to run (a release build for numbers worth keeping).
    #[arg(long, default_value = "target/release/renkei")]
    pub renkei: PathBuf,
    /// The region's database (PostgreSQL).
    #[arg(long, env = "RENKEI_DATABASE_URL")]
    pub database_url: String,
    /// The hub's HS256 secret (RENKEI_JWT_SECRET): the import runs as the
    /// bench physician with a token minted from it.
    #[arg(long, env = "RENKEI_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
    /// The file written by `generate`.
    #[arg(long)]
    pub region: PathBuf,
    /// Resources to import (patients excluded).
    #[arg(long, default_value_t = 100_000)]
    pub resources: usize,
    /// How many of the bench clinic's patients they are spread over.
    #[arg(long, default_value_t = 1_000)]
    pub patients: usize,
    /// Bundles in flight in the import, and connections of the floor.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Folder the NDJSON files and the results are written to.
    #[arg(long)]
    pub out: PathBuf,
    /// Names the results file.
    #[arg(long, default_value = "run")]
    pub label: String,
    /// Free text recorded with the results.
    #[arg(long)]
    pub note: Option<String>,
}

/// The bench clinic's 医療機関コード, set when the region has none: the
/// clinic's local patient IDs are named in its JP Core identifier system.
const BENCH_INSTITUTION_CODE: &str = "0190000001";
/// JP Core's system of an institution's local patient IDs, before the code.
const LOCAL_ID_SYSTEM_PREFIX: &str = "urn:oid:1.2.392.100495.20.3.51.1";
/// Resources per floor COPY: the import's bundles (`MAX_RESOURCES_PER_BUNDLE`).
const FLOOR_CHUNK: usize = 499;

/// Lab tests with plausible values: (JLAC10, name, unit, low, high, ref low, ref high).
const LABS: [(&str, &str, &str, f64, f64, f64, f64); 4] = [
    ("3D045000001906202", "HbA1c", "%", 5.2, 8.8, 4.6, 6.2),
    (
        "3C015000002327101",
        "クレアチニン",
        "mg/dL",
        0.5,
        2.2,
        0.46,
        0.79,
    ),
    (
        "3A015000002327101",
        "アルブミン",
        "g/dL",
        2.6,
        4.6,
        4.1,
        5.1,
    ),
    (
        "3H015000002327101",
        "カリウム",
        "mmol/L",
        3.4,
        5.4,
        3.6,
        4.8,
    ),
];
/// Drugs: (YJ code, name).
const DRUGS: [(&str, &str); 4] = [
    ("2149039F1020", "アムロジピン錠5mg"),
    ("3969007F1025", "メトホルミン塩酸塩錠250mg"),
    ("2171014F1020", "ニフェジピン徐放錠20mg"),
    ("1124007F1020", "ブロチゾラム錠0.25mg"),
];
/// Conditions: (ICD-10, name).
const CONDITIONS: [(&str, &str); 4] = [
    ("I10", "高血圧症"),
    ("E11.9", "2型糖尿病"),
    ("M81.0", "骨粗鬆症"),
    ("F03", "認知症"),
];
/// Substances: (name, category).
const ALLERGENS: [(&str, &str); 3] = [
    ("ペニシリン系抗菌薬", "medication"),
    ("そば", "food"),
    ("ラテックス", "environment"),
];

struct Patient {
    id: Uuid,
    local_id: String,
    name: String,
    name_kana: String,
    birth_date: NaiveDate,
    sex: String,
}

/// The resources: one line each, by file.
fn resources(seed: u64, run: &str, n: usize, patients: &[Patient]) -> Vec<(&'static str, Value)> {
    let base = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    (0..n)
        .map(|i| {
            let mut rng = Rng::for_entity(seed, 13, i as u64);
            let p = &patients[rng.below(patients.len())];
            let subject = json!({ "reference": format!("Patient/{}", p.id) });
            // Distinct times: ties would make "the newest" depend on ids.
            let at = base + Duration::seconds(i as i64 * 11 + rng.range(0, 10));
            let identifier = json!([{ "system": "urn:renkei:bench", "value": format!("{run}-{i}") }]);
            match i % 10 {
                0..=5 => {
                    let (code, name, unit, lo, hi, ref_lo, ref_hi) = LABS[rng.below(LABS.len())];
                    let value = ((lo + (hi - lo) * rng.unit()) * 10.0).round() / 10.0;
                    let flag = if value > ref_hi { "H" } else if value < ref_lo { "L" } else { "N" };
                    ("Observation.ndjson", json!({
                        "resourceType": "Observation",
                        "meta": { "profile": ["http://jpfhir.jp/fhir/core/StructureDefinition/JP_Observation_LabResult"] },
                        "identifier": identifier,
                        "status": "final",
                        "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory" }] }],
                        "code": { "coding": [{ "system": "urn:oid:1.2.392.200119.4.504", "code": code, "display": name }], "text": name },
                        "subject": subject,
                        "effectiveDateTime": at.to_rfc3339(),
                        "valueQuantity": { "value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit },
                        "referenceRange": [{ "low": { "value": ref_lo, "unit": unit }, "high": { "value": ref_hi, "unit": unit } }],
                        "interpretation": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": flag }] }]
                    }))
                }
                6 | 7 => {
                    let (yj, drug) = DRUGS[rng.below(DRUGS.len())];
                    ("MedicationRequest.ndjson", json!({
                        "resourceType": "MedicationRequest",
                        "meta": { "profile": ["http://jpfhir.jp/fhir/core/StructureDefinition/JP_MedicationRequest"] },
                        "identifier": identifier,
                        "status": "active",
                        "intent": "order",
                        "medicationCodeableConcept": { "coding": [{ "system": "urn:oid:1.2.392.100495.20.2.73", "code": yj, "display": drug }], "text": drug },
                        "subject": subject,
                        "authoredOn": at.date_naive().to_string(),
                        "dosageInstruction": [{
                            "text": "1日1回朝食後",
                            "route": { "coding": [{ "system": "http://jpfhir.jp/fhir/core/CodeSystem/JP_MedicationRoute_HL7V2_CS", "code": "PO", "display": "口" }] },
                            "doseAndRate": [{ "doseQuantity": { "value": 1, "unit": "錠" } }]
                        }],
                        "dispenseRequest": { "expectedSupplyDuration": { "value": 28, "unit": "日", "system": "http://unitsofmeasure.org", "code": "d" } }
                    }))
                }
                8 => {
                    let (icd, name) = CONDITIONS[rng.below(CONDITIONS.len())];
                    ("Condition.ndjson", json!({
                        "resourceType": "Condition",
                        "meta": { "profile": ["http://jpfhir.jp/fhir/core/StructureDefinition/JP_Condition"] },
                        "identifier": identifier,
                        "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active" }] },
                        "verificationStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed" }] },
                        "code": { "coding": [{ "system": "http://jpfhir.jp/fhir/core/CodeSystem/icd-10", "code": icd, "display": name }], "text": name },
                        "subject": subject,
                        "onsetDateTime": (at - Duration::days(400)).date_naive().to_string(),
                        "recordedDate": at.date_naive().to_string()
                    }))
                }
                _ => {
                    let (substance, category) = ALLERGENS[rng.below(ALLERGENS.len())];
                    ("AllergyIntolerance.ndjson", json!({
                        "resourceType": "AllergyIntolerance",
                        "meta": { "profile": ["http://jpfhir.jp/fhir/core/StructureDefinition/JP_AllergyIntolerance"] },
                        "identifier": identifier,
                        "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active" }] },
                        "type": "allergy",
                        "category": [category],
                        "criticality": "low",
                        "code": { "text": substance },
                        "patient": subject,
                        "recordedDate": at.date_naive().to_string(),
                        "reaction": [{ "manifestation": [{ "text": "発疹" }], "severity": "mild" }]
                    }))
                }
            }
        })
        .collect()
}

fn patient_resource(p: &Patient) -> Value {
    json!({
        "resourceType": "Patient",
        "id": p.id,
        "meta": { "profile": ["http://jpfhir.jp/fhir/core/StructureDefinition/JP_Patient"] },
        "identifier": [{ "system": format!("{LOCAL_ID_SYSTEM_PREFIX}{BENCH_INSTITUTION_CODE}"), "value": p.local_id }],
        "name": [
            { "extension": [{ "url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation", "valueCode": "IDE" }],
              "use": "official", "text": p.name },
            { "extension": [{ "url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation", "valueCode": "SYL" }],
              "use": "official", "text": p.name_kana }
        ],
        "gender": match p.sex.as_str() { "MALE" => "male", "FEMALE" => "female", _ => "other" },
        "birthDate": p.birth_date.to_string()
    })
}

fn write_ndjson(
    dir: &Path,
    patients: &[Patient],
    lines: &[(&'static str, Value)],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut files: std::collections::BTreeMap<&str, std::io::BufWriter<std::fs::File>> =
        std::collections::BTreeMap::new();
    let mut open = |name: &'static str| -> anyhow::Result<()> {
        if !files.contains_key(name) {
            let f = std::fs::File::create(dir.join(name))
                .with_context(|| format!("creating {}", dir.join(name).display()))?;
            files.insert(name, std::io::BufWriter::new(f));
        }
        Ok(())
    };
    open("Patient.ndjson")?;
    for (name, _) in lines {
        open(name)?;
    }
    for p in patients {
        writeln!(
            files.get_mut("Patient.ndjson").expect("opened"),
            "{}",
            patient_resource(p)
        )?;
    }
    for (name, resource) in lines {
        writeln!(files.get_mut(name).expect("opened"), "{resource}")?;
    }
    for (_, mut f) in files {
        f.flush()?;
    }
    Ok(())
}

const RECORD_COLUMNS: &str = "id, patient_id, kind, category, source_organization_id, author_member_id, author_api_key_id, source_record_id, version, status, effective_at, recorded_at, undisclosed, in_summary, series_key, data, summary_until";

pub async fn run(args: FhirImportArgs) -> anyhow::Result<()> {
    let region: RegionFile = serde_json::from_slice(
        &std::fs::read(&args.region)
            .with_context(|| format!("reading {}", args.region.display()))?,
    )?;
    if args.resources == 0 || args.patients == 0 || args.jobs == 0 {
        bail!("--resources, --patients and --jobs must be at least 1");
    }
    let pool = PgPoolOptions::new()
        .max_connections(args.jobs as u32 + 1)
        .connect(&args.database_url)
        .await
        .context("connecting to the region's database")?;
    // The clinic's code names its local patient IDs' identifier system.
    let code: Option<String> =
        sqlx::query_scalar("SELECT medical_institution_code FROM organizations WHERE id = $1")
            .bind(region.bench_clinic_id)
            .fetch_one(&pool)
            .await?;
    match code.as_deref() {
        Some(BENCH_INSTITUTION_CODE) => {}
        Some(other) => bail!(
            "the bench clinic has the institution code {other}, expected {BENCH_INSTITUTION_CODE}"
        ),
        None => {
            sqlx::query("UPDATE organizations SET medical_institution_code = $1 WHERE id = $2")
                .bind(BENCH_INSTITUTION_CODE)
                .bind(region.bench_clinic_id)
                .execute(&pool)
                .await?;
        }
    }
    let rows = sqlx::query(
        "SELECT p.id, i.local_id, p.name, p.name_kana, p.birth_date, p.sex FROM patient_identifiers i \
         JOIN patients p ON p.id = i.patient_id WHERE i.organization_id = $1 ORDER BY i.local_id LIMIT $2",
    )
    .bind(region.bench_clinic_id)
    .bind(args.patients as i64)
    .fetch_all(&pool)
    .await?;
    let patients: Vec<Patient> = rows
        .iter()
        .map(|r| Patient {
            id: r.get(0),
            local_id: r.get(1),
            name: r.get(2),
            name_kana: r.get(3),
            birth_date: r.get(4),
            sex: r.get(5),
        })
        .collect();
    if patients.len() < args.patients {
        bail!(
            "the bench clinic has only {} patients with local IDs",
            patients.len()
        );
    }
    let run_id = format!("FI{}", Utc::now().format("%Y%m%d%H%M%S"));
    let dir = args.out.join(format!("fhir-import-{run_id}"));
    let lines = resources(args.seed, &run_id, args.resources, &patients);
    write_ndjson(&dir, &patients, &lines)?;
    let token = mint_token(Some(&args.jwt_secret), "renkei", "renkei", &region)?;

    // The hub's side: the import, timed from the command's start.
    eprintln!(
        "importing {} resources of {} patients from {}",
        args.resources,
        args.patients,
        dir.display()
    );
    let pg_local = postgres_is_local(&args.database_url);
    // Asked once, before anything is measured: `getconf` is a child too.
    clock_ticks();
    let pg_before = pg_local.then(postgres_cpu).flatten();
    let children_before = children_cpu();
    let started = Instant::now();
    let output = std::process::Command::new(&args.renkei)
        .args(["import", "fhir"])
        .arg(&dir)
        .args(["--jobs", &args.jobs.to_string(), "--journal"])
        .arg(dir.join("journal"))
        .env("RENKEI_DATABASE_URL", &args.database_url)
        .env("RENKEI_JWT_SECRET", &args.jwt_secret)
        .env("RENKEI_API_KEY", &token)
        .env("RENKEI_LOG", "warn")
        .output()
        .with_context(|| format!("running {}", args.renkei.display()))?;
    let hub_seconds = started.elapsed().as_secs_f64();
    // The child was waited for: its time is counted among the children's.
    let hub_cpu = children_cpu().zip(children_before).map(|(a, b)| a - b);
    let pg_import = pg_local
        .then(postgres_cpu)
        .flatten()
        .zip(pg_before)
        .map(|(a, b)| a - b);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    if !output.status.success() {
        let tail: String = stderr.lines().rev().take(20).collect::<Vec<_>>().join("\n");
        bail!("the import failed ({}): {stdout}\n{tail}", output.status);
    }
    // Every resource a new record; the patients matched, not created.
    let expected = format!(": {} created", args.resources);
    if !stdout.contains(&expected) {
        bail!("the import did not create every resource (expected \"{expected}\"): {stdout}");
    }
    // Every resource is a record, found by its source ID.
    let sources: Vec<String> = (0..args.resources)
        .map(|i| format!("{run_id}-{i}"))
        .collect();
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM records WHERE source_organization_id = $1 AND source_record_id = ANY($2)",
    )
    .bind(region.bench_clinic_id)
    .bind(&sources)
    .fetch_all(&pool)
    .await?;
    if ids.len() != args.resources {
        bail!(
            "{} records found for {} resources imported",
            ids.len(),
            args.resources
        );
    }

    // The floor: the same rows again, by COPY, in bundle-sized chunks on
    // `jobs` connections.
    let mut conn = pool.acquire().await?;
    let mut out = conn
        .copy_out_raw(&format!(
            "COPY (SELECT gen_random_uuid(), patient_id, kind, category, source_organization_id, author_member_id, author_api_key_id, 'F' || source_record_id, version, status, effective_at, recorded_at, undisclosed, in_summary, series_key, data, summary_until FROM records WHERE id = ANY('{{{}}}'::uuid[])) TO STDOUT",
            ids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(",")
        ))
        .await?;
    let mut text = Vec::new();
    {
        use futures_util::StreamExt;
        while let Some(chunk) = out.next().await {
            text.extend_from_slice(&chunk?);
        }
    }
    drop(out);
    drop(conn);
    let text = String::from_utf8(text)?;
    let rows: Vec<&str> = text.lines().collect();
    let chunks: Vec<String> = rows
        .chunks(FLOOR_CHUNK)
        .map(|c| c.join("\n") + "\n")
        .collect();
    let chunks = std::sync::Arc::new(chunks);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let pg_floor_before = pg_local.then(postgres_cpu).flatten();
    let floor_started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.jobs {
        let (pool, chunks, next) = (pool.clone(), chunks.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(chunk) = chunks.get(i) else { break };
                let mut c = conn
                    .copy_in_raw(&format!("COPY records ({RECORD_COLUMNS}) FROM STDIN"))
                    .await?;
                c.send(chunk.as_bytes()).await?;
                c.finish().await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let floor_seconds = floor_started.elapsed().as_secs_f64();
    let pg_floor = pg_local
        .then(postgres_cpu)
        .flatten()
        .zip(pg_floor_before)
        .map(|(a, b)| a - b);
    let floor_sources: Vec<String> = sources.iter().map(|s| format!("F{s}")).collect();
    let removed = sqlx::query(
        "DELETE FROM records WHERE source_organization_id = $1 AND source_record_id = ANY($2)",
    )
    .bind(region.bench_clinic_id)
    .bind(&floor_sources)
    .execute(&pool)
    .await?
    .rows_affected();
    if removed as usize != args.resources {
        bail!(
            "the floor wrote {removed} rows, expected {}",
            args.resources
        );
    }

    let summary_line = stdout
        .lines()
        .find(|l| l.starts_with("imported"))
        .unwrap_or("")
        .to_string();
    let hub_rate = args.resources as f64 / hub_seconds;
    let floor_rate = args.resources as f64 / floor_seconds;
    let report = format!(
        "## FHIR import ({label}, {date})\n\n\
         | side | resources | seconds | resources/s |\n|---|--:|--:|--:|\n\
         | hub: `renkei import fhir` ({jobs} jobs, whole command) | {n} | {hs:.1} | {hr:.0} |\n\
         | floor: `COPY` of the same rows ({jobs} connections) | {n} | {fs:.2} | {fr:.0} |\n\n\
         hub / floor: **{ratio:.3}**. The import's own line: `{summary_line}`\n\n\
         | CPU | seconds | ms per resource |\n|---|--:|--:|\n\
         | the import's process (user + system) | {hub_cpu} |\n\
         | PostgreSQL during the import | {pg_import} |\n\
         | PostgreSQL during the floor | {pg_floor} |\n\n\
         - patients: {patients}, matched by local ID in every bundle that names them (their Patient lines are not counted above)\n\
         - machine: {cpus} × {cpu}; load average {load}; {kernel}\n\
         - PostgreSQL: {pg}\n- command: `{cmd}`\n{note}\n",
        label = args.label,
        date = Utc::now().format("%Y-%m-%d %H:%M UTC"),
        jobs = args.jobs,
        n = args.resources,
        hs = hub_seconds,
        hr = hub_rate,
        fs = floor_seconds,
        fr = floor_rate,
        ratio = hub_rate / floor_rate,
        hub_cpu = cpu_cells(hub_cpu, args.resources),
        pg_import = cpu_cells(pg_import, args.resources),
        pg_floor = cpu_cells(pg_floor, args.resources),
        patients = args.patients,
        cpus = std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu = cpu_model(),
        load = std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim(),
        kernel = shell_out("uname", &["-srm"]),
        pg = sqlx::query_scalar::<_, String>("SELECT version()")
            .fetch_one(&pool)
            .await?,
        cmd = command_line(),
        note = args
            .note
            .as_deref()
            .map(|n| format!("- note: {n}"))
            .unwrap_or_default(),
    );
    let path = args.out.join(format!(
        "fhir-import-{}-{}.md",
        args.label,
        Utc::now().format("%Y%m%dT%H%M%S")
    ));
    std::fs::write(&path, &report)?;
    println!("{report}\n(written to {})", path.display());
    Ok(())
}

/// `seconds | ms per resource` of a CPU time, or why there is none.
fn cpu_cells(seconds: Option<f64>, resources: usize) -> String {
    match seconds {
        Some(s) => format!("{s:.2} | {:.4}", s * 1000.0 / resources.max(1) as f64),
        None => "n/a (not measured here) | –".to_string(),
    }
}

/// The clock ticks of `/proc`'s times (`getconf CLK_TCK`; Linux's is 100),
/// asked once: `getconf` is a child whose time would count as the import's.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        shell_out("getconf", &["CLK_TCK"])
            .parse::<f64>()
            .ok()
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// The `/proc/<pid>/stat` fields after the command's name (which may hold
/// spaces): `fields[0]` is the state, `[11]` utime, `[12]` stime, `[13]`
/// cutime, `[14]` cstime (proc(5)).
fn stat_fields(stat: &str) -> Option<(&str, Vec<&str>)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?;
    Some((name, stat.get(close + 1..)?.split_whitespace().collect()))
}

fn ticks(fields: &[&str], at: usize) -> f64 {
    fields.get(at).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

/// CPU seconds (user + system) of this process's children that have been
/// waited for; `None` where `/proc` cannot tell (not Linux).
fn children_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (_, fields) = stat_fields(&stat)?;
    Some((ticks(&fields, 13) + ticks(&fields, 14)) / clock_ticks())
}

/// Whether the database URL names this machine (its CPU can be read here).
fn postgres_is_local(url: &str) -> bool {
    let Some(rest) = url.split_once("://").map(|(_, r)| r) else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    matches!(host, "" | "localhost" | "127.0.0.1" | "::1")
}

/// CPU seconds PostgreSQL's processes on this machine have used: the live
/// ones' own time, and the server's children that have ended (backends of
/// closed connections). Other databases' work on the same server counts
/// too: run the bench on an otherwise idle server.
fn postgres_cpu() -> Option<f64> {
    let mut total = 0.0;
    let mut seen = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((command, fields)) = stat_fields(&stat) else {
            continue;
        };
        if !matches!(command, "postgres" | "postmaster") {
            continue;
        }
        seen = true;
        total += ticks(&fields, 11) + ticks(&fields, 12);
        // The server itself (its parent is not PostgreSQL): its ended
        // children's time is where a closed backend's went.
        let parent = fields.get(1).copied().unwrap_or_default();
        let parent_is_postgres = std::fs::read_to_string(format!("/proc/{parent}/stat"))
            .ok()
            .and_then(|s| stat_fields(&s).map(|(c, _)| matches!(c, "postgres" | "postmaster")))
            .unwrap_or(false);
        if !parent_is_postgres {
            total += ticks(&fields, 13) + ticks(&fields, 14);
        }
    }
    seen.then(|| total / clock_ticks())
}

#[cfg(test)]
mod cpu_tests {
    use super::*;

    #[test]
    fn a_stat_line_is_read_past_a_name_with_spaces() {
        let (name, fields) =
            stat_fields("42 (tokio rt) S 1 42 42 0 -1 0 0 0 0 0 150 30 7 3 20 0").unwrap();
        assert_eq!(name, "tokio rt");
        assert_eq!(fields[0], "S");
        assert_eq!(ticks(&fields, 11), 150.0);
        assert_eq!(ticks(&fields, 12), 30.0);
        assert_eq!(ticks(&fields, 13), 7.0);
        assert_eq!(ticks(&fields, 14), 3.0);
    }

    #[test]
    fn only_a_database_on_this_machine_is_measured() {
        for local in [
            "postgres://postgres@127.0.0.1:5432/test",
            "postgres://u:p@localhost/db",
            "postgres://[::1]:5432/db",
            "postgres:///db?host=/var/run/postgresql",
        ] {
            assert!(postgres_is_local(local), "{local}");
        }
        for remote in [
            "postgres://postgres@db.example:5432/test",
            "postgres://u:p@10.0.0.5/db",
            "not a url",
        ] {
            assert!(!postgres_is_local(remote), "{remote}");
        }
    }

    #[test]
    fn the_cpu_of_this_process_s_children_is_counted_once_they_end() {
        let before = children_cpu().expect("/proc on Linux");
        // A child that burns a little CPU, waited for.
        std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        let after = children_cpu().unwrap();
        assert!(after > before, "{before} → {after}");
    }

    #[test]
    fn a_cell_says_when_nothing_was_measured() {
        assert_eq!(cpu_cells(Some(1.5), 1000), "1.50 | 1.5000");
        assert!(cpu_cells(None, 1000).starts_with("n/a"));
    }
}

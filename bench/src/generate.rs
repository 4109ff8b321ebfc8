//! `renkei-bench generate`: migrate, then load the synthetic region with
//! `COPY … FROM STDIN` on several connections, with the secondary indexes and
//! constraints of `records` dropped during the load and rebuilt after it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sea_orm::sqlx::{self, Row};
use serde::{Deserialize, Serialize};

use crate::copy::CopyBuf;
use crate::region::{Directory, PatientRows, generate_patient};

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// PostgreSQL database to fill (created beforehand, e.g. with `createdb`).
    #[arg(long, env = "RENKEI_DATABASE_URL")]
    pub database_url: String,
    /// Number of patients.
    #[arg(long, default_value_t = 100_000)]
    pub patients: u64,
    /// Records per patient (approximately: the mix of kinds is rounded).
    #[arg(long, default_value_t = 200)]
    pub records_per_patient: usize,
    /// Seed: the same seed gives the same rows.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run even though the database already has patients: first EMPTIES the
    /// directory and patient tables (organisations, members, patients and
    /// everything that refers to them; the audit log is kept).
    #[arg(long)]
    pub force: bool,
    /// Where to write the region's description (bench clinic, physician, N, R).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/target/region.json"))]
    pub out: PathBuf,
    /// Loading connections (each generates its chunk, then COPYs it).
    #[arg(long, default_value_t = default_workers())]
    pub workers: usize,
    /// Patients per COPY chunk.
    #[arg(long, default_value_t = 500)]
    pub chunk: u64,
    /// Skip `VACUUM` of `records` after the load (ANALYZE still runs). Without
    /// the vacuum, the benchmark's first reads of each page set hint bits and
    /// write, which a long-running database would not do.
    #[arg(long)]
    pub no_vacuum: bool,
}

fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2)
}

/// What `load` needs to know about the generated region.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct RegionFile {
    pub bench_clinic_id: uuid::Uuid,
    pub physician_id: uuid::Uuid,
    pub patients: u64,
    pub records_per_patient: usize,
    pub records: u64,
    pub organizations: usize,
    pub members: usize,
    pub seed: u64,
    pub generated_at: String,
    pub generation_seconds: f64,
}

/// Patients whose records are checked with the hub's own validation.
const VALIDATED_PATIENTS: u64 = 1_000;
/// Bytes per CopyData message.
const SEND_CHUNK: usize = 1 << 20;

pub(crate) async fn copy(
    conn: &mut PgConnection,
    table: &str,
    columns: &str,
    buf: &CopyBuf,
) -> anyhow::Result<()> {
    if buf.rows == 0 {
        return Ok(());
    }
    let mut c = conn
        .copy_in_raw(&format!("COPY {table} ({columns}) FROM STDIN"))
        .await
        .with_context(|| format!("starting COPY into {table}"))?;
    for piece in buf.data.as_bytes().chunks(SEND_CHUNK) {
        c.send(piece)
            .await
            .with_context(|| format!("COPY into {table}"))?;
    }
    let n = c
        .finish()
        .await
        .with_context(|| format!("finishing COPY into {table}"))?;
    if n != buf.rows {
        bail!("COPY into {table} wrote {n} rows, expected {}", buf.rows);
    }
    Ok(())
}

const PATIENT_COLUMNS: &str = "id, name, name_kana, birth_date, sex, postal_code, address, phone, status, deceased_on, place_of_death, created_at, updated_at";
const IDENTIFIER_COLUMNS: &str = "id, organization_id, local_id, patient_id, created_at, recorded_by_organization, recorded_by_member";
const MEMBERSHIP_COLUMNS: &str = "id, patient_id, organization_id, member_id, role, start_date, end_date, created_at, updated_at, recorded_by_organization, recorded_by_member";
const CONSENT_COLUMNS: &str = "id, patient_id, scope, organization_ids, excluded_categories, method, form_reference, obtained_on, recorded_by_member, recorded_by_organization, recorded_at, withdrawn_at, withdrawn_by_member, withdrawal_reason, status, signed_by";
const RECORD_COLUMNS: &str = "id, patient_id, kind, category, source_organization_id, author_member_id, author_api_key_id, source_record_id, version, status, effective_at, recorded_at, undisclosed, in_summary, series_key, data, summary_until";

/// The statements that drop and recreate the indexes and constraints of
/// `records` (and the foreign key of `record_versions` that needs its primary
/// key), read from the catalog so they are exactly what the migration made.
struct RecordsDdl {
    drop: Vec<String>,
    restore: Vec<String>,
}

async fn records_ddl(conn: &mut PgConnection) -> anyhow::Result<RecordsDdl> {
    let constraints = sqlx::query(
        "SELECT c.conname, c.contype::text AS contype, c.conrelid::regclass::text AS tbl,
                pg_get_constraintdef(c.oid) AS def
           FROM pg_constraint c
          WHERE (c.conrelid = 'records'::regclass OR c.confrelid = 'records'::regclass)
            AND c.contype IN ('p', 'u', 'f')
          ORDER BY c.conname",
    )
    .fetch_all(&mut *conn)
    .await?;
    let indexes = sqlx::query(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i
          WHERE i.schemaname = current_schema() AND i.tablename = 'records'
            AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                             WHERE c.conrelid = 'records'::regclass AND c.conname = i.indexname)
          ORDER BY i.indexname",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut drop = Vec::new();
    let mut restore_keys = Vec::new();
    let mut restore_fks = Vec::new();
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for row in constraints
        .iter()
        .filter(|r| r.get::<String, _>("contype") == "f")
    {
        let (name, tbl, def): (String, String, String) =
            (row.get("conname"), row.get("tbl"), row.get("def"));
        drop.push(format!("ALTER TABLE {tbl} DROP CONSTRAINT {}", q(&name)));
        restore_fks.push(format!(
            "ALTER TABLE {tbl} ADD CONSTRAINT {} {def}",
            q(&name)
        ));
    }
    for row in constraints
        .iter()
        .filter(|r| r.get::<String, _>("contype") != "f")
    {
        let (name, tbl, def): (String, String, String) =
            (row.get("conname"), row.get("tbl"), row.get("def"));
        drop.push(format!("ALTER TABLE {tbl} DROP CONSTRAINT {}", q(&name)));
        restore_keys.push(format!(
            "ALTER TABLE {tbl} ADD CONSTRAINT {} {def}",
            q(&name)
        ));
    }
    for row in &indexes {
        let (name, def): (String, String) = (row.get("indexname"), row.get("indexdef"));
        drop.push(format!("DROP INDEX {}", q(&name)));
        restore_keys.push(def);
    }
    restore_keys.extend(restore_fks);
    Ok(RecordsDdl {
        drop,
        restore: restore_keys,
    })
}

fn restore_file(out: &Path) -> PathBuf {
    out.with_file_name("restore-records-indexes.sql")
}

async fn run_restore(conn: &mut PgConnection, statements: &[String]) -> anyhow::Result<()> {
    sqlx::query("SET maintenance_work_mem = '1GB'")
        .execute(&mut *conn)
        .await?;
    sqlx::query("SET max_parallel_maintenance_workers = 2")
        .execute(&mut *conn)
        .await?;
    for s in statements {
        let t = Instant::now();
        sqlx::query(sqlx::AssertSqlSafe(s.as_str()))
            .execute(&mut *conn)
            .await
            .with_context(|| format!("running {s}"))?;
        println!("  {:>6.1} s  {s}", t.elapsed().as_secs_f64());
    }
    Ok(())
}

pub async fn run(args: GenerateArgs) -> anyhow::Result<()> {
    if args.patients == 0 || args.records_per_patient == 0 {
        bail!("--patients and --records-per-patient must be at least 1");
    }
    let started = Instant::now();
    println!(
        "renkei-bench generate: {} patients × ~{} records (seed {}) into {}",
        args.patients,
        args.records_per_patient,
        args.seed,
        redact(&args.database_url)
    );

    // Migrations, through the hub's own migrator.
    {
        let db = sea_orm::Database::connect(args.database_url.as_str())
            .await
            .context("connecting with sea-orm for the migrations")?;
        if db.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
            bail!("the benchmark needs PostgreSQL (postgres://…)");
        }
        Migrator::up(&db, None)
            .await
            .context("applying migrations")?;
        db.close().await.ok();
    }
    let pool: PgPool = PgPoolOptions::new()
        .max_connections(args.workers as u32 + 1)
        .connect(&args.database_url)
        .await
        .context("connecting to PostgreSQL")?;
    let mut admin = pool.acquire().await?;

    // An interrupted earlier run may have left `records` without its indexes.
    let restore_path = restore_file(&args.out);
    if restore_path.exists() {
        let missing: bool = sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM pg_indexes WHERE tablename = 'records' AND indexname = 'idx_records_summary')",
        )
        .fetch_one(&mut *admin)
        .await?;
        if missing {
            println!(
                "restoring the indexes of `records` left dropped by an interrupted run ({})",
                restore_path.display()
            );
            let text = std::fs::read_to_string(&restore_path)?;
            let statements: Vec<String> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(String::from)
                .collect();
            run_restore(&mut admin, &statements).await?;
        }
        std::fs::remove_file(&restore_path).ok();
    }

    let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM patients")
        .fetch_one(&mut *admin)
        .await?;
    if existing > 0 {
        if !args.force {
            bail!(
                "the database already has {existing} patients: refusing to add a synthetic region to it \
                 (the ids of a seed would collide, and a real database must never get fake patients). \
                 Use a fresh database (createdb), or --force to EMPTY the directory and patient tables first"
            );
        }
        println!(
            "--force: emptying organisations, members, patients and everything referring to them ({existing} patients)"
        );
        sqlx::query(
            "TRUNCATE record_versions, records, consents, emergency_grants, emergency_objections, notifications, \
             care_team_memberships, patient_identifiers, patients, api_keys, members, organization_capabilities, organizations CASCADE",
        )
        .execute(&mut *admin)
        .await
        .context("emptying the tables (--force)")?;
    } else {
        let orgs: i64 = sqlx::query_scalar("SELECT count(*) FROM organizations")
            .fetch_one(&mut *admin)
            .await?;
        if orgs > 0 {
            if !args.force {
                bail!(
                    "the database has no patients but {orgs} organisations: use a fresh database, or --force to empty it first"
                );
            }
            sqlx::query("TRUNCATE api_keys, notifications, members, organization_capabilities, organizations CASCADE")
                .execute(&mut *admin)
                .await?;
        }
    }

    // The directory.
    let dir = Arc::new(Directory::generate(args.seed));
    let (orgs, caps, members) = dir.copy_rows(args.seed);
    copy(&mut admin, "organizations", "id, kind, name, name_kana, postal_code, address, municipality, phone, fax, latitude, longitude, created_at, updated_at", &orgs).await?;
    copy(
        &mut admin,
        "organization_capabilities",
        "organization_id, capability",
        &caps,
    )
    .await?;
    copy(
        &mut admin,
        "members",
        "id, organization_id, name, name_kana, profession, status, created_at, updated_at",
        &members,
    )
    .await?;
    println!(
        "directory: {} organisations, {} members; bench clinic {} , bench physician {}",
        orgs.rows,
        members.rows,
        dir.bench_clinic_id(),
        dir.bench_physician_id()
    );

    // Drop what slows the load of `records` down; keep the statements to rebuild it.
    let ddl = records_ddl(&mut admin).await?;
    if let Some(parent) = restore_path.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    std::fs::write(&restore_path, ddl.restore.join("\n") + "\n")?;
    for s in &ddl.drop {
        sqlx::query(sqlx::AssertSqlSafe(s.as_str()))
            .execute(&mut *admin)
            .await
            .with_context(|| format!("running {s}"))?;
    }
    println!(
        "dropped {} indexes/constraints of records for the load (restore statements in {})",
        ddl.drop.len(),
        restore_path.display()
    );
    drop(admin);

    // The patients, in chunks, on `workers` connections.
    let load_started = Instant::now();
    let chunks = args.patients.div_ceil(args.chunk);
    let next = Arc::new(AtomicUsize::new(0));
    let done_patients = Arc::new(AtomicU64::new(0));
    let done_records = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.workers {
        let pool = pool.clone();
        let dir = dir.clone();
        let next = next.clone();
        let done_patients = done_patients.clone();
        let done_records = done_records.clone();
        let (seed, per, total, chunk) = (
            args.seed,
            args.records_per_patient,
            args.patients,
            args.chunk,
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            sqlx::query("SET synchronous_commit = off")
                .execute(&mut *conn)
                .await?;
            loop {
                let c = next.fetch_add(1, Ordering::SeqCst) as u64;
                if c >= chunks {
                    break;
                }
                let (from, to) = (c * chunk, ((c + 1) * chunk).min(total));
                let dir = dir.clone();
                let rows = tokio::task::spawn_blocking(move || -> anyhow::Result<PatientRows> {
                    let mut rows = PatientRows::new((to - from) as usize, per);
                    for n in from..to {
                        generate_patient(&dir, seed, n, per, n < VALIDATED_PATIENTS, &mut rows)?;
                    }
                    Ok(rows)
                })
                .await??;
                copy(&mut conn, "patients", PATIENT_COLUMNS, &rows.patients).await?;
                copy(
                    &mut conn,
                    "patient_identifiers",
                    IDENTIFIER_COLUMNS,
                    &rows.identifiers,
                )
                .await?;
                copy(
                    &mut conn,
                    "care_team_memberships",
                    MEMBERSHIP_COLUMNS,
                    &rows.memberships,
                )
                .await?;
                copy(&mut conn, "consents", CONSENT_COLUMNS, &rows.consents).await?;
                copy(&mut conn, "records", RECORD_COLUMNS, &rows.records).await?;
                done_patients.fetch_add(to - from, Ordering::Relaxed);
                done_records.fetch_add(rows.records.rows, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let progress = {
        let (done_patients, done_records, total) =
            (done_patients.clone(), done_records.clone(), args.patients);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            tick.tick().await;
            loop {
                tick.tick().await;
                let p = done_patients.load(Ordering::Relaxed);
                let r = done_records.load(Ordering::Relaxed);
                let secs = load_started.elapsed().as_secs_f64();
                let eta = if p > 0 {
                    secs * (total - p) as f64 / p as f64
                } else {
                    f64::NAN
                };
                println!(
                    "  {:>7.0} s  patients {p}/{total} ({:.1} %), records {r} ({:.0}/s), ETA of the load {:.0} s",
                    secs,
                    100.0 * p as f64 / total as f64,
                    r as f64 / secs,
                    eta
                );
            }
        })
    };
    let mut failure = None;
    for t in tasks {
        if let Err(e) = t.await.map_err(anyhow::Error::from).and_then(|r| r) {
            failure.get_or_insert(e);
        }
    }
    progress.abort();
    if let Some(e) = failure {
        return Err(e.context(format!(
            "loading failed; the indexes of records are still dropped: the next run restores them from {}",
            restore_path.display()
        )));
    }
    let records = done_records.load(Ordering::Relaxed);
    let load_secs = load_started.elapsed().as_secs_f64();
    println!(
        "loaded {} patients and {records} records in {load_secs:.0} s ({:.0} records/s)",
        args.patients,
        records as f64 / load_secs
    );

    // Rebuild, vacuum, analyse.
    let mut admin = pool.acquire().await?;
    let t = Instant::now();
    println!("rebuilding the indexes and constraints of records:");
    run_restore(&mut admin, &ddl.restore).await?;
    std::fs::remove_file(&restore_path).ok();
    println!("rebuilt in {:.0} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    if args.no_vacuum {
        sqlx::query("ANALYZE").execute(&mut *admin).await?;
        println!("ANALYZE in {:.0} s", t.elapsed().as_secs_f64());
    } else {
        sqlx::query("VACUUM (ANALYZE) records")
            .execute(&mut *admin)
            .await?;
        sqlx::query("ANALYZE").execute(&mut *admin).await?;
        println!(
            "VACUUM (ANALYZE) records, ANALYZE in {:.0} s",
            t.elapsed().as_secs_f64()
        );
    }

    let total_secs = started.elapsed().as_secs_f64();
    let region = RegionFile {
        bench_clinic_id: dir.bench_clinic_id(),
        physician_id: dir.bench_physician_id(),
        patients: args.patients,
        records_per_patient: args.records_per_patient,
        records,
        organizations: dir.orgs.len(),
        members: dir.member_count(),
        seed: args.seed,
        generated_at: chrono::Utc::now().to_rfc3339(),
        generation_seconds: (total_secs * 10.0).round() / 10.0,
    };
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&region)? + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!();
    println!("bench clinic id:    {}", region.bench_clinic_id);
    println!("bench physician id: {}", region.physician_id);
    println!("region written to   {}", args.out.display());
    println!(
        "generation took {total_secs:.0} s ({:.1} min) for {} patients, {records} records",
        total_secs / 60.0,
        args.patients
    );
    drop(admin);
    pool.close().await;
    Ok(())
}

/// Hides a password in a database URL.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

//! The `renkei` command line.

use std::time::Duration;

use anyhow::Context;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use renkei_schema::domain::{ExternalSubject, NAME_MAX, Profession, Text};

use crate::config::{AuditKeyConfig, AuthConfig, DatabaseConfig, ServeConfig};
use crate::{Application, auth, db, telemetry};

/// renkei (連携): the regional medical–care information hub.
#[derive(Parser, Debug)]
#[command(name = "renkei", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the hub (migrates the database first, unless --no-migrate).
    Serve(Box<ServeConfig>),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseConfig),
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Print the access-policy document (docs/access-policy.md) generated
    /// from the policy's defaults.
    AccessPolicy,
    /// Work with the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Work with the database's roles.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Seed the fictional demo region (idempotent) and exit.
    SeedDemo(DatabaseConfig),
    /// Create a network administrator (and the coordination centre, if no centre
    /// of that name exists) and print the member id: the first step of a new
    /// network, since only administrators may register members.
    AddAdmin {
        /// Name of the coordination centre (在宅医療介護連携支援センター).
        #[arg(long)]
        organization_name: String,
        /// The administrator's name.
        #[arg(long)]
        name: String,
        /// The administrator's subject at the identity provider (the value
        /// of its member claim), for a hub that finds members by it
        /// (RENKEI_JWT_MEMBER_BY=external-subject).
        #[arg(long)]
        external_subject: Option<String>,
        /// The identity provider the subject belongs to: the hub's
        /// RENKEI_JWT_ISSUER.
        #[arg(long, env = "RENKEI_JWT_ISSUER", default_value = "renkei")]
        jwt_issuer: String,
        #[command(flatten)]
        database: DatabaseConfig,
    },
    /// Take records out, as an organisation's system may read them.
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Bring records in from other systems.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Print a bearer token for the demo member of a profession, signed with
    /// the demo key. Refuses when a JWT key is configured.
    DemoToken {
        /// e.g. physician, care-manager, pharmacist, ems-crew, network-administrator
        profession: String,
        /// Hours until the token expires.
        #[arg(long, default_value_t = 8)]
        hours: u64,
        #[command(flatten)]
        auth: AuthConfig,
    },
}

#[derive(Subcommand, Debug)]
pub enum ExportCommand {
    /// The patients of the organisation's care team, as FHIR Bulk Data
    /// NDJSON (one file per resource type) in JP Core profiles, read under
    /// the policy as the key's organisation and audited. See docs/fhir.md.
    Fhir(Box<ExportFhirArgs>),
}

#[derive(Args, Debug)]
pub struct ExportFhirArgs {
    /// The folder the NDJSON files are written to.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The organisation's API key (prefer the environment variable).
    #[arg(long, env = "RENKEI_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// The hub's configuration (database, audit keys, policy), as for `serve`.
    #[command(flatten)]
    pub hub: ServeConfig,
}

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// Import FHIR R4 (JP Core / JP-CLINS) as an organisation's system:
    /// Bundle JSON files, NDJSON (FHIR Bulk Data) or directories of them,
    /// through the same path as `POST /fhir` — policy, all-or-nothing per
    /// bundle, audit. Resumable: bundles written are noted in a journal,
    /// and a rerun skips them. See docs/fhir.md.
    Fhir(Box<ImportFhirArgs>),
}

#[derive(Args, Debug)]
pub struct ImportFhirArgs {
    /// Files (.json: one Bundle; .ndjson: one resource per line) and
    /// directories of them.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The organisation's API key: the import writes as that system, under
    /// its permissions (prefer the environment variable: a command line is
    /// visible to other users of the machine).
    #[arg(long, env = "RENKEI_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// Register a patient the hub cannot match by the sender's local ID or
    /// the insured-person identifier (otherwise the bundle is refused).
    #[arg(long)]
    pub register_patients: bool,
    /// The journal of bundles written, which a rerun skips.
    #[arg(long, default_value = "renkei-import.journal")]
    pub journal: PathBuf,
    /// Bundles in flight at once, each in a task of its own (on two cores,
    /// 4 import ≈ 10 % more a second than 2, and 8 than 4: bench/RESULTS.md).
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// The hub's configuration (database, audit keys, policy), as for `serve`.
    #[command(flatten)]
    pub hub: ServeConfig,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the audit log's signed chain (and, with --checkpoints, that
    /// nothing was cut off or rewritten behind a checkpoint); report the
    /// first entry where it breaks (exit status 1) or that it is intact.
    Verify(VerifyArgs),
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub database: DatabaseConfig,

    #[command(flatten)]
    pub keys: AuditKeyConfig,

    /// Also accept entries signed with the public demo key (a database
    /// `renkei serve --demo` wrote).
    #[arg(long)]
    pub demo: bool,

    /// A checkpoint file, or a directory whose `*.jsonl` files are read
    /// (repeatable): the log must contain every checkpoint's entry, with
    /// the checkpoint's hash.
    #[arg(long, value_name = "PATH")]
    pub checkpoints: Vec<PathBuf>,

    /// Also read the checkpoints of the Redis stream `<prefix>:audit-checkpoints`.
    #[arg(long, value_name = "REDIS_URL")]
    pub checkpoints_redis: Option<String>,

    /// The prefix of that stream.
    #[arg(long, env = "RENKEI_REDIS_PREFIX", default_value = "renkei")]
    pub redis_prefix: String,
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Create (or re-grant) the PostgreSQL role `renkei serve --no-migrate`
    /// runs as: SELECT and INSERT on audit_log and nothing more there,
    /// SELECT and UPDATE (seq, hash) on audit_head, SELECT, INSERT, UPDATE on
    /// the other tables; never an owner. Run it as the owner, after `renkei
    /// migrate` (again after each migration that adds tables). Prints the
    /// SQL it ran (the password masked).
    Grant {
        /// The application role.
        #[arg(long, default_value = "renkei_app")]
        role: String,
        /// Create the role with this password (LOGIN). Without it (and
        /// without --existing-role) the role is created without a password,
        /// for peer or certificate authentication.
        #[arg(long, env = "RENKEI_APP_ROLE_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// The role exists already: only grant.
        #[arg(long)]
        existing_role: bool,
        /// Print the SQL without running it.
        #[arg(long)]
        print: bool,
        #[command(flatten)]
        database: DatabaseConfig,
    },
}

/// Parses `care-manager`, `care_manager` or `CARE_MANAGER`.
pub fn parse_profession(raw: &str) -> anyhow::Result<Profession> {
    let normalised = raw.trim().to_ascii_uppercase().replace('-', "_");
    Profession::parse(&normalised).ok_or_else(|| {
        let known: Vec<String> = Profession::ALL
            .iter()
            .map(|p| p.as_str().to_ascii_lowercase().replace('_', "-"))
            .collect();
        anyhow::anyhow!(
            "unknown profession {raw:?}; use one of: {}",
            known.join(", ")
        )
    })
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(mut config) => {
            telemetry::init();
            // The conventional variable, when the project's own is not set.
            if config.redis.redis_url.is_none() {
                config.redis.redis_url = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty());
            }
            let demo = config.demo;
            let demo_key = config.auth.uses_demo_key();
            let demo_audit_key =
                config.audit_keys.audit_key.is_none() && config.audit_keys.audit_key_file.is_none();
            let app = Application::build(*config).await?;
            // Before announcing the address: whoever reads it may signal at once.
            let stop = crate::shutdown_signal();
            let addr = app.local_addr();
            tracing::info!(%addr, "renkei is listening");
            println!("renkei is listening on http://{addr}");
            println!(
                "  GraphiQL:  http://{addr}/   (GraphQL endpoint: POST http://{addr}/graphql)"
            );
            if demo && demo_audit_key {
                println!(
                    "  WARNING: the audit log is signed with the public demo key; anyone can forge its entries (demo only)."
                );
            }
            if demo && demo_key {
                println!("  Demo region loaded. Get a token for a demo member with");
                println!("    {} physician", demo_token_command());
                println!(
                    "  and add the header {{\"Authorization\": \"Bearer <token>\"}} in GraphiQL."
                );
            }
            app.run_until(stop).await.context("serving HTTP")?;
            Ok(())
        }
        Command::Migrate(config) => {
            telemetry::init();
            db::connect_and_migrate(&config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Schema => {
            print!("{}", renkei_schema::sdl());
            Ok(())
        }
        Command::AccessPolicy => {
            print!(
                "{}",
                renkei_schema::policy::document(&renkei_schema::policy::Matrix::default())
            );
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify(args),
        } => verify(args).await,
        Command::Db {
            command:
                DbCommand::Grant {
                    role,
                    password,
                    existing_role,
                    print,
                    database,
                },
        } => {
            let request = db::GrantRequest {
                role: db::parse_role_name(&role)?,
                password,
                existing_role,
            };
            let conn = db::connect(&database).await?;
            let sql = db::grant(&conn, &request, !print).await?;
            for statement in &sql {
                println!("{statement};");
            }
            if print {
                eprintln!("(printed only; nothing was changed)");
            } else {
                eprintln!(
                    "role {} may now run `renkei serve --no-migrate`; it cannot change or remove audit entries",
                    request.role
                );
            }
            Ok(())
        }
        Command::SeedDemo(config) => {
            telemetry::init();
            let conn = db::connect_and_migrate(&config).await?;
            let report = renkei_schema::demo::seed(&conn)
                .await
                .map_err(|e| anyhow::anyhow!("seeding the demo region: {}", e.message()))?;
            println!(
                "demo region seeded: {} organisations, {} members, {} patients, {} identifiers, {} care-team memberships, {} consents, {} emergency-access objections, {} records added",
                report.organizations,
                report.members,
                report.patients,
                report.identifiers,
                report.care_team_memberships,
                report.consents,
                report.emergency_objections,
                report.records
            );
            Ok(())
        }
        Command::AddAdmin {
            organization_name,
            name,
            external_subject,
            jwt_issuer,
            database,
        } => {
            use renkei_schema::services::members;
            telemetry::init();
            let org = Text::parse("--organization-name", &organization_name, NAME_MAX)
                .map_err(|e| anyhow::anyhow!(e.message()))?;
            let name =
                Text::parse("--name", &name, NAME_MAX).map_err(|e| anyhow::anyhow!(e.message()))?;
            let identity = external_subject
                .as_deref()
                .map(|raw| {
                    ExternalSubject::parse("--external-subject", raw).map(|subject| {
                        members::ExternalIdentity {
                            issuer: jwt_issuer.clone(),
                            subject,
                        }
                    })
                })
                .transpose()
                .map_err(|e| anyhow::anyhow!(e.message()))?;
            let conn = db::connect_and_migrate(&database).await?;
            let (org_id, member_id) =
                members::unchecked_bootstrap_admin_with(&conn, org, name, identity.clone())
                    .await
                    .map_err(|e| anyhow::anyhow!("creating the administrator: {}", e.message()))?;
            println!("organization {org_id}");
            println!("member {member_id}");
            match identity {
                Some(identity) => eprintln!(
                    "Tokens of {:?} with the subject {:?} name this member when the hub runs with RENKEI_JWT_MEMBER_BY=external-subject.",
                    identity.issuer,
                    identity.subject.as_str()
                ),
                None => eprintln!(
                    "Issue this member a JWT (subject = the member id) from your identity provider, or give it the member's subject with --external-subject."
                ),
            }
            Ok(())
        }
        Command::Import {
            command: ImportCommand::Fhir(args),
        } => import_fhir(*args).await,
        Command::Export {
            command: ExportCommand::Fhir(args),
        } => export_fhir(*args).await,
        Command::DemoToken {
            profession,
            hours,
            auth,
        } => {
            let profession = parse_profession(&profession)?;
            if hours == 0 || hours > 24 * 7 {
                anyhow::bail!("--hours must be between 1 and 168");
            }
            let member = renkei_schema::demo::demo_member_id(profession);
            let token = auth::demo_token(&auth, member, Duration::from_secs(hours * 3600))?;
            println!("{token}");
            Ok(())
        }
    }
}

/// The command that prints a demo token with the very build that is
/// running, for the start banner: a newcomer who started a debug build with
/// `cargo run` must not be sent into a release build of ten minutes, and one
/// who runs a binary directly may have no cargo at all. Started by `cargo
/// run` (cargo sets `CARGO` and this package's name for the process), it is
/// `cargo run` with the profile this binary was built with, read from its
/// directory (`target/debug`, `target/release`, `target/<profile>`);
/// otherwise this binary's own path. Ends before the profession.
pub fn demo_token_command() -> String {
    let exe = std::env::current_exe().ok();
    let started_by_cargo = std::env::var_os("CARGO").is_some()
        && std::env::var("CARGO_PKG_NAME").is_ok_and(|name| name == env!("CARGO_PKG_NAME"));
    if started_by_cargo {
        let profile_dir = exe
            .as_deref()
            .and_then(|exe| exe.parent())
            .and_then(|dir| dir.file_name())
            .and_then(|dir| dir.to_str());
        let profile = match profile_dir {
            Some("debug") => String::new(),
            Some("release") => " --release".to_string(),
            Some(other) if !other.is_empty() && shell_word(other) == other => {
                format!(" --profile {other}")
            }
            _ if cfg!(debug_assertions) => String::new(),
            _ => " --release".to_string(),
        };
        return format!(
            "cargo run{profile} -p {} -- demo-token",
            env!("CARGO_PKG_NAME")
        );
    }
    match exe {
        Some(exe) => format!("{} demo-token", shell_word(&exe.to_string_lossy())),
        None => "renkei demo-token".to_string(),
    }
}

/// `word` as a POSIX shell reads it back: as it is when it holds nothing
/// the shell treats specially, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The hub of an operator's command that works on a running hub's
/// database (`renkei import fhir`, `renkei export fhir`): without a
/// listener, and without the rate limits — they guard the network from its
/// callers, not the hub's owner from itself. It never migrates: the
/// database is the running hub's, migrated by its owner, and the command
/// may run as the application role, which may not.
async fn operator_hub(mut config: ServeConfig) -> anyhow::Result<crate::Hub> {
    telemetry::init();
    config.rate_limit.rate_limit = false;
    config.no_migrate = true;
    crate::Hub::build(
        &config,
        std::sync::Arc::new(renkei_schema::clock::SystemClock),
        None,
    )
    .await
}

/// `renkei export fhir`.
async fn export_fhir(args: ExportFhirArgs) -> anyhow::Result<()> {
    let hub = operator_hub(args.hub).await?;
    let exported = crate::fhir::export::run(hub.state.clone(), &args.api_key, &args.out).await;
    hub.finish().await;
    let e = exported?;
    let files: Vec<String> = e
        .files
        .iter()
        .map(|(ty, n)| format!("{ty}.ndjson {n}"))
        .collect();
    println!(
        "exported {} patients to {} ({}); {} not readable, skipped",
        e.patients,
        args.out.display(),
        files.join(", "),
        e.skipped
    );
    Ok(())
}

/// `renkei import fhir`.
async fn import_fhir(args: ImportFhirArgs) -> anyhow::Result<()> {
    let hub = operator_hub(args.hub).await?;
    let started = std::time::Instant::now();
    let summary = crate::fhir::import::run(
        hub.state.clone(),
        &args.api_key,
        crate::fhir::import::ImportOptions {
            paths: args.paths,
            register_patients: args.register_patients,
            journal: args.journal,
            jobs: args.jobs,
        },
    )
    .await;
    hub.finish().await;
    let s = summary?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {} resources in {} bundles in {:.1} s ({:.0} resources/s): {} created, {} already there; {} bundles skipped (in the journal), {} failed",
        s.resources,
        s.bundles,
        secs,
        s.resources as f64 / secs.max(1e-3),
        s.created,
        s.existing,
        s.skipped,
        s.failed
    );
    if s.context > 0 {
        println!(
            "{} lines read for context only (naming no patient: Organization, Practitioner …), not stored",
            s.context
        );
    }
    if s.failed > 0 {
        anyhow::bail!(
            "{} bundles or lines were not imported (reported above): none of their records was written (a patient registered with --register-patients stays registered); run the import again once mended",
            s.failed
        );
    }
    Ok(())
}

/// `renkei audit verify`.
async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let keys = crate::audit::verify_keys(&args.keys, args.demo)?;
    // `serve` says this through its log, which verify does not set up; the
    // verifier's copy of the keys matters as much as the hub's.
    if let Some(path) = &args.keys.audit_key_file
        && crate::config::readable_by_others(path)
    {
        eprintln!(
            "warning: {}: {}",
            path.display(),
            crate::config::KEY_FILE_READABLE
        );
    }
    // Checkpoints first: each names an entry committed before it was
    // written, so none may lie beyond the head the walk reads after.
    let checkpoints = crate::audit::read_checkpoints(
        &args.checkpoints,
        args.checkpoints_redis
            .as_deref()
            .map(|url| (url, args.redis_prefix.as_str())),
    )
    .await?;
    let sources = !args.checkpoints.is_empty() || args.checkpoints_redis.is_some();
    if sources && checkpoints.is_empty() {
        eprintln!("note: no checkpoints were found in the sources given");
    }
    let conn = db::connect(&args.database).await?;
    let v = renkei_schema::audit::chain::verify(&conn, &keys, &checkpoints)
        .await
        .context("verifying the audit log")?;
    if let Some((source, reason)) = v.bad_checkpoint {
        anyhow::bail!("audit checkpoint {source} is not valid: {reason}");
    }
    if let Some(b) = v.broken {
        anyhow::bail!(
            "audit log broken at entry {}: {} ({} entries before it verified)",
            b.seq,
            b.reason,
            v.entries
        );
    }
    println!("audit log intact: {} entries", v.entries);
    if v.legacy > 0 {
        println!(
            "note: entries 1–{} predate keyed signing (unkeyed SHA-256, which anyone with write access could have recomputed); the checkpoints taken since the upgrade vouch for them",
            v.legacy
        );
    }
    if sources {
        println!("checkpoints: {} matched", v.checkpoints);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn a_path_the_shell_would_split_is_quoted_so_it_reads_back_whole() {
        assert_eq!(
            shell_word("/opt/renkei/bin/renkei"),
            "/opt/renkei/bin/renkei"
        );
        assert_eq!(
            shell_word("/home/a b/target/debug/renkei"),
            "'/home/a b/target/debug/renkei'"
        );
        assert_eq!(shell_word("/tmp/it's/renkei"), r"'/tmp/it'\''s/renkei'");
        assert_eq!(shell_word("/tmp/$HOME"), "'/tmp/$HOME'");
    }
}

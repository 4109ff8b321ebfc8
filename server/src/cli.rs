//! The `renkei` command line.

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use renkei_schema::domain::{NAME_MAX, Profession, Text};

use crate::config::{AuthConfig, DatabaseConfig, ServeConfig};
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
    /// Start the hub (migrates the database first).
    Serve(ServeConfig),
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
        #[command(flatten)]
        database: DatabaseConfig,
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
pub enum AuditCommand {
    /// Check the audit log's hash chain; report the first entry where it breaks
    /// (exit status 1) or that it is intact.
    Verify(DatabaseConfig),
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
            let app = Application::build(config).await?;
            let addr = app.local_addr();
            tracing::info!(%addr, "renkei is listening");
            println!("renkei is listening on http://{addr}");
            println!(
                "  GraphiQL:  http://{addr}/   (GraphQL endpoint: POST http://{addr}/graphql)"
            );
            if demo && demo_key {
                println!("  Demo region loaded. Get a token for a demo member with");
                println!("    cargo run --release -p renkei-server -- demo-token physician");
                println!(
                    "  and add the header {{\"Authorization\": \"Bearer <token>\"}} in GraphiQL."
                );
            }
            app.run_until_stopped().await.context("serving HTTP")?;
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
            command: AuditCommand::Verify(config),
        } => {
            let conn = db::connect(&config).await?;
            let v = renkei_schema::audit::chain::verify(&conn)
                .await
                .map_err(|e| anyhow::anyhow!("verifying the audit log: {}", e.message()))?;
            match v.broken {
                None => {
                    println!("audit log intact: {} entries", v.entries);
                    Ok(())
                }
                Some(b) => anyhow::bail!(
                    "audit log broken at entry {}: {} ({} entries before it verified)",
                    b.seq,
                    b.reason,
                    v.entries
                ),
            }
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
            database,
        } => {
            telemetry::init();
            let org = Text::parse("--organization-name", &organization_name, NAME_MAX)
                .map_err(|e| anyhow::anyhow!(e.message()))?;
            let name =
                Text::parse("--name", &name, NAME_MAX).map_err(|e| anyhow::anyhow!(e.message()))?;
            let conn = db::connect_and_migrate(&database).await?;
            let (org_id, member_id) =
                renkei_schema::services::members::unchecked_bootstrap_admin(&conn, org, name)
                    .await
                    .map_err(|e| anyhow::anyhow!("creating the administrator: {}", e.message()))?;
            println!("organization {org_id}");
            println!("member {member_id}");
            eprintln!(
                "Issue this member a JWT (subject = the member id) from your identity provider."
            );
            Ok(())
        }
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

//! Database connection, migrations, and the application role.
//!
//! In production on PostgreSQL two roles are used: the owner, who runs
//! `renkei migrate` (and owns the tables, so could disable the audit log's
//! triggers), and an application role for `renkei serve --no-migrate` with
//! only the privileges the hub needs — on `audit_log` INSERT and SELECT,
//! nothing else ([`grant_sql`], `renkei db grant`).

use std::time::Duration;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, Statement,
    TransactionTrait,
};

use crate::config::DatabaseConfig;

/// Connects and applies pending migrations.
pub async fn connect_and_migrate(config: &DatabaseConfig) -> anyhow::Result<DatabaseConnection> {
    let db = connect(config).await?;
    if let Err(e) = Migrator::up(&db, None).await {
        // The usual cause in production: the application role, which may
        // not change the schema, started without --no-migrate.
        let hint = if e.to_string().contains("permission denied") {
            " — this role may not change the schema: run `renkei migrate` as the database owner, and serve as the application role with --no-migrate (RENKEI_NO_MIGRATE)"
        } else {
            ""
        };
        return Err(anyhow::Error::new(e).context(format!("applying database migrations{hint}")));
    }
    Ok(db)
}

/// Connects without migrating, and refuses a database with pending
/// migrations: `renkei serve --no-migrate` runs as a role that may not
/// change the schema, after the owner ran `renkei migrate`.
pub async fn connect_migrated(config: &DatabaseConfig) -> anyhow::Result<DatabaseConnection> {
    let db = connect(config).await?;
    let pending = Migrator::get_pending_migrations_read_only(&db)
        .await
        .context("reading which migrations the database has")?;
    if !pending.is_empty() {
        let names: Vec<&str> = pending.iter().map(|m| m.name()).collect();
        anyhow::bail!(
            "the database has {} pending migration(s) ({}); with --no-migrate (RENKEI_NO_MIGRATE) the hub does not migrate: run `renkei migrate` as the database owner first",
            names.len(),
            names.join(", ")
        );
    }
    Ok(db)
}

/// On PostgreSQL, warns when the hub's role could change or remove audit
/// entries (it owns `audit_log`, is a superuser, or may UPDATE, DELETE or
/// TRUNCATE it): fine for trying the hub out, not for production. Reports
/// as suspected tampering an `audit_log` that hides entries from the hub's
/// queries (row-level security, a view in its place).
pub async fn warn_if_audit_log_is_writable(db: &DatabaseConnection) {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return;
    }
    let sql = "SELECT (has_table_privilege('audit_log', 'UPDATE') \
                 OR has_table_privilege('audit_log', 'DELETE') \
                 OR has_table_privilege('audit_log', 'TRUNCATE') \
                 OR pg_has_role((SELECT tableowner FROM pg_tables WHERE tablename = 'audit_log' AND schemaname = current_schema()), 'MEMBER')) AS writable";
    let writable = db
        .query_one_raw(Statement::from_string(DatabaseBackend::Postgres, sql))
        .await
        .ok()
        .flatten()
        .and_then(|row| row.try_get::<bool>("", "writable").ok());
    if let Ok(Some(reason)) = renkei_schema::audit::chain::hidden_from_queries(db).await {
        tracing::error!("AUDIT LOG TAMPERING SUSPECTED: {reason}. Run `renkei audit verify`");
    }
    if writable == Some(true) {
        tracing::warn!(
            "the hub's database role can change or remove audit entries (it owns audit_log or may UPDATE, DELETE or TRUNCATE it). In production run `renkei migrate` as the owner and `renkei serve --no-migrate` as the role `renkei db grant` creates"
        );
    }
}

pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<DatabaseConnection> {
    let url = &config.database_url;
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        anyhow::bail!(
            "unsupported database URL {url:?}: use sqlite://FILE?mode=rwc or postgres://USER@HOST/DB"
        );
    }
    let acquire_timeout = config.acquire_timeout()?;
    let mut opts = ConnectOptions::new(url.clone());
    // An in-memory SQLite database exists per connection: more than one pooled
    // connection would each see an empty database.
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    opts.max_connections(if in_memory {
        1
    } else {
        config.database_max_connections
    })
    // sqlx bounds connecting and acquiring with one deadline (sea-orm maps
    // `connect_timeout` onto it too): a request waits at most this long for
    // a connection, so an outage fails requests fast (DATABASE_UNAVAILABLE).
    .acquire_timeout(acquire_timeout)
    .sqlx_logging(false)
    .map_sqlx_sqlite_opts(|o| {
        // WAL lets readers proceed while the single writer writes; the busy
        // timeout makes a second writer wait instead of failing at once.
        o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
    });
    // At start the database may still be coming up (a host booting, a
    // container starting beside it): wait for it a while, as the 10 s
    // acquire timeout of earlier versions did, rather than give up after one
    // short acquire timeout.
    let started = std::time::Instant::now();
    loop {
        match Database::connect(opts.clone()).await {
            Ok(db) => return Ok(db),
            Err(e)
                if renkei_schema::error::database_unavailable(&e)
                    && started.elapsed() < STARTUP_WAIT =>
            {
                tracing::warn!(error = %e, "the database is not reachable yet; trying again");
                tokio::time::sleep(STARTUP_RETRY).await;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e))
                    .with_context(|| format!("connecting to the database at {}", redact(url)));
            }
        }
    }
}

/// How long the hub waits for an unreachable database when it starts.
const STARTUP_WAIT: Duration = Duration::from_secs(10);
/// The pause between two attempts to reach it at start.
const STARTUP_RETRY: Duration = Duration::from_millis(500);

/// Tables the application role gets special treatment on; every other
/// table of the schema gets SELECT, INSERT and UPDATE (the hub never
/// deletes: removal is a status, history is kept).
const AUDIT_LOG: &str = "audit_log";
const AUDIT_HEAD: &str = "audit_head";
const MIGRATIONS: &str = "seaql_migrations";

/// What `renkei db grant` is asked to do.
#[derive(Debug, Clone)]
pub struct GrantRequest {
    pub role: String,
    /// Create the role with this password (LOGIN); `None` creates it
    /// without one (for peer or certificate authentication).
    pub password: Option<String>,
    /// The role exists: only grant (its attributes and password stay).
    pub existing_role: bool,
}

/// A role name the hub will put into SQL: lower-case letters, digits and
/// underscores, as PostgreSQL folds unquoted names.
pub fn parse_role_name(name: &str) -> anyhow::Result<String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok || name.starts_with("pg_") {
        anyhow::bail!(
            "--role {name:?} is not a usable role name: use lower-case letters, digits and '_' (at most 63, not starting with a digit or pg_)"
        );
    }
    Ok(name.to_string())
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The statements that create (or re-grant) the application role, for the
/// tables of `schema` in `database`. `mask` replaces the password with a
/// placeholder (for printing). Granting is exact: earlier privileges of the
/// role on the schema's tables are revoked first, so running it again after
/// a migration (new tables) or over a role with too much leaves exactly
/// these.
pub fn grant_sql(
    request: &GrantRequest,
    database: &str,
    schema: &str,
    tables: &[String],
    mask: bool,
) -> Vec<String> {
    let role = quote_ident(&request.role);
    let schema_q = quote_ident(schema);
    let mut sql = Vec::new();
    if !request.existing_role {
        let password = match &request.password {
            Some(_) if mask => " PASSWORD '********'".to_string(),
            Some(p) => format!(" PASSWORD {}", quote_literal(p)),
            None => String::new(),
        };
        sql.push(format!(
            "CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS{password}"
        ));
    }
    sql.push(format!(
        "GRANT CONNECT ON DATABASE {} TO {role}",
        quote_ident(database)
    ));
    sql.push(format!("GRANT USAGE ON SCHEMA {schema_q} TO {role}"));
    sql.push(format!("REVOKE CREATE ON SCHEMA {schema_q} FROM {role}"));
    sql.push(format!(
        "REVOKE ALL ON ALL TABLES IN SCHEMA {schema_q} FROM {role}"
    ));
    sql.push(format!(
        "REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema_q} FROM {role}"
    ));
    let qualified = |t: &str| format!("{schema_q}.{}", quote_ident(t));
    let ordinary: Vec<String> = tables
        .iter()
        .filter(|t| ![AUDIT_LOG, AUDIT_HEAD, MIGRATIONS].contains(&t.as_str()))
        .map(|t| qualified(t))
        .collect();
    if !ordinary.is_empty() {
        sql.push(format!(
            "GRANT SELECT, INSERT, UPDATE ON {} TO {role}",
            ordinary.join(", ")
        ));
    }
    // Reading which migrations ran (`serve --no-migrate` checks); never
    // recording one.
    if tables.iter().any(|t| t == MIGRATIONS) {
        sql.push(format!(
            "GRANT SELECT ON {} TO {role}",
            qualified(MIGRATIONS)
        ));
    }
    // The log: append and read. No UPDATE, DELETE or TRUNCATE, and not the
    // owner, so the role cannot disable the triggers either.
    sql.push(format!(
        "GRANT SELECT, INSERT ON {} TO {role}",
        qualified(AUDIT_LOG)
    ));
    // The head: read, and move its number and hash — not the boundary of
    // the entries written before keyed signing (`legacy_seq`).
    sql.push(format!(
        "GRANT SELECT ON {} TO {role}",
        qualified(AUDIT_HEAD)
    ));
    sql.push(format!(
        "GRANT UPDATE (seq, hash) ON {} TO {role}",
        qualified(AUDIT_HEAD)
    ));
    sql.push(format!(
        "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema_q} TO {role}"
    ));
    sql
}

/// `renkei db grant`: checks the database and the role, then returns the
/// statements (password masked) after applying them — or without applying
/// them when `apply` is false.
pub async fn grant(
    db: &DatabaseConnection,
    request: &GrantRequest,
    apply: bool,
) -> anyhow::Result<Vec<String>> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        anyhow::bail!(
            "renkei db grant is for PostgreSQL: a SQLite database is one file, protected by its file permissions (see docs/audit-log.md)"
        );
    }
    if request.existing_role && request.password.is_some() {
        anyhow::bail!(
            "--existing-role grants to a role as it is; set its password with ALTER ROLE, not --password"
        );
    }
    let pending = Migrator::get_pending_migrations_read_only(db).await?;
    if !pending.is_empty() {
        anyhow::bail!(
            "the database has pending migrations: run `renkei migrate` first, so that the grants cover every table"
        );
    }
    let pg = DatabaseBackend::Postgres;
    let row = db
        .query_one_raw(Statement::from_string(
            pg,
            "SELECT current_database() AS db, current_schema() AS schema",
        ))
        .await?
        .context("reading the current database")?;
    let database: String = row.try_get("", "db")?;
    let schema: String = row.try_get("", "schema")?;
    let tables: Vec<String> = db
        .query_all_raw(Statement::from_sql_and_values(
            pg,
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename",
            [schema.clone().into()],
        ))
        .await?
        .iter()
        .map(|r| r.try_get::<String>("", "tablename"))
        .collect::<Result<_, _>>()?;
    if !tables.iter().any(|t| t == AUDIT_LOG) || !tables.iter().any(|t| t == AUDIT_HEAD) {
        anyhow::bail!(
            "no audit_log in schema {schema:?} of {database:?}: run `renkei migrate` on this database first"
        );
    }
    let existing = db
        .query_one_raw(Statement::from_sql_and_values(
            pg,
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1",
            [request.role.clone().into()],
        ))
        .await?;
    match (&existing, request.existing_role) {
        (Some(_), false) => anyhow::bail!(
            "the role {:?} exists already: pass --existing-role to grant to it (its password and attributes stay as they are)",
            request.role
        ),
        (None, true) => anyhow::bail!(
            "the role {:?} does not exist: leave out --existing-role to create it",
            request.role
        ),
        _ => {}
    }
    if let Some(row) = &existing
        && (row.try_get::<bool>("", "rolsuper")? || row.try_get::<bool>("", "rolbypassrls")?)
    {
        anyhow::bail!(
            "the role {:?} is a superuser (or bypasses row security): privileges do not bind it; use a plain role",
            request.role
        );
    }
    let owned: Vec<String> = if existing.is_none() {
        Vec::new()
    } else {
        db.query_all_raw(Statement::from_sql_and_values(
            pg,
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND pg_has_role($2, tableowner, 'MEMBER') ORDER BY tablename",
            [schema.clone().into(), request.role.clone().into()],
        ))
        .await?
        .iter()
        .map(|r| r.try_get::<String>("", "tablename"))
        .collect::<Result<_, _>>()?
    };
    if !owned.is_empty() {
        anyhow::bail!(
            "the role {:?} owns (or is a member of the owner of) {}: an owner can disable the audit log's triggers. The application role must be another role than the one that runs `renkei migrate`",
            request.role,
            owned.join(", ")
        );
    }
    let shown = grant_sql(request, &database, &schema, &tables, true);
    if apply {
        let real = grant_sql(request, &database, &schema, &tables, false);
        let txn = db.begin().await?;
        // Messages quote the masked statement: never the password.
        for (statement, masked) in real.iter().zip(&shown) {
            txn.execute_unprepared(statement)
                .await
                .with_context(|| format!("running: {masked}"))?;
        }
        txn.commit().await?;
    }
    Ok(shown)
}

/// Hides a password in a database URL before it is logged.
fn redact(url: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_application_role_may_append_to_the_log_but_not_change_it() {
        let request = GrantRequest {
            role: "renkei_app".into(),
            password: Some("it's secret".into()),
            existing_role: false,
        };
        let tables: Vec<String> = ["audit_head", "audit_log", "patients", "seaql_migrations"]
            .map(String::from)
            .to_vec();
        let sql = grant_sql(&request, "renkei", "public", &tables, false).join(";\n");
        assert!(sql.contains("PASSWORD 'it''s secret'"), "{sql}");
        assert!(
            sql.contains("GRANT SELECT, INSERT ON \"public\".\"audit_log\" TO \"renkei_app\""),
            "{sql}"
        );
        assert!(
            sql.contains("GRANT SELECT, INSERT, UPDATE ON \"public\".\"patients\" TO"),
            "{sql}"
        );
        assert!(
            sql.contains("GRANT UPDATE (seq, hash) ON \"public\".\"audit_head\""),
            "{sql}"
        );
        assert!(!sql.contains("DELETE"), "{sql}");
        assert!(!sql.contains("TRUNCATE"), "{sql}");
        let printed = grant_sql(&request, "renkei", "public", &tables, true).join(";\n");
        assert!(!printed.contains("secret"), "{printed}");
    }

    #[test]
    fn role_names_are_plain_identifiers() {
        assert!(parse_role_name("renkei_app").is_ok());
        for bad in [
            "",
            "Renkei",
            "1abc",
            "a-b",
            "pg_app",
            "x\"; DROP TABLE audit_log; --",
        ] {
            assert!(parse_role_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}

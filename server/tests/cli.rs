//! The `renkei` command line, run as a real process.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn renkei(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_renkei"));
    cmd.args(args);
    // The developer's own environment must not leak into these runs.
    for (key, _) in std::env::vars() {
        if key.starts_with("RENKEI_") {
            cmd.env_remove(key);
        }
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("renkei runs")
}

/// An audit key for the runs that need one (`ID:SECRET`).
const AUDIT_KEY: &str = "cli:cli-test-audit-key-0123456789abcdef012345";

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_committed_schema_matches_the_generated_one() {
    let out = renkei(&["schema"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql"))
            .expect("schema.graphql at the repository root");
    assert!(
        stdout(&out) == committed,
        "schema.graphql is out of date: run `cargo run -p renkei-server -- schema > schema.graphql`"
    );
}

#[test]
fn demo_token_prints_a_jwt_for_a_known_profession() {
    for profession in ["physician", "care-manager", "CARE_WORKER", "ems_crew"] {
        let out = renkei(&["demo-token", profession], &[]);
        assert!(out.status.success(), "{profession}: {}", stderr(&out));
        let token = stdout(&out);
        assert_eq!(
            token.trim().split('.').count(),
            3,
            "{profession}: a JWT has three parts"
        );
    }
}

#[test]
fn demo_token_refuses_an_unknown_profession_and_lists_the_known_ones() {
    let out = renkei(&["demo-token", "astronaut"], &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("unknown profession \"astronaut\""), "{err}");
    assert!(err.contains("care-manager"), "{err}");
}

#[test]
fn demo_token_refuses_when_the_demo_key_is_not_in_use() {
    let out = renkei(
        &["demo-token", "physician"],
        &[(
            "RENKEI_JWT_SECRET",
            "an-operator-secret-0123456789abcdef0123",
        )],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("demo key is not in use"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty(), "no token is printed");
}

#[test]
fn seed_demo_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("demo.db").display());
    let first = renkei(&["seed-demo"], &[("RENKEI_DATABASE_URL", &url)]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("200 patients"),
        "{}",
        stdout(&first)
    );
    let second = renkei(&["seed-demo"], &[("RENKEI_DATABASE_URL", &url)]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stdout(&second).contains(
            "0 organisations, 0 members, 0 patients, 0 identifiers, 0 care-team memberships"
        ),
        "{}",
        stdout(&second)
    );
}

#[test]
fn migrate_applies_migrations_to_a_new_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let out = renkei(&["migrate"], &[("RENKEI_DATABASE_URL", &url)]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Migrating again is a no-op, not an error.
    let again = renkei(&["migrate"], &[("RENKEI_DATABASE_URL", &url)]);
    assert!(again.status.success(), "{}", stderr(&again));
}

#[test]
fn an_unsupported_database_url_is_refused_with_advice() {
    let out = renkei(
        &["migrate"],
        &[("RENKEI_DATABASE_URL", "mysql://localhost/x")],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unsupported database URL"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn serve_refuses_to_start_without_a_key_outside_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    let out = renkei(
        &["serve", "--listen", "127.0.0.1:0"],
        &[
            ("RENKEI_DATABASE_URL", &url),
            ("RENKEI_AUDIT_KEY", AUDIT_KEY),
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no JWT key configured"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn serve_refuses_a_short_hs256_secret() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    let out = renkei(
        &["serve", "--listen", "127.0.0.1:0"],
        &[
            ("RENKEI_DATABASE_URL", &url),
            ("RENKEI_JWT_SECRET", "short"),
            ("RENKEI_AUDIT_KEY", AUDIT_KEY),
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("at least 32"), "{}", stderr(&out));
}

#[test]
fn serve_refuses_a_cors_origin_that_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    for (value, named) in [
        (
            "https://portal.example.jp,portal.example.jp",
            "\"portal.example.jp\"",
        ),
        (
            "https://portal.example.jp/app",
            "\"https://portal.example.jp/app\"",
        ),
        ("*", "\"*\""),
        ("", "\"\""),
    ] {
        let out = renkei(
            &["serve", "--listen", "127.0.0.1:0"],
            &[
                ("RENKEI_DATABASE_URL", &url),
                (
                    "RENKEI_JWT_SECRET",
                    "cli-test-secret-0123456789abcdef0123456789",
                ),
                ("RENKEI_AUDIT_KEY", AUDIT_KEY),
                ("RENKEI_CORS_ALLOWED_ORIGINS", value),
            ],
        );
        assert!(!out.status.success(), "{value}");
        let err = stderr(&out);
        assert!(
            err.contains(named) && err.contains("RENKEI_CORS_ALLOWED_ORIGINS"),
            "{value}: {err}"
        );
    }
}

#[test]
fn add_admin_creates_an_administrator() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    let out = renkei(
        &[
            "add-admin",
            "--organization-name",
            "みなみ野市在宅医療介護連携支援センター",
            "--name",
            "管理 一郎",
        ],
        &[("RENKEI_DATABASE_URL", &url)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("member "), "{}", stdout(&out));
    let empty = renkei(
        &["add-admin", "--organization-name", " ", "--name", "x"],
        &[("RENKEI_DATABASE_URL", &url)],
    );
    assert!(!empty.status.success());
    assert!(
        stderr(&empty).contains("--organization-name: must not be empty"),
        "{}",
        stderr(&empty)
    );
}

#[cfg(unix)]
#[test]
fn serve_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_renkei"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RENKEI_DATABASE_URL", &url)
        .env(
            "RENKEI_JWT_SECRET",
            "an-operator-secret-0123456789abcdef0123",
        )
        .env("RENKEI_AUDIT_KEY", AUDIT_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it listens (it prints its address).
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 256];
    let started = Instant::now();
    let mut seen = String::new();
    while !seen.contains("listening") && started.elapsed() < Duration::from_secs(30) {
        use std::io::Read;
        let n = out.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("listening"), "{seen}");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(code) = child.try_wait().unwrap() {
            assert!(code.success(), "exit status after SIGTERM: {code}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_committed_access_policy_document_matches_the_policy() {
    let out = renkei(&["access-policy"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/access-policy.md"
    ))
    .expect("docs/access-policy.md");
    assert!(
        stdout(&out) == committed,
        "docs/access-policy.md is out of date: run `cargo run -p renkei-server -- access-policy > docs/access-policy.md`"
    );
}

#[test]
fn audit_verify_reports_an_intact_log() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("v.db").display());
    assert!(
        renkei(&["migrate"], &[("RENKEI_DATABASE_URL", &url)])
            .status
            .success()
    );
    let out = renkei(
        &["audit", "verify"],
        &[
            ("RENKEI_DATABASE_URL", &url),
            ("RENKEI_AUDIT_KEY", AUDIT_KEY),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "audit log intact: 0 entries");
}

// ---- the audit log's keys, checkpoints and the application role ----

/// A `renkei serve` process; its stdout and stderr go to files in `dir`.
struct Server {
    child: std::process::Child,
    addr: String,
    stdout: std::path::PathBuf,
    stderr: std::path::PathBuf,
}

impl Server {
    fn start(dir: &std::path::Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
        Self::start_with(dir, args, envs, |_| {})
    }

    /// [`Server::start`], with a last say on the command (`configure`).
    fn start_with(
        dir: &std::path::Path,
        args: &[&str],
        envs: &[(&str, &str)],
        configure: impl FnOnce(&mut Command),
    ) -> Server {
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let stdout = dir.join(format!("serve-{n}.out"));
        let stderr = dir.join(format!("serve-{n}.err"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_renkei"));
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args);
        for (key, _) in std::env::vars() {
            if key.starts_with("RENKEI_") {
                cmd.env_remove(key);
            }
        }
        cmd.envs(envs.iter().copied())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        configure(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let started = Instant::now();
        loop {
            let out = std::fs::read_to_string(&stdout).unwrap_or_default();
            if let Some(rest) = out.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap().to_string();
                return Server {
                    child,
                    addr,
                    stdout,
                    stderr,
                };
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "serve exited ({status}): {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "serve did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// POSTs a GraphQL query over plain HTTP/1.1 and returns the body.
    fn graphql(&self, token: &str, query: &str) -> String {
        use std::io::{Read, Write};
        let body = serde_json::json!({ "query": query }).to_string();
        let mut stream = std::net::TcpStream::connect(&self.addr).unwrap();
        write!(
            stream,
            "POST /graphql HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    /// SIGTERM, and waits until the process has ended (after its last
    /// checkpoint).
    fn stop(mut self) -> (String, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "serve did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        (
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        )
    }
}

const JWT_SECRET: &str = "an-operator-secret-0123456789abcdef0123";

/// A token for a member, signed with [`JWT_SECRET`].
fn token(member: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "sub": member, "iss": "renkei", "aud": "renkei", "iat": now, "exp": now + 600 }),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// Migrates the database at `url` and adds an administrator; returns the
/// administrator's member id.
fn database_with_admin(url: &str) -> String {
    let out = renkei(&["migrate"], &[("RENKEI_DATABASE_URL", url)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = renkei(
        &[
            "add-admin",
            "--organization-name",
            "監査 センター",
            "--name",
            "監査 太郎",
        ],
        &[("RENKEI_DATABASE_URL", url)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("member "))
        .unwrap()
        .trim()
        .to_string()
}

/// A PostgreSQL database of the test's own, when `RENKEI_TEST_DATABASE_URL`
/// names a server (as for the end-to-end tests); dropped at the end.
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    fn run(sql: &str, url: &str) {
        use sea_orm::ConnectionTrait;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let db = sea_orm::Database::connect(url).await.unwrap();
            db.execute_unprepared(sql).await.unwrap();
            db.close().await.ok();
        });
    }

    fn create() -> Option<PgDatabase> {
        let admin_url = std::env::var("RENKEI_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())?;
        let name = format!("renkei_cli_{}", uuid::Uuid::new_v4().simple());
        Self::run(&format!("CREATE DATABASE {name}"), &admin_url);
        let (base, _) = admin_url.rsplit_once('/').unwrap();
        let url = format!("{base}/{name}");
        Some(PgDatabase {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        Self::run(
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            &self.admin_url,
        );
    }
}

/// Reading the log is itself audited: each call appends one entry.
const READ_THE_LOG: &str = "{ auditLog(first: 1) { edges { node { seq } } } }";

#[test]
fn a_rotated_key_verifies_with_both_keys_and_names_the_missing_one_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("hub.db").display());
    a_rotated_key_verifies_with_both_keys_and_names_the_missing_one(dir.path(), &url);
}

#[test]
fn a_rotated_key_verifies_with_both_keys_and_names_the_missing_one_postgres() {
    let Some(database) = PgDatabase::create() else {
        eprintln!("PostgreSQL run skipped: RENKEI_TEST_DATABASE_URL is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    a_rotated_key_verifies_with_both_keys_and_names_the_missing_one(dir.path(), &database.url);
}

fn a_rotated_key_verifies_with_both_keys_and_names_the_missing_one(
    dir: &std::path::Path,
    url: &str,
) {
    let url = url.to_string();
    let admin = database_with_admin(&url);
    let checkpoints = dir.join("checkpoints.jsonl");
    let cp = checkpoints.to_str().unwrap();
    let old = "2026-11:first-key-0123456789abcdef0123456789abcdef";
    let new = "2026-12:second-key-0123456789abcdef0123456789abcdef";
    let common = [
        ("RENKEI_DATABASE_URL", url.as_str()),
        ("RENKEI_JWT_SECRET", JWT_SECRET),
        ("RENKEI_AUDIT_CHECKPOINT_FILE", cp),
        ("RENKEI_AUDIT_CHECKPOINT_SECONDS", "3600"),
    ];

    let first = Server::start(
        dir,
        &["--no-migrate"],
        &[&common[..], &[("RENKEI_AUDIT_KEY", old)]].concat(),
    );
    for _ in 0..2 {
        let response = first.graphql(&token(&admin), READ_THE_LOG);
        assert!(response.contains("\"auditLog\""), "{response}");
    }
    first.stop();

    // The rotation: the new key signs, the old one is kept for verifying,
    // this time from a key file.
    let key_file = dir.join("audit.keys");
    std::fs::write(&key_file, format!("# rotated in December\n{new}\n{old}\n")).unwrap();
    let second = Server::start(
        dir,
        &["--no-migrate"],
        &[
            &common[..],
            &[("RENKEI_AUDIT_KEY_FILE", key_file.to_str().unwrap())],
        ]
        .concat(),
    );
    for _ in 0..2 {
        second.graphql(&token(&admin), READ_THE_LOG);
    }
    second.stop();

    // Both keys: intact, and every checkpoint is in the log.
    let both = format!("{new},{old}");
    let out = renkei(
        &["audit", "verify", "--checkpoints", cp],
        &[("RENKEI_DATABASE_URL", &url), ("RENKEI_AUDIT_KEY", &both)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("audit log intact: 4 entries"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("checkpoints: "), "{}", stdout(&out));
    // The last checkpoint was written at shutdown, of the last entry, with
    // the new key.
    let last: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&checkpoints)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(last["seq"], 4);
    assert_eq!(last["key_id"], "2026-12");

    // Without the old key: the first entry it signed is named, with its id.
    let out = renkei(
        &["audit", "verify"],
        &[("RENKEI_DATABASE_URL", &url), ("RENKEI_AUDIT_KEY", new)],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("broken at entry 1"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("key id \"2026-11\", which is not configured"),
        "{}",
        stderr(&out)
    );
    // Without the new one: entry 3 and the checkpoints signed with it.
    let out = renkei(
        &["audit", "verify"],
        &[("RENKEI_DATABASE_URL", &url), ("RENKEI_AUDIT_KEY", old)],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("broken at entry 3"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("\"2026-12\""), "{}", stderr(&out));
    let out = renkei(
        &["audit", "verify", "--checkpoints", cp],
        &[("RENKEI_DATABASE_URL", &url), ("RENKEI_AUDIT_KEY", old)],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("checkpoint"), "{}", stderr(&out));
    assert!(stderr(&out).contains("\"2026-12\""), "{}", stderr(&out));
}

#[test]
fn serve_refuses_to_start_without_an_audit_key_outside_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("k.db").display());
    let base = [
        ("RENKEI_DATABASE_URL", url.as_str()),
        ("RENKEI_JWT_SECRET", JWT_SECRET),
    ];
    let out = renkei(&["serve", "--listen", "127.0.0.1:0"], &base);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no audit key configured"),
        "{}",
        stderr(&out)
    );
    for (key, refusal) in [
        ("k:short", "at least 32"),
        ("no-id-0123456789abcdef0123456789abcdef", "ID:SECRET"),
        (
            &format!("demo:{}", renkei_schema::audit::keys::DEMO_SECRET) as &str,
            "public demo key",
        ),
    ] {
        let out = renkei(
            &["serve", "--listen", "127.0.0.1:0"],
            &[&base[..], &[("RENKEI_AUDIT_KEY", key)]].concat(),
        );
        assert!(!out.status.success(), "{key}");
        assert!(stderr(&out).contains(refusal), "{key}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("0123456789abcdef"),
            "no secret in {}",
            stderr(&out)
        );
    }
    let key_file = dir.path().join("keys");
    std::fs::write(&key_file, AUDIT_KEY).unwrap();
    let out = renkei(
        &["serve", "--listen", "127.0.0.1:0"],
        &[
            &base[..],
            &[
                ("RENKEI_AUDIT_KEY", AUDIT_KEY),
                ("RENKEI_AUDIT_KEY_FILE", key_file.to_str().unwrap()),
            ],
        ]
        .concat(),
    );
    assert!(stderr(&out).contains("not both"), "{}", stderr(&out));
}

#[test]
fn the_demo_signs_with_the_public_demo_key_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("d.db").display());
    let server = Server::start(dir.path(), &["--demo"], &[("RENKEI_DATABASE_URL", &url)]);
    let (out, err) = server.stop();
    assert!(
        out.contains("WARNING: the audit log is signed with the public demo key"),
        "{out}"
    );
    assert!(err.contains("PUBLIC DEMO KEY"), "{err}");
    // Verifying a demo database takes --demo (or the key) explicitly.
    let verify = renkei(&["audit", "verify"], &[("RENKEI_DATABASE_URL", &url)]);
    assert!(!verify.status.success());
    assert!(
        stderr(&verify).contains("needs the audit key"),
        "{}",
        stderr(&verify)
    );
    let verify = renkei(
        &["audit", "verify", "--demo"],
        &[("RENKEI_DATABASE_URL", &url)],
    );
    assert!(verify.status.success(), "{}", stderr(&verify));
}

#[test]
fn serve_no_migrate_refuses_a_database_with_pending_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("n.db").display());
    let env = [
        ("RENKEI_DATABASE_URL", url.as_str()),
        ("RENKEI_JWT_SECRET", JWT_SECRET),
        ("RENKEI_AUDIT_KEY", AUDIT_KEY),
    ];
    let out = renkei(&["serve", "--listen", "127.0.0.1:0", "--no-migrate"], &env);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("pending migration"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("renkei migrate"), "{}", stderr(&out));
    // The same through the environment.
    let out = renkei(
        &["serve", "--listen", "127.0.0.1:0"],
        &[&env[..], &[("RENKEI_NO_MIGRATE", "true")]].concat(),
    );
    assert!(
        stderr(&out).contains("pending migration"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn db_grant_is_for_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
    assert!(
        renkei(&["migrate"], &[("RENKEI_DATABASE_URL", &url)])
            .status
            .success()
    );
    let out = renkei(&["db", "grant"], &[("RENKEI_DATABASE_URL", &url)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("for PostgreSQL"), "{}", stderr(&out));
    let out = renkei(
        &["db", "grant", "--role", "Robert'); DROP TABLE x;--"],
        &[("RENKEI_DATABASE_URL", &url)],
    );
    assert!(
        stderr(&out).contains("not a usable role name"),
        "{}",
        stderr(&out)
    );
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_warned_about_by_serve_and_verify() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
    assert!(
        renkei(&["migrate"], &[("RENKEI_DATABASE_URL", &url)])
            .status
            .success()
    );
    let key_file = dir.path().join("audit.keys");
    std::fs::write(&key_file, format!("# the audit key\n{AUDIT_KEY}\n")).unwrap();
    let env = [
        ("RENKEI_DATABASE_URL", url.as_str()),
        ("RENKEI_JWT_SECRET", JWT_SECRET),
        ("RENKEI_AUDIT_KEY_FILE", key_file.to_str().unwrap()),
    ];
    let secret = AUDIT_KEY.split_once(':').unwrap().1;
    for (mode, warned) in [(0o644, true), (0o600, false)] {
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(mode)).unwrap();
        let verify = renkei(&["audit", "verify"], &env);
        assert!(verify.status.success(), "{}", stderr(&verify));
        let server = Server::start(dir.path(), &[], &env);
        let (out, err) = server.stop();
        for (what, text) in [("verify", stderr(&verify)), ("serve", err)] {
            assert_eq!(
                text.contains("chmod 600"),
                warned,
                "{what} with mode {mode:o}: {text}"
            );
            assert!(!text.contains(secret), "{what} logged the secret: {text}");
        }
        assert!(!out.contains(secret), "{out}");
    }
}

#[test]
fn serve_as_the_application_role_without_no_migrate_says_what_to_do() {
    let Some(database) = PgDatabase::create() else {
        eprintln!("PostgreSQL run skipped: RENKEI_TEST_DATABASE_URL is not set");
        return;
    };
    let role = format!("renkei_cli_app_{}", uuid::Uuid::new_v4().simple());
    let owner = [("RENKEI_DATABASE_URL", database.url.as_str())];
    assert!(renkei(&["migrate"], &owner).status.success());
    let out = renkei(&["db", "grant", "--role", &role], &owner);
    assert!(out.status.success(), "{}", stderr(&out));
    let (base, name) = database.url.rsplit_once('/').unwrap();
    let as_role = base.replacen("postgres@", &format!("{role}@"), 1) + "/" + name;
    assert_ne!(as_role, database.url);
    let env = [
        ("RENKEI_DATABASE_URL", as_role.as_str()),
        ("RENKEI_JWT_SECRET", JWT_SECRET),
        ("RENKEI_AUDIT_KEY", AUDIT_KEY),
    ];
    let out = renkei(&["serve", "--listen", "127.0.0.1:0"], &env);
    let err = stderr(&out);
    PgDatabase::run(&format!("DROP OWNED BY {role}; "), &database.url);
    drop(database);
    let admin = std::env::var("RENKEI_TEST_DATABASE_URL").unwrap();
    PgDatabase::run(&format!("DROP ROLE IF EXISTS {role}"), &admin);
    assert!(!out.status.success());
    assert!(err.contains("permission denied"), "{err}");
    assert!(err.contains("--no-migrate"), "{err}");
    assert!(err.contains("renkei migrate"), "{err}");
}

#[test]
fn serve_refuses_a_checkpoint_file_it_cannot_append_to() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
    let missing = dir.path().join("no-such-dir").join("checkpoints.jsonl");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_renkei"));
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    for (key, _) in std::env::vars() {
        if key.starts_with("RENKEI_") {
            cmd.env_remove(key);
        }
    }
    let err_file = dir.path().join("serve.err");
    let mut child = cmd
        .env("RENKEI_DATABASE_URL", &url)
        .env("RENKEI_JWT_SECRET", JWT_SECRET)
        .env("RENKEI_AUDIT_KEY", AUDIT_KEY)
        .env("RENKEI_AUDIT_CHECKPOINT_FILE", &missing)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_file).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = std::fs::read_to_string(&err_file).unwrap_or_default();
    assert!(
        status.is_some_and(|s| !s.success()),
        "serve started without anywhere to write its checkpoints: {err}"
    );
    assert!(err.contains("RENKEI_AUDIT_CHECKPOINT_FILE"), "{err}");
    assert!(err.contains("no-such-dir"), "{err}");
}

// ---- the start banner ----

/// Starts `renkei serve --demo` as a newcomer does — in an empty directory,
/// with nothing configured — and returns it with the command its banner
/// gives for a demo token. `started_by_cargo`: with the variables `cargo run`
/// sets for the process; otherwise without any of cargo's (which this test
/// inherits from `cargo test`), as a binary run directly.
fn demo_with_banner(dir: &std::path::Path, started_by_cargo: bool) -> (Server, String) {
    let server = Server::start_with(dir, &["--demo"], &[], |cmd| {
        cmd.current_dir(dir);
        for (key, _) in std::env::vars() {
            if key == "CARGO" || key.starts_with("CARGO_") {
                cmd.env_remove(key);
            }
        }
        if started_by_cargo {
            cmd.env("CARGO", "cargo")
                .env("CARGO_PKG_NAME", "renkei-server");
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = std::fs::read_to_string(&server.stdout).unwrap_or_default();
        if let Some(line) = out.lines().find(|l| l.contains("demo-token")) {
            return (server, line.trim().to_string());
        }
        assert!(Instant::now() < deadline, "no demo-token command in {out}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_start_banner_gives_a_demo_token_command_that_runs_the_same_binary() {
    let dir = tempfile::tempdir().unwrap();
    let (server, command) = demo_with_banner(dir.path(), false);
    let binary = std::fs::canonicalize(env!("CARGO_BIN_EXE_renkei")).unwrap();
    assert_eq!(
        command,
        format!("{} demo-token physician", binary.display()),
        "the banner names this binary"
    );
    // The line, as a newcomer pastes it into a shell, prints a token the
    // hub accepts.
    let mut shell = Command::new("sh");
    shell.args(["-c", &command]).current_dir(dir.path());
    for (key, _) in std::env::vars() {
        if key.starts_with("RENKEI_") {
            shell.env_remove(key);
        }
    }
    let out = shell.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_string();
    let response = server.graphql(&token, "{ me { member { profession } } }");
    assert!(response.contains("\"PHYSICIAN\""), "{response}");
    server.stop();
}

#[test]
fn started_by_cargo_run_the_banner_gives_cargo_run_with_the_same_profile() {
    let dir = tempfile::tempdir().unwrap();
    let (server, command) = demo_with_banner(dir.path(), true);
    server.stop();
    // This test and the binary are built with one profile.
    let expected = if cfg!(debug_assertions) {
        "cargo run -p renkei-server -- demo-token physician"
    } else {
        "cargo run --release -p renkei-server -- demo-token physician"
    };
    assert_eq!(command, expected);
}

#[test]
fn introspection_is_switched_off_by_renkei_introspection_and_a_bad_value_stops_the_start() {
    let out = renkei(
        &["serve", "--listen", "127.0.0.1:0", "--demo"],
        &[("RENKEI_INTROSPECTION", "perhaps")],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("perhaps") && err.contains("--introspection"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("i.db").display());
    let admin = database_with_admin(&url);
    let envs = [
        ("RENKEI_DATABASE_URL", url.as_str()),
        ("RENKEI_JWT_SECRET", JWT_SECRET),
        ("RENKEI_AUDIT_KEY", AUDIT_KEY),
    ];
    let query = "{ __schema { queryType { name } } }";
    let off = Server::start(
        dir.path(),
        &[],
        &[&envs[..], &[("RENKEI_INTROSPECTION", "off")]].concat(),
    );
    let response = off.graphql(&token(&admin), query);
    off.stop();
    assert!(response.contains("INTROSPECTION_DISABLED"), "{response}");
    let on = Server::start(dir.path(), &[], &envs);
    let response = on.graphql(&token(&admin), query);
    on.stop();
    assert!(
        response.contains("\"queryType\":{\"name\":\"Query\"}"),
        "{response}"
    );
}

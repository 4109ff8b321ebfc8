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
        &[("RENKEI_DATABASE_URL", &url)],
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
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("at least 32"), "{}", stderr(&out));
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
    let out = renkei(&["audit", "verify"], &[("RENKEI_DATABASE_URL", &url)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "audit log intact: 0 entries");
}

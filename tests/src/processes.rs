//! Processes a fault test owns and mistreats: a PostgreSQL cluster
//! ([`PrivatePostgres`]), a Redis server ([`PrivateRedis`]) and the hub
//! itself as the `renkei` binary ([`HubProcess`]). Each runs on a free port
//! in a temporary directory, can be stopped, started, frozen or killed at
//! will, and is removed when dropped.
//!
//! The PostgreSQL cluster is made with the machine's own PostgreSQL binaries
//! (`initdb`, `pg_ctl`; the newest `/usr/lib/postgresql/*/bin`, or the
//! folder `RENKEI_TEST_PG_BIN` names). PostgreSQL refuses to run as root:
//! when the tests run as root (as in CI), the cluster runs as the
//! `postgres` user (`runuser`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A port nobody listens on at the moment (the usual small race with
/// whoever takes it next is accepted in tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Waits (up to `within`) until something accepts connections on `port`.
async fn wait_for_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Sends `signal` (`KILL`, `STOP`, `CONT` …) to a process.
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill(1)");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

// ---- PostgreSQL ----

/// A PostgreSQL cluster of the test's own (`initdb` in a temporary
/// directory), listening on 127.0.0.1 on a free port, with the trusted
/// superuser `postgres`. [`PrivatePostgres::stop`] shuts it down as an
/// operator's restart would (`pg_ctl stop -m fast`: sessions are ended,
/// in-flight transactions roll back); [`PrivatePostgres::start`] brings it
/// back on the same port and data.
pub struct PrivatePostgres {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    /// Removed on drop, after the server is stopped.
    dir: tempfile::TempDir,
    running: bool,
}

impl PrivatePostgres {
    /// `initdb`, then starts the cluster and waits until it accepts
    /// connections.
    pub async fn create() -> PrivatePostgres {
        let bin = postgres_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        if running_as_root() {
            // The server runs as `postgres`, which must own its directory.
            let status = std::process::Command::new("chown")
                .args(["postgres:postgres", &dir.path().display().to_string()])
                .status()
                .expect("chown");
            assert!(
                status.success(),
                "chown postgres (is there a postgres user?)"
            );
        }
        let data = dir.path().join("data");
        let mut pg = PrivatePostgres {
            port: free_port(),
            bin,
            data,
            dir,
            running: false,
        };
        let data = pg.data.display().to_string();
        pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
        )
        .await;
        pg.start().await;
        pg
    }

    /// The URL of the cluster's `postgres` database, as its superuser.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub async fn start(&mut self) {
        let data = self.data.display().to_string();
        let log = self.dir.path().join("postgres.log").display().to_string();
        // Durability is not what these tests are about: fsync off keeps the
        // cluster fast on a busy machine (a clean stop still writes
        // everything out).
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start",
            ],
        )
        .await;
        self.running = true;
        assert!(
            wait_for_port(self.port, Duration::from_secs(10)).await,
            "PostgreSQL started but does not listen on {}",
            self.port
        );
    }

    /// Shuts the server down (`-m fast`: sessions end, open transactions
    /// roll back) and waits until it is gone.
    pub async fn stop(&mut self) {
        let data = self.data.display().to_string();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"])
            .await;
        self.running = false;
    }

    /// Runs one of the PostgreSQL programs (as `postgres` when root).
    async fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut command = if running_as_root() {
            let mut c = tokio::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            tokio::process::Command::new(&program)
        };
        // pg_ctl's server inherits these: it must not hold the test's pipes.
        let output = command
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        if !output.status.success() {
            let log =
                std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default();
            panic!(
                "{} {args:?} failed ({}): {}{}\n{log}",
                program.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.data.display().to_string();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let mut command = if running_as_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
            c
        } else {
            std::process::Command::new(&pg_ctl)
        };
        let _ = command
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The folder of the PostgreSQL programs: `RENKEI_TEST_PG_BIN`, or the
/// newest `/usr/lib/postgresql/<version>/bin` with an `initdb`.
fn postgres_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("RENKEI_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).expect(
        "no PostgreSQL server programs (initdb) under /usr/lib/postgresql: install the server package or set RENKEI_TEST_PG_BIN",
    )
}

fn running_as_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    })
}

// ---- Redis ----

/// A Redis server of the test's own, on a free port, which the test can
/// kill, start again, freeze and thaw (to show what the hub does while
/// Redis is down or hangs). Needs `redis-server` on the PATH.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    pub async fn start() -> PrivateRedis {
        let mut redis = PrivateRedis {
            port: free_port(),
            child: None,
        };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on the PATH (the Redis tests need it)");
        self.child = Some(child);
        assert!(
            wait_for_port(self.port, Duration::from_secs(5)).await,
            "redis-server did not start on port {}",
            self.port
        );
    }

    /// Kills the server (`SIGKILL`, as a crash would) and waits until it is
    /// gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (`SIGSTOP`): connections stay open, nothing
    /// answers — a hung Redis, or one behind a dead network path.
    pub fn freeze(&self) {
        signal(self.pid(), "STOP");
    }

    /// Lets a frozen server go on (`SIGCONT`).
    pub fn thaw(&self) {
        signal(self.pid(), "CONT");
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis-server is running").id()
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        // SIGKILL ends a frozen process too.
        self.kill();
    }
}

// ---- the hub ----

/// The `renkei` binary serving on a free port, as a process of its own, so
/// that a test can `kill -9` it (in-process servers cannot die that way).
/// Its output goes to files in a temporary directory, shown when it fails
/// to start.
pub struct HubProcess {
    pub addr: SocketAddr,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl HubProcess {
    /// `renkei serve` on `database_url` with the test harness's JWT secret
    /// and audit key (so tokens and the audit chain are the same as those
    /// of in-process [`crate::TestApp`]s), plus `env`; waits until it says
    /// it listens.
    pub async fn start(database_url: &str, env: &[(&str, &str)]) -> HubProcess {
        let binary = hub_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let stdout = dir.path().join("stdout");
        let stderr = dir.path().join("stderr");
        let mut command = std::process::Command::new(&binary);
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        // Only what the test says: no RENKEI_* of the environment.
        for (key, _) in std::env::vars() {
            if key.starts_with("RENKEI_") {
                command.env_remove(key);
            }
        }
        command
            .env("RENKEI_DATABASE_URL", database_url)
            .env("RENKEI_JWT_SECRET", crate::TEST_JWT_SECRET)
            .env("RENKEI_AUDIT_KEY", crate::TEST_AUDIT_KEY)
            // As for the in-process hubs (`test_config`): tests that send
            // many requests are not rate limited unless they say so.
            .env("RENKEI_RATE_LIMIT", "off")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = std::fs::read_to_string(&stdout).unwrap_or_default();
            if let Some(rest) = out.split("listening on http://").nth(1) {
                let addr = rest
                    .split_whitespace()
                    .next()
                    .and_then(|a| a.parse().ok())
                    .expect("the address the hub listens on");
                return HubProcess {
                    addr,
                    child,
                    _dir: dir,
                };
            }
            let exited = child.try_wait().expect("the hub's status");
            if exited.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "the hub did not start ({exited:?}): {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// SIGTERM, as a service manager stops it: the hub shuts down
    /// gracefully; waits until it is gone (at most 60 s).
    pub async fn terminate(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `kill -9`: the process ends at once, mid-request, without
    /// finishing anything; waits until it is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `renkei` binary of this build: `target/<profile>/renkei`, beside the
/// folder of the test executables. `cargo test --workspace` builds it (the
/// server's own tests run it); a test of this crate run alone may find it
/// missing or older than the sources, and says how to build it.
pub fn hub_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let binary = profile_dir.join(format!("renkei{}", std::env::consts::EXE_SUFFIX));
    let how = "build it with `cargo build -p renkei-server` (cargo test --workspace does)";
    let built = std::fs::metadata(&binary)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: {how}", binary.display()));
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace");
    if let Some(newer) = ["server/src", "schema/src", "entities/src", "migration/src"]
        .iter()
        .filter_map(|dir| newest_file(&workspace.join(dir)))
        .find(|(modified, _)| *modified > built)
    {
        panic!(
            "{} is older than {}: {how}",
            binary.display(),
            newer.1.display()
        );
    }
    binary
}

/// The most recently modified file under `dir`.
fn newest_file(dir: &Path) -> Option<(std::time::SystemTime, PathBuf)> {
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let candidate = if path.is_dir() {
            newest_file(&path)
        } else {
            entry.metadata().ok()?.modified().ok().map(|m| (m, path))
        };
        if let Some(c) = candidate
            && newest.as_ref().is_none_or(|n| c.0 > n.0)
        {
            newest = Some(c);
        }
    }
    newest
}

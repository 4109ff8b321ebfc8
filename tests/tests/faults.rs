//! The hub under faults, in one place: PostgreSQL stopped and started under
//! writes, Redis killed and frozen, the hub killed (`kill -9`) in the middle
//! of a batch. What each fault does to clients is in docs/operations.md
//! ("Faults").
//!
//! The processes are the tests' own ([`renkei_tests::processes`]): a
//! PostgreSQL cluster made with `initdb`, a `redis-server`, the `renkei`
//! binary. Like the rest of the suite, the PostgreSQL tests run when
//! `RENKEI_TEST_DATABASE_URL` is set and the Redis tests when
//! `RENKEI_TEST_REDIS_URL` is set (as `.ci/run` does); the `kill -9` test
//! runs on SQLite always.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use renkei_tests::*;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

const EVENTS: &str =
    "subscription($p: ID!) { patientEvents(patientId: $p) { kind subjectId category } }";
const WRITE: &str =
    "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { outcome record { id } } }";
const READ: &str = "query($id: ID!) { patient(id: $id) { name } }";

/// A clinic's patient with consent and a visiting-nurse station on the team.
struct Scene {
    patient: String,
    doctor: String,
    nurse: String,
}

async fn scene(app: &TestApp) -> Scene {
    let clinic = app.organization("CLINIC", "障害 クリニック").await;
    let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
    let patient = app.patient(&doctor, "F-1").await;
    let station = app
        .organization("VISITING_NURSE_STATION", "障害 訪問看護")
        .await;
    let (_, nurse) = app.member(&station, "NURSE").await;
    app.ok(
        &doctor,
        "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
        json!({ "i": { "patientId": patient, "organizationId": station, "role": "VISITING_NURSE" } }),
    )
    .await;
    Scene {
        patient,
        doctor,
        nurse,
    }
}

/// One CRP result; with a source record id, writing it again is idempotent.
fn lab(patient: &str, value: &str, source: Option<&str>) -> Value {
    lab_named(patient, "CRP", value, source)
}

/// One lab result of the test `name`.
fn lab_named(patient: &str, name: &str, value: &str, source: Option<&str>) -> Value {
    let mut record = json!({ "patientId": patient, "effectiveAt": "2026-01-05T00:00:00Z",
        "data": { "labResult": { "name": name, "value": value, "unit": "mg/dL", "abnormal": "HIGH" } } });
    if let Some(source) = source {
        record["sourceRecordId"] = json!(source);
    }
    record
}

async fn write_lab(app: &TestApp, token: &str, patient: &str, value: &str) -> String {
    let data = app
        .ok(
            token,
            WRITE,
            json!({ "i": { "records": [lab(patient, value, None)] } }),
        )
        .await;
    data["writeRecords"][0]["record"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn watch(app: &TestApp, token: &str, patient: &str) -> (WsClient, String) {
    let mut ws = app.ws(token).await;
    let id = ws.subscribe(EVENTS, json!({ "p": patient })).await;
    ws.expect_silence(Duration::from_millis(300)).await;
    (ws, id)
}

fn next_event(message: WsMessage) -> Value {
    match message {
        WsMessage::Next(v) => v,
        other => panic!("expected a result, got {other:?}"),
    }
}

/// What a client saw of one HTTP request.
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
    took: Duration,
}

impl Answer {
    fn code(&self) -> Option<String> {
        error_code(&self.body)
    }

    /// The answer to a request while the database is down: fast, 503,
    /// `Retry-After`, `DATABASE_UNAVAILABLE`, and no data.
    fn assert_unavailable(&self, what: &str) {
        assert_eq!(self.status, 503, "{what}: {}", self.body);
        assert_eq!(
            self.code().as_deref(),
            Some("DATABASE_UNAVAILABLE"),
            "{what}: {}",
            self.body
        );
        assert_eq!(self.retry_after.as_deref(), Some("2"), "{what}");
        assert!(
            self.took < Duration::from_secs(3),
            "{what} took {:?}",
            self.took
        );
        let message = self.body["errors"][0]["message"].as_str().unwrap_or("");
        assert!(
            !message.contains("Connection") && !message.contains("pool"),
            "database text reached the client: {message}"
        );
    }
}

async fn request(client: &reqwest::Client, url: &str, token: &str, body: Value) -> Answer {
    let started = Instant::now();
    let res = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("the hub answers");
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = res.json::<Value>().await.expect("a JSON body");
    Answer {
        status,
        retry_after,
        body,
        took: started.elapsed(),
    }
}

/// `GET /ready`: its status, body and how long it took.
async fn ready(app: &TestApp) -> (u16, Value, Duration) {
    let started = Instant::now();
    let res = app
        .client
        .get(app.url("/ready"))
        .send()
        .await
        .expect("GET /ready");
    let status = res.status().as_u16();
    let body = res.json().await.expect("JSON");
    (status, body, started.elapsed())
}

/// A client that writes lab results one after the other, each with a source
/// record id of its own, and sends each again until it succeeds — as a
/// sending system retries on `503`. Returns the ids written and how many
/// answers were `DATABASE_UNAVAILABLE`; any other failure fails the test.
async fn retrying_writer(
    app: Arc<TestApp>,
    token: String,
    patient: String,
    name: &'static str,
    stop: Arc<AtomicBool>,
) -> (Vec<String>, usize) {
    let url = app.url("/graphql");
    let mut written = Vec::new();
    let mut unavailable = 0;
    for n in 0.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let source = format!("{name}-{n}");
        let body = json!({ "query": WRITE,
            "variables": { "i": { "records": [lab(&patient, &format!("{}.5", n % 50), Some(&source))] } } });
        loop {
            let answer = request(&app.client, &url, &token, body.clone()).await;
            if answer.status == 200 && answer.body.get("errors").is_none() {
                let outcome = &answer.body["data"]["writeRecords"][0]["outcome"];
                // UNCHANGED: an earlier attempt committed, its answer was lost.
                assert!(
                    outcome == "CREATED" || outcome == "UNCHANGED",
                    "{}",
                    answer.body
                );
                break;
            }
            answer.assert_unavailable("a write while the database is down");
            unavailable += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        written.push(source);
    }
    (written, unavailable)
}

/// PostgreSQL stopped under writes, then started again: requests fail fast
/// with 503 `DATABASE_UNAVAILABLE` — when reading, writing, authenticating,
/// and over WebSocket — `/ready` says 503 within a second, and when the
/// database is back the hub serves again without a restart; every write a
/// client retried until it succeeded is there exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_stopped_under_writes_fails_fast_and_recovers_with_every_write_once() {
    if !postgres_configured() {
        eprintln!("skipped: RENKEI_TEST_DATABASE_URL is not set");
        return;
    }
    let mut pg = PrivatePostgres::create().await;
    let app = Arc::new(
        TestApp::spawn_on(Backend::Postgres, pg.url(), |c| {
            // The default, which the timings below are about.
            c.database.database_acquire_timeout_ms = 1500;
            // Members stay cached through the test: the requests of a
            // cached member reach execution, an uncached one's need the
            // database to authenticate.
            c.directory_cache_seconds = 300;
        })
        .await,
    );
    let s = scene(&app).await;
    let clinic = app
        .ok(&s.doctor, "{ me { organization { id } } }", json!({}))
        .await["me"]["organization"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Never used before the outage: authenticating needs the database.
    let (_, stranger) = app.member(&clinic, "NURSE").await;
    app.ok(&s.doctor, READ, json!({ "id": s.patient })).await;
    let mut session = app.ws(&s.doctor).await;

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            tokio::spawn(retrying_writer(
                app.clone(),
                s.doctor.clone(),
                s.patient.clone(),
                name,
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    pg.stop().await;
    let url = app.url("/graphql");
    let read = json!({ "query": READ, "variables": { "id": s.patient } });
    let answer = request(&app.client, &url, &s.doctor, read.clone()).await;
    answer.assert_unavailable("a read");
    assert!(answer.body["data"].is_null(), "{}", answer.body);
    eprintln!(
        "PostgreSQL down: a read answered {} in {:?}",
        answer.status, answer.took
    );
    // The same in the media type of GraphQL over HTTP.
    let started = Instant::now();
    let res = app
        .client
        .post(&url)
        .bearer_auth(&s.doctor)
        .header("accept", "application/graphql-response+json")
        .json(&read)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "2");
    assert!(started.elapsed() < Duration::from_secs(3));
    // The printable emergency sheet answers alike, as a page.
    let started = Instant::now();
    let res = app
        .client
        .get(app.url(&format!("/patients/{}/emergency-sheet", s.patient)))
        .bearer_auth(&s.doctor)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "2");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(res.text().await.unwrap().contains("一時的に利用できません"));
    // Authenticating needs the database: refused the same way, not as
    // UNAUTHENTICATED (the credentials may well be good).
    let answer = request(&app.client, &url, &stranger, read.clone()).await;
    answer.assert_unavailable("an uncached member's request");
    let (status, body, took) = ready(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["database"], "unreachable", "{body}");
    assert!(took < Duration::from_secs(1), "/ready took {took:?}");
    eprintln!("PostgreSQL down: /ready answered {status} in {took:?}");
    // Over WebSocket: an operation fails with the code; a connection whose
    // credentials cannot be checked closes with 1013 (try again later).
    let op = session.subscribe(READ, json!({ "id": s.patient })).await;
    let errors = match session.next_of(&op).await {
        WsMessage::Error(errors) => errors,
        WsMessage::Next(body) => body["errors"].clone(),
        WsMessage::Complete => panic!("completed without an answer"),
    };
    assert_eq!(
        errors[0]["extensions"]["code"], "DATABASE_UNAVAILABLE",
        "{errors}"
    );
    let closed = app
        .ws_connect(json!({ "Authorization": format!("Bearer {stranger}") }))
        .await
        .err()
        .expect("refused");
    assert_eq!(closed.code, 1013, "{closed:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;

    pg.start().await;
    let back = Instant::now();
    loop {
        let answer = request(&app.client, &url, &s.doctor, read.clone()).await;
        if answer.status == 200 && answer.body.get("errors").is_none() {
            break;
        }
        answer.assert_unavailable("a read while the database comes back");
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "not recovered 10 s after PostgreSQL started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("PostgreSQL back: serving again after {:?}", back.elapsed());
    let (status, body, _) = ready(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["database"], "ok");
    let answer = request(&app.client, &url, &stranger, read.clone()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let mut ws = app.ws(&stranger).await;
    let op = ws.subscribe("{ me { kind } }", json!({})).await;
    assert_eq!(
        next_event(ws.next_of(&op).await)["data"]["me"]["kind"],
        "MEMBER"
    );
    // A few writes after the recovery, then the writers stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);

    let mut expected = Vec::new();
    let mut refused = 0;
    for writer in writers {
        let (written, unavailable) = writer.await.expect("the writer");
        expected.extend(written);
        refused += unavailable;
    }
    assert!(
        refused > 0,
        "no write met the outage: the test did not test it"
    );
    let stored: Vec<(String, i64)> = app
        .db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT source_record_id, count(*) AS n FROM records \
             WHERE source_record_id IS NOT NULL GROUP BY source_record_id",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.try_get::<String>("", "source_record_id").unwrap(),
                row.try_get::<i64>("", "n").unwrap(),
            )
        })
        .collect();
    for (source, n) in &stored {
        assert_eq!(*n, 1, "{source} is stored {n} times");
    }
    let mut stored: Vec<String> = stored.into_iter().map(|(s, _)| s).collect();
    stored.sort();
    expected.sort();
    assert_eq!(stored, expected, "what is stored is what clients wrote");
    eprintln!(
        "{} writes, {refused} refused with DATABASE_UNAVAILABLE and retried",
        expected.len()
    );
    Arc::into_inner(app)
        .expect("the writers are done")
        .stop()
        .await;
}

/// PostgreSQL up but refusing connections to the hub's database — while
/// it is being restored, or closed for maintenance (`ALLOW_CONNECTIONS
/// false`), its sessions ended: the error comes from the server as the hub
/// connects, not from a statement. Nothing was done, so it is 503
/// `DATABASE_UNAVAILABLE` like a stopped server — not `INTERNAL`, which
/// tells a writer its change may have been made — and the hub serves again
/// once connections are allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_refusing_connections_is_unavailable_and_recovers() {
    if !postgres_configured() {
        eprintln!("skipped: RENKEI_TEST_DATABASE_URL is not set");
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let s = scene(&app).await;
    let name = app
        .database_url
        .rsplit('/')
        .next()
        .and_then(|n| n.split('?').next())
        .expect("a database name")
        .to_string();
    let admin = sea_orm::Database::connect(
        std::env::var("RENKEI_TEST_DATABASE_URL").expect("RENKEI_TEST_DATABASE_URL"),
    )
    .await
    .expect("the administrator connects");
    let allow = |allowed: bool| format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {allowed}");
    admin.execute_unprepared(&allow(false)).await.unwrap();
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let url = app.url("/graphql");
    let read = json!({ "query": READ, "variables": { "id": s.patient } });
    let write = json!({ "query": WRITE, "variables": { "i": { "records": [lab(&s.patient, "2.0", Some("refused-1"))] } } });
    for (what, body) in [("a read", &read), ("a write", &write)] {
        request(&client, &url, &s.doctor, body.clone())
            .await
            .assert_unavailable(what);
    }
    admin.execute_unprepared(&allow(true)).await.unwrap();
    admin.close().await.ok();
    // Served again, without a restart; the write was not made before.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = request(&client, &url, &s.doctor, write.clone()).await;
        if answer.status == 200 && answer.body["errors"].is_null() {
            assert_eq!(
                answer.body["data"]["writeRecords"][0]["outcome"], "CREATED",
                "{}",
                answer.body
            );
            break;
        }
        answer.assert_unavailable("a write while the pool reconnects");
        assert!(
            Instant::now() < deadline,
            "not served again: {}",
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop().await;
}

/// How many records of a batch (by source record id prefix) are stored.
async fn stored(app: &TestApp, prefix: &str) -> u64 {
    entities::record::Entity::find()
        .filter(entities::record::Column::SourceRecordId.starts_with(prefix))
        .count(&app.db)
        .await
        .unwrap()
}

/// Waits until another connection holds a write transaction on the
/// database: on PostgreSQL a session with a transaction id (it has
/// written), on SQLite the write lock (`BEGIN IMMEDIATE` fails at once).
async fn wait_for_open_write(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let probe = match app.backend {
        Backend::Postgres => None,
        Backend::Sqlite => {
            let mut options = sea_orm::ConnectOptions::new(app.database_url.clone());
            options
                .max_connections(1)
                .map_sqlx_sqlite_opts(|o| o.busy_timeout(Duration::ZERO));
            Some(sea_orm::Database::connect(options).await.unwrap())
        }
    };
    loop {
        let open = match &probe {
            None => {
                app.db
                    .query_one_raw(sea_orm::Statement::from_string(
                        sea_orm::DatabaseBackend::Postgres,
                        "SELECT count(*) AS n FROM pg_stat_activity \
                     WHERE datname = current_database() AND backend_xid IS NOT NULL \
                     AND pid <> pg_backend_pid()",
                    ))
                    .await
                    .unwrap()
                    .unwrap()
                    .try_get::<i64>("", "n")
                    .unwrap()
                    > 0
            }
            Some(probe) => match probe.execute_unprepared("BEGIN IMMEDIATE").await {
                Ok(_) => {
                    probe.execute_unprepared("ROLLBACK").await.unwrap();
                    false
                }
                Err(e) => {
                    assert!(e.to_string().contains("locked"), "{e}");
                    true
                }
            },
        };
        if open {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the batch never held a write transaction"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `kill -9` of the hub while it writes a batch of 500 records: after the
/// restart the batch is stored entirely or not at all, the audit log
/// verifies, and sending the batch again stores each record exactly once.
async fn killed_mid_batch(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let s = scene(&app).await;
    let mut hub = HubProcess::start(&app.database_url, &[]).await;
    let prefix = format!("kill-{:?}-", backend).to_lowercase();
    let records: Vec<Value> = (0..500)
        // 500 tests of their own: each record is the latest of its series.
        // (500 results of one series cost the summary's refresh a pass over
        // the series per record — a minute on PostgreSQL — which is not
        // what this test is about.)
        .map(|n| {
            lab_named(
                &s.patient,
                &format!("検査{n}"),
                "1.25",
                Some(&format!("{prefix}{n}")),
            )
        })
        .collect();
    let body = json!({ "query": WRITE, "variables": { "i": { "records": records } } });
    let client = reqwest::Client::new();
    let send = {
        let (client, url, token, body) = (
            client.clone(),
            hub.url("/graphql"),
            s.doctor.clone(),
            body.clone(),
        );
        tokio::spawn(async move { client.post(url).bearer_auth(token).json(&body).send().await })
    };
    wait_for_open_write(&app).await;
    hub.kill();
    let answered = send.await.unwrap().is_ok();
    let after_kill = stored(&app, &prefix).await;
    assert!(
        after_kill == 0 || after_kill == 500,
        "{after_kill} of the batch's 500 records survived the kill"
    );
    // Only a batch that committed before the kill may have been answered.
    assert!(!answered || after_kill == 500);
    eprintln!("kill -9 mid-batch ({backend:?}): {after_kill} of 500 stored");

    let hub = HubProcess::start(&app.database_url, &[]).await;
    let answer = request(&client, &hub.url("/graphql"), &s.doctor, body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let outcomes = answer.body["data"]["writeRecords"].as_array().unwrap();
    let expected = if after_kill == 0 {
        "CREATED"
    } else {
        "UNCHANGED"
    };
    assert!(
        outcomes.iter().all(|o| o["outcome"] == expected),
        "{}",
        answer.body
    );
    assert_eq!(stored(&app, &prefix).await, 500);
    drop(hub);
    let verify = std::process::Command::new(processes::hub_binary())
        .args(["audit", "verify"])
        .env("RENKEI_DATABASE_URL", &app.database_url)
        .env("RENKEI_AUDIT_KEY", TEST_AUDIT_KEY)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(String::from_utf8_lossy(&verify.stdout).contains("audit log intact"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_mid_batch_stores_all_or_nothing_sqlite() {
    killed_mid_batch(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_mid_batch_stores_all_or_nothing_postgres() {
    if !postgres_configured() {
        eprintln!("skipped: RENKEI_TEST_DATABASE_URL is not set");
        return;
    }
    killed_mid_batch(Backend::Postgres).await;
}

// ---- Redis ----

/// Two instances on one database, linked through a Redis of the test's own.
async fn pair_on_private_redis(backend: Backend) -> Option<(PrivateRedis, TestApp, TestApp)> {
    redis_url()?;
    if backend == Backend::Postgres && !postgres_configured() {
        return None;
    }
    let redis = PrivateRedis::start().await;
    let url = redis.url();
    let configure = |c: &mut renkei_server::config::ServeConfig| {
        c.redis.redis_url = Some(url.clone());
        c.redis.redis_prefix = "renkei".into();
    };
    let a = TestApp::spawn_with(backend, configure).await;
    let b = a.spawn_peer(configure).await;
    a.wait_for_redis("ok").await;
    b.wait_for_redis("ok").await;
    Some((redis, a, b))
}

/// After an outage of the link: a write on `a` reaches `b`'s subscriber.
/// When `b`'s own link went down (Redis killed), its subscriber is told on
/// the way that it may have missed events (what `a` queued during the
/// outage may also arrive now, late); a frozen Redis may keep every
/// connection and lose nothing, so then nothing more is asked.
async fn delivery_resumes(
    a: &TestApp,
    s: &Scene,
    on_b: &mut WsClient,
    sub_b: &str,
    must_tell_missed: bool,
) {
    let record = write_lab(a, &s.doctor, &s.patient, "2.0").await;
    let mut told = false;
    loop {
        let body = next_event(on_b.next_of(sub_b).await);
        if body["errors"][0]["extensions"]["code"] == "EVENTS_MISSED" {
            told = true;
        } else if body["data"]["patientEvents"]["subjectId"] == record.as_str() {
            break;
        }
    }
    assert!(
        told || !must_tell_missed,
        "the subscriber was not told that events may be missing"
    );
}

/// Queries and a mutation on `a`, which must not wait for Redis; returns
/// the id of the record written.
async fn serves_without_redis(a: &TestApp, s: &Scene) -> String {
    let started = Instant::now();
    let record = write_lab(a, &s.doctor, &s.patient, "5.1").await;
    let data = a
        .ok(
            &s.doctor,
            "query($id: ID!) { patient(id: $id) { name summary { latestLabResults { id } } } }",
            json!({ "id": s.patient }),
        )
        .await;
    assert_eq!(data["patient"]["name"], "連携 花子");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "requests waited for Redis: {:?}",
        started.elapsed()
    );
    record
}

async fn redis_killed(backend: Backend) {
    let Some((mut redis, a, b)) = pair_on_private_redis(backend).await else {
        eprintln!("skipped: RENKEI_TEST_REDIS_URL (or RENKEI_TEST_DATABASE_URL) is not set");
        return;
    };
    let s = scene(&a).await;
    let (mut on_a, sub_a) = watch(&a, &s.nurse, &s.patient).await;
    let (mut on_b, sub_b) = watch(&b, &s.nurse, &s.patient).await;

    redis.kill();
    a.wait_for_redis("unavailable").await;
    assert_eq!(a.ready().await["status"], "degraded");

    let record = serves_without_redis(&a, &s).await;
    // Events still flow within the instance...
    let body = next_event(on_a.next_of(&sub_a).await);
    assert_eq!(body["data"]["patientEvents"]["subjectId"], record.as_str());
    // ...but cannot reach the other one.
    on_b.expect_silence(Duration::from_millis(700)).await;

    redis.restart().await;
    a.wait_for_redis("ok").await;
    b.wait_for_redis("ok").await;
    delivery_resumes(&a, &s, &mut on_b, &sub_b, true).await;

    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_killed_nothing_fails_and_cross_instance_delivery_resumes_when_it_returns_sqlite()
 {
    redis_killed(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_killed_nothing_fails_and_cross_instance_delivery_resumes_when_it_returns_postgres()
 {
    redis_killed(Backend::Postgres).await;
}

/// A frozen Redis (`SIGSTOP`: connections open, nothing answers) is worse
/// than a dead one for a client that waits: the hub must not.
async fn redis_frozen(backend: Backend) {
    let Some((redis, a, b)) = pair_on_private_redis(backend).await else {
        eprintln!("skipped: RENKEI_TEST_REDIS_URL (or RENKEI_TEST_DATABASE_URL) is not set");
        return;
    };
    let s = scene(&a).await;
    let (mut on_a, sub_a) = watch(&a, &s.nurse, &s.patient).await;
    let (mut on_b, sub_b) = watch(&b, &s.nurse, &s.patient).await;

    redis.freeze();
    let record = serves_without_redis(&a, &s).await;
    let body = next_event(on_a.next_of(&sub_a).await);
    assert_eq!(body["data"]["patientEvents"]["subjectId"], record.as_str());
    // `/ready` answers at once throughout, and soon tells the link is down
    // (a heartbeat or a publication times out).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body, took) = ready(&a).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["database"], "ok");
        assert!(took < Duration::from_secs(1), "/ready took {took:?}");
        if body["redis"] == "unavailable" {
            assert_eq!(body["status"], "degraded");
            break;
        }
        assert!(Instant::now() < deadline, "a frozen Redis still looks up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    serves_without_redis(&b, &s).await;

    redis.thaw();
    a.wait_for_redis("ok").await;
    b.wait_for_redis("ok").await;
    delivery_resumes(&a, &s, &mut on_b, &sub_b, false).await;

    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_frozen_nothing_waits_and_delivery_resumes_when_it_thaws_sqlite() {
    redis_frozen(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_frozen_nothing_waits_and_delivery_resumes_when_it_thaws_postgres() {
    redis_frozen(Backend::Postgres).await;
}

e2e!(
    a_hub_pointed_at_a_dead_redis_starts_and_serves,
    |_unused| async move {
        let Some(_) = redis_url() else {
            eprintln!("skipped: RENKEI_TEST_REDIS_URL is not set");
            return;
        };
        let app = TestApp::spawn_with(_unused.backend, |c| {
            c.redis.redis_url = Some(format!("redis://127.0.0.1:{}", processes::free_port()));
        })
        .await;
        let ready = app.ready().await;
        assert_eq!(ready["redis"], "unavailable", "{ready}");
        assert_eq!(ready["database"], "ok");
        let s = scene(&app).await;
        let (mut ws, sub) = watch(&app, &s.nurse, &s.patient).await;
        let record = write_lab(&app, &s.doctor, &s.patient, "1.1").await;
        let body = next_event(ws.next_of(&sub).await);
        assert_eq!(body["data"]["patientEvents"]["subjectId"], record.as_str());
        app.stop().await;
    }
);

// ---- The FHIR import ----

/// How many lab results one patient's NDJSON holds for the import's
/// fault tests: ten bundles of the import's 499 resources and the patient.
const LAB_LINES: usize = 10 * 499;

/// A folder of NDJSON for `renkei import fhir`: the fixtures' patient
/// (matched by the clinic's local ID) and [`LAB_LINES`] lab results about
/// it, each a test of its own (one series each: the summary's refresh of
/// a long series is not what these tests are about).
fn lab_ndjson() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let condition = fhir::fixture("condition");
    let mut patient = condition["entry"][0]["resource"].clone();
    patient["id"] = json!("p1");
    std::fs::write(dir.path().join("Patient.ndjson"), format!("{patient}\n")).unwrap();
    let lab = fhir::fixture("lab-result")["entry"][1]["resource"].clone();
    let mut lines = String::new();
    for n in 0..LAB_LINES {
        let mut r = lab.clone();
        r["subject"] = json!({ "reference": "Patient/p1" });
        r["id"] = json!(format!("fault-{n}"));
        r["identifier"][0]["value"] = json!(format!("FAULT-{n}"));
        r["code"]["coding"][0]["code"] = json!(format!("FAULT{n:05}"));
        r["code"]["coding"][0]["display"] = json!(format!("検査{n}"));
        r["code"]["text"] = json!(format!("検査{n}"));
        lines.push_str(&r.to_string());
        lines.push('\n');
    }
    std::fs::write(dir.path().join("Observation.ndjson"), lines).unwrap();
    dir
}

/// `renkei import fhir` of `dir` into the test hub's database as `token`,
/// one bundle at a time, as a child process of the test.
fn spawn_import(app: &TestApp, token: &str, dir: &std::path::Path) -> tokio::process::Child {
    let mut command = fhir::cli(app, token);
    command
        .args(["import", "fhir"])
        .arg(dir)
        .arg("--journal")
        .arg(dir.join("journal"))
        .args(["--jobs", "1"]);
    tokio::process::Command::from(command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the renkei binary runs")
}

/// The patient's records (the import's lab results).
async fn records_of(app: &TestApp, patient: &str) -> u64 {
    let id: uuid::Uuid = patient.parse().unwrap();
    entities::record::Entity::find()
        .filter(entities::record::Column::PatientId.eq(id))
        .count(&app.db)
        .await
        .unwrap()
}

/// Waits until the import has committed its first bundle.
async fn wait_for_first_bundle(app: &TestApp, patient: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = records_of(app, patient).await;
        if n > 0 {
            return n;
        }
        assert!(Instant::now() < deadline, "no bundle was written");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The import's summary line and its exit: each bundle written once.
fn assert_imported_all(output: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(", 0 failed"), "{stdout}\n{stderr}");
}

/// PostgreSQL stopped while `renkei import fhir` runs: the bundle in
/// flight and those after it are answered `503` and sent again with a
/// growing wait; when the database is back the import finishes with every
/// resource written once and exits 0. Meanwhile the FHIR endpoints answer
/// as the rest of the hub does: fast, `503`, `Retry-After`, an
/// `OperationOutcome` that names no database detail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_stopped_under_a_fhir_import_delays_it_and_loses_nothing() {
    if !postgres_configured() {
        eprintln!("skipped: RENKEI_TEST_DATABASE_URL is not set");
        return;
    }
    let mut pg = PrivatePostgres::create().await;
    let app = TestApp::spawn_on(Backend::Postgres, pg.url(), |c| {
        c.database.database_acquire_timeout_ms = 1500;
        // The physician stays cached: its requests reach the FHIR handlers.
        c.directory_cache_seconds = 300;
    })
    .await;
    let (_, doctor, patient) = fhir::clinic(&app).await;
    let everything = format!("/fhir/Patient/{patient}/$everything");
    let (status, body) = fhir::get(&app, Some(&doctor), &everything).await;
    assert_eq!(status, 200, "{body}");
    let dir = lab_ndjson();
    let mut import = spawn_import(&app, &doctor, dir.path());
    let first = wait_for_first_bundle(&app, &patient).await;
    pg.stop().await;
    assert!(
        import.try_wait().unwrap().is_none(),
        "the import ended before the outage: the test did not test it"
    );
    eprintln!("PostgreSQL stopped after {first} records were imported");

    let client = reqwest::Client::new();
    let bundle = fhir::fixture("condition");
    let requests = [
        client
            .post(app.url("/fhir"))
            .header("content-type", "application/fhir+json")
            .body(bundle.to_string()),
        client.get(app.url(&everything)),
        client.get(
            app.url("/fhir/Patient?identifier=urn:oid:1.2.392.100495.20.3.51.10112345678|12345"),
        ),
    ];
    for request in requests {
        let started = Instant::now();
        let res = request.bearer_auth(&doctor).send().await.unwrap();
        let took = started.elapsed();
        let status = res.status().as_u16();
        let retry_after = res.headers().get("retry-after").cloned();
        let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 503, "{body}");
        assert_eq!(retry_after.unwrap(), "2");
        assert!(
            content_type.starts_with("application/fhir+json"),
            "{content_type}"
        );
        assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
        assert_eq!(body["issue"][0]["code"], "transient", "{body}");
        let text = body.to_string();
        assert!(
            !text.contains("Connection") && !text.contains("pool") && !text.contains("sqlx"),
            "database text reached the client: {text}"
        );
        assert!(took < Duration::from_secs(3), "answered in {took:?}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    pg.start().await;

    let output = import.wait_with_output().await.unwrap();
    assert_imported_all(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("imported {} resources", LAB_LINES + 10)),
        "{stdout}"
    );
    assert_eq!(records_of(&app, &patient).await, LAB_LINES as u64);
    // Sent again after the outage, the bundle refused during it is written.
    let (status, body) = fhir::post(&app, Some(&doctor), "/fhir", &bundle).await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
}

/// `kill -9` of `renkei import fhir` in the middle of its run: each bundle
/// is in the database whole or not at all, and the rerun with the same
/// journal finishes the import with every resource written once.
async fn import_killed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, doctor, patient) = fhir::clinic(&app).await;
    let dir = lab_ndjson();
    let mut import = spawn_import(&app, &doctor, dir.path());
    wait_for_first_bundle(&app, &patient).await;
    import.start_kill().unwrap();
    let status = import.wait().await.unwrap();
    assert!(!status.success(), "the import ended before the kill");
    let after_kill = records_of(&app, &patient).await;
    assert_eq!(
        after_kill % 499,
        0,
        "{after_kill} records: a bundle of 499 was cut by the kill"
    );
    assert!(
        after_kill < LAB_LINES as u64,
        "the import ended before the kill"
    );
    eprintln!("kill -9 mid-import ({backend:?}): {after_kill} of {LAB_LINES} stored");

    let output = spawn_import(&app, &doctor, dir.path())
        .wait_with_output()
        .await
        .unwrap();
    assert_imported_all(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The bundles noted before the kill are skipped; a bundle written but
    // not yet noted is sent again and changes nothing.
    assert!(stdout.contains("bundles skipped"), "{stdout}");
    assert_eq!(records_of(&app, &patient).await, LAB_LINES as u64);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fhir_import_killed_mid_run_resumes_with_every_resource_once_sqlite() {
    import_killed(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fhir_import_killed_mid_run_resumes_with_every_resource_once_postgres() {
    if !postgres_configured() {
        eprintln!("skipped: RENKEI_TEST_DATABASE_URL is not set");
        return;
    }
    import_killed(Backend::Postgres).await;
}

/// `renkei serve` stopped with SIGTERM tells every WebSocket client so —
/// 1001 Going Away — and waits for the close frames before the process
/// ends; before, clients of the real binary saw the socket drop (1006).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_every_websocket_with_1001() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut hub = HubProcess::start(&app.database_url, &[]).await;
    let mut sockets = Vec::new();
    for _ in 0..20 {
        let mut socket = ws_socket(hub.addr).await;
        ws_init(&mut socket, &app.admin_token).await;
        sockets.push(socket);
    }
    hub.terminate().await;
    for mut socket in sockets {
        assert_eq!(ws_closed_with(&mut socket).await.0, 1001);
    }
    app.stop().await;
}

/// An instance stalled inside a transaction (a paused VM, a half-open
/// connection) holds the locks it took: the audit head, which every read
/// and write of every instance takes in turn. Other instances wait at most
/// the hub's lock timeout and answer `503 DATABASE_UNAVAILABLE` with
/// `Retry-After` — not an internal error after the audit's timeout, or,
/// for writes, no answer at all; and PostgreSQL ends a write transaction
/// of the hub's once it idles past the hub's idle-in-transaction timeout,
/// releasing what it held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_instance_holding_the_audit_head_stalls_no_one_for_long_on_postgres() {
    use sea_orm::TransactionTrait;
    if !postgres_configured() {
        eprintln!("PostgreSQL run skipped: RENKEI_TEST_DATABASE_URL is not set");
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let s = scene(&app).await;
    // The head held by a session that does not end (the owner's, without
    // the hub's timeouts): how long others wait is the hub's to bound.
    let owner = sea_orm::Database::connect(&app.database_url).await.unwrap();
    let holding = owner.begin().await.unwrap();
    holding
        .execute_unprepared("UPDATE audit_head SET seq = seq WHERE id = 1")
        .await
        .unwrap();
    // A write transaction as the hub opens them, idle.
    let stalled = renkei_server::db::connect(&test_config(app.database_url.clone()).database)
        .await
        .unwrap();
    let idle = renkei_schema::services::begin_write(&stalled)
        .await
        .unwrap();
    idle.execute_unprepared("SELECT 1").await.unwrap();
    let client = reqwest::Client::new();
    let url = app.url("/graphql");
    let read = request(
        &client,
        &url,
        &s.nurse,
        json!({ "query": READ, "variables": { "id": s.patient } }),
    );
    let write = request(
        &client,
        &url,
        &s.doctor,
        json!({ "query": WRITE, "variables": { "i": { "records": [lab(&s.patient, "0.3", Some("STALL-1"))] } } }),
    );
    let (read, write) = tokio::join!(read, write);
    for (what, answer) in [("read", &read), ("write", &write)] {
        assert_eq!(answer.status, 503, "{what}: {:?}", answer.body);
        assert_eq!(
            answer.body["errors"][0]["extensions"]["code"], "DATABASE_UNAVAILABLE",
            "{what}"
        );
        assert!(answer.retry_after.is_some(), "{what}");
        // At most two waits of the lock timeout (10 s): a write's own
        // transaction, then the entries of what the request read.
        assert!(
            answer.took < Duration::from_secs(30),
            "{what} waited {:?}",
            answer.took
        );
    }
    // Released, the hub answers again, nothing restarted; the write that
    // was refused wrote nothing.
    holding.rollback().await.unwrap();
    let again = request(
        &client,
        &url,
        &s.nurse,
        json!({ "query": READ, "variables": { "id": s.patient } }),
    )
    .await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert!(again.body["errors"].is_null(), "{:?}", again.body);
    assert_eq!(stored(&app, "STALL-").await, 0);
    // By now the hub's transaction has idled past its timeout: ended by
    // PostgreSQL, with its session.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        idle.commit().await.is_err(),
        "a session idle in a transaction past the hub's timeout was not ended"
    );
    app.stop().await;
}

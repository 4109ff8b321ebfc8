//! Several instances of the hub on one database, linked through Redis: events
//! cross instances, access changes apply everywhere at once, and a Redis
//! outage costs cross-instance delivery only — never a query or a mutation.
//!
//! These tests need Redis: they run when `RENKEI_TEST_REDIS_URL` is set (as
//! `.ci/run` does) and are skipped otherwise, like the PostgreSQL runs. Each
//! uses a channel prefix of its own; the outage tests start a Redis server of
//! their own (`redis-server` must be on the PATH).

use std::time::{Duration, Instant};

use renkei_tests::*;
use serde_json::{Value, json};

const EVENTS: &str =
    "subscription($p: ID!) { patientEvents(patientId: $p) { kind subjectId category } }";
const WRITE: &str =
    "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { record { id } } }";

/// Runs a test body on two instances sharing a database and a Redis channel,
/// on SQLite (one file, two instances in this process) and PostgreSQL.
macro_rules! two_instances {
    ($name:ident, |$a:ident, $b:ident| $body:expr) => {
        mod $name {
            use super::*;

            async fn run(backend: Backend) {
                let Some(redis) = redis_url() else {
                    eprintln!("skipped: RENKEI_TEST_REDIS_URL is not set");
                    return;
                };
                if backend == Backend::Postgres && !postgres_configured() {
                    eprintln!("PostgreSQL run skipped: RENKEI_TEST_DATABASE_URL is not set");
                    return;
                }
                let prefix = redis_prefix();
                let configure = |c: &mut renkei_server::config::ServeConfig| {
                    c.redis.redis_url = Some(redis.clone());
                    c.redis.redis_prefix = prefix.clone();
                };
                let first = TestApp::spawn_with(backend, configure).await;
                let second = first.spawn_peer(configure).await;
                first.wait_for_redis("ok").await;
                second.wait_for_redis("ok").await;
                {
                    let $a = &first;
                    let $b = &second;
                    $body.await;
                }
                second.stop().await;
                first.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(Backend::Postgres).await;
            }
        }
    };
}

/// A clinic's patient with consent and a visiting-nurse station on the team.
struct Scene {
    patient: String,
    doctor: String,
    nurse: String,
}

async fn scene(app: &TestApp) -> Scene {
    let clinic = app.organization("CLINIC", "二拠点クリニック").await;
    let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
    let patient = app.patient(&doctor, "I-1").await;
    let station = app
        .organization("VISITING_NURSE_STATION", "二拠点訪問看護")
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

fn lab(patient: &str, value: &str) -> Value {
    json!({ "i": { "records": [{ "patientId": patient, "effectiveAt": "2026-01-05T00:00:00Z",
        "data": { "labResult": { "name": "CRP", "value": value, "unit": "mg/dL", "abnormal": "HIGH" } } }] } })
}

async fn write_lab(app: &TestApp, token: &str, patient: &str, value: &str) -> String {
    let data = app.ok(token, WRITE, lab(patient, value)).await;
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

two_instances!(
    an_event_on_one_instance_reaches_a_subscriber_on_the_other,
    |a, b| async move {
        let s = scene(a).await;
        let (mut ws, sub) = watch(b, &s.nurse, &s.patient).await;
        let record = write_lab(a, &s.doctor, &s.patient, "3.2").await;
        let body = next_event(ws.next_of(&sub).await);
        assert_eq!(body["data"]["patientEvents"]["subjectId"], record.as_str());
        assert_eq!(body["data"]["patientEvents"]["kind"], "RECORD_WRITTEN");
        // Exactly once: the instance does not also receive its own event back.
        ws.expect_silence(Duration::from_millis(500)).await;
    }
);

two_instances!(
    a_liaison_message_posted_on_one_instance_reaches_a_subscriber_on_the_other,
    |a, b| async move {
        let s = scene(a).await;
        let (mut ws, sub) = watch(b, &s.nurse, &s.patient).await;
        let mut inbox = b.ws(&s.nurse).await;
        let inbox_sub = inbox
            .subscribe(
                "subscription { notifications { kind subjectId } }",
                json!({}),
            )
            .await;
        inbox.expect_silence(Duration::from_millis(300)).await;
        let started = a
            .ok(
                &s.doctor,
                "mutation($i: StartLiaisonThreadInput!) { startLiaisonThread(input: $i) { id messages { id } } }",
                json!({ "i": { "patientId": s.patient, "subject": "発熱の連絡", "urgency": "URGENT",
                    "wholeCareTeam": true, "body": "本日38.2℃の発熱あり。訪問時に様子をご確認ください。" } }),
            )
            .await;
        let message = started["startLiaisonThread"]["messages"][0]["id"].clone();
        let body = next_event(ws.next_of(&sub).await);
        assert_eq!(body["data"]["patientEvents"]["kind"], "MESSAGE_POSTED");
        assert_eq!(body["data"]["patientEvents"]["subjectId"], message);
        assert_eq!(
            body["data"]["patientEvents"]["category"],
            "LIAISON_MESSAGES"
        );
        // The visiting-nurse station is an addressee: it is notified too, on
        // the instance its member is connected to.
        let body = next_event(inbox.next_of(&inbox_sub).await);
        assert_eq!(body["data"]["notifications"]["kind"], "NEW_MESSAGE");
    }
);

two_instances!(an_idle_link_stays_up_and_delivers, |a, b| async move {
    let s = scene(a).await;
    let (mut ws, sub) = watch(b, &s.nurse, &s.patient).await;
    // Longer than the relay's heartbeat: an idle link must not be
    // mistaken for a dead one (nor subscribers told they missed events).
    for _ in 0..7 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(a.ready().await["redis"], "ok");
        assert_eq!(b.ready().await["redis"], "ok");
    }
    let record = write_lab(a, &s.doctor, &s.patient, "0.8").await;
    let body = next_event(ws.next_of(&sub).await);
    assert_eq!(
        body["data"]["patientEvents"]["subjectId"],
        record.as_str(),
        "{body}"
    );
});

two_instances!(
    a_consent_withdrawal_on_one_instance_stops_delivery_on_the_other,
    |a, b| async move {
        let s = scene(a).await;
        let (mut ws, sub) = watch(b, &s.nurse, &s.patient).await;
        a.ok(
            &s.doctor,
            "mutation($i: WithdrawConsentInput!) { withdrawConsent(input: $i) { id } }",
            json!({ "i": { "patientId": s.patient } }),
        )
        .await;
        // Ended at once, without waiting for the next event on the patient.
        let body = next_event(ws.next_of(&sub).await);
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "ACCESS_ENDED",
            "{body}"
        );
        assert_eq!(ws.next_of(&sub).await, WsMessage::Complete);
    }
);

two_instances!(
    suspending_a_member_on_one_instance_refuses_their_token_on_the_other_at_once,
    |a, b| async move {
        let s = scene(a).await;
        let query = "{ me { kind } }";
        // The second instance has the member in its directory cache now.
        b.ok(&s.nurse, query, json!({})).await;
        let me = a.ok(&s.nurse, "{ me { member { id } } }", json!({})).await;
        a.ok(
            &a.admin_token,
            "mutation($id: ID!) { setMemberStatus(memberId: $id, status: SUSPENDED) { id } }",
            json!({ "id": me["me"]["member"]["id"] }),
        )
        .await;
        // Well within the cache's 30 s: the event cleared it.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (status, _) = b.post(Some(&s.nurse), json!({ "query": query })).await;
            if status == 401 {
                break;
            }
            assert!(Instant::now() < deadline, "still accepted after 5 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
);

two_instances!(
    revoking_an_api_key_on_one_instance_refuses_it_on_the_other_at_once,
    |a, b| async move {
        let s = scene(a).await;
        let me = a
            .ok(&s.doctor, "{ me { organization { id } } }", json!({}))
            .await;
        let created = a
            .ok(
                &a.admin_token,
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret apiKey { id } } }",
                json!({ "i": { "organizationId": me["me"]["organization"]["id"], "name": "電子カルテ",
                    "permissions": [{ "category": "LAB_RESULTS", "level": "READ_WRITE" }] } }),
            )
            .await;
        let key = created["createApiKey"]["secret"]
            .as_str()
            .unwrap()
            .to_string();
        let query = json!({ "query": "{ me { kind } }" });
        // Cached as valid on the second instance.
        assert_eq!(b.post(Some(&key), query.clone()).await.0, 200);
        a.ok(
            &a.admin_token,
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
            json!({ "id": created["createApiKey"]["apiKey"]["id"] }),
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while b.post(Some(&key), query.clone()).await.0 != 401 {
            assert!(Instant::now() < deadline, "still accepted after 5 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
);

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

async fn redis_outage(backend: Backend) {
    let Some((mut redis, a, b)) = pair_on_private_redis(backend).await else {
        eprintln!("skipped: RENKEI_TEST_REDIS_URL (or RENKEI_TEST_DATABASE_URL) is not set");
        return;
    };
    let s = scene(&a).await;
    let (mut on_a, sub_a) = watch(&a, &s.nurse, &s.patient).await;
    let (mut on_b, sub_b) = watch(&b, &s.nurse, &s.patient).await;

    redis.stop();
    a.wait_for_redis("unavailable").await;
    assert_eq!(a.ready().await["status"], "degraded");

    // Queries and mutations go on, without waiting for Redis.
    let started = Instant::now();
    let record = write_lab(&a, &s.doctor, &s.patient, "5.1").await;
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
    // Events still flow within the instance...
    let body = next_event(on_a.next_of(&sub_a).await);
    assert_eq!(body["data"]["patientEvents"]["subjectId"], record.as_str());
    // ...but cannot reach the other one.
    on_b.expect_silence(Duration::from_millis(700)).await;

    redis.restart().await;
    a.wait_for_redis("ok").await;
    b.wait_for_redis("ok").await;
    // Cross-instance delivery resumes. On the way, the other instance's
    // subscriber is told that it may have missed events (what the first
    // instance queued during the outage may also arrive now, late).
    let record = write_lab(&a, &s.doctor, &s.patient, "2.0").await;
    let mut told = false;
    loop {
        let body = next_event(on_b.next_of(&sub_b).await);
        if body["errors"][0]["extensions"]["code"] == "EVENTS_MISSED" {
            told = true;
        } else if body["data"]["patientEvents"]["subjectId"] == record.as_str() {
            break;
        }
    }
    assert!(
        told,
        "the subscriber was not told that events may be missing"
    );

    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_nothing_fails_and_cross_instance_delivery_resumes_when_it_returns_sqlite()
{
    redis_outage(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_nothing_fails_and_cross_instance_delivery_resumes_when_it_returns_postgres()
 {
    redis_outage(Backend::Postgres).await;
}

e2e!(
    a_hub_pointed_at_a_dead_redis_starts_and_serves,
    |_unused| async move {
        let Some(_) = redis_url() else {
            eprintln!("skipped: RENKEI_TEST_REDIS_URL is not set");
            return;
        };
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let app = TestApp::spawn_with(_unused.backend, |c| {
            c.redis.redis_url = Some(format!("redis://127.0.0.1:{port}"));
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

e2e!(
    without_redis_the_readiness_check_says_it_is_not_configured,
    |app| async move {
        let ready = app.ready().await;
        assert_eq!(
            ready,
            json!({ "status": "ready", "database": "ok", "redis": "not configured" })
        );
    }
);

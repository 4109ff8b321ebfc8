//! Several instances of the hub on one database, linked through Redis: events
//! cross instances, access changes apply everywhere at once, and a Redis
//! outage costs cross-instance delivery only — never a query or a mutation.
//!
//! These tests need Redis: they run when `RENKEI_TEST_REDIS_URL` is set (as
//! `.ci/run` does) and are skipped otherwise, like the PostgreSQL runs. Each
//! uses a channel prefix of its own. Redis outages (killed, frozen, never
//! there) are tested with the other faults, in `faults.rs`.

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

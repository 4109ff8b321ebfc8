//! Liaison messages (連絡票): threads to the whole care team or to named
//! organisations, replies, read receipts, attachments, notifications, the
//! inbox — under consent, the role matrix and the addressing rule.

use base64::Engine;
use renkei_tests::*;
use serde_json::{Value, json};

const ADD: &str = "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }";
const START: &str = "mutation($i: StartLiaisonThreadInput!) { startLiaisonThread(input: $i) {
    id subject urgency wholeCareTeam addressees { id } createdBy { id } createdByOrganization { id }
    messages { id body author { id } authorOrganization { id } } } }";
const POST: &str = "mutation($i: PostLiaisonMessageInput!) { postLiaisonMessage(input: $i) {
    id body replyTo { id } author { id } authorOrganization { id }
    attachments { id filename mimeType sizeBytes } } }";
const THREAD: &str = "query($id: ID!) { liaisonThread(id: $id) {
    id subject urgency unreadCount
    messages { id body replyTo { id } readByMyOrganization
               readBy { organization { id } member { id } readAt } } } }";
const THREADS: &str = "query($id: ID!) { patient(id: $id) { liaisonThreads { edges { node { id subject unreadCount } } } } }";
const INBOX: &str =
    "query($first: Int, $after: String) { liaisonInbox(first: $first, after: $after) {
    edges { node { id subject unreadCount patient { id name } } }
    pageInfo { hasNextPage endCursor } } }";
const MARK_THREAD: &str =
    "mutation($id: ID!) { markLiaisonThreadRead(threadId: $id) { id unreadCount } }";
const MARK_MESSAGE: &str =
    "mutation($id: ID!) { markLiaisonMessageRead(messageId: $id) { id readByMyOrganization } }";
const NOTIFICATIONS: &str =
    "{ notifications(unreadOnly: true) { kind patientId subjectId message } }";

struct Member {
    id: String,
    token: String,
    org: String,
}

/// A clinic's patient with consent and a care team: a visiting-nurse
/// station, a pharmacy, a care office and the city (read-only); and a clinic
/// that is not on the team.
struct Scene {
    patient: String,
    doctor: Member,
    nurse: Member,
    pharmacist: Member,
    care_manager: Member,
    clerk: Member,
    outsider: Member,
}

async fn member_of(app: &TestApp, kind: &str, name: &str, profession: &str) -> Member {
    let org = app.organization(kind, name).await;
    let (id, token) = app.member(&org, profession).await;
    Member { id, token, org }
}

async fn join(app: &TestApp, by: &Member, patient: &str, who: &Member, role: &str) {
    app.ok(
        &by.token,
        ADD,
        json!({ "i": { "patientId": patient, "organizationId": who.org, "role": role } }),
    )
    .await;
}

async fn scene(app: &TestApp) -> Scene {
    let doctor = member_of(app, "CLINIC", "みなみ野在宅クリニック", "PHYSICIAN").await;
    let patient = app.patient(&doctor.token, "K-000003").await;
    let nurse = member_of(
        app,
        "VISITING_NURSE_STATION",
        "訪問看護ステーションみなみ野",
        "NURSE",
    )
    .await;
    let pharmacist = member_of(app, "PHARMACY", "みなみ野中央薬局", "PHARMACIST").await;
    let care_manager = member_of(
        app,
        "HOME_CARE_SUPPORT_OFFICE",
        "みなみ野ケアプラン",
        "CARE_MANAGER",
    )
    .await;
    let clerk = member_of(
        app,
        "MUNICIPALITY",
        "みなみ野市 介護保険課",
        "MUNICIPAL_STAFF",
    )
    .await;
    let outsider = member_of(app, "CLINIC", "さくら通り内科クリニック", "PHYSICIAN").await;
    join(app, &doctor, &patient, &nurse, "VISITING_NURSE").await;
    join(app, &doctor, &patient, &pharmacist, "PHARMACY").await;
    join(app, &doctor, &patient, &care_manager, "CARE_MANAGER").await;
    join(app, &doctor, &patient, &clerk, "MUNICIPALITY").await;
    Scene {
        patient,
        doctor,
        nurse,
        pharmacist,
        care_manager,
        clerk,
        outsider,
    }
}

fn to_team(patient: &str, subject: &str, body: &str) -> Value {
    json!({ "i": { "patientId": patient, "subject": subject, "urgency": "URGENT",
                    "wholeCareTeam": true, "body": body } })
}

fn to_orgs(patient: &str, orgs: &[&str], subject: &str) -> Value {
    json!({ "i": { "patientId": patient, "subject": subject, "organizationIds": orgs,
                    "body": "ご確認をお願いします。" } })
}

async fn start(app: &TestApp, by: &Member, input: Value) -> Value {
    app.ok(&by.token, START, input).await["startLiaisonThread"].clone()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    e.get("node")
                        .unwrap_or(e)
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn inbox(app: &TestApp, who: &Member) -> Vec<String> {
    let data = app.ok(&who.token, INBOX, json!({})).await;
    ids(&data["liaisonInbox"]["edges"])
}

e2e!(
    a_thread_to_the_whole_care_team_is_answered_and_read,
    |app| async move {
        let s = scene(app).await;
        let thread = start(
            app,
            &s.doctor,
            to_team(
                &s.patient,
                "服薬の変更について",
                "本日よりアムロジピンを2.5mgに減量しました。\n血圧の記録をお願いします。",
            ),
        )
        .await;
        assert_eq!(thread["urgency"], "URGENT");
        assert_eq!(thread["wholeCareTeam"], true);
        assert_eq!(thread["addressees"], json!([]));
        assert_eq!(
            thread["createdBy"]["id"],
            s.doctor.id.as_str(),
            "stamped by the hub"
        );
        assert_eq!(thread["createdByOrganization"]["id"], s.doctor.org.as_str());
        let first = thread["messages"][0].clone();
        assert_eq!(first["authorOrganization"]["id"], s.doctor.org.as_str());
        let thread_id = thread["id"].as_str().unwrap().to_string();

        // Every other organisation of the team finds it in its inbox.
        for who in [&s.nurse, &s.pharmacist, &s.care_manager, &s.clerk] {
            assert_eq!(inbox(app, who).await, vec![thread_id.clone()]);
        }
        assert_eq!(
            inbox(app, &s.doctor).await,
            Vec::<String>::new(),
            "own messages are read"
        );
        let data = app
            .ok(&s.nurse.token, THREADS, json!({ "id": s.patient }))
            .await;
        let listed = &data["patient"]["liaisonThreads"]["edges"][0]["node"];
        assert_eq!(listed["subject"], "服薬の変更について");
        assert_eq!(listed["unreadCount"], 1);

        // The nurse answers the first message.
        let data = app
            .ok(
                &s.nurse.token,
                POST,
                json!({ "i": { "threadId": thread_id, "body": "承知しました。朝夕の血圧を記録します。", "replyToMessageId": first["id"] } }),
            )
            .await;
        let reply = &data["postLiaisonMessage"];
        assert_eq!(reply["replyTo"]["id"], first["id"]);
        assert_eq!(reply["author"]["id"], s.nurse.id.as_str());
        assert_eq!(reply["authorOrganization"]["id"], s.nurse.org.as_str());
        assert_eq!(
            inbox(app, &s.doctor).await,
            vec![thread_id.clone()],
            "the reply is new to the clinic"
        );

        // Read receipts, per organisation.
        let data = app
            .ok(&s.nurse.token, MARK_THREAD, json!({ "id": thread_id }))
            .await;
        assert_eq!(data["markLiaisonThreadRead"]["unreadCount"], 0);
        assert_eq!(inbox(app, &s.nurse).await, Vec::<String>::new());
        let data = app
            .ok(
                &s.pharmacist.token,
                MARK_MESSAGE,
                json!({ "id": first["id"] }),
            )
            .await;
        assert_eq!(data["markLiaisonMessageRead"]["readByMyOrganization"], true);
        // Marking again changes nothing.
        app.ok(
            &s.pharmacist.token,
            MARK_MESSAGE,
            json!({ "id": first["id"] }),
        )
        .await;

        let data = app
            .ok(&s.doctor.token, THREAD, json!({ "id": thread_id }))
            .await;
        let thread = &data["liaisonThread"];
        assert_eq!(thread["unreadCount"], 1);
        let messages = thread["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 2);
        let readers: Vec<&str> = messages[0]["readBy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["organization"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(readers, [s.nurse.org.as_str(), s.pharmacist.org.as_str()]);
        assert_eq!(
            messages[0]["readBy"][0]["member"]["id"],
            s.nurse.id.as_str()
        );
        assert!(messages[0]["readBy"][0]["readAt"].is_string());
        assert_eq!(
            messages[0]["readByMyOrganization"], true,
            "the author's own"
        );
        assert_eq!(messages[1]["readByMyOrganization"], false);
        assert_eq!(
            messages[1]["body"],
            "承知しました。朝夕の血圧を記録します。"
        );

        // The read-only city marks read too; it may not write.
        app.ok(&s.clerk.token, MARK_THREAD, json!({ "id": thread_id }))
            .await;
        let body = app
            .gql(
                &s.clerk.token,
                POST,
                json!({ "i": { "threadId": thread_id, "body": "了解" } }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    }
);

e2e!(
    every_addressed_organisation_but_the_authors_is_notified,
    |app| async move {
        let s = scene(app).await;
        let thread = start(
            app,
            &s.doctor,
            to_team(&s.patient, "発熱の連絡", "昨夜38.2℃の発熱あり。"),
        )
        .await;
        let message_id = thread["messages"][0]["id"].clone();
        for who in [&s.nurse, &s.pharmacist, &s.care_manager, &s.clerk] {
            let data = app.ok(&who.token, NOTIFICATIONS, json!({})).await;
            let n = &data["notifications"];
            assert_eq!(n.as_array().unwrap().len(), 1, "{n}");
            assert_eq!(n[0]["kind"], "NEW_MESSAGE");
            assert_eq!(n[0]["subjectId"], message_id);
            assert_eq!(n[0]["patientId"], s.patient.as_str());
            let text = n[0]["message"].as_str().unwrap();
            assert!(text.contains("URGENT"), "{text}");
            assert!(
                !text.contains("発熱") && !text.contains("38.2"),
                "no clinical content: {text}"
            );
        }
        let data = app.ok(&s.doctor.token, NOTIFICATIONS, json!({})).await;
        assert_eq!(
            data["notifications"],
            json!([]),
            "not the author's organisation"
        );
        let data = app.ok(&s.outsider.token, NOTIFICATIONS, json!({})).await;
        assert_eq!(data["notifications"], json!([]));

        // To the pharmacy alone: only the pharmacy hears of it …
        let named = start(
            app,
            &s.doctor,
            to_orgs(&s.patient, &[&s.pharmacist.org], "残薬の確認"),
        )
        .await;
        let count = |v: &Value| v["notifications"].as_array().unwrap().len();
        assert_eq!(
            count(&app.ok(&s.pharmacist.token, NOTIFICATIONS, json!({})).await),
            2
        );
        assert_eq!(
            count(&app.ok(&s.nurse.token, NOTIFICATIONS, json!({})).await),
            1
        );
        // … and its answer goes back to the clinic that asked, not to the team.
        app.ok(
            &s.pharmacist.token,
            POST,
            json!({ "i": { "threadId": named["id"], "body": "残薬は7日分でした。" } }),
        )
        .await;
        let data = app.ok(&s.doctor.token, NOTIFICATIONS, json!({})).await;
        assert_eq!(count(&data), 1);
        assert_eq!(data["notifications"][0]["kind"], "NEW_MESSAGE");
        assert_eq!(
            count(&app.ok(&s.nurse.token, NOTIFICATIONS, json!({})).await),
            1
        );
        assert_eq!(
            count(&app.ok(&s.pharmacist.token, NOTIFICATIONS, json!({})).await),
            2
        );
    }
);

e2e!(
    a_thread_to_named_organisations_is_seen_only_by_them,
    |app| async move {
        let s = scene(app).await;
        let thread = start(
            app,
            &s.doctor,
            to_orgs(
                &s.patient,
                &[&s.pharmacist.org, &s.care_manager.org],
                "退院後の訪問予定",
            ),
        )
        .await;
        let thread_id = thread["id"].as_str().unwrap().to_string();
        let mut addressees = ids(&thread["addressees"]);
        addressees.sort();
        let mut expected = vec![s.pharmacist.org.clone(), s.care_manager.org.clone()];
        expected.sort();
        assert_eq!(addressees, expected);

        // An addressee sees it: by id, in the patient's threads, in the inbox.
        let data = app
            .ok(&s.pharmacist.token, THREAD, json!({ "id": thread_id }))
            .await;
        assert_eq!(data["liaisonThread"]["subject"], "退院後の訪問予定");
        let data = app
            .ok(&s.pharmacist.token, THREADS, json!({ "id": s.patient }))
            .await;
        assert_eq!(
            ids(&data["patient"]["liaisonThreads"]["edges"]),
            vec![thread_id.clone()]
        );
        assert_eq!(inbox(app, &s.pharmacist).await, vec![thread_id.clone()]);

        // The team's nurse, not addressed, does not: the thread does not exist for it.
        let body = app
            .gql(&s.nurse.token, THREAD, json!({ "id": thread_id }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
        let data = app
            .ok(&s.nurse.token, THREADS, json!({ "id": s.patient }))
            .await;
        assert_eq!(data["patient"]["liaisonThreads"]["edges"], json!([]));
        assert_eq!(inbox(app, &s.nurse).await, Vec::<String>::new());
        let body = app
            .gql(
                &s.nurse.token,
                POST,
                json!({ "i": { "threadId": thread_id, "body": "横から失礼します" } }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"));
        let body = app
            .gql(&s.nurse.token, MARK_THREAD, json!({ "id": thread_id }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"));
        let message = thread["messages"][0]["id"].clone();
        let body = app
            .gql(&s.nurse.token, MARK_MESSAGE, json!({ "id": message }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"));

        // Addressees must be on the care team; one's own organisation alone
        // addresses no one.
        let body = app
            .gql(
                &s.doctor.token,
                START,
                to_orgs(&s.patient, &[&s.pharmacist.org, &s.outsider.org], "x"),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"));
        assert_eq!(
            body["errors"][0]["extensions"]["field"],
            "input.organizationIds[1]"
        );
        let body = app
            .gql(
                &s.doctor.token,
                START,
                to_orgs(&s.patient, &[&s.doctor.org], "x"),
            )
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["field"],
            "input.organizationIds"
        );
        let body = app
            .gql(
                &s.doctor.token,
                START,
                json!({ "i": { "patientId": s.patient, "subject": "x", "body": "x" } }),
            )
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["field"], "input.organizationIds",
            "no addressee at all: {body}"
        );
    }
);

e2e!(
    access_to_liaison_messages_follows_relationship_consent_and_role,
    |app| async move {
        let s = scene(app).await;
        let thread = start(
            app,
            &s.doctor,
            to_team(&s.patient, "発熱の連絡", "38℃台の発熱"),
        )
        .await;
        let thread_id = thread["id"].as_str().unwrap().to_string();

        // No care relationship: neither the patient nor the thread exists.
        let body = app
            .gql(&s.outsider.token, THREAD, json!({ "id": thread_id }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"));
        let body = app
            .gql(&s.outsider.token, START, to_team(&s.patient, "x", "x"))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"));
        assert_eq!(inbox(app, &s.outsider).await, Vec::<String>::new());

        // A caller without the category, on the team (the pharmacy's
        // system, whose key reads identity only): the field is withheld,
        // writing refused.
        let key = app
            .ok(
                &app.admin_token,
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret apiKey { id } } }",
                json!({ "i": { "organizationId": s.pharmacist.org, "name": "薬局システム",
                    "permissions": [{ "category": "IDENTITY", "level": "READ" }] } }),
            )
            .await;
        let fire = Member {
            id: key["createApiKey"]["apiKey"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
            token: key["createApiKey"]["secret"].as_str().unwrap().to_string(),
            org: s.pharmacist.org.clone(),
        };
        let body = app
            .gql(&fire.token, THREADS, json!({ "id": s.patient }))
            .await;
        assert!(body["data"]["patient"]["liaisonThreads"].is_null());
        let e = &errors_at(&body, &["patient", "liaisonThreads"])[0];
        assert_eq!(e["code"], "FORBIDDEN_FIELD");
        assert_eq!(e["category"], "LIAISON_MESSAGES");
        assert_eq!(e["reason"], "NOT_PERMITTED_FOR_ROLE");
        let body = app
            .gql(&fire.token, THREAD, json!({ "id": thread_id }))
            .await;
        assert!(body["data"]["liaisonThread"].is_null());
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN_FIELD"));
        let body = app
            .gql(&fire.token, START, to_team(&s.patient, "x", "x"))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"));
        let body = app
            .gql(&fire.token, MARK_THREAD, json!({ "id": thread_id }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"));
        assert_eq!(inbox(app, &fire).await, Vec::<String>::new());

        // Emergency access does not open liaison messages.
        let crew = member_of(app, "AMBULANCE_SERVICE", "北川消防署", "EMS_CREW").await;
        app.ok(
            &crew.token,
            "mutation($i: OpenEmergencyAccessInput!) { openEmergencyAccess(input: $i) { id } }",
            json!({ "i": { "patientId": s.patient, "reason": "救急搬送" } }),
        )
        .await;
        let body = app
            .gql(&crew.token, THREADS, json!({ "id": s.patient }))
            .await;
        assert_eq!(
            errors_at(&body, &["patient", "liaisonThreads"])[0]["reason"],
            "NOT_AN_EMERGENCY_CATEGORY"
        );
        let body = app
            .gql(
                &crew.token,
                POST,
                json!({ "i": { "threadId": thread_id, "body": "x" } }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"));

        // Consent withdrawn: the team keeps the relationship, loses the messages.
        assert_eq!(inbox(app, &s.nurse).await, vec![thread_id.clone()]);
        app.ok(
            &s.doctor.token,
            "mutation($i: WithdrawConsentInput!) { withdrawConsent(input: $i) { id } }",
            json!({ "i": { "patientId": s.patient, "reason": "本人の申し出" } }),
        )
        .await;
        let body = app
            .gql(&s.nurse.token, THREADS, json!({ "id": s.patient }))
            .await;
        assert_eq!(
            errors_at(&body, &["patient", "liaisonThreads"])[0]["reason"],
            "NO_CONSENT"
        );
        let body = app
            .gql(&s.nurse.token, THREAD, json!({ "id": thread_id }))
            .await;
        assert!(body["data"]["liaisonThread"].is_null());
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN_FIELD"));
        assert_eq!(
            inbox(app, &s.nurse).await,
            Vec::<String>::new(),
            "left out of the inbox"
        );
        let body = app
            .gql(
                &s.nurse.token,
                POST,
                json!({ "i": { "threadId": thread_id, "body": "x" } }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"));
        let body = app
            .gql(&s.doctor.token, START, to_team(&s.patient, "x", "x"))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"));
    }
);

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn with_attachment(thread: &str, filename: &str, mime: &str, content: &str) -> Value {
    json!({ "i": { "threadId": thread, "body": "処方箋の写しを添付します。",
                    "attachments": [{ "filename": filename, "mimeType": mime, "contentBase64": content }] } })
}

fn field(body: &Value) -> String {
    assert_eq!(
        error_code(body).as_deref(),
        Some("BAD_USER_INPUT"),
        "{body}"
    );
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

e2e!(
    attachments_are_checked_and_read_under_the_policy,
    |app| async move {
        let s = scene(app).await;
        let thread = start(
            app,
            &s.doctor,
            to_orgs(&s.patient, &[&s.pharmacist.org], "処方変更"),
        )
        .await;
        let thread_id = thread["id"].as_str().unwrap();
        let pdf = "%PDF-1.4\n% 処方箋\n".as_bytes().to_vec();
        let data = app
            .ok(
                &s.doctor.token,
                POST,
                with_attachment(thread_id, "処方箋.pdf", "application/pdf", &b64(&pdf)),
            )
            .await;
        let attachment = &data["postLiaisonMessage"]["attachments"][0];
        assert_eq!(attachment["filename"], "処方箋.pdf");
        assert_eq!(attachment["mimeType"], "application/pdf");
        assert_eq!(attachment["sizeBytes"], pdf.len());
        let data = app
            .ok(
                &s.pharmacist.token,
                "query($id: ID!) { liaisonThread(id: $id) { messages { attachments { id filename contentBase64 } } } }",
                json!({ "id": thread_id }),
            )
            .await;
        let content = data["liaisonThread"]["messages"][1]["attachments"][0]["contentBase64"]
            .as_str()
            .unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(content)
                .unwrap(),
            pdf
        );
        // The log tells which file was opened: the read names it.
        let attachment_id = data["liaisonThread"]["messages"][1]["attachments"][0]["id"].clone();
        let opened: Vec<Value> = log_for(app, &s.patient)
            .await
            .into_iter()
            .filter(|e| {
                e["action"] == "READ"
                    && e["actorId"] == s.pharmacist.id.as_str()
                    && e["detail"].as_str().is_some_and(|d| d.contains("opened"))
            })
            .collect();
        assert_eq!(opened.len(), 1, "{opened:?}");
        assert!(
            opened[0]["detail"]
                .as_str()
                .unwrap()
                .contains(attachment_id.as_str().unwrap()),
            "{opened:?}"
        );

        let token = s.doctor.token.as_str();
        let post = |input: Value| app.gql(token, POST, input);
        assert_eq!(
            field(
                &post(with_attachment(
                    thread_id,
                    "a.html",
                    "text/html",
                    &b64(b"<p>x</p>")
                ))
                .await
            ),
            "input.attachments[0].mimeType"
        );
        assert_eq!(
            field(
                &post(with_attachment(
                    thread_id,
                    "a.pdf",
                    "application/pdf",
                    "not base64!"
                ))
                .await
            ),
            "input.attachments[0].contentBase64"
        );
        assert_eq!(
            field(&post(with_attachment(thread_id, "a.png", "image/png", &b64(&pdf))).await),
            "input.attachments[0].contentBase64",
            "a PDF declared as a PNG"
        );
        assert_eq!(
            field(
                &post(with_attachment(
                    thread_id,
                    "a.txt",
                    "text/plain",
                    &b64(b"\n<html><script>alert(1)</script></html>")
                ))
                .await
            ),
            "input.attachments[0].contentBase64",
            "an HTML page declared as text"
        );
        // Markup a browser reads however the tag ends, and a name whose
        // ending would open it as something other than its type.
        for (name, content) in [
            ("a.txt", &b"<html\n<script>alert(1)</script>"[..]),
            (
                "a.txt",
                b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>",
            ),
            ("a.txt", b"<script/src=x></script>"),
        ] {
            assert_eq!(
                field(
                    &post(with_attachment(
                        thread_id,
                        name,
                        "text/plain",
                        &b64(content)
                    ))
                    .await
                ),
                "input.attachments[0].contentBase64",
                "{}",
                String::from_utf8_lossy(content)
            );
        }
        for name in ["memo.html", "memo.svg", "run.exe", "a.pdf"] {
            assert_eq!(
                field(
                    &post(with_attachment(
                        thread_id,
                        name,
                        "text/plain",
                        &b64(b"memo")
                    ))
                    .await
                ),
                "input.attachments[0].filename",
                "{name}"
            );
        }
        assert_eq!(
            field(
                &post(with_attachment(
                    thread_id,
                    "../a.pdf",
                    "application/pdf",
                    &b64(&pdf)
                ))
                .await
            ),
            "input.attachments[0].filename"
        );
        let six: Vec<Value> = (0..6)
            .map(|i| json!({ "filename": format!("{i}.txt"), "mimeType": "text/plain", "contentBase64": b64(b"memo") }))
            .collect();
        assert_eq!(
            field(
                &post(json!({ "i": { "threadId": thread_id, "body": "x", "attachments": six } }))
                    .await
            ),
            "input.attachments"
        );
        assert_eq!(
            field(
                &post(json!({ "i": { "threadId": thread_id, "body": "あ".repeat(4001) } })).await
            ),
            "input.body"
        );
        assert_eq!(
            field(
                &app.gql(&s.doctor.token, START, to_team(&s.patient, " ", "x"))
                    .await
            ),
            "input.subject"
        );
        // Nothing of the refused messages was kept.
        let data = app
            .ok(&s.pharmacist.token, THREAD, json!({ "id": thread_id }))
            .await;
        assert_eq!(
            data["liaisonThread"]["messages"].as_array().unwrap().len(),
            2
        );
    }
);

/// Over the per-file limit, in a request the body limit lets through.
async fn a_too_large_attachment_is_refused(backend: Backend) {
    let owned = TestApp::spawn_with(backend, |c| c.max_body_bytes = 2 * 1024 * 1024).await;
    let app = &owned;
    {
        let s = scene(app).await;
        let thread = start(
            app,
            &s.doctor,
            to_team(&s.patient, "検査結果の共有", "添付します。"),
        )
        .await;
        let big = vec![b'a'; 512 * 1024 + 1];
        let body = app
            .gql(
                &s.doctor.token,
                POST,
                with_attachment(
                    thread["id"].as_str().unwrap(),
                    "検査.txt",
                    "text/plain",
                    &b64(&big),
                ),
            )
            .await;
        assert_eq!(field(&body), "input.attachments[0].contentBase64");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("512 KiB")
        );
        let fits = vec![b'a'; 512 * 1024];
        app.ok(
            &s.doctor.token,
            POST,
            with_attachment(
                thread["id"].as_str().unwrap(),
                "検査.txt",
                "text/plain",
                &b64(&fits),
            ),
        )
        .await;
    }
    owned.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_large_attachment_is_refused_on_sqlite() {
    a_too_large_attachment_is_refused(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_large_attachment_is_refused_on_postgres() {
    if postgres_configured() {
        a_too_large_attachment_is_refused(Backend::Postgres).await;
    }
}

async fn log_for(app: &TestApp, patient: &str) -> Vec<Value> {
    let data = app
        .ok(
            &app.admin_token,
            "query($p: ID!) { auditLog(filter: { patientId: $p }, first: 100) { edges { node { action actorId categories outcome detail } } } }",
            json!({ "p": patient }),
        )
        .await;
    data["auditLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

e2e!(
    writes_reads_and_receipts_of_liaison_messages_are_audited,
    |app| async move {
        let s = scene(app).await;
        let thread = start(app, &s.doctor, to_team(&s.patient, "発熱の連絡", "38℃")).await;
        let thread_id = thread["id"].as_str().unwrap();
        app.ok(&s.nurse.token, THREAD, json!({ "id": thread_id }))
            .await;
        app.ok(&s.nurse.token, MARK_THREAD, json!({ "id": thread_id }))
            .await;
        let body = app
            .gql(
                &s.pharmacist.token,
                POST,
                json!({ "i": { "threadId": thread_id, "body": "\u{7}" } }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"));

        let log = log_for(app, &s.patient).await;
        let by = |actor: &str, action: &str| {
            log.iter()
                .filter(|e| e["actorId"] == actor && e["action"] == action)
                .filter(|e| {
                    e["categories"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|c| c == "LIAISON_MESSAGES")
                })
                .count()
        };
        assert_eq!(by(&s.doctor.id, "WRITE"), 1, "{log:#?}");
        assert!(
            by(&s.nurse.id, "READ") >= 2,
            "the read and the receipt: {log:#?}"
        );
        assert!(log.iter().any(|e| {
            e["actorId"] == s.nurse.id.as_str()
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("marked 1 liaison message(s) read"))
        }));
        assert_eq!(
            by(&s.pharmacist.id, "WRITE"),
            0,
            "a refused message writes nothing"
        );

        // A withheld thread is recorded as a denial.
        app.ok(
            &s.doctor.token,
            "mutation($i: WithdrawConsentInput!) { withdrawConsent(input: $i) { id } }",
            json!({ "i": { "patientId": s.patient } }),
        )
        .await;
        app.gql(&s.care_manager.token, THREAD, json!({ "id": thread_id }))
            .await;
        let log = log_for(app, &s.patient).await;
        assert!(
            log.iter()
                .any(|e| e["actorId"] == s.care_manager.id.as_str()
                    && e["outcome"] == "DENIED"
                    && e["categories"] == json!(["LIAISON_MESSAGES"]))
        );
    }
);

e2e!(
    the_inbox_pages_through_threads_newest_first,
    |app| async move {
        let s = scene(app).await;
        let mut started = Vec::new();
        for subject in ["服薬の変更について", "発熱の連絡", "退院後の訪問予定"]
        {
            let t = start(
                app,
                &s.doctor,
                to_team(&s.patient, subject, "ご確認ください。"),
            )
            .await;
            started.push(t["id"].as_str().unwrap().to_string());
            app.clock.advance(chrono::Duration::minutes(5));
        }
        let data = app.ok(&s.nurse.token, INBOX, json!({ "first": 2 })).await;
        let page = &data["liaisonInbox"];
        assert_eq!(
            ids(&page["edges"]),
            [started[2].clone(), started[1].clone()]
        );
        assert_eq!(page["pageInfo"]["hasNextPage"], true);
        assert_eq!(page["edges"][0]["node"]["patient"]["name"], "連携 花子");
        let data = app
            .ok(
                &s.nurse.token,
                INBOX,
                json!({ "first": 2, "after": page["pageInfo"]["endCursor"] }),
            )
            .await;
        assert_eq!(
            ids(&data["liaisonInbox"]["edges"]),
            vec![started[0].clone()]
        );
        assert_eq!(data["liaisonInbox"]["pageInfo"]["hasNextPage"], false);
        // A reply moves a thread to the top.
        app.ok(
            &s.pharmacist.token,
            POST,
            json!({ "i": { "threadId": started[0], "body": "確認しました。" } }),
        )
        .await;
        let data = app.ok(&s.nurse.token, INBOX, json!({ "first": 1 })).await;
        assert_eq!(
            ids(&data["liaisonInbox"]["edges"]),
            vec![started[0].clone()]
        );
        assert_eq!(data["liaisonInbox"]["edges"][0]["node"]["unreadCount"], 2);
        let body = app
            .gql(&s.nurse.token, INBOX, json!({ "after": "garbage" }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"));
        let body = app.gql(&s.nurse.token, INBOX, json!({ "first": 0 })).await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"));
    }
);

e2e!(
    concurrent_posts_cannot_pass_the_limit_of_a_thread,
    |app| async move {
        use futures::stream::{self, StreamExt};
        let s = scene(app).await;
        let thread = start(app, &s.doctor, to_team(&s.patient, "長い相談", "1")).await;
        let thread_id = thread["id"].as_str().unwrap().to_string();
        // 499 of the 500 messages a thread holds.
        let token = s.doctor.token.as_str();
        stream::iter(2..=499)
            .for_each_concurrent(8, |i| {
                let input = json!({ "i": { "threadId": thread_id, "body": i.to_string() } });
                async move {
                    app.ok(token, POST, input).await;
                }
            })
            .await;
        // Four organisations post the 500th at once: one gets in.
        let posters = [&s.doctor, &s.nurse, &s.pharmacist, &s.care_manager];
        let bodies = futures::future::join_all(posters.iter().map(|who| {
            app.gql(
                &who.token,
                POST,
                json!({ "i": { "threadId": thread_id, "body": "最後の一通" } }),
            )
        }))
        .await;
        let codes: Vec<Option<String>> = bodies.iter().map(error_code).collect();
        assert_eq!(
            codes.iter().filter(|c| c.is_none()).count(),
            1,
            "exactly one post is the 500th: {codes:?}"
        );
        assert_eq!(
            codes
                .iter()
                .filter(|c| c.as_deref() == Some("CONFLICT"))
                .count(),
            3,
            "{codes:?}"
        );
        let data = app
            .ok(&s.doctor.token, THREAD, json!({ "id": thread_id }))
            .await;
        assert_eq!(
            data["liaisonThread"]["messages"].as_array().unwrap().len(),
            500
        );
    }
);

e2e!(
    an_inbox_page_is_the_same_whether_or_not_threads_the_caller_may_not_read_lie_before_it,
    |app| async move {
        use futures::stream::{self, StreamExt};
        let s = scene(app).await;
        // The oldest thread, of a patient whose messages the nurse may read …
        let other = app.patient(&s.doctor.token, "K-000004").await;
        join(app, &s.doctor, &other, &s.nurse, "VISITING_NURSE").await;
        let readable = start(
            app,
            &s.doctor,
            to_team(&other, "定期訪問", "ご確認ください。"),
        )
        .await;
        let alone = app.ok(&s.nurse.token, INBOX, json!({ "first": 20 })).await;
        assert_eq!(
            ids(&alone["liaisonInbox"]["edges"]),
            vec![readable["id"].as_str().unwrap().to_string()]
        );
        assert_eq!(alone["liaisonInbox"]["pageInfo"]["hasNextPage"], false);
        app.clock.advance(chrono::Duration::minutes(5));
        // … behind many newer threads (more than a scan of candidates
        // followed by the policy would read in one request), of a patient
        // whose consent is then withdrawn.
        let doctor = &s.doctor;
        stream::iter(0..260)
            .for_each_concurrent(8, |i| {
                let input = to_team(&s.patient, &format!("連絡 {i}"), "ご確認ください。");
                async move {
                    start(app, doctor, input).await;
                }
            })
            .await;
        app.ok(
            &s.doctor.token,
            "mutation($i: WithdrawConsentInput!) { withdrawConsent(input: $i) { id } }",
            json!({ "i": { "patientId": s.patient, "reason": "本人の申し出" } }),
        )
        .await;

        // The same page, cursor and all: nothing tells of the 260 threads.
        let data = app.ok(&s.nurse.token, INBOX, json!({ "first": 20 })).await;
        assert_eq!(data, alone);
        let data = app.ok(&s.nurse.token, INBOX, json!({ "first": 1 })).await;
        assert_eq!(data, alone);
        // The pharmacy, on the first patient's team only, has all 260 unread
        // and may read none of them: an empty inbox, and no next page.
        let data = app
            .ok(&s.pharmacist.token, INBOX, json!({ "first": 100 }))
            .await;
        assert_eq!(data["liaisonInbox"]["edges"], json!([]));
        assert_eq!(data["liaisonInbox"]["pageInfo"]["hasNextPage"], false);
    }
);

/// The statements a query costs in each of three runs. On a loaded machine
/// the count of one run strays both ways: a loader's batch sometimes waits
/// long enough to take in the next level's keys too (a statement saved),
/// and sometimes a level's keys straddle the end of the batching window (a
/// statement more). A cost that grew with the patients would show in every
/// run; the comparison below sets the most one patient costs against the
/// fewest a dozen cost, so neither stray decides it.
async fn three_runs(app: &TestApp, token: &str, query: &str) -> Vec<(Value, u64)> {
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(app.count_statements(token, query, json!({})).await);
    }
    runs
}

/// The inbox of a care office with one patient costs as many statements as
/// with a dozen: threads, unread counts, messages, receipts, patients and the
/// policy are loaded in batches.
async fn cost_of_the_inbox(backend: Backend) {
    let owned = TestApp::spawn_with(backend, |c| c.batch_window_micros = 50_000).await;
    let app = &owned;
    {
        let s = scene(app).await;
        let query = "{ liaisonInbox(first: 50) { edges { node { subject urgency unreadCount
            patient { name } createdByOrganization { name }
            messages { body author { name } authorOrganization { name } readBy { organization { name } } attachments { filename } } } } } }";
        // Every thread the same shape: the clinic writes, the nurse answers
        // and reads, the care office has both unread.
        let s = &s;
        let thread = |p: String| async move {
            let t = start(
                app,
                &s.doctor,
                to_team(&p, "服薬の変更について", "減量しました。"),
            )
            .await;
            app.ok(
                &s.nurse.token,
                POST,
                json!({ "i": { "threadId": t["id"], "body": "了解しました。" } }),
            )
            .await;
            app.ok(&s.nurse.token, MARK_THREAD, json!({ "id": t["id"] }))
                .await;
        };
        thread(s.patient.clone()).await;
        let (body, one) = three_runs(app, &s.care_manager.token, query)
            .await
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .unwrap();
        assert_eq!(
            body["data"]["liaisonInbox"]["edges"]
                .as_array()
                .unwrap()
                .len(),
            1,
            "{body}"
        );
        for i in 0..12 {
            let p = app.patient(&s.doctor.token, &format!("K-1{i:05}")).await;
            join(app, &s.doctor, &p, &s.care_manager, "CARE_MANAGER").await;
            join(app, &s.doctor, &p, &s.nurse, "VISITING_NURSE").await;
            thread(p).await;
        }
        let (body, many) = three_runs(app, &s.care_manager.token, query)
            .await
            .into_iter()
            .min_by_key(|(_, n)| *n)
            .unwrap();
        assert!(body.get("errors").is_none(), "{body}");
        assert_eq!(
            body["data"]["liaisonInbox"]["edges"]
                .as_array()
                .unwrap()
                .len(),
            13
        );
        // Not more (organisations and members may come from the directory
        // cache by then, so it can be fewer).
        assert!(
            many <= one,
            "13 patients' threads cost {many} statements, one patient's {one}"
        );
        // One statement per loader and level, the policy's three, the audit
        // append: a fixed number, far below one per thread.
        assert!(one <= 20, "the inbox costs {one} statements");
    }
    owned.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_of_the_inbox_does_not_grow_with_patients_on_sqlite() {
    cost_of_the_inbox(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_of_the_inbox_does_not_grow_with_patients_on_postgres() {
    if postgres_configured() {
        cost_of_the_inbox(Backend::Postgres).await;
    }
}

e2e!(
    the_author_of_a_message_hears_personally_when_it_is_answered,
    |app| async move {
        let s = scene(app).await;
        let thread = start(
            app,
            &s.doctor,
            to_team(
                &s.patient,
                "服薬の変更について",
                "アムロジピンを減量しました。",
            ),
        )
        .await;
        let question = thread["messages"][0]["id"].as_str().unwrap().to_string();
        // A colleague of the doctor, at the same clinic.
        let (_, colleague) = app.member(&s.doctor.org, "NURSE").await;
        let answer = app
            .ok(
                &s.nurse.token,
                POST,
                json!({ "i": { "threadId": thread["id"], "body": "了解しました。血圧を見ていきます。", "replyToMessageId": question } }),
            )
            .await;
        let answer_id = answer["postLiaisonMessage"]["id"].clone();
        let personal = "{ notifications { kind subjectId personal } }";
        let mine = app.ok(&s.doctor.token, personal, json!({})).await;
        let mine = mine["notifications"].as_array().unwrap();
        assert!(
            mine.iter().any(|n| n["kind"] == "MESSAGE_REPLY"
                && n["subjectId"] == answer_id
                && n["personal"] == true),
            "{mine:?}"
        );
        // The clinic as a whole is told of the new message; the personal
        // notice is the doctor's alone.
        let theirs = app.ok(&colleague, personal, json!({})).await;
        let theirs = theirs["notifications"].as_array().unwrap();
        assert!(
            theirs
                .iter()
                .any(|n| n["kind"] == "NEW_MESSAGE" && n["subjectId"] == answer_id)
        );
        assert!(
            theirs.iter().all(|n| n["kind"] != "MESSAGE_REPLY"),
            "{theirs:?}"
        );
        // Answering oneself notifies nobody personally.
        app.ok(
            &s.doctor.token,
            POST,
            json!({ "i": { "threadId": thread["id"], "body": "補足です。", "replyToMessageId": question } }),
        )
        .await;
        let mine = app.ok(&s.doctor.token, personal, json!({})).await;
        let replies = mine["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["kind"] == "MESSAGE_REPLY")
            .count();
        assert_eq!(replies, 1);
    }
);

/// The patient's access history as `who` reads it.
async fn access_history(app: &TestApp, who: &Member, patient: &str) -> Vec<Value> {
    let data = app
        .ok(
            &who.token,
            "query($id: ID!) { patient(id: $id) { accessHistory(first: 100) { edges { node { action outcome actorId categories detail hash } } } } }",
            json!({ "id": patient }),
        )
        .await;
    data["patient"]["accessHistory"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

e2e!(
    refused_threads_and_notifications_show_in_the_access_history_only_by_their_category,
    |app| async move {
        let s = scene(app).await;
        // A thread to the pharmacy alone: the care manager's office may not
        // know of it. The pharmacy is notified.
        let thread = start(
            app,
            &s.doctor,
            to_orgs(&s.patient, &[&s.pharmacist.org], "服薬の相談"),
        )
        .await;
        let thread_id = thread["id"].as_str().unwrap().to_string();
        let message_id = thread["messages"][0]["id"].as_str().unwrap().to_string();
        let notification_id = app
            .ok(
                &s.pharmacist.token,
                "{ notifications { id kind } }",
                json!({}),
            )
            .await["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["kind"] == "NEW_MESSAGE")
            .expect("the pharmacy is notified")["id"]
            .as_str()
            .unwrap()
            .to_string();
        // The care manager tries the thread and its message: no such thing.
        for (query, id) in [(THREAD, &thread_id), (MARK_MESSAGE, &message_id)] {
            let body = app
                .gql(&s.care_manager.token, query, json!({ "id": id }))
                .await;
            assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
        }
        let names_an_object = |e: &Value| {
            let detail = e["detail"].as_str().unwrap_or_default();
            [&thread_id, &message_id, &notification_id]
                .iter()
                .any(|id| detail.contains(id.as_str()))
        };
        // The nurse — whose station reads liaison messages and the access
        // history — sees that the care manager was refused something of
        // LIAISON_MESSAGES, not what.
        let history = access_history(app, &s.nurse, &s.patient).await;
        let refused: Vec<&Value> = history
            .iter()
            .filter(|e| e["actorId"] == json!(s.care_manager.id) && e["outcome"] == "DENIED")
            .collect();
        assert_eq!(refused.len(), 2, "{history:?}");
        for e in &refused {
            assert_eq!(e["categories"], json!(["LIAISON_MESSAGES"]), "{e}");
            assert_eq!(e["detail"], Value::Null, "{e}");
            assert_eq!(e["hash"], "", "{e}");
        }
        assert!(!history.iter().any(names_an_object), "{history:?}");

        // The patient's consent comes to exclude liaison messages (a
        // narrowing: at once). The pharmacist's notification is now of a
        // category closed to it: marking it read is refused.
        let consent = app
            .consent(
                &s.doctor.token,
                &s.patient,
                json!({ "excludedCategories": ["LIAISON_MESSAGES"] }),
            )
            .await;
        assert_eq!(consent["status"], "IN_FORCE", "{consent}");
        let body = app
            .gql(
                &s.pharmacist.token,
                "mutation($id: ID!) { markNotificationRead(id: $id) { id } }",
                json!({ "id": notification_id }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
        // To the nurse, who may no longer read liaison messages, none of
        // these refusals exists.
        let history = access_history(app, &s.nurse, &s.patient).await;
        assert!(
            !history.iter().any(|e| e["outcome"] == "DENIED"
                && (e["actorId"] == json!(s.care_manager.id)
                    || e["actorId"] == json!(s.pharmacist.id))),
            "{history:?}"
        );
        assert!(!history.iter().any(names_an_object), "{history:?}");

        // The administrators' log names every refused object, under its
        // category.
        let log = app
            .ok(
                &app.admin_token,
                "query($p: ID!) { auditLog(filter: { patientId: $p, action: DENIED }, first: 100) { edges { node { categories detail } } } }",
                json!({ "p": s.patient }),
            )
            .await;
        let entries: Vec<&Value> = log["auditLog"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["node"])
            .collect();
        for id in [&thread_id, &message_id, &notification_id] {
            let entry = entries
                .iter()
                .find(|e| {
                    e["detail"]
                        .as_str()
                        .unwrap_or_default()
                        .contains(id.as_str())
                })
                .unwrap_or_else(|| panic!("{id}: {log}"));
            assert_eq!(entry["categories"], json!(["LIAISON_MESSAGES"]), "{entry}");
        }
    }
);

e2e!(
    a_message_is_shown_only_in_its_own_thread_whatever_the_database_says,
    |app| async move {
        // Someone who can write to the database points a message's reply at
        // another patient's message, and moves a third patient's message
        // into the thread: shown, they would be read — and audited — as
        // this patient's. The hub follows neither.
        use entities::liaison_message::{Column, Entity};
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        let s = scene(app).await;
        let thread = start(
            app,
            &s.doctor,
            to_team(&s.patient, "往診の件", "明日伺います。"),
        )
        .await;
        let mine: uuid::Uuid = thread["messages"][0]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let other_patient = app.patient(&s.outsider.token, "K-OTHER").await;
        let other = start(
            app,
            &s.outsider,
            to_team(&other_patient, "別の患者", "別の患者の秘密の所見"),
        )
        .await;
        let theirs: uuid::Uuid = other["messages"][0]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let third = app
            .ok(
                &s.outsider.token,
                POST,
                json!({ "i": { "threadId": other["id"], "body": "移される返信" } }),
            )
            .await["postLiaisonMessage"]["id"]
            .as_str()
            .unwrap()
            .parse::<uuid::Uuid>()
            .unwrap();
        Entity::update_many()
            .col_expr(Column::ReplyToMessageId, Expr::value(theirs))
            .filter(Column::Id.eq(mine))
            .exec(&app.db)
            .await
            .unwrap();
        let thread_id: uuid::Uuid = thread["id"].as_str().unwrap().parse().unwrap();
        Entity::update_many()
            .col_expr(Column::ThreadId, Expr::value(thread_id))
            .filter(Column::Id.eq(third))
            .exec(&app.db)
            .await
            .unwrap();
        let data = app
            .ok(&s.doctor.token, THREAD, json!({ "id": thread["id"] }))
            .await;
        let messages = data["liaisonThread"]["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 1, "{data}");
        assert_eq!(messages[0]["replyTo"], Value::Null, "{data}");
        let said = data.to_string();
        assert!(
            !said.contains("秘密") && !said.contains("移される"),
            "{data}"
        );
    }
);

e2e!(
    addressees_and_receipts_name_the_team_only_to_readers_of_care_team,
    |app| async move {
        let s = scene(app).await;
        let named = start(
            app,
            &s.doctor,
            to_orgs(&s.patient, &[&s.nurse.org, &s.pharmacist.org], "服薬の件"),
        )
        .await;
        let whole = start(
            app,
            &s.doctor,
            to_team(&s.patient, "退院後の方針", "共有します。"),
        )
        .await;
        app.ok(&s.nurse.token, MARK_THREAD, json!({ "id": whole["id"] }))
            .await;
        const SEEN: &str = "query($id: ID!) { liaisonThread(id: $id) { addressees { id }
            messages { readBy { organization { id } } } } }";
        let seen = |data: &Value| {
            let t = &data["liaisonThread"];
            let orgs = |list: &Value| -> Vec<String> {
                let mut v: Vec<String> = list
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| {
                        o.get("organization").unwrap_or(o)["id"]
                            .as_str()
                            .unwrap()
                            .to_string()
                    })
                    .collect();
                v.sort();
                v
            };
            (orgs(&t["addressees"]), orgs(&t["messages"][0]["readBy"]))
        };
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        // With CARE_TEAM open, the pharmacist sees whom the thread names
        // and who read the other — and the log records a CARE_TEAM read.
        let data = app
            .ok(&s.pharmacist.token, SEEN, json!({ "id": named["id"] }))
            .await;
        assert_eq!(
            seen(&data).0,
            sorted(vec![s.nurse.org.clone(), s.pharmacist.org.clone()])
        );
        let data = app
            .ok(&s.pharmacist.token, SEEN, json!({ "id": whole["id"] }))
            .await;
        assert_eq!(seen(&data).1, vec![s.nurse.org.clone()]);
        let reads_of_team = |log: &[Value]| {
            log.iter()
                .filter(|e| {
                    e["actorId"] == s.pharmacist.id.as_str()
                        && e["action"] == "READ"
                        && e["categories"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|c| c == "CARE_TEAM")
                })
                .count()
        };
        let before = reads_of_team(&log_for(app, &s.patient).await);
        assert!(before > 0);
        // The patient's new consent keeps CARE_TEAM from everyone: the
        // threads stay readable, but name no other organisation of the
        // team — not the nurse station addressed, nor that it read.
        app.consent(
            &s.doctor.token,
            &s.patient,
            json!({ "excludedCategories": ["CARE_TEAM"] }),
        )
        .await;
        for (reader, thread, addressees, receipts) in [
            (
                &s.pharmacist,
                &named,
                vec![s.pharmacist.org.clone()],
                vec![],
            ),
            (&s.pharmacist, &whole, vec![], vec![]),
            (&s.nurse, &named, vec![s.nurse.org.clone()], vec![]),
            (&s.nurse, &whole, vec![], vec![s.nurse.org.clone()]),
        ] {
            let data = app
                .ok(&reader.token, SEEN, json!({ "id": thread["id"] }))
                .await;
            assert_eq!(seen(&data), (addressees, receipts), "{data}");
        }
        assert_eq!(reads_of_team(&log_for(app, &s.patient).await), before);
    }
);

e2e!(
    marking_a_hidden_message_read_costs_what_a_missing_one_does,
    |app| async move {
        let s = scene(app).await;
        let thread = start(
            app,
            &s.doctor,
            to_team(&s.patient, "往診日の変更", "ご確認を。"),
        )
        .await;
        let message = thread["messages"][0]["id"].as_str().unwrap().to_string();
        // The same id shape, naming nothing.
        let missing = format!("{}ffff", &message[..message.len() - 4]);
        assert_ne!(missing, message);
        // A first request of the caller loads what later ones find cached.
        app.gql(&s.outsider.token, MARK_MESSAGE, json!({ "id": missing }))
            .await;
        let mut costs = Vec::new();
        for id in [&message, &missing, &message, &missing] {
            let (body, statements) = app
                .count_statements(&s.outsider.token, MARK_MESSAGE, json!({ "id": id }))
                .await;
            assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
            costs.push(statements);
        }
        // A message of a patient the outsider may not see, and an id that
        // names none: the same statements.
        assert_eq!(costs[0], costs[1], "{costs:?}");
        assert_eq!(costs[2], costs[3], "{costs:?}");
    }
);

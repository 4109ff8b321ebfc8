//! A refused reference to a patient looks the same whether the patient
//! exists or not — the same error (code, message, path), the same kind of
//! audit entry (`DENIED`) — on every path: by id, by local ID, federation
//! `_entities`, subscriptions, the printable page, mutations, and objects
//! bound to a patient looked up by their own id. (That they also take the
//! same time is checked by `tests/timing/refusal_timing.rs`.)

use renkei_tests::*;
use serde_json::{Value, json};
use uuid::Uuid;

/// Organisation A's physician and patient (local ID `R-000001`), with a
/// record, a liaison thread and a care-team membership of the patient; a
/// physician of organisation B with no relationship to the patient; a
/// pharmacist of B (who may not open emergency access).
struct Scene {
    org_a: String,
    doctor_a: String,
    patient: String,
    record: String,
    thread: String,
    membership: String,
    stranger_id: String,
    stranger: String,
    pharmacist_id: String,
    pharmacist: String,
}

async fn scene(app: &TestApp) -> Scene {
    let org_a = app.organization("CLINIC", "拒否 A クリニック").await;
    let (_, doctor_a) = app.member(&org_a, "PHYSICIAN").await;
    let patient = app.patient(&doctor_a, "R-000001").await;
    let data = app
        .ok(
            &doctor_a,
            "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { record { id } } }",
            json!({ "i": { "records": [{ "patientId": patient, "effectiveAt": "2026-01-05T00:00:00Z",
                "data": { "labResult": { "code": "LAB-HbA1c", "name": "HbA1c", "value": "7.2", "unit": "%", "abnormal": "HIGH" } } }] } }),
        )
        .await;
    let record = data["writeRecords"][0]["record"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let data = app
        .ok(
            &doctor_a,
            "mutation($i: StartLiaisonThreadInput!) { startLiaisonThread(input: $i) { id } }",
            json!({ "i": { "patientId": patient, "subject": "訪問予定", "wholeCareTeam": true, "body": "ご確認ください" } }),
        )
        .await;
    let thread = data["startLiaisonThread"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let pharmacy_a = app.organization("PHARMACY", "拒否 A 薬局").await;
    let data = app
        .ok(
            &doctor_a,
            "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
            json!({ "i": { "patientId": patient, "organizationId": pharmacy_a, "role": "PHARMACY" } }),
        )
        .await;
    let membership = data["addCareTeamMember"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let org_b = app.organization("CLINIC", "拒否 B クリニック").await;
    let (stranger_id, stranger) = app.member(&org_b, "PHYSICIAN").await;
    let pharmacy_b = app.organization("PHARMACY", "拒否 B 薬局").await;
    let (pharmacist_id, pharmacist) = app.member(&pharmacy_b, "PHARMACIST").await;
    Scene {
        org_a,
        doctor_a,
        patient,
        record,
        thread,
        membership,
        stranger_id,
        stranger,
        pharmacist_id,
        pharmacist,
    }
}

fn fresh_id() -> String {
    Uuid::now_v7().to_string()
}

/// Runs a GraphQL request under a request id of its own.
async fn ask(app: &TestApp, token: &str, query: &str, variables: Value, request_id: &str) -> Value {
    let res = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .header("x-request-id", request_id)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The audit entries of an actor, as the network administrator reads them.
async fn entries_of(app: &TestApp, actor: &str) -> Vec<Value> {
    let data = app
        .ok(
            &app.admin_token,
            "query($a: ID!) { auditLog(filter: { actorId: $a }, first: 100) { edges { node { action patientId categories requestId outcome detail } } } }",
            json!({ "a": actor }),
        )
        .await;
    data["auditLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// The one `DENIED` entry of a request.
async fn denial_of(app: &TestApp, actor: &str, request_id: &str) -> Value {
    let entries: Vec<Value> = entries_of(app, actor)
        .await
        .into_iter()
        .filter(|e| e["requestId"] == request_id)
        .collect();
    let denied: Vec<&Value> = entries.iter().filter(|e| e["action"] == "DENIED").collect();
    assert_eq!(
        denied.len(),
        1,
        "one DENIED entry for {request_id}: {entries:?}"
    );
    assert_eq!(denied[0]["outcome"], "DENIED");
    assert!(
        entries.iter().all(|e| e["action"] == "DENIED"),
        "nothing but the denial: {entries:?}"
    );
    denied[0].clone()
}

/// The audit entries of a request, which must all be denials.
async fn denials_of(app: &TestApp, actor: &str, request_id: &str) -> Vec<Value> {
    let entries: Vec<Value> = entries_of(app, actor)
        .await
        .into_iter()
        .filter(|e| e["requestId"] == request_id)
        .collect();
    assert!(
        entries.iter().all(|e| e["action"] == "DENIED"),
        "{entries:?}"
    );
    entries
}

/// Sends the same request about something that exists and something that
/// does not; both answers must be identical and carry `code` (when the
/// request fails), and each must leave one `DENIED` entry. Returns the two
/// entries.
async fn refused_alike(
    app: &TestApp,
    (actor, token): (&str, &str),
    query: &str,
    existing: Value,
    unknown: Value,
    code: Option<&str>,
) -> (Value, Value) {
    let (rid_existing, rid_unknown) = (fresh_id(), fresh_id());
    let a = ask(app, token, query, existing.clone(), &rid_existing).await;
    let b = ask(app, token, query, unknown.clone(), &rid_unknown).await;
    assert_eq!(a, b, "{existing} and {unknown} must be answered alike");
    assert_eq!(error_code(&a).as_deref(), code, "{a}");
    (
        denial_of(app, actor, &rid_existing).await,
        denial_of(app, actor, &rid_unknown).await,
    )
}

e2e!(
    a_hidden_patient_and_an_unknown_one_are_refused_alike_by_id_and_by_local_id,
    |app| async move {
        let s = scene(app).await;
        let stranger = (s.stranger_id.as_str(), s.stranger.as_str());
        let unknown = fresh_id();
        let (hidden, missing) = refused_alike(
            app,
            stranger,
            "query($id: ID!) { patient(id: $id) { id name } }",
            json!({ "id": s.patient }),
            json!({ "id": unknown }),
            Some("NOT_FOUND"),
        )
        .await;
        assert_eq!(hidden["patientId"], s.patient.as_str());
        assert_eq!(missing["patientId"], unknown.as_str(), "the id asked for");

        let (hidden, missing) = refused_alike(
            app,
            stranger,
            "query($o: ID!, $l: String!) { patientByLocalId(organizationId: $o, localId: $l) { id name } }",
            json!({ "o": s.org_a, "l": "R-000001" }),
            json!({ "o": s.org_a, "l": "R-000002" }),
            Some("NOT_FOUND"),
        )
        .await;
        assert_eq!(hidden["patientId"], s.patient.as_str());
        assert!(missing["patientId"].is_null());
        let detail = missing["detail"].as_str().unwrap();
        assert!(
            detail.contains("\"R-000002\"") && detail.contains(&s.org_a),
            "the organisation and local ID asked for: {detail}"
        );
    }
);

e2e!(
    federation_entities_refuse_a_hidden_patient_like_an_unknown_one,
    |app| async move {
        let s = scene(app).await;
        let unknown = fresh_id();
        let (hidden, missing) = refused_alike(
            app,
            (&s.stranger_id, &s.stranger),
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on Patient { id name } } }",
            json!({ "r": [{ "__typename": "Patient", "id": s.patient }] }),
            json!({ "r": [{ "__typename": "Patient", "id": unknown }] }),
            // null at its index, with the refusal said there
            // (docs/federation.md).
            Some("NOT_FOUND"),
        )
        .await;
        assert_eq!(hidden["patientId"], s.patient.as_str());
        assert_eq!(missing["patientId"], unknown.as_str());
    }
);

e2e!(
    the_printable_page_refuses_a_hidden_patient_like_an_unknown_one,
    |app| async move {
        let s = scene(app).await;
        let unknown = fresh_id();
        let mut pages = Vec::new();
        for (patient, rid) in [(&s.patient, fresh_id()), (&unknown, fresh_id())] {
            let res = app
                .client
                .get(app.url(&format!("/patients/{patient}/emergency-sheet")))
                .bearer_auth(&s.stranger)
                .header("x-request-id", &rid)
                .send()
                .await
                .unwrap();
            pages.push((res.status().as_u16(), res.text().await.unwrap()));
            let denied = denial_of(app, &s.stranger_id, &rid).await;
            assert_eq!(denied["patientId"], patient.as_str());
        }
        assert_eq!(pages[0].0, 404, "{}", pages[0].1);
        assert_eq!(pages[0], pages[1]);
    }
);

e2e!(
    a_subscription_to_a_hidden_patient_is_refused_like_one_to_an_unknown_patient,
    |app| async move {
        let s = scene(app).await;
        let unknown = fresh_id();
        let query = "subscription($p: ID!) { patientEvents(patientId: $p) { kind } }";
        let mut answers = Vec::new();
        for patient in [&s.patient, &unknown] {
            let mut ws = app.ws(&s.stranger).await;
            ws.subscribe(query, json!({ "p": patient })).await;
            answers.push(ws.next().await.1);
        }
        assert_eq!(answers[0], answers[1]);
        let errors = match &answers[0] {
            WsMessage::Next(v) => v["errors"].clone(),
            WsMessage::Error(v) => v.clone(),
            other => panic!("expected an error, got {other:?}"),
        };
        assert_eq!(errors[0]["extensions"]["code"], "NOT_FOUND", "{errors}");
        let denied: Vec<Value> = entries_of(app, &s.stranger_id)
            .await
            .into_iter()
            .filter(|e| e["action"] == "DENIED")
            .collect();
        for patient in [&s.patient, &unknown] {
            assert_eq!(
                denied
                    .iter()
                    .filter(|e| e["patientId"] == patient.as_str())
                    .count(),
                1,
                "{patient}: {denied:?}"
            );
        }
    }
);

e2e!(
    mutations_refuse_a_hidden_patient_like_an_unknown_one,
    |app| async move {
        let s = scene(app).await;
        let stranger = (s.stranger_id.as_str(), s.stranger.as_str());
        /// A mutation and its input for a patient id.
        type Case = (&'static str, fn(&str) -> Value);
        let cases: Vec<Case> = vec![
            (
                "mutation($i: SetPatientStatusInput!) { setPatientStatus(input: $i) { id } }",
                |p| json!({ "i": { "patientId": p, "status": "MOVED_AWAY" } }),
            ),
            (
                "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
                |p| json!({ "i": { "patientId": p, "organizationId": Uuid::nil().to_string(), "role": "OTHER" } }),
            ),
            (
                "mutation($i: WithdrawConsentInput!) { withdrawConsent(input: $i) { id } }",
                |p| json!({ "i": { "patientId": p } }),
            ),
            (
                "mutation($i: StartLiaisonThreadInput!) { startLiaisonThread(input: $i) { id } }",
                |p| json!({ "i": { "patientId": p, "subject": "件名", "wholeCareTeam": true, "body": "本文" } }),
            ),
            (
                "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { record { id } } }",
                |p| {
                    json!({ "i": { "records": [{ "patientId": p, "effectiveAt": "2026-01-05T00:00:00Z",
                        "data": { "allergy": { "substance": "卵", "allergyType": "FOOD", "reaction": "蕁麻疹", "severity": "MILD" } } }] } })
                },
            ),
        ];
        for (query, input) in cases {
            let unknown = fresh_id();
            let (hidden, missing) = refused_alike(
                app,
                stranger,
                query,
                input(&s.patient),
                input(&unknown),
                Some("NOT_FOUND"),
            )
            .await;
            assert_eq!(hidden["patientId"], s.patient.as_str(), "{query}");
            assert_eq!(missing["patientId"], unknown.as_str(), "{query}");
        }
    }
);

e2e!(
    refused_emergency_access_is_recorded_whether_the_patient_exists_or_not,
    |app| async move {
        let s = scene(app).await;
        let open =
            "mutation($i: OpenEmergencyAccessInput!) { openEmergencyAccess(input: $i) { id } }";
        // A profession that may not open it: refused before any lookup, the
        // attempt recorded with the patient asked for.
        let unknown = fresh_id();
        let (hidden, missing) = refused_alike(
            app,
            (&s.pharmacist_id, &s.pharmacist),
            open,
            json!({ "i": { "patientId": s.patient, "reasonCode": "CARDIAC_ARREST" } }),
            json!({ "i": { "patientId": unknown, "reasonCode": "CARDIAC_ARREST" } }),
            Some("FORBIDDEN"),
        )
        .await;
        assert_eq!(hidden["patientId"], s.patient.as_str());
        assert_eq!(missing["patientId"], unknown.as_str());

        // A physician: a miss by id or by local ID is recorded too.
        let rid = fresh_id();
        let body = ask(
            app,
            &s.stranger,
            open,
            json!({ "i": { "patientId": unknown, "reason": "救急" } }),
            &rid,
        )
        .await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"));
        let denied = denial_of(app, &s.stranger_id, &rid).await;
        assert_eq!(denied["patientId"], unknown.as_str());
        let rid = fresh_id();
        let body = ask(
            app,
            &s.stranger,
            open,
            json!({ "i": { "organizationId": s.org_a, "localId": "R-000099", "reason": "救急" } }),
            &rid,
        )
        .await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"));
        let denied = denial_of(app, &s.stranger_id, &rid).await;
        assert!(denied["patientId"].is_null());
        assert!(denied["detail"].as_str().unwrap().contains("R-000099"));
    }
);

e2e!(
    objects_of_a_hidden_patient_are_refused_like_objects_that_do_not_exist,
    |app| async move {
        let s = scene(app).await;
        let stranger = (s.stranger_id.as_str(), s.stranger.as_str());
        for (query, existing) in [
            (
                "mutation($id: ID!) { markRecordEnteredInError(recordId: $id) { id } }",
                &s.record,
            ),
            (
                "query($id: ID!) { liaisonThread(id: $id) { id } }",
                &s.thread,
            ),
            (
                "mutation($id: ID!) { markLiaisonThreadRead(threadId: $id) { id } }",
                &s.thread,
            ),
        ] {
            let (hidden, missing) = refused_alike(
                app,
                stranger,
                query,
                json!({ "id": existing }),
                json!({ "id": fresh_id() }),
                Some("NOT_FOUND"),
            )
            .await;
            assert_eq!(hidden["patientId"], s.patient.as_str(), "{query}");
            assert!(missing["patientId"].is_null(), "{query}");
        }
        let (hidden, _) = refused_alike(
            app,
            stranger,
            "mutation($i: EndCareTeamMembershipInput!) { endCareTeamMembership(input: $i) { id } }",
            json!({ "i": { "membershipId": s.membership } }),
            json!({ "i": { "membershipId": fresh_id() } }),
            Some("NOT_FOUND"),
        )
        .await;
        assert_eq!(hidden["patientId"], s.patient.as_str());
    }
);

e2e!(
    a_record_of_a_category_closed_to_a_team_member_is_refused_like_no_record,
    |app| async move {
        let s = scene(app).await;
        // A care worker on the team may not read lab results.
        let provider = app
            .organization("CARE_SERVICE_PROVIDER", "拒否 A ヘルパー")
            .await;
        app.ok(
            &s.doctor_a,
            "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
            json!({ "i": { "patientId": s.patient, "organizationId": provider, "role": "CARE_SERVICE" } }),
        )
        .await;
        let (worker_id, worker) = app.member(&provider, "CARE_WORKER").await;
        let (hidden, missing) = refused_alike(
            app,
            (&worker_id, &worker),
            "mutation($id: ID!) { markRecordEnteredInError(recordId: $id) { id } }",
            json!({ "id": s.record }),
            json!({ "id": fresh_id() }),
            Some("NOT_FOUND"),
        )
        .await;
        assert_eq!(hidden["patientId"], s.patient.as_str());
        assert_eq!(hidden["categories"], json!(["LAB_RESULTS"]));
        assert!(missing["patientId"].is_null());
    }
);

e2e!(
    a_request_naming_many_patients_leaves_one_denial_per_reference_whether_they_exist_or_not,
    |app| async move {
        // One request may name many local IDs (aliases). If the refusals of
        // unknown ones were merged into one audit entry while each hidden
        // patient got its own, the request's work — and its time — would
        // count the patients that exist: a batch of sequential numbers
        // would be a timing oracle however alike each answer looks.
        let s = scene(app).await;
        for n in 2..=3 {
            app.patient(&s.doctor_a, &format!("R-{n:06}")).await;
        }
        let query = |first: usize| {
            let fields: Vec<String> = (0..3)
                .map(|i| {
                    format!(
                        "p{i}: patientByLocalId(organizationId: $o, localId: \"R-{:06}\") {{ id }}",
                        first + i
                    )
                })
                .collect();
            format!("query($o: ID!) {{ {} }}", fields.join(" "))
        };
        let mut denials = Vec::new();
        let mut answers = Vec::new();
        for first in [1, 101] {
            let rid = fresh_id();
            let body = ask(
                app,
                &s.stranger,
                &query(first),
                json!({ "o": s.org_a }),
                &rid,
            )
            .await;
            assert_eq!(body["data"], Value::Null, "{body}");
            // The errors come in the order the fields finished: compare them
            // as a set.
            let mut errors = body["errors"].as_array().cloned().unwrap_or_default();
            errors.sort_by_key(|e| e["path"].to_string());
            assert_eq!(errors.len(), 3, "{body}");
            answers.push(errors);
            denials.push(denials_of(app, &s.stranger_id, &rid).await);
        }
        assert_eq!(answers[0], answers[1]);
        assert_eq!(denials[0].len(), 3, "hidden: {:?}", denials[0]);
        assert_eq!(denials[1].len(), 3, "unknown: {:?}", denials[1]);
        for entry in &denials[1] {
            assert!(entry["patientId"].is_null());
            let detail = entry["detail"].as_str().unwrap();
            assert_eq!(detail.matches("local ID").count(), 1, "{detail}");
        }
    }
);

e2e!(
    a_batch_lookup_answers_hidden_and_unknown_patients_alike_with_one_denial_each,
    |app| async move {
        // `patientsByLocalIds` answers a refused entry with null, not an
        // error: hidden and unknown patients must give the same answer and
        // each leave its own denial, as the single lookups do.
        let s = scene(app).await;
        for n in 2..=3 {
            app.patient(&s.doctor_a, &format!("R-{n:06}")).await;
        }
        let query = "query($o: ID!, $l: [String!]!) { patientsByLocalIds(organizationId: $o, localIds: $l) { id name } }";
        let mut answers = Vec::new();
        let mut denials = Vec::new();
        for locals in [
            ["R-000001", "R-000002", "R-000003"],
            ["R-000101", "R-000102", "R-000103"],
        ] {
            let rid = fresh_id();
            let body = ask(
                app,
                &s.stranger,
                query,
                json!({ "o": s.org_a, "l": locals }),
                &rid,
            )
            .await;
            assert_eq!(
                body,
                json!({ "data": { "patientsByLocalIds": [null, null, null] } })
            );
            answers.push(body);
            denials.push(denials_of(app, &s.stranger_id, &rid).await);
        }
        assert_eq!(answers[0], answers[1]);
        assert_eq!(denials[0].len(), 3, "hidden: {:?}", denials[0]);
        assert_eq!(denials[1].len(), 3, "unknown: {:?}", denials[1]);
        assert!(
            denials[0]
                .iter()
                .any(|e| e["patientId"] == s.patient.as_str()),
            "{:?}",
            denials[0]
        );
        for entry in &denials[1] {
            assert!(entry["patientId"].is_null());
            let detail = entry["detail"].as_str().unwrap();
            assert!(detail.contains("local ID"), "{detail}");
        }

        // The care team's own physician finds the same patient.
        let rid = fresh_id();
        let body = ask(
            app,
            &s.doctor_a,
            query,
            json!({ "o": s.org_a, "l": ["R-000001"] }),
            &rid,
        )
        .await;
        assert_eq!(
            body["data"]["patientsByLocalIds"][0]["id"],
            s.patient.as_str()
        );
    }
);

//! The audit log: an entry per access with the categories actually resolved,
//! hash-chained, append-only, verifiable with `renkei audit verify`.

use clap::Parser;
use renkei_tests::*;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

async fn patient_and_doctor(app: &TestApp) -> (String, String, String) {
    let clinic = app.organization("CLINIC", "監査クリニック").await;
    let (doctor_id, doctor) = app.member(&clinic, "PHYSICIAN").await;
    let patient = app.patient(&doctor, "A-1").await;
    (patient, doctor, doctor_id)
}

async fn log_for(app: &TestApp, patient: &str) -> Vec<Value> {
    let data = app
        .ok(
            &app.admin_token,
            "query($p: ID!) { auditLog(filter: { patientId: $p }, first: 100) { edges { node { seq action categories actorId requestId outcome detail } } } }",
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

/// Runs `renkei audit verify` against the test database.
async fn verify(app: &TestApp) -> Result<(), String> {
    let cli = renkei_server::cli::Cli::parse_from([
        "renkei",
        "audit",
        "verify",
        "--database-url",
        &app.database_url,
    ]);
    renkei_server::cli::run(cli)
        .await
        .map_err(|e| format!("{e:#}"))
}

/// Changes the log behind the hub's back, the way an attacker with database
/// access would: past the triggers that otherwise refuse it.
async fn tamper(app: &TestApp, sql: &str) {
    let db = Database::connect(&app.database_url).await.unwrap();
    let script = match app.backend {
        Backend::Sqlite => format!(
            "DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete; {sql}"
        ),
        Backend::Postgres => {
            format!("BEGIN; SET LOCAL session_replication_role = replica; {sql}; COMMIT;")
        }
    };
    db.execute_unprepared(&script).await.unwrap();
    db.close().await.unwrap();
}

e2e!(
    a_read_leaves_one_entry_with_the_categories_actually_resolved,
    |app| async move {
        let (patient, doctor, doctor_id) = patient_and_doctor(app).await;
        let res = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&doctor)
        .header("x-request-id", "req-audit-1")
        .json(&json!({ "query": "query($id: ID!) { patient(id: $id) { name birthDate } }", "variables": { "id": patient } }))
        .send()
        .await
        .unwrap();
        assert_eq!(res.status(), 200);
        let entries = log_for(app, &patient).await;
        let read: Vec<&Value> = entries
            .iter()
            .filter(|e| e["requestId"] == "req-audit-1")
            .collect();
        assert_eq!(read.len(), 1, "{entries:?}");
        assert_eq!(read[0]["action"], "READ");
        assert_eq!(
            read[0]["categories"],
            json!(["IDENTITY"]),
            "only what was resolved, not CONTACTS"
        );
        assert_eq!(read[0]["actorId"], doctor_id.as_str());
        assert_eq!(read[0]["outcome"], "OK");
        // Registration and consent were recorded too.
        assert!(entries.iter().any(|e| e["action"] == "WRITE"));
        assert!(entries.iter().any(|e| e["action"] == "CONSENT_CHANGE"));
    }
);

e2e!(denials_are_recorded, |app| async move {
    let (patient, doctor, _) = patient_and_doctor(app).await;
    app.consent(
        &doctor,
        &patient,
        json!({ "excludedCategories": ["CONTACTS"] }),
    )
    .await;
    app.gql(
        &doctor,
        "query($id: ID!) { patient(id: $id) { phone } }",
        json!({ "id": patient }),
    )
    .await;
    let other = app.organization("PHARMACY", "よその薬局").await;
    let (stranger_id, stranger) = app.member(&other, "PHARMACIST").await;
    app.gql(
        &stranger,
        "query($id: ID!) { patient(id: $id) { name } }",
        json!({ "id": patient }),
    )
    .await;

    let entries = log_for(app, &patient).await;
    let denied: Vec<&Value> = entries.iter().filter(|e| e["action"] == "DENIED").collect();
    assert!(
        denied
            .iter()
            .any(|e| e["categories"] == json!(["CONTACTS"]) && e["outcome"] == "DENIED"),
        "{entries:?}"
    );
    assert!(
        denied.iter().any(|e| e["actorId"] == stranger_id.as_str()),
        "a stranger's attempt is recorded: {entries:?}"
    );
});

e2e!(
    the_care_team_reads_a_patients_access_history,
    |app| async move {
        let (patient, doctor, _) = patient_and_doctor(app).await;
        app.gql(
            &doctor,
            "query($id: ID!) { patient(id: $id) { name } }",
            json!({ "id": patient }),
        )
        .await;
        let data = app
        .ok(&doctor, "query($id: ID!) { patient(id: $id) { accessHistory(first: 2) { edges { node { action actor { profession } } } pageInfo { hasNextPage endCursor } } } }", json!({ "id": patient }))
        .await;
        let history = &data["patient"]["accessHistory"];
        assert_eq!(history["edges"].as_array().unwrap().len(), 2);
        assert_eq!(history["pageInfo"]["hasNextPage"], true);
        let after = history["pageInfo"]["endCursor"].as_str().unwrap();
        let data = app
        .ok(&doctor, "query($id: ID!, $a: String) { patient(id: $id) { accessHistory(first: 100, after: $a) { edges { node { seq } } } } }", json!({ "id": patient, "a": after }))
        .await;
        assert!(
            !data["patient"]["accessHistory"]["edges"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
);

e2e!(only_administrators_read_the_whole_log, |app| async move {
    let (_, doctor, _) = patient_and_doctor(app).await;
    let body = app
        .gql(
            &doctor,
            "{ auditLog { edges { node { seq } } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"));
    let body = app
        .gql(
            &app.admin_token,
            "{ auditLog(first: 0) { edges { node { seq } } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"));
    let body = app
        .gql(
            &app.admin_token,
            "{ auditLog(after: \"garbage\") { edges { node { seq } } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"));
});

e2e!(
    the_database_refuses_to_change_or_delete_audit_entries,
    |app| async move {
        let (patient, doctor, _) = patient_and_doctor(app).await;
        app.gql(
            &doctor,
            "query($id: ID!) { patient(id: $id) { name } }",
            json!({ "id": patient }),
        )
        .await;
        let update = app
            .db
            .execute_unprepared("UPDATE audit_log SET outcome = 'X' WHERE seq = 1")
            .await;
        assert!(format!("{:?}", update.unwrap_err()).contains("append-only"));
        let delete = app
            .db
            .execute_unprepared("DELETE FROM audit_log WHERE seq = 1")
            .await;
        assert!(format!("{:?}", delete.unwrap_err()).contains("append-only"));
        assert_eq!(verify(app).await, Ok(()));
    }
);

e2e!(
    verify_reports_an_intact_log_and_catches_an_altered_row,
    |app| async move {
        let (patient, doctor, _) = patient_and_doctor(app).await;
        for _ in 0..3 {
            app.gql(
                &doctor,
                "query($id: ID!) { patient(id: $id) { name } }",
                json!({ "id": patient }),
            )
            .await;
        }
        assert_eq!(verify(app).await, Ok(()));
        tamper(
            app,
            "UPDATE audit_log SET categories = 'IDENTITY,CONTACTS' WHERE seq = 3",
        )
        .await;
        let err = verify(app).await.unwrap_err();
        assert!(err.contains("broken at entry 3"), "{err}");
        assert!(err.contains("modified"), "{err}");
    }
);

e2e!(verify_catches_a_deleted_row, |app| async move {
    let (patient, doctor, _) = patient_and_doctor(app).await;
    for _ in 0..3 {
        app.gql(
            &doctor,
            "query($id: ID!) { patient(id: $id) { name } }",
            json!({ "id": patient }),
        )
        .await;
    }
    tamper(app, "DELETE FROM audit_log WHERE seq = 2").await;
    let err = verify(app).await.unwrap_err();
    assert!(err.contains("broken at entry 2"), "{err}");
});

e2e!(
    verify_catches_an_inserted_row_and_a_cut_off_end,
    |app| async move {
        let (patient, doctor, _) = patient_and_doctor(app).await;
        for _ in 0..3 {
            app.gql(
                &doctor,
                "query($id: ID!) { patient(id: $id) { name } }",
                json!({ "id": patient }),
            )
            .await;
        }
        // A forged entry between 2 and 3: renumber 3.. upwards, insert a copy of 2 as 3.
        let last: i64 = {
            let data = app
                .ok(
                    &app.admin_token,
                    "{ auditLog(first: 1) { edges { node { seq } } } }",
                    json!({}),
                )
                .await;
            data["auditLog"]["edges"][0]["node"]["seq"]
                .as_i64()
                .unwrap()
        };
        // (The admin's read above added an entry; count it too.)
        let last = last + 1;
        tamper(
        app,
        &format!(
            "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 3; \
             INSERT INTO audit_log SELECT 3, occurred_at, actor_kind, actor_id, organization_id, patient_id, action, categories, request_id, outcome, detail, prev_hash, hash FROM audit_log WHERE seq = 2; \
             UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1003 AND seq <= {}",
            1000 + last
        ),
    )
    .await;
        let err = verify(app).await.unwrap_err();
        assert!(err.contains("broken at entry 3"), "{err}");

        // Cutting entries off the end is caught by the head.
        let app2 = TestApp::spawn(app.backend).await;
        let (p2, d2, _) = patient_and_doctor(&app2).await;
        app2.gql(
            &d2,
            "query($id: ID!) { patient(id: $id) { name } }",
            json!({ "id": p2 }),
        )
        .await;
        let data = app2
            .ok(
                &app2.admin_token,
                "{ auditLog(first: 1) { edges { node { seq } } } }",
                json!({}),
            )
            .await;
        let last = data["auditLog"]["edges"][0]["node"]["seq"]
            .as_i64()
            .unwrap()
            + 1;
        tamper(&app2, &format!("DELETE FROM audit_log WHERE seq = {last}")).await;
        let err = verify(&app2).await.unwrap_err();
        assert!(err.contains("removed from or added at the end"), "{err}");
        app2.stop().await;
    }
);

e2e!(
    concurrent_requests_share_batches_and_keep_the_chain_intact,
    |app| async move {
        let (patient, doctor, _) = patient_and_doctor(app).await;
        let q = json!({ "query": "query($id: ID!) { patient(id: $id) { name } }", "variables": { "id": patient } });
        let requests = (0..40).map(|_| app.post(Some(&doctor), q.clone()));
        for (status, body) in futures::future::join_all(requests).await {
            assert_eq!(status, 200);
            assert_eq!(body["data"]["patient"]["name"], "連携 花子");
        }
        let reads = log_for(app, &patient)
            .await
            .iter()
            .filter(|e| e["action"] == "READ" && e["categories"] == json!(["IDENTITY"]))
            .count();
        assert_eq!(reads, 40);
        assert_eq!(verify(app).await, Ok(()));
    }
);

e2e!(
    no_data_leaves_when_the_audit_entry_cannot_be_written,
    |app| async move {
        let (patient, doctor, _) = patient_and_doctor(app).await;
        app.db
            .execute_unprepared("DROP TABLE audit_head")
            .await
            .unwrap();
        let (status, body) = app
        .post(Some(&doctor), json!({ "query": "query($id: ID!) { patient(id: $id) { name } }", "variables": { "id": patient } }))
        .await;
        assert_eq!(status, 500);
        assert_eq!(error_code(&body).as_deref(), Some("INTERNAL"));
        assert!(body.get("data").is_none(), "{body}");
        assert!(
            !body.to_string().contains("連携"),
            "no patient data in {body}"
        );
    }
);

e2e!(
    a_change_and_its_audit_entry_commit_together_or_not_at_all,
    |app| async move {
        let (patient, doctor, _) = patient_and_doctor(app).await;
        app.db
            .execute_unprepared("ALTER TABLE audit_head RENAME TO audit_head_gone")
            .await
            .unwrap();
        let (status, body) = app
            .post(
                Some(&doctor),
                json!({ "query": "mutation($i: WithdrawConsentInput!) { withdrawConsent(input: $i) { id } }",
                        "variables": { "i": { "patientId": patient } } }),
            )
            .await;
        let _ = status;
        assert_eq!(error_code(&body).as_deref(), Some("INTERNAL"), "{body}");
        assert!(
            body["data"].is_null() || body.get("data").is_none(),
            "{body}"
        );
        app.db
            .execute_unprepared("ALTER TABLE audit_head_gone RENAME TO audit_head")
            .await
            .unwrap();
        // The withdrawal did not happen: the consent is still in force.
        let data = app
            .ok(
                &doctor,
                "query($id: ID!) { patient(id: $id) { name activeConsent { active } } }",
                json!({ "id": patient }),
            )
            .await;
        assert_eq!(data["patient"]["activeConsent"]["active"], true);
        assert_eq!(verify(app).await, Ok(()));
    }
);

e2e!(
    a_lookup_by_local_id_leaves_an_entry_even_without_fields,
    |app| async move {
        let (patient, doctor, doctor_id) = patient_and_doctor(app).await;
        app.ok(
            &doctor,
            "{ patientByLocalId(localId: \"A-1\") { id } }",
            json!({}),
        )
        .await;
        let entries = log_for(app, &patient).await;
        assert!(
            entries.iter().any(|e| e["action"] == "READ"
                && e["categories"] == json!([])
                && e["actorId"] == doctor_id.as_str()),
            "{entries:?}"
        );
    }
);

e2e!(
    concurrent_consents_leave_exactly_one_in_force,
    |app| async move {
        let (patient, doctor, _) = patient_and_doctor(app).await;
        let m = json!({ "query": "mutation($i: RecordConsentInput!) { recordConsent(input: $i) { id } }",
            "variables": { "i": { "patientId": patient, "scope": "NETWORK", "method": "ORAL", "form": { "reference": "同意書 2026-0001", "signedOn": "2026-01-01", "signedBy": "PATIENT" } } } });
        let results =
            futures::future::join_all((0..8).map(|_| app.post(Some(&doctor), m.clone()))).await;
        for (_, body) in &results {
            let code = error_code(body);
            assert!(
                code.is_none() || code.as_deref() == Some("CONFLICT"),
                "{body}"
            );
        }
        let data = app
            .ok(
                &doctor,
                "query($id: ID!) { patient(id: $id) { consents { active } } }",
                json!({ "id": patient }),
            )
            .await;
        let active = data["patient"]["consents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["active"] == true)
            .count();
        assert_eq!(active, 1, "{data}");
        // And a withdrawal then really withdraws.
        app.ok(
            &doctor,
            "mutation($i: WithdrawConsentInput!) { withdrawConsent(input: $i) { id } }",
            json!({ "i": { "patientId": patient } }),
        )
        .await;
        let body = app
            .gql(
                &doctor,
                "query($id: ID!) { patient(id: $id) { name } }",
                json!({ "id": patient }),
            )
            .await;
        assert!(body["data"]["patient"]["name"].is_null(), "{body}");
        assert_eq!(verify(app).await, Ok(()));
    }
);

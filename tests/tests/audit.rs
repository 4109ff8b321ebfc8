//! The audit log: an entry per access with the categories actually resolved,
//! hash-chained, append-only, verifiable with `renkei audit verify`.

use clap::Parser;
use entities::audit_log;
use renkei_schema::audit::chain::{keyed_hash, legacy_hash};
use renkei_schema::audit::keys::AuditKey;
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

/// Runs `renkei audit verify` against the test database with the test key.
async fn verify(app: &TestApp) -> Result<(), String> {
    verify_with(app, &["--audit-key", TEST_AUDIT_KEY]).await
}

/// Runs `renkei audit verify` with more arguments (keys, checkpoints).
async fn verify_with(app: &TestApp, args: &[&str]) -> Result<(), String> {
    renkei(
        &[
            &["audit", "verify", "--database-url", &app.database_url],
            args,
        ]
        .concat(),
    )
    .await
}

/// Runs the `renkei` command line in this process (the code of the binary).
async fn renkei(args: &[&str]) -> Result<(), String> {
    let cli = renkei_server::cli::Cli::try_parse_from(
        std::iter::once("renkei").chain(args.iter().copied()),
    )
    .map_err(|e| e.to_string())?;
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

e2e!(
    a_write_batch_leaves_one_entry_per_patient_with_every_category_written,
    |app| async move {
        let (patient, doctor, _) = patient_and_doctor(app).await;
        let clinic_second = app.patient(&doctor, "A-2").await;
        let lab = |p: &str, source: &str| {
            json!({ "patientId": p, "sourceRecordId": source, "effectiveAt": "2026-01-05T00:00:00Z",
                    "data": { "labResult": { "code": "LAB-HbA1c", "name": "HbA1c", "value": "7.2", "unit": "%", "abnormal": "HIGH" } } })
        };
        let condition = json!({ "patientId": patient, "sourceRecordId": "C-1", "effectiveAt": "2026-01-10T09:00:00Z",
                                "data": { "condition": { "name": "高血圧症", "icd10": "I10", "clinicalStatus": "ACTIVE" } } });
        let res = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth(&doctor)
            .header("x-request-id", "req-audit-write")
            .json(&json!({
                "query": "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { outcome } }",
                "variables": { "i": { "records": [
                    lab(&patient, "L-1"), condition, lab(&clinic_second, "L-2"), lab(&patient, "L-3"),
                ] } },
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert!(body["errors"].is_null(), "{body}");
        // Three records of the first patient: one entry, listing both
        // categories written; one record of the second: one entry.
        for (p, categories) in [
            (&patient, json!(["CONDITIONS", "LAB_RESULTS"])),
            (&clinic_second, json!(["LAB_RESULTS"])),
        ] {
            let writes: Vec<Value> = log_for(app, p)
                .await
                .into_iter()
                .filter(|e| e["requestId"] == "req-audit-write")
                .collect();
            assert_eq!(writes.len(), 1, "{writes:?}");
            assert_eq!(writes[0]["action"], "WRITE");
            assert_eq!(writes[0]["outcome"], "OK");
            let mut got: Vec<String> = writes[0]["categories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect();
            got.sort();
            assert_eq!(json!(got), categories);
        }
        verify(app).await.unwrap();
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

e2e!(
    verify_catches_an_absent_detail_rewritten_as_empty,
    |app| async move {
        let (patient, doctor, _) = patient_and_doctor(app).await;
        app.gql(
            &doctor,
            "query($id: ID!) { patient(id: $id) { name } }",
            json!({ "id": patient }),
        )
        .await;
        assert_eq!(verify(app).await, Ok(()));
        // The MAC covers an absent detail as an empty one: the rewrite keeps
        // it, and only the rule that the hub never writes '' tells.
        tamper(
            app,
            "UPDATE audit_log SET detail = '' WHERE seq = (SELECT MIN(seq) FROM audit_log WHERE detail IS NULL)",
        )
        .await;
        let err = verify(app).await.unwrap_err();
        assert!(err.contains("NULL was rewritten as ''"), "{err}");
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
             INSERT INTO audit_log (seq, occurred_at, actor_kind, actor_id, organization_id, patient_id, action, categories, request_id, outcome, detail, prev_hash, hash, key_id) SELECT 3, occurred_at, actor_kind, actor_id, organization_id, patient_id, action, categories, request_id, outcome, detail, prev_hash, hash, key_id FROM audit_log WHERE seq = 2; \
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

// ---- attacks by someone with write access to the database ----
//
// Each attack below changes the log the way someone with database access
// could (past the triggers, as the owner or a superuser can), and
// `renkei audit verify` must exit non-zero naming the first bad entry.

/// The log in order, as an attacker with database access reads it.
async fn entries(app: &TestApp) -> Vec<audit_log::Model> {
    use sea_orm::{EntityTrait, QueryOrder};
    audit_log::Entity::find()
        .order_by_asc(audit_log::Column::Seq)
        .all(&app.db)
        .await
        .unwrap()
}

/// Runs statements past the triggers, in one transaction: the database
/// owner's (or superuser's) power.
async fn tamper_with(app: &TestApp, statements: Vec<(String, Vec<sea_orm::Value>)>) {
    use sea_orm::{Statement, TransactionTrait};
    let db = Database::connect(&app.database_url).await.unwrap();
    if app.backend == Backend::Sqlite {
        db.execute_unprepared(
            "DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete",
        )
        .await
        .unwrap();
    }
    let txn = db.begin().await.unwrap();
    if app.backend == Backend::Postgres {
        txn.execute_unprepared("SET LOCAL session_replication_role = replica")
            .await
            .unwrap();
    }
    let backend = txn.get_database_backend();
    for (sql, values) in statements {
        let sql = match backend {
            sea_orm::DatabaseBackend::Sqlite => {
                (1..=9).fold(sql, |s, i| s.replace(&format!("${i}"), "?"))
            }
            _ => sql,
        };
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await
            .unwrap();
    }
    txn.commit().await.unwrap();
    db.close().await.unwrap();
}

/// Three reads of `patient` by `token`: three entries about them.
async fn three_reads(app: &TestApp, token: &str, patient: &str) {
    for _ in 0..3 {
        app.ok(
            token,
            "query($id: ID!) { patient(id: $id) { name } }",
            json!({ "id": patient }),
        )
        .await;
    }
}

/// A few reads of one patient, so the log holds several entries.
async fn some_traffic(app: &TestApp) {
    let (patient, doctor, _) = patient_and_doctor(app).await;
    three_reads(app, &doctor, &patient).await;
}

/// The published unkeyed formula, with the entry's key id removed: what
/// the chain was before keyed signing.
fn unkeyed(row: &mut audit_log::Model) {
    row.key_id = None;
    row.hash = legacy_hash(row);
}

/// The unkeyed formula, keeping the key id (the old recipe applied blindly).
fn unkeyed_keeping_the_key_id(row: &mut audit_log::Model) {
    row.hash = legacy_hash(row);
}

/// An attacker's guess at the key, under the real key's id.
fn wrong_key() -> AuditKey {
    AuditKey::new("test", b"an-attackers-guess-at-the-key-0123456789").unwrap()
}

/// Edits entry `from` (unless `edit` is false) and recomputes every hash
/// from it on with `seal`, then moves the head: a rewrite that leaves the
/// chain consistent.
async fn rewrite_from(app: &TestApp, from: i64, edit: bool, seal: impl Fn(&mut audit_log::Model)) {
    let mut rows = entries(app).await;
    let mut statements = Vec::new();
    let mut prev = if from == 1 {
        renkei_schema::audit::chain::GENESIS_HASH.to_string()
    } else {
        rows[(from - 2) as usize].hash.clone()
    };
    for row in rows.iter_mut().filter(|r| r.seq >= from) {
        if row.seq == from && edit {
            row.categories = "IDENTITY,CONTACTS,MEDICATION".into();
        }
        row.prev_hash = prev.clone();
        seal(row);
        prev = row.hash.clone();
        statements.push((
            format!(
                "UPDATE audit_log SET categories = $1, prev_hash = $2, hash = $3, key_id = $4 WHERE seq = {}",
                row.seq
            ),
            vec![
                row.categories.clone().into(),
                row.prev_hash.clone().into(),
                row.hash.clone().into(),
                row.key_id.clone().into(),
            ],
        ));
    }
    statements.push((
        "UPDATE audit_head SET hash = $1 WHERE id = 1".into(),
        vec![prev.into()],
    ));
    tamper_with(app, statements).await;
}

e2e!(
    verify_catches_a_chain_recomputed_with_the_unkeyed_formula,
    |app| async move {
        some_traffic(app).await;
        assert_eq!(verify(app).await, Ok(()));
        rewrite_from(app, 3, true, unkeyed_keeping_the_key_id).await;
        let err = verify(app).await.unwrap_err();
        assert!(err.contains("broken at entry 3"), "{err}");
        assert!(err.contains("does not match its MAC"), "{err}");
    }
);

e2e!(
    verify_catches_entries_rewritten_as_unkeyed_legacy_entries,
    |app| async move {
        some_traffic(app).await;
        rewrite_from(app, 3, true, unkeyed).await;
        let err = verify(app).await.unwrap_err();
        assert!(err.contains("broken at entry 3"), "{err}");
        assert!(err.contains("not signed"), "{err}");
    }
);

e2e!(
    verify_catches_a_chain_recomputed_with_a_wrong_key,
    |app| async move {
        some_traffic(app).await;
        let key = wrong_key();
        rewrite_from(app, 3, true, |row| row.hash = keyed_hash(row, &key)).await;
        let err = verify(app).await.unwrap_err();
        assert!(err.contains("broken at entry 3"), "{err}");
        assert!(err.contains("MAC under key \"test\""), "{err}");
    }
);

/// Appends a copy of the last entry with another detail, sealed by `seal`,
/// and moves the head onto it. Returns its number.
async fn forge_append(app: &TestApp, seal: impl Fn(&mut audit_log::Model)) -> i64 {
    let last = entries(app).await.pop().unwrap();
    let mut forged = last.clone();
    forged.seq = last.seq + 1;
    forged.detail = Some("nothing to see".into());
    forged.prev_hash = last.hash.clone();
    seal(&mut forged);
    tamper_with(
        app,
        vec![
            (
                format!(
                    "INSERT INTO audit_log (seq, occurred_at, actor_kind, actor_id, organization_id, patient_id, action, categories, request_id, outcome, detail, prev_hash, hash, key_id) \
                     SELECT seq + 1, occurred_at, actor_kind, actor_id, organization_id, patient_id, action, categories, request_id, outcome, $1, $2, $3, $4 FROM audit_log WHERE seq = {}",
                    last.seq
                ),
                vec![
                    forged.detail.clone().into(),
                    forged.prev_hash.clone().into(),
                    forged.hash.clone().into(),
                    forged.key_id.clone().into(),
                ],
            ),
            (
                "UPDATE audit_head SET seq = seq + 1, hash = $1 WHERE id = 1".into(),
                vec![forged.hash.clone().into()],
            ),
        ],
    )
    .await;
    forged.seq
}

e2e!(
    verify_catches_a_forged_append_with_a_moved_head,
    |app| async move {
        some_traffic(app).await;
        let seq = forge_append(app, unkeyed_keeping_the_key_id).await;
        let err = verify(app).await.unwrap_err();
        assert!(err.contains(&format!("broken at entry {seq}")), "{err}");

        let app2 = TestApp::spawn(app.backend).await;
        some_traffic(&app2).await;
        let seq = forge_append(&app2, unkeyed).await;
        let err = verify(&app2).await.unwrap_err();
        assert!(err.contains(&format!("broken at entry {seq}")), "{err}");
        assert!(err.contains("not signed"), "{err}");
        app2.stop().await;

        let app3 = TestApp::spawn(app.backend).await;
        some_traffic(&app3).await;
        let key = wrong_key();
        let seq = forge_append(&app3, |row| row.hash = keyed_hash(row, &key)).await;
        let err = verify(&app3).await.unwrap_err();
        assert!(err.contains(&format!("broken at entry {seq}")), "{err}");
        app3.stop().await;
    }
);

e2e!(
    verify_catches_an_update_by_the_owner_who_disabled_the_trigger,
    |app| async move {
        some_traffic(app).await;
        // The owner (here the superuser who ran the migrations) can switch
        // the trigger off; the key is what it does not have.
        let owner = Database::connect(&app.database_url).await.unwrap();
        let script = match app.backend {
            Backend::Sqlite => {
                "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET categories = 'IDENTITY,CONTACTS,MEDICATION' WHERE seq = 4"
            }
            Backend::Postgres => {
                "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete; \
                 UPDATE audit_log SET categories = 'IDENTITY,CONTACTS,MEDICATION' WHERE seq = 4; \
                 ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update_delete"
            }
        };
        owner.execute_unprepared(script).await.unwrap();
        owner.close().await.unwrap();
        let err = verify(app).await.unwrap_err();
        assert!(err.contains("broken at entry 4"), "{err}");
        assert!(err.contains("modified"), "{err}");
    }
);

/// SQLite keeps whatever is written into a column: an entry rewritten
/// with a value the hub cannot read back (text that is not UTF-8, a BLOB
/// where text is kept, a uuid cut short) is named, with the column, as the
/// break — not a failure to read the log. A break before it is still the
/// one told. (PostgreSQL's typed columns hold no such values.)
#[tokio::test]
async fn verify_names_an_entry_rewritten_in_another_type() {
    for (column, value) in [
        ("detail", "CAST(X'ff41fe' AS TEXT)"),
        ("request_id", "CAST('x' AS BLOB)"),
        ("patient_id", "X'00112233445566778899aabbccddee'"),
    ] {
        let app = TestApp::spawn(Backend::Sqlite).await;
        some_traffic(&app).await;
        tamper(
            &app,
            &format!("UPDATE audit_log SET {column} = {value} WHERE seq = 3"),
        )
        .await;
        let err = verify(&app).await.unwrap_err();
        assert!(err.contains("broken at entry 3"), "{column}: {err}");
        assert!(err.contains("cannot be read"), "{column}: {err}");
        assert!(err.contains(column), "{column}: {err}");
        // An entry deleted before it is the first break.
        tamper(&app, "DELETE FROM audit_log WHERE seq = 2").await;
        let err = verify(&app).await.unwrap_err();
        assert!(err.contains("broken at entry 2"), "{column}: {err}");
        app.stop().await;
    }
    // Beyond the head, an unreadable row is still a row added there.
    let app = TestApp::spawn(Backend::Sqlite).await;
    some_traffic(&app).await;
    const COLUMNS: &str = "occurred_at, actor_kind, actor_id, organization_id, patient_id, action, categories, request_id, outcome, detail, prev_hash, hash, key_id";
    tamper(
        &app,
        &format!(
            "INSERT INTO audit_log (seq, {COLUMNS}) SELECT seq + 1000, {} FROM audit_log WHERE seq = 1",
            COLUMNS.replace("detail", "CAST(X'ff41fe' AS TEXT)")
        ),
    )
    .await;
    let err = verify(&app).await.unwrap_err();
    assert!(err.contains("lies beyond the head"), "{err}");
    app.stop().await;
}

e2e!(verify_catches_a_truncated_log, |app| async move {
    some_traffic(app).await;
    let owner = Database::connect(&app.database_url).await.unwrap();
    let script = match app.backend {
        Backend::Sqlite => "DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log",
        Backend::Postgres => {
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_truncate; TRUNCATE audit_log"
        }
    };
    owner.execute_unprepared(script).await.unwrap();
    owner.close().await.unwrap();
    let err = verify(app).await.unwrap_err();
    assert!(err.contains("broken at entry 1"), "{err}");
});

e2e!(
    verify_names_the_key_of_an_entry_it_cannot_check,
    |app| async move {
        some_traffic(app).await;
        // Verifying with another key only: the entries' key id is named.
        let err = verify_with(
            app,
            &[
                "--audit-key",
                "other:another-key-0123456789abcdef0123456789ab",
            ],
        )
        .await
        .unwrap_err();
        assert!(err.contains("broken at entry 1"), "{err}");
        assert!(
            err.contains("key id \"test\", which is not configured"),
            "{err}"
        );
        // With both, all is well; without any, verify refuses to guess.
        let both = format!("other:another-key-0123456789abcdef0123456789ab,{TEST_AUDIT_KEY}");
        assert_eq!(verify_with(app, &["--audit-key", &both]).await, Ok(()));
        let err = verify_with(app, &[]).await.unwrap_err();
        assert!(err.contains("needs the audit key"), "{err}");
    }
);

e2e!(
    verify_catches_an_entry_numbered_before_the_first,
    |app| async move {
        let (patient, doctor, _) = patient_and_doctor(app).await;
        assert_eq!(verify(app).await, Ok(()));
        // Anyone who may INSERT (the application role too) adds an entry
        // numbered 0 or below: it is shown in the patient's access history
        // like any other, and nothing moves the head.
        for seq in [0i64, -7] {
            tamper_with(
                app,
                vec![(
                    format!(
                        "INSERT INTO audit_log (seq, occurred_at, actor_kind, actor_id, organization_id, patient_id, action, categories, request_id, outcome, detail, prev_hash, hash, key_id) \
                         SELECT {seq}, occurred_at, actor_kind, actor_id, organization_id, patient_id, 'READ', 'IDENTITY,CONTACTS,MEDICATION', 'planted', 'OK', detail, prev_hash, hash, key_id FROM audit_log \
                         WHERE seq = (SELECT min(seq) FROM audit_log WHERE patient_id IS NOT NULL AND seq > 0)"
                    ),
                    vec![],
                )],
            )
            .await;
        }
        let data = app
            .ok(
                &doctor,
                "query($id: ID!) { patient(id: $id) { accessHistory(first: 100) { edges { node { seq } } } } }",
                json!({ "id": patient }),
            )
            .await;
        let shown: Vec<i64> = data["patient"]["accessHistory"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["seq"].as_i64().unwrap())
            .collect();
        assert!(shown.contains(&0), "{shown:?}");
        let err = verify(app).await.unwrap_err();
        assert!(err.contains("broken at entry -7"), "{err}");
        assert!(err.contains("before the first entry"), "{err}");
    }
);

e2e!(
    verify_catches_the_last_hash_respelled_in_capitals,
    |app| async move {
        some_traffic(app).await;
        // The same MAC bytes in other hex digits, on the last entry and the
        // head (no later entry covers it): the entry must still count as
        // changed, or a hash would have several spellings and checkpoints
        // would compare strings that mean the same.
        let last = entries(app).await.pop().unwrap();
        let respelled = last.hash.to_uppercase();
        assert_ne!(respelled, last.hash);
        tamper_with(
            app,
            vec![
                (
                    format!("UPDATE audit_log SET hash = $1 WHERE seq = {}", last.seq),
                    vec![respelled.clone().into()],
                ),
                (
                    "UPDATE audit_head SET hash = $1 WHERE id = 1".into(),
                    vec![respelled.into()],
                ),
            ],
        )
        .await;
        let err = verify(app).await.unwrap_err();
        assert!(
            err.contains(&format!("broken at entry {}", last.seq)),
            "{err}"
        );
        assert!(err.contains("does not match its MAC"), "{err}");
    }
);

e2e!(
    verify_tells_a_rewritten_head_hash_and_a_second_head_row_as_such,
    |app| async move {
        some_traffic(app).await;
        let last = entries(app).await.pop().unwrap();
        // The head's hash alone respelled: the head disagrees with the
        // entry it names — told as that, at that entry.
        tamper_with(
            app,
            vec![(
                "UPDATE audit_head SET hash = $1 WHERE id = 1".into(),
                vec![last.hash.to_uppercase().into()],
            )],
        )
        .await;
        let err = verify(app).await.unwrap_err();
        assert!(
            err.contains(&format!("broken at entry {}", last.seq)),
            "{err}"
        );
        assert!(err.contains("the head records another hash"), "{err}");
        tamper_with(
            app,
            vec![(
                "UPDATE audit_head SET hash = $1 WHERE id = 1".into(),
                vec![last.hash.clone().into()],
            )],
        )
        .await;
        assert_eq!(verify(app).await, Ok(()));
        // A second head row, which the hub never writes nor reads.
        tamper_with(
            app,
            vec![(
                "INSERT INTO audit_head (id, seq, hash, legacy_seq) VALUES (2, $1, $2, 0)".into(),
                vec![last.seq.into(), last.hash.clone().into()],
            )],
        )
        .await;
        let err = verify(app).await.unwrap_err();
        assert!(err.contains("holds 2 rows"), "{err}");
    }
);

e2e!(
    verify_refuses_entries_signed_with_the_demo_key_or_no_key_id,
    |app| async move {
        // The demo key is public: on a database whose verifier does not ask
        // for --demo, an entry signed with it is a forgery like any other.
        some_traffic(app).await;
        let demo = renkei_schema::audit::keys::AuditKeys::demo_key();
        let seq = forge_append(app, |row| {
            row.key_id = Some(demo.id().into());
            row.hash = keyed_hash(row, &demo)
        })
        .await;
        let err = verify(app).await.unwrap_err();
        assert!(err.contains(&format!("broken at entry {seq}")), "{err}");
        assert!(
            err.contains("key id \"demo\", which is not configured"),
            "{err}"
        );

        let app2 = TestApp::spawn(app.backend).await;
        some_traffic(&app2).await;
        let seq = forge_append(&app2, |row| {
            row.key_id = Some(String::new());
            row.hash = legacy_hash(row)
        })
        .await;
        let err = verify(&app2).await.unwrap_err();
        assert!(err.contains(&format!("broken at entry {seq}")), "{err}");
        assert!(
            err.contains("key id \"\", which is not configured"),
            "{err}"
        );
        app2.stop().await;
    }
);

// ---- checkpoints outside the database ----

/// A second instance on the app's database that writes checkpoints to a
/// file every second (and at its shutdown).
async fn checkpointing_peer(app: &TestApp, file: &std::path::Path) -> TestApp {
    let file = file.to_path_buf();
    app.spawn_peer(move |c| {
        c.checkpoints.audit_checkpoint_file = Some(file);
        c.checkpoints.audit_checkpoint_seconds = 1;
    })
    .await
}

/// Cuts the log back to entry `keep` as its owner could: the entries after
/// it deleted, the head moved back onto it (which verifies on its own).
async fn cut_back_to(app: &TestApp, keep: i64) {
    let kept_hash = entries(app).await[(keep - 1) as usize].hash.clone();
    tamper_with(
        app,
        vec![
            (format!("DELETE FROM audit_log WHERE seq > {keep}"), vec![]),
            (
                "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1".into(),
                vec![keep.into(), kept_hash.into()],
            ),
        ],
    )
    .await;
}

/// The entries checkpointed in `file` beyond `seq`.
fn checkpoints_after(file: &std::path::Path, seq: i64) -> Vec<i64> {
    checkpoint_lines(file)
        .iter()
        .map(|l| l["seq"].as_i64().unwrap())
        .filter(|s| *s > seq)
        .collect()
}

fn checkpoint_lines(file: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

e2e!(
    checkpoints_catch_the_end_cut_off_with_the_head_moved_back,
    |app| async move {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("checkpoints.jsonl");
        let peer = checkpointing_peer(app, &file).await;
        some_traffic(app).await;
        some_traffic(&peer).await;
        peer.stop().await;
        let lines = checkpoint_lines(&file);
        let last = lines.last().expect("a checkpoint at shutdown")["seq"]
            .as_i64()
            .unwrap();
        let cp = file.to_str().unwrap();
        let keyed = ["--audit-key", TEST_AUDIT_KEY, "--checkpoints", cp];
        assert_eq!(verify_with(app, &keyed).await, Ok(()));

        // Cut off the last three entries and move the head back onto the
        // one before them: what is left verifies on its own…
        let keep = last - 3;
        cut_back_to(app, keep).await;
        assert_eq!(
            verify(app).await,
            Ok(()),
            "without checkpoints the cut is invisible"
        );
        // …but not against the checkpoints.
        let err = verify_with(app, &keyed).await.unwrap_err();
        assert!(
            err.contains(&format!("broken at entry {}", keep + 1)),
            "{err}"
        );
        assert!(err.contains(&format!("records entry {last}")), "{err}");
        // A directory of checkpoint files works the same.
        let err = verify_with(
            app,
            &[
                "--audit-key",
                TEST_AUDIT_KEY,
                "--checkpoints",
                dir.path().to_str().unwrap(),
            ],
        )
        .await
        .unwrap_err();
        assert!(
            err.contains(&format!("broken at entry {}", keep + 1)),
            "{err}"
        );
    }
);

e2e!(
    the_hub_does_not_checkpoint_a_log_cut_behind_its_last_checkpoint,
    |app| async move {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("checkpoints.jsonl");
        let peer = checkpointing_peer(app, &file).await;
        some_traffic(app).await;
        let head = entries(app).await.pop().unwrap().seq;
        for _ in 0..100 {
            if checkpoint_lines(&file)
                .last()
                .is_some_and(|c| c["seq"] == head)
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let written = checkpoint_lines(&file);
        assert_eq!(written.last().unwrap()["seq"], head, "{written:?}");

        // The owner cuts off entries the peer has checkpointed and moves the
        // head back onto an entry that verifies; then the hub appends on top.
        let keep = head - 3;
        cut_back_to(app, keep).await;
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        some_traffic(app).await;
        assert!(entries(app).await.pop().unwrap().seq > head);
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        peer.stop().await;

        // The peer vouched for neither the cut log nor what followed it.
        let lines = checkpoint_lines(&file);
        assert_eq!(
            lines.len(),
            written.len(),
            "checkpoints after the cut: {:?}",
            &lines[written.len()..]
        );
        let err = verify_with(
            app,
            &[
                "--audit-key",
                TEST_AUDIT_KEY,
                "--checkpoints",
                file.to_str().unwrap(),
            ],
        )
        .await
        .unwrap_err();
        assert!(err.contains("differs from the checkpoint"), "{err}");
    }
);

e2e!(
    a_hub_started_on_a_log_cut_behind_the_files_last_checkpoint_vouches_for_nothing,
    |app| async move {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("checkpoints.jsonl");
        let first = checkpointing_peer(app, &file).await;
        some_traffic(app).await;
        first.stop().await;
        let written = checkpoint_lines(&file);
        let head = written.last().expect("a checkpoint at shutdown")["seq"]
            .as_i64()
            .unwrap();
        // While no hub checkpoints, the owner cuts off checkpointed entries,
        // moves the head back, and the log grows past them again.
        let keep = head - 3;
        cut_back_to(app, keep).await;
        some_traffic(app).await;
        assert!(entries(app).await.pop().unwrap().seq > head);
        // A hub started on that log with the same file reads the file's
        // last checkpoint first, and does not vouch for the rewrite.
        let second = checkpointing_peer(app, &file).await;
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        second.stop().await;
        let lines = checkpoint_lines(&file);
        assert_eq!(
            lines.len(),
            written.len(),
            "checkpoints after the cut: {:?}",
            &lines[written.len()..]
        );
    }
);

e2e!(
    checkpoints_catch_a_log_rewritten_as_if_it_predated_keyed_signing,
    |app| async move {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("checkpoints.jsonl");
        let peer = checkpointing_peer(app, &file).await;
        some_traffic(app).await;
        peer.stop().await;
        let checkpointed = checkpoint_lines(&file).last().unwrap()["seq"]
            .as_i64()
            .unwrap();
        // The owner rewrites the whole log with the unkeyed formula and
        // declares all of it older than keyed signing.
        rewrite_from(app, 1, true, unkeyed).await;
        tamper_with(
            app,
            vec![(
                "UPDATE audit_head SET legacy_seq = seq WHERE id = 1".into(),
                vec![],
            )],
        )
        .await;
        // Unkeyed entries are what anyone can compute: without a checkpoint
        // to vouch for them, they do not verify…
        let err = verify(app).await.unwrap_err();
        assert!(err.contains("broken at entry 1"), "{err}");
        assert!(err.contains("no checkpoint"), "{err}");
        // …and against one, the rewrite shows.
        let err = verify_with(
            app,
            &[
                "--audit-key",
                TEST_AUDIT_KEY,
                "--checkpoints",
                file.to_str().unwrap(),
            ],
        )
        .await
        .unwrap_err();
        assert!(err.contains("differs from the checkpoint"), "{err}");
        assert!(
            err.contains(&format!("broken at entry {checkpointed}")),
            "{err}"
        );
    }
);

e2e!(
    a_forged_or_altered_checkpoint_is_refused,
    |app| async move {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("checkpoints.jsonl");
        let peer = checkpointing_peer(app, &file).await;
        some_traffic(app).await;
        peer.stop().await;
        let mut line = checkpoint_lines(&file).pop().unwrap();
        let seq = line["seq"].as_i64().unwrap();
        line["seq"] = json!(seq + 100);
        let forged = dir.path().join("forged.jsonl");
        std::fs::write(&forged, format!("{line}\n")).unwrap();
        let err = verify_with(
            app,
            &[
                "--audit-key",
                TEST_AUDIT_KEY,
                "--checkpoints",
                forged.to_str().unwrap(),
            ],
        )
        .await
        .unwrap_err();
        assert!(err.contains("forged.jsonl:1 is not valid"), "{err}");
        assert!(err.contains("MAC"), "{err}");
        std::fs::write(&forged, "not json\n").unwrap();
        let err = verify_with(
            app,
            &[
                "--audit-key",
                TEST_AUDIT_KEY,
                "--checkpoints",
                forged.to_str().unwrap(),
            ],
        )
        .await
        .unwrap_err();
        assert!(err.contains("not a checkpoint"), "{err}");
    }
);

e2e!(
    an_intact_log_verifies_clean_under_live_traffic,
    |app| async move {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("checkpoints.jsonl");
        let peer = checkpointing_peer(app, &file).await;
        let (patient, doctor, _) = patient_and_doctor(app).await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let traffic = |target: &TestApp, tag: &'static str| {
            let (client, url, doctor, patient, stop) = (
                target.client.clone(),
                target.url("/graphql"),
                doctor.clone(),
                patient.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let query = if n % 3 == 0 {
                        json!({ "query": "mutation($i: RegisterPatientInput!) { registerPatient(input: $i) { id } }",
                                "variables": { "i": { "name": "負荷 試験", "nameKana": "フカ シケン", "birthDate": "1940-05-01", "sex": "FEMALE", "localId": format!("{tag}-{n}") } } })
                    } else {
                        json!({ "query": "query($id: ID!) { patient(id: $id) { name } }", "variables": { "id": patient } })
                    };
                    let res = client
                        .post(&url)
                        .bearer_auth(&doctor)
                        .json(&query)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 200);
                    let body: Value = res.json().await.unwrap();
                    assert!(body.get("errors").is_none(), "{body}");
                    n += 1;
                }
                n
            })
        };
        let a = traffic(app, "A");
        let b = traffic(&peer, "B");
        for _ in 0..100 {
            if !checkpoint_lines(&file).is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let cp = file.to_str().unwrap().to_string();
        for _ in 0..4 {
            tokio::time::sleep(std::time::Duration::from_millis(700)).await;
            assert_eq!(
                verify_with(app, &["--audit-key", TEST_AUDIT_KEY, "--checkpoints", &cp]).await,
                Ok(())
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let served = a.await.unwrap() + b.await.unwrap();
        assert!(served > 10, "{served} requests");
        peer.stop().await;
        assert!(!checkpoint_lines(&file).is_empty());
        assert_eq!(
            verify_with(app, &["--audit-key", TEST_AUDIT_KEY, "--checkpoints", &cp]).await,
            Ok(())
        );
    }
);

// ---- a database from before keyed signing ----

/// A database migrated up to just before keyed signing, holding three
/// entries with the old unkeyed hashes, then migrated to the end: what an
/// existing installation looks like after the upgrade. Served by the hub,
/// which writes checkpoints to `checkpoints`.
async fn upgraded(backend: Backend, checkpoints: &std::path::Path) -> (TestApp, TestDatabase) {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::Statement;
    let (database, url) = TestDatabase::create(backend).await;
    let db = Database::connect(&url).await.unwrap();
    let before = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261204_000008_audit_keys")
        .expect("the keyed-signing migration");
    Migrator::up(&db, Some(before as u32)).await.unwrap();
    let sql_backend = db.get_database_backend();
    let mut prev = renkei_schema::audit::chain::GENESIS_HASH.to_string();
    let now = renkei_schema::audit::chain::truncate_to_micros(chrono::Utc::now());
    for seq in 1..=3i64 {
        let mut row = audit_log::Model {
            seq,
            occurred_at: now,
            actor_kind: "MEMBER".into(),
            actor_id: uuid::Uuid::now_v7(),
            organization_id: uuid::Uuid::now_v7(),
            patient_id: Some(uuid::Uuid::now_v7()),
            action: "READ".into(),
            categories: "IDENTITY".into(),
            request_id: format!("before-the-upgrade-{seq}"),
            outcome: "OK".into(),
            detail: None,
            prev_hash: prev.clone(),
            hash: String::new(),
            key_id: None,
        };
        row.hash = legacy_hash(&row);
        prev = row.hash.clone();
        let placeholders = match sql_backend {
            sea_orm::DatabaseBackend::Sqlite => vec!["?"; 13].join(", "),
            _ => (1..=13)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        db.execute_raw(Statement::from_sql_and_values(
            sql_backend,
            format!("INSERT INTO audit_log (seq, occurred_at, actor_kind, actor_id, organization_id, patient_id, action, categories, request_id, outcome, detail, prev_hash, hash) VALUES ({placeholders})"),
            [
                row.seq.into(),
                row.occurred_at.into(),
                row.actor_kind.into(),
                row.actor_id.into(),
                row.organization_id.into(),
                row.patient_id.into(),
                row.action.into(),
                row.categories.into(),
                row.request_id.into(),
                row.outcome.into(),
                row.detail.into(),
                row.prev_hash.into(),
                row.hash.into(),
            ],
        ))
        .await
        .unwrap();
    }
    db.execute_unprepared(&format!(
        "UPDATE audit_head SET seq = 3, hash = '{prev}' WHERE id = 1"
    ))
    .await
    .unwrap();
    db.close().await.unwrap();
    let checkpoints = checkpoints.to_path_buf();
    let app = TestApp::spawn_on(backend, url, |c| {
        c.checkpoints.audit_checkpoint_file = Some(checkpoints);
        c.checkpoints.audit_checkpoint_seconds = 1;
    })
    .await;
    some_traffic(&app).await;
    (app, database)
}

async fn unkeyed_entries_are_accepted_only_before_the_upgrade(backend: Backend) {
    // The upgraded log verifies against the checkpoints the hub has written
    // since: three unkeyed entries, then signed ones. Without a checkpoint
    // the unkeyed entries vouch for nothing (anyone can compute them).
    let dir = tempfile::tempdir().unwrap();
    let (app, database) = upgraded(backend, dir.path()).await;
    let err = verify(&app).await.unwrap_err();
    assert!(err.contains("broken at entry 1"), "{err}");
    assert!(err.contains("no checkpoint at or after entry 3"), "{err}");
    let checkpointed = [
        "--audit-key",
        TEST_AUDIT_KEY,
        "--checkpoints",
        dir.path().to_str().unwrap(),
    ];
    for _ in 0..50 {
        if !checkpoint_lines(&dir.path().join("audit-checkpoints.jsonl")).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(verify_with(&app, &checkpointed).await, Ok(()));
    let rows = entries(&app).await;
    assert!(rows[..3].iter().all(|r| r.key_id.is_none()));
    assert!(
        rows[3..]
            .iter()
            .all(|r| r.key_id.as_deref() == Some("test"))
    );
    // "Unkeyed" is no way in after the boundary…
    let seq = forge_append(&app, unkeyed).await;
    let err = verify_with(&app, &checkpointed).await.unwrap_err();
    assert!(err.contains(&format!("broken at entry {seq}")), "{err}");
    assert!(err.contains("only entries 1–3"), "{err}");
    app.stop().await;
    drop(database);

    // …and rewriting the unkeyed prefix (which anyone can recompute) breaks
    // the first signed entry, whose MAC covers the last unkeyed hash.
    let dir = tempfile::tempdir().unwrap();
    let (app, database) = upgraded(backend, dir.path()).await;
    let guess = wrong_key();
    rewrite_from(&app, 2, true, |row| {
        if row.seq <= 3 {
            unkeyed(row)
        } else {
            row.hash = keyed_hash(row, &guess)
        }
    })
    .await;
    let err = verify(&app).await.unwrap_err();
    assert!(err.contains("broken at entry 4"), "{err}");
    app.stop().await;
    drop(database);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unkeyed_entries_are_accepted_only_before_the_upgrade_sqlite() {
    unkeyed_entries_are_accepted_only_before_the_upgrade(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unkeyed_entries_are_accepted_only_before_the_upgrade_postgres() {
    if postgres_configured() {
        unkeyed_entries_are_accepted_only_before_the_upgrade(Backend::Postgres).await;
    }
}

// ---- least privilege on PostgreSQL ----

/// A PostgreSQL role that exists for one test: dropped (with its
/// privileges in `database_url`) when the test ends, whatever happens.
struct TestRole {
    name: String,
    database_url: String,
}

impl Drop for TestRole {
    fn drop(&mut self) {
        let (name, url) = (self.name.clone(), self.database_url.clone());
        let admin_url = std::env::var("RENKEI_TEST_DATABASE_URL").unwrap_or_default();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(db) = Database::connect(&url).await {
                    let _ = db
                        .execute_unprepared(&format!("DROP OWNED BY {name}"))
                        .await;
                    db.close().await.ok();
                }
                if let Ok(admin) = Database::connect(&admin_url).await {
                    let _ = admin
                        .execute_unprepared(&format!("DROP ROLE IF EXISTS {name}"))
                        .await;
                    admin.close().await.ok();
                }
            });
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_role_appends_to_the_log_but_cannot_change_it() {
    if !postgres_configured() {
        eprintln!("PostgreSQL run skipped: RENKEI_TEST_DATABASE_URL is not set");
        return;
    }
    let (database, owner_url) = TestDatabase::create(Backend::Postgres).await;
    renkei(&["migrate", "--database-url", &owner_url])
        .await
        .unwrap();
    let role = TestRole {
        name: format!("renkei_app_{}", uuid::Uuid::new_v4().simple()),
        database_url: owner_url.clone(),
    };
    // The owner (a superuser here) is refused as the application role.
    let err = renkei(&[
        "db",
        "grant",
        "--role",
        "postgres",
        "--existing-role",
        "--database-url",
        &owner_url,
    ])
    .await
    .unwrap_err();
    assert!(err.contains("superuser"), "{err}");
    // --print changes nothing.
    let role_exists = || async {
        let owner = Database::connect(&owner_url).await.unwrap();
        let found = owner
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                format!(
                    "SELECT 1 AS one FROM pg_roles WHERE rolname = '{}'",
                    role.name
                ),
            ))
            .await
            .unwrap()
            .is_some();
        owner.close().await.unwrap();
        found
    };
    renkei(&[
        "db",
        "grant",
        "--role",
        &role.name,
        "--print",
        "--database-url",
        &owner_url,
    ])
    .await
    .unwrap();
    assert!(!role_exists().await, "--print created the role");
    renkei(&[
        "db",
        "grant",
        "--role",
        &role.name,
        "--database-url",
        &owner_url,
    ])
    .await
    .unwrap();
    assert!(role_exists().await);
    // Granting again (after a migration, say) is exact and repeatable.
    renkei(&[
        "db",
        "grant",
        "--role",
        &role.name,
        "--existing-role",
        "--database-url",
        &owner_url,
    ])
    .await
    .unwrap();
    let mut app_url = reqwest::Url::parse(&owner_url).unwrap();
    app_url.set_username(&role.name).unwrap();
    let app_url = app_url.to_string();

    // The hub serves as that role, without migrating: writes and reads.
    let app = TestApp::spawn_on(Backend::Postgres, app_url.clone(), |c| c.no_migrate = true).await;
    some_traffic(&app).await;
    let (patient, doctor, _) = patient_and_doctor(&app).await;
    app.consent(
        &doctor,
        &patient,
        json!({ "excludedCategories": ["CONTACTS"] }),
    )
    .await;
    let data = app
        .ok(
            &doctor,
            "query($id: ID!) { patient(id: $id) { name } }",
            json!({ "id": patient }),
        )
        .await;
    assert_eq!(data["patient"]["name"], "連携 花子");
    assert!(!log_for(&app, &patient).await.is_empty());

    // What the role itself may not do to the log.
    let as_role = Database::connect(&app_url).await.unwrap();
    for (sql, refusal) in [
        (
            "UPDATE audit_log SET outcome = 'X' WHERE seq = 1",
            "permission denied",
        ),
        ("DELETE FROM audit_log WHERE seq = 1", "permission denied"),
        ("TRUNCATE audit_log", "permission denied"),
        (
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete",
            "must be owner",
        ),
        ("ALTER TABLE audit_log DISABLE TRIGGER ALL", "must be owner"),
        (
            "DROP TRIGGER audit_log_no_update_delete ON audit_log",
            "must be owner",
        ),
        (
            "SET session_replication_role = replica",
            "permission denied",
        ),
        (
            "UPDATE audit_head SET legacy_seq = seq",
            "permission denied",
        ),
        ("DROP TABLE audit_log", "must be owner"),
    ] {
        let err = as_role
            .execute_unprepared(sql)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(refusal), "{sql}: {err}");
    }
    as_role.close().await.unwrap();
    assert_eq!(verify(&app).await, Ok(()));
    app.stop().await;
    drop(role);
    drop(database);
}

// ---- checkpoints in Redis ----

e2e!(
    checkpoints_in_a_redis_stream_catch_the_end_cut_off,
    |app| async move {
        let Some(url) = redis_url() else {
            eprintln!("Redis run skipped: RENKEI_TEST_REDIS_URL is not set");
            return;
        };
        let prefix = redis_prefix();
        let peer = app
            .spawn_peer(|c| {
                c.redis.redis_url = Some(url.clone());
                c.redis.redis_prefix = prefix.clone();
                c.checkpoints.audit_checkpoint_seconds = 1;
            })
            .await;
        some_traffic(&peer).await;
        peer.stop().await;
        let redis_args = [
            "--audit-key",
            TEST_AUDIT_KEY,
            "--checkpoints-redis",
            &url,
            "--redis-prefix",
            &prefix,
        ];
        assert_eq!(verify_with(app, &redis_args).await, Ok(()));
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let stream = format!("{prefix}:audit-checkpoints");
        let length: i64 = redis::cmd("XLEN")
            .arg(&stream)
            .query_async(&mut con)
            .await
            .unwrap();
        assert!(length >= 1, "{length} checkpoints in {stream}");

        let last = entries(app).await.pop().unwrap().seq;
        let keep = last - 2;
        cut_back_to(app, keep).await;
        let err = verify_with(app, &redis_args).await.unwrap_err();
        assert!(
            err.contains(&format!("broken at entry {}", keep + 1)),
            "{err}"
        );
        assert!(err.contains(&format!("redis {stream}")), "{err}");
        let _: i64 = redis::cmd("DEL")
            .arg(&stream)
            .query_async(&mut con)
            .await
            .unwrap();
    }
);

e2e!(
    a_dead_redis_delays_neither_requests_nor_the_checkpoint_file,
    |app| async move {
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().to_path_buf();
        let peer = app
            .spawn_peer(|c| {
                c.redis.redis_url = Some(format!("redis://127.0.0.1:{port}"));
                c.redis.redis_prefix = redis_prefix();
                c.checkpoints.audit_checkpoint_file = Some(file);
                c.checkpoints.audit_checkpoint_seconds = 1;
            })
            .await;
        let (patient, doctor, _) = patient_and_doctor(&peer).await;
        let started = std::time::Instant::now();
        for _ in 0..10 {
            peer.ok(
                &doctor,
                "query($id: ID!) { patient(id: $id) { name } }",
                json!({ "id": patient }),
            )
            .await;
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        }
        // 10 reads and 1.5 s of pauses, with checkpoints failing in Redis
        // meanwhile: no read waited for Redis.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        peer.stop().await;
        // A directory: the hub writes audit-checkpoints.jsonl in it.
        let lines = checkpoint_lines(&dir.path().join("audit-checkpoints.jsonl"));
        assert!(!lines.is_empty());
        assert_eq!(
            verify_with(
                app,
                &[
                    "--audit-key",
                    TEST_AUDIT_KEY,
                    "--checkpoints",
                    dir.path().to_str().unwrap()
                ]
            )
            .await,
            Ok(())
        );
    }
);

// ---- entries hidden from the hub's own queries ----

/// On SQLite a column holds any type: an entry whose patient id is
/// rewritten as TEXT of the same bytes, or whose time is rewritten with
/// another offset, reads back as the same values (its MAC matches) but no
/// longer answers the hub's queries by patient or by time — it vanishes
/// from access histories. Verify finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_sqlite_entries_rewritten_in_another_form() {
    use chrono::{FixedOffset, SecondsFormat};
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (patient, doctor, _) = patient_and_doctor(&app).await;
    three_reads(&app, &doctor, &patient).await;
    assert_eq!(verify(&app).await, Ok(()));
    let seqs =
        |log: Vec<Value>| -> Vec<i64> { log.iter().map(|e| e["seq"].as_i64().unwrap()).collect() };
    let history = seqs(log_for(&app, &patient).await);
    let target = history[1];
    tamper(
        &app,
        &format!("UPDATE audit_log SET patient_id = CAST(patient_id AS TEXT) WHERE seq = {target}"),
    )
    .await;
    let hidden = seqs(log_for(&app, &patient).await);
    assert!(
        !hidden.contains(&target),
        "the hub's history no longer finds {target}: {hidden:?}"
    );
    let err = verify(&app).await.unwrap_err();
    assert!(err.contains(&format!("broken at entry {target}")), "{err}");
    assert!(err.contains("another type or form"), "{err}");

    // The same entry back as it was, and another's time in Japan's offset.
    tamper(
        &app,
        &format!("UPDATE audit_log SET patient_id = CAST(patient_id AS BLOB) WHERE seq = {target}"),
    )
    .await;
    assert_eq!(verify(&app).await, Ok(()));
    let entry = entries(&app)
        .await
        .into_iter()
        .find(|e| e.seq == history[0])
        .unwrap();
    let jst = entry
        .occurred_at
        .with_timezone(&FixedOffset::east_opt(9 * 3600).unwrap())
        .to_rfc3339_opts(SecondsFormat::Micros, false);
    tamper(
        &app,
        &format!(
            "UPDATE audit_log SET occurred_at = '{jst}' WHERE seq = {}",
            entry.seq
        ),
    )
    .await;
    let err = verify(&app).await.unwrap_err();
    assert!(
        err.contains(&format!("broken at entry {}", entry.seq)),
        "{err}"
    );
    app.stop().await;
}

/// On PostgreSQL the table's owner can enable row-level security with a
/// policy that hides entries from every other role — the hub's — while
/// the owner, verifying, still sees them all. Verify reports it, and the
/// hub signs no checkpoint over a log it may not see whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_security_on_the_log_is_reported_on_postgres() {
    if !postgres_configured() {
        eprintln!("PostgreSQL run skipped: RENKEI_TEST_DATABASE_URL is not set");
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkpoints.jsonl");
    let peer = checkpointing_peer(&app, &file).await;
    some_traffic(&app).await;
    assert_eq!(verify(&app).await, Ok(()));
    let owner = Database::connect(&app.database_url).await.unwrap();
    owner
        .execute_unprepared(
            "ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY; \
             CREATE POLICY hide_one ON audit_log FOR SELECT USING (seq <> 2); \
             CREATE POLICY append ON audit_log FOR INSERT WITH CHECK (true)",
        )
        .await
        .unwrap();
    let head_then = entries(&app).await.last().unwrap().seq;
    some_traffic(&app).await;
    peer.stop().await;
    let after = checkpoints_after(&file, head_then);
    assert!(
        after.is_empty(),
        "checkpoints signed over the hidden log: {after:?}"
    );
    let err = verify(&app).await.unwrap_err();
    assert!(err.contains("row-level security"), "{err}");
    // Undone, the log verifies again.
    owner
        .execute_unprepared(
            "DROP POLICY hide_one ON audit_log; DROP POLICY append ON audit_log; \
             ALTER TABLE audit_log DISABLE ROW LEVEL SECURITY",
        )
        .await
        .unwrap();
    owner.close().await.unwrap();
    assert_eq!(verify(&app).await, Ok(()));
    app.stop().await;
}

/// On PostgreSQL the owner can put a copy of the log, without some
/// entries, in another schema, and that schema before the hub's in the
/// search path of the hub's role: the hub would read (and write) the copy,
/// while verifying, as the owner, checks the original. A second relation
/// of the audit tables' names is reported by both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_audit_log_in_another_schema_is_reported_on_postgres() {
    if !postgres_configured() {
        eprintln!("PostgreSQL run skipped: RENKEI_TEST_DATABASE_URL is not set");
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkpoints.jsonl");
    let peer = checkpointing_peer(&app, &file).await;
    some_traffic(&app).await;
    assert_eq!(verify(&app).await, Ok(()));
    let owner = Database::connect(&app.database_url).await.unwrap();
    owner
        .execute_unprepared(
            "CREATE SCHEMA shadow; \
             CREATE TABLE shadow.audit_log (LIKE public.audit_log INCLUDING ALL); \
             INSERT INTO shadow.audit_log SELECT * FROM public.audit_log WHERE seq <> 2; \
             CREATE TABLE shadow.audit_head (LIKE public.audit_head INCLUDING ALL); \
             INSERT INTO shadow.audit_head SELECT * FROM public.audit_head",
        )
        .await
        .unwrap();
    let head_then = entries(&app).await.last().unwrap().seq;
    some_traffic(&app).await;
    peer.stop().await;
    let after = checkpoints_after(&file, head_then);
    assert!(
        after.is_empty(),
        "checkpoints signed beside a second log: {after:?}"
    );
    let err = verify(&app).await.unwrap_err();
    assert!(
        err.contains("more than one audit_log or audit_head") && err.contains("shadow.audit_log"),
        "{err}"
    );
    owner
        .execute_unprepared("DROP SCHEMA shadow CASCADE")
        .await
        .unwrap();
    owner.close().await.unwrap();
    assert_eq!(verify(&app).await, Ok(()));
    app.stop().await;
}

e2e!(
    every_change_to_who_may_do_what_is_recorded,
    |app| async move {
        let clinic = app.organization("CLINIC", "監査クリニック").await;
        let admin = &app.admin_token;
        let member = app
            .ok(
                admin,
                "mutation($i: RegisterMemberInput!) { registerMember(input: $i) { id } }",
                json!({ "i": { "organizationId": clinic, "name": "理学 花子", "profession": "PHYSICAL_THERAPIST" } }),
            )
            .await["registerMember"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        app.ok(
            admin,
            "mutation($m: ID!) { setMemberProfession(memberId: $m, profession: PHYSICIAN) { id } }",
            json!({ "m": member }),
        )
        .await;
        app.ok(
            admin,
            "mutation($m: ID!) { setMemberStatus(memberId: $m, status: SUSPENDED) { id } }",
            json!({ "m": member }),
        )
        .await;
        app.ok(
            admin,
            "mutation($m: ID!) { setMemberExternalSubject(memberId: $m, externalSubject: \"idp-0001\") { id } }",
            json!({ "m": member }),
        )
        .await;
        let key = app
            .ok(
                admin,
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { apiKey { id } } }",
                json!({ "i": { "organizationId": clinic, "name": "検査システム", "permissions": [
                    { "category": "SENSITIVE_HIV", "level": "READ_WRITE" }
                ] } }),
            )
            .await["createApiKey"]["apiKey"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        app.ok(
            admin,
            "mutation($k: ID!) { revokeApiKey(id: $k) { id } }",
            json!({ "k": key }),
        )
        .await;
        // A refused change records nothing.
        let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
        let body = app
            .gql(
                &doctor,
                "mutation($m: ID!) { setMemberProfession(memberId: $m, profession: NETWORK_ADMINISTRATOR) { id } }",
                json!({ "m": member }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        let log = app
            .ok(
                admin,
                "{ auditLog(filter: { action: ADMINISTRATION }, first: 100) { edges { node { patientId categories actorId detail } } } }",
                json!({}),
            )
            .await;
        let details: Vec<String> = log["auditLog"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let n = &e["node"];
                assert!(
                    n["patientId"].is_null() && n["categories"] == json!([]),
                    "{n}"
                );
                n["detail"].as_str().unwrap().to_string()
            })
            .collect();
        let expected = [
            format!("member {member} registered at organisation {clinic} as PHYSICAL_THERAPIST"),
            format!("member {member}: profession PHYSICAL_THERAPIST → PHYSICIAN"),
            format!("member {member}: status ACTIVE → SUSPENDED"),
            format!("member {member}: identity-provider subject set to subject \"idp-0001\""),
            format!("API key {key} created for organisation {clinic} with permissions"),
            format!("API key {key} revoked"),
        ];
        for want in &expected {
            assert!(
                details.iter().any(|d| d.starts_with(want.as_str())),
                "{want}: {details:#?}"
            );
        }
        assert!(
            details.iter().any(|d| d.contains("SENSITIVE_HIV")),
            "the key's permissions are named: {details:#?}"
        );
        assert_eq!(verify(app).await, Ok(()));
    }
);

/// Whoever can write the SQLite file can rebuild an index of the log
/// without an entry (a partial index whose schema text is put back): the
/// hub's lookups by patient then skip the entry, while its row — and the
/// chain — are intact. Verify runs SQLite's own check of the table and its
/// indexes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_an_sqlite_index_rebuilt_without_an_entry() {
    use sea_orm::Statement;
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (patient, doctor, _) = patient_and_doctor(&app).await;
    three_reads(&app, &doctor, &patient).await;
    assert_eq!(verify(&app).await, Ok(()));
    let target = log_for(&app, &patient).await[1]["seq"].as_i64().unwrap();
    let db = Database::connect(&app.database_url).await.unwrap();
    let original: String = db
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Sqlite,
            "SELECT sql FROM sqlite_master WHERE name = 'idx_audit_patient'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index(0)
        .unwrap();
    let partial = format!("{original} WHERE seq <> {target}");
    db.execute_unprepared(&format!(
        "DROP INDEX idx_audit_patient; {partial}; PRAGMA writable_schema = ON; \
         UPDATE sqlite_master SET sql = '{}' WHERE name = 'idx_audit_patient'; \
         PRAGMA writable_schema = OFF;",
        original.replace('\'', "''")
    ))
    .await
    .unwrap();
    db.close().await.unwrap();
    let err = verify(&app).await.unwrap_err();
    assert!(err.contains("indexes disagree"), "{err}");
    app.stop().await;
}

e2e!(
    refused_writes_on_a_patient_are_recorded_as_denied,
    |app| async move {
        let (patient, doctor, _) = patient_and_doctor(app).await;
        let clinic_record = app
            .ok(
                &doctor,
                "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { record { id } } }",
                json!({ "i": { "records": [{ "patientId": patient, "sourceRecordId": "AL-1",
                    "effectiveAt": "2026-01-10T09:00:00Z", "data": { "allergy": { "substance": "ペニシリン", "allergyType": "DRUG", "reaction": "発疹", "severity": "MODERATE" } } }] } }),
            )
            .await["writeRecords"][0]["record"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        // A pharmacy and a visiting-nurse station on the team.
        let pharmacy = app.organization("PHARMACY", "監査薬局").await;
        let (pharmacist_id, pharmacist) = app.member(&pharmacy, "PHARMACIST").await;
        let station = app.organization("VISITING_NURSE_STATION", "監査訪看").await;
        let (nurse_id, nurse) = app.member(&station, "NURSE").await;
        for org in [&pharmacy, &station] {
            app.ok(
                &doctor,
                "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
                json!({ "i": { "patientId": patient, "organizationId": org, "role": "OTHER" } }),
            )
            .await;
        }
        // The pharmacist may read CONDITIONS, not write them.
        let body = app
            .gql(
                &pharmacist,
                "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { outcome } }",
                json!({ "i": { "records": [{ "patientId": patient, "effectiveAt": "2026-01-10T09:00:00Z",
                    "data": { "condition": { "name": "高血圧症", "clinicalStatus": "ACTIVE" } } }] } }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        // The nurse may not withdraw the clinic's record.
        let body = app
            .gql(
                &nurse,
                "mutation($r: ID!) { markRecordEnteredInError(recordId: $r) { id } }",
                json!({ "r": clinic_record }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");

        let log = log_for(app, &patient).await;
        let denied = |actor: &str, category: &str| {
            log.iter().any(|e| {
                e["outcome"] == "DENIED"
                    && e["actorId"] == actor
                    && e["categories"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c == category))
                    && e["detail"].as_str().is_some_and(|d| d.contains("refused"))
            })
        };
        assert!(denied(&pharmacist_id, "CONDITIONS"), "{log:#?}");
        assert!(denied(&nurse_id, "ALLERGIES"), "{log:#?}");
    }
);

/// On SQLite, whoever can write the file can rename `audit_log` and put a
/// view in its place, passing the hub's inserts on with a trigger: a view
/// whose rows depend on the connection shows the hub a history with
/// entries left out, while a fresh connection — `verify`'s — reads them
/// all. Verify reports the view, and a trigger the hub did not create; the
/// hub signs no checkpoint meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_or_a_trigger_in_the_logs_place_is_reported_on_sqlite() {
    use sea_orm::{DatabaseBackend, Statement};
    let app = TestApp::spawn(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkpoints.jsonl");
    let peer = checkpointing_peer(&app, &file).await;
    some_traffic(&app).await;
    assert_eq!(verify(&app).await, Ok(()));
    let owner = Database::connect(&app.database_url).await.unwrap();
    let columns: Vec<String> = owner
        .query_all_raw(Statement::from_string(
            DatabaseBackend::Sqlite,
            "SELECT name FROM pragma_table_info('audit_log')",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect();
    let new_values: Vec<String> = columns.iter().map(|c| format!("NEW.{c}")).collect();
    owner
        .execute_unprepared(&format!(
            "ALTER TABLE audit_log RENAME TO audit_log_real; \
             CREATE VIEW audit_log AS SELECT * FROM audit_log_real WHERE total_changes() = 0 OR seq <> 2; \
             CREATE TRIGGER audit_log_pass INSTEAD OF INSERT ON audit_log BEGIN \
               INSERT INTO audit_log_real ({}) VALUES ({}); END",
            columns.join(", "),
            new_values.join(", ")
        ))
        .await
        .unwrap();
    let head_then = entries(&app).await.last().unwrap().seq;
    some_traffic(&app).await;
    peer.stop().await;
    let after = checkpoints_after(&file, head_then);
    assert!(
        after.is_empty(),
        "checkpoints signed over the view: {after:?}"
    );
    let err = verify(&app).await.unwrap_err();
    assert!(err.contains("audit_log is a view"), "{err}");
    // Undone, the log verifies again.
    owner
        .execute_unprepared(
            "DROP TRIGGER audit_log_pass; DROP VIEW audit_log; \
             ALTER TABLE audit_log_real RENAME TO audit_log",
        )
        .await
        .unwrap();
    assert_eq!(verify(&app).await, Ok(()));
    // A trigger of someone else's on the table: reported by name.
    owner
        .execute_unprepared(
            "CREATE TRIGGER audit_log_sneaky AFTER INSERT ON audit_log BEGIN SELECT 1; END",
        )
        .await
        .unwrap();
    let err = verify(&app).await.unwrap_err();
    assert!(err.contains("audit_log_sneaky"), "{err}");
    owner
        .execute_unprepared("DROP TRIGGER audit_log_sneaky")
        .await
        .unwrap();
    owner.close().await.unwrap();
    assert_eq!(verify(&app).await, Ok(()));
    app.stop().await;
}

e2e!(
    changes_to_one_key_or_member_at_once_are_recorded_as_made,
    |app| async move {
        let clinic = app.organization("CLINIC", "同時変更クリニック").await;
        let admin = &app.admin_token;
        let key = app
            .ok(
                admin,
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { apiKey { id } } }",
                json!({ "i": { "organizationId": clinic, "name": "検査システム", "permissions": [
                    { "category": "LAB_RESULTS", "level": "READ_WRITE" }
                ] } }),
            )
            .await["createApiKey"]["apiKey"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        // Ten revocations at once: one revokes, the others are told it is
        // already revoked — and the log says it was revoked once.
        let answers = futures::future::join_all((0..10).map(|_| {
            app.gql(
                admin,
                "mutation($k: ID!) { revokeApiKey(id: $k) { id } }",
                json!({ "k": key }),
            )
        }))
        .await;
        let revoked = answers.iter().filter(|a| a["errors"].is_null()).count();
        assert_eq!(revoked, 1, "{answers:?}");
        for a in answers.iter().filter(|a| !a["errors"].is_null()) {
            assert_eq!(error_code(a).as_deref(), Some("CONFLICT"), "{a}");
        }
        // A member suspended and reactivated at once, many times: every
        // recorded change starts from the status the one before left.
        let (member, _) = app.member(&clinic, "NURSE").await;
        for _ in 0..5 {
            futures::future::join_all(["SUSPENDED", "ACTIVE", "SUSPENDED", "ACTIVE"].map(|status| {
                app.gql(
                    admin,
                    "mutation($m: ID!, $s: MemberStatus!) { setMemberStatus(memberId: $m, status: $s) { id } }",
                    json!({ "m": member, "s": status }),
                )
            }))
            .await;
        }
        let log = app
            .ok(
                admin,
                "{ auditLog(filter: { action: ADMINISTRATION }, first: 100) { edges { node { detail } } } }",
                json!({}),
            )
            .await;
        let details: Vec<String> = log["auditLog"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["detail"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            details
                .iter()
                .filter(|d| **d == format!("API key {key} revoked"))
                .count(),
            1,
            "{details:?}"
        );
        // Oldest first: each change's "from" is the last change's "to".
        let mut changes: Vec<(String, String)> = details
            .iter()
            .rev()
            .filter_map(|d| {
                let rest = d.strip_prefix(&format!("member {member}: status "))?;
                let (from, to) = rest.split_once(" → ")?;
                Some((from.to_string(), to.to_string()))
            })
            .collect();
        assert_eq!(changes.len(), 20, "{details:?}");
        let mut status = "ACTIVE".to_string();
        for (from, to) in changes.drain(..) {
            assert_eq!(from, status, "{details:?}");
            status = to;
        }
    }
);

e2e!(
    a_head_moved_to_the_largest_number_fails_requests_until_it_is_put_back,
    |app| async move {
        let (patient, doctor, _) = patient_and_doctor(app).await;
        three_reads(app, &doctor, &patient).await;
        let head = entries(app).await.last().unwrap().clone();
        let read = "query($id: ID!) { patient(id: $id) { name } }";
        let moved = |seq: i64, hash: String| {
            vec![(
                "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1".to_string(),
                vec![seq.into(), hash.into()],
            )]
        };
        tamper_with(app, moved(i64::MAX, head.hash.clone())).await;
        // No entry can follow: the read is refused (nothing released
        // unrecorded), opaquely.
        for _ in 0..2 {
            let (status, body) = app
                .post(
                    Some(&doctor),
                    json!({ "query": read, "variables": { "id": patient } }),
                )
                .await;
            assert_eq!(status, 500, "{body}");
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "INTERNAL",
                "{body}"
            );
            assert!(body["data"]["patient"].is_null(), "{body}");
            assert!(!body.to_string().contains("audit head"), "{body}");
        }
        // Put back, the hub goes on without a restart: the writer lived.
        tamper_with(app, moved(head.seq, head.hash.clone())).await;
        let body = app.gql(&doctor, read, json!({ "id": patient })).await;
        assert!(body["errors"].is_null(), "{body}");
        assert_eq!(verify(app).await, Ok(()));
    }
);

e2e!(
    no_entry_of_a_patients_history_shows_its_hash,
    |app| async move {
        // Emptied only on entries shown in part, an empty hash beside full
        // ones would tell of data in a category closed to the reader.
        let (patient, doctor, _) = patient_and_doctor(app).await;
        three_reads(app, &doctor, &patient).await;
        let data = app
            .ok(
                &doctor,
                "query($id: ID!) { patient(id: $id) { accessHistory(first: 50) { edges { node { action categories hash } } } } }",
                json!({ "id": patient }),
            )
            .await;
        let edges = data["patient"]["accessHistory"]["edges"]
            .as_array()
            .unwrap();
        assert!(edges.len() >= 3, "{data}");
        for e in edges {
            assert_eq!(e["node"]["hash"], "", "{e}");
        }
        // The administrators' log keeps them.
        let data = app
            .ok(
                &app.admin_token,
                "{ auditLog(first: 5) { edges { node { hash } } } }",
                json!({}),
            )
            .await;
        for e in data["auditLog"]["edges"].as_array().unwrap() {
            assert_eq!(e["node"]["hash"].as_str().unwrap().len(), 64, "{e}");
        }
    }
);

//! Changing consent (同意の変更): every consent names its signed form; a
//! consent that widens access takes effect at once only when recorded by an
//! organisation the consent in force covers or by the coordination centre,
//! otherwise it is pending until the centre confirms it; narrowing takes
//! effect at once; every widening notifies the care team.

use std::time::Duration;

use renkei_tests::*;
use serde_json::{Value, json};

const NAME: &str = "query($id: ID!) { patient(id: $id) { name } }";

const RECORD: &str = "mutation($i: RecordConsentInput!) {
    recordConsent(input: $i) { id status active }
}";

const HISTORY: &str = "query($id: ID!) { patient(id: $id) {
    activeConsent { id }
    consents {
        id status active scope withdrawalReason reviewedAt
        reviewedBy { id } reviewedByOrganization { id } recordedByOrganization { id }
        form { reference signedOn signedBy proxyName proxyRelation }
    }
} }";

const CONFIRM: &str = "mutation($id: ID!) {
    confirmConsent(id: $id) { id status active reviewedAt reviewedBy { id } reviewedByOrganization { id } }
}";

const REJECT: &str = "mutation($i: RejectConsentInput!) {
    rejectConsent(input: $i) { id status active withdrawalReason reviewedAt }
}";

const WITHDRAW: &str =
    "mutation($i: WithdrawConsentInput!) { withdrawConsent(input: $i) { id status } }";

const PENDING: &str = "{ pendingConsents {
    patientId
    consent { id status scope recordedByOrganization { id } form { reference signedBy proxyRelation } }
    consentInForce { id status organizations { id } }
} }";

const NOTIFICATIONS: &str = "{ notifications { kind patientId subjectId message } }";

const ADD: &str = "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }";

/// A clinic registers the patient (its first consent, network-wide, takes
/// effect at once); a pharmacy and a care office join the care team.
struct Scene {
    patient: String,
    clinic: String,
    doctor: String,
    pharmacy: String,
    pharmacist: String,
    office: String,
    care_manager: String,
}

async fn scene(app: &TestApp) -> Scene {
    let clinic = app.organization("CLINIC", "みなみ野クリニック").await;
    let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
    let patient = app.patient(&doctor, "K-1").await;
    let pharmacy = app.organization("PHARMACY", "すずらん薬局").await;
    let (_, pharmacist) = app.member(&pharmacy, "PHARMACIST").await;
    let office = app
        .organization("HOME_CARE_SUPPORT_OFFICE", "ひまわり居宅介護支援事業所")
        .await;
    let (_, care_manager) = app.member(&office, "CARE_MANAGER").await;
    for (org, role) in [(&pharmacy, "PHARMACY"), (&office, "CARE_MANAGER")] {
        app.ok(
            &doctor,
            ADD,
            json!({ "i": { "patientId": patient, "organizationId": org, "role": role } }),
        )
        .await;
    }
    Scene {
        patient,
        clinic,
        doctor,
        pharmacy,
        pharmacist,
        office,
        care_manager,
    }
}

/// A consent input: network-wide, signed by the patient; `extra` merged in.
fn input(patient: &str, extra: Value) -> Value {
    let mut i = json!({
        "patientId": patient, "scope": "NETWORK", "method": "WRITTEN",
        "form": { "reference": "同意書 2026-0100", "signedOn": "2026-02-01", "signedBy": "PATIENT" }
    });
    for (k, v) in extra.as_object().expect("an object") {
        i[k] = v.clone();
    }
    json!({ "i": i })
}

async fn record(app: &TestApp, token: &str, patient: &str, extra: Value) -> Value {
    app.ok(token, RECORD, input(patient, extra)).await["recordConsent"].clone()
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

async fn reads_name(app: &TestApp, token: &str, patient: &str) -> bool {
    let body = app.gql(token, NAME, json!({ "id": patient })).await;
    match body["data"]["patient"]["name"].as_str() {
        Some(name) => {
            assert_eq!(name, "連携 花子");
            true
        }
        None => {
            // Not covered, or covered with IDENTITY excluded (a consent
            // that grants nothing).
            let reason = &errors_at(&body, &["patient", "name"])[0]["reason"];
            assert!(
                reason == "NO_CONSENT" || reason == "EXCLUDED_BY_CONSENT",
                "{body}"
            );
            false
        }
    }
}

async fn history(app: &TestApp, token: &str, patient: &str) -> Value {
    app.ok(token, HISTORY, json!({ "id": patient })).await["patient"].clone()
}

fn status_of(history: &Value, id: &str) -> String {
    history["consents"]
        .as_array()
        .expect("consents")
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("consent {id} in {history}"))["status"]
        .as_str()
        .expect("status")
        .to_string()
}

/// The coordination centre's member who may write CONSENT (a public-health
/// nurse of the centre the harness bootstraps).
/// A notification list as (kind, patient id, subject id).
fn kinds(data: &Value) -> Vec<(String, Value, Value)> {
    data["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["kind"].as_str().unwrap().to_string(),
                n["patientId"].clone(),
                n["subjectId"].clone(),
            )
        })
        .collect()
}

async fn centre_member(app: &TestApp) -> (String, String) {
    app.member(&app.admin_org.to_string(), "PUBLIC_HEALTH_NURSE")
        .await
}

async fn consent_audit_details(app: &TestApp, patient: &str) -> Vec<String> {
    let data = app
        .ok(
            &app.admin_token,
            "query($p: ID!) { auditLog(filter: { patientId: $p, action: CONSENT_CHANGE }, first: 100) { edges { node { detail outcome } } } }",
            json!({ "p": patient }),
        )
        .await;
    data["auditLog"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["detail"].as_str().unwrap_or_default().to_string())
        .collect()
}

e2e!(
    an_organisation_the_consent_excludes_cannot_widen_it_to_itself,
    |app| async move {
        let s = scene(app).await;
        // The patient excludes the pharmacy: a narrowing, in force at once.
        let excluded = record(
            app,
            &s.doctor,
            &s.patient,
            json!({ "organizationIds": [s.pharmacy] }),
        )
        .await;
        assert_eq!(excluded["status"], "IN_FORCE");
        assert!(!reads_name(app, &s.pharmacist, &s.patient).await);

        // The attack: the pharmacy records a network-wide consent.
        let attempt = record(app, &s.pharmacist, &s.patient, json!({})).await;
        assert_eq!(attempt["status"], "PENDING", "{attempt}");
        assert_eq!(attempt["active"], false);
        assert!(
            !reads_name(app, &s.pharmacist, &s.patient).await,
            "a pending consent grants nothing"
        );
        // Others are unaffected; the exclusion stays in force, and the
        // pending consent is in the history for the care team to see.
        assert!(reads_name(app, &s.doctor, &s.patient).await);
        let h = history(app, &s.doctor, &s.patient).await;
        assert_eq!(h["activeConsent"]["id"], excluded["id"]);
        assert_eq!(status_of(&h, &id_of(&attempt)), "PENDING");
        assert_eq!(status_of(&h, &id_of(&excluded)), "IN_FORCE");
        // The pharmacy cannot confirm its own consent either.
        let body = app
            .gql(&s.pharmacist, CONFIRM, json!({ "id": id_of(&attempt) }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        assert!(!reads_name(app, &s.pharmacist, &s.patient).await);

        // Not on a 個別同意 either: the care office is not listed, and its
        // 包括同意 waits too.
        record(
            app,
            &s.doctor,
            &s.patient,
            json!({ "scope": "ORGANIZATIONS", "organizationIds": [s.clinic] }),
        )
        .await;
        let attempt = record(app, &s.care_manager, &s.patient, json!({})).await;
        assert_eq!(attempt["status"], "PENDING");
        assert!(!reads_name(app, &s.care_manager, &s.patient).await);
    }
);

e2e!(
    a_pharmacy_cannot_re_consent_a_patient_who_withdrew,
    |app| async move {
        let s = scene(app).await;
        app.ok(
            &s.doctor,
            WITHDRAW,
            json!({ "i": { "patientId": s.patient } }),
        )
        .await;
        let attempt = record(app, &s.pharmacist, &s.patient, json!({})).await;
        assert_eq!(attempt["status"], "PENDING", "{attempt}");
        assert!(!reads_name(app, &s.pharmacist, &s.patient).await);
        assert!(!reads_name(app, &s.doctor, &s.patient).await);
        // After a withdrawal no consent covers anyone: the registering
        // clinic's new consent waits for the centre too (and supersedes the
        // pharmacy's pending one: the latest form counts).
        let clinics = record(app, &s.doctor, &s.patient, json!({})).await;
        assert_eq!(clinics["status"], "PENDING");
        let h = history(app, &s.doctor, &s.patient).await;
        assert_eq!(status_of(&h, &id_of(&attempt)), "SUPERSEDED");
        assert!(h["activeConsent"].is_null());
        assert!(!reads_name(app, &s.doctor, &s.patient).await);
    }
);

e2e!(
    an_organisation_the_consent_covers_widens_it_at_once,
    |app| async move {
        let s = scene(app).await;
        record(
            app,
            &s.doctor,
            &s.patient,
            json!({ "scope": "ORGANIZATIONS", "organizationIds": [s.clinic, s.office], "excludedCategories": ["CONTACTS"] }),
        )
        .await;
        assert!(!reads_name(app, &s.pharmacist, &s.patient).await);
        // The listed care office adds the pharmacy and drops the exclusion:
        // a widening by a covered organisation, in force at once.
        let widened = record(
            app,
            &s.care_manager,
            &s.patient,
            json!({ "scope": "ORGANIZATIONS", "organizationIds": [s.clinic, s.office, s.pharmacy] }),
        )
        .await;
        assert_eq!(widened["status"], "IN_FORCE", "{widened}");
        assert_eq!(widened["active"], true);
        assert!(reads_name(app, &s.pharmacist, &s.patient).await);
        let body = app
            .gql(
                &s.doctor,
                "query($id: ID!) { patient(id: $id) { phone } }",
                json!({ "id": s.patient }),
            )
            .await;
        assert!(errors_at(&body, &["patient", "phone"]).is_empty(), "{body}");
        let details = consent_audit_details(app, &s.patient).await;
        assert!(
            details.iter().any(|d| d.contains(
                "widens access, recorded by an organisation the consent in force covers: in force"
            )),
            "{details:?}"
        );
    }
);

e2e!(
    the_centre_confirms_a_pending_consent_which_then_takes_effect,
    |app| async move {
        let s = scene(app).await;
        let excluded = record(
            app,
            &s.doctor,
            &s.patient,
            json!({ "organizationIds": [s.pharmacy] }),
        )
        .await;
        let pending = record(
            app,
            &s.pharmacist,
            &s.patient,
            json!({ "form": { "reference": "同意書 2026-0200", "signedOn": "2026-03-01", "signedBy": "FAMILY", "proxyName": "連携 一郎", "proxyRelation": "長男" } }),
        )
        .await;
        let pending_id = id_of(&pending);

        // Only the centre reviews: the clinic (which may write CONSENT) and a
        // centre member who may only read CONSENT are refused.
        let (_, municipal) = app
            .member(&app.admin_org.to_string(), "MUNICIPAL_STAFF")
            .await;
        for token in [&s.doctor, &municipal] {
            let body = app.gql(token, CONFIRM, json!({ "id": pending_id })).await;
            assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
            let body = app.gql(token, PENDING, json!({})).await;
            assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        }

        // The centre lists it, with the consent it would replace.
        let (_, centre) = centre_member(app).await;
        let list = app.ok(&centre, PENDING, json!({})).await["pendingConsents"].clone();
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        assert_eq!(list[0]["patientId"], s.patient.as_str());
        assert_eq!(list[0]["consent"]["id"], pending_id.as_str());
        assert_eq!(
            list[0]["consent"]["recordedByOrganization"]["id"],
            s.pharmacy.as_str()
        );
        assert_eq!(
            list[0]["consent"]["form"],
            json!({ "reference": "同意書 2026-0200", "signedBy": "FAMILY", "proxyRelation": "長男" })
        );
        assert_eq!(list[0]["consentInForce"]["id"], excluded["id"]);
        assert_eq!(
            list[0]["consentInForce"]["organizations"],
            json!([{ "id": s.pharmacy }])
        );
        // The centre is not on the care team: it reads nothing else.
        let body = app.gql(&centre, NAME, json!({ "id": s.patient })).await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");

        // Confirmed, it takes effect and supersedes the consent in force.
        let confirmed =
            app.ok(&centre, CONFIRM, json!({ "id": pending_id })).await["confirmConsent"].clone();
        assert_eq!(confirmed["status"], "IN_FORCE");
        assert_eq!(confirmed["active"], true);
        assert!(confirmed["reviewedAt"].is_string());
        assert_eq!(
            confirmed["reviewedByOrganization"]["id"],
            app.admin_org.to_string()
        );
        assert!(reads_name(app, &s.pharmacist, &s.patient).await);
        let h = history(app, &s.doctor, &s.patient).await;
        assert_eq!(h["activeConsent"]["id"], pending_id.as_str());
        assert_eq!(status_of(&h, &id_of(&excluded)), "SUPERSEDED");
        let c = &h["consents"][0];
        assert_eq!(c["id"], pending_id.as_str());
        assert_eq!(
            c["form"],
            json!({ "reference": "同意書 2026-0200", "signedOn": "2026-03-01", "signedBy": "FAMILY", "proxyName": "連携 一郎", "proxyRelation": "長男" })
        );
        assert!(
            app.ok(&centre, PENDING, json!({})).await["pendingConsents"]
                .as_array()
                .unwrap()
                .is_empty()
        );

        // Confirming twice is a conflict; an unknown id is not found, and
        // neither answer names the patient.
        let body = app.gql(&centre, CONFIRM, json!({ "id": pending_id })).await;
        assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
        assert!(!body.to_string().contains(&s.patient), "{body}");
        let unknown = uuid::Uuid::now_v7().to_string();
        let body = app.gql(&centre, CONFIRM, json!({ "id": unknown })).await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
        assert_eq!(body["errors"][0]["message"], "consent not found");
        // A non-centre caller learns nothing of the id either way.
        let known = app
            .gql(&s.doctor, CONFIRM, json!({ "id": pending_id }))
            .await;
        let body = app.gql(&s.doctor, CONFIRM, json!({ "id": unknown })).await;
        assert_eq!(known["errors"][0]["message"], body["errors"][0]["message"]);

        // A network administrator may confirm too.
        record(
            app,
            &s.doctor,
            &s.patient,
            json!({ "organizationIds": [s.office] }),
        )
        .await;
        let pending = record(app, &s.care_manager, &s.patient, json!({})).await;
        assert_eq!(pending["status"], "PENDING");
        let confirmed = app
            .ok(&app.admin_token, CONFIRM, json!({ "id": id_of(&pending) }))
            .await;
        assert_eq!(confirmed["confirmConsent"]["status"], "IN_FORCE");
        assert!(reads_name(app, &s.care_manager, &s.patient).await);

        let details = consent_audit_details(app, &s.patient).await;
        assert!(
            details
                .iter()
                .any(|d| d.contains("PENDING until the coordination centre confirms it")),
            "{details:?}"
        );
        assert!(
            details.iter().any(|d| d.contains(&format!(
                "pending consent {pending_id} confirmed by the coordination centre"
            ))),
            "{details:?}"
        );
    }
);

e2e!(
    the_centre_on_the_care_team_widens_at_once,
    |app| async move {
        let s = scene(app).await;
        let centre_org = app.admin_org.to_string();
        app.ok(
            &s.doctor,
            ADD,
            json!({ "i": { "patientId": s.patient, "organizationId": centre_org, "role": "OTHER" } }),
        )
        .await;
        // The consent excludes the pharmacy and the centre itself: the centre
        // is not covered, but its widening takes effect at once.
        record(
            app,
            &s.doctor,
            &s.patient,
            json!({ "organizationIds": [s.pharmacy, centre_org] }),
        )
        .await;
        let (_, centre) = centre_member(app).await;
        let widened = record(app, &centre, &s.patient, json!({})).await;
        assert_eq!(widened["status"], "IN_FORCE", "{widened}");
        assert!(reads_name(app, &s.pharmacist, &s.patient).await);
        let details = consent_audit_details(app, &s.patient).await;
        assert!(
            details
                .iter()
                .any(|d| d.contains("widens access, recorded by the coordination centre: in force")),
            "{details:?}"
        );
    }
);

e2e!(the_centre_rejects_a_pending_consent, |app| async move {
    let s = scene(app).await;
    let excluded = record(
        app,
        &s.doctor,
        &s.patient,
        json!({ "organizationIds": [s.pharmacy] }),
    )
    .await;
    let pending = record(app, &s.pharmacist, &s.patient, json!({})).await;
    let (_, centre) = centre_member(app).await;
    let rejected = app
            .ok(
                &centre,
                REJECT,
                json!({ "i": { "consentId": id_of(&pending), "reason": "同意書の原本を確認できない" } }),
            )
            .await["rejectConsent"]
            .clone();
    assert_eq!(rejected["status"], "REJECTED");
    assert_eq!(rejected["active"], false);
    assert_eq!(
        rejected["withdrawalReason"],
        "rejected by the coordination centre: 同意書の原本を確認できない"
    );
    assert!(!reads_name(app, &s.pharmacist, &s.patient).await);
    let h = history(app, &s.doctor, &s.patient).await;
    assert_eq!(h["activeConsent"]["id"], excluded["id"]);
    assert_eq!(status_of(&h, &id_of(&pending)), "REJECTED");
    // A rejected consent can be neither confirmed nor rejected again.
    for (m, v) in [
        (CONFIRM, json!({ "id": id_of(&pending) })),
        (REJECT, json!({ "i": { "consentId": id_of(&pending) } })),
    ] {
        let body = app.gql(&centre, m, v).await;
        assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
    }
    let body = app
        .gql(
            &s.pharmacist,
            REJECT,
            json!({ "i": { "consentId": id_of(&pending) } }),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    let details = consent_audit_details(app, &s.patient).await;
    assert!(
        details
            .iter()
            .any(|d| d.contains("rejected by the coordination centre")),
        "{details:?}"
    );
});

e2e!(
    narrowing_by_any_team_organisation_takes_effect_at_once,
    |app| async move {
        let s = scene(app).await;
        // The pharmacy records that the patient now excludes the clinic's
        // view of contacts and the care office.
        let narrowed = record(
            app,
            &s.pharmacist,
            &s.patient,
            json!({ "organizationIds": [s.office], "excludedCategories": ["CONTACTS"] }),
        )
        .await;
        assert_eq!(narrowed["status"], "IN_FORCE", "{narrowed}");
        assert!(!reads_name(app, &s.care_manager, &s.patient).await);
        // Even the organisation excluded may record a narrower consent.
        let narrower = record(
            app,
            &s.care_manager,
            &s.patient,
            json!({ "organizationIds": [s.office, s.pharmacy], "excludedCategories": ["CONTACTS", "LAB_RESULTS"] }),
        )
        .await;
        assert_eq!(narrower["status"], "IN_FORCE", "{narrower}");
        assert!(!reads_name(app, &s.pharmacist, &s.patient).await);
        // The same terms on a new form widen nothing: in force.
        let again = record(
            app,
            &s.pharmacist,
            &s.patient,
            json!({ "organizationIds": [s.office, s.pharmacy], "excludedCategories": ["CONTACTS", "LAB_RESULTS"] }),
        )
        .await;
        assert_eq!(again["status"], "IN_FORCE", "{again}");
        // Withdrawal, by anyone of the team, at once.
        app.ok(
            &s.care_manager,
            WITHDRAW,
            json!({ "i": { "patientId": s.patient } }),
        )
        .await;
        assert!(!reads_name(app, &s.doctor, &s.patient).await);
    }
);

e2e!(a_withdrawal_voids_a_pending_widening, |app| async move {
    let s = scene(app).await;
    record(
        app,
        &s.doctor,
        &s.patient,
        json!({ "organizationIds": [s.pharmacy] }),
    )
    .await;
    let pending = record(app, &s.pharmacist, &s.patient, json!({})).await;
    let withdrawn = app
        .ok(
            &s.doctor,
            WITHDRAW,
            json!({ "i": { "patientId": s.patient, "reason": "本人の申し出" } }),
        )
        .await;
    assert_eq!(withdrawn["withdrawConsent"]["status"], "WITHDRAWN");
    let h = history(app, &s.doctor, &s.patient).await;
    assert_eq!(status_of(&h, &id_of(&pending)), "WITHDRAWN");
    let (_, centre) = centre_member(app).await;
    let body = app
        .gql(&centre, CONFIRM, json!({ "id": id_of(&pending) }))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
    assert!(!reads_name(app, &s.pharmacist, &s.patient).await);

    // With nothing in force, a withdrawal voids the pending one alone.
    let pending = record(app, &s.pharmacist, &s.patient, json!({})).await;
    assert_eq!(pending["status"], "PENDING");
    let voided = app
        .ok(
            &s.care_manager,
            WITHDRAW,
            json!({ "i": { "patientId": s.patient } }),
        )
        .await;
    assert_eq!(voided["withdrawConsent"]["id"], pending["id"]);
    assert_eq!(voided["withdrawConsent"]["status"], "WITHDRAWN");
    let body = app
        .gql(
            &s.doctor,
            WITHDRAW,
            json!({ "i": { "patientId": s.patient } }),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");

    // A later consent supersedes a pending one too.
    let first = record(app, &s.pharmacist, &s.patient, json!({})).await;
    record(
        app,
        &s.care_manager,
        &s.patient,
        json!({ "excludedCategories": ["LAB_RESULTS"] }),
    )
    .await;
    let h = history(app, &s.doctor, &s.patient).await;
    assert_eq!(status_of(&h, &id_of(&first)), "SUPERSEDED");
    let body = app
        .gql(&centre, CONFIRM, json!({ "id": id_of(&first) }))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
});

e2e!(every_widening_notifies_the_care_team, |app| async move {
    let s = scene(app).await;
    // The clinic's team-mates watch their notifications live.
    let mut ws = app.ws(&s.care_manager).await;
    let sub = ws
        .subscribe(
            "subscription { notifications { kind patientId subjectId } }",
            json!({}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // A narrowing tells no one.
    record(
        app,
        &s.doctor,
        &s.patient,
        json!({ "organizationIds": [s.pharmacy] }),
    )
    .await;
    assert!(kinds(&app.ok(&s.doctor, NOTIFICATIONS, json!({})).await).is_empty());

    // A pending widening: the team but the recorder, and the centre
    // (without the patient).
    let pending = record(app, &s.pharmacist, &s.patient, json!({})).await;
    let told = (
        "CONSENT_PENDING".to_string(),
        json!(s.patient),
        pending["id"].clone(),
    );
    for token in [&s.doctor, &s.care_manager] {
        assert_eq!(
            kinds(&app.ok(token, NOTIFICATIONS, json!({})).await),
            std::slice::from_ref(&told)
        );
    }
    assert!(kinds(&app.ok(&s.pharmacist, NOTIFICATIONS, json!({})).await).is_empty());
    let (_, centre) = centre_member(app).await;
    let data = app.ok(&centre, NOTIFICATIONS, json!({})).await;
    assert_eq!(
        kinds(&data),
        [(
            "CONSENT_PENDING".to_string(),
            Value::Null,
            pending["id"].clone()
        )]
    );
    let message = data["notifications"][0]["message"].as_str().unwrap();
    assert!(
        !message.contains(&s.patient) && !message.contains("花子"),
        "{message}"
    );
    let live = match ws.next_of(&sub).await {
        WsMessage::Next(v) => v["data"]["notifications"].clone(),
        other => panic!("a notification, got {other:?}"),
    };
    assert_eq!(live["kind"], "CONSENT_PENDING", "{live}");
    assert_eq!(live["subjectId"], pending["id"]);

    // Confirmed: the whole team, the pharmacy too, hears it took effect.
    app.ok(&centre, CONFIRM, json!({ "id": id_of(&pending) }))
        .await;
    for token in [&s.doctor, &s.care_manager, &s.pharmacist] {
        let got = kinds(&app.ok(token, NOTIFICATIONS, json!({})).await);
        assert_eq!(
            got[0],
            (
                "CONSENT_WIDENED".to_string(),
                json!(s.patient),
                pending["id"].clone()
            ),
            "{got:?}"
        );
    }
    // A widening by a covered organisation is told at once as well.
    record(
        app,
        &s.doctor,
        &s.patient,
        json!({ "excludedCategories": ["LAB_RESULTS"] }),
    )
    .await;
    let widened = record(app, &s.doctor, &s.patient, json!({})).await;
    assert_eq!(widened["status"], "IN_FORCE");
    let got = kinds(&app.ok(&s.pharmacist, NOTIFICATIONS, json!({})).await);
    assert_eq!(
        got[0],
        (
            "CONSENT_WIDENED".to_string(),
            json!(s.patient),
            widened["id"].clone()
        ),
        "{got:?}"
    );
    assert!(
        kinds(&app.ok(&s.doctor, NOTIFICATIONS, json!({})).await)
            .iter()
            .all(|(_, _, subject)| *subject != widened["id"]),
        "not the recorder"
    );
});

e2e!(
    a_pending_consent_opens_no_subscription_and_its_confirmation_does,
    |app| async move {
        let s = scene(app).await;
        record(
            app,
            &s.doctor,
            &s.patient,
            json!({ "organizationIds": [s.pharmacy] }),
        )
        .await;
        let events = "subscription($p: ID!) { patientEvents(patientId: $p) { kind } }";
        let pending = record(app, &s.pharmacist, &s.patient, json!({})).await;
        let mut ws = app.ws(&s.pharmacist).await;
        let sub = ws.subscribe(events, json!({ "p": s.patient })).await;
        let errors = match ws.next_of(&sub).await {
            WsMessage::Next(v) => v["errors"].clone(),
            WsMessage::Error(v) => v,
            other => panic!("expected an error, got {other:?}"),
        };
        assert_eq!(errors[0]["extensions"]["code"], "FORBIDDEN", "{errors}");

        // The care office watches the patient; the office is then excluded
        // by a narrowing, and its subscription ends at once.
        let mut watcher = app.ws(&s.care_manager).await;
        let watching = watcher.subscribe(events, json!({ "p": s.patient })).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (_, centre) = centre_member(app).await;
        app.ok(&centre, CONFIRM, json!({ "id": id_of(&pending) }))
            .await;
        record(
            app,
            &s.doctor,
            &s.patient,
            json!({ "organizationIds": [s.office] }),
        )
        .await;
        let body = match watcher.next_of(&watching).await {
            WsMessage::Next(v) => v,
            other => panic!("expected ACCESS_ENDED, got {other:?}"),
        };
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "ACCESS_ENDED",
            "{body}"
        );

        // Confirmed, the pharmacy may subscribe.
        let sub = ws.subscribe(events, json!({ "p": s.patient })).await;
        while let Some((id, msg)) = ws.next_within(Duration::from_millis(500)).await {
            assert_ne!(id, sub, "accepted and waiting, got {msg:?}");
        }
    }
);

e2e!(
    concurrent_confirmations_take_effect_once,
    |app| async move {
        let s = scene(app).await;
        record(
            app,
            &s.doctor,
            &s.patient,
            json!({ "organizationIds": [s.pharmacy] }),
        )
        .await;
        let pending = record(app, &s.pharmacist, &s.patient, json!({})).await;
        let (_, centre) = centre_member(app).await;
        let m = json!({ "query": CONFIRM, "variables": { "id": id_of(&pending) } });
        let results =
            futures::future::join_all((0..6).map(|_| app.post(Some(&centre), m.clone()))).await;
        let ok = results
            .iter()
            .filter(|(_, b)| error_code(b).is_none())
            .count();
        assert_eq!(ok, 1, "{results:?}");
        assert!(
            results
                .iter()
                .all(|(_, b)| matches!(error_code(b).as_deref(), None | Some("CONFLICT"))),
            "{results:?}"
        );
        let h = history(app, &s.doctor, &s.patient).await;
        let in_force = h["consents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "IN_FORCE")
            .count();
        assert_eq!(in_force, 1, "{h}");
    }
);

e2e!(consent_forms_are_validated, |app| async move {
    let s = scene(app).await;
    let form = |extra: Value| {
        let mut f = json!({ "reference": "同意書 2026-0300", "signedOn": "2026-02-01", "signedBy": "PATIENT" });
        for (k, v) in extra.as_object().unwrap() {
            f[k] = v.clone();
        }
        json!({ "form": f })
    };
    let cases = [
        (json!({ "reference": "  " }), "input.form.reference"),
        (json!({ "reference": "a\nb" }), "input.form.reference"),
        (json!({ "signedOn": "2099-01-01" }), "input.form.signedOn"),
        // The patient was born on 1940-05-01.
        (json!({ "signedOn": "1939-12-31" }), "input.form.signedOn"),
        (
            json!({ "signedBy": "FAMILY", "proxyName": "連携 一郎" }),
            "input.form.proxyRelation",
        ),
        (
            json!({ "signedBy": "GUARDIAN", "proxyRelation": "成年後見人" }),
            "input.form.proxyName",
        ),
        (
            json!({ "signedBy": "FAMILY", "proxyName": "連携 一郎", "proxyRelation": " " }),
            "input.form.proxyRelation",
        ),
        (json!({ "proxyName": "連携 一郎" }), "input.form.proxyName"),
    ];
    for (extra, field) in cases {
        let body = app
            .gql(&s.doctor, RECORD, input(&s.patient, form(extra.clone())))
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{extra}: {body}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{extra}: {body}"
        );
    }
    // Without a form, or without its reference, the request does not run.
    for i in [
        json!({ "patientId": s.patient, "scope": "NETWORK", "method": "WRITTEN" }),
        json!({ "patientId": s.patient, "scope": "NETWORK", "method": "WRITTEN", "form": { "signedOn": "2026-02-01", "signedBy": "PATIENT" } }),
    ] {
        let body = app.gql(&s.doctor, RECORD, json!({ "i": i })).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        assert!(body["data"].is_null(), "{body}");
    }
    // Nothing was recorded by the refused requests.
    let h = history(app, &s.doctor, &s.patient).await;
    assert_eq!(h["consents"].as_array().unwrap().len(), 1, "{h}");
    // A patient's first consent too — before it no one reads IDENTITY,
    // and the registrar gave the birth date itself: a form signed before
    // it is refused, and nothing recorded.
    let fresh = app.patient_without_consent(&s.doctor, "K-9").await;
    let body = app
        .gql(
            &s.doctor,
            RECORD,
            input(&fresh, form(json!({ "signedOn": "1939-12-31" }))),
        )
        .await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("BAD_USER_INPUT"),
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["extensions"]["field"],
        "input.form.signedOn"
    );
    record(app, &s.doctor, &fresh, form(json!({}))).await;
    let h = history(app, &s.doctor, &fresh).await;
    assert_eq!(h["consents"].as_array().unwrap().len(), 1, "{h}");
    // A guardian's form is kept as signed.
    let ok = record(
        app,
        &s.doctor,
        &s.patient,
        form(json!({ "signedBy": "GUARDIAN", "proxyName": "小川 誠", "proxyRelation": "成年後見人（司法書士）" })),
    )
    .await;
    assert_eq!(ok["status"], "IN_FORCE");
    let h = history(app, &s.doctor, &s.patient).await;
    assert_eq!(
        h["consents"][0]["form"],
        json!({ "reference": "同意書 2026-0300", "signedOn": "2026-02-01", "signedBy": "GUARDIAN", "proxyName": "小川 誠", "proxyRelation": "成年後見人（司法書士）" })
    );
    // The first consent (by the registering clinic) took effect at once.
    assert_eq!(h["consents"][1]["status"], "SUPERSEDED");
    assert_eq!(h["consents"][1]["form"]["signedBy"], "PATIENT");
});

/// Every data category the consent decides (all but CONSENT), read from the
/// schema so that a category added later is excluded too.
async fn every_excludable_category(app: &TestApp, token: &str) -> Vec<String> {
    let data = app
        .ok(
            token,
            r#"{ __type(name: "DataCategory") { enumValues { name } } }"#,
            json!({}),
        )
        .await;
    let all: Vec<String> = data["__type"]["enumValues"]
        .as_array()
        .expect("enum values")
        .iter()
        .map(|v| v["name"].as_str().expect("a name").to_string())
        .filter(|n| n != "CONSENT")
        .collect();
    assert!(all.len() > 10, "{data}");
    all
}

e2e!(
    a_consent_that_grants_nothing_is_no_step_for_the_excluded_party,
    |app| async move {
        let s = scene(app).await;
        let nothing =
            json!({ "excludedCategories": every_excludable_category(app, &s.pharmacist).await });
        let excluded = record(
            app,
            &s.doctor,
            &s.patient,
            json!({ "organizationIds": [s.pharmacy] }),
        )
        .await;
        assert_eq!(excluded["status"], "IN_FORCE");

        // Step one: the excluded pharmacy records a network-wide consent that
        // excludes every category. It grants nothing, so it is a narrowing and
        // takes effect at once — but it names the pharmacy as covered.
        let step = record(app, &s.pharmacist, &s.patient, nothing.clone()).await;
        assert_eq!(step["status"], "IN_FORCE", "{step}");
        assert!(!reads_name(app, &s.pharmacist, &s.patient).await);
        assert!(!reads_name(app, &s.doctor, &s.patient).await);

        // Step two: the network-wide consent. Covered by a consent that grants
        // it nothing, the pharmacy is as excluded as before: pending.
        let attempt = record(app, &s.pharmacist, &s.patient, json!({})).await;
        assert_eq!(attempt["status"], "PENDING", "{attempt}");
        assert!(!reads_name(app, &s.pharmacist, &s.patient).await);
        assert!(!reads_name(app, &s.doctor, &s.patient).await);
        let h = history(app, &s.doctor, &s.patient).await;
        assert_eq!(h["activeConsent"]["id"], step["id"]);

        // The same through a 個別同意 naming the pharmacy with nothing granted.
        let step = record(
            app,
            &s.pharmacist,
            &s.patient,
            json!({ "scope": "ORGANIZATIONS", "organizationIds": [s.pharmacy], "excludedCategories": nothing["excludedCategories"] }),
        )
        .await;
        assert_eq!(step["status"], "IN_FORCE", "{step}");
        let attempt = record(app, &s.pharmacist, &s.patient, json!({})).await;
        assert_eq!(attempt["status"], "PENDING", "{attempt}");
        assert!(!reads_name(app, &s.pharmacist, &s.patient).await);

        // And after a withdrawal: nothing in force, a consent granting nothing
        // in force at once, then the widening — pending.
        app.ok(
            &s.care_manager,
            WITHDRAW,
            json!({ "i": { "patientId": s.patient } }),
        )
        .await;
        let step = record(app, &s.pharmacist, &s.patient, nothing.clone()).await;
        assert_eq!(step["status"], "IN_FORCE", "{step}");
        let attempt = record(app, &s.pharmacist, &s.patient, json!({})).await;
        assert_eq!(attempt["status"], "PENDING", "{attempt}");
        assert!(!reads_name(app, &s.pharmacist, &s.patient).await);

        // A consent granting an organisation one category still lets it
        // widen alone: the pharmacy, granted CARE_PLAN only, may restore the rest.
        let mut all_but_one = nothing["excludedCategories"].as_array().unwrap().clone();
        all_but_one.retain(|c| c != "CARE_PLAN");
        let (_, centre) = centre_member(app).await;
        let one = record(
            app,
            &s.doctor,
            &s.patient,
            json!({ "excludedCategories": all_but_one }),
        )
        .await;
        assert_eq!(one["status"], "PENDING");
        app.ok(&centre, CONFIRM, json!({ "id": id_of(&one) })).await;
        let restored = record(app, &s.pharmacist, &s.patient, json!({})).await;
        assert_eq!(restored["status"], "IN_FORCE", "{restored}");
        assert!(reads_name(app, &s.pharmacist, &s.patient).await);
    }
);

const OBJECT: &str = "mutation($i: EmergencyObjectionInput!) { recordEmergencyAccessObjection(input: $i) { id withdrawnAt } }";
const LIFT: &str =
    "mutation($p: ID!) { withdrawEmergencyAccessObjection(patientId: $p) { id withdrawnAt } }";
const OPEN_EMERGENCY: &str =
    "mutation($i: OpenEmergencyAccessInput!) { openEmergencyAccess(input: $i) { id } }";

e2e!(
    an_objection_to_emergency_access_is_lifted_only_by_whom_the_consent_covers,
    |app| async move {
        let s = scene(app).await;
        let fire = app
            .organization("AMBULANCE_SERVICE", "みなみ野市消防本部")
            .await;
        let (_, crew) = app.member(&fire, "EMS_CREW").await;
        let open = || async {
            app.gql(
                &crew,
                OPEN_EMERGENCY,
                json!({ "i": { "patientId": s.patient, "reasonCode": "IN_TRANSPORT" } }),
            )
            .await
        };
        // The patient objects to emergency access, and excludes the pharmacy.
        let objection = app
            .ok(
                &s.doctor,
                OBJECT,
                json!({ "i": { "patientId": s.patient, "note": "本人の意向" } }),
            )
            .await["recordEmergencyAccessObjection"]
            .clone();
        assert!(objection["withdrawnAt"].is_null());
        record(
            app,
            &s.doctor,
            &s.patient,
            json!({ "organizationIds": [s.pharmacy] }),
        )
        .await;
        // Refused as an unknown patient: the objection is not the opener's to learn.
        assert_eq!(error_code(&open().await).as_deref(), Some("NOT_FOUND"));

        // Lifting the objection opens break-the-glass again, to every
        // emergency profession: a widening. The excluded pharmacy may not.
        let body = app
            .gql(&s.pharmacist, LIFT, json!({ "p": s.patient }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        assert!(body["data"].is_null(), "{body}");
        assert_eq!(
            error_code(&open().await).as_deref(),
            Some("NOT_FOUND"),
            "the objection stands"
        );
        // Nor may a team organisation after the consent was withdrawn.
        app.ok(
            &s.care_manager,
            WITHDRAW,
            json!({ "i": { "patientId": s.patient } }),
        )
        .await;
        let body = app.gql(&s.doctor, LIFT, json!({ "p": s.patient })).await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        assert_eq!(error_code(&open().await).as_deref(), Some("NOT_FOUND"));

        // With a consent in force that covers it, the clinic may.
        let (_, centre) = centre_member(app).await;
        let renewed = record(app, &s.doctor, &s.patient, json!({})).await;
        assert_eq!(renewed["status"], "PENDING");
        app.ok(&centre, CONFIRM, json!({ "id": id_of(&renewed) }))
            .await;
        let lifted = app.ok(&s.doctor, LIFT, json!({ "p": s.patient })).await
            ["withdrawEmergencyAccessObjection"]
            .clone();
        assert_eq!(lifted["id"], objection["id"]);
        assert!(lifted["withdrawnAt"].is_string());
        let body = open().await;
        assert!(error_code(&body).is_none(), "{body}");
        // Like every widening, the rest of the care team is told (not the
        // organisation that lifted it).
        let told = kinds(&app.ok(&s.care_manager, NOTIFICATIONS, json!({})).await);
        assert!(
            told.contains(&(
                "EMERGENCY_OBJECTION_WITHDRAWN".to_string(),
                json!(s.patient),
                objection["id"].clone()
            )),
            "{told:?}"
        );
        assert!(
            kinds(&app.ok(&s.doctor, NOTIFICATIONS, json!({})).await)
                .iter()
                .all(|(kind, _, _)| kind != "EMERGENCY_OBJECTION_WITHDRAWN"),
            "not the organisation that lifted it"
        );
        // Objecting again is open to anyone of the team (a narrowing), the
        // pharmacy too; and lifting twice is a conflict.
        let body = app.gql(&s.doctor, LIFT, json!({ "p": s.patient })).await;
        assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
        record(
            app,
            &s.doctor,
            &s.patient,
            json!({ "organizationIds": [s.pharmacy] }),
        )
        .await;
        app.ok(
            &s.pharmacist,
            OBJECT,
            json!({ "i": { "patientId": s.patient } }),
        )
        .await;
        assert_eq!(error_code(&open().await).as_deref(), Some("NOT_FOUND"));
        let details = consent_audit_details(app, &s.patient).await;
        assert!(
            details
                .iter()
                .any(|d| d.starts_with("objection to emergency access withdrawn")),
            "{details:?}"
        );
    }
);

e2e!(
    a_withdrawal_racing_a_confirmation_or_a_widening_leaves_nothing_in_force,
    |app| async move {
        let s = scene(app).await;
        let (_, centre) = centre_member(app).await;
        let withdraw =
            json!({ "query": WITHDRAW, "variables": { "i": { "patientId": s.patient } } });
        for round in 0..4 {
            // A pending widening by the excluded pharmacy, confirmed by the
            // centre while the patient withdraws: whichever runs first, the
            // withdrawal is the patient's latest word.
            record(
                app,
                &s.doctor,
                &s.patient,
                json!({ "organizationIds": [s.pharmacy] }),
            )
            .await;
            let pending = record(app, &s.pharmacist, &s.patient, json!({})).await;
            assert_eq!(pending["status"], "PENDING");
            let confirm = json!({ "query": CONFIRM, "variables": { "id": id_of(&pending) } });
            let ((_, confirmed), (_, withdrawn)) = tokio::join!(
                app.post(Some(&centre), confirm),
                app.post(Some(&s.care_manager), withdraw.clone()),
            );
            assert!(error_code(&withdrawn).is_none(), "{round}: {withdrawn}");
            assert!(
                matches!(error_code(&confirmed).as_deref(), None | Some("CONFLICT")),
                "{round}: {confirmed}"
            );
            let h = history(app, &s.doctor, &s.patient).await;
            assert!(h["activeConsent"].is_null(), "{round}: {h}");
            assert!(!reads_name(app, &s.pharmacist, &s.patient).await);

            // Back to a consent in force (the centre confirms the clinic's),
            // then a widening by a covered organisation racing a withdrawal.
            let renewed = record(
                app,
                &s.doctor,
                &s.patient,
                json!({ "excludedCategories": ["LAB_RESULTS"] }),
            )
            .await;
            app.ok(&centre, CONFIRM, json!({ "id": id_of(&renewed) }))
                .await;
            let widen = json!({ "query": RECORD, "variables": input(&s.patient, json!({})) });
            let ((_, widened), (_, withdrawn)) = tokio::join!(
                app.post(Some(&s.doctor), widen),
                app.post(Some(&s.care_manager), withdraw.clone()),
            );
            assert!(error_code(&withdrawn).is_none(), "{round}: {withdrawn}");
            assert!(error_code(&widened).is_none(), "{round}: {widened}");
            let h = history(app, &s.doctor, &s.patient).await;
            let in_force = h["consents"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["status"] == "IN_FORCE")
                .count();
            // Widened first, then withdrawn; or withdrawn first, and the
            // widening after it waits for the centre.
            assert_eq!(in_force, 0, "{round}: {h}");
            assert!(!reads_name(app, &s.doctor, &s.patient).await);
            // Ready for the next round: a consent in force again.
            let again = record(app, &s.doctor, &s.patient, json!({})).await;
            if again["status"] == "PENDING" {
                app.ok(&centre, CONFIRM, json!({ "id": id_of(&again) }))
                    .await;
            }
        }
    }
);

e2e!(
    each_pending_consent_the_centre_is_shown_is_audited,
    |app| async move {
        let s = scene(app).await;
        record(
            app,
            &s.doctor,
            &s.patient,
            json!({ "organizationIds": [s.pharmacy] }),
        )
        .await;
        record(app, &s.pharmacist, &s.patient, json!({})).await;
        let (centre_id, centre) = centre_member(app).await;
        // Only the patient's id is asked for: the review is still a read.
        let list = app
            .ok(&centre, "{ pendingConsents { patientId } }", json!({}))
            .await;
        assert_eq!(list["pendingConsents"][0]["patientId"], s.patient.as_str());
        let data = app
            .ok(
                &app.admin_token,
                "query($p: ID!, $a: ID!) { auditLog(filter: { patientId: $p, actorId: $a }, first: 10) { edges { node { action categories detail } } } }",
                json!({ "p": s.patient, "a": centre_id }),
            )
            .await;
        let entries = data["auditLog"]["edges"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{data}");
        assert_eq!(
            entries[0]["node"],
            json!({ "action": "READ", "categories": ["CONSENT"], "detail": "consent review by the coordination centre" })
        );
    }
);

//! Care conferences of every kind (issue 14 part 2): the care manager's
//! サービス担当者会議, case and end-of-life conferences beside the discharge
//! conference — proposed, answered, held with minutes, each under its kind's
//! category, audited and notified.

use renkei_schema::clock::Clock;
use renkei_tests::*;
use serde_json::{Value, json};

const ADD_MEMBER: &str =
    "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }";
const PROPOSE: &str = "mutation($i: ProposeCareConferenceInput!) { proposeCareConference(input: $i) { id kind status agenda place organizer { id } invitations { organization { id } response } } }";
const ANSWER: &str = "mutation($i: AnswerDischargeConferenceInput!) { answerCareConference(input: $i) { id myInvitation { response comment } } }";
const CANCEL: &str = "mutation($id: ID!) { cancelCareConference(id: $id) { id status } }";
const MINUTES: &str = "mutation($i: RecordConferenceMinutesInput!) { recordConferenceMinutes(input: $i) { id status invitations { organization { id } response attended } minutes { discussion decisions openIssues otherAttendees nextMeetingOn recordedAt recordedBy { id } } } }";
const PATIENT_CONFERENCES: &str = "query($id: ID!, $kinds: [ConferenceKind!]) { patient(id: $id) { careConferences(kinds: $kinds) { id kind status minutes { decisions } } } }";

/// One patient at home: the care office (care manager) registered the
/// patient with consent; on the team a clinic (physician), a visiting-nurse
/// station (nurse), a helper station (care worker) and a dental clinic
/// (dentist).
struct Scene {
    patient: String,
    care_office: String,
    care_manager: String,
    care_manager_id: String,
    clinic: String,
    doctor: String,
    nurse_station: String,
    nurse: String,
    helpers: String,
    care_worker: String,
    dental: String,
    dentist: String,
}

async fn scene(app: &TestApp) -> Scene {
    let care_office = app
        .organization("HOME_CARE_SUPPORT_OFFICE", "みなみ野居宅介護支援事業所")
        .await;
    let (care_manager_id, care_manager) = app.member(&care_office, "CARE_MANAGER").await;
    let patient = app.patient(&care_manager, "CM-0101").await;
    let clinic = app.organization("CLINIC", "みなみ野在宅クリニック").await;
    let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
    let nurse_station = app
        .organization("VISITING_NURSE_STATION", "みなみ野訪問看護ステーション")
        .await;
    let (_, nurse) = app.member(&nurse_station, "NURSE").await;
    let helpers = app
        .organization("CARE_SERVICE_PROVIDER", "ひまわりヘルパーステーション")
        .await;
    let (_, care_worker) = app.member(&helpers, "CARE_WORKER").await;
    let dental = app.organization("DENTAL_CLINIC", "みなみ野歯科").await;
    let (_, dentist) = app.member(&dental, "DENTIST").await;
    for (org, role) in [
        (&clinic, "PRIMARY_PHYSICIAN"),
        (&nurse_station, "VISITING_NURSE"),
        (&helpers, "CARE_SERVICE"),
        (&dental, "DENTIST"),
    ] {
        app.ok(
            &care_manager,
            ADD_MEMBER,
            json!({ "i": { "patientId": patient, "organizationId": org, "role": role } }),
        )
        .await;
    }
    Scene {
        patient,
        care_office,
        care_manager,
        care_manager_id,
        clinic,
        doctor,
        nurse_station,
        nurse,
        helpers,
        care_worker,
        dental,
        dentist,
    }
}

fn starts_in(app: &TestApp, days: i64) -> String {
    (app.clock.now() + chrono::Duration::days(days)).to_rfc3339()
}

fn code(body: &Value) -> String {
    error_code(body).unwrap_or_else(|| format!("no error: {body}"))
}

fn field(body: &Value) -> String {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

async fn notification_kinds(app: &TestApp, token: &str, subject: &str) -> Vec<String> {
    app.ok(
        token,
        "{ notifications(first: 100) { kind subjectId } }",
        json!({}),
    )
    .await["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["subjectId"] == subject)
        .map(|n| n["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn propose(app: &TestApp, token: &str, input: Value) -> Value {
    app.gql(token, PROPOSE, json!({ "i": input })).await
}

async fn proposed(app: &TestApp, token: &str, input: Value) -> String {
    let body = propose(app, token, input).await;
    body["data"]["proposeCareConference"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("not proposed: {body}"))
        .to_string()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

e2e!(
    the_care_manager_holds_a_service_meeting_and_records_its_minutes,
    |app| async move {
        let s = scene(app).await;
        let body = propose(
            app,
            &s.care_manager,
            json!({
                "kind": "SERVICE_MEETING", "patientId": s.patient, "startsAt": starts_in(app, 5),
                "place": "ご自宅", "agenda": "ケアプランの更新（認定更新に伴う）", "inviteWholeTeam": true,
            }),
        )
        .await;
        let c = &body["data"]["proposeCareConference"];
        let id = c["id"].as_str().unwrap().to_string();
        assert_eq!(c["kind"], "SERVICE_MEETING");
        assert_eq!(c["status"], "PROPOSED");
        assert_eq!(c["agenda"], "ケアプランの更新（認定更新に伴う）");
        assert_eq!(c["organizer"]["id"], s.care_office.as_str());
        let invited: Vec<&str> = c["invitations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["organization"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(invited.len(), 4, "the whole team but the organiser");
        assert!(invited.contains(&s.dental.as_str()));
        // The invited hear of it under the meeting's own kind.
        for token in [&s.doctor, &s.nurse, &s.care_worker] {
            assert_eq!(
                notification_kinds(app, token, &id).await,
                ["SERVICE_MEETING"]
            );
        }
        // The dentist's organisation is invited, but a dentist may not read
        // the care plan: neither the notification nor the meeting shows.
        assert!(notification_kinds(app, &s.dentist, &id).await.is_empty());

        app.ok(
            &s.doctor,
            ANSWER,
            json!({ "i": { "conferenceId": id, "accept": true, "comment": "往診の後に伺います" } }),
        )
        .await;
        app.ok(
            &s.care_worker,
            ANSWER,
            json!({ "i": { "conferenceId": id, "accept": false, "comment": "訪問と重なります" } }),
        )
        .await;
        assert_eq!(
            notification_kinds(app, &s.care_manager, &id).await,
            ["SERVICE_MEETING", "SERVICE_MEETING"]
        );
        // The invitations list, by kind.
        let data = app
            .ok(
                &s.nurse,
                "{ careConferenceInvitations(kinds: [SERVICE_MEETING]) { edges { node { id kind myInvitation { response } } } } }",
                json!({}),
            )
            .await;
        let edges = data["careConferenceInvitations"]["edges"]
            .as_array()
            .unwrap();
        assert_eq!(edges.len(), 1);
        assert_eq!(edges[0]["node"]["myInvitation"]["response"], "PENDING");
        // It is no discharge conference.
        let data = app
            .ok(
                &s.nurse,
                "{ dischargeConferenceInvitations { edges { node { id } } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["dischargeConferenceInvitations"]["edges"], json!([]));
        let data = app
            .ok(
                &s.doctor,
                "query($id: ID!) { patient(id: $id) { dischargeConferences { id } } }",
                json!({ "id": s.patient }),
            )
            .await;
        assert_eq!(data["patient"]["dischargeConferences"], json!([]));

        let minutes = json!({
            "conferenceId": id, "attendedOrganizationIds": [s.clinic],
            "otherAttendees": "本人、長女", "discussion": "入浴時の介助方法について検討した",
            "decisions": "入浴は訪問介護2人体制とする", "openIssues": "冬期の通院手段",
        });
        // Minutes are for a meeting that has been held.
        let body = app
            .gql(&s.care_manager, MINUTES, json!({ "i": minutes }))
            .await;
        assert_eq!(code(&body), "CONFLICT");
        app.clock.advance(chrono::Duration::days(6));
        // Answers close when it begins.
        let body = app
            .gql(
                &s.nurse,
                ANSWER,
                json!({ "i": { "conferenceId": id, "accept": true } }),
            )
            .await;
        assert_eq!(code(&body), "CONFLICT");
        // Only the organiser records the minutes.
        let body = app.gql(&s.nurse, MINUTES, json!({ "i": minutes })).await;
        assert_eq!(code(&body), "FORBIDDEN");
        let data = app
            .ok(&s.care_manager, MINUTES, json!({ "i": minutes }))
            .await;
        let held = &data["recordConferenceMinutes"];
        assert_eq!(held["status"], "HELD");
        assert_eq!(held["minutes"]["decisions"], "入浴は訪問介護2人体制とする");
        assert_eq!(held["minutes"]["otherAttendees"], "本人、長女");
        assert_eq!(
            held["minutes"]["recordedBy"]["id"],
            s.care_manager_id.as_str()
        );
        for invitation in held["invitations"].as_array().unwrap() {
            let attended = invitation["organization"]["id"] == s.clinic.as_str();
            assert_eq!(invitation["attended"], attended, "{invitation}");
        }
        assert_eq!(
            notification_kinds(app, &s.care_worker, &id).await,
            ["SERVICE_MEETING", "SERVICE_MEETING"],
            "invited, then the minutes"
        );
        // The team reads the minutes through the patient.
        let data = app
            .ok(
                &s.care_worker,
                PATIENT_CONFERENCES,
                json!({ "id": s.patient, "kinds": ["SERVICE_MEETING"] }),
            )
            .await;
        let list = &data["patient"]["careConferences"];
        assert_eq!(ids(list), vec![id.as_str()]);
        assert_eq!(
            list[0]["minutes"]["decisions"],
            "入浴は訪問介護2人体制とする"
        );
        // Corrected later: still held, the new text stands.
        let mut corrected = minutes.clone();
        corrected["decisions"] = json!("入浴は訪問入浴に切り替える");
        corrected["nextMeetingOn"] =
            json!((app.clock.today() + chrono::Days::new(180)).to_string());
        let data = app
            .ok(&s.care_manager, MINUTES, json!({ "i": corrected }))
            .await;
        assert_eq!(
            data["recordConferenceMinutes"]["minutes"]["decisions"],
            "入浴は訪問入浴に切り替える"
        );
        // A held meeting is not cancelled.
        let body = app.gql(&s.care_manager, CANCEL, json!({ "id": id })).await;
        assert_eq!(code(&body), "CONFLICT");
        // Each change is a write of CARE_PLAN in the audit log.
        let data = app
            .ok(
                &app.admin_token,
                "query($f: AuditLogFilterInput) { auditLog(filter: $f, first: 100) { edges { node { categories } } } }",
                json!({ "f": { "actorId": s.care_manager_id, "action": "WRITE" } }),
            )
            .await;
        let writes: Vec<Value> = data["auditLog"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["categories"].clone())
            .filter(|c| c == &json!(["CARE_PLAN"]))
            .collect();
        assert_eq!(writes.len(), 3, "proposed, minutes, corrected");
    }
);

e2e!(
    each_kind_is_governed_by_its_own_category,
    |app| async move {
        let s = scene(app).await;
        // サービス担当者会議 is the care manager's: a physician reads the care
        // plan but does not write it.
        let meeting = json!({
            "kind": "SERVICE_MEETING", "patientId": s.patient, "startsAt": starts_in(app, 3),
            "online": true, "inviteWholeTeam": true,
        });
        assert_eq!(
            code(&propose(app, &s.doctor, meeting.clone()).await),
            "FORBIDDEN"
        );
        let service = proposed(app, &s.care_manager, meeting).await;
        // An end-of-life conference is under ACP: the physician calls it.
        let end_of_life = proposed(
            app,
            &s.doctor,
            json!({
                "kind": "END_OF_LIFE", "patientId": s.patient, "startsAt": starts_in(app, 4),
                "place": "ご自宅", "agenda": "看取りの方針", "inviteWholeTeam": true,
            }),
        )
        .await;
        // A case conference is under the team's liaison: anyone who writes
        // liaison messages calls one — a dentist too.
        let case = proposed(
            app,
            &s.dentist,
            json!({
                "kind": "CASE_CONFERENCE", "patientId": s.patient, "startsAt": starts_in(app, 2),
                "online": true, "agenda": "食事中のむせ", "invitedOrganizationIds": [s.care_office, s.helpers],
            }),
        )
        .await;
        // A care worker writes none of ACP, the care plan: no end-of-life
        // conference or service meeting of its own.
        let body = propose(
            app,
            &s.care_worker,
            json!({
                "kind": "END_OF_LIFE", "patientId": s.patient, "startsAt": starts_in(app, 4),
                "online": true, "inviteWholeTeam": true,
            }),
        )
        .await;
        assert_eq!(code(&body), "FORBIDDEN");

        // Without `kinds`, each reader sees the kinds it may read.
        let mut seen = Vec::new();
        for token in [&s.care_worker, &s.dentist, &s.nurse] {
            let body = app
                .gql(
                    token,
                    PATIENT_CONFERENCES,
                    json!({ "id": s.patient, "kinds": null }),
                )
                .await;
            assert!(body.get("errors").is_none(), "{body}");
            let mut list = ids(&body["data"]["patient"]["careConferences"]);
            list.sort();
            seen.push(list);
        }
        let mut all = vec![service.clone(), end_of_life.clone(), case.clone()];
        all.sort();
        assert_eq!(
            seen[0], all,
            "a care worker reads the plan, ACP (看取り) and liaison"
        );
        assert_eq!(
            seen[1],
            vec![case.as_str()],
            "a dentist reads only the case conference"
        );
        assert_eq!(seen[2], all);
        // Naming a kind one may not read: null, FORBIDDEN_FIELD, its category.
        let body = app
            .gql(
                &s.dentist,
                PATIENT_CONFERENCES,
                json!({ "id": s.patient, "kinds": ["SERVICE_MEETING"] }),
            )
            .await;
        assert_eq!(body["data"]["patient"]["careConferences"], Value::Null);
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN_FIELD");
        assert_eq!(body["errors"][0]["extensions"]["category"], "CARE_PLAN");
        // The dental clinic was invited to the service meeting with the
        // whole team, but it is hidden from a dentist like a record it may
        // not read: not found, and not in its list of invitations.
        let body = app
            .gql(
                &s.dentist,
                ANSWER,
                json!({ "i": { "conferenceId": service, "accept": true } }),
            )
            .await;
        assert_eq!(code(&body), "NOT_FOUND");
        let data = app
            .ok(
                &s.dentist,
                "{ careConferenceInvitations { edges { node { id } } } }",
                json!({}),
            )
            .await;
        assert!(
            !data.to_string().contains(&service) && !data.to_string().contains(&end_of_life),
            "{data}"
        );
        // A care worker, at the centre of 看取り at home, answers the
        // end-of-life conference.
        let data = app
            .ok(
                &s.care_worker,
                ANSWER,
                json!({ "i": { "conferenceId": end_of_life, "accept": true } }),
            )
            .await;
        assert_eq!(
            data["answerCareConference"]["myInvitation"]["response"],
            "ACCEPTED"
        );
        assert_eq!(
            notification_kinds(app, &s.care_worker, &end_of_life).await,
            ["END_OF_LIFE_CONFERENCE"]
        );
        // The organiser cancels; nobody else.
        let body = app
            .gql(&s.care_manager, CANCEL, json!({ "id": case }))
            .await;
        assert_eq!(code(&body), "FORBIDDEN");
        let data = app.ok(&s.dentist, CANCEL, json!({ "id": case })).await;
        assert_eq!(data["cancelCareConference"]["status"], "CANCELLED");
        // A cancelled conference takes no minutes.
        app.clock.advance(chrono::Duration::days(3));
        let body = app
            .gql(
                &s.dentist,
                MINUTES,
                json!({ "i": { "conferenceId": case, "discussion": "x", "decisions": "y" } }),
            )
            .await;
        assert_eq!(code(&body), "CONFLICT");
        // An organisation outside the team does not find any of them.
        let stranger_org = app.organization("CLINIC", "北川町診療所").await;
        let (_, stranger) = app.member(&stranger_org, "PHYSICIAN").await;
        for id in [&service, &end_of_life] {
            let body = app.gql(&stranger, CANCEL, json!({ "id": id })).await;
            assert_eq!(code(&body), "NOT_FOUND");
        }
        let body = app
            .gql(
                &stranger,
                CANCEL,
                json!({ "id": uuid::Uuid::now_v7().to_string() }),
            )
            .await;
        assert_eq!(code(&body), "NOT_FOUND", "as one that does not exist");
    }
);

e2e!(
    conference_minutes_and_proposals_are_validated,
    |app| async move {
        let s = scene(app).await;
        let base = json!({
            "kind": "SERVICE_MEETING", "patientId": s.patient, "startsAt": starts_in(app, 1),
            "place": "ご自宅", "invitedOrganizationIds": [s.clinic, s.nurse_station],
        });
        for (change, expected) in [
            (
                json!({ "dischargeNoticeId": uuid::Uuid::now_v7().to_string() }),
                "input.dischargeNoticeId",
            ),
            (json!({ "agenda": "   " }), "input.agenda"),
            (json!({ "startsAt": starts_in(app, -1) }), "input.startsAt"),
            (
                json!({ "invitedOrganizationIds": [s.care_office] }),
                "input.invitedOrganizationIds",
            ),
            (json!({ "place": null }), "input.place"),
            (json!({ "kind": "TEA_PARTY" }), ""),
        ] {
            let mut input = base.clone();
            for (k, v) in change.as_object().unwrap() {
                input[k] = v.clone();
            }
            let body = propose(app, &s.care_manager, input).await;
            if expected.is_empty() {
                assert!(
                    body["errors"][0]["message"]
                        .as_str()
                        .unwrap()
                        .contains("TEA_PARTY"),
                    "{body}"
                );
            } else {
                assert_eq!(code(&body), "BAD_USER_INPUT", "{change}: {body}");
                assert_eq!(field(&body), expected, "{body}");
            }
        }
        let id = proposed(app, &s.care_manager, base).await;
        app.clock.advance(chrono::Duration::days(2));
        let good = json!({ "conferenceId": id, "discussion": "検討した", "decisions": "継続する" });
        for (change, expected) in [
            (json!({ "discussion": "" }), "input.discussion"),
            (json!({ "decisions": " \n " }), "input.decisions"),
            (
                json!({ "attendedOrganizationIds": [s.helpers] }),
                "input.attendedOrganizationIds[0]",
            ),
            (
                json!({ "attendedOrganizationIds": [s.clinic, "not-an-id"] }),
                "input.attendedOrganizationIds[1]",
            ),
            (
                json!({ "nextMeetingOn": (app.clock.today() - chrono::Days::new(30)).to_string() }),
                "input.nextMeetingOn",
            ),
            (json!({ "conferenceId": "x" }), "input.conferenceId"),
        ] {
            let mut input = good.clone();
            for (k, v) in change.as_object().unwrap() {
                input[k] = v.clone();
            }
            let body = app
                .gql(&s.care_manager, MINUTES, json!({ "i": input }))
                .await;
            assert_eq!(code(&body), "BAD_USER_INPUT", "{change}: {body}");
            assert_eq!(field(&body), expected, "{body}");
        }
        // Nothing was half-written: the meeting is still only proposed.
        let data = app
            .ok(
                &s.care_manager,
                PATIENT_CONFERENCES,
                json!({ "id": s.patient, "kinds": null }),
            )
            .await;
        assert_eq!(data["patient"]["careConferences"][0]["status"], "PROPOSED");
        app.ok(&s.care_manager, MINUTES, json!({ "i": good })).await;
    }
);

e2e!(
    break_the_glass_answers_no_conference_the_consent_closes,
    |app| async move {
        let s = scene(app).await;
        let id = proposed(
            app,
            &s.doctor,
            json!({
                "kind": "END_OF_LIFE", "patientId": s.patient, "startsAt": starts_in(app, 3),
                "place": "ご自宅", "agenda": "看取りの方針", "invitedOrganizationIds": [s.nurse_station],
            }),
        )
        .await;
        // The patient's consent now excludes the nurse station, which stays
        // on the team.
        app.consent(
            &s.care_manager,
            &s.patient,
            json!({ "organizationIds": [s.nurse_station] }),
        )
        .await;
        let answer = json!({ "i": { "conferenceId": id, "accept": true, "comment": "伺います" } });
        let body = app.gql(&s.nurse, ANSWER, answer.clone()).await;
        assert_eq!(code(&body), "NOT_FOUND");
        // Break-the-glass opens reading in an emergency, not answering.
        app.ok(
            &s.nurse,
            "mutation($i: OpenEmergencyAccessInput!) { openEmergencyAccess(input: $i) { id } }",
            json!({ "i": { "patientId": s.patient, "reasonCode": "SUDDEN_DETERIORATION" } }),
        )
        .await;
        let body = app.gql(&s.nurse, ANSWER, answer).await;
        assert_eq!(code(&body), "FORBIDDEN", "{body}");
        assert!(notification_kinds(app, &s.doctor, &id).await.is_empty());
    }
);

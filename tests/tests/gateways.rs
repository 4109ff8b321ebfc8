//! Apollo Federation through the gateways partners run: the hub composed
//! with a partner's subgraph (`tests/js/partner-subgraph.mjs`, a visiting-nurse
//! station's scheduler that extends `Patient` and returns bare references to
//! the hub's patients, records, admission sheets and discharge notices)
//! behind Apollo Gateway (`@apollo/gateway`, IntrospectAndCompose) and Hive
//! Gateway (`@graphql-hive/gateway`), both from npm (`tests/js/gateways.mjs`).
//!
//! Through either gateway the hub's data obeys the policy and leaves the
//! audit entries the direct query leaves; a refused patient (or record …)
//! is null with `NOT_FOUND` and the rest of a list is answered.
//!
//! Starting the gateways takes seconds, so each backend's test starts them
//! once and runs every scenario against them (`docs/federation.md` tells
//! what each shows).

use std::process::Stdio;
use std::time::{Duration, Instant};

use renkei_schema::clock::Clock;
use renkei_tests::*;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// The two gateways.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gateway {
    Apollo,
    Hive,
}

const BOTH: [Gateway; 2] = [Gateway::Apollo, Gateway::Hive];

/// `tests/js/gateways.mjs`, running: the partner and both gateways in front
/// of one hub. Killed when dropped.
struct Gateways {
    _node: tokio::process::Child,
    apollo: String,
    hive: String,
    apollo_supergraph: String,
    hive_supergraph: String,
    client: reqwest::Client,
}

impl Gateways {
    /// Starts them in front of `app`; composition reads the hub's SDL with
    /// `service_token`.
    async fn start(app: &TestApp, service_token: &str) -> Gateways {
        let dir = js_dir();
        assert!(
            dir.join("node_modules").is_dir(),
            "the npm packages of the tests are not installed: run `npm ci` in {} (Node.js ≥ 20)",
            dir.display()
        );
        let mut node = tokio::process::Command::new("node")
            .arg(dir.join("gateways.mjs"))
            .current_dir(&dir)
            .env("HUB_URL", app.url("/graphql"))
            .env("HUB_SERVICE_TOKEN", service_token)
            // The script ends when its stdin closes: when this process
            // ends, whatever way it ends.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node: {e} (is Node.js ≥ 20 installed?)"));
        let mut lines = BufReader::new(node.stdout.take().expect("stdout")).lines();
        let started = Instant::now();
        let ready = tokio::time::timeout(Duration::from_secs(90), async {
            while let Some(line) = lines.next_line().await.expect("read the gateways' output") {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    return Some(v);
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let Some(ready) = ready else {
            let mut stderr = String::new();
            let _ = node.kill().await;
            if let Some(mut e) = node.stderr.take() {
                let _ = e.read_to_string(&mut stderr).await;
            }
            panic!("the gateways did not start:\n{stderr}");
        };
        eprintln!("gateways started in {:?}", started.elapsed());
        // Keep reading stdout so the script never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let field = |name: &str| ready[name].as_str().expect(name).to_string();
        Gateways {
            apollo: field("apollo"),
            hive: field("hive"),
            apollo_supergraph: field("apolloSupergraph"),
            hive_supergraph: field("hiveSupergraph"),
            _node: node,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        }
    }

    fn url(&self, gateway: Gateway) -> &str {
        match gateway {
            Gateway::Apollo => &self.apollo,
            Gateway::Hive => &self.hive,
        }
    }

    /// POSTs a query to a gateway as a client would, with a bearer token
    /// and a request id of its own; returns the body.
    async fn query(
        &self,
        gateway: Gateway,
        token: Option<&str>,
        request_id: &str,
        query: &str,
        variables: Value,
    ) -> Value {
        let mut req = self
            .client
            .post(self.url(gateway))
            .header(
                "accept",
                "application/graphql-response+json, application/json",
            )
            .header("x-request-id", request_id)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("the gateway answers");
        let status = res.status();
        let body: Value = res.json().await.expect("JSON from the gateway");
        assert!(status.is_success(), "{gateway:?}: {status} {body}");
        body
    }
}

/// `(code, path)` of each error, paths as text (`visitRound.1`), in the
/// order of their paths (errors come in the order they happened).
fn errors(body: &Value) -> Vec<(String, String)> {
    let mut errors: Vec<(String, String)> = body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    let path = e["path"]
                        .as_array()
                        .map(|p| {
                            p.iter()
                                .map(|s| match s {
                                    Value::String(s) => s.clone(),
                                    other => other.to_string(),
                                })
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .unwrap_or_default();
                    (
                        e["extensions"]["code"].as_str().unwrap_or("").to_string(),
                        path,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    errors.sort_by(|a, b| a.1.cmp(&b.1));
    errors
}

/// The errors as they are, in a stable order: two answers compare equal
/// whatever order their errors happened in.
fn sorted_errors(body: &Value) -> Vec<Value> {
    let mut errors = body["errors"].as_array().cloned().unwrap_or_default();
    errors.sort_by_key(|e| e.to_string());
    errors
}

/// Where a gateway reports an error of the hub about the `index`-th item of
/// the list field `field` (and below it, `rest`). Apollo Gateway maps the
/// hub's `_entities.<i>…` to the item's path; Hive Gateway 2.15 reports it
/// under the list field without the item's index (docs/federation.md).
fn item_path(gateway: Gateway, field: &str, index: usize, rest: &str) -> String {
    let rest = if rest.is_empty() {
        String::new()
    } else {
        format!(".{rest}")
    };
    match gateway {
        Gateway::Apollo => format!("{field}.{index}{rest}"),
        Gateway::Hive => format!("{field}{rest}"),
    }
}

/// The audit entries of one request about one patient, as an auditor reads
/// them through the hub's own GraphQL: (action, categories, outcome,
/// actor), sorted.
async fn audit(app: &TestApp, patient: &str, request_id: &str) -> Vec<Value> {
    let data = app
        .ok(
            &app.admin_token,
            "query($p: ID!) { auditLog(filter: { patientId: $p }, first: 100) { edges { node { action categories outcome actorId requestId } } } }",
            json!({ "p": patient }),
        )
        .await;
    let mut entries: Vec<Value> = data["auditLog"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"])
        .filter(|n| n["requestId"] == request_id)
        .map(|n| json!([n["action"], n["categories"], n["outcome"], n["actorId"]]))
        .collect();
    entries.sort_by_key(|v| v.to_string());
    entries
}

const WRITE: &str =
    "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { record { id } } }";
const ADD_MEMBER: &str =
    "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }";

/// A patient at home and the organisations around them: a care office
/// (care manager; it registered the patient, with consent), a clinic
/// (physician), a helper station (care worker) and a hospital (medical
/// social worker) on the team; a pharmacy that is not. Another clinic's
/// patient is hidden from all of them. The physician recorded a lab
/// result; the care manager drafted an admission sheet for the hospital;
/// the hospital sent a discharge notice.
struct Scene {
    patient: String,
    hidden: String,
    lab: String,
    sheet: String,
    notice: String,
    care_manager: String,
    physician: String,
    care_worker: String,
    care_worker_id: String,
    msw: String,
    pharmacist: String,
    pharmacist_id: String,
}

async fn scene(app: &TestApp) -> Scene {
    let office = app
        .organization("HOME_CARE_SUPPORT_OFFICE", "みなみ野居宅介護支援事業所")
        .await;
    let (_, care_manager) = app.member(&office, "CARE_MANAGER").await;
    let patient = app.patient(&care_manager, "CM-0001").await;
    let clinic = app.organization("CLINIC", "みなみ野在宅クリニック").await;
    let (_, physician) = app.member(&clinic, "PHYSICIAN").await;
    let helpers = app
        .organization("CARE_SERVICE_PROVIDER", "ひまわりヘルパーステーション")
        .await;
    let (care_worker_id, care_worker) = app.member(&helpers, "CARE_WORKER").await;
    let hospital = app.organization("HOSPITAL", "みなみ野市立病院").await;
    let (_, msw) = app.member(&hospital, "MEDICAL_SOCIAL_WORKER").await;
    for (org, role) in [
        (&clinic, "PRIMARY_PHYSICIAN"),
        (&helpers, "CARE_SERVICE"),
        (&hospital, "HOSPITAL"),
    ] {
        app.ok(
            &care_manager,
            ADD_MEMBER,
            json!({ "i": { "patientId": patient, "organizationId": org, "role": role } }),
        )
        .await;
    }
    let pharmacy = app.organization("PHARMACY", "さくら調剤薬局").await;
    let (pharmacist_id, pharmacist) = app.member(&pharmacy, "PHARMACIST").await;
    let other_clinic = app.organization("CLINIC", "北川町診療所").await;
    let (_, other_physician) = app.member(&other_clinic, "PHYSICIAN").await;
    let hidden = app.patient(&other_physician, "KT-0001").await;

    let data = app
        .ok(
            &physician,
            WRITE,
            json!({ "i": { "records": [{
                "patientId": patient, "sourceRecordId": "LAB-1", "effectiveAt": "2026-11-01T09:00:00Z",
                "data": { "labResult": { "code": "LAB-HbA1c", "name": "HbA1c", "value": "7.9", "unit": "%", "abnormal": "HIGH" } }
            }] } }),
        )
        .await;
    let lab = data["writeRecords"][0]["record"]["id"]
        .as_str()
        .expect("record id")
        .to_string();
    let today = app.clock.today().to_string();
    let data = app
        .ok(
            &care_manager,
            "mutation($i: CreateAdmissionSheetInput!) { createAdmissionSheet(input: $i) { id } }",
            json!({ "i": { "patientId": patient, "hospitalId": hospital, "admittedOn": today } }),
        )
        .await;
    let sheet = data["createAdmissionSheet"]["id"]
        .as_str()
        .expect("sheet id")
        .to_string();
    let data = app
        .ok(
            &msw,
            "mutation($i: SendDischargeNoticeInput!) { sendDischargeNotice(input: $i) { id } }",
            json!({ "i": { "patientId": patient, "admittedOn": today,
                           "plannedDischargeOn": (app.clock.today() + chrono::Days::new(7)).to_string(),
                           "needsAtHome": "訪問看護によるインスリン管理" } }),
        )
        .await;
    let notice = data["sendDischargeNotice"]["id"]
        .as_str()
        .expect("notice id")
        .to_string();
    Scene {
        patient,
        hidden,
        lab,
        sheet,
        notice,
        care_manager,
        physician,
        care_worker,
        care_worker_id,
        msw,
        pharmacist,
        pharmacist_id,
    }
}

/// The key the gateways compose the hub's SDL with: a system of the
/// coordination centre that may read no patient data at all.
async fn composition_key(app: &TestApp) -> String {
    let data = app
        .ok(
            &app.admin_token,
            "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
            json!({ "i": { "organizationId": app.admin_org.to_string(), "name": "ゲートウェイ (スキーマ取得)" } }),
        )
        .await;
    data["createApiKey"]["secret"]
        .as_str()
        .expect("secret")
        .to_string()
}

e2e!(
    the_hub_behind_apollo_gateway_and_hive_gateway,
    |app| async move {
        let started = Instant::now();
        let s = scene(app).await;
        let key = composition_key(app).await;
        let gw = Gateways::start(app, &key).await;

        both_gateways_compose_the_hub_with_its_subscriptions_and_entities(&gw);
        a_partner_field_and_the_hubs_fields_meet_in_one_answer(&gw, &s).await;
        one_hidden_patient_is_null_and_the_others_are_answered(&gw, &s).await;
        a_list_of_non_null_items_loses_everything_to_one_refusal(&gw, &s).await;
        the_policy_holds_through_the_gateway(&gw, &s).await;
        audit_entries_through_a_gateway_are_those_of_the_direct_query(app, &gw, &s).await;
        a_caller_without_access_gets_nothing_and_is_on_record(app, &gw, &s).await;
        records_sheets_and_notices_resolve_under_their_own_rules(app, &gw, &s).await;
        a_caller_without_a_token_gets_nothing_of_the_hub(&gw, &s).await;
        subscriptions_reach_the_caller_through_hive_gateway(app, &gw, &s).await;

        eprintln!("gateway scenarios took {:?}", started.elapsed());
    }
);

fn both_gateways_compose_the_hub_with_its_subscriptions_and_entities(gw: &Gateways) {
    for (gateway, supergraph) in [
        (Gateway::Apollo, &gw.apollo_supergraph),
        (Gateway::Hive, &gw.hive_supergraph),
    ] {
        assert!(
            supergraph.contains("type Subscription"),
            "{gateway:?}: {supergraph}"
        );
        for field in ["patientEvents(", "notifications:", "visitRound("] {
            assert!(supergraph.contains(field), "{gateway:?} lacks {field}");
        }
        for entity in [
            "Patient",
            "Organization",
            "Record",
            "AdmissionSheet",
            "DischargeNotice",
        ] {
            let start = supergraph
                .find(&format!("type {entity}"))
                .unwrap_or_else(|| panic!("{gateway:?} lacks {entity}"));
            let head = &supergraph[start..start + 200.min(supergraph.len() - start)];
            assert!(
                head.contains("graph: HUB, key: \"id\""),
                "{gateway:?}: {entity} is an entity of the hub: {head}"
            );
        }
    }
}

const ROUND: &str = "query($ids: [ID!]!) { visitRound(patientIds: $ids) { id name nextVisit { purpose } summary { careManager { role } } } }";

async fn a_partner_field_and_the_hubs_fields_meet_in_one_answer(gw: &Gateways, s: &Scene) {
    for gateway in BOTH {
        // The partner's list, the hub's fields.
        let body = gw
            .query(
                gateway,
                Some(&s.physician),
                "meet-1",
                ROUND,
                json!({ "ids": [s.patient] }),
            )
            .await;
        assert!(body.get("errors").is_none(), "{gateway:?}: {body}");
        let tail: String = s
            .patient
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        assert_eq!(
            body["data"]["visitRound"],
            json!([{ "id": s.patient, "name": "連携 花子",
                     "nextVisit": { "purpose": format!("訪問看護 {tail}") },
                     "summary": { "careManager": { "role": "CARE_MANAGER" } } }]),
            "{gateway:?}"
        );
        // The hub's root field, the partner's field.
        let body = gw
            .query(
                gateway,
                Some(&s.physician),
                "meet-2",
                "query($id: ID!) { patient(id: $id) { name nextVisit { date } } }",
                json!({ "id": s.patient }),
            )
            .await;
        assert_eq!(
            body["data"]["patient"],
            json!({ "name": "連携 花子", "nextVisit": { "date": "2026-12-01" } }),
            "{gateway:?}: {body}"
        );
    }
}

async fn one_hidden_patient_is_null_and_the_others_are_answered(gw: &Gateways, s: &Scene) {
    let unknown = uuid::Uuid::now_v7().to_string();
    for gateway in BOTH {
        let body = gw
            .query(
                gateway,
                Some(&s.physician),
                "hidden-1",
                ROUND,
                json!({ "ids": [s.patient, s.hidden, unknown, s.patient] }),
            )
            .await;
        let round = body["data"]["visitRound"]
            .as_array()
            .unwrap_or_else(|| panic!("{gateway:?}: {body}"));
        assert_eq!(round.len(), 4, "{gateway:?}: {body}");
        for i in [0, 3] {
            assert_eq!(round[i]["name"], "連携 花子", "{gateway:?}: {body}");
        }
        // `summary` is non-null in the hub: a refused patient is a null
        // item of the partner's `[Patient]!` — and only that item.
        assert_eq!(round[1], Value::Null, "{gateway:?}: {body}");
        assert_eq!(round[2], Value::Null, "{gateway:?}: {body}");
        let errors = errors(&body);
        assert!(!errors.is_empty(), "{gateway:?}: a refusal is said: {body}");
        assert!(
            errors.iter().all(|(code, _)| code == "NOT_FOUND"),
            "{gateway:?}: {body}"
        );
        for i in [1, 2] {
            let at = item_path(gateway, "visitRound", i, "");
            assert!(
                errors.iter().any(|(_, path)| path.starts_with(&at)),
                "{gateway:?}: NOT_FOUND at {at}: {body}"
            );
        }
        if gateway == Gateway::Apollo {
            assert_eq!(
                errors,
                vec![
                    ("NOT_FOUND".into(), "visitRound.1".into()),
                    ("NOT_FOUND".into(), "visitRound.2".into())
                ],
                "{body}"
            );
        }
        let text = body.to_string();
        assert!(!text.contains("北川"), "{text}");

        // Hidden and unknown answer alike: the same errors, one at a time.
        let hidden = gw
            .query(
                gateway,
                Some(&s.physician),
                "hidden-2",
                ROUND,
                json!({ "ids": [s.hidden] }),
            )
            .await;
        let missing = gw
            .query(
                gateway,
                Some(&s.physician),
                "hidden-3",
                ROUND,
                json!({ "ids": [unknown] }),
            )
            .await;
        assert_eq!(
            sorted_errors(&hidden),
            sorted_errors(&missing),
            "{gateway:?}"
        );
        assert_eq!(
            hidden["data"],
            json!({ "visitRound": [null] }),
            "{gateway:?}"
        );
        assert_eq!(
            missing["data"],
            json!({ "visitRound": [null] }),
            "{gateway:?}"
        );
    }
}

/// The rule partners must keep (docs/federation.md), shown by breaking it:
/// with `[Patient!]!`, the one refused patient nulls the list, the list
/// nulls the non-null field, and the response has no data at all.
async fn a_list_of_non_null_items_loses_everything_to_one_refusal(gw: &Gateways, s: &Scene) {
    let query = ROUND.replace("visitRound(", "visitRoundNonNull(");
    for gateway in BOTH {
        let body = gw
            .query(
                gateway,
                Some(&s.physician),
                "nonnull-1",
                &query,
                json!({ "ids": [s.patient, s.hidden] }),
            )
            .await;
        assert_eq!(body["data"], Value::Null, "{gateway:?}: {body}");
        let body = gw
            .query(
                gateway,
                Some(&s.physician),
                "nonnull-2",
                &query,
                json!({ "ids": [s.patient] }),
            )
            .await;
        assert_eq!(
            body["data"]["visitRoundNonNull"][0]["name"], "連携 花子",
            "{gateway:?}: {body}"
        );
    }
}

const LABS: &str = "query($ids: [ID!]!) { visitRound(patientIds: $ids) { name summary { latestLabResults { id } latestAdl { id } } } }";

async fn the_policy_holds_through_the_gateway(gw: &Gateways, s: &Scene) {
    for gateway in BOTH {
        // A care worker reads the patient, not the lab results: null with
        // FORBIDDEN_FIELD at the field, as in a direct query.
        let body = gw
            .query(
                gateway,
                Some(&s.care_worker),
                "policy-1",
                LABS,
                json!({ "ids": [s.patient] }),
            )
            .await;
        let patient = &body["data"]["visitRound"][0];
        assert_eq!(patient["name"], "連携 花子", "{gateway:?}: {body}");
        assert_eq!(
            patient["summary"]["latestLabResults"],
            Value::Null,
            "{gateway:?}: {body}"
        );
        assert_eq!(
            patient["summary"]["latestAdl"],
            Value::Null,
            "no ADL recorded"
        );
        assert_eq!(
            errors(&body),
            vec![(
                "FORBIDDEN_FIELD".to_string(),
                item_path(gateway, "visitRound", 0, "summary.latestLabResults")
            )],
            "{gateway:?}: {body}"
        );
        let error = &body["errors"][0]["extensions"];
        assert_eq!(error["category"], "LAB_RESULTS", "{gateway:?}: {body}");
        assert_eq!(
            error["reason"], "NOT_PERMITTED_FOR_ROLE",
            "{gateway:?}: {body}"
        );
        assert!(!body.to_string().contains("HbA1c"), "{body}");

        // The physician reads them.
        let body = gw
            .query(
                gateway,
                Some(&s.physician),
                "policy-2",
                LABS,
                json!({ "ids": [s.patient] }),
            )
            .await;
        assert!(body.get("errors").is_none(), "{gateway:?}: {body}");
        assert_eq!(
            body["data"]["visitRound"][0]["summary"]["latestLabResults"],
            json!([{ "id": s.lab }]),
            "{gateway:?}"
        );
    }
}

async fn audit_entries_through_a_gateway_are_those_of_the_direct_query(
    app: &TestApp,
    gw: &Gateways,
    s: &Scene,
) {
    // The same read, directly and through each gateway, each with a
    // request id of its own — which the gateways pass on.
    let direct = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&s.care_worker)
        .header("x-request-id", "audit-direct")
        .json(&json!({
            "query": "query($id: ID!) { patient(id: $id) { name summary { latestLabResults { id } latestAdl { id } } } }",
            "variables": { "id": s.patient },
        }))
        .send()
        .await
        .expect("direct query");
    assert_eq!(direct.status(), 200);
    let expected = audit(app, &s.patient, "audit-direct").await;
    assert_eq!(
        expected,
        {
            let mut e = vec![
                json!(["READ", ["IDENTITY", "ADL"], "OK", s.care_worker_id]),
                json!(["DENIED", ["LAB_RESULTS"], "DENIED", s.care_worker_id]),
            ];
            e.sort_by_key(|v| v.to_string());
            e
        },
        "the direct query's entries"
    );
    for gateway in BOTH {
        let request_id = format!("audit-{gateway:?}");
        gw.query(
            gateway,
            Some(&s.care_worker),
            &request_id,
            LABS,
            json!({ "ids": [s.patient] }),
        )
        .await;
        assert_eq!(
            audit(app, &s.patient, &request_id).await,
            expected,
            "{gateway:?}: the gateway's request left the direct query's entries"
        );
    }
}

async fn a_caller_without_access_gets_nothing_and_is_on_record(
    app: &TestApp,
    gw: &Gateways,
    s: &Scene,
) {
    for gateway in BOTH {
        let request_id = format!("outsider-{gateway:?}");
        let body = gw
            .query(
                gateway,
                Some(&s.pharmacist),
                &request_id,
                "query($ids: [ID!]!) { visitRound(patientIds: $ids) { id name birthDate } }",
                json!({ "ids": [s.patient] }),
            )
            .await;
        // The partner's own reference stays (the caller gave the id); of
        // the hub's data, nothing.
        assert_eq!(
            body["data"]["visitRound"],
            json!([{ "id": s.patient, "name": null, "birthDate": null }]),
            "{gateway:?}: {body}"
        );
        let errors = errors(&body);
        assert!(
            !errors.is_empty() && errors.iter().all(|(code, _)| code == "NOT_FOUND"),
            "{gateway:?}: {body}"
        );
        assert!(!body.to_string().contains("連携"), "{body}");
        assert!(!body.to_string().contains("1940"), "{body}");
        assert_eq!(
            audit(app, &s.patient, &request_id).await,
            vec![json!(["DENIED", [], "DENIED", s.pharmacist_id])],
            "{gateway:?}: the refusal is on record"
        );
    }
}

async fn records_sheets_and_notices_resolve_under_their_own_rules(
    app: &TestApp,
    gw: &Gateways,
    s: &Scene,
) {
    let unknown = uuid::Uuid::now_v7().to_string();
    const RECORDS: &str = "query($ids: [ID!]!) { recordsToReview(ids: $ids) { id kind category data { ... on LabResultData { name value } } } }";
    const SHEETS: &str =
        "query($ids: [ID!]!) { admissionSheetsToFollow(ids: $ids) { id status patient { name } } }";
    const NOTICES: &str =
        "query($ids: [ID!]!) { dischargeNoticesToPlan(ids: $ids) { id status needsAtHome } }";
    for gateway in BOTH {
        // A lab result: the physician reads it …
        let body = gw
            .query(
                gateway,
                Some(&s.physician),
                "rec-1",
                RECORDS,
                json!({ "ids": [s.lab, unknown] }),
            )
            .await;
        assert_eq!(
            body["data"]["recordsToReview"],
            json!([{ "id": s.lab, "kind": "LAB_RESULT", "category": "LAB_RESULTS",
                     "data": { "name": "HbA1c", "value": "7.9" } }, null]),
            "{gateway:?}: {body}"
        );
        assert_eq!(errors(&body).len(), 1, "{gateway:?}: {body}");
        // … the care worker may not know of it: refused like an unknown
        // record, and recorded as a denial of LAB_RESULTS.
        let request_id = format!("rec-cw-{gateway:?}");
        let body = gw
            .query(
                gateway,
                Some(&s.care_worker),
                &request_id,
                RECORDS,
                json!({ "ids": [s.lab] }),
            )
            .await;
        let missing = gw
            .query(
                gateway,
                Some(&s.care_worker),
                "rec-cw-2",
                RECORDS,
                json!({ "ids": [unknown] }),
            )
            .await;
        assert_eq!(
            body["data"],
            json!({ "recordsToReview": [null] }),
            "{gateway:?}: {body}"
        );
        assert_eq!(sorted_errors(&body), sorted_errors(&missing), "{gateway:?}");
        assert_eq!(errors(&body)[0].0, "NOT_FOUND", "{gateway:?}: {body}");
        assert!(!body.to_string().contains("HbA1c"), "{body}");
        assert_eq!(
            audit(app, &s.patient, &request_id).await,
            vec![json!([
                "DENIED",
                ["LAB_RESULTS"],
                "DENIED",
                s.care_worker_id
            ])],
            "{gateway:?}"
        );

        // A discharge notice: the team reads it, the pharmacy does not.
        let body = gw
            .query(
                gateway,
                Some(&s.care_manager),
                "notice-1",
                NOTICES,
                json!({ "ids": [s.notice] }),
            )
            .await;
        assert_eq!(
            body["data"]["dischargeNoticesToPlan"],
            json!([{ "id": s.notice, "status": "NOTIFIED", "needsAtHome": "訪問看護によるインスリン管理" }]),
            "{gateway:?}: {body}"
        );
        let body = gw
            .query(
                gateway,
                Some(&s.pharmacist),
                "notice-2",
                NOTICES,
                json!({ "ids": [s.notice] }),
            )
            .await;
        assert_eq!(
            body["data"],
            json!({ "dischargeNoticesToPlan": [null] }),
            "{gateway:?}: {body}"
        );
        assert_eq!(errors(&body)[0].0, "NOT_FOUND", "{gateway:?}: {body}");
    }

    // An admission sheet: a draft is its author's alone — the hospital
    // cannot reach it through a gateway either, until it is sent.
    for gateway in BOTH {
        let body = gw
            .query(
                gateway,
                Some(&s.care_manager),
                "sheet-1",
                SHEETS,
                json!({ "ids": [s.sheet] }),
            )
            .await;
        assert_eq!(
            body["data"]["admissionSheetsToFollow"],
            json!([{ "id": s.sheet, "status": "DRAFT", "patient": { "name": "連携 花子" } }]),
            "{gateway:?}: {body}"
        );
        let body = gw
            .query(
                gateway,
                Some(&s.msw),
                "sheet-2",
                SHEETS,
                json!({ "ids": [s.sheet] }),
            )
            .await;
        assert_eq!(
            body["data"],
            json!({ "admissionSheetsToFollow": [null] }),
            "{gateway:?}: {body}"
        );
        assert_eq!(errors(&body)[0].0, "NOT_FOUND", "{gateway:?}: {body}");
    }
    app.ok(
        &s.care_manager,
        "mutation($id: ID!) { sendAdmissionSheet(id: $id) { id } }",
        json!({ "id": s.sheet }),
    )
    .await;
    for gateway in BOTH {
        let body = gw
            .query(
                gateway,
                Some(&s.msw),
                "sheet-3",
                SHEETS,
                json!({ "ids": [s.sheet] }),
            )
            .await;
        assert_eq!(
            body["data"]["admissionSheetsToFollow"],
            json!([{ "id": s.sheet, "status": "SENT", "patient": { "name": "連携 花子" } }]),
            "{gateway:?}: {body}"
        );
        let body = gw
            .query(
                gateway,
                Some(&s.pharmacist),
                "sheet-4",
                SHEETS,
                json!({ "ids": [s.sheet] }),
            )
            .await;
        assert_eq!(
            body["data"],
            json!({ "admissionSheetsToFollow": [null] }),
            "{gateway:?}: {body}"
        );
    }
}

async fn a_caller_without_a_token_gets_nothing_of_the_hub(gw: &Gateways, s: &Scene) {
    for gateway in BOTH {
        for token in [None, Some("not-a-token")] {
            let body = gw
                .query(
                    gateway,
                    token,
                    "anon-1",
                    ROUND,
                    json!({ "ids": [s.patient] }),
                )
                .await;
            assert!(
                errors(&body)
                    .iter()
                    .any(|(code, _)| code == "UNAUTHENTICATED"),
                "{gateway:?} {token:?}: {body}"
            );
            let text = body.to_string();
            assert!(
                !text.contains("連携") && !text.contains("CARE_MANAGER"),
                "{gateway:?}: {text}"
            );
        }
    }
}

const EVENTS: &str =
    "subscription($p: ID!) { patientEvents(patientId: $p) { kind subjectId category } }";

/// Opens a subscription through Hive Gateway over server-sent events (the
/// GraphQL-over-SSE protocol Hive serves); the gateway relays it to the
/// hub's `/graphql/ws` with the caller's token in `connection_init`.
async fn sse(gw: &Gateways, token: &str, patient: &str) -> reqwest::Response {
    let res = gw
        .client
        .post(gw.url(Gateway::Hive))
        .bearer_auth(token)
        .header("accept", "text/event-stream")
        .json(&json!({ "query": EVENTS, "variables": { "p": patient } }))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("the subscription is accepted");
    assert_eq!(res.status(), 200);
    res
}

/// The next `data:` of an `event: next` on the stream, within `wait`.
async fn next_event(
    res: &mut reqwest::Response,
    buffer: &mut String,
    wait: Duration,
) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(start) = buffer.find("event: next\ndata: ") {
            let rest = &buffer[start + "event: next\ndata: ".len()..];
            if let Some(end) = rest.find('\n') {
                let data: Value = serde_json::from_str(&rest[..end]).expect("JSON event");
                let consumed = start + "event: next\ndata: ".len() + end;
                buffer.drain(..consumed);
                return Some(data);
            }
        }
        match tokio::time::timeout_at(deadline, res.chunk()).await {
            Ok(Ok(Some(chunk))) => buffer.push_str(&String::from_utf8_lossy(&chunk)),
            _ => return None,
        }
    }
}

/// Apollo Gateway serves no subscriptions (docs/federation.md); Hive
/// Gateway does, and the hub's policy decides what reaches the caller.
async fn subscriptions_reach_the_caller_through_hive_gateway(
    app: &TestApp,
    gw: &Gateways,
    s: &Scene,
) {
    let mut stream = sse(gw, &s.physician, &s.patient).await;
    let mut buffer = String::new();
    // The gateway opens its connection to the hub when the client
    // subscribes; write until an event comes through (the first may be
    // written before the hub's subscription exists).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut written = Vec::new();
    let event = loop {
        assert!(
            Instant::now() < deadline,
            "no event through Hive Gateway: {buffer}"
        );
        let data = app
            .ok(
                &s.physician,
                WRITE,
                json!({ "i": { "records": [{ "patientId": s.patient, "effectiveAt": "2026-11-03T09:00:00Z",
                                             "data": { "vitalSigns": { "temperature": 36.8 } } }] } }),
            )
            .await;
        written.push(data["writeRecords"][0]["record"]["id"].clone());
        if let Some(event) = next_event(&mut stream, &mut buffer, Duration::from_millis(700)).await
        {
            break event;
        }
    };
    let event = &event["data"]["patientEvents"];
    assert_eq!(event["kind"], "RECORD_WRITTEN", "{event}");
    assert_eq!(event["category"], "OBSERVATIONS", "{event}");
    assert!(written.contains(&event["subjectId"]), "{event}");

    // An organisation off the team is refused at once, as on the hub.
    let mut stream = sse(gw, &s.pharmacist, &s.patient).await;
    let mut buffer = String::new();
    let refused = next_event(&mut stream, &mut buffer, Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("no answer to the pharmacist's subscription: {buffer}"));
    assert_eq!(refused["data"], Value::Null, "{refused}");
    assert_eq!(
        errors(&refused),
        vec![("NOT_FOUND".to_string(), "patientEvents".to_string())],
        "{refused}"
    );
}

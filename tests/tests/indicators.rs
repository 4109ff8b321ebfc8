//! 活用状況 (issue 15): the programme's indicators, computed from use —
//! only aggregates, only consenting patients, small cells suppressed, for
//! the municipality's staff and the coordination centre, audited; and the
//! dashboard and CSV that show them.

use chrono::{Duration, Utc};
use renkei_tests::*;
use serde_json::{Value, json};

const INDICATORS: &str = "query($m: String!, $from: Date!, $to: Date!) {
    indicators(municipality: $m, from: $from, to: $to) { key title unit total hasTotal cells { label value suppressed } } }";

fn period() -> Value {
    let today = Utc::now().date_naive();
    json!({ "from": (today - Duration::days(2)).to_string(), "to": (today + Duration::days(2)).to_string() })
}

fn vars(municipality: &str) -> Value {
    let mut v = period();
    v["m"] = json!(municipality);
    v
}

fn indicator<'a>(data: &'a Value, key: &str) -> &'a Value {
    data["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == key)
        .unwrap_or_else(|| panic!("no indicator {key}: {data}"))
}

fn cell(table: &Value, label: &str) -> Value {
    table["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["label"] == label)
        .map(|c| c["value"].clone())
        .unwrap_or(Value::Null)
}

struct Region {
    doctor: String,
    official: String,
    /// The patients registered, consenting ones first.
    patients: Vec<String>,
}

/// A clinic in 北見市 with `consenting` patients who consented and one who
/// did not, each with one condition recorded today; a municipality office
/// of 北見市 with a member of its staff.
async fn region(app: &TestApp, consenting: usize) -> Region {
    region_with(app, consenting, 1).await
}

/// [`region`] with `refusing` patients who never consented.
async fn region_with(app: &TestApp, consenting: usize, refusing: usize) -> Region {
    let clinic = app
        .ok(
            &app.admin_token,
            "mutation($i: RegisterOrganizationInput!) { registerOrganization(input: $i) { id } }",
            json!({ "i": { "kind": "CLINIC", "name": "北見在宅クリニック", "municipality": "北見市" } }),
        )
        .await["registerOrganization"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
    let register = "mutation($i: RegisterPatientInput!) { registerPatient(input: $i) { id } }";
    let mut patients = Vec::new();
    for i in 0..consenting + refusing {
        let id = app
            .ok(
                &doctor,
                register,
                json!({ "i": { "name": format!("指標 太郎{i}"), "nameKana": "シヒョウ タロウ", "birthDate": "1940-05-01",
                    "sex": "MALE", "localId": format!("IND-{i}"), "address": format!("北海道北見市本町{i}丁目") } }),
            )
            .await["registerPatient"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        // The last `refusing` never consent.
        if i < consenting {
            app.consent(&doctor, &id, json!({ "scope": "NETWORK" }))
                .await;
            app.ok(
                &doctor,
                "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { outcome } }",
                json!({ "i": { "records": [{ "patientId": id, "sourceRecordId": format!("C-{i}"),
                    "effectiveAt": "2026-01-10T09:00:00Z",
                    "data": { "condition": { "name": "高血圧症", "icd10": "I10", "clinicalStatus": "ACTIVE" } } }] } }),
            )
            .await;
        }
        patients.push(id);
    }
    let office = app
        .ok(
            &app.admin_token,
            "mutation($i: RegisterOrganizationInput!) { registerOrganization(input: $i) { id } }",
            json!({ "i": { "kind": "MUNICIPALITY", "name": "北見市 介護福祉課", "municipality": "北見市" } }),
        )
        .await["registerOrganization"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, official) = app.member(&office, "MUNICIPAL_STAFF").await;
    Region {
        doctor,
        official,
        patients,
    }
}

e2e!(
    municipal_staff_read_their_municipality_counted_from_use,
    |app| async move {
        let r = region_with(app, 6, 5).await;
        let data = app.ok(&r.official, INDICATORS, vars("北見市")).await;
        let patients = indicator(&data, "patients");
        assert_eq!(cell(patients, "登録患者"), 11);
        assert_eq!(
            cell(patients, "同意あり"),
            6,
            "the patients without consent are registered, not counted as consenting"
        );
        assert_eq!(cell(patients, "在宅療養中（同意あり）"), 6);
        assert_eq!(cell(indicator(&data, "coverage"), "在宅療養者"), 6);
        let records = indicator(&data, "recordsByKind");
        assert_eq!(cell(records, "CONDITION"), 6);
        assert_eq!(records["total"], 6);
        let orgs = indicator(&data, "organizationsByKind");
        assert_eq!(orgs["total"], 2, "the clinic and the office of 北見市");
        // Nothing but counts: no patient's name or id in the answer.
        assert!(!data.to_string().contains("指標"), "{data}");
        // The read is audited, naming no patient.
        let log = app
            .ok(
                &app.admin_token,
                "{ auditLog(first: 50) { edges { node { patientId detail categories } } } }",
                json!({}),
            )
            .await;
        assert!(
            log["auditLog"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["node"]["patientId"].is_null()
                    && e["node"]["detail"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("indicators: 北見市"))),
            "{log}"
        );
    }
);

e2e!(small_counts_are_suppressed, |app| async move {
    let r = region(app, 3).await;
    let data = app.ok(&r.official, INDICATORS, vars("北見市")).await;
    let patients = indicator(&data, "patients");
    assert_eq!(cell(patients, "同意あり"), Value::Null);
    // A lone small cell takes its total with it — and, with no cell
    // published, its label too (which kind of record it was).
    let records = indicator(&data, "recordsByKind");
    assert_eq!(records["cells"], json!([]), "{records}");
    assert_eq!(records["total"], Value::Null, "{records}");
    // Every published count of people or their data is 0 or at least 5.
    for t in data["indicators"].as_array().unwrap() {
        if t["key"] == "organizationsByKind" {
            continue;
        }
        for c in t["cells"].as_array().unwrap() {
            if let Some(v) = c["value"].as_i64() {
                assert!(v == 0 || v >= 5, "{t}");
            }
        }
    }
});

e2e!(
    a_count_a_few_short_of_the_count_it_is_part_of_is_suppressed,
    |app| async move {
        // 7 registered, 6 consenting: publishing both would tell that one
        // resident has no consent in force (withdrew, or never gave it) —
        // and, polled, the day one withdraws.
        let r = region(app, 6).await;
        let data = app.ok(&r.official, INDICATORS, vars("北見市")).await;
        let patients = indicator(&data, "patients");
        assert_eq!(cell(patients, "登録患者"), 7, "{patients}");
        assert_eq!(cell(patients, "同意あり"), Value::Null, "{patients}");
        assert_eq!(
            cell(patients, "在宅療養中（同意あり）"),
            Value::Null,
            "7 − 6 at home tells the same: {patients}"
        );
        // `coverage` counts the same six at home: suppressed there too.
        let coverage = indicator(&data, "coverage");
        assert_eq!(cell(coverage, "在宅療養者"), Value::Null, "{coverage}");
        // No two published counts of the population differ by 1 to 4:
        // registered ⊇ consenting ⊇ at home ⊇ with a sheet, ⊇ with an ACP,
        // across the two tables that count them.
        let patients = indicator(&data, "patients");
        let counts = [
            cell(patients, "登録患者"),
            cell(patients, "同意あり"),
            cell(patients, "在宅療養中（同意あり）"),
            cell(coverage, "救急医療情報あり"),
            cell(coverage, "ACPあり"),
        ];
        for (whole, part) in [
            (0, 1),
            (0, 2),
            (0, 3),
            (0, 4),
            (1, 2),
            (1, 3),
            (1, 4),
            (2, 3),
            (2, 4),
        ] {
            if let (Some(w), Some(p)) = (counts[whole].as_i64(), counts[part].as_i64()) {
                assert!(!(1..5).contains(&(w - p)), "{counts:?}");
            }
        }
    }
);

e2e!(how_many_withdrew_is_not_told, |app| async move {
    let r = region_with(app, 10, 0).await;
    let data = app.ok(&r.official, INDICATORS, vars("北見市")).await;
    let patients = indicator(&data, "patients");
    for label in ["登録患者", "同意あり", "在宅療養中（同意あり）"] {
        assert_eq!(cell(patients, label), 10, "{patients}");
    }
    // One withdraws: 10 registered, 9 consenting would tell how many. (That
    // some did shows — a count now suppressed —, not who nor how many.)
    app.ok(
        &r.doctor,
        "mutation($i: WithdrawConsentInput!) { withdrawConsent(input: $i) { status } }",
        json!({ "i": { "patientId": r.patients[0], "reason": "本人の希望" } }),
    )
    .await;
    let data = app.ok(&r.official, INDICATORS, vars("北見市")).await;
    let patients = indicator(&data, "patients");
    assert_eq!(cell(patients, "登録患者"), 10, "{patients}");
    assert_eq!(cell(patients, "同意あり"), Value::Null, "{patients}");
    assert_eq!(
        cell(patients, "在宅療養中（同意あり）"),
        Value::Null,
        "{patients}"
    );
    assert_eq!(
        cell(indicator(&data, "coverage"), "在宅療養者"),
        Value::Null
    );
});

e2e!(
    indicators_are_for_the_programme_not_the_care_teams,
    |app| async move {
        let r = region(app, 5).await;
        // Another municipality's staff: not this one's.
        let town = app
            .organization("MUNICIPALITY", "訓子府町 保健福祉課")
            .await;
        let (_, other_official) = app.member(&town, "MUNICIPAL_STAFF").await;
        let body = app.gql(&other_official, INDICATORS, vars("北見市")).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{body}"
        );
        let body = app.gql(&r.doctor, INDICATORS, vars("北見市")).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{body}"
        );
        // The network administrator and the coordination centre: any.
        app.ok(&app.admin_token, INDICATORS, vars("北見市")).await;
        let centre = app
            .organization("COORDINATION_CENTER", "北見市在宅医療介護連携支援センター")
            .await;
        let (_, coordinator) = app.member(&centre, "NURSE").await;
        app.ok(&coordinator, INDICATORS, vars("北見市")).await;
        // Bad input.
        for (v, field) in [
            (
                json!({ "m": "北見市", "from": "2026-04-01", "to": "2026-04-01" }),
                "to",
            ),
            (
                json!({ "m": "北見市", "from": "2020-04-01", "to": "2026-04-01" }),
                "to",
            ),
            (
                json!({ "m": " ", "from": "2026-03-01", "to": "2026-04-01" }),
                "municipality",
            ),
            // One household's street (the name is matched as the start of
            // addresses): not a municipality of the directory.
            (
                json!({ "m": "北見市本町3丁目", "from": "2026-03-01", "to": "2026-04-01" }),
                "municipality",
            ),
            (
                json!({ "m": "北見", "from": "2026-03-01", "to": "2026-04-01" }),
                "municipality",
            ),
        ] {
            let body = app.gql(&app.admin_token, INDICATORS, v).await;
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
                "{body}"
            );
            assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
        }
    }
);

e2e!(the_indicators_download_as_csv, |app| async move {
    let r = region(app, 6).await;
    let p = period();
    let url = app.url(&format!(
        "/indicators.csv?municipality=%E5%8C%97%E8%A6%8B%E5%B8%82&from={}&to={}",
        p["from"].as_str().unwrap(),
        p["to"].as_str().unwrap()
    ));
    let res = app
        .client
        .get(&url)
        .bearer_auth(&r.official)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = res.text().await.unwrap();
    assert!(
        csv.starts_with("municipality,from,to,indicator,title,label,value,unit,suppressed\r\n")
    );
    assert!(
        csv.contains("\"recordsByKind\",\"共有された記録（種類別）\",\"CONDITION\",6,\"件\",false"),
        "{csv}"
    );
    let res = app
        .client
        .get(&url)
        .bearer_auth(&r.doctor)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    // The page's read is recorded under the request's id, as any other.
    for path in ["/indicators.csv", "/indicators"] {
        let request_id = format!("indicators-page-{}", path.len());
        let url = url.replace("/indicators.csv", path);
        let res = app
            .client
            .get(&url)
            .bearer_auth(&r.official)
            .header("x-request-id", &request_id)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let log = app
            .ok(
                &app.admin_token,
                "{ auditLog(first: 100) { edges { node { requestId detail } } } }",
                json!({}),
            )
            .await;
        let entries: Vec<&Value> = log["auditLog"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["node"])
            .filter(|n| {
                n["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("indicators:"))
            })
            .collect();
        assert!(
            entries
                .iter()
                .any(|n| n["requestId"] == request_id.as_str()),
            "{path}: {entries:?}"
        );
    }
});

e2e!(
    with_fewer_than_five_people_no_count_of_their_data_is_published,
    |app| async move {
        // Two consenting patients, each with a condition: their records
        // make a cell of 2, suppressed anyway — but readers add reads, and
        // any count of a handful of people's data is theirs alone.
        let r = region(app, 2).await;
        // Many reads of one of them: a count of 5 and more, by one reader.
        for _ in 0..6 {
            app.ok(
                &r.doctor,
                "{ patientByLocalId(localId: \"IND-0\") { name } }",
                json!({}),
            )
            .await;
        }
        let data = app.ok(&r.official, INDICATORS, vars("北見市")).await;
        for t in data["indicators"].as_array().unwrap() {
            if t["key"] == "organizationsByKind" || t["key"] == "patients" {
                continue;
            }
            assert_eq!(t["total"], Value::Null, "{t}");
            for c in t["cells"].as_array().unwrap() {
                assert_eq!(c["value"], Value::Null, "{t}");
                assert_eq!(c["suppressed"], true, "{t}");
            }
        }
        // Tables labelled by what was found list nothing: a lone
        // suppressed label would tell what its count hides.
        for key in [
            "recordsByKind",
            "recordsByMonth",
            "readsByProfession",
            "readsByCategory",
        ] {
            assert_eq!(indicator(&data, key)["cells"], json!([]), "{key}");
        }
        // The directory's facts are not people's: published.
        assert_eq!(indicator(&data, "organizationsByKind")["total"], 2);
    }
);

e2e!(
    a_municipality_is_a_name_never_an_address,
    |app| async move {
        let register =
            "mutation($i: RegisterOrganizationInput!) { registerOrganization(input: $i) { id } }";
        for bad in [
            "みなみ野市東陽6丁目18-5",
            "北見市本町3丁目",
            "北見市 本町",
            "北見",
            "北見市１",
            "東原郡北川町字東原12番地",
            // A district after the municipality's name.
            "みなみ野市本町",
            "北見市栄町",
            "東川町西町",
            "新宿区西新宿区",
            "札幌市中央区北区",
            "北海道みなみ野市本町",
            "上川郡東川町西町",
        ] {
            let body = app
                .gql(
                    &app.admin_token,
                    register,
                    json!({ "i": { "kind": "CARE_SERVICE_PROVIDER", "name": "住所の事業所", "municipality": bad } }),
                )
                .await;
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
                "{bad}: {body}"
            );
            assert_eq!(
                body["errors"][0]["extensions"]["field"], "input.municipality",
                "{bad}: {body}"
            );
        }
        for good in [
            "北見市",
            "北川町",
            "新宿区",
            "四日市市",
            "上北山村",
            "札幌市中央区",
            "上市町",
            "中新川郡上市町",
            "上川郡東川町",
            "東村山市",
            "十日町市",
            "市川三郷町",
            "大町町",
            "北海道北見市",
            "山梨県市川三郷町",
            "栃木県市貝町",
            "宮城県村田町",
            "余市郡余市町",
            "大和郡山市",
            "郡上市",
            "京都府京都市左京区",
            "府中市",
        ] {
            app.ok(
                &app.admin_token,
                register,
                json!({ "i": { "kind": "CARE_SERVICE_PROVIDER", "name": format!("{good}の事業所"), "municipality": good } }),
            )
            .await;
        }
        // Indicators over an address are refused before anything is read.
        let body = app
            .gql(&app.admin_token, INDICATORS, vars("北見市本町3丁目"))
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
    }
);

e2e!(
    a_table_of_fewer_than_five_peoples_data_is_withheld_in_a_larger_population,
    |app| async move {
        use renkei_schema::clock::Clock;
        // Six consenting patients: a population large enough to publish.
        let r = region(app, 6).await;
        let read = |local: String| {
            let doctor = r.doctor.clone();
            async move {
                app.ok(
                    &doctor,
                    "query($l: String!) { patientByLocalId(localId: $l) { name } }",
                    json!({ "l": local }),
                )
                .await;
            }
        };
        let reads_in = |days: i64| {
            let official = r.official.clone();
            async move {
                let today = app.clock.today();
                let v = json!({ "m": "北見市", "from": (today - Duration::days(1)).to_string(),
                    "to": (today + Duration::days(days)).to_string() });
                let data = app.ok(&official, INDICATORS, v).await;
                indicator(&data, "readsByProfession").clone()
            }
        };
        // Later, six reads of one patient alone: theirs, withheld.
        app.clock.advance(Duration::days(10));
        for _ in 0..6 {
            read("IND-0".into()).await;
        }
        let t = reads_in(1).await;
        assert_eq!(t["total"], Value::Null, "{t}");
        assert!(
            t["cells"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["value"].is_null() && c["suppressed"] == true),
            "{t}"
        );
        // Later still, one read of each of six: published — by profession
        // and by the category read (a patient's name: IDENTITY).
        app.clock.advance(Duration::days(10));
        for i in 0..6 {
            read(format!("IND-{i}")).await;
        }
        assert_eq!(reads_in(1).await["total"], 6);
        let today = app.clock.today();
        let v = json!({ "m": "北見市", "from": (today - Duration::days(1)).to_string(),
            "to": (today + Duration::days(1)).to_string() });
        let data = app.ok(&r.official, INDICATORS, v).await;
        let t = indicator(&data, "readsByCategory");
        // A read may be of several categories: no total.
        assert_eq!(t["hasTotal"], false, "{t}");
        let identity: Vec<&Value> = t["cells"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["label"] == "IDENTITY")
            .collect();
        assert_eq!(identity.len(), 1, "{t}");
        assert_eq!(identity[0]["value"], 6, "{t}");
    }
);

e2e!(
    discharge_lead_times_count_only_notices_whose_consent_covers_the_hospital,
    |app| async move {
        let r = region_with(app, 10, 0).await;
        let hospital = app
            .ok(
                &app.admin_token,
                "mutation($i: RegisterOrganizationInput!) { registerOrganization(input: $i) { id } }",
                json!({ "i": { "kind": "HOSPITAL", "name": "北見総合病院", "municipality": "北見市" } }),
            )
            .await["registerOrganization"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (_, msw) = app.member(&hospital, "MEDICAL_SOCIAL_WORKER").await;
        let today = Utc::now().date_naive();
        for p in &r.patients {
            app.ok(
                &r.doctor,
                "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
                json!({ "i": { "patientId": p, "organizationId": hospital, "role": "HOSPITAL" } }),
            )
            .await;
            app.ok(
                &msw,
                "mutation($i: SendDischargeNoticeInput!) { sendDischargeNotice(input: $i) { id } }",
                json!({ "i": { "patientId": p, "admittedOn": (today - Duration::days(10)).to_string(),
                    "plannedDischargeOn": (today + Duration::days(9)).to_string(), "needsAtHome": "自宅退院" } }),
            )
            .await;
        }
        let total = |data: &Value| indicator(data, "dischargeLeadTimes")["total"].clone();
        let data = app.ok(&r.official, INDICATORS, vars("北見市")).await;
        assert_eq!(
            total(&data),
            10,
            "{}",
            indicator(&data, "dischargeLeadTimes")
        );
        // One patient's consent now excludes the hospital: the category is
        // still shared, but not with the hospital that wrote the notice —
        // counted neither here nor in the hospital's own report.
        app.consent(
            &r.doctor,
            &r.patients[0],
            json!({ "scope": "NETWORK", "organizationIds": [hospital] }),
        )
        .await;
        let data = app.ok(&r.official, INDICATORS, vars("北見市")).await;
        assert_eq!(
            total(&data),
            9,
            "{}",
            indicator(&data, "dischargeLeadTimes")
        );
    }
);

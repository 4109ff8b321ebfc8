//! The directory for people (issue 15): what organisations say they do
//! (profiles), whether their entry is public, when it was last confirmed,
//! the vacancies facilities report, and the public directory that answers
//! without a token — showing only what organisations marked public.

use renkei_tests::*;
use serde_json::{Value, json};

const REGISTER: &str =
    "mutation($i: RegisterOrganizationInput!) { registerOrganization(input: $i) { id } }";
const SET_PROFILE: &str =
    "mutation($i: SetOrganizationProfileInput!) { setOrganizationProfile(input: $i) {
    public visitingAreas visitingRadiusKm languages homeDeathsLastYear contactPerson contactHours
    avoidCalling { days from to note } publicNote confirmedAt } }";
const REPORT: &str = "mutation($i: ReportVacanciesInput!) { reportVacancies(input: $i) { bedType available capacity stale } }";
const PUBLIC: &str = "query($f: PublicDirectoryFilterInput, $first: Int, $after: String) {
    publicDirectory(filter: $f, first: $first, after: $after) {
        edges { cursor node { id name kind municipality phone capabilities visitingAreas contactHours distanceKm note
            vacancies { bedType available stale } } }
        pageInfo { hasNextPage endCursor } } }";

/// Registers an organisation near Kitami (offset `km_east` km to the east).
async fn org(app: &TestApp, kind: &str, name: &str, municipality: &str, km_east: f64) -> String {
    // About 80.4 km per degree of longitude at 43.8° N.
    let data = app
        .ok(
            &app.admin_token,
            REGISTER,
            json!({ "i": {
                "kind": kind, "name": name, "municipality": municipality, "phone": "0157-00-0000",
                "location": { "latitude": 43.80, "longitude": 143.89 + km_east / 80.4 },
                "capabilities": ["HOME_VISITS"]
            } }),
        )
        .await;
    data["registerOrganization"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn anonymous(app: &TestApp, query: &str, variables: Value) -> (u16, Value) {
    app.post(None, json!({ "query": query, "variables": variables }))
        .await
}

fn profile(org: &str, public: bool) -> Value {
    json!({ "i": {
        "organizationId": org, "public": public,
        "visitingAreas": ["北見市", "訓子府町"], "visitingRadiusKm": 16,
        "languages": ["英語"], "homeDeathsLastYear": 12,
        "contactPerson": "看護師長 田中", "contactHours": "平日 9:00〜17:00",
        "avoidCalling": [{ "days": ["FRIDAY", "MONDAY", "MONDAY"], "from": "12:00", "to": "13:30", "note": "訪問中" }],
        "publicNote": "在宅療養支援診療所"
    } })
}

e2e!(
    an_organisation_describes_itself_and_others_may_not,
    |app| async move {
        let clinic = org(app, "CLINIC", "北見在宅クリニック", "北見市", 0.0).await;
        let other = org(app, "CLINIC", "別のクリニック", "北見市", 1.0).await;
        let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
        let (_, outsider) = app.member(&other, "PHYSICIAN").await;
        let data = app.ok(&doctor, SET_PROFILE, profile(&clinic, true)).await;
        let p = &data["setOrganizationProfile"];
        assert_eq!(p["public"], true);
        assert_eq!(p["visitingAreas"], json!(["北見市", "訓子府町"]));
        assert_eq!(p["homeDeathsLastYear"], 12);
        assert_eq!(
            p["avoidCalling"],
            json!([{ "days": ["MONDAY", "FRIDAY"], "from": "12:00", "to": "13:30", "note": "訪問中" }]),
            "days sorted and deduplicated"
        );
        assert!(p["confirmedAt"].is_string());
        // Read back through the organisation.
        let data = app
            .ok(
                &outsider,
                "query($id: ID!) { organization(id: $id) { profile { contactPerson public } } }",
                json!({ "id": clinic }),
            )
            .await;
        assert_eq!(
            data["organization"]["profile"]["contactPerson"],
            "看護師長 田中"
        );
        // Another organisation's member may not change it; the administrator may.
        let body = app
            .gql(&outsider, SET_PROFILE, profile(&clinic, false))
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{body}"
        );
        app.ok(&app.admin_token, SET_PROFILE, profile(&clinic, false))
            .await;
        let body = app
            .gql(
                &outsider,
                "mutation($o: ID!) { confirmDirectoryEntry(organizationId: $o) { confirmedAt } }",
                json!({ "o": clinic }),
            )
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{body}"
        );
        app.ok(
            &doctor,
            "mutation($o: ID!) { confirmDirectoryEntry(organizationId: $o) { confirmedAt } }",
            json!({ "o": clinic }),
        )
        .await;
    }
);

e2e!(
    bad_profiles_and_reports_are_refused_with_the_field_named,
    |app| async move {
        let clinic = org(app, "CLINIC", "北見在宅クリニック", "北見市", 0.0).await;
        let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
        for (change, field) in [
            (json!({ "visitingRadiusKm": 0 }), "input.visitingRadiusKm"),
            (json!({ "visitingRadiusKm": 500 }), "input.visitingRadiusKm"),
            (
                json!({ "homeDeathsLastYear": -1 }),
                "input.homeDeathsLastYear",
            ),
            (
                json!({ "avoidCalling": [{ "days": [], "from": "12:00", "to": "13:00" }] }),
                "input.avoidCalling[0].days",
            ),
            (
                json!({ "avoidCalling": [{ "days": ["MONDAY"], "from": "noon", "to": "13:00" }] }),
                "input.avoidCalling[0].from",
            ),
            (
                json!({ "avoidCalling": [{ "days": ["MONDAY"], "from": "14:00", "to": "13:00" }] }),
                "input.avoidCalling[0].to",
            ),
            (json!({ "visitingAreas": [" "] }), "input.visitingAreas[0]"),
            (
                json!({ "contactPerson": "あ".repeat(101) }),
                "input.contactPerson",
            ),
        ] {
            let mut input = json!({ "organizationId": clinic });
            for (k, v) in change.as_object().unwrap() {
                input[k] = v.clone();
            }
            let body = app.gql(&doctor, SET_PROFILE, json!({ "i": input })).await;
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
                "{body}"
            );
            assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
        }
        for (vacancies, field) in [
            (json!([]), "input.vacancies"),
            (
                json!([{ "bedType": "ACUTE", "available": -1 }]),
                "input.vacancies[0].available",
            ),
            (
                json!([{ "bedType": "ACUTE", "available": 5, "capacity": 3 }]),
                "input.vacancies[0].capacity",
            ),
            (
                json!([{ "bedType": "ACUTE", "available": 1 }, { "bedType": "ACUTE", "available": 2 }]),
                "input.vacancies[1].bedType",
            ),
        ] {
            let body = app
                .gql(
                    &doctor,
                    REPORT,
                    json!({ "i": { "organizationId": clinic, "vacancies": vacancies } }),
                )
                .await;
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
                "{body}"
            );
            assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
        }
        let body = app
            .gql(
                &doctor,
                SET_PROFILE,
                json!({ "i": { "organizationId": "00000000-0000-0000-0000-000000000000" } }),
            )
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "another organisation's entry: {body}"
        );
    }
);

e2e!(
    the_public_directory_answers_without_a_token_and_shows_only_public_entries,
    |app| async move {
        let public = org(app, "CLINIC", "公開クリニック", "北見市", 0.0).await;
        let hidden = org(app, "CLINIC", "非公開クリニック", "北見市", 0.5).await;
        let (_, doctor) = app.member(&public, "PHYSICIAN").await;
        let (_, other) = app.member(&hidden, "PHYSICIAN").await;
        app.ok(&doctor, SET_PROFILE, profile(&public, true)).await;
        app.ok(&other, SET_PROFILE, profile(&hidden, false)).await;
        // A patient of the public clinic: nothing of them may appear.
        let patient = app.patient(&doctor, "PUB-1").await;
        let (status, body) = anonymous(app, PUBLIC, json!({})).await;
        assert_eq!(status, 200, "{body}");
        let edges = body["data"]["publicDirectory"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 1, "only the public entry: {body}");
        let node = &edges[0]["node"];
        assert_eq!(node["name"], "公開クリニック");
        assert_eq!(node["contactHours"], "平日 9:00〜17:00");
        let text = body.to_string();
        assert!(
            !text.contains("看護師長"),
            "the contact person is not public"
        );
        assert!(
            !text.contains(&patient) && !text.contains("試験"),
            "no patient, no member: {text}"
        );
        // Asking for anything but the public directory without a token is
        // refused as before — alone, or beside it.
        for query in [
            "{ __typename }",
            "{ organizations { edges { node { id } } } }",
            "{ publicDirectory { edges { node { id } } } organizations { edges { node { id } } } }",
            "mutation { confirmDirectoryEntry(organizationId: \"x\") { public } }",
            "query { ...F } fragment F on Query { publicDirectory { edges { node { id } } } }",
            "{ publicDirectory(",
        ] {
            let (status, body) = anonymous(app, query, json!({})).await;
            assert_eq!(status, 401, "{query}: {body}");
            assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        }
        // The types of the public directory lead nowhere else: an entry has no
        // members, no profile, no patients to ask for.
        let (status, body) = anonymous(
            app,
            "{ publicDirectory { edges { node { members { id } } } } }",
            json!({}),
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("members"),
            "{body}"
        );
    }
);

e2e!(
    the_public_directory_searches_by_kind_function_area_and_distance,
    |app| async move {
        let near = org(app, "CLINIC", "近いクリニック", "北見市", 1.0).await;
        let far = org(app, "CLINIC", "遠いクリニック", "北見市", 30.0).await;
        let pharmacy = org(app, "PHARMACY", "まち薬局", "訓子府町", 2.0).await;
        for o in [&near, &far, &pharmacy] {
            app.ok(&app.admin_token, SET_PROFILE, profile(o, true))
                .await;
        }
        let names = |body: &Value| -> Vec<String> {
            body["data"]["publicDirectory"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        let (_, body) = anonymous(app, PUBLIC, json!({ "f": { "kinds": ["PHARMACY"] } })).await;
        assert_eq!(names(&body), ["まち薬局"]);
        let (_, body) = anonymous(app, PUBLIC, json!({ "f": { "municipality": "北見市" } })).await;
        assert_eq!(names(&body).len(), 2);
        let (_, body) = anonymous(app, PUBLIC, json!({ "f": { "name": "遠い" } })).await;
        assert_eq!(names(&body), ["遠いクリニック"]);
        let (_, body) = anonymous(
            app,
            PUBLIC,
            json!({ "f": { "capabilities": ["HOME_VISITS", "BACKUP_BEDS"] } }),
        )
        .await;
        assert_eq!(names(&body), Vec::<String>::new());
        // Nearest first, within the radius, a page at a time.
        let near_me = json!({ "latitude": 43.80, "longitude": 143.89, "radiusKm": 10 });
        let (_, body) =
            anonymous(app, PUBLIC, json!({ "f": { "near": near_me }, "first": 1 })).await;
        assert_eq!(names(&body), ["近いクリニック"]);
        let d = body["data"]["publicDirectory"]["edges"][0]["node"]["distanceKm"]
            .as_f64()
            .unwrap();
        assert!((0.8..1.2).contains(&d), "{d}");
        assert_eq!(
            body["data"]["publicDirectory"]["pageInfo"]["hasNextPage"],
            true
        );
        let cursor = body["data"]["publicDirectory"]["pageInfo"]["endCursor"].clone();
        let (_, body) = anonymous(
            app,
            PUBLIC,
            json!({ "f": { "near": near_me }, "first": 1, "after": cursor }),
        )
        .await;
        assert_eq!(names(&body), ["まち薬局"]);
        assert_eq!(
            body["data"]["publicDirectory"]["pageInfo"]["hasNextPage"],
            false
        );
        // Bad input.
        for (variables, field) in [
            (
                json!({ "f": { "near": { "latitude": 95, "longitude": 143.0, "radiusKm": 5 } } }),
                "filter.near.latitude",
            ),
            (
                json!({ "f": { "near": { "latitude": 43, "longitude": 143.0, "radiusKm": 0 } } }),
                "filter.near.radiusKm",
            ),
            (json!({ "first": 0 }), "first"),
            (json!({ "after": "not-a-cursor" }), "after"),
        ] {
            let (status, body) = anonymous(app, PUBLIC, variables).await;
            assert_eq!(status, 200);
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
                "{body}"
            );
            assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
        }
    }
);

e2e!(
    vacancies_are_reported_by_the_facility_and_read_on_the_board,
    |app| async move {
        let hospital = org(app, "HOSPITAL", "北見総合病院", "北見市", 0.0).await;
        let home = org(app, "NURSING_HOME", "特養 やすらぎ", "訓子府町", 3.0).await;
        let (_, nurse) = app.member(&hospital, "NURSE").await;
        let (_, staff) = app.member(&home, "CARE_WORKER").await;
        let data = app
            .ok(
                &nurse,
                REPORT,
                json!({ "i": { "organizationId": hospital, "vacancies": [
            { "bedType": "ACUTE", "available": 4, "capacity": 200 },
            { "bedType": "RECOVERY", "available": 0, "capacity": 40 } ] } }),
            )
            .await;
        assert_eq!(data["reportVacancies"][0]["stale"], false);
        // A newer report replaces the older one of the same type.
        app.ok(&nurse, REPORT, json!({ "i": { "organizationId": hospital, "vacancies": [{ "bedType": "ACUTE", "available": 2 }] } }))
        .await;
        app.ok(&staff, REPORT, json!({ "i": { "organizationId": home, "vacancies": [{ "bedType": "SHORT_STAY", "available": 1, "capacity": 10 }] } }))
        .await;
        // Another facility's staff may not report for it.
        let body = app
        .gql(&staff, REPORT, json!({ "i": { "organizationId": hospital, "vacancies": [{ "bedType": "ACUTE", "available": 99 }] } }))
        .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{body}"
        );
        let board = "query($m: String, $b: [BedType!]) { vacancyBoard(municipality: $m, bedTypes: $b) { organization { name } vacancies { bedType available } } }";
        let data = app.ok(&staff, board, json!({})).await;
        let rows = data["vacancyBoard"].as_array().unwrap();
        assert_eq!(rows.len(), 2, "{data}");
        let hospital_row = rows
            .iter()
            .find(|r| r["organization"]["name"] == "北見総合病院")
            .unwrap();
        assert_eq!(
            hospital_row["vacancies"],
            json!([{ "bedType": "ACUTE", "available": 2 }, { "bedType": "RECOVERY", "available": 0 }])
        );
        let data = app.ok(&staff, board, json!({ "b": ["SHORT_STAY"] })).await;
        assert_eq!(data["vacancyBoard"].as_array().unwrap().len(), 1);
        let data = app.ok(&staff, board, json!({ "m": "北見市" })).await;
        assert_eq!(
            data["vacancyBoard"][0]["organization"]["name"],
            "北見総合病院"
        );
        // The board needs a token.
        let (status, _) = anonymous(app, board, json!({})).await;
        assert_eq!(status, 401);
    }
);

e2e!(
    the_centre_lists_entries_not_confirmed_for_long,
    |app| async move {
        let clinic = org(app, "CLINIC", "確認済みクリニック", "北見市", 0.0).await;
        org(app, "CLINIC", "未確認クリニック", "北見市", 1.0).await;
        let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
        app.ok(&doctor, SET_PROFILE, profile(&clinic, true)).await;
        let stale = "{ staleDirectoryEntries { organization { name } confirmedAt } }";
        let data = app.ok(&app.admin_token, stale, json!({})).await;
        let names: Vec<&str> = data["staleDirectoryEntries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["organization"]["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"未確認クリニック"), "{names:?}");
        assert!(!names.contains(&"確認済みクリニック"), "{names:?}");
        let city = app.organization("MUNICIPALITY", "北見市 介護福祉課").await;
        let (_, official) = app.member(&city, "MUNICIPAL_STAFF").await;
        app.ok(&official, stale, json!({})).await;
        let body = app.gql(&doctor, stale, json!({})).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{body}"
        );
        let body = app
            .gql(
                &app.admin_token,
                "{ staleDirectoryEntries(notConfirmedForMonths: 0) { confirmedAt } }",
                json!({}),
            )
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
    }
);

e2e!(the_new_kinds_of_organisation_register, |app| async move {
    for kind in [
        "SMALL_MULTIFUNCTIONAL_CARE",
        "NURSING_SMALL_MULTIFUNCTIONAL_CARE",
        "REGULAR_ROUNDS_ON_CALL_CARE",
        "WELFARE_EQUIPMENT_RENTAL",
    ] {
        let id = app.organization(kind, &format!("{kind} 事業所")).await;
        let data = app
            .ok(
                &app.admin_token,
                "query($id: ID!) { organization(id: $id) { kind } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(data["organization"]["kind"], kind);
    }
});

const REGISTER_RESOURCE: &str = "mutation($i: CommunityResourceInput!) { registerCommunityResource(input: $i) { id name public owner { id } } }";
const UPDATE_RESOURCE: &str = "mutation($id: ID!, $i: CommunityResourceInput!) { updateCommunityResource(id: $id, input: $i) { name schedule } }";
const REMOVE_RESOURCE: &str = "mutation($id: ID!) { removeCommunityResource(id: $id) }";
const RESOURCES: &str =
    "query($m: String) { communityResources(municipality: $m) { name public } }";
const PUBLIC_RESOURCES: &str = "query($m: String) { publicCommunityResources(municipality: $m) { name resourceType schedule owner { id } } }";

fn resource(name: &str, public: bool) -> Value {
    json!({ "i": { "resourceType": "SALON", "name": name, "municipality": "北見市", "area": "栄町会館",
        "schedule": "毎週水曜 10:00〜12:00", "contact": "0157-00-0000", "public": public } })
}

e2e!(
    community_resources_are_kept_by_their_owners,
    |app| async move {
        let office = org(
            app,
            "HOME_CARE_SUPPORT_OFFICE",
            "北見ケアプラン",
            "北見市",
            0.0,
        )
        .await;
        let other = org(app, "CLINIC", "別のクリニック", "北見市", 1.0).await;
        let (_, care_manager) = app.member(&office, "CARE_MANAGER").await;
        let (_, outsider) = app.member(&other, "PHYSICIAN").await;
        let salon = app
            .ok(
                &care_manager,
                REGISTER_RESOURCE,
                resource("ふれあいサロン", true),
            )
            .await["registerCommunityResource"]
            .clone();
        assert_eq!(salon["owner"]["id"], office.as_str());
        let id = salon["id"].as_str().unwrap().to_string();
        app.ok(
            &care_manager,
            REGISTER_RESOURCE,
            resource("見守り連絡網", false),
        )
        .await;
        // Everyone on the network sees both; without a token, the public one only,
        // and not who keeps it.
        let data = app.ok(&outsider, RESOURCES, json!({ "m": "北見市" })).await;
        assert_eq!(data["communityResources"].as_array().unwrap().len(), 2);
        let (status, body) = anonymous(app, PUBLIC_RESOURCES, json!({ "m": "北見市" })).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["data"]["publicCommunityResources"],
            json!([{ "name": "ふれあいサロン", "resourceType": "SALON", "schedule": "毎週水曜 10:00〜12:00", "owner": null }])
        );
        let (status, _) = anonymous(app, RESOURCES, json!({})).await;
        assert_eq!(status, 401, "the full list needs a token");
        // Another organisation may not change or remove it; the owner and the
        // administrator may.
        let mut change = resource("ふれあいサロン 栄町", true);
        change["id"] = json!(id);
        let body = app.gql(&outsider, UPDATE_RESOURCE, change.clone()).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{body}"
        );
        let body = app
            .gql(&outsider, REMOVE_RESOURCE, json!({ "id": id }))
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{body}"
        );
        let data = app.ok(&care_manager, UPDATE_RESOURCE, change).await;
        assert_eq!(
            data["updateCommunityResource"]["name"],
            "ふれあいサロン 栄町"
        );
        app.ok(&app.admin_token, REMOVE_RESOURCE, json!({ "id": id }))
            .await;
        let data = app.ok(&outsider, RESOURCES, json!({ "m": "北見市" })).await;
        assert_eq!(
            data["communityResources"],
            json!([{ "name": "見守り連絡網", "public": false }])
        );
        // Removed, or never there: not found.
        let body = app
            .gql(&care_manager, REMOVE_RESOURCE, json!({ "id": id }))
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "NOT_FOUND",
            "{body}"
        );
        // Bad input.
        let body = app
            .gql(&care_manager, REGISTER_RESOURCE, resource(" ", true))
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["field"], "input.name",
            "{body}"
        );
    }
);

//! The resource directory: organisations, members and API keys, administered by
//! network administrators and read by everyone on the network.

use renkei_tests::*;
use serde_json::{Value, json};

const REGISTER_ORG: &str = "mutation($i: RegisterOrganizationInput!) {
    registerOrganization(input: $i) {
        id kind name nameKana postalCode address municipality phone fax
        location { latitude longitude } capabilities
    }
}";

const REGISTER_MEMBER: &str = "mutation($i: RegisterMemberInput!) {
    registerMember(input: $i) { id name profession status organization { id } }
}";

const CREATE_API_KEY: &str = "mutation($i: CreateApiKeyInput!) {
    createApiKey(input: $i) { secret apiKey { id name revokedAt organization { id } } }
}";

const ORGANIZATION_IDS: &str = "query($f: OrganizationFilterInput, $first: Int, $after: String) {
    organizations(filter: $f, first: $first, after: $after) {
        edges { cursor node { id name } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
}";

/// Registers an organisation with a municipality and capabilities; returns its id.
async fn listed_org(
    app: &TestApp,
    kind: &str,
    name: &str,
    municipality: &str,
    caps: &[&str],
) -> String {
    let data = app
        .ok(
            &app.admin_token,
            REGISTER_ORG,
            json!({ "i": { "kind": kind, "name": name, "municipality": municipality, "capabilities": caps } }),
        )
        .await;
    data["registerOrganization"]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// The ids of the first page (up to 100) of organisations matching a filter.
async fn filtered_ids(app: &TestApp, filter: Value) -> Vec<String> {
    let data = app
        .ok(
            &app.admin_token,
            ORGANIZATION_IDS,
            json!({ "f": filter, "first": 100 }),
        )
        .await;
    data["organizations"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id").to_string())
        .collect()
}

async fn organization_count(app: &TestApp) -> usize {
    filtered_ids(app, json!({})).await.len()
}

fn assert_bad_input(body: &Value, field: &str) {
    assert_eq!(
        error_code(body).as_deref(),
        Some("BAD_USER_INPUT"),
        "{body}"
    );
    assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
}

/// A `{ me { kind } }` request with a bearer token, as raw HTTP status and body.
async fn me_raw(app: &TestApp, token: &str) -> (u16, Value) {
    app.post(
        Some(token),
        json!({ "query": "{ me { kind organization { id } member { id } } }" }),
    )
    .await
}

fn assert_unauthenticated(status: u16, body: &Value) {
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        error_code(body).as_deref(),
        Some("UNAUTHENTICATED"),
        "{body}"
    );
    assert!(
        body.get("data").is_none_or(Value::is_null),
        "no data for a refused caller: {body}"
    );
}

e2e!(
    an_administrator_registers_an_organization_with_every_field_and_reads_it_back,
    |app| async move {
        let input = json!({
            "kind": "CLINIC",
            "name": "  北見在宅クリニック  ",
            "nameKana": "きたみ ざいたく くりにっく",
            "postalCode": "0900001",
            "address": "北海道北見市北1条西1丁目1番地",
            "municipality": "北見市",
            "phone": "0157-23-4567",
            "fax": "0157-23-4568",
            "location": { "latitude": 43.8041, "longitude": 143.8946 },
            "capabilities": ["TWENTY_FOUR_HOUR_COVER", "HOME_VISITS", "END_OF_LIFE_CARE", "HOME_VISITS"],
        });
        let expected = json!({
            "kind": "CLINIC",
            "name": "北見在宅クリニック",
            "nameKana": "キタミ\u{3000}ザイタク\u{3000}クリニック",
            "postalCode": "090-0001",
            "address": "北海道北見市北1条西1丁目1番地",
            "municipality": "北見市",
            "phone": "0157-23-4567",
            "fax": "0157-23-4568",
            "location": { "latitude": 43.8041, "longitude": 143.8946 },
            // Deduplicated, in the enum's declaration order.
            "capabilities": ["HOME_VISITS", "TWENTY_FOUR_HOUR_COVER", "END_OF_LIFE_CARE"],
        });

        let registered = app
            .ok(&app.admin_token, REGISTER_ORG, json!({ "i": input }))
            .await;
        let mut registered = registered["registerOrganization"].clone();
        let id = registered["id"].as_str().expect("id").to_string();
        registered.as_object_mut().unwrap().remove("id");
        assert_eq!(registered, expected);

        let read = app
            .ok(
                &app.admin_token,
                "query($id: ID!) { organization(id: $id) {
                id kind name nameKana postalCode address municipality phone fax
                location { latitude longitude } capabilities members { id } createdAt updatedAt
            } }",
                json!({ "id": id }),
            )
            .await;
        let mut read = read["organization"].clone();
        assert_eq!(read["id"], id.as_str());
        assert_eq!(read["members"], json!([]));
        assert!(
            read["createdAt"].is_string() && read["updatedAt"].is_string(),
            "{read}"
        );
        let obj = read.as_object_mut().unwrap();
        for k in ["id", "members", "createdAt", "updatedAt"] {
            obj.remove(k);
        }
        assert_eq!(read, expected);

        // An organisation registered with only the required fields has nulls and no capabilities.
        let minimal = app.organization("PHARMACY", "北見中央薬局").await;
        let read = app
        .ok(
            &app.admin_token,
            "query($id: ID!) { organization(id: $id) { kind name nameKana postalCode location { latitude } capabilities } }",
            json!({ "id": minimal }),
        )
        .await;
        assert_eq!(
            read["organization"],
            json!({ "kind": "PHARMACY", "name": "北見中央薬局", "nameKana": null, "postalCode": null, "location": null, "capabilities": [] })
        );
    }
);

e2e!(an_unknown_organization_id_reads_as_null, |app| async move {
    let data = app
        .ok(
            &app.admin_token,
            "query($id: ID!) { organization(id: $id) { id } }",
            json!({ "id": uuid::Uuid::now_v7().to_string() }),
        )
        .await;
    assert_eq!(data["organization"], Value::Null);
    let body = app
        .gql(
            &app.admin_token,
            "query($id: ID!) { organization(id: $id) { id } }",
            json!({ "id": "abc" }),
        )
        .await;
    assert_bad_input(&body, "id");
});

e2e!(
    a_physician_may_not_change_the_directory_and_nothing_is_created,
    |app| async move {
        let clinic = app.organization("CLINIC", "北見在宅クリニック").await;
        let (_, physician) = app.member(&clinic, "PHYSICIAN").await;
        let before = organization_count(app).await;

        let body = app
            .gql(
                &physician,
                REGISTER_ORG,
                json!({ "i": { "kind": "CLINIC", "name": "勝手なクリニック" } }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        assert_eq!(body["data"], Value::Null, "{body}");

        let body = app
        .gql(
            &physician,
            REGISTER_MEMBER,
            json!({ "i": { "organizationId": clinic, "name": "勝手 次郎", "profession": "NETWORK_ADMINISTRATOR" } }),
        )
        .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        assert_eq!(body["data"], Value::Null, "{body}");

        let body = app
            .gql(
                &physician,
                CREATE_API_KEY,
                json!({ "i": { "organizationId": clinic, "name": "勝手な鍵" } }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        assert_eq!(body["data"], Value::Null, "{body}");
        assert!(!body.to_string().contains("rk_"), "no secret leaks: {body}");

        // Nothing was created: no new organisation, no new member.
        assert_eq!(organization_count(app).await, before);
        let data = app
            .ok(
                &app.admin_token,
                "query($id: ID!) { organization(id: $id) { members { profession } } }",
                json!({ "id": clinic }),
            )
            .await;
        assert_eq!(
            data["organization"]["members"],
            json!([{ "profession": "PHYSICIAN" }])
        );
    }
);

e2e!(
    the_directory_filters_by_kind_municipality_and_all_listed_capabilities,
    |app| async move {
        let a = listed_org(
            app,
            "CLINIC",
            "A診療所",
            "北見市",
            &["HOME_VISITS", "TWENTY_FOUR_HOUR_COVER"],
        )
        .await;
        let b = listed_org(app, "CLINIC", "B診療所", "網走市", &["HOME_VISITS"]).await;
        let c = listed_org(
            app,
            "PHARMACY",
            "C薬局",
            "北見市",
            &["HOME_MEDICATION_MANAGEMENT", "TWENTY_FOUR_HOUR_COVER"],
        )
        .await;
        let d = listed_org(
            app,
            "HOSPITAL",
            "D病院",
            "北見市",
            &["BACKUP_BEDS", "EMERGENCY_ADMISSION"],
        )
        .await;
        let admin_org = app.admin_org.to_string();
        let (a, b, c, d, admin_org) = (
            a.as_str(),
            b.as_str(),
            c.as_str(),
            d.as_str(),
            admin_org.as_str(),
        );

        // No filter: everything, in registration order (the coordination centre came first).
        assert_eq!(filtered_ids(app, json!({})).await, [admin_org, a, b, c, d]);
        assert_eq!(
            filtered_ids(app, Value::Null).await,
            [admin_org, a, b, c, d]
        );

        // Kinds: any of them.
        assert_eq!(
            filtered_ids(app, json!({ "kinds": ["CLINIC"] })).await,
            [a, b]
        );
        assert_eq!(
            filtered_ids(app, json!({ "kinds": ["CLINIC", "PHARMACY"] })).await,
            [a, b, c]
        );
        assert_eq!(
            filtered_ids(app, json!({ "kinds": ["NURSING_HOME"] })).await,
            Vec::<String>::new()
        );

        // Municipality: exactly.
        assert_eq!(
            filtered_ids(app, json!({ "municipality": "北見市" })).await,
            [a, c, d]
        );
        assert_eq!(
            filtered_ids(app, json!({ "municipality": "網走市" })).await,
            [b]
        );
        assert_eq!(
            filtered_ids(app, json!({ "municipality": "北見" })).await,
            Vec::<String>::new()
        );

        // Capabilities: every one of them.
        assert_eq!(
            filtered_ids(app, json!({ "capabilities": ["HOME_VISITS"] })).await,
            [a, b]
        );
        assert_eq!(
            filtered_ids(app, json!({ "capabilities": ["TWENTY_FOUR_HOUR_COVER"] })).await,
            [a, c]
        );
        assert_eq!(
            filtered_ids(
                app,
                json!({ "capabilities": ["HOME_VISITS", "TWENTY_FOUR_HOUR_COVER"] })
            )
            .await,
            [a]
        );
        assert_eq!(
            filtered_ids(
                app,
                json!({ "capabilities": ["HOME_VISITS", "BACKUP_BEDS"] })
            )
            .await,
            Vec::<String>::new()
        );

        // Filters combine: all must match.
        assert_eq!(
            filtered_ids(
                app,
                json!({ "kinds": ["CLINIC"], "municipality": "北見市" })
            )
            .await,
            [a]
        );
        assert_eq!(
            filtered_ids(
                app,
                json!({ "municipality": "北見市", "capabilities": ["TWENTY_FOUR_HOUR_COVER"] })
            )
            .await,
            [a, c]
        );

        // An empty municipality filter is bad input, not "no municipality".
        let body = app
            .gql(
                &app.admin_token,
                ORGANIZATION_IDS,
                json!({ "f": { "municipality": "  " } }),
            )
            .await;
        assert_bad_input(&body, "filter.municipality");
    }
);

e2e!(
    the_directory_pages_through_every_organization_once_with_cursors,
    |app| async move {
        let mut registered = vec![app.admin_org.to_string()];
        for i in 0..7 {
            registered.push(app.organization("CLINIC", &format!("診療所{i}")).await);
        }

        let mut seen: Vec<String> = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = Vec::new();
        loop {
            let data = app
                .ok(
                    &app.admin_token,
                    ORGANIZATION_IDS,
                    json!({ "first": 3, "after": after }),
                )
                .await;
            let conn = &data["organizations"];
            let edges = conn["edges"].as_array().expect("edges");
            let info = &conn["pageInfo"];
            pages.push((
                edges.len(),
                info["hasNextPage"].clone(),
                info["hasPreviousPage"].clone(),
            ));
            seen.extend(
                edges
                    .iter()
                    .map(|e| e["node"]["id"].as_str().unwrap().to_string()),
            );
            assert_eq!(info["endCursor"], edges.last().unwrap()["cursor"], "{conn}");
            assert_eq!(
                info["startCursor"],
                edges.first().unwrap()["cursor"],
                "{conn}"
            );
            if info["hasNextPage"] != json!(true) {
                break;
            }
            after = Some(info["endCursor"].as_str().expect("endCursor").to_string());
            assert!(pages.len() < 10, "pagination does not end");
        }

        assert_eq!(
            pages,
            [
                (3, json!(true), json!(false)),
                (3, json!(true), json!(true)),
                (2, json!(false), json!(true)),
            ]
        );
        assert_eq!(
            seen, registered,
            "every organisation once, in registration order"
        );

        // Without `first` a page holds up to 20; 100 is the most allowed.
        let data = app.ok(&app.admin_token, ORGANIZATION_IDS, json!({})).await;
        assert_eq!(data["organizations"]["edges"].as_array().unwrap().len(), 8);
        assert_eq!(data["organizations"]["pageInfo"]["hasNextPage"], false);
        let data = app
            .ok(&app.admin_token, ORGANIZATION_IDS, json!({ "first": 100 }))
            .await;
        assert_eq!(data["organizations"]["edges"].as_array().unwrap().len(), 8);

        // The cursor of the last organisation yields an empty last page.
        let last_cursor = {
            let data = app
                .ok(&app.admin_token, ORGANIZATION_IDS, json!({ "first": 8 }))
                .await;
            data["organizations"]["pageInfo"]["endCursor"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let data = app
            .ok(
                &app.admin_token,
                ORGANIZATION_IDS,
                json!({ "first": 3, "after": last_cursor }),
            )
            .await;
        assert_eq!(data["organizations"]["edges"], json!([]));
        assert_eq!(data["organizations"]["pageInfo"]["hasNextPage"], false);
    }
);

e2e!(
    page_sizes_outside_one_to_a_hundred_and_foreign_cursors_are_bad_input,
    |app| async move {
        for first in [0, -1, 101] {
            let body = app
                .gql(
                    &app.admin_token,
                    ORGANIZATION_IDS,
                    json!({ "first": first }),
                )
                .await;
            assert_bad_input(&body, "first");
            assert_eq!(body["data"], Value::Null, "{body}");
        }
        for after in ["garbage", "not-a-cursor", "!!!", ""] {
            let body = app
                .gql(
                    &app.admin_token,
                    ORGANIZATION_IDS,
                    json!({ "first": 3, "after": after }),
                )
                .await;
            assert_bad_input(&body, "after");
        }
    }
);

e2e!(
    malformed_organization_input_is_bad_user_input_naming_the_field,
    |app| async move {
        let before = organization_count(app).await;
        let cases: Vec<(&str, Value, &str)> = vec![
            ("name", json!(""), "input.name"),
            ("name", json!("   \u{3000}"), "input.name"),
            ("name", json!("改行\nクリニック"), "input.name"),
            ("name", json!("あ".repeat(201)), "input.name"),
            ("nameKana", json!("Yamada"), "input.nameKana"),
            ("nameKana", json!("山田"), "input.nameKana"),
            ("nameKana", json!("ﾔﾏﾀﾞ"), "input.nameKana"),
            ("phone", json!("123"), "input.phone"),
            ("phone", json!("0157-23-456a"), "input.phone"),
            ("fax", json!("fax"), "input.fax"),
            ("postalCode", json!("090-001"), "input.postalCode"),
            ("postalCode", json!("abcdefg"), "input.postalCode"),
            (
                "location",
                json!({ "latitude": 91, "longitude": 143.9 }),
                "input.location.latitude",
            ),
            (
                "location",
                json!({ "latitude": 43.8, "longitude": -180.5 }),
                "input.location.longitude",
            ),
            ("municipality", json!(""), "input.municipality"),
            ("address", json!(" "), "input.address"),
        ];
        for (key, value, field) in cases {
            let mut input = json!({ "kind": "CLINIC", "name": "試験クリニック" });
            input[key] = value.clone();
            let body = app
                .gql(&app.admin_token, REGISTER_ORG, json!({ "i": input }))
                .await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{key} = {value}: {body}"
            );
            assert_eq!(
                body["errors"][0]["extensions"]["field"], field,
                "{key} = {value}: {body}"
            );
            assert_eq!(body["data"], Value::Null, "{body}");
        }

        // An unknown enum value is refused by GraphQL input coercion, with the same code.
        let body = app
            .gql(
                &app.admin_token,
                REGISTER_ORG,
                json!({ "i": { "kind": "SPACESHIP", "name": "宇宙船" } }),
            )
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("SPACESHIP"),
            "{body}"
        );
        let body = app
        .gql(
            &app.admin_token,
            REGISTER_ORG,
            json!({ "i": { "kind": "CLINIC", "name": "試験", "capabilities": ["TELEPORTATION"] } }),
        )
        .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );

        assert_eq!(
            organization_count(app).await,
            before,
            "no organisation was created"
        );
    }
);

e2e!(
    registering_a_member_for_an_unknown_or_malformed_organization_is_bad_input,
    |app| async move {
        let unknown = uuid::Uuid::now_v7().to_string();
        for org in [unknown.as_str(), "abc", ""] {
            let body = app
            .gql(
                &app.admin_token,
                REGISTER_MEMBER,
                json!({ "i": { "organizationId": org, "name": "試験 太郎", "profession": "PHYSICIAN" } }),
            )
            .await;
            assert_bad_input(&body, "input.organizationId");
            assert_eq!(body["data"], Value::Null, "{body}");
        }

        let clinic = app.organization("CLINIC", "北見在宅クリニック").await;
        let body = app
        .gql(
            &app.admin_token,
            REGISTER_MEMBER,
            json!({ "i": { "organizationId": clinic, "name": "試験 太郎", "nameKana": "Taro", "profession": "PHYSICIAN" } }),
        )
        .await;
        assert_bad_input(&body, "input.nameKana");
        let body = app
        .gql(
            &app.admin_token,
            REGISTER_MEMBER,
            json!({ "i": { "organizationId": clinic, "name": " ", "profession": "PHYSICIAN" } }),
        )
        .await;
        assert_bad_input(&body, "input.name");

        let data = app
        .ok(
            &app.admin_token,
            REGISTER_MEMBER,
            json!({ "i": { "organizationId": clinic, "name": "試験 太郎", "nameKana": "しけん たろう", "profession": "NURSE" } }),
        )
        .await;
        assert_eq!(data["registerMember"]["profession"], "NURSE");
        assert_eq!(data["registerMember"]["status"], "ACTIVE");
        assert_eq!(
            data["registerMember"]["organization"]["id"],
            clinic.as_str()
        );
        let data = app
            .ok(
                &app.admin_token,
                "query($id: ID!) { organization(id: $id) { members { name nameKana } } }",
                json!({ "id": clinic }),
            )
            .await;
        assert_eq!(
            data["organization"]["members"],
            json!([{ "name": "試験 太郎", "nameKana": "シケン\u{3000}タロウ" }])
        );
    }
);

e2e!(
    an_ambulance_crew_works_for_an_ambulance_service_only,
    |app| async move {
        let hospital = app.organization("HOSPITAL", "北見総合病院").await;
        let fire = app.organization("AMBULANCE_SERVICE", "北見消防署").await;
        const REGISTER: &str =
            "mutation($i: RegisterMemberInput!) { registerMember(input: $i) { id } }";
        let body = app
            .gql(
                &app.admin_token,
                REGISTER,
                json!({ "i": { "organizationId": hospital, "name": "救急 太郎", "profession": "EMS_CREW" } }),
            )
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["field"], "input.profession");
        app.ok(
            &app.admin_token,
            REGISTER,
            json!({ "i": { "organizationId": fire, "name": "救急 太郎", "profession": "EMS_CREW" } }),
        )
        .await;
        // Nor made one at the hospital afterwards.
        let (social_worker, _) = app.member(&hospital, "MEDICAL_SOCIAL_WORKER").await;
        let body = app
            .gql(
                &app.admin_token,
                "mutation($m: ID!) { setMemberProfession(memberId: $m, profession: EMS_CREW) { id } }",
                json!({ "m": social_worker }),
            )
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["field"], "profession");
    }
);

e2e!(
    an_administrator_does_not_change_their_own_profession_or_status,
    |app| async move {
        let admin = &app.admin_token;
        let me = app.ok(admin, "{ me { member { id } } }", json!({})).await;
        let own = me["me"]["member"]["id"].as_str().unwrap().to_string();
        // Granting themselves a clinician's rights, or suspending the
        // network's administrator: another administrator's work.
        for (query, variables) in [
            (
                "mutation($m: ID!) { setMemberProfession(memberId: $m, profession: PHYSICIAN) { id } }",
                json!({ "m": own }),
            ),
            (
                "mutation($m: ID!) { setMemberStatus(memberId: $m, status: SUSPENDED) { id } }",
                json!({ "m": own }),
            ),
            // Handing their login to a clinician they register starts with
            // clearing their own subject.
            (
                "mutation($m: ID!) { setMemberExternalSubject(memberId: $m, externalSubject: null) { id } }",
                json!({ "m": own }),
            ),
        ] {
            let body = app.gql(admin, query, variables).await;
            assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        }
        let data = app
            .ok(
                admin,
                "query($id: ID!) { member(id: $id) { profession status } }",
                json!({ "id": own }),
            )
            .await;
        assert_eq!(
            data["member"],
            json!({ "profession": "NETWORK_ADMINISTRATOR", "status": "ACTIVE" })
        );
        // Another administrator may.
        let centre = app
            .ok(admin, "{ me { organization { id } } }", json!({}))
            .await["me"]["organization"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (second, second_token) = app.member(&centre, "NETWORK_ADMINISTRATOR").await;
        let data = app
            .ok(
                &second_token,
                "mutation($m: ID!) { setMemberProfession(memberId: $m, profession: NURSE) { profession } }",
                json!({ "m": own }),
            )
            .await;
        assert_eq!(data["setMemberProfession"]["profession"], "NURSE");
        let body = app
            .gql(
                &second_token,
                "mutation($m: ID!) { setMemberStatus(memberId: $m, status: SUSPENDED) { id } }",
                json!({ "m": second }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    }
);

e2e!(
    a_suspended_members_token_is_refused_until_they_are_reactivated,
    |app| async move {
        let clinic = app.organization("CLINIC", "北見在宅クリニック").await;
        let (member_id, token) = app.member(&clinic, "NURSE").await;
        let (status, _) = me_raw(app, &token).await;
        assert_eq!(status, 200);

        let set_status = "mutation($id: ID!, $s: MemberStatus!) { setMemberStatus(memberId: $id, status: $s) { id status } }";
        let data = app
            .ok(
                &app.admin_token,
                set_status,
                json!({ "id": member_id, "s": "SUSPENDED" }),
            )
            .await;
        assert_eq!(
            data["setMemberStatus"],
            json!({ "id": member_id, "status": "SUSPENDED" })
        );

        let (status, body) = me_raw(app, &token).await;
        assert_unauthenticated(status, &body);

        // The suspension shows in the directory.
        let data = app
            .ok(
                &app.admin_token,
                "query($id: ID!) { member(id: $id) { status } }",
                json!({ "id": member_id }),
            )
            .await;
        assert_eq!(data["member"]["status"], "SUSPENDED");

        let data = app
            .ok(
                &app.admin_token,
                set_status,
                json!({ "id": member_id, "s": "ACTIVE" }),
            )
            .await;
        assert_eq!(data["setMemberStatus"]["status"], "ACTIVE");
        let (status, body) = me_raw(app, &token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["me"]["member"]["id"], member_id.as_str());

        // A non-administrator cannot suspend anyone; an unknown member is NOT_FOUND.
        let (_, other) = app.member(&clinic, "PHYSICIAN").await;
        let body = app
            .gql(
                &other,
                set_status,
                json!({ "id": member_id, "s": "SUSPENDED" }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        let (status, _) = me_raw(app, &token).await;
        assert_eq!(status, 200);
        let body = app
            .gql(
                &app.admin_token,
                set_status,
                json!({ "id": uuid::Uuid::now_v7().to_string(), "s": "SUSPENDED" }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
    }
);

e2e!(an_api_key_names_each_category_once, |app| async move {
    let pharmacy = app.organization("PHARMACY", "北見中央薬局").await;
    let body = app
        .gql(
            &app.admin_token,
            CREATE_API_KEY,
            json!({ "i": { "organizationId": pharmacy, "name": "調剤システム連携", "permissions": [
                    { "category": "MEDICATIONS", "level": "READ" },
                    { "category": "INFECTIONS", "level": "READ_WRITE" },
                    { "category": "INFECTIONS", "level": "NONE" }
                ] } }),
        )
        .await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("BAD_USER_INPUT"),
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["extensions"]["field"], "input.permissions[2].category",
        "{body}"
    );
    // Each once, it is created.
    app.ok(
        &app.admin_token,
        CREATE_API_KEY,
        json!({ "i": { "organizationId": pharmacy, "name": "調剤システム連携", "permissions": [
                { "category": "MEDICATIONS", "level": "READ" },
                { "category": "INFECTIONS", "level": "READ_WRITE" }
            ] } }),
    )
    .await;
});

e2e!(
    an_api_key_authenticates_its_organizations_system_until_it_is_revoked,
    |app| async move {
        let pharmacy = app.organization("PHARMACY", "北見中央薬局").await;
        let data = app
            .ok(
                &app.admin_token,
                CREATE_API_KEY,
                json!({ "i": { "organizationId": pharmacy, "name": "調剤システム連携" } }),
            )
            .await;
        let created = &data["createApiKey"];
        let secret = created["secret"].as_str().expect("secret").to_string();
        let key_id = created["apiKey"]["id"].as_str().expect("id").to_string();
        assert!(secret.starts_with("rk_"), "{secret}");
        assert_eq!(created["apiKey"]["name"], "調剤システム連携");
        assert_eq!(created["apiKey"]["revokedAt"], Value::Null);
        assert_eq!(created["apiKey"]["organization"]["id"], pharmacy.as_str());

        // The key acts as its organisation's system (twice: the second is served from the cache).
        for _ in 0..2 {
            let (status, body) = me_raw(app, &secret).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(
                body["data"]["me"],
                json!({ "kind": "SYSTEM", "organization": { "id": pharmacy }, "member": null })
            );
        }

        // A system is not a network administrator.
        let body = app
            .gql(
                &secret,
                REGISTER_ORG,
                json!({ "i": { "kind": "CLINIC", "name": "勝手なクリニック" } }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");

        // A tampered secret is refused.
        let mut tampered: Vec<char> = secret.chars().collect();
        let i = tampered.len() - 10;
        tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
        let tampered: String = tampered.into_iter().collect();
        let (status, body) = me_raw(app, &tampered).await;
        assert_unauthenticated(status, &body);
        let (status, body) = me_raw(app, &format!("{secret}x")).await;
        assert_unauthenticated(status, &body);

        let data = app
            .ok(
                &app.admin_token,
                "mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }",
                json!({ "id": key_id }),
            )
            .await;
        assert_eq!(data["revokeApiKey"]["id"], key_id.as_str());
        assert!(data["revokeApiKey"]["revokedAt"].is_string(), "{data}");

        let (status, body) = me_raw(app, &secret).await;
        assert_unauthenticated(status, &body);
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("revoked")),
            "its holder is told: {body}"
        );
        // Without the secret, a revoked key is any wrong key: which keys
        // were revoked is no one else's to learn.
        let (status, wrong) = me_raw(app, &tampered).await;
        assert_unauthenticated(status, &wrong);
        assert_eq!(
            wrong["errors"][0]["message"], "the API key is not valid",
            "{wrong}"
        );

        let body = app
            .gql(
                &app.admin_token,
                "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
                json!({ "id": key_id }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
        let body = app
            .gql(
                &app.admin_token,
                "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
                json!({ "id": uuid::Uuid::now_v7().to_string() }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
    }
);

e2e!(
    an_api_key_is_stored_as_a_hash_and_keys_stored_with_argon2_still_authenticate,
    |app| async move {
        use argon2::PasswordHasher;
        use entities::api_key;
        use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
        use sha2::Digest;

        let clinic = app.organization("CLINIC", "北見ひがし診療所").await;
        let data = app
            .ok(
                &app.admin_token,
                CREATE_API_KEY,
                json!({ "i": { "organizationId": clinic, "name": "電子カルテ連携" } }),
            )
            .await;
        let secret = data["createApiKey"]["secret"].as_str().unwrap().to_string();
        let key_id = data["createApiKey"]["apiKey"]["id"].as_str().unwrap();
        let key_id = uuid::Uuid::parse_str(key_id).unwrap();
        // What someone reading the table finds: a digest, not the secret.
        let stored = api_key::Entity::find_by_id(key_id)
            .one(&app.db)
            .await
            .unwrap()
            .unwrap();
        // `rk_<id>_<secret>`: the secret (URL-safe base64) may hold `_` itself.
        let plain = secret["rk_".len()..].split_once('_').unwrap().1;
        assert!(
            !stored.secret_hash.contains(plain),
            "{}",
            stored.secret_hash
        );
        assert_eq!(
            stored.secret_hash,
            format!("sha256:{:x}", sha2::Sha256::digest(plain.as_bytes()))
        );

        // A key an earlier hub stored with argon2 (here: the same row, a
        // new secret) is verified with argon2: its secret is let in, a
        // wrong one is not.
        let legacy = "c2VjcmV0LW9mLWFuLW9sZGVyLWtleS0wMTIzNDU2Nzg5";
        let hash = argon2::Argon2::default()
            .hash_password(legacy.as_bytes())
            .unwrap()
            .to_string();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let mut row: api_key::ActiveModel = stored.into();
        row.secret_hash = Set(hash);
        row.update(&app.db).await.unwrap();
        let token = |secret: &str| format!("rk_{}_{secret}", key_id.simple());
        let (status, body) = me_raw(app, &token(legacy)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["me"]["kind"], "SYSTEM", "{body}");
        let (status, body) = me_raw(app, &token(&format!("{legacy}x"))).await;
        assert_unauthenticated(status, &body);
        // The new-style secret no longer matches the row.
        let (status, body) = me_raw(app, &secret).await;
        assert_unauthenticated(status, &body);
        // Once verified, the key is stored as new keys are.
        let stored = api_key::Entity::find_by_id(key_id)
            .one(&app.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stored.secret_hash,
            format!("sha256:{:x}", sha2::Sha256::digest(legacy.as_bytes()))
        );
    }
);

e2e!(
    an_api_key_for_an_unknown_organization_or_without_a_name_is_bad_input,
    |app| async move {
        let body = app
        .gql(
            &app.admin_token,
            CREATE_API_KEY,
            json!({ "i": { "organizationId": uuid::Uuid::now_v7().to_string(), "name": "鍵" } }),
        )
        .await;
        assert_bad_input(&body, "input.organizationId");
        let body = app
            .gql(
                &app.admin_token,
                CREATE_API_KEY,
                json!({ "i": { "organizationId": app.admin_org.to_string(), "name": "" } }),
            )
            .await;
        assert_bad_input(&body, "input.name");
    }
);

e2e!(
    me_tells_a_member_their_profession_and_organization,
    |app| async move {
        let clinic = app.organization("CLINIC", "北見在宅クリニック").await;
        let (member_id, token) = app.member(&clinic, "CARE_MANAGER").await;
        let data = app
        .ok(
            &token,
            "{ me { kind member { id name profession status } organization { id name kind } } }",
            json!({}),
        )
        .await;
        assert_eq!(
            data["me"],
            json!({
                "kind": "MEMBER",
                "member": { "id": member_id, "name": "試験 太郎", "profession": "CARE_MANAGER", "status": "ACTIVE" },
                "organization": { "id": clinic, "name": "北見在宅クリニック", "kind": "CLINIC" },
            })
        );

        let data = app
            .ok(
                &app.admin_token,
                "{ me { kind member { profession } organization { id kind } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            data["me"],
            json!({
                "kind": "MEMBER",
                "member": { "profession": "NETWORK_ADMINISTRATOR" },
                "organization": { "id": app.admin_org.to_string(), "kind": "COORDINATION_CENTER" },
            })
        );
    }
);

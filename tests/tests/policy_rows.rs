//! The policy's rule is written twice: in Rust, where `Policy::evaluate`
//! decides every category of a patient, and in SQL, where a list filters the
//! rows a caller may see before it pages (`Policy::readable_rows`,
//! `Policy::known_patients`). This test keeps the two in step: over many
//! patients with consents of every shape (none, withdrawn, pending, network-wide
//! with excluded organisations and categories, for listed organisations),
//! care-team memberships active and ended, and emergency
//! access open or expired, for every profession and for API keys, the SQL
//! must select exactly the patients whose verdict grants the category.

use std::collections::{BTreeSet, HashMap};

use chrono::{Days, Duration};
use renkei_schema::clock::Clock;
use renkei_schema::domain::{AccessLevel, DataCategory, Profession};
use renkei_schema::policy::{AccessReason, Matrix, Policy};
use renkei_schema::principal::{Principal, SystemPermissions};
use renkei_tests::*;
use sea_orm::{EntityTrait, QueryFilter, QuerySelect};
use serde_json::{Value, json};
use uuid::Uuid;

const ADD_MEMBER: &str =
    "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }";
const END_MEMBER: &str =
    "mutation($i: EndCareTeamMembershipInput!) { endCareTeamMembership(input: $i) { id } }";
const WITHDRAW: &str = "mutation($i: WithdrawConsentInput!) { withdrawConsent(input: $i) { id } }";
const OPEN: &str =
    "mutation($i: OpenEmergencyAccessInput!) { openEmergencyAccess(input: $i) { id } }";

/// A small deterministic generator (xorshift64*): the shapes vary, and a
/// failure reproduces.
struct Shapes(u64);

impl Shapes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    /// A random subset of `items`.
    fn some<T: Clone>(&mut self, items: &[T], percent: u64) -> Vec<T> {
        items
            .iter()
            .filter(|_| self.chance(percent))
            .cloned()
            .collect()
    }
}

fn day(app: &TestApp, offset: i64) -> String {
    let t = app.clock.today();
    if offset >= 0 {
        (t + Days::new(offset as u64)).to_string()
    } else {
        (t - Days::new(offset.unsigned_abs())).to_string()
    }
}

/// What the SQL of a scope selects among `ids` (patients' own ids).
async fn selected(
    app: &TestApp,
    scope: &renkei_schema::policy::RowScope,
    ids: &[Uuid],
) -> BTreeSet<Uuid> {
    use entities::patient;
    use sea_orm::ColumnTrait;
    patient::Entity::find()
        .select_only()
        .column(patient::Column::Id)
        .filter(patient::Column::Id.is_in(ids.iter().copied()))
        .filter(scope.on((patient::Entity, patient::Column::Id)))
        .into_tuple::<Uuid>()
        .all(&app.db)
        .await
        .expect("the scope's SQL runs")
        .into_iter()
        .collect()
}

e2e!(
    the_sql_of_list_scopes_agrees_with_the_policys_verdicts,
    |app| async move {
        let mut shapes = Shapes(0x5EED_1234_ABCD_0001);
        // The registrar (on every patient's team, takes the consents); the
        // organisation whose callers are checked; two others.
        let registrar = app.organization("CLINIC", "登録クリニック").await;
        let (_, registrar_doctor) = app.member(&registrar, "PHYSICIAN").await;
        let caller_org = app.organization("CLINIC", "照合クリニック").await;
        let (doctor_id, doctor) = app.member(&caller_org, "PHYSICIAN").await;
        let pharmacy = app.organization("PHARMACY", "照合薬局").await;
        let office = app
            .organization("HOME_CARE_SUPPORT_OFFICE", "照合ケアプラン")
            .await;
        let orgs = [
            caller_org.clone(),
            pharmacy.clone(),
            office.clone(),
            registrar.clone(),
        ];
        let categories: Vec<String> = DataCategory::ALL
            .iter()
            .filter(|c| **c != DataCategory::Consent)
            .map(|c| c.as_str().to_string())
            .collect();

        let mut patients = Vec::new();
        let mut open_later = Vec::new();
        let mut expired = Vec::new();
        let mut pending = 0;
        for i in 0..36 {
            let p = app
                .patient_without_consent(&registrar_doctor, &format!("PR-{i:04}"))
                .await;
            // Some patients never consented (nor has the caller's
            // organisation joined their team).
            let never = i % 9 == 0;
            if !never {
                // A first consent: the team changes only with one.
                app.consent(&registrar_doctor, &p, json!({ "scope": "NETWORK" }))
                    .await;
            }
            // The caller's organisation on the team: not, now, or no longer.
            let membership = if never { 0 } else { shapes.below(3) };
            if membership > 0 {
                let start = day(app, -30);
                let body = app
                    .gql(
                        &registrar_doctor,
                        ADD_MEMBER,
                        json!({ "i": { "patientId": p, "organizationId": caller_org,
                                       "role": "DEPUTY_PHYSICIAN", "startDate": start } }),
                    )
                    .await;
                let id = body["data"]["addCareTeamMember"]["id"].clone();
                assert!(id.is_string(), "membership of shape {membership}: {body}");
                if membership == 2 {
                    app.ok(
                        &registrar_doctor,
                        END_MEMBER,
                        json!({ "i": { "membershipId": id, "endDate": day(app, -1) } }),
                    )
                    .await;
                }
            }
            // The consent in force: none (withdrawn), network-wide (plain or
            // with exclusions), or for listed organisations.
            match if never { 1 } else { shapes.below(5) } {
                0 => {
                    app.ok(
                        &registrar_doctor,
                        WITHDRAW,
                        json!({ "i": { "patientId": p } }),
                    )
                    .await;
                }
                1 => {}
                2 | 3 => {
                    let excluded_orgs = shapes.some(&orgs[..3], 30);
                    let excluded = shapes.some(&categories, 15);
                    app.consent(
                        &registrar_doctor,
                        &p,
                        json!({ "scope": "NETWORK", "organizationIds": excluded_orgs,
                                "excludedCategories": excluded }),
                    )
                    .await;
                }
                _ => {
                    let mut listed = shapes.some(&orgs, 50);
                    if listed.is_empty() {
                        listed.push(registrar.clone());
                    }
                    let excluded = shapes.some(&categories, 15);
                    app.consent(
                        &registrar_doctor,
                        &p,
                        json!({ "scope": "ORGANIZATIONS", "organizationIds": listed,
                                "excludedCategories": excluded }),
                    )
                    .await;
                }
            }
            // A widening recorded by the caller's own organisation: pending
            // (granting nothing) unless the consent in force covers it.
            if membership == 1 && shapes.below(2) == 0 {
                let recorded = app
                    .consent(&doctor, &p, json!({ "scope": "NETWORK" }))
                    .await;
                if recorded["status"] == "PENDING" {
                    pending += 1;
                }
            }
            // Emergency access by the caller organisation's physician: none,
            // open, or open and then expired.
            match shapes.below(4) {
                1 => open_later.push(p.clone()),
                2 => expired.push(p.clone()),
                _ => {}
            }
            patients.push(p);
        }
        assert!(pending > 0, "no pending consent among the shapes");
        for p in &expired {
            open(app, &doctor, p).await;
        }
        // Emergency access lasts 4 hours: these have ended by the check.
        app.clock.advance(Duration::hours(5));
        for p in &open_later {
            open(app, &doctor, p).await;
        }
        let ids: Vec<Uuid> = patients.iter().map(|p| p.parse().unwrap()).collect();

        let policy = Policy {
            matrix: Matrix::default(),
            emergency_duration: Duration::minutes(240),
            emergency_search: Default::default(),
            clock: app.clock.clone(),
        };
        let caller_org: Uuid = caller_org.parse().unwrap();
        let mut principals: Vec<Principal> = Profession::ALL
            .iter()
            .map(|profession| Principal::Member {
                member_id: if *profession == Profession::Physician {
                    doctor_id.parse().unwrap()
                } else {
                    Uuid::now_v7()
                },
                organization_id: caller_org,
                profession: *profession,
            })
            .collect();
        for _ in 0..4 {
            let levels = DataCategory::ALL
                .iter()
                .map(|c| {
                    let level = match shapes.below(3) {
                        0 => AccessLevel::None,
                        1 => AccessLevel::Read,
                        _ => AccessLevel::ReadWrite,
                    };
                    (*c, level)
                })
                .collect::<Vec<_>>();
            principals.push(Principal::System {
                api_key_id: Uuid::now_v7(),
                organization_id: caller_org,
                permissions: SystemPermissions::new(levels),
            });
        }

        let mut reasons: HashMap<String, usize> = HashMap::new();
        let mut compared = 0;
        for principal in &principals {
            let verdicts = policy
                .evaluate(&app.db, principal, &ids)
                .await
                .expect("evaluate");
            // `evaluate` reads its rows through the `known_patients` scope
            // and gives a verdict only where its own reading of the row finds
            // a relationship or emergency access: equal sets mean the SQL
            // lets through no patient the Rust would refuse.
            let known: BTreeSet<Uuid> = verdicts.keys().copied().collect();
            assert_eq!(
                selected(app, &policy.known_patients(principal), &ids).await,
                known,
                "known patients of {principal:?}"
            );
            for category in DataCategory::ALL {
                let expected: BTreeSet<Uuid> = verdicts
                    .iter()
                    .filter_map(|(id, v)| {
                        let access = &v.access;
                        let reason = format!("{:?}", access.grant(*category).reason);
                        *reasons.entry(reason).or_default() += 1;
                        access.may_read(*category).then_some(*id)
                    })
                    .collect();
                let got = match policy.readable_rows(principal, *category) {
                    Some(scope) => selected(app, &scope, &ids).await,
                    None => BTreeSet::new(),
                };
                assert_eq!(got, expected, "{category} for {principal:?}");
                compared += 1;
            }
        }
        // The shapes reach every reason the verdict can give, so the
        // comparison covered each branch of the rule.
        for reason in [
            AccessReason::Permitted,
            AccessReason::NotPermittedForRole,
            AccessReason::NoConsent,
            AccessReason::ExcludedByConsent,
            AccessReason::EmergencyAccess,
            AccessReason::NotAnEmergencyCategory,
        ] {
            assert!(
                reasons.get(&format!("{reason:?}")).copied().unwrap_or(0) > 0,
                "no verdict with {reason:?}: {reasons:?}"
            );
        }
        assert!(compared > 500);
    }
);

async fn open(app: &TestApp, token: &str, patient: &str) {
    let body: Value = app
        .gql(
            token,
            OPEN,
            json!({ "i": { "patientId": patient, "reason": "救急搬送中の確認" } }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
}

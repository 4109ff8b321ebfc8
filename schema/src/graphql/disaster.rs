//! 災害時要配慮者名簿 in GraphQL (issue 14 part 4, `docs/disaster-register.md`):
//! the register of medically dependent patients, for municipal staff of
//! their own municipality and for care teams, each listed patient audited.

use async_graphql::{
    Context, ID, Result, SimpleObject,
    connection::{Connection, Edge, EmptyFields},
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::types::{Organization, load_organization};
use super::{Date, ctx_db, ctx_policy, ctx_request, ctx_trail};
use crate::domain::{DataCategory, Municipality, OrganizationKind};
use crate::error::ApiError;
use crate::records::RecordKind;
use crate::services::disaster::{self, Entry, MedicalDependency};

/// Page size when `first` is not given, and the most a page may hold.
const PAGE: i32 = 100;
const PAGE_MAX: i32 = 500;
/// The most one `complete` answer holds (the CSV export).
pub const COMPLETE_MAX: i32 = 10_000;

/// One dependency of a listed patient.
#[derive(SimpleObject)]
pub struct MedicalDependencyEvidence {
    pub dependency: MedicalDependency,
    /// 「在宅酸素療法」.
    pub label: &'static str,
    /// The kinds of record it was derived from (never their content).
    pub sources: Vec<RecordKind>,
    /// Since when the records say so.
    pub since: DateTime<Utc>,
}

/// One patient of the disaster register: who, where, what they depend on,
/// and whom to call. Address and telephone are null where the consent does
/// not share CONTACTS; the care manager and primary physician where it
/// does not share CARE_TEAM.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct DisasterRegisterEntry {
    pub patient_id: ID,
    pub name: String,
    pub name_kana: String,
    pub birth_date: Date,
    pub sex: String,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub dependencies: Vec<MedicalDependencyEvidence>,
    #[graphql(skip)]
    care_manager: Option<Uuid>,
    #[graphql(skip)]
    primary_physician: Option<Uuid>,
}

#[async_graphql::ComplexObject]
impl DisasterRegisterEntry {
    /// The care manager's organisation (居宅介護支援事業所).
    async fn care_manager(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        match self.care_manager {
            Some(id) => Ok(Some(load_organization(ctx, id).await?)),
            None => Ok(None),
        }
    }
    /// The primary physician's organisation.
    async fn primary_physician(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        match self.primary_physician {
            Some(id) => Ok(Some(load_organization(ctx, id).await?)),
            None => Ok(None),
        }
    }
}

impl From<Entry> for DisasterRegisterEntry {
    fn from(e: Entry) -> Self {
        let p = e.patient;
        DisasterRegisterEntry {
            patient_id: ID(p.id.to_string()),
            name: p.name,
            name_kana: p.name_kana,
            birth_date: Date(p.birth_date),
            sex: p.sex,
            address: p.address.filter(|_| e.contacts_shared),
            phone: p.phone.filter(|_| e.contacts_shared),
            dependencies: e
                .dependencies
                .into_iter()
                .map(|d| MedicalDependencyEvidence {
                    label: d.dependency.label(),
                    dependency: d.dependency,
                    sources: d.sources,
                    since: d.since,
                })
                .collect(),
            care_manager: e.care_manager,
            primary_physician: e.primary_physician,
        }
    }
}

/// `Query.disasterRegister`.
pub async fn register(
    ctx: &Context<'_>,
    municipality: Option<String>,
    dependencies: Vec<MedicalDependency>,
    first: Option<i32>,
    after: Option<String>,
    complete: bool,
) -> Result<Connection<String, DisasterRegisterEntry, EmptyFields, EmptyFields>> {
    let req = ctx_request(ctx)?;
    let municipality = Municipality::parse_opt("municipality", municipality.as_deref())?;
    if let Some(m) = &municipality {
        crate::services::organizations::require_served(ctx_db(ctx), m).await?;
    }
    let municipality = municipality.map(Municipality::into_inner);
    let max = if complete { COMPLETE_MAX } else { PAGE_MAX };
    let (first, after) = super::inputs::id_page(first, after.as_deref(), PAGE, max)?;
    let db = ctx_db(ctx);
    let policy = ctx_policy(ctx);
    let caller = crate::services::organizations::by_ids(db, &[req.principal.organization_id()])
        .await?
        .remove(&req.principal.organization_id());
    let scope = policy.disaster_register_scope(
        &req.principal,
        caller
            .as_ref()
            .and_then(|o| OrganizationKind::parse(&o.kind)),
        caller.as_ref().and_then(|o| o.municipality.as_deref()),
        municipality.as_deref(),
    )?;
    let entries = disaster::register(db, &scope, policy.clock.today(), &dependencies).await?;
    let rest: Vec<Entry> = entries
        .into_iter()
        .filter(|e| after.is_none_or(|a| e.patient.id > a))
        .collect();
    let more = rest.len() > first as usize;
    // Refused before any person is sent — but the refusal says the
    // register lists more than `first` from the cursor on, which stepping
    // the cursor turns into an answer about people: recorded, naming none.
    if complete && more {
        ctx_trail(ctx)?.denied(
            None,
            &[DataCategory::Identity],
            format!(
                "disaster register (災害時要配慮者名簿) refused as incomplete: more than {first} people from {}",
                after.map_or_else(|| "the start".to_string(), |a| format!("after {a}"))
            ),
        );
        return Err(ApiError::bad_input(
            "first",
            format!(
                "the register lists more than {first} people: name a municipality or dependencies, or page through it"
            ),
        )
        .into());
    }
    let trail = ctx_trail(ctx)?;
    let detail = match &scope.over {
        crate::policy::RegisterOver::Municipality { municipality, .. } => {
            format!("disaster register (災害時要配慮者名簿) of {municipality}, as its municipality")
        }
        crate::policy::RegisterOver::CareTeams { municipality, .. } => format!(
            "disaster register (災害時要配慮者名簿) of the organisation's care teams{}",
            municipality
                .as_deref()
                .map(|m| format!(" in {m}"))
                .unwrap_or_default()
        ),
    };
    let mut page = Connection::new(after.is_some(), more);
    for e in rest.into_iter().take(first as usize) {
        trail.register_read(e.patient.id, &e.categories(), detail.clone());
        page.edges.push(Edge::new(
            super::inputs::id_cursor(e.patient.id),
            DisasterRegisterEntry::from(e),
        ));
    }
    Ok(page)
}

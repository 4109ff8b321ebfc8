//! DataLoaders: batch the lookups that resolvers make per object, so a list of
//! N objects costs a fixed number of queries, not N. They live in the schema's
//! data without a cache (async-graphql's default), so they batch concurrent
//! loads but never serve stale rows across requests.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::domain::Capability;
use crate::error::ApiError;
use crate::policy::{PatientAccess, Policy};
use crate::principal::Principal;
use crate::services::{care_team, members, organizations, patients};
use entities::{care_team_membership, member, organization, patient, patient_identifier};

pub struct Loaders {
    pub organization: DataLoader<OrganizationLoader>,
    pub capabilities: DataLoader<CapabilityLoader>,
    pub member: DataLoader<MemberLoader>,
    pub org_members: DataLoader<OrgMembersLoader>,
    pub patient: DataLoader<PatientLoader>,
    pub identifiers: DataLoader<IdentifiersLoader>,
    pub care_team: DataLoader<CareTeamLoader>,
    pub access: DataLoader<AccessLoader>,
    pub summary: DataLoader<SummaryLoader>,
}

impl Loaders {
    /// `window` is how long a loader collects keys before it queries: the
    /// loads of one level of a query (every patient's summary) arrive within
    /// it and become one statement.
    pub fn new(db: DatabaseConnection, policy: Arc<Policy>, window: std::time::Duration) -> Self {
        fn dl<L: Loader<K>, K: Send + Sync + std::hash::Hash + Eq + Clone + 'static>(
            l: L,
            window: std::time::Duration,
        ) -> DataLoader<L> {
            DataLoader::new(l, tokio::spawn).delay(window)
        }
        Loaders {
            organization: dl(OrganizationLoader(db.clone()), window),
            capabilities: dl(CapabilityLoader(db.clone()), window),
            member: dl(MemberLoader(db.clone()), window),
            org_members: dl(OrgMembersLoader(db.clone()), window),
            patient: dl(PatientLoader(db.clone()), window),
            identifiers: dl(IdentifiersLoader(db.clone()), window),
            care_team: dl(CareTeamLoader(db.clone(), policy.clock.clone()), window),
            summary: dl(SummaryLoader(db.clone()), window),
            access: dl(AccessLoader { db, policy }, window),
        }
    }
}

macro_rules! by_id_loader {
    ($name:ident, $key:ty, $value:ty, |$db:ident, $keys:ident| $body:expr) => {
        pub struct $name(DatabaseConnection);

        impl Loader<$key> for $name {
            type Value = $value;
            type Error = ApiError;

            async fn load(
                &self,
                $keys: &[$key],
            ) -> Result<HashMap<$key, Self::Value>, Self::Error> {
                let $db = &self.0;
                $body
            }
        }
    };
}

by_id_loader!(OrganizationLoader, Uuid, organization::Model, |db, keys| {
    organizations::by_ids(db, keys).await
});
by_id_loader!(CapabilityLoader, Uuid, Vec<Capability>, |db, keys| {
    organizations::capabilities_of(db, keys).await
});
by_id_loader!(MemberLoader, Uuid, member::Model, |db, keys| {
    members::by_ids(db, keys).await
});
by_id_loader!(OrgMembersLoader, Uuid, Vec<member::Model>, |db, keys| {
    members::of_organizations(db, keys).await
});
// The summary's candidate records of many patients: one query.
by_id_loader!(
    SummaryLoader,
    Uuid,
    Vec<entities::record::Model>,
    |db, keys| crate::services::records::summary_candidates(db, keys).await
);
by_id_loader!(PatientLoader, Uuid, patient::Model, |db, keys| {
    patients::by_ids(db, keys).await
});
by_id_loader!(
    IdentifiersLoader,
    Uuid,
    Vec<patient_identifier::Model>,
    |db, keys| patients::identifiers_of(db, keys).await
);

/// Key: (patient id, include ended memberships). "Active" is judged on the
/// policy clock's today.
pub struct CareTeamLoader(DatabaseConnection, SharedClock);

impl Loader<(Uuid, bool)> for CareTeamLoader {
    type Value = Vec<care_team_membership::Model>;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[(Uuid, bool)],
    ) -> Result<HashMap<(Uuid, bool), Self::Value>, ApiError> {
        let mut out = HashMap::new();
        let today = self.1.today();
        for include_ended in [false, true] {
            let ids: Vec<Uuid> = keys
                .iter()
                .filter(|(_, e)| *e == include_ended)
                .map(|(id, _)| *id)
                .collect();
            if ids.is_empty() {
                continue;
            }
            for (id, rows) in care_team::of_patients(&self.0, &ids, include_ended, today).await? {
                out.insert((id, include_ended), rows);
            }
        }
        Ok(out)
    }
}

/// The policy's verdicts, batched: one [`Policy::evaluate`] per distinct caller
/// among the keys. Absent keys mean "the caller may not know of the patient".
pub struct AccessLoader {
    db: DatabaseConnection,
    policy: Arc<Policy>,
}

impl Loader<(Principal, Uuid)> for AccessLoader {
    type Value = PatientAccess;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[(Principal, Uuid)],
    ) -> Result<HashMap<(Principal, Uuid), PatientAccess>, ApiError> {
        let mut by_principal: HashMap<&Principal, Vec<Uuid>> = HashMap::new();
        for (principal, id) in keys {
            by_principal.entry(principal).or_default().push(*id);
        }
        let mut out = HashMap::new();
        for (principal, ids) in by_principal {
            for (id, access) in self.policy.evaluate(&self.db, principal, &ids).await? {
                out.insert((principal.clone(), id), access);
            }
        }
        Ok(out)
    }
}

//! DataLoaders: batch the lookups that resolvers make per object, so a list of
//! N objects costs a fixed number of queries, not N. They live in the schema's
//! data without a cache (async-graphql's default), so they batch concurrent
//! loads but never serve stale rows across requests.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::domain::Capability;
use crate::error::ApiError;
use crate::policy::{self, PatientAccess};
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
}

impl Loaders {
    pub fn new(db: DatabaseConnection) -> Self {
        fn dl<L: Loader<K>, K: Send + Sync + std::hash::Hash + Eq + Clone + 'static>(
            l: L,
        ) -> DataLoader<L> {
            DataLoader::new(l, tokio::spawn)
        }
        Loaders {
            organization: dl(OrganizationLoader(db.clone())),
            capabilities: dl(CapabilityLoader(db.clone())),
            member: dl(MemberLoader(db.clone())),
            org_members: dl(OrgMembersLoader(db.clone())),
            patient: dl(PatientLoader(db.clone())),
            identifiers: dl(IdentifiersLoader(db.clone())),
            care_team: dl(CareTeamLoader(db.clone())),
            access: dl(AccessLoader(db)),
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
by_id_loader!(PatientLoader, Uuid, patient::Model, |db, keys| {
    patients::by_ids(db, keys).await
});
by_id_loader!(
    IdentifiersLoader,
    Uuid,
    Vec<patient_identifier::Model>,
    |db, keys| patients::identifiers_of(db, keys).await
);

// Key: (patient id, include ended memberships).
by_id_loader!(
    CareTeamLoader,
    (Uuid, bool),
    Vec<care_team_membership::Model>,
    |db, keys| {
        let mut out = HashMap::new();
        for include_ended in [false, true] {
            let ids: Vec<Uuid> = keys
                .iter()
                .filter(|(_, e)| *e == include_ended)
                .map(|(id, _)| *id)
                .collect();
            if ids.is_empty() {
                continue;
            }
            for (id, rows) in care_team::of_patients(db, &ids, include_ended).await? {
                out.insert((id, include_ended), rows);
            }
        }
        Ok(out)
    }
);

// The policy's patient check, batched: one call of `policy::patients` per
// distinct caller among the keys. Absent keys mean "no access".
by_id_loader!(
    AccessLoader,
    (Principal, Uuid),
    PatientAccess,
    |db, keys| {
        let mut by_principal: HashMap<&Principal, Vec<Uuid>> = HashMap::new();
        for (principal, id) in keys {
            by_principal.entry(principal).or_default().push(*id);
        }
        let mut out = HashMap::new();
        for (principal, ids) in by_principal {
            for access in policy::patients(db, principal, &ids).await? {
                out.insert((principal.clone(), access.patient_id()), access);
            }
        }
        Ok(out)
    }
);

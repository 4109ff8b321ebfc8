//! DataLoaders: batch the lookups that resolvers make per object, so a list of
//! N objects costs a fixed number of queries, not N. They live in the schema's
//! data, shared by concurrent requests: loads of many requests arriving within
//! the batching window become one statement.
//!
//! Patient data is never cached: those loaders batch but never serve a row
//! across requests. The directory — organisations and members, which change
//! rarely and only through administrators — is cached for a short time
//! ([`Cached`]): a summary names the care team's organisations and members,
//! and authentication reads the caller's member row, on every request. A
//! change on this instance clears the cache at once; other instances clear
//! theirs on the [`HubEvent::MemberChanged`](crate::events::HubEvent) event
//! (relayed through Redis), or at the latest when the entry expires.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;

use super::batching::{Adaptive, InFlight};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::cache::TtlCache;
use crate::clock::SharedClock;
use crate::domain::Capability;
use crate::error::ApiError;
use crate::policy::{Policy, Verdict};
use crate::principal::Principal;
use crate::services::{care_team, members, organizations, patients};
use entities::{
    admission_sheet, care_team_membership, discharge_notice, discharge_notice_version, member,
    organization, patient_identifier, record,
};

/// The member loader, shared with authentication.
pub type MemberDataLoader = Cached<MemberLoader>;

pub struct Loaders {
    pub organization: Cached<OrganizationLoader>,
    pub capabilities: Adaptive<CapabilityLoader>,
    pub member: Arc<MemberDataLoader>,
    pub org_members: Adaptive<OrgMembersLoader>,
    pub identifiers: Adaptive<IdentifiersLoader>,
    pub care_team: Adaptive<CareTeamLoader>,
    pub access: Adaptive<AccessLoader>,
    pub summary: Adaptive<SummaryLoader>,
    pub notice_history: Adaptive<NoticeHistoryLoader>,
    pub earlier_versions: Adaptive<EarlierVersionsLoader>,
    /// Records, admission sheets and discharge notices by id: references
    /// to them (a correction, a gateway's `_entities`) batch here before
    /// the policy judges each one's patient.
    pub record: Adaptive<RecordLoader>,
    pub admission_sheet: Adaptive<AdmissionSheetLoader>,
    pub discharge_notice: Adaptive<DischargeNoticeLoader>,
}

impl Loaders {
    /// `window` is how long a loader collects keys before it queries: the
    /// loads of one level of a query (every patient's summary) arrive within
    /// it and become one statement.
    /// `directory_ttl` is how long organisations and members are cached.
    pub fn new(
        db: DatabaseConnection,
        policy: Arc<Policy>,
        window: std::time::Duration,
        directory_ttl: std::time::Duration,
        in_flight: InFlight,
    ) -> Self {
        fn dl<L: Send + Sync + 'static>(
            l: L,
            window: std::time::Duration,
            in_flight: &InFlight,
        ) -> Adaptive<L> {
            Adaptive::new(l, window, in_flight.clone())
        }
        Loaders {
            organization: Cached::new(
                OrganizationLoader(db.clone()),
                window,
                directory_ttl,
                in_flight.clone(),
            ),
            capabilities: dl(CapabilityLoader(db.clone()), window, &in_flight),
            member: Arc::new(Cached::new(
                MemberLoader(db.clone()),
                window,
                directory_ttl,
                in_flight.clone(),
            )),
            org_members: dl(OrgMembersLoader(db.clone()), window, &in_flight),
            identifiers: dl(IdentifiersLoader(db.clone()), window, &in_flight),
            care_team: dl(
                CareTeamLoader(db.clone(), policy.clock.clone()),
                window,
                &in_flight,
            ),
            summary: dl(
                SummaryLoader(db.clone(), policy.clock.clone()),
                window,
                &in_flight,
            ),
            notice_history: dl(NoticeHistoryLoader(db.clone()), window, &in_flight),
            earlier_versions: dl(EarlierVersionsLoader(db.clone()), window, &in_flight),
            record: dl(RecordLoader(db.clone()), window, &in_flight),
            admission_sheet: dl(AdmissionSheetLoader(db.clone()), window, &in_flight),
            discharge_notice: dl(DischargeNoticeLoader(db.clone()), window, &in_flight),
            access: dl(AccessLoader { db, policy }, window, &in_flight),
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
/// The summary's candidate records of many patients: one query, each row
/// parsed once and shared by the summary's parts; records whose last day in
/// force passed before the policy clock's today are not read.
pub struct SummaryLoader(DatabaseConnection, SharedClock);

impl Loader<Uuid> for SummaryLoader {
    type Value = Arc<super::records::SummaryCandidates>;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, ApiError> {
        let mut out = HashMap::new();
        let today = self.1.today();
        for (patient, rows) in
            crate::services::records::summary_candidates(&self.0, keys, today).await?
        {
            // A row that does not read (its data changed in the database,
            // a kind this build does not know) fails the parts of its kind
            // only — logged here, with its cause — not every part of every
            // patient of the batch: a corrupted lab result must not blank
            // the allergies of an emergency sheet.
            let mut candidates = super::records::SummaryCandidates::default();
            for row in rows {
                let kind = crate::records::RecordKind::from_db(&row.kind).ok();
                // Read from its column, without the data: a part fails for
                // a row its reader may read only (an unreadable category
                // fails it for anyone).
                let category = crate::domain::DataCategory::from_db(&row.category).ok();
                let id = row.id;
                match super::records::Record::new(row) {
                    Ok(record) => candidates.records.push(record),
                    Err(e) => {
                        tracing::error!(record = %id, error = ?e, "a stored record does not read; the summary's parts of its kind fail");
                        if let Some(kind) = kind {
                            candidates.unreadable.push((kind, category));
                        }
                    }
                }
            }
            out.insert(patient, Arc::new(candidates));
        }
        Ok(out)
    }
}
// The earlier versions of discharge notices, each notice's newest first: a
// page of notices showing their history costs one query, not one per notice.
// Keyed by notice id; the notice itself was read under the policy.
by_id_loader!(
    NoticeHistoryLoader,
    Uuid,
    Vec<discharge_notice_version::Model>,
    |db, keys| crate::services::admission_discharge::notices::versions_of(db, keys).await
);
// The earlier versions of records, each record's oldest first, for the
// versions a caller sees (number, history, time and author): a page of
// records costs one query, not one per record.
by_id_loader!(
    EarlierVersionsLoader,
    Uuid,
    Vec<entities::record_version::Model>,
    |db, keys| crate::services::records::earlier_versions(db, keys).await
);
by_id_loader!(RecordLoader, Uuid, record::Model, |db, keys| {
    crate::services::records::by_ids(db, keys).await
});
by_id_loader!(
    AdmissionSheetLoader,
    Uuid,
    admission_sheet::Model,
    |db, keys| crate::services::admission_discharge::sheets::by_ids(db, keys).await
);
by_id_loader!(
    DischargeNoticeLoader,
    Uuid,
    discharge_notice::Model,
    |db, keys| crate::services::admission_discharge::notices::by_ids(db, keys).await
);
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
/// among the keys. Absent keys mean "there is no such patient".
pub struct AccessLoader {
    db: DatabaseConnection,
    policy: Arc<Policy>,
}

impl Loader<(Principal, Uuid)> for AccessLoader {
    type Value = Verdict;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[(Principal, Uuid)],
    ) -> Result<HashMap<(Principal, Uuid), Verdict>, ApiError> {
        let mut by_principal: HashMap<&Principal, Vec<Uuid>> = HashMap::new();
        for (principal, id) in keys {
            by_principal.entry(principal).or_default().push(*id);
        }
        let mut out = HashMap::new();
        for (principal, ids) in by_principal {
            for (id, verdict) in self.policy.evaluate(&self.db, principal, &ids).await? {
                out.insert((principal.clone(), id), verdict);
            }
        }
        Ok(out)
    }
}

impl Loaders {
    /// Forgets the cached directory (organisations and members), after a
    /// change here or on another instance.
    pub fn forget_directory(&self) {
        self.member.clear();
        self.organization.clear();
    }
}

/// The principal of a member, for authentication: the member must exist and
/// be active. Read through the directory cache (see the module comment).
pub async fn member_principal(
    members: &MemberDataLoader,
    member_id: Uuid,
) -> Result<Principal, ApiError> {
    let m = members
        .load_one(member_id)
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("the token's member is not registered".into()))?;
    members::principal_of(&m)
}

/// A loader of directory rows that keeps what it loaded for `ttl`: loads
/// still batch through the DataLoader; hits return at once.
///
/// Clearing is exact: a load that was already reading the database when the
/// cache was cleared (a member suspended meanwhile) does not put its possibly
/// stale row back — every load notes the cache's epoch before it reads, and
/// stores only if no clear happened since.
pub struct Cached<L: Loader<Uuid, Error = ApiError>> {
    loader: Adaptive<L>,
    cache: TtlCache<Uuid, L::Value>,
}

/// Bounds a directory cache's memory; a region has a few thousand members.
const CACHE_MAX: usize = 50_000;

impl<L: Loader<Uuid, Error = ApiError>> Cached<L> {
    fn new(
        loader: L,
        window: std::time::Duration,
        ttl: std::time::Duration,
        in_flight: InFlight,
    ) -> Self {
        Cached {
            loader: Adaptive::new(loader, window, in_flight),
            cache: TtlCache::new(ttl, CACHE_MAX),
        }
    }

    pub async fn load_one(&self, id: Uuid) -> Result<Option<L::Value>, ApiError> {
        let miss = match self.cache.get(&id) {
            Ok(value) => return Ok(Some(value)),
            Err(miss) => miss,
        };
        let loaded = self.loader.load_one(id).await?;
        if let Some(value) = &loaded {
            self.cache.store(miss, id, value.clone());
        }
        Ok(loaded)
    }

    /// Forgets everything, and whatever loads in flight would have stored.
    pub fn clear(&self) {
        self.cache.clear();
    }
}

//! The judgement of an event for every subscription it wakes, at once.
//!
//! An event on a patient wakes every `patientEvents` subscription of the
//! patient (and a notification every `notifications` subscription of its
//! organisation), and each must judge again, from the database, whether its
//! caller's credentials still hold, what the caller may read of the patient
//! now, and whether the event's subject is meant for it (a liaison
//! message's addressing, a record version it can see). Asked one
//! subscription at a time that is three or four statements per subscriber
//! per event: an event took 1–2 s to reach 1,000 subscribers of a patient.
//!
//! Here the subscriptions' questions are gathered over the batching window
//! (DataLoaders without a cache: every answer is read after the event
//! arrived) and answered for all of them together — the callers'
//! credentials in two statements ([`members::recheck_many`]), their
//! verdicts on the patient in four ([`Policy::evaluate_audience`]), the
//! subject's versions or addressing once. Each subscription then applies its
//! own caller's verdict and records its own delivery in its audit trail; the
//! audit writer commits the entries of many subscriptions in one
//! transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::events::{PatientEvent, PatientEventKind};
use crate::policy::{PatientAccess, Policy};
use crate::principal::Principal;
use crate::services::liaison::{self, ThreadReach};
use crate::services::members;
use crate::services::records::{self as record_service, VersionContent};

/// Shared by every subscription of the process (schema data).
pub struct Audience {
    loader: DataLoader<Facts>,
}

impl Audience {
    /// `window`: how long the questions of the subscriptions an event woke
    /// are gathered before they are asked (the loaders' batching window).
    pub fn new(db: DatabaseConnection, policy: Arc<Policy>, window: Duration) -> Self {
        Audience {
            loader: DataLoader::new(Facts { db, policy }, tokio::spawn)
                .delay(window)
                .max_batch_size(10_000),
        }
    }

    /// `Err(UNAUTHENTICATED)` with the reason when the caller's credentials
    /// no longer hold: the member suspended, removed or given another
    /// profession, the API key revoked.
    pub async fn still_active(&self, principal: &Principal) -> ApiResult<()> {
        self.loader
            .load_one(Credentials(principal.clone()))
            .await?
            .unwrap_or_else(|| Err(ApiError::internal("credentials not judged")))
    }

    /// The caller's access to the patient now; `None` when it may not know
    /// of the patient (or the patient does not exist).
    pub async fn access(
        &self,
        principal: &Principal,
        patient_id: Uuid,
    ) -> ApiResult<Option<PatientAccess>> {
        self.loader
            .load_one(Access {
                patient_id,
                principal: principal.clone(),
            })
            .await
    }

    /// What the event's subject says about who may learn of it, read once
    /// for every subscriber.
    pub async fn subject(&self, event: &PatientEvent) -> ApiResult<Subject> {
        Ok(match (event.kind, event.record_version) {
            (PatientEventKind::MessagePosted, _) => Subject::Message(
                self.loader
                    .load_one(Message(event.subject_id))
                    .await?
                    .flatten(),
            ),
            (
                PatientEventKind::RecordWritten
                | PatientEventKind::RecordEnteredInError
                | PatientEventKind::EmergencyInformationUpdated,
                Some(version),
            ) => Subject::RecordVersion(
                self.loader
                    .load_one(RecordVersion(event.subject_id, version))
                    .await?
                    .flatten(),
            ),
            _ => Subject::Open,
        })
    }
}

/// What an event's subject restricts beyond the policy.
pub enum Subject {
    /// Nothing: the category's verdict decides.
    Open,
    /// A liaison message: only for the organisations its thread is
    /// addressed to. `None`: the message no longer exists.
    Message(Option<Arc<ThreadReach>>),
    /// A record's new version: only for callers to whom it is a version —
    /// one that changed something they may read (the rule of
    /// `Record.version`). `None`: no such version.
    RecordVersion(Option<Arc<Vec<VersionContent>>>),
}

impl Subject {
    /// Whether the event is meant for `principal`, reading with `access`.
    pub fn meant_for(&self, principal: &Principal, access: &PatientAccess) -> bool {
        match self {
            Subject::Open => true,
            Subject::Message(reach) => reach
                .as_ref()
                .is_some_and(|a| a.reaches(principal.organization_id())),
            Subject::RecordVersion(versions) => versions
                .as_ref()
                .is_some_and(|v| record_service::is_seen_version(access, v)),
        }
    }
}

struct Facts {
    db: DatabaseConnection,
    policy: Arc<Policy>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Credentials(Principal);

#[derive(Clone, PartialEq, Eq, Hash)]
struct Access {
    patient_id: Uuid,
    principal: Principal,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Message(Uuid);

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct RecordVersion(Uuid, i32);

impl Loader<Credentials> for Facts {
    type Value = ApiResult<()>;
    type Error = ApiError;

    async fn load(&self, keys: &[Credentials]) -> ApiResult<HashMap<Credentials, ApiResult<()>>> {
        let principals: Vec<Principal> = keys.iter().map(|k| k.0.clone()).collect();
        Ok(members::recheck_many(&self.db, &principals)
            .await?
            .into_iter()
            .map(|(p, verdict)| (Credentials(p), verdict))
            .collect())
    }
}

impl Loader<Access> for Facts {
    type Value = PatientAccess;
    type Error = ApiError;

    async fn load(&self, keys: &[Access]) -> ApiResult<HashMap<Access, PatientAccess>> {
        // Usually one patient: the one the event is about.
        let mut by_patient: HashMap<Uuid, Vec<Principal>> = HashMap::new();
        for k in keys {
            by_patient
                .entry(k.patient_id)
                .or_default()
                .push(k.principal.clone());
        }
        let verdicts = futures_util::future::try_join_all(by_patient.into_iter().map(
            |(patient_id, principals)| async move {
                let verdicts = self
                    .policy
                    .evaluate_audience(&self.db, patient_id, &principals)
                    .await?;
                Ok::<_, ApiError>((patient_id, verdicts))
            },
        ))
        .await?;
        let mut out = HashMap::new();
        for (patient_id, verdicts) in verdicts {
            for (principal, access) in verdicts {
                out.insert(
                    Access {
                        patient_id,
                        principal,
                    },
                    access,
                );
            }
        }
        Ok(out)
    }
}

impl Loader<Message> for Facts {
    type Value = Option<Arc<ThreadReach>>;
    type Error = ApiError;

    async fn load(&self, keys: &[Message]) -> ApiResult<HashMap<Message, Self::Value>> {
        let found = futures_util::future::try_join_all(keys.iter().map(|k| async move {
            let reach = liaison::message_reach(&self.db, k.0).await?;
            Ok::<_, ApiError>((*k, reach.map(Arc::new)))
        }))
        .await?;
        Ok(found.into_iter().collect())
    }
}

impl Loader<RecordVersion> for Facts {
    type Value = Option<Arc<Vec<VersionContent>>>;
    type Error = ApiError;

    async fn load(&self, keys: &[RecordVersion]) -> ApiResult<HashMap<RecordVersion, Self::Value>> {
        let found = futures_util::future::try_join_all(keys.iter().map(|k| async move {
            let versions = record_service::versions_until(&self.db, k.0, k.1).await?;
            Ok::<_, ApiError>((*k, versions.map(Arc::new)))
        }))
        .await?;
        Ok(found.into_iter().collect())
    }
}

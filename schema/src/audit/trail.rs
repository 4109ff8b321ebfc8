//! The per-request collector of what was accessed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use uuid::Uuid;

use super::{AuditAction, EntryDraft};
use crate::domain::DataCategory;
use crate::policy::{AccessReason, ConsentAuthority, PatientAccess};
use crate::principal::Principal;

/// Events are merged per (patient, action): a query that reads ten fields of
/// one patient yields one READ entry listing the categories it touched.
/// Refused references ([`AuditTrail::refused`]) are the exception: one entry
/// each.
#[derive(Default)]
pub struct AuditTrail {
    events: Mutex<BTreeMap<Key, Event>>,
}

/// Patient, action, and — for a refused reference only — the reference.
type Key = (Option<Uuid>, AuditAction, Option<String>);

#[derive(Default)]
struct Event {
    categories: BTreeSet<DataCategory>,
    details: BTreeSet<String>,
}

impl AuditTrail {
    pub fn new() -> Self {
        Self::default()
    }

    fn add(
        &self,
        patient: Option<Uuid>,
        action: AuditAction,
        categories: &[DataCategory],
        detail: Option<String>,
    ) {
        self.add_keyed((patient, action, None), categories, detail);
    }

    fn add_keyed(&self, key: Key, categories: &[DataCategory], detail: Option<String>) {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let event = events.entry(key).or_default();
        event.categories.extend(categories.iter().copied());
        if let Some(d) = detail {
            event.details.insert(d);
        }
    }

    /// A read of `category` of the patient `access` is about. A category
    /// that only the caller's emergency access opens is recorded as
    /// `EMERGENCY_READ`, anything else as `READ`: taking the access (not a
    /// patient id) is what lets no read under break-the-glass go unmarked.
    pub fn read(&self, access: &PatientAccess, category: DataCategory) {
        self.read_with(access, category, None);
    }

    /// A [`AuditTrail::read`] worth naming in the entry's detail: the
    /// content of a liaison attachment (a list shows its name; the content
    /// is the file itself), so the log tells which files were opened.
    pub fn read_naming(&self, access: &PatientAccess, category: DataCategory, detail: String) {
        self.read_with(access, category, Some(detail));
    }

    fn read_with(&self, access: &PatientAccess, category: DataCategory, detail: Option<String>) {
        let action = if access.grant(category).reason == AccessReason::EmergencyAccess {
            AuditAction::EmergencyRead
        } else {
            AuditAction::Read
        };
        self.add(Some(access.patient_id()), action, &[category], detail);
    }

    /// A read of the log itself, not tied to one patient; `detail` says what
    /// was asked for (the filter).
    pub fn read_log(&self, detail: String) {
        self.add(
            None,
            AuditAction::Read,
            &[DataCategory::AccessHistory],
            Some(detail),
        );
    }

    /// A statistic over many patients that names none of them (the discharge
    /// lead-time report): no patient on the entry; `detail` says what was
    /// counted, over which scope and period.
    pub fn read_aggregate(&self, category: DataCategory, detail: String) {
        self.add(None, AuditAction::Read, &[category], Some(detail));
    }

    /// The caller resolved the patient itself (its network id and its own
    /// access): recorded even when no field of data is read, so that a lookup
    /// by local ID leaves a trace. Without a care relationship only emergency
    /// access lets the caller know of the patient: `EMERGENCY_READ`.
    pub fn lookup(&self, access: &PatientAccess) {
        let action = if access.has_care_relationship() {
            AuditAction::Read
        } else {
            AuditAction::EmergencyRead
        };
        self.add(Some(access.patient_id()), action, &[], None);
    }

    /// The coordination centre was shown a pending consent of `patient`
    /// under its [`ConsentAuthority`] — not through a care relationship,
    /// which it usually lacks: a read of CONSENT, saying so.
    pub fn consent_review(&self, _authority: &ConsentAuthority, patient: Uuid) {
        self.add(
            Some(patient),
            AuditAction::Read,
            &[DataCategory::Consent],
            Some("consent review by the coordination centre".into()),
        );
    }

    /// A patient listed in the disaster register (災害時要配慮者名簿), with
    /// the categories its entry shows — through the register's own rule
    /// (`Policy::disaster_register_scope`), which for municipal staff is not
    /// a care relationship: a READ naming the patient, saying so in `detail`.
    pub fn register_read(&self, patient: Uuid, categories: &[DataCategory], detail: String) {
        self.add(Some(patient), AuditAction::Read, categories, Some(detail));
    }

    /// An emergency search (救急時の患者検索) that returned `candidate` —
    /// one call per candidate — or, with `None`, returned no one. Only the
    /// candidate's identity is shown: IDENTITY.
    pub fn emergency_search(&self, candidate: Option<Uuid>, detail: String) {
        self.add(
            candidate,
            AuditAction::EmergencySearch,
            &[DataCategory::Identity],
            Some(detail),
        );
    }

    /// Many patients' data taken out together in one request (the bulk
    /// printable emergency sheets): one `EXPORT` entry without a patient,
    /// whose detail is `what` followed by the ids of every patient in
    /// `patients`, and whose categories are those read of these patients
    /// so far in this request. Their own `READ` / `EMERGENCY_READ` entries
    /// stay: each patient's access history still shows the read.
    pub fn export(&self, patients: &[Uuid], what: &str) {
        let exported: BTreeSet<Uuid> = patients.iter().copied().collect();
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let categories: BTreeSet<DataCategory> = events
            .iter()
            .filter(|((patient, action, reference), _)| {
                reference.is_none()
                    && matches!(action, AuditAction::Read | AuditAction::EmergencyRead)
                    && patient.is_some_and(|p| exported.contains(&p))
            })
            .flat_map(|(_, event)| event.categories.iter().copied())
            .collect();
        let ids = patients
            .iter()
            .map(Uuid::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let event = events.entry((None, AuditAction::Export, None)).or_default();
        event.categories.extend(categories);
        event
            .details
            .insert(format!("{what}: {} patients: {ids}", patients.len()));
    }

    pub fn denied(&self, patient: Option<Uuid>, categories: &[DataCategory], reason: String) {
        self.add(patient, AuditAction::Denied, categories, Some(reason));
    }

    /// A refused reference to a patient or to an object bound to one
    /// (`graphql/reach.rs`): a `DENIED` entry of its own for each distinct
    /// `reference` (what the request named: "local ID … of organisation …",
    /// "record …"), whether or not it matched a patient. Merged per patient
    /// instead, the refusals of unknown references (no patient) would fold
    /// into one entry while each hidden patient got its own: a request
    /// naming many local IDs would write — and take — more the more of them
    /// exist.
    pub fn refused(
        &self,
        patient: Option<Uuid>,
        categories: &[DataCategory],
        reference: String,
        reason: String,
    ) {
        self.add_keyed(
            (patient, AuditAction::Denied, Some(reference)),
            categories,
            Some(reason),
        );
    }

    pub fn is_empty(&self) -> bool {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// The entries of this request, for the writer.
    pub fn drain(&self, principal: &Principal, request_id: &str) -> Vec<EntryDraft> {
        let events = std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()));
        let (actor_kind, actor_id) = match principal {
            Principal::Member { member_id, .. } => ("MEMBER", *member_id),
            Principal::System { api_key_id, .. } => ("SYSTEM", *api_key_id),
        };
        events
            .into_iter()
            .map(|((patient_id, action, _), event)| EntryDraft {
                actor_kind,
                actor_id,
                organization_id: principal.organization_id(),
                patient_id,
                action,
                categories: event.categories.into_iter().collect(),
                request_id: request_id.to_string(),
                outcome: if action == AuditAction::Denied {
                    "DENIED"
                } else {
                    "OK"
                },
                detail: if event.details.is_empty() {
                    None
                } else {
                    Some(event.details.into_iter().collect::<Vec<_>>().join("; "))
                },
            })
            .collect()
    }
}

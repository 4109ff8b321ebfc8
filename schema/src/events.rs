//! Events: what happened, for subscribers (GraphQL subscriptions) and for the
//! caches of every instance.
//!
//! Services publish an event *after* the transaction that caused it has
//! committed (an event for a change that rolled back would be a lie). An event
//! carries ids, kinds and a data category only — never patient data: a
//! subscriber's resolver passes the access policy for every event before it
//! tells the caller anything, so an event bus that leaks (Redis, a log line)
//! leaks no clinical content.
//!
//! [`EventBus::publish`] delivers to this instance's subscribers at once and,
//! when a relay is attached (Redis pub/sub, see the server's `redis` module),
//! to every other instance. The relay is best effort: local delivery never
//! waits for it and never fails because of it.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::domain::DataCategory;

crate::domain::domain_enum! {
    /// What happened on a patient.
    pub enum PatientEventKind {
        /// A record was written or corrected (a new version).
        RecordWritten = "RECORD_WRITTEN",
        /// A record was marked entered in error.
        RecordEnteredInError = "RECORD_ENTERED_IN_ERROR",
        /// A liaison message (連絡票) was posted in one of the patient's threads.
        MessagePosted = "MESSAGE_POSTED",
        /// An admission information sheet (入院時情報提供書) was sent to a hospital.
        AdmissionSheetSent = "ADMISSION_SHEET_SENT",
        /// The hospital acknowledged an admission information sheet.
        AdmissionSheetReceived = "ADMISSION_SHEET_RECEIVED",
        /// A discharge notice (退院連絡) was sent or changed.
        DischargeNotice = "DISCHARGE_NOTICE",
        /// A discharge conference (退院前カンファレンス) was proposed, or
        /// someone answered its invitation.
        DischargeConference = "DISCHARGE_CONFERENCE",
        /// Another care conference (サービス担当者会議, a case or an
        /// end-of-life conference) was proposed, answered, cancelled or its
        /// minutes recorded.
        CareConference = "CARE_CONFERENCE",
        /// The emergency information (救急医療情報) was registered or updated.
        EmergencyInformationUpdated = "EMERGENCY_INFORMATION_UPDATED",
        /// Someone opened break-the-glass emergency access.
        EmergencyAccessOpened = "EMERGENCY_ACCESS_OPENED",
    }
}

/// Something new on one patient. Subscribers of the patient see it only if
/// they may read `category` at the moment it is delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientEvent {
    pub patient_id: Uuid,
    #[serde(with = "db_name")]
    pub kind: PatientEventKind,
    /// What the event is about: the record, message, sheet, notice … id.
    pub subject_id: Uuid,
    /// The category the subject is governed by.
    #[serde(with = "db_name")]
    pub category: DataCategory,
    /// The organisation whose member or system caused it.
    pub organization_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// For an event about a record: the version written (the hub's own
    /// number). A subscriber is told only of a version that changed
    /// something it may read (`services::records::is_seen_version`). Absent
    /// from events of other subjects, and of instances that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_version: Option<i32>,
}

/// A notification row was created (for an organisation, or one of its members).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationEvent {
    pub notification_id: Uuid,
    pub organization_id: Uuid,
    /// Set when the notification is for one member, not the whole organisation.
    pub member_id: Option<Uuid>,
    pub patient_id: Option<Uuid>,
}

/// Everything the bus carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HubEvent {
    Patient(PatientEvent),
    Notification(NotificationEvent),
    /// The patient's consent, emergency-access objection or care team changed:
    /// open subscriptions on the patient re-check their access at once.
    AccessChanged {
        patient_id: Uuid,
    },
    /// A member's status changed (suspended, reactivated): caches of the
    /// member drop it, and the member's subscriptions re-check.
    MemberChanged {
        member_id: Uuid,
    },
    /// An API key was revoked: every instance forgets it at once.
    ApiKeyRevoked {
        api_key_id: Uuid,
    },
    /// Events between instances were lost: this instance's link to the relay
    /// came back after an outage (delivered locally only), or another
    /// instance had to drop events it could not relay (sent by that instance
    /// through the relay). Caches empty themselves and subscriptions re-check
    /// access, as if every patient's access had changed.
    RelayRecovered,
}

impl HubEvent {
    /// Whether the event says that `principal`'s own credentials changed (its
    /// member's status, its API key): its sessions and subscriptions check
    /// them again.
    pub fn is_about_credentials_of(&self, principal: &crate::principal::Principal) -> bool {
        use crate::principal::Principal;
        match (self, principal) {
            (HubEvent::MemberChanged { member_id }, Principal::Member { member_id: me, .. }) => {
                member_id == me
            }
            (
                HubEvent::ApiKeyRevoked { api_key_id },
                Principal::System {
                    api_key_id: mine, ..
                },
            ) => api_key_id == mine,
            _ => false,
        }
    }
}

mod db_name {
    //! Enumerations travel as their database names, like everywhere else.
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub trait DbName: Sized + Copy {
        fn name(self) -> &'static str;
        fn from_name(s: &str) -> Option<Self>;
    }
    impl DbName for crate::domain::DataCategory {
        fn name(self) -> &'static str {
            self.as_str()
        }
        fn from_name(s: &str) -> Option<Self> {
            Self::parse(s)
        }
    }
    impl DbName for super::PatientEventKind {
        fn name(self) -> &'static str {
            self.as_str()
        }
        fn from_name(s: &str) -> Option<Self> {
            Self::parse(s)
        }
    }

    pub fn serialize<T: DbName, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.name())
    }
    pub fn deserialize<'de, T: DbName, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let s = String::deserialize(d)?;
        T::from_name(&s).ok_or_else(|| D::Error::custom(format!("unknown value {s:?}")))
    }
}

/// Where events go beyond this instance (Redis pub/sub in the server). It
/// must not block: it queues and returns.
pub trait EventRelay: Send + Sync + 'static {
    fn relay(&self, event: &HubEvent);
}

/// How many events a slow subscriber may fall behind before it misses some
/// (it is told so, see the subscription resolvers).
const LOCAL_BUFFER: usize = 1024;

/// The process's event bus. Cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    local: broadcast::Sender<Arc<HubEvent>>,
    relay: Arc<OnceLock<Arc<dyn EventRelay>>>,
    /// Counters for the metrics: events delivered to this instance's bus,
    /// and events subscribers missed because they fell behind.
    counts: Arc<BusCounts>,
}

#[derive(Default)]
struct BusCounts {
    delivered: std::sync::atomic::AtomicU64,
    missed: std::sync::atomic::AtomicU64,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (local, _) = broadcast::channel(LOCAL_BUFFER);
        EventBus {
            local,
            relay: Arc::new(OnceLock::new()),
            counts: Arc::default(),
        }
    }

    /// Attaches the relay to other instances (once, at start).
    pub fn set_relay(&self, relay: Arc<dyn EventRelay>) {
        if self.relay.set(relay).is_err() {
            tracing::warn!("an event relay was already attached; the second is ignored");
        }
    }

    /// Publishes an event of this instance: to local subscribers and, through
    /// the relay, to every other instance. Call it after the commit.
    pub fn publish(&self, event: HubEvent) {
        if let Some(relay) = self.relay.get() {
            relay.relay(&event);
        }
        self.deliver_local(event);
    }

    pub fn publish_all(&self, events: impl IntoIterator<Item = HubEvent>) {
        for e in events {
            self.publish(e);
        }
    }

    /// Delivers an event to this instance's subscribers only: what the relay
    /// calls with events that other instances published.
    pub fn deliver_local(&self, event: HubEvent) {
        // An error only means nobody listens right now.
        let _ = self.local.send(Arc::new(event));
        self.counts
            .delivered
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Records that a subscriber fell behind and missed `count` events.
    pub fn note_missed(&self, count: u64) {
        self.counts
            .missed
            .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
    }

    /// Events delivered to this instance's bus since the start (its own
    /// and, through the relay, other instances').
    pub fn delivered(&self) -> u64 {
        self.counts
            .delivered
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Events subscribers missed because they fell behind, since the start.
    pub fn missed(&self) -> u64 {
        self.counts
            .missed
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every event from now on, of this instance and (with a relay) of the others.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<HubEvent>> {
        self.local.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_travel_as_json_with_database_names() {
        let e = HubEvent::Patient(PatientEvent {
            patient_id: Uuid::nil(),
            kind: PatientEventKind::MessagePosted,
            subject_id: Uuid::nil(),
            category: DataCategory::LiaisonMessages,
            organization_id: Uuid::nil(),
            occurred_at: DateTime::from_timestamp(0, 0).unwrap(),
            record_version: None,
        });
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains("\"MESSAGE_POSTED\"") && json.contains("\"LIAISON_MESSAGES\""));
        assert_eq!(serde_json::from_str::<HubEvent>(&json).unwrap(), e);
        assert!(serde_json::from_str::<HubEvent>(&json.replace("MESSAGE_POSTED", "NOPE")).is_err());
    }

    #[tokio::test]
    async fn a_published_event_reaches_local_subscribers() {
        let bus = EventBus::new();
        let mut rx = bus.subscribe();
        bus.publish(HubEvent::AccessChanged {
            patient_id: Uuid::nil(),
        });
        assert_eq!(
            *rx.recv().await.unwrap(),
            HubEvent::AccessChanged {
                patient_id: Uuid::nil()
            }
        );
    }
}

//! Subscriptions (GraphQL over WebSocket, `graphql-transport-ws` or the
//! legacy `graphql-ws`): events on one patient, and the caller's
//! notifications.
//!
//! The access policy applies to every event delivered, not only to the
//! subscription: before each event the caller's access to the patient is
//! evaluated again (from the database, so a consent withdrawn on any instance
//! counts at once), and an event of a category the caller may not read is not
//! delivered. The subscriptions one event wakes are judged together, in a
//! few statements for all of them ([`super::audience`]). When the caller loses the patient altogether — consent
//! withdrawn, its organisation off the care team, its account suspended — the
//! subscription ends with an `ACCESS_ENDED` error that says why. The events
//! that change access (`AccessChanged`, `MemberChanged`, a relay that comes
//! back after an outage) make every subscription re-check at once, without
//! waiting for the next event on the patient.
//!
//! Each delivered event is recorded in the subscription's audit trail; the
//! server's audit extension writes the entries before the event leaves (see
//! `audit_extension.rs`).

use std::sync::Arc;

use async_graphql::{Context, ID, Object, Result, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use sea_orm::DatabaseConnection;
use tokio::sync::broadcast::{self, error::RecvError};
use uuid::Uuid;

use super::audience::Audience;
use super::inputs::parse_id;
use super::types::{Notification, Organization, load_organization};
use super::{ctx_db, ctx_events, ctx_request, ctx_trail, patient_access};
use crate::audit::AuditTrail;
use crate::domain::{AccessLevel, DataCategory};
use crate::error::ApiError;
use crate::events::{HubEvent, PatientEvent, PatientEventKind};
use crate::policy::PatientAccess;
use crate::principal::Principal;
use crate::services::notifications;

/// The root subscription.
#[derive(Default)]
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Events on one patient, as they happen, on every instance of the hub:
    /// records written, liaison messages, admission sheets, discharge notices
    /// and conferences, emergency information, emergency access opened. Only
    /// events of categories the caller may read at that moment are delivered;
    /// `kinds` narrows them further. Refused at once (`NOT_FOUND`, or
    /// `FORBIDDEN` with the reason) when the caller may read nothing of the
    /// patient; ends with `ACCESS_ENDED` when the caller loses access.
    async fn patient_events(
        &self,
        ctx: &Context<'_>,
        patient_id: ID,
        #[graphql(default, desc = "Only these kinds; empty: every kind.")] kinds: Vec<
            PatientEventKind,
        >,
    ) -> Result<impl Stream<Item = Result<PatientEventObject>> + use<>> {
        let patient_id = parse_id("patientId", &patient_id)?;
        let watch = Watch::start(ctx)?;
        let access = patient_access(ctx, patient_id).await?;
        if let Some(why) = nothing_readable(&access) {
            ctx_trail(ctx)?.denied(Some(patient_id), &[], why.clone());
            return Err(ApiError::Forbidden(why).into());
        }
        Ok(futures_util::stream::unfold(
            PatientStream {
                watch,
                patient_id,
                kinds,
                ended: false,
            },
            PatientStream::next,
        ))
    }

    /// Your notifications as they are created (your organisation's and those
    /// addressed to you), on every instance of the hub. A notification about
    /// a patient your organisation can no longer see is not delivered.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<Notification>> + use<>> {
        let watch = Watch::start(ctx)?;
        Ok(futures_util::stream::unfold(
            NotificationStream {
                watch,
                ended: false,
            },
            NotificationStream::next,
        ))
    }
}

/// Why a caller with a verdict on the patient may still receive nothing:
/// no category that events are about is readable (no consent, say).
fn nothing_readable(access: &PatientAccess) -> Option<String> {
    let readable = access
        .grants()
        .any(|(c, g)| g.level >= AccessLevel::Read && c != DataCategory::Consent);
    if readable {
        return None;
    }
    let reason = access.grant(DataCategory::CareTeam).reason;
    Some(format!(
        "you may read nothing of this patient, so no event would reach you: {}",
        reason.explain(DataCategory::CareTeam)
    ))
}

/// What every subscription stream holds: the caller, the bus, and what it
/// needs to judge access again.
struct Watch {
    principal: Principal,
    rx: broadcast::Receiver<Arc<HubEvent>>,
    /// Where missed events are counted (the metrics).
    bus: crate::events::EventBus,
    db: DatabaseConnection,
    /// Judges the subscriptions an event wakes together.
    audience: Arc<Audience>,
    trail: Arc<AuditTrail>,
}

impl Watch {
    fn start(ctx: &Context<'_>) -> Result<Self, ApiError> {
        Ok(Watch {
            principal: ctx_request(ctx)?.principal.clone(),
            // Subscribe before the access check, so nothing that happens
            // in between is missed.
            rx: ctx_events(ctx).subscribe(),
            bus: ctx_events(ctx).clone(),
            db: ctx_db(ctx).clone(),
            audience: ctx.data_unchecked::<Arc<Audience>>().clone(),
            trail: ctx
                .data_opt::<Arc<AuditTrail>>()
                .cloned()
                .ok_or_else(|| ApiError::internal("subscription without an audit trail"))?,
        })
    }

    /// The caller's current access to a patient, from the database.
    async fn access(&self, patient_id: Uuid) -> Result<Option<PatientAccess>, ApiError> {
        self.audience.access(&self.principal, patient_id).await
    }

    /// `Err(why)` when the caller's credentials no longer hold: the member
    /// suspended (or removed), the API key revoked.
    async fn caller_still_active(&self) -> Result<(), ApiError> {
        self.audience
            .still_active(&self.principal)
            .await
            .map_err(ended_by_credentials)
    }
}

/// A caller whose credentials no longer hold: delivery ends, saying why.
fn ended_by_credentials(e: ApiError) -> ApiError {
    match e {
        ApiError::Unauthenticated(why) => ApiError::AccessEnded(format!("delivery stopped: {why}")),
        other => other,
    }
}

/// Tells a subscriber that it missed events (it fell behind the bus) and
/// should refetch; the subscription goes on.
fn missed(count: u64) -> async_graphql::Error {
    ApiError::EventsMissed(format!(
        "{count} events were missed because this subscription fell behind; refetch what you show"
    ))
    .into()
}

/// What an event on the bus means for a patient subscription: deliver it
/// (after the access check), only check access, or check access and tell
/// the client that events from other instances were lost.
enum Recheck {
    Deliver(PatientEvent),
    AccessOnly,
    Missed(async_graphql::Error),
}

struct PatientStream {
    watch: Watch,
    patient_id: Uuid,
    kinds: Vec<PatientEventKind>,
    ended: bool,
}

impl PatientStream {
    async fn next(mut self) -> Option<(Result<PatientEventObject>, Self)> {
        if self.ended {
            return None;
        }
        loop {
            let recheck = match self.watch.rx.recv().await {
                Ok(event) => match &*event {
                    HubEvent::Patient(e) if e.patient_id == self.patient_id => {
                        if !self.kinds.is_empty() && !self.kinds.contains(&e.kind) {
                            continue;
                        }
                        Recheck::Deliver(e.clone())
                    }
                    HubEvent::AccessChanged { patient_id } if *patient_id == self.patient_id => {
                        Recheck::AccessOnly
                    }
                    e if e.is_about_credentials_of(&self.watch.principal) => Recheck::AccessOnly,
                    HubEvent::RelayRecovered => Recheck::Missed(
                        ApiError::EventsMissed(
                            "the link between the hub's instances was down: events that happened on other instances meanwhile were not delivered; refetch what you show".into(),
                        )
                        .into(),
                    ),
                    _ => continue,
                },
                // Among the events skipped may be the one that ended access:
                // check access before telling the client to refetch.
                Err(RecvError::Lagged(n)) => {
                    self.watch.bus.note_missed(n);
                    Recheck::Missed(missed(n))
                }
                Err(RecvError::Closed) => return None,
            };
            if let Some(out) = self.recheck(recheck).await {
                return Some((out, self));
            }
        }
    }

    /// Checks the caller's access again and says what reaches the client, if
    /// anything. The caller's credentials, its access and what the event's
    /// subject restricts are asked at once, together with the other
    /// subscriptions the event woke ([`Audience`]).
    async fn recheck(&mut self, recheck: Recheck) -> Option<Result<PatientEventObject>> {
        let audience = &self.watch.audience;
        let principal = &self.watch.principal;
        let subject = async {
            match &recheck {
                Recheck::Deliver(event) => audience.subject(event).await.map(Some),
                _ => Ok(None),
            }
        };
        let (active, access, subject) = futures_util::join!(
            audience.still_active(principal),
            audience.access(principal, self.patient_id),
            subject
        );
        if let Err(e) = active {
            return Some(self.end(ended_by_credentials(e)));
        }
        let access = match access {
            Ok(Some(a)) => a,
            Ok(None) => {
                return Some(self.end(ApiError::AccessEnded(
                    "delivery stopped: your organisation no longer has a care relationship with the patient".into(),
                )));
            }
            Err(e) => return Some(self.end(e)),
        };
        if let Some(why) = nothing_readable(&access) {
            return Some(self.end(ApiError::AccessEnded(format!("delivery stopped: {why}"))));
        }
        let event = match recheck {
            Recheck::Deliver(event) => event,
            Recheck::AccessOnly => return None,
            Recheck::Missed(e) => return Some(Err(e)),
        };
        if !access.may_be_shown(event.category) {
            // Not for this caller's eyes; not even that it happened.
            return None;
        }
        match subject {
            Ok(Some(subject)) if subject.meant_for(&self.watch.principal, &access) => {}
            Ok(_) => return None,
            Err(e) => return Some(Err(e.into())),
        }
        // Under emergency access the delivery is an emergency read.
        for category in crate::policy::shown_with(event.category) {
            self.watch.trail.read(&access, category);
        }
        Some(Ok(PatientEventObject(event)))
    }

    fn end(&mut self, e: ApiError) -> Result<PatientEventObject> {
        self.ended = true;
        self.watch
            .trail
            .denied(Some(self.patient_id), &[], e.message());
        Err(e.into())
    }
}

struct NotificationStream {
    watch: Watch,
    ended: bool,
}

impl NotificationStream {
    async fn next(mut self) -> Option<(Result<Notification>, Self)> {
        if self.ended {
            return None;
        }
        loop {
            let event = match self.watch.rx.recv().await {
                Ok(e) => e,
                Err(RecvError::Lagged(n)) => {
                    self.watch.bus.note_missed(n);
                    // A suspension among the events skipped ends delivery.
                    if let Err(e) = self.watch.caller_still_active().await {
                        self.ended = true;
                        return Some((Err(e.into()), self));
                    }
                    return Some((Err(missed(n)), self));
                }
                Err(RecvError::Closed) => return None,
            };
            match &*event {
                HubEvent::Notification(n)
                    if n.organization_id == self.watch.principal.organization_id() =>
                {
                    if let Err(e) = self.watch.caller_still_active().await {
                        self.ended = true;
                        return Some((Err(e.into()), self));
                    }
                    let found = match notifications::find_for(
                        &self.watch.db,
                        &self.watch.principal,
                        n.notification_id,
                    )
                    .await
                    {
                        Ok(Some(found)) => found,
                        // Addressed to another member of the organisation.
                        Ok(None) => continue,
                        Err(e) => return Some((Err(e.into()), self)),
                    };
                    let access = match found.patient_id {
                        Some(patient) => match self.watch.access(patient).await {
                            Ok(a) => a,
                            Err(e) => return Some((Err(e.into()), self)),
                        },
                        None => None,
                    };
                    if !notifications::admit(&found, access.as_ref(), &self.watch.trail) {
                        continue;
                    }
                    return Some((Ok(Notification(found)), self));
                }
                e if e.is_about_credentials_of(&self.watch.principal) => {
                    if let Err(e) = self.watch.caller_still_active().await {
                        self.ended = true;
                        return Some((Err(e.into()), self));
                    }
                }
                HubEvent::RelayRecovered => {
                    return Some((
                        Err(ApiError::EventsMissed(
                            "the link between the hub's instances was down: notifications created on other instances meanwhile were not delivered; query `notifications`".into(),
                        )
                        .into()),
                        self,
                    ));
                }
                _ => {}
            }
        }
    }
}

/// An event on a patient. It says what happened and where to read it; the
/// content itself is read through the patient, under the policy.
pub struct PatientEventObject(PatientEvent);

#[Object(name = "PatientEvent")]
impl PatientEventObject {
    async fn kind(&self) -> PatientEventKind {
        self.0.kind
    }
    async fn patient_id(&self) -> ID {
        ID(self.0.patient_id.to_string())
    }
    /// The record, message, sheet, notice, conference or emergency access it
    /// is about.
    async fn subject_id(&self) -> ID {
        ID(self.0.subject_id.to_string())
    }
    /// The data category of what it is about.
    async fn category(&self) -> DataCategory {
        self.0.category
    }
    /// The organisation whose member or system caused it.
    async fn organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.0.organization_id).await
    }
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }
}

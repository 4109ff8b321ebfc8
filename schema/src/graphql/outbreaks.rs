//! Outbreak notices (感染症の集団発生の連絡) in GraphQL: report and update at
//! the edge of `services::outbreaks`, the organisation's list, one by id.
//!
//! A notice is the facility's statement about itself and names no patient:
//! the caller's organisation sees it when it reported or received it. The
//! patients the facility named as affected are shown one by one, only to a
//! reader who may read that patient's INFECTIONS under the policy — each
//! such read recorded — and the others are simply absent: not counted, not
//! hinted at.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result, connection::Edge};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::admission_discharge::{Page, cursor, page_args};
use super::inputs::parse_id;
use super::types::{Member, Organization, Patient, load_organization};
use super::{
    Date, ctx_db, ctx_events, ctx_policy, ctx_request, ctx_stamp, ctx_trail, loaders::Loaders,
    patient_access, reach,
};
use crate::domain::{NAME_MAX, Text};
use crate::error::{ApiError, ApiResult};
use crate::policy::require_outbreak_reporter;
use crate::records::checks::long;
use crate::services::outbreaks::{
    self, CASES_MAX, CATEGORY, Change, NewOutbreak, Notice, ONSET_MAX_DAYS_BACK, OutbreakChange,
    OutbreakPathogen, OutbreakStatus, Pathogen,
};

/// The most characters of `scope` (one line: 「2階フロア」「通所の利用者」).
const SCOPE_MAX: usize = NAME_MAX;
/// The most characters of `otherPathogen`.
const PATHOGEN_NAME_MAX: usize = 100;
/// The most characters of `measures` (面会制限、通所の休止 …; line breaks allowed).
const MEASURES_MAX: usize = 2_000;
/// The most patients a notice names.
const AFFECTED_MAX: usize = 200;

/// 感染症の集団発生の連絡: an infection outbreak a facility reported to the
/// organisations sharing its patients.
pub struct OutbreakNotice(Notice);

#[Object]
impl OutbreakNotice {
    async fn id(&self) -> ID {
        ID(self.0.model.id.to_string())
    }
    /// The reporting facility.
    async fn organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.0.model.organization_id).await
    }
    /// The member who reported it (null when a system did).
    async fn reported_by(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        let Some(m) = self.0.model.reported_by_member else {
            return Ok(None);
        };
        Ok(ctx
            .data_unchecked::<Loaders>()
            .member
            .load_one(m)
            .await?
            .map(Member))
    }
    async fn pathogen(&self) -> Result<OutbreakPathogen> {
        Ok(OutbreakPathogen::from_db(&self.0.model.pathogen)?)
    }
    /// The pathogen's name when `pathogen` is OTHER.
    async fn other_pathogen(&self) -> Option<&str> {
        self.0.model.other_pathogen.as_deref()
    }
    /// The day the first case showed (発症日).
    async fn onset_on(&self) -> Date {
        Date(self.0.model.onset_on)
    }
    /// Where: 「2階フロア」「通所の利用者」.
    async fn scope(&self) -> &str {
        &self.0.model.scope
    }
    /// Residents or users affected, as the facility states it.
    async fn resident_cases(&self) -> Option<i32> {
        self.0.model.resident_cases
    }
    /// Staff affected, as the facility states it.
    async fn staff_cases(&self) -> Option<i32> {
        self.0.model.staff_cases
    }
    /// What the facility does: 面会制限、通所の休止 ….
    async fn measures(&self) -> Option<&str> {
        self.0.model.measures.as_deref()
    }
    async fn status(&self) -> Result<OutbreakStatus> {
        Ok(OutbreakStatus::from_db(&self.0.model.status)?)
    }
    /// The day it ended (終息), once ENDED.
    async fn ended_on(&self) -> Option<Date> {
        self.0.model.ended_on.map(Date)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.model.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.model.updated_at
    }
    /// INFECTIONS. The patients the facility named as affected whose
    /// INFECTIONS you may read (each read recorded); the others are not
    /// listed, and nothing tells of them.
    async fn affected_patients(&self, ctx: &Context<'_>) -> Result<Vec<Patient>> {
        // A notice naming no one takes the policy's work of one patient
        // too (the nil id, which is none): a reader shown an empty list
        // cannot tell by the time whether patients it may not see were named.
        let named: Vec<Uuid> = if self.0.affected.is_empty() {
            vec![Uuid::nil()]
        } else {
            self.0.affected.clone()
        };
        let verdicts = futures_util::future::try_join_all(
            named.iter().map(|p| reach::named_to_caller(ctx, *p)),
        )
        .await?;
        let trail = ctx_trail(ctx)?;
        let mut out = Vec::new();
        for verdict in verdicts.into_iter().flatten() {
            if verdict.access.may_read(CATEGORY) {
                trail.read(&verdict.access, CATEGORY);
                out.push(Patient::new(verdict.access, verdict.patient));
            }
        }
        Ok(out)
    }
}

/// Trimmed one-line text.
fn line(field: &str, raw: &str, max: usize) -> ApiResult<String> {
    Ok(Text::parse(field, raw, max)?.into_inner())
}

/// Trimmed free text, line breaks allowed.
fn free_text(field: &str, raw: &str) -> ApiResult<String> {
    long(field, raw, MEASURES_MAX)?;
    Ok(raw.trim().to_string())
}

fn cases(field: &str, n: i32) -> ApiResult<i32> {
    if (0..=CASES_MAX).contains(&n) {
        Ok(n)
    } else {
        Err(ApiError::bad_input(
            field,
            format!("must be between 0 and {CASES_MAX}, got {n}"),
        ))
    }
}

fn change<T, U>(
    value: MaybeUndefined<T>,
    parse: impl FnOnce(T) -> ApiResult<U>,
) -> ApiResult<Change<U>> {
    Ok(match value {
        MaybeUndefined::Undefined => Change::Keep,
        MaybeUndefined::Null => Change::Clear,
        MaybeUndefined::Value(v) => Change::Set(parse(v)?),
    })
}

#[derive(InputObject)]
pub struct ReportOutbreakInput {
    pub pathogen: OutbreakPathogen,
    /// The pathogen's name, when `pathogen` is OTHER (and only then).
    pub other_pathogen: Option<String>,
    /// The day the first case showed: not in the future, at most 90 days
    /// back.
    pub onset_on: Date,
    /// Where (one line): 「2階フロア」「通所の利用者」.
    pub scope: String,
    /// Residents or users affected so far, 0 to 10000.
    pub resident_cases: Option<i32>,
    /// Staff affected so far, 0 to 10000.
    pub staff_cases: Option<i32>,
    /// What the facility does: 面会制限、通所の休止 ….
    pub measures: Option<String>,
    /// Patients to name as affected: each of your organisation's care team,
    /// and you must read their INFECTIONS. Shown only to readers who may
    /// read their INFECTIONS.
    #[graphql(default)]
    pub affected_patient_ids: Vec<ID>,
}

/// A parsed report, before the named patients are reached.
struct ParsedReport {
    pathogen: Pathogen,
    onset_on: NaiveDate,
    scope: String,
    resident_cases: Option<i32>,
    staff_cases: Option<i32>,
    measures: Option<String>,
    affected: Vec<Uuid>,
}

/// The pathogen and its name, together.
fn pathogen(pathogen: OutbreakPathogen, other: Option<&str>) -> ApiResult<Pathogen> {
    let field = "input.otherPathogen";
    let other = match (pathogen, other) {
        (OutbreakPathogen::Other, None) => {
            return Err(ApiError::bad_input(
                field,
                "is required when pathogen is OTHER",
            ));
        }
        (OutbreakPathogen::Other, Some(name)) => Some(line(field, name, PATHOGEN_NAME_MAX)?),
        (_, Some(_)) => {
            return Err(ApiError::bad_input(field, "is only for pathogen OTHER"));
        }
        (_, None) => None,
    };
    Ok(Pathogen { pathogen, other })
}

impl ReportOutbreakInput {
    fn parse(self, today: NaiveDate) -> ApiResult<ParsedReport> {
        let pathogen = pathogen(self.pathogen, self.other_pathogen.as_deref())?;
        let onset_on = self.onset_on.0;
        if onset_on > today {
            return Err(ApiError::bad_input(
                "input.onsetOn",
                format!("{onset_on} is in the future"),
            ));
        }
        if (today - onset_on).num_days() > ONSET_MAX_DAYS_BACK {
            return Err(ApiError::bad_input(
                "input.onsetOn",
                format!("{onset_on} is more than {ONSET_MAX_DAYS_BACK} days ago"),
            ));
        }
        if self.affected_patient_ids.len() > AFFECTED_MAX {
            return Err(ApiError::bad_input(
                "input.affectedPatientIds",
                format!("name at most {AFFECTED_MAX} patients"),
            ));
        }
        Ok(ParsedReport {
            pathogen,
            onset_on,
            scope: line("input.scope", &self.scope, SCOPE_MAX)?,
            resident_cases: self
                .resident_cases
                .map(|n| cases("input.residentCases", n))
                .transpose()?,
            staff_cases: self
                .staff_cases
                .map(|n| cases("input.staffCases", n))
                .transpose()?,
            measures: self
                .measures
                .as_deref()
                .map(|m| free_text("input.measures", m))
                .transpose()?,
            affected: self
                .affected_patient_ids
                .iter()
                .enumerate()
                .map(|(i, id)| parse_id(&format!("input.affectedPatientIds[{i}]"), id))
                .collect::<ApiResult<_>>()?,
        })
    }
}

#[derive(InputObject)]
pub struct UpdateOutbreakInput {
    pub id: ID,
    /// Where, now (one line).
    pub scope: Option<String>,
    /// Left out: kept; null: no longer stated; 0 to 10000.
    pub resident_cases: MaybeUndefined<i32>,
    /// Left out: kept; null: no longer stated; 0 to 10000.
    pub staff_cases: MaybeUndefined<i32>,
    /// Left out: kept; null: removed.
    pub measures: MaybeUndefined<String>,
    /// Ends the outbreak (終息): status ENDED, no later updates.
    #[graphql(default)]
    pub end: bool,
    /// The day it ended (with `end`; default today): not before the onset,
    /// not in the future.
    pub ended_on: Option<Date>,
}

impl UpdateOutbreakInput {
    fn parse(self, today: NaiveDate) -> ApiResult<(Uuid, OutbreakChange)> {
        let id = parse_id("input.id", &self.id)?;
        let ended_on = match (self.end, self.ended_on) {
            (false, Some(_)) => {
                return Err(ApiError::bad_input(
                    "input.endedOn",
                    "is only given with end: true",
                ));
            }
            (false, None) => None,
            (true, None) => Some(today),
            (true, Some(d)) if d.0 > today => {
                return Err(ApiError::bad_input(
                    "input.endedOn",
                    format!("{} is in the future", d.0),
                ));
            }
            (true, Some(d)) => Some(d.0),
        };
        let change = OutbreakChange {
            scope: self
                .scope
                .as_deref()
                .map(|s| line("input.scope", s, SCOPE_MAX))
                .transpose()?,
            resident_cases: change(self.resident_cases, |n| cases("input.residentCases", n))?,
            staff_cases: change(self.staff_cases, |n| cases("input.staffCases", n))?,
            measures: change(self.measures, |m| free_text("input.measures", &m))?,
            ended_on,
        };
        let unchanged = change.scope.is_none()
            && matches!(change.resident_cases, Change::Keep)
            && matches!(change.staff_cases, Change::Keep)
            && matches!(change.measures, Change::Keep)
            && change.ended_on.is_none();
        if unchanged {
            return Err(ApiError::bad_input(
                "input",
                "nothing to change: give scope, residentCases, staffCases, measures or end",
            ));
        }
        Ok((id, change))
    }
}

/// A notice by id that the caller's organisation reported or received;
/// any other — and one that does not exist — is `NOT_FOUND`, recorded as a
/// denial.
async fn notice(ctx: &Context<'_>, id: Uuid) -> Result<Notice, ApiError> {
    let org = ctx_request(ctx)?.principal.organization_id();
    match outbreaks::find_for(ctx_db(ctx), org, id).await? {
        Some(n) => Ok(n),
        None => Err(reach::refuse(
            ctx,
            "outbreak notice",
            None,
            &[],
            format!(
                "outbreak notice {id}: no such notice, or not reported by or sent to organisation {org}"
            ),
            format!("outbreak notice {id}"),
        )),
    }
}

#[derive(Default)]
pub struct OutbreakMutation;

#[Object]
impl OutbreakMutation {
    /// Reports an infection outbreak at your organisation (感染症の集団発生)
    /// to every organisation sharing a patient with it today (on the care
    /// team of a patient your organisation is on the care team of), which
    /// are notified (`OUTBREAK_NOTICE`). The notice names no patient but
    /// those in `affectedPatientIds`, shown only to readers of their
    /// INFECTIONS.
    async fn report_outbreak(
        &self,
        ctx: &Context<'_>,
        input: ReportOutbreakInput,
    ) -> Result<OutbreakNotice> {
        let policy = ctx_policy(ctx);
        let parsed = input.parse(policy.clock.today())?;
        let stamp = ctx_stamp(ctx)?;
        let reporter = require_outbreak_reporter(
            &stamp.principal,
            crate::graphql::consents::caller_kind(ctx).await?,
        )?;
        // Each named patient is reached like any other: one the caller may
        // not know of is NOT_FOUND, recorded as a denial, and nothing is
        // written. Every reference is evaluated (and a refused one
        // recorded) before the first refusal is returned, so that naming
        // two unknown patients leaves two entries, as everywhere else.
        let verdicts =
            futures_util::future::join_all(parsed.affected.iter().map(|p| patient_access(ctx, *p)))
                .await;
        let affected = verdicts.into_iter().collect::<Result<Vec<_>, _>>()?;
        let notice = outbreaks::report(
            ctx_db(ctx),
            policy,
            reporter,
            &stamp,
            ctx_events(ctx),
            NewOutbreak {
                pathogen: parsed.pathogen,
                onset_on: parsed.onset_on,
                scope: parsed.scope,
                resident_cases: parsed.resident_cases,
                staff_cases: parsed.staff_cases,
                measures: parsed.measures,
                affected,
            },
        )
        .await?;
        Ok(OutbreakNotice(notice))
    }

    /// Updates your organisation's outbreak notice (scope, counts,
    /// measures) or ends it (`end: true`); its recipients are notified
    /// again. Only the reporting organisation; an ended notice is not
    /// updated (`CONFLICT`).
    async fn update_outbreak(
        &self,
        ctx: &Context<'_>,
        input: UpdateOutbreakInput,
    ) -> Result<OutbreakNotice> {
        let policy = ctx_policy(ctx);
        let (id, change) = input.parse(policy.clock.today())?;
        let current = notice(ctx, id).await?;
        let stamp = ctx_stamp(ctx)?;
        let reporter = require_outbreak_reporter(
            &stamp.principal,
            crate::graphql::consents::caller_kind(ctx).await?,
        )?;
        let updated = outbreaks::update(
            ctx_db(ctx),
            policy,
            reporter,
            &stamp,
            ctx_events(ctx),
            current.model,
            change,
        )
        .await?;
        Ok(OutbreakNotice(updated))
    }
}

/// `Query.outbreakNotices`.
pub(crate) async fn notices(
    ctx: &Context<'_>,
    status: Vec<OutbreakStatus>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Page<OutbreakNotice>> {
    let (first, after) = page_args(first, after)?;
    let org = ctx_request(ctx)?.principal.organization_id();
    let (rows, more) = outbreaks::for_organization(ctx_db(ctx), org, &status, after, first).await?;
    let mut page = Page::new(after.is_some(), more);
    page.edges.extend(
        rows.into_iter()
            .map(|n| Edge::new(cursor(n.model.id), OutbreakNotice(n))),
    );
    Ok(page)
}

/// `Query.outbreakNotice`.
pub(crate) async fn notice_by_id(ctx: &Context<'_>, id: ID) -> Result<OutbreakNotice> {
    let id = parse_id("id", &id)?;
    Ok(OutbreakNotice(notice(ctx, id).await?))
}

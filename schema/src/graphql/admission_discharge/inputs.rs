//! The inputs of admission and discharge support, parsed at the edge: a
//! `BAD_USER_INPUT` error names the field (`input.content.services[2].provider`).

use async_graphql::{ID, InputObject, MaybeUndefined};
use chrono::NaiveDate;

use super::super::Date;
use super::super::inputs::parse_id;
use crate::domain::{NAME_MAX, Text};
use crate::error::{ApiError, ApiResult};
use crate::records::checks::{LONG_MAX, long};
use crate::records::{
    AdlAssessmentData, CareCertificationData, FamilyCareCapacityData, HomeEnvironmentData,
    RecordData,
};
use crate::services::admission_discharge::conferences::{
    Answer, ConferenceKind, Invitees, Minutes, NewConference,
};
use crate::services::admission_discharge::notices::{
    DischargeCriterion, NewNotice, NoticeCorrection,
};
use crate::services::admission_discharge::sheets::{
    Change, ContentPatch, SERVICES_MAX, SheetChange, SheetService,
};

/// Free text (notes, needs, wishes): trimmed, non-empty, line breaks allowed.
fn free_text(field: &str, raw: &str) -> ApiResult<String> {
    long(field, raw, LONG_MAX)?;
    Ok(raw.trim().to_string())
}

fn free_text_opt(field: &str, raw: Option<&str>) -> ApiResult<Option<String>> {
    raw.map(|r| free_text(field, r)).transpose()
}

/// Absent: keep; null: remove; a value: validate and replace.
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

/// The sections of an admission sheet to change. A section left out keeps
/// what it holds (at creation: the prefill), `null` removes it, a value
/// replaces it.
#[derive(InputObject, Default)]
pub struct AdmissionSheetContentInput {
    /// CARE_CERTIFICATION.
    pub care_certification: MaybeUndefined<CareCertificationData>,
    /// CARE_PLAN. At most 50.
    pub services: MaybeUndefined<Vec<SheetService>>,
    /// ADL.
    pub adl_assessment: MaybeUndefined<AdlAssessmentData>,
    /// FAMILY_CARE_CAPACITY.
    pub family_care_capacity: MaybeUndefined<FamilyCareCapacityData>,
    /// HOME_ENVIRONMENT.
    pub home_environment: MaybeUndefined<HomeEnvironmentData>,
    /// CAUTIONS.
    pub cautions: MaybeUndefined<String>,
    /// ADMISSION_DISCHARGE. 本人・家族の意向.
    pub wishes: MaybeUndefined<String>,
    /// ADMISSION_DISCHARGE.
    pub note: MaybeUndefined<String>,
}

impl AdmissionSheetContentInput {
    /// Validates every section given, as the record kind it mirrors would be.
    pub fn patch(self, today: NaiveDate) -> ApiResult<ContentPatch> {
        const AT: &str = "input.content";
        let record = |data: RecordData| data.validate(today).map_err(|e| e.in_field(AT));
        Ok(ContentPatch {
            care_certification: change(self.care_certification, |d| {
                record(RecordData::CareCertification(d.clone()))?;
                Ok(d)
            })?,
            services: change(self.services, |list| {
                if list.len() > SERVICES_MAX {
                    return Err(ApiError::bad_input(
                        format!("{AT}.services"),
                        format!("at most {SERVICES_MAX} services, got {}", list.len()),
                    ));
                }
                list.into_iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let at = |f: &str| format!("{AT}.services[{i}].{f}");
                        Ok(SheetService {
                            service_type: Text::parse(
                                &at("serviceType"),
                                &s.service_type,
                                NAME_MAX,
                            )?
                            .into_inner(),
                            provider: Text::parse_opt(
                                &at("provider"),
                                s.provider.as_deref(),
                                NAME_MAX,
                            )?
                            .map(Text::into_inner),
                            frequency: Text::parse_opt(
                                &at("frequency"),
                                s.frequency.as_deref(),
                                NAME_MAX,
                            )?
                            .map(Text::into_inner),
                        })
                    })
                    .collect()
            })?,
            adl_assessment: change(self.adl_assessment, |d| {
                record(RecordData::AdlAssessment(d.clone()))?;
                Ok(d)
            })?,
            family_care_capacity: change(self.family_care_capacity, |d| {
                record(RecordData::FamilyCareCapacity(d.clone()))?;
                Ok(d)
            })?,
            home_environment: change(self.home_environment, |d| {
                record(RecordData::HomeEnvironment(d.clone()))?;
                Ok(d)
            })?,
            cautions: change(self.cautions, |s| free_text(&format!("{AT}.cautions"), &s))?,
            wishes: change(self.wishes, |s| free_text(&format!("{AT}.wishes"), &s))?,
            note: change(self.note, |s| free_text(&format!("{AT}.note"), &s))?,
        })
    }
}

#[derive(InputObject)]
pub struct CreateAdmissionSheetInput {
    pub patient_id: ID,
    /// The hospital the patient is admitted to. It must be on the patient's
    /// care team (add it with `addCareTeamMember`, role `HOSPITAL`) and
    /// covered by the patient's consent.
    pub hospital_id: ID,
    /// The day of admission; a planned admission up to 30 days ahead.
    pub admitted_on: Date,
    /// Fill the sections from the patient's latest records you may read.
    #[graphql(default = true)]
    pub prefill: bool,
    /// Your changes over the prefill.
    pub content: Option<AdmissionSheetContentInput>,
}

/// What `createAdmissionSheet` parses into.
pub struct ParsedSheet {
    pub patient_id: uuid::Uuid,
    pub hospital_id: uuid::Uuid,
    pub admitted_on: NaiveDate,
    pub prefill: bool,
    pub patch: ContentPatch,
}

impl CreateAdmissionSheetInput {
    pub fn parse(self, today: NaiveDate) -> ApiResult<ParsedSheet> {
        use crate::services::admission_discharge::sheets::check_admitted_on;
        Ok(ParsedSheet {
            patient_id: parse_id("input.patientId", &self.patient_id)?,
            hospital_id: parse_id("input.hospitalId", &self.hospital_id)?,
            admitted_on: check_admitted_on("input.admittedOn", self.admitted_on.0, today)?,
            prefill: self.prefill,
            patch: self.content.unwrap_or_default().patch(today)?,
        })
    }
}

#[derive(InputObject)]
pub struct UpdateAdmissionSheetInput {
    pub sheet_id: ID,
    /// Another hospital (same rules as at creation).
    pub hospital_id: Option<ID>,
    pub admitted_on: Option<Date>,
    pub content: Option<AdmissionSheetContentInput>,
}

impl UpdateAdmissionSheetInput {
    pub fn parse(self, today: NaiveDate) -> ApiResult<(uuid::Uuid, SheetChange)> {
        use crate::services::admission_discharge::sheets::check_admitted_on;
        Ok((
            parse_id("input.sheetId", &self.sheet_id)?,
            SheetChange {
                hospital_id: self
                    .hospital_id
                    .as_ref()
                    .map(|h| parse_id("input.hospitalId", h))
                    .transpose()?,
                admitted_on: self
                    .admitted_on
                    .map(|d| check_admitted_on("input.admittedOn", d.0, today))
                    .transpose()?,
                patch: self.content.unwrap_or_default().patch(today)?,
            },
        ))
    }
}

#[derive(InputObject)]
pub struct SendDischargeNoticeInput {
    pub patient_id: ID,
    /// The admission information sheet of this stay, if the team sent one.
    pub admission_sheet_id: Option<ID>,
    /// The day of admission; taken from the admission sheet when linked.
    pub admitted_on: Option<Date>,
    /// Not before the admission; at most 180 days ahead (and 90 behind: a
    /// notice after the discharge is still counted, as 退院後).
    pub planned_discharge_on: Date,
    /// What the patient will need at home.
    pub needs_at_home: String,
    /// Kitami's criteria that apply; any one means the discharge needs coordination.
    #[graphql(default)]
    pub criteria: Vec<DischargeCriterion>,
}

impl SendDischargeNoticeInput {
    pub fn parse(self) -> ApiResult<(uuid::Uuid, NewNotice)> {
        Ok((
            parse_id("input.patientId", &self.patient_id)?,
            NewNotice {
                admission_sheet_id: self
                    .admission_sheet_id
                    .as_ref()
                    .map(|s| parse_id("input.admissionSheetId", s))
                    .transpose()?,
                admitted_on: self.admitted_on.map(|d| d.0),
                planned_discharge_on: self.planned_discharge_on.0,
                needs_at_home: free_text("input.needsAtHome", &self.needs_at_home)?,
                criteria: self.criteria,
            },
        ))
    }
}

/// A correction of an open notice: what is given replaces what it said.
#[derive(InputObject)]
pub struct UpdateDischargeNoticeInput {
    pub notice_id: ID,
    pub planned_discharge_on: Option<Date>,
    pub needs_at_home: Option<String>,
    pub criteria: Option<Vec<DischargeCriterion>>,
}

impl UpdateDischargeNoticeInput {
    pub fn parse(self) -> ApiResult<(uuid::Uuid, NoticeCorrection)> {
        Ok((
            parse_id("input.noticeId", &self.notice_id)?,
            NoticeCorrection {
                planned_discharge_on: self.planned_discharge_on.map(|d| d.0),
                needs_at_home: free_text_opt("input.needsAtHome", self.needs_at_home.as_deref())?,
                criteria: self.criteria,
            },
        ))
    }
}

#[derive(InputObject)]
pub struct RecordDischargeInput {
    pub notice_id: ID,
    /// The day the patient left; not in the future.
    pub discharged_on: Date,
}

#[derive(InputObject)]
pub struct ProposeDischargeConferenceInput {
    pub patient_id: ID,
    /// The discharge notice the conference prepares, if any.
    pub discharge_notice_id: Option<ID>,
    /// In the future, at most 180 days ahead.
    pub starts_at: crate::domain::Timestamp,
    /// Where it is held in person (a place, an online meeting, or both).
    pub place: Option<String>,
    /// Whether one can join online.
    #[graphql(default = false)]
    pub online: bool,
    pub note: Option<String>,
    /// Organisations of the care team to invite …
    #[graphql(default)]
    pub invited_organization_ids: Vec<ID>,
    /// … or the whole care team (every organisation but yours).
    #[graphql(default = false)]
    pub invite_whole_team: bool,
}

/// The longest place description.
const PLACE_MAX: usize = 300;

impl ProposeDischargeConferenceInput {
    pub fn parse(self) -> ApiResult<(uuid::Uuid, NewConference)> {
        Proposal {
            kind: ConferenceKind::Discharge,
            patient_id: &self.patient_id,
            discharge_notice_id: self.discharge_notice_id.as_ref(),
            starts_at: self.starts_at,
            place: self.place.as_deref(),
            online: self.online,
            agenda: None,
            note: self.note.as_deref(),
            invited_organization_ids: &self.invited_organization_ids,
            invite_whole_team: self.invite_whole_team,
        }
        .parse()
    }
}

/// A care conference of any kind to propose.
#[derive(InputObject)]
pub struct ProposeCareConferenceInput {
    pub kind: ConferenceKind,
    pub patient_id: ID,
    /// The discharge notice a discharge conference prepares, if any (only
    /// for `kind: DISCHARGE`).
    pub discharge_notice_id: Option<ID>,
    /// In the future, at most 180 days ahead.
    pub starts_at: crate::domain::Timestamp,
    /// Where it is held in person (a place, an online meeting, or both).
    pub place: Option<String>,
    /// Whether one can join online.
    #[graphql(default = false)]
    pub online: bool,
    /// 議題: what is to be discussed (「ケアプラン更新」「転倒後の支援方針」).
    pub agenda: Option<String>,
    pub note: Option<String>,
    /// Organisations of the care team to invite …
    #[graphql(default)]
    pub invited_organization_ids: Vec<ID>,
    /// … or the whole care team (every organisation but yours).
    #[graphql(default = false)]
    pub invite_whole_team: bool,
}

impl ProposeCareConferenceInput {
    pub fn parse(self) -> ApiResult<(uuid::Uuid, NewConference)> {
        Proposal {
            kind: self.kind,
            patient_id: &self.patient_id,
            discharge_notice_id: self.discharge_notice_id.as_ref(),
            starts_at: self.starts_at,
            place: self.place.as_deref(),
            online: self.online,
            agenda: self.agenda.as_deref(),
            note: self.note.as_deref(),
            invited_organization_ids: &self.invited_organization_ids,
            invite_whole_team: self.invite_whole_team,
        }
        .parse()
    }
}

/// The fields every proposal shares, parsed in one place.
struct Proposal<'a> {
    kind: ConferenceKind,
    patient_id: &'a ID,
    discharge_notice_id: Option<&'a ID>,
    starts_at: crate::domain::Timestamp,
    place: Option<&'a str>,
    online: bool,
    agenda: Option<&'a str>,
    note: Option<&'a str>,
    invited_organization_ids: &'a [ID],
    invite_whole_team: bool,
}

impl Proposal<'_> {
    fn parse(self) -> ApiResult<(uuid::Uuid, NewConference)> {
        let place = Text::parse_opt("input.place", self.place, PLACE_MAX)?.map(Text::into_inner);
        if place.is_none() && !self.online {
            return Err(ApiError::bad_input(
                "input.place",
                "give a place, or set online: true (or both)",
            ));
        }
        let invitees = match (
            self.invite_whole_team,
            self.invited_organization_ids.is_empty(),
        ) {
            (true, true) => Invitees::WholeTeam,
            (false, false) => Invitees::Organizations(
                self.invited_organization_ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| parse_id(&format!("input.invitedOrganizationIds[{i}]"), id))
                    .collect::<ApiResult<_>>()?,
            ),
            (true, false) => {
                return Err(ApiError::bad_input(
                    "input.invitedOrganizationIds",
                    "give invitedOrganizationIds or inviteWholeTeam, not both",
                ));
            }
            (false, true) => {
                return Err(ApiError::bad_input(
                    "input.invitedOrganizationIds",
                    "invite someone: list organisations of the care team, or set inviteWholeTeam",
                ));
            }
        };
        Ok((
            parse_id("input.patientId", self.patient_id)?,
            NewConference {
                kind: self.kind,
                discharge_notice_id: self
                    .discharge_notice_id
                    .map(|n| parse_id("input.dischargeNoticeId", n))
                    .transpose()?,
                agenda: free_text_opt("input.agenda", self.agenda)?,
                starts_at: self.starts_at.get(),
                place,
                online: self.online,
                note: free_text_opt("input.note", self.note)?,
                invitees,
            },
        ))
    }
}

#[derive(InputObject)]
pub struct AnswerDischargeConferenceInput {
    pub conference_id: ID,
    /// `true` to attend, `false` to decline.
    pub accept: bool,
    pub comment: Option<String>,
}

impl AnswerDischargeConferenceInput {
    pub fn parse(self) -> ApiResult<(uuid::Uuid, Answer)> {
        Ok((
            parse_id("input.conferenceId", &self.conference_id)?,
            Answer {
                accept: self.accept,
                comment: free_text_opt("input.comment", self.comment.as_deref())?,
            },
        ))
    }
}

/// The minutes of a held conference.
#[derive(InputObject)]
pub struct RecordConferenceMinutesInput {
    pub conference_id: ID,
    /// The invited organisations that attended (the organiser is taken as
    /// present); the others are recorded as absent.
    #[graphql(default)]
    pub attended_organization_ids: Vec<ID>,
    /// Others present: the patient, the family (「本人、長女」).
    pub other_attendees: Option<String>,
    /// 検討内容: what was discussed.
    pub discussion: String,
    /// 結論: what was agreed.
    pub decisions: String,
    /// 残された課題: what remains open.
    pub open_issues: Option<String>,
    /// 次回の開催時期: after the day of the conference.
    pub next_meeting_on: Option<Date>,
}

impl RecordConferenceMinutesInput {
    pub fn parse(self) -> ApiResult<(uuid::Uuid, Minutes)> {
        let mut attended = Vec::new();
        for (i, id) in self.attended_organization_ids.iter().enumerate() {
            let org = parse_id(&format!("input.attendedOrganizationIds[{i}]"), id)?;
            if !attended.contains(&org) {
                attended.push(org);
            }
        }
        Ok((
            parse_id("input.conferenceId", &self.conference_id)?,
            Minutes {
                attended,
                other_attendees: Text::parse_opt(
                    "input.otherAttendees",
                    self.other_attendees.as_deref(),
                    PLACE_MAX,
                )?
                .map(Text::into_inner),
                discussion: free_text("input.discussion", &self.discussion)?,
                decisions: free_text("input.decisions", &self.decisions)?,
                open_issues: free_text_opt("input.openIssues", self.open_issues.as_deref())?,
                next_meeting_on: self.next_meeting_on.map(|d| d.0),
            },
        ))
    }
}

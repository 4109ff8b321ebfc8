//! 救急時の患者検索: `searchPatientsForEmergency`, how an ambulance crew or an
//! emergency physician finds the hub id of the patient in front of it — by
//! the exact name and birth date — to open emergency access on
//! (`docs/emergency-information.md`, *Finding the patient*).
//!
//! Every search that reaches the resolver is audited: refused before looking
//! (profession, input, the member's limit) as `DENIED` without a patient;
//! looked up as `EMERGENCY_SEARCH`, one entry per candidate returned, or one
//! without a patient when none was. Refusals before looking are decided
//! without reading any patient, so they are the same, and take the same
//! time, whoever exists.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use super::{Date, ctx_db, ctx_policy, ctx_request, ctx_trail};
use crate::domain::{
    EmergencyReason, EmergencyReasonCode, EmergencySearchCriteria, Sex, municipality,
};
use crate::error::ApiError;
use crate::policy::EmergencySearcher;
use crate::services::emergency_search;

/// What the crew knows: the whole name (kanji, the reading, or both) and the
/// birth date, exactly; sex and the area of the address narrow further. And
/// why it searches, as for `openEmergencyAccess`.
#[derive(InputObject)]
pub struct EmergencyPatientSearchInput {
    /// The whole name as written (「山田 花子」); spaces and full/half width
    /// do not matter, every character does. No wildcards, no parts.
    pub name: Option<String>,
    /// The whole reading (「ヤマダ ハナコ」, hiragana or half-width katakana
    /// too).
    pub name_kana: Option<String>,
    /// The birth date: one day, never a range.
    pub birth_date: Date,
    pub sex: Option<Sex>,
    /// A municipality's name (「みなみ野市」「北川町」「札幌市中央区」):
    /// matches an address that contains it. Never a street or a block — no
    /// digit, no 丁目, 番, 号, 字 or 地割 (`BAD_USER_INPUT`): a search answers
    /// who the patient is, not where one lives.
    pub area: Option<String>,
    /// Why, as for `openEmergencyAccess`: a code, words, or both.
    pub reason_code: Option<EmergencyReasonCode>,
    pub reason: Option<String>,
}

/// One patient the search found: just enough to tell namesakes apart and to
/// open emergency access on the right one — no clinical data, no address
/// beyond its municipality, no telephone.
#[derive(SimpleObject)]
pub struct EmergencySearchCandidate {
    /// The hub id, for `openEmergencyAccess(input: { patientId })`.
    pub patient_id: ID,
    pub name: String,
    pub name_kana: String,
    pub birth_date: Date,
    pub sex: Sex,
    /// The municipality of the address (「みなみ野市」), when it has one.
    pub municipality: Option<String>,
}

/// What a search returns: at most five candidates (none is an answer too).
#[derive(SimpleObject)]
pub struct EmergencyPatientSearch {
    pub candidates: Vec<EmergencySearchCandidate>,
    /// How many more searches you may make in the current window.
    pub searches_left: u32,
}

#[derive(Default)]
pub struct EmergencySearchMutation;

#[Object]
impl EmergencySearchMutation {
    /// 救急時の患者検索: finds a patient by the exact name (or reading) and
    /// birth date, for physicians, nurses and EMS crews, stating why (as for
    /// `openEmergencyAccess`). Returns at most 5 candidates, each only with
    /// its name, reading, birth date, sex and municipality; more matches are
    /// refused with `EMERGENCY_SEARCH_TOO_MANY_MATCHES` (add sex, area or
    /// the other form of the name). Wildcards and parts of names are
    /// refused; each member may search 10 times an hour
    /// (`EMERGENCY_SEARCH_LIMIT`). Audited as `EMERGENCY_SEARCH`, naming each
    /// candidate; patients who objected to emergency access are not found.
    /// A mutation: each search counts and is recorded, so it is never sent
    /// by GET or repeated by a cache.
    async fn search_patients_for_emergency(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] input: EmergencyPatientSearchInput,
    ) -> Result<EmergencyPatientSearch> {
        let req = ctx_request(ctx)?;
        let policy = ctx_policy(ctx);
        let trail = ctx_trail(ctx)?;
        let refuse = |e: ApiError| -> async_graphql::Error {
            trail.denied(
                None,
                EmergencySearcher::CANDIDATE_CATEGORIES,
                format!("emergency search refused: {}", e.message()),
            );
            e.into()
        };
        let searcher = policy
            .require_emergency_searcher(&req.principal)
            .map_err(refuse)?;
        let criteria = parse(&input, policy.clock.today()).map_err(refuse)?;
        let db = ctx_db(ctx);
        let searches_left = match emergency_search::count(db, policy, &searcher).await {
            Ok(left) => left,
            Err(e @ ApiError::EmergencySearchLimit(_)) => return Err(refuse(e)),
            Err(e) => return Err(e.into()),
        };
        let found = emergency_search::find(db, &searcher, &criteria).await?;
        let detail = |outcome: String| {
            format!(
                "{}; searched for {}; {outcome}",
                criteria.reason.audit_detail(),
                criteria.describe()
            )
        };
        if found.len() > EmergencySearcher::MAX_CANDIDATES {
            trail.emergency_search(
                None,
                detail(format!(
                    "{} candidates, more than {}: none returned, more criteria asked for",
                    found.len(),
                    EmergencySearcher::MAX_CANDIDATES
                )),
            );
            return Err(ApiError::EmergencySearchTooManyMatches(format!(
                "more than {} patients match: add sex, the area of the address, or both the name and its reading",
                EmergencySearcher::MAX_CANDIDATES
            ))
            .into());
        }
        if found.is_empty() {
            trail.emergency_search(None, detail("no candidate".into()));
        }
        let n = found.len();
        let candidates = found
            .into_iter()
            .map(|p| {
                trail.emergency_search(
                    Some(p.id),
                    detail(format!("{n} candidate(s) returned, this one among them")),
                );
                EmergencySearchCandidate {
                    patient_id: ID(p.id.to_string()),
                    municipality: p.address.as_deref().and_then(municipality),
                    sex: Sex::parse(&p.sex).unwrap_or(Sex::Unknown),
                    name: p.name,
                    name_kana: p.name_kana,
                    birth_date: Date(p.birth_date),
                }
            })
            .collect();
        Ok(EmergencyPatientSearch {
            candidates,
            searches_left,
        })
    }
}

fn parse(
    input: &EmergencyPatientSearchInput,
    today: chrono::NaiveDate,
) -> Result<EmergencySearchCriteria, ApiError> {
    let reason =
        EmergencyReason::parse("input.reason", input.reason_code, input.reason.as_deref())?;
    EmergencySearchCriteria::parse(
        "input",
        input.name.as_deref(),
        input.name_kana.as_deref(),
        input.birth_date.0,
        input.sex,
        input.area.as_deref(),
        reason,
        today,
    )
}

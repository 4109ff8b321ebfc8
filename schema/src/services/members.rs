//! Members: the professionals of each organisation.

use std::collections::HashMap;

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};
use uuid::Uuid;

use crate::audit::AuditStamp;
use crate::domain::{ExternalSubject, Kana, MemberStatus, Profession, Text};
use crate::error::{ApiError, ApiResult};
use crate::policy::AdminAccess;
use crate::principal::Principal;
use entities::member;

#[derive(Debug)]
pub struct NewMember {
    pub organization_id: Uuid,
    pub name: Text,
    pub name_kana: Option<Kana>,
    pub profession: Profession,
}

pub async fn register(
    db: &DatabaseConnection,
    _admin: AdminAccess,
    stamp: &AuditStamp,
    new: NewMember,
) -> ApiResult<member::Model> {
    assignable("input.profession", new.profession)?;
    let organization =
        super::organizations::require_exists(db, "input.organizationId", new.organization_id)
            .await?;
    fits(&organization, new.profession, "input.profession")?;
    let now = crate::clock::system_now();
    let model = member::ActiveModel {
        id: Set(super::new_id()),
        organization_id: Set(new.organization_id),
        name: Set(new.name.into_inner()),
        name_kana: Set(new.name_kana.map(Kana::into_inner)),
        profession: Set(new.profession.as_str().to_string()),
        status: Set(MemberStatus::Active.as_str().to_string()),
        external_issuer: Set(None),
        external_subject: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let txn = super::begin_write(db).await?;
    let inserted = member::Entity::insert(model)
        .exec_with_returning(&txn)
        .await?;
    let entry = stamp.administration(format!(
        "member {} registered at organisation {} as {}",
        inserted.id, inserted.organization_id, inserted.profession
    ));
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    Ok(inserted)
}

/// Changes a member's row and records the change, in one transaction.
async fn change(
    db: &DatabaseConnection,
    stamp: &AuditStamp,
    member_id: Uuid,
    edit: impl FnOnce(&mut member::ActiveModel),
    what: impl FnOnce(&member::Model) -> String,
) -> ApiResult<member::Model> {
    let txn = super::begin_write(db).await?;
    // Locked as read: the change's record ("status ACTIVE → SUSPENDED") is
    // of the row as it is changed, not as it was before another change
    // committed (a reactivation logged "ACTIVE → ACTIVE").
    let found = super::locked(&txn, member::Entity::find_by_id(member_id))
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    let detail = format!("member {member_id}: {}", what(&found));
    let mut active: member::ActiveModel = found.into();
    edit(&mut active);
    let now = crate::clock::system_now();
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;
    crate::audit::append_in(&txn, &[&stamp.administration(detail)], now).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Suspends or reactivates a member. A suspended member's tokens are refused
/// from the next request on.
pub async fn set_status(
    db: &DatabaseConnection,
    _admin: AdminAccess,
    stamp: &AuditStamp,
    member_id: Uuid,
    status: MemberStatus,
) -> ApiResult<member::Model> {
    crate::policy::may_change_member(&stamp.principal, member_id)?;
    change(
        db,
        stamp,
        member_id,
        |m| m.status = Set(status.as_str().to_string()),
        |m| format!("status {} → {}", m.status, status.as_str()),
    )
    .await
}

/// `BAD_USER_INPUT` (at `field`) for a profession the organisation's kind
/// does not employ ([`crate::policy::may_work_at`]).
fn fits(
    organization: &entities::organization::Model,
    profession: Profession,
    field: &str,
) -> ApiResult<()> {
    match crate::domain::OrganizationKind::parse(&organization.kind) {
        Some(kind) => crate::policy::may_work_at(field, profession, kind),
        None => Ok(()),
    }
}

/// `BAD_USER_INPUT` for the legacy `THERAPIST`: members registered before PT,
/// OT and ST were told apart keep it, nobody is given it again.
fn assignable(field: &str, profession: Profession) -> ApiResult<()> {
    if profession == Profession::Therapist {
        return Err(ApiError::bad_input(
            field,
            "THERAPIST is kept only for members registered before PT, OT and ST were told apart; \
use PHYSICAL_THERAPIST, OCCUPATIONAL_THERAPIST or SPEECH_THERAPIST",
        ));
    }
    Ok(())
}

/// Names a member's profession — chiefly a legacy `THERAPIST`'s, once the
/// administrator knows whether they are a PT, an OT or an ST. The member's
/// rights follow from the next request on; open WebSocket sessions end (see
/// [`recheck`]) so none keeps the former profession's rights.
pub async fn set_profession(
    db: &DatabaseConnection,
    _admin: AdminAccess,
    stamp: &AuditStamp,
    member_id: Uuid,
    profession: Profession,
) -> ApiResult<member::Model> {
    assignable("profession", profession)?;
    crate::policy::may_change_member(&stamp.principal, member_id)?;
    let member = member::Entity::find_by_id(member_id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    let organization =
        super::organizations::require_exists(db, "memberId", member.organization_id).await?;
    fits(&organization, profession, "profession")?;
    change(
        db,
        stamp,
        member_id,
        |m| m.profession = Set(profession.as_str().to_string()),
        |m| format!("profession {} → {}", m.profession, profession.as_str()),
    )
    .await
}

/// Who a member is at the identity provider: a subject of an issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalIdentity {
    /// The provider's `iss` (the hub's `RENKEI_JWT_ISSUER`).
    pub issuer: String,
    pub subject: ExternalSubject,
}

fn subject_taken(identity: &ExternalIdentity) -> String {
    format!(
        "the subject {:?} of {:?} already belongs to another member; clear it there first",
        identity.subject.as_str(),
        identity.issuer
    )
}

/// Sets (or, with `None`, clears) the subject by which the identity provider
/// names a member. `CONFLICT` when another member has it: one subject is one
/// person. The member's tokens that name it by subject hold from the next
/// request on (and stop holding for the member it was taken from).
pub async fn set_external_identity(
    db: &DatabaseConnection,
    _admin: AdminAccess,
    stamp: &AuditStamp,
    member_id: Uuid,
    identity: Option<ExternalIdentity>,
) -> ApiResult<member::Model> {
    crate::policy::may_change_member(&stamp.principal, member_id)?;
    let named = identity
        .as_ref()
        .map(|i| format!("subject {:?} of {:?}", i.subject.as_str(), i.issuer))
        .unwrap_or_else(|| "no subject".into());
    let txn = super::begin_write(db).await?;
    let updated = set_identity_in(&txn, member_id, identity).await?;
    let entry = stamp.administration(format!(
        "member {member_id}: identity-provider subject set to {named}"
    ));
    crate::audit::append_in(&txn, &[&entry], crate::clock::system_now()).await?;
    txn.commit().await?;
    Ok(updated)
}

/// [`set_external_identity`] without an authenticated caller, for the
/// operator's command line (`renkei add-admin --external-subject`).
pub async fn unchecked_set_external_identity(
    db: &DatabaseConnection,
    member_id: Uuid,
    identity: Option<ExternalIdentity>,
) -> ApiResult<member::Model> {
    set_identity_in(db, member_id, identity).await
}

async fn set_identity_in(
    db: &impl sea_orm::ConnectionTrait,
    member_id: Uuid,
    identity: Option<ExternalIdentity>,
) -> ApiResult<member::Model> {
    let found = member::Entity::find_by_id(member_id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    let mut active: member::ActiveModel = found.into();
    active.external_issuer = Set(identity.as_ref().map(|i| i.issuer.clone()));
    active.external_subject = Set(identity.as_ref().map(|i| i.subject.as_str().to_string()));
    active.updated_at = Set(crate::clock::system_now());
    // The unique index decides, so two administrators giving one subject to
    // two members at once cannot both succeed.
    active.update(db).await.map_err(|e| {
        super::conflict_on_unique(e, || match &identity {
            Some(identity) => subject_taken(identity),
            None => "the member changed meanwhile; try again".into(),
        })
    })
}

/// The member the identity provider `issuer` calls `subject`, if any.
pub async fn by_external_subject(
    db: &DatabaseConnection,
    issuer: &str,
    subject: &str,
) -> ApiResult<Option<member::Model>> {
    Ok(member::Entity::find()
        .filter(member::Column::ExternalIssuer.eq(issuer))
        .filter(member::Column::ExternalSubject.eq(subject))
        .one(db)
        .await?)
}

pub async fn by_ids(
    db: &DatabaseConnection,
    ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, member::Model>> {
    Ok(member::Entity::find()
        .filter(super::id_in(
            db.get_database_backend(),
            (member::Entity, member::Column::Id),
            ids,
        ))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect())
}

pub async fn of_organizations(
    db: &DatabaseConnection,
    org_ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, Vec<member::Model>>> {
    let rows = member::Entity::find()
        .filter(super::id_in(
            db.get_database_backend(),
            (member::Entity, member::Column::OrganizationId),
            org_ids,
        ))
        .order_by_asc(member::Column::Id)
        .all(db)
        .await?;
    let mut map: HashMap<Uuid, Vec<member::Model>> = HashMap::new();
    for m in rows {
        map.entry(m.organization_id).or_default().push(m);
    }
    Ok(map)
}

/// The principal for a verified token subject. A member who does not exist
/// (any more) or is suspended is not authenticated.
pub async fn principal_for(db: &DatabaseConnection, member_id: Uuid) -> ApiResult<Principal> {
    let m = member::Entity::find_by_id(member_id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("the token's member is not registered".into()))?;
    principal_of(&m)
}

/// Whether an authenticated caller still holds: the member still registered
/// and active, the API key not revoked — read from the database, past every
/// cache. For long-lived sessions (WebSocket), which authenticated once.
pub async fn recheck(db: &DatabaseConnection, principal: &Principal) -> ApiResult<()> {
    recheck_many(db, std::slice::from_ref(principal))
        .await?
        .remove(principal)
        .unwrap_or_else(|| Err(ApiError::internal("recheck lost its caller")))
}

/// [`recheck`] for many callers at once — the subscribers an event reaches
/// — in at most two statements (their members, their API keys): each
/// caller's verdict, `UNAUTHENTICATED` with the reason for one that no
/// longer holds.
pub async fn recheck_many(
    db: &DatabaseConnection,
    principals: &[Principal],
) -> ApiResult<HashMap<Principal, ApiResult<()>>> {
    let backend = db.get_database_backend();
    let mut member_ids: Vec<Uuid> = Vec::new();
    let mut key_ids: Vec<Uuid> = Vec::new();
    for p in principals {
        match p {
            Principal::Member { member_id, .. } => member_ids.push(*member_id),
            Principal::System { api_key_id, .. } => key_ids.push(*api_key_id),
        }
    }
    member_ids.sort_unstable();
    member_ids.dedup();
    key_ids.sort_unstable();
    key_ids.dedup();
    let members = async {
        if member_ids.is_empty() {
            return Ok(Vec::new());
        }
        member::Entity::find()
            .filter(super::id_in(
                backend,
                (member::Entity, member::Column::Id),
                &member_ids,
            ))
            .all(db)
            .await
    };
    let keys = async {
        if key_ids.is_empty() {
            return Ok(Vec::new());
        }
        entities::api_key::Entity::find()
            .filter(super::id_in(
                backend,
                (entities::api_key::Entity, entities::api_key::Column::Id),
                &key_ids,
            ))
            .all(db)
            .await
    };
    let (members, keys) = futures_util::try_join!(members, keys)?;
    let members: HashMap<Uuid, member::Model> = members.into_iter().map(|m| (m.id, m)).collect();
    let keys: HashMap<Uuid, entities::api_key::Model> =
        keys.into_iter().map(|k| (k.id, k)).collect();
    let mut out = HashMap::new();
    for p in principals {
        let verdict = match p {
            Principal::Member {
                member_id,
                profession,
                ..
            } => match members.get(member_id) {
                None => Err(ApiError::Unauthenticated(
                    "the token's member is not registered".into(),
                )),
                Some(m) => principal_of(m).and_then(|now| {
                    // A session authenticated before an administrator
                    // changed the member's profession would keep the former
                    // rights: it ends.
                    if now.profession() != Some(*profession) {
                        Err(ApiError::Unauthenticated(
                            "the member's profession has changed; sign in again".into(),
                        ))
                    } else {
                        Ok(())
                    }
                }),
            },
            Principal::System { api_key_id, .. } => match keys.get(api_key_id) {
                Some(key) if key.revoked_at.is_none() => Ok(()),
                Some(_) => Err(ApiError::Unauthenticated(
                    "the API key has been revoked".into(),
                )),
                None => Err(ApiError::Unauthenticated("the API key is not valid".into())),
            },
        };
        out.insert(p.clone(), verdict);
    }
    Ok(out)
}

/// The principal a member acts as; `UNAUTHENTICATED` while suspended.
pub fn principal_of(m: &member::Model) -> ApiResult<Principal> {
    if MemberStatus::from_db(&m.status)? != MemberStatus::Active {
        return Err(ApiError::Unauthenticated(
            "the token's member is suspended".into(),
        ));
    }
    Ok(Principal::Member {
        member_id: m.id,
        organization_id: m.organization_id,
        profession: Profession::from_db(&m.profession)?,
    })
}

/// Creates a network administrator — and, if no coordination centre of that
/// name exists, the centre — without an authenticated caller. This is how an
/// operator bootstraps a new network (`renkei add-admin`): only an administrator
/// may register members through the API, so the first one comes from here.
/// Returns (organisation id, member id).
pub async fn unchecked_bootstrap_admin(
    db: &DatabaseConnection,
    organization_name: Text,
    admin_name: Text,
) -> ApiResult<(Uuid, Uuid)> {
    unchecked_bootstrap_admin_with(db, organization_name, admin_name, None).await
}

/// [`unchecked_bootstrap_admin`], naming the administrator's subject at the
/// identity provider (for hubs that find members by it). `CONFLICT`, and
/// nothing created, when another member has that subject.
pub async fn unchecked_bootstrap_admin_with(
    db: &DatabaseConnection,
    organization_name: Text,
    admin_name: Text,
    identity: Option<ExternalIdentity>,
) -> ApiResult<(Uuid, Uuid)> {
    if let Some(identity) = &identity
        && by_external_subject(db, &identity.issuer, identity.subject.as_str())
            .await?
            .is_some()
    {
        return Err(ApiError::Conflict(subject_taken(identity)));
    }
    use crate::domain::OrganizationKind;
    use entities::organization;
    let now = crate::clock::system_now();
    let existing = organization::Entity::find()
        .filter(organization::Column::Kind.eq(OrganizationKind::CoordinationCenter.as_str()))
        .filter(organization::Column::Name.eq(organization_name.as_str()))
        .one(db)
        .await?;
    let org_id = match existing {
        Some(o) => o.id,
        None => {
            let id = super::new_id();
            organization::Entity::insert(organization::ActiveModel {
                id: Set(id),
                kind: Set(OrganizationKind::CoordinationCenter.as_str().to_string()),
                name: Set(organization_name.into_inner()),
                name_kana: Set(None),
                postal_code: Set(None),
                address: Set(None),
                municipality: Set(None),
                phone: Set(None),
                fax: Set(None),
                latitude: Set(None),
                longitude: Set(None),
                medical_institution_code: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            })
            .exec(db)
            .await?;
            id
        }
    };
    let member_id = super::new_id();
    member::Entity::insert(member::ActiveModel {
        id: Set(member_id),
        organization_id: Set(org_id),
        name: Set(admin_name.into_inner()),
        name_kana: Set(None),
        profession: Set(Profession::NetworkAdministrator.as_str().to_string()),
        status: Set(MemberStatus::Active.as_str().to_string()),
        external_issuer: Set(identity.as_ref().map(|i| i.issuer.clone())),
        external_subject: Set(identity.as_ref().map(|i| i.subject.as_str().to_string())),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec(db)
    .await
    .map_err(|e| {
        super::conflict_on_unique(e, || {
            identity
                .as_ref()
                .map(subject_taken)
                .unwrap_or_else(|| "the administrator could not be created".into())
        })
    })?;
    Ok((org_id, member_id))
}

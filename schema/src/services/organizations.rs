//! The resource directory: organisations and their capabilities.

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Query,
};
use uuid::Uuid;

use crate::domain::{
    Capability, GeoPoint, Kana, MedicalInstitutionCode, Municipality, OrganizationKind, Phone,
    PostalCode, Text,
};
use crate::error::{ApiError, ApiResult};

/// Refuses a municipality no organisation of the directory lies in, for
/// what is tabulated over one (indicators, the disaster register). The name
/// is matched as the start of patients' addresses (`domain::lives_in`),
/// so a name the network does not serve would only narrow the tables to
/// whoever lives there; [`Municipality`] already refuses an address.
pub async fn require_served(db: &DatabaseConnection, municipality: &Municipality) -> ApiResult<()> {
    use sea_orm::PaginatorTrait;
    let served = organization::Entity::find()
        .filter(organization::Column::Municipality.eq(municipality.as_str()))
        .count(db)
        .await?;
    if served == 0 {
        return Err(ApiError::bad_input(
            "municipality",
            "no organisation of the directory is in this municipality: name a municipality the network serves, as the directory names it (e.g. 北見市)",
        ));
    }
    Ok(())
}
use crate::policy::AdminAccess;
use entities::{organization, organization_capability};

/// A validated request to register an organisation.
#[derive(Debug)]
pub struct NewOrganization {
    pub kind: OrganizationKind,
    pub name: Text,
    pub name_kana: Option<Kana>,
    pub postal_code: Option<PostalCode>,
    pub address: Option<Text>,
    pub municipality: Option<Municipality>,
    pub phone: Option<Phone>,
    pub fax: Option<Phone>,
    pub location: Option<GeoPoint>,
    pub capabilities: Vec<Capability>,
    /// 医療機関コード, for a medical institution: how FHIR senders name it.
    pub medical_institution_code: Option<MedicalInstitutionCode>,
}

pub async fn register(
    db: &DatabaseConnection,
    _admin: AdminAccess,
    new: NewOrganization,
) -> ApiResult<organization::Model> {
    let now = crate::clock::system_now();
    let id = super::new_id();
    let code = new
        .medical_institution_code
        .map(MedicalInstitutionCode::into_inner);
    let conflict = code.as_ref().map(|c| {
        format!("the medical institution code {c} is already registered for another organisation")
    });
    let model = organization::ActiveModel {
        id: Set(id),
        kind: Set(new.kind.as_str().to_string()),
        name: Set(new.name.into_inner()),
        name_kana: Set(new.name_kana.map(Kana::into_inner)),
        postal_code: Set(new.postal_code.map(PostalCode::into_inner)),
        address: Set(new.address.map(Text::into_inner)),
        municipality: Set(new.municipality.map(Municipality::into_inner)),
        phone: Set(new.phone.map(Phone::into_inner)),
        fax: Set(new.fax.map(Phone::into_inner)),
        latitude: Set(new.location.map(|l| l.latitude)),
        longitude: Set(new.location.map(|l| l.longitude)),
        medical_institution_code: Set(code),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let mut caps = new.capabilities;
    caps.sort();
    caps.dedup();
    let txn = crate::services::begin_write(db).await?;
    let inserted = organization::Entity::insert(model)
        .exec_with_returning(&txn)
        .await
        .map_err(|e| match conflict {
            Some(message) => super::conflict_on_unique(e, || message),
            None => e.into(),
        })?;
    if !caps.is_empty() {
        organization_capability::Entity::insert_many(caps.iter().map(|c| {
            organization_capability::ActiveModel {
                organization_id: Set(id),
                capability: Set(c.as_str().to_string()),
            }
        }))
        .exec(&txn)
        .await?;
    }
    txn.commit().await?;
    Ok(inserted)
}

/// Filters for listing organisations; all given filters must match.
#[derive(Debug, Default)]
pub struct OrganizationFilter {
    pub kinds: Vec<OrganizationKind>,
    pub municipality: Option<String>,
    /// The organisation must offer every one of these.
    pub capabilities: Vec<Capability>,
}

/// One page in id order (ids are UUIDv7, so this is registration order).
/// Returns the page and whether more follow.
pub async fn list(
    db: &DatabaseConnection,
    filter: &OrganizationFilter,
    after: Option<Uuid>,
    first: u64,
) -> ApiResult<(Vec<organization::Model>, bool)> {
    let mut query = organization::Entity::find().order_by_asc(organization::Column::Id);
    if !filter.kinds.is_empty() {
        query = query.filter(
            organization::Column::Kind.is_in(filter.kinds.iter().map(|k| k.as_str().to_string())),
        );
    }
    if let Some(m) = &filter.municipality {
        query = query.filter(organization::Column::Municipality.eq(m.as_str()));
    }
    for cap in &filter.capabilities {
        query = query.filter(
            organization::Column::Id.in_subquery(
                Query::select()
                    .column(organization_capability::Column::OrganizationId)
                    .from(organization_capability::Entity)
                    .and_where(organization_capability::Column::Capability.eq(cap.as_str()))
                    .to_owned(),
            ),
        );
    }
    if let Some(after) = after {
        query = query.filter(organization::Column::Id.gt(after));
    }
    let mut rows = query.limit(first + 1).all(db).await?;
    let has_next = rows.len() as u64 > first;
    rows.truncate(first as usize);
    Ok((rows, has_next))
}

pub async fn by_ids(
    db: &DatabaseConnection,
    ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, organization::Model>> {
    Ok(organization::Entity::find()
        .filter(super::id_in(
            db.get_database_backend(),
            (organization::Entity, organization::Column::Id),
            ids,
        ))
        .all(db)
        .await?
        .into_iter()
        .map(|o| (o.id, o))
        .collect())
}

pub async fn capabilities_of(
    db: &DatabaseConnection,
    ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, Vec<Capability>>> {
    let rows = organization_capability::Entity::find()
        .filter(super::id_in(
            db.get_database_backend(),
            (
                organization_capability::Entity,
                organization_capability::Column::OrganizationId,
            ),
            ids,
        ))
        .all(db)
        .await?;
    let mut map: HashMap<Uuid, Vec<Capability>> = HashMap::new();
    for row in rows {
        map.entry(row.organization_id)
            .or_default()
            .push(Capability::from_db(&row.capability)?);
    }
    for caps in map.values_mut() {
        caps.sort();
    }
    Ok(map)
}

/// Fails with `BAD_USER_INPUT` naming `field` when the organisation is
/// unknown; reads only the id (a check, not a load: it also works on a
/// database whose `organizations` table predates later columns, as the
/// migration tests create).
pub async fn ensure_exists(db: &DatabaseConnection, field: &str, id: Uuid) -> ApiResult<()> {
    organization::Entity::find_by_id(id)
        .select_only()
        .column(organization::Column::Id)
        .into_tuple::<Uuid>()
        .one(db)
        .await?
        .map(drop)
        .ok_or_else(|| ApiError::bad_input(field, format!("no organisation has the id {id}")))
}

/// The organisation; `BAD_USER_INPUT` naming `field` when it is unknown.
pub async fn require_exists(
    db: &DatabaseConnection,
    field: &str,
    id: Uuid,
) -> ApiResult<organization::Model> {
    organization::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::bad_input(field, format!("no organisation has the id {id}")))
}

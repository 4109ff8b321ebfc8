//! Who is calling. The server authenticates every request (JWT or API key) and
//! puts a [`RequestContext`] into the GraphQL request data; nothing in the schema
//! runs without one.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::domain::{AccessLevel, DataCategory, Profession};
use crate::error::{ApiError, ApiResult};

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A professional, authenticated by a JWT whose subject is the member id.
    Member {
        member_id: Uuid,
        organization_id: Uuid,
        profession: Profession,
    },
    /// An organisation's system (a clinic's EHR, a pharmacy's dispensing system),
    /// authenticated by an API key. It acts for its organisation.
    System {
        api_key_id: Uuid,
        organization_id: Uuid,
        /// What the key may do, per data category (configured when the key is
        /// created); it takes the place of a profession's row of the matrix.
        permissions: SystemPermissions,
    },
}

/// An API key's permissions: data category → level; absent means none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SystemPermissions(BTreeMap<DataCategory, AccessLevel>);

impl SystemPermissions {
    pub fn new(levels: impl IntoIterator<Item = (DataCategory, AccessLevel)>) -> Self {
        SystemPermissions(
            levels
                .into_iter()
                .filter(|(_, l)| *l != AccessLevel::None)
                .collect(),
        )
    }

    pub fn level(&self, category: DataCategory) -> AccessLevel {
        self.0.get(&category).copied().unwrap_or(AccessLevel::None)
    }

    pub fn iter(&self) -> impl Iterator<Item = (DataCategory, AccessLevel)> + '_ {
        self.0.iter().map(|(c, l)| (*c, *l))
    }

    /// Stored as a JSON object `{"ADL": "READ", …}`.
    pub fn to_json(&self) -> String {
        let map: BTreeMap<&str, &str> = self
            .0
            .iter()
            .map(|(c, l)| (c.as_str(), l.as_str()))
            .collect();
        serde_json::to_string(&map).unwrap_or_else(|_| "{}".into())
    }

    pub fn from_json(json: &str) -> ApiResult<Self> {
        let map: BTreeMap<String, String> =
            serde_json::from_str(json).map_err(ApiError::internal)?;
        let mut out = BTreeMap::new();
        for (c, l) in map {
            out.insert(DataCategory::from_db(&c)?, AccessLevel::from_db(&l)?);
        }
        Ok(SystemPermissions(out))
    }
}

impl Principal {
    pub fn organization_id(&self) -> Uuid {
        match self {
            Principal::Member {
                organization_id, ..
            }
            | Principal::System {
                organization_id, ..
            } => *organization_id,
        }
    }

    pub fn profession(&self) -> Option<Profession> {
        match self {
            Principal::Member { profession, .. } => Some(*profession),
            Principal::System { .. } => None,
        }
    }
}

/// Per-request data every resolver can rely on.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub principal: Principal,
    /// The `x-request-id` of the HTTP request, for logs and audit entries.
    pub request_id: String,
}

//! Who is calling. The server authenticates every request (JWT or API key) and
//! puts a [`RequestContext`] into the GraphQL request data; nothing in the schema
//! runs without one.

use uuid::Uuid;

use crate::domain::Profession;

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
    },
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

//! Who is asking: resolved once per request, passed to every service call.
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::error::{AppError, AppResult};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Analyst,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "analyst" => Some(Role::Analyst),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Read,
    Write,
    Ingest,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "ingest" => Some(Scope::Ingest),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User(Uuid),
    ApiKey(Uuid),
}

/// What an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    /// Read anything of the agency.
    Read,
    /// Create or change research data (questionnaires, factors, segments…).
    WriteResearch,
    /// Push responses and other raw data.
    Ingest,
    /// Manage clients.
    ManageClients,
    /// Manage API keys and members; read job failures.
    Admin,
}

#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub agency_id: Uuid,
    pub principal: Principal,
    /// The member's role; None for API keys.
    pub role: Option<Role>,
    /// API key scopes; empty for users.
    pub scopes: Vec<Scope>,
    /// The HTTP request's `x-request-id` (REST and GraphQL alike), for the
    /// audit log; None outside a request.
    pub request_id: Option<String>,
}

impl RequestCtx {
    /// The worker acting for an agency on its own data (reads of results
    /// that are also served to users, e.g. the JTBD map for chain timing).
    /// Never built from a request.
    pub fn worker(agency_id: Uuid) -> Self {
        RequestCtx {
            agency_id,
            principal: Principal::User(Uuid::nil()),
            role: Some(Role::Owner),
            scopes: Vec::new(),
            request_id: None,
        }
    }

    pub fn user_id(&self) -> Option<Uuid> {
        match self.principal {
            Principal::User(id) => Some(id),
            Principal::ApiKey(_) => None,
        }
    }

    /// The acting principal's id, for audit columns.
    pub fn actor_id(&self) -> Uuid {
        match self.principal {
            Principal::User(id) | Principal::ApiKey(id) => id,
        }
    }

    pub fn allows(&self, perm: Perm) -> bool {
        match (&self.principal, self.role) {
            (Principal::User(_), Some(role)) => match perm {
                Perm::Read => true,
                Perm::WriteResearch | Perm::Ingest => role >= Role::Analyst,
                Perm::ManageClients | Perm::Admin => role >= Role::Admin,
            },
            (Principal::User(_), None) => false,
            (Principal::ApiKey(_), _) => match perm {
                Perm::Read => self.scopes.contains(&Scope::Read),
                Perm::WriteResearch => self.scopes.contains(&Scope::Write),
                Perm::Ingest => {
                    self.scopes.contains(&Scope::Ingest) || self.scopes.contains(&Scope::Write)
                }
                // Keys never manage clients, keys or members.
                Perm::ManageClients | Perm::Admin => false,
            },
        }
    }

    pub fn require(&self, perm: Perm) -> AppResult<()> {
        if self.allows(perm) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "this {} may not {}",
                match self.principal {
                    Principal::User(_) => "role",
                    Principal::ApiKey(_) => "API key",
                },
                match perm {
                    Perm::Read => "read",
                    Perm::WriteResearch => "change research data",
                    Perm::Ingest => "ingest data",
                    Perm::ManageClients => "manage clients",
                    Perm::Admin => "administer the agency",
                }
            )))
        }
    }

    pub fn require_role(&self, min: Role) -> AppResult<()> {
        match self.role {
            Some(r) if r >= min => Ok(()),
            _ => Err(AppError::Forbidden(format!(
                "requires the {} role",
                min.as_str()
            ))),
        }
    }
}

//! The people who answer: agents and supervisors, as configured in `[[agents]]`.

use crate::domain::EmailAddress;
use serde::Deserialize;

/// An agent or supervisor.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub name: String,
    pub address: EmailAddress,
    #[serde(default = "default_role")]
    pub role: Role,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    /// Gets escalations; may contact unsatisfied customers.
    Supervisor,
}

fn default_role() -> Role {
    Role::Agent
}

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::DomainError;

/// A directory object id: a GUID, rendered lower-case and hyphenated as Graph does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ObjectId(Uuid);

impl ObjectId {
    pub fn new_random() -> Self {
        ObjectId(Uuid::new_v4())
    }

    pub fn parse(text: &str) -> Result<Self, DomainError> {
        // Graph accepts GUIDs with or without braces; it never accepts the simple (no hyphen) form in paths.
        let trimmed = text.trim_start_matches('{').trim_end_matches('}');
        if trimmed.len() != 36 {
            return Err(DomainError::invalid(format!("Invalid object identifier '{text}'.")));
        }
        Uuid::parse_str(trimmed).map(ObjectId).map_err(|_| DomainError::invalid(format!("Invalid object identifier '{text}'.")))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for ObjectId {
    fn from(value: Uuid) -> Self {
        ObjectId(value)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for ObjectId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ObjectId::parse(s)
    }
}

/// A tenant is identified by its directory id; this alias documents intent at call sites.
pub type TenantId = ObjectId;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hyphenated_and_braced_guids() {
        let id = ObjectId::parse("BF883DBF-1C86-4E34-9C58-6D0F4A4F6E2A").unwrap();
        assert_eq!(id.to_string(), "bf883dbf-1c86-4e34-9c58-6d0f4a4f6e2a");
        assert_eq!(ObjectId::parse("{bf883dbf-1c86-4e34-9c58-6d0f4a4f6e2a}").unwrap(), id);
    }

    #[test]
    fn refuses_non_guids() {
        for bad in ["", "abc", "bf883dbf1c864e349c586d0f4a4f6e2a", "bf883dbf-1c86-4e34-9c58-6d0f4a4f6e2z"] {
            assert!(ObjectId::parse(bad).is_err(), "{bad}");
        }
    }
}

//! Groups of the directory: security groups and Microsoft 365 (`Unified`) groups, and the
//! directory objects that can be their members.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ObjectId, TenantId};
use crate::{DomainError, User};

/// `groupTypes` value of a Microsoft 365 group.
pub const UNIFIED: &str = "Unified";
/// `groupTypes` value of a dynamic group (needs `membershipRule`; guestlist does not evaluate rules).
pub const DYNAMIC_MEMBERSHIP: &str = "DynamicMembership";

/// Limits of the group resource (Graph's group resource reference).
pub mod limits {
    pub const DISPLAY_NAME: usize = 256;
    pub const MAIL_NICKNAME: usize = 64;
    /// Graph documents no limit; guestlist's choice, so no request can store unbounded text.
    pub const DESCRIPTION: usize = 1024;
}

/// `visibility` of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Visibility {
    Public,
    Private,
    HiddenMembership,
}

impl Visibility {
    pub fn as_str(&self) -> &'static str {
        match self {
            Visibility::Public => "Public",
            Visibility::Private => "Private",
            Visibility::HiddenMembership => "HiddenMembership",
        }
    }

    /// Case-insensitive on input, as Graph reads enum-like strings.
    pub fn parse(text: &str) -> Option<Self> {
        [Visibility::Public, Visibility::Private, Visibility::HiddenMembership].into_iter().find(|v| v.as_str().eq_ignore_ascii_case(text))
    }
}

/// A group of the directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: ObjectId,
    pub tenant_id: TenantId,
    pub display_name: String,
    pub description: Option<String>,
    pub mail_nickname: String,
    /// `<mailNickname>@<initial domain>` while mail-enabled, else `None`.
    pub mail: Option<String>,
    pub mail_enabled: bool,
    pub security_enabled: bool,
    pub group_types: Vec<String>,
    pub visibility: Option<Visibility>,
    pub created_date_time: DateTime<Utc>,
    /// Bumped on every write; a write that expects an older version loses (optimistic concurrency).
    pub version: i64,
}

/// What `POST /groups` asks for; [`Group::create`] checks it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewGroup {
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub mail_nickname: Option<String>,
    pub mail_enabled: Option<bool>,
    pub security_enabled: Option<bool>,
    pub group_types: Vec<String>,
    pub visibility: Option<String>,
}

/// The writable properties of `PATCH /groups/{id}`. `None` leaves a property alone; `Some(None)` clears it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupChanges {
    pub display_name: Option<String>,
    pub description: Option<Option<String>>,
    pub mail_nickname: Option<String>,
    pub security_enabled: Option<bool>,
    pub visibility: Option<String>,
}

fn invalid(property: &str, detail: &str) -> DomainError {
    DomainError::invalid(format!("Invalid value specified for property '{property}' of resource 'Group'.{detail}"))
}

fn required(property: &str) -> DomainError {
    DomainError::invalid(format!("Property '{property}' is required when creating the resource."))
}

fn check_display_name(name: &str) -> Result<(), DomainError> {
    if name.trim().is_empty() {
        return Err(invalid("displayName", ""));
    }
    if name.chars().count() > limits::DISPLAY_NAME {
        return Err(invalid("displayName", &format!(" It is longer than {} characters.", limits::DISPLAY_NAME)));
    }
    Ok(())
}

/// `mailNickname`: at most 64 ASCII characters, none of `@ ( ) \ [ ] " ; : < > ,` or space (Graph's group reference).
pub fn check_mail_nickname(nickname: &str) -> Result<(), DomainError> {
    const FORBIDDEN: &[char] = &['@', '(', ')', '\\', '[', ']', '"', ';', ':', '<', '>', ',', ' '];
    if nickname.is_empty() || nickname.chars().count() > limits::MAIL_NICKNAME {
        return Err(invalid("mailNickname", &format!(" It must be 1 to {} characters long.", limits::MAIL_NICKNAME)));
    }
    if let Some(bad) = nickname.chars().find(|c| !c.is_ascii() || c.is_ascii_control() || FORBIDDEN.contains(c)) {
        return Err(invalid("mailNickname", &format!(" The character '{bad}' is not allowed.")));
    }
    Ok(())
}

fn check_description(description: &Option<String>) -> Result<(), DomainError> {
    match description {
        Some(text) if text.chars().count() > limits::DESCRIPTION => {
            Err(invalid("description", &format!(" It is longer than {} characters.", limits::DESCRIPTION)))
        }
        _ => Ok(()),
    }
}

fn parse_visibility(text: &str) -> Result<Visibility, DomainError> {
    Visibility::parse(text).ok_or_else(|| invalid("visibility", " Possible values are Public, Private and HiddenMembership."))
}

impl Group {
    /// A new group as Graph creates it: security groups are `mailEnabled: false, securityEnabled: true`,
    /// Microsoft 365 groups `groupTypes: ["Unified"], mailEnabled: true` (Graph's create-group reference).
    pub fn create(tenant_id: TenantId, tenant_domain: &str, request: NewGroup, now: DateTime<Utc>) -> Result<Group, DomainError> {
        let display_name = request.display_name.ok_or_else(|| required("displayName"))?;
        check_display_name(&display_name)?;
        let mail_nickname = request.mail_nickname.ok_or_else(|| required("mailNickname"))?;
        check_mail_nickname(&mail_nickname)?;
        let mail_enabled = request.mail_enabled.ok_or_else(|| required("mailEnabled"))?;
        let security_enabled = request.security_enabled.ok_or_else(|| required("securityEnabled"))?;
        check_description(&request.description)?;
        let mut group_types: Vec<String> = Vec::new();
        for group_type in &request.group_types {
            let canonical = if group_type.eq_ignore_ascii_case(UNIFIED) {
                UNIFIED
            } else if group_type.eq_ignore_ascii_case(DYNAMIC_MEMBERSHIP) {
                return Err(DomainError::invalid(
                    "Dynamic membership groups are not supported by guestlist: 'membershipRule' is not evaluated.",
                ));
            } else {
                return Err(invalid("groupTypes", &format!(" '{group_type}' is not a group type.")));
            };
            if !group_types.iter().any(|t| t == canonical) {
                group_types.push(canonical.to_string());
            }
        }
        let unified = group_types.iter().any(|t| t == UNIFIED);
        if mail_enabled && !unified {
            // Graph's answer to a mail-enabled security group or distribution list.
            return Err(DomainError::invalid("The service does not currently support writes of mail-enabled groups. Please ensure that the mail-enablement property is unset or is set to false."));
        }
        if unified && !mail_enabled {
            return Err(DomainError::invalid(
                "A Microsoft 365 group (groupTypes 'Unified') must be created with 'mailEnabled' set to true.",
            ));
        }
        if !unified && !security_enabled {
            return Err(DomainError::invalid(
                "A group that is not a Microsoft 365 group must be a security group: set 'securityEnabled' to true.",
            ));
        }
        let visibility = match request.visibility.as_deref() {
            Some(text) => parse_visibility(text)?,
            // Unset visibility: security groups are Private, Microsoft 365 groups Public (Graph's group reference).
            None if unified => Visibility::Public,
            None => Visibility::Private,
        };
        if visibility == Visibility::HiddenMembership && !unified {
            return Err(invalid("visibility", " HiddenMembership applies to Microsoft 365 groups only."));
        }
        let mut group = Group {
            id: ObjectId::new_random(),
            tenant_id,
            display_name,
            description: request.description,
            mail_nickname,
            mail: None,
            mail_enabled,
            security_enabled,
            group_types,
            visibility: Some(visibility),
            created_date_time: now,
            version: 0,
        };
        group.mail = group.derived_mail(tenant_domain);
        Ok(group)
    }

    /// Applies a PATCH; the result is the group's next state.
    pub fn apply(mut self, changes: &GroupChanges, tenant_domain: &str) -> Result<Group, DomainError> {
        if let Some(name) = &changes.display_name {
            check_display_name(name)?;
            self.display_name = name.clone();
        }
        if let Some(description) = &changes.description {
            check_description(description)?;
            self.description = description.clone();
        }
        if let Some(nickname) = &changes.mail_nickname {
            check_mail_nickname(nickname)?;
            self.mail_nickname = nickname.clone();
        }
        if let Some(security_enabled) = changes.security_enabled {
            if !security_enabled && !self.is_unified() {
                return Err(DomainError::invalid(
                    "A group that is not a Microsoft 365 group must be a security group: 'securityEnabled' cannot be false.",
                ));
            }
            self.security_enabled = security_enabled;
        }
        if let Some(text) = &changes.visibility {
            let visibility = parse_visibility(text)?;
            // HiddenMembership is set only at creation (Graph's group reference).
            let hidden = visibility == Visibility::HiddenMembership || self.visibility == Some(Visibility::HiddenMembership);
            if hidden && self.visibility != Some(visibility) {
                return Err(invalid("visibility", " HiddenMembership can only be set when the group is created."));
            }
            self.visibility = Some(visibility);
        }
        self.mail = self.derived_mail(tenant_domain);
        Ok(self)
    }

    pub fn is_unified(&self) -> bool {
        self.group_types.iter().any(|t| t == UNIFIED)
    }

    fn derived_mail(&self, tenant_domain: &str) -> Option<String> {
        self.mail_enabled.then(|| format!("{}@{}", self.mail_nickname, tenant_domain))
    }

    /// `SMTP:<mail>` for a mail-enabled group.
    pub fn proxy_addresses(&self) -> Vec<String> {
        self.mail.iter().map(|mail| format!("SMTP:{mail}")).collect()
    }

    /// Entra's SID for cloud objects: `S-1-12-1-` and the object id as four little-endian 32-bit numbers.
    pub fn security_identifier(&self) -> String {
        let bytes = self.id.as_uuid().to_bytes_le();
        let parts: Vec<String> = bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]).to_string()).collect();
        format!("S-1-12-1-{}", parts.join("-"))
    }
}

/// A directory object that can be a member of a group.
#[derive(Debug, Clone, PartialEq)]
pub enum DirectoryObject {
    /// Boxed: a user is several times the size of a group.
    User(Box<User>),
    Group(Group),
}

impl DirectoryObject {
    pub fn id(&self) -> ObjectId {
        match self {
            DirectoryObject::User(user) => user.id,
            DirectoryObject::Group(group) => group.id,
        }
    }

    pub fn display_name(&self) -> &str {
        match self {
            DirectoryObject::User(user) => &user.display_name,
            DirectoryObject::Group(group) => &group.display_name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(mail_enabled: bool, security_enabled: bool, group_types: &[&str]) -> NewGroup {
        NewGroup {
            display_name: Some("Partners".into()),
            mail_nickname: Some("partners".into()),
            mail_enabled: Some(mail_enabled),
            security_enabled: Some(security_enabled),
            group_types: group_types.iter().map(|t| t.to_string()).collect(),
            ..NewGroup::default()
        }
    }

    fn create(request: NewGroup) -> Result<Group, DomainError> {
        Group::create(ObjectId::new_random(), "contoso.onmicrosoft.com", request, Utc::now())
    }

    #[test]
    fn security_group_has_no_mail_and_is_private() {
        let group = create(request(false, true, &[])).unwrap();
        assert_eq!(group.mail, None);
        assert!(group.proxy_addresses().is_empty());
        assert_eq!(group.visibility, Some(Visibility::Private));
    }

    #[test]
    fn unified_group_gets_mail_from_its_nickname() {
        let group = create(request(true, false, &["unified"])).unwrap();
        assert_eq!(group.group_types, vec!["Unified".to_string()]);
        assert_eq!(group.mail.as_deref(), Some("partners@contoso.onmicrosoft.com"));
        assert_eq!(group.proxy_addresses(), vec!["SMTP:partners@contoso.onmicrosoft.com".to_string()]);
        assert_eq!(group.visibility, Some(Visibility::Public));
    }

    #[test]
    fn refuses_kinds_graph_cannot_create() {
        assert!(create(request(true, true, &[])).is_err(), "mail-enabled security group");
        assert!(create(request(false, false, &[])).is_err(), "neither mail nor security");
        assert!(create(request(false, true, &["Unified"])).is_err(), "unified without mail");
        assert!(create(request(false, true, &["DynamicMembership"])).is_err());
        assert!(create(request(false, true, &["Team"])).is_err());
    }

    #[test]
    fn required_properties_and_limits() {
        assert!(create(NewGroup { display_name: None, ..request(false, true, &[]) }).is_err());
        assert!(create(NewGroup { mail_enabled: None, ..request(false, true, &[]) }).is_err());
        assert!(create(NewGroup { display_name: Some("x".repeat(257)), ..request(false, true, &[]) }).is_err());
        assert!(create(NewGroup { display_name: Some("x".repeat(256)), ..request(false, true, &[]) }).is_ok());
    }

    #[test]
    fn mail_nickname_characters() {
        assert!(check_mail_nickname("partners-2024_eu.x").is_ok());
        for bad in ["", "has space", "a@b", "semi;colon", "bräu", &"n".repeat(65)] {
            assert!(check_mail_nickname(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patch_moves_mail_with_the_nickname() {
        let group = create(request(true, false, &["Unified"])).unwrap();
        let changed = group
            .apply(&GroupChanges { mail_nickname: Some("allies".into()), ..GroupChanges::default() }, "contoso.onmicrosoft.com")
            .unwrap();
        assert_eq!(changed.mail.as_deref(), Some("allies@contoso.onmicrosoft.com"));
    }

    #[test]
    fn security_identifier_is_derived_from_the_id() {
        let mut group = create(request(false, true, &[])).unwrap();
        group.id = ObjectId::parse("00000001-0002-0003-0400-000000000005").unwrap();
        // Bytes (Microsoft order): 01 00 00 00 | 02 00 03 00 | 04 00 00 00 | 00 00 00 05.
        assert_eq!(group.security_identifier(), "S-1-12-1-1-196610-4-83886080");
    }
}

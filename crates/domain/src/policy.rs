//! External collaboration settings (contract §5): who may invite (`authorizationPolicy`) and
//! which domains may be invited (the `B2BManagementPolicy` allow/deny list).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::DomainError;

/// `authorizationPolicy.allowInvitesFrom` (contract §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum AllowInvitesFrom {
    None,
    AdminsAndGuestInviters,
    AdminsGuestInvitersAndAllMembers,
    /// Graph's default outside US Government clouds.
    #[default]
    Everyone,
}

impl AllowInvitesFrom {
    pub const ALL: [AllowInvitesFrom; 4] = [
        AllowInvitesFrom::None,
        AllowInvitesFrom::AdminsAndGuestInviters,
        AllowInvitesFrom::AdminsGuestInvitersAndAllMembers,
        AllowInvitesFrom::Everyone,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            AllowInvitesFrom::None => "none",
            AllowInvitesFrom::AdminsAndGuestInviters => "adminsAndGuestInviters",
            AllowInvitesFrom::AdminsGuestInvitersAndAllMembers => "adminsGuestInvitersAndAllMembers",
            AllowInvitesFrom::Everyone => "everyone",
        }
    }

    /// Exact enum member names, as Graph's OData enum parsing requires.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|value| value.as_str() == text)
    }
}

/// `authorizationPolicy.guestUserRoleId`: what guests may read (contract §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum GuestUserRole {
    /// The "User" role: guests read what members read.
    SameAsMembers,
    /// "Guest User": no enumeration of users and groups (the default).
    #[default]
    Limited,
    /// "Restricted Guest User": own profile only.
    Restricted,
}

impl GuestUserRole {
    pub const ALL: [GuestUserRole; 3] = [GuestUserRole::SameAsMembers, GuestUserRole::Limited, GuestUserRole::Restricted];

    pub fn role_id(&self) -> &'static str {
        match self {
            GuestUserRole::SameAsMembers => "a0b1b346-4d3e-4e8b-98f8-753987be4970",
            GuestUserRole::Limited => "10dae51f-b6af-4016-8d66-8c2a99b929b3",
            GuestUserRole::Restricted => "2af84b1e-32c8-42b7-82bc-daa82404023b",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|level| level.role_id().eq_ignore_ascii_case(text))
    }
}

/// `defaultUserRolePermissions`: stored and returned; guestlist enforces none of them yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefaultUserRolePermissions {
    pub allowed_to_create_apps: bool,
    pub allowed_to_create_security_groups: bool,
    pub allowed_to_create_tenants: Option<bool>,
    pub allowed_to_read_bitlocker_keys_for_owned_device: Option<bool>,
    pub allowed_to_read_other_users: bool,
    pub permission_grant_policies_assigned: Option<Vec<String>>,
}

impl Default for DefaultUserRolePermissions {
    fn default() -> Self {
        DefaultUserRolePermissions {
            allowed_to_create_apps: true,
            allowed_to_create_security_groups: true,
            allowed_to_create_tenants: Some(true),
            allowed_to_read_bitlocker_keys_for_owned_device: Some(true),
            allowed_to_read_other_users: true,
            permission_grant_policies_assigned: Some(vec!["ManagePermissionGrantsForSelf.microsoft-user-default-legacy".into()]),
        }
    }
}

/// The tenant's `authorizationPolicy` singleton, with Graph's defaults for a new tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicy {
    pub allow_invites_from: AllowInvitesFrom,
    pub guest_user_role: GuestUserRole,
    pub allowed_to_sign_up_email_based_subscriptions: bool,
    #[serde(rename = "allowedToUseSSPR")]
    pub allowed_to_use_sspr: bool,
    pub allow_email_verified_users_to_join_organization: bool,
    pub allow_user_consent_for_risky_apps: Option<bool>,
    pub block_msol_power_shell: Option<bool>,
    pub default_user_role_permissions: DefaultUserRolePermissions,
}

impl Default for AuthorizationPolicy {
    fn default() -> Self {
        AuthorizationPolicy {
            allow_invites_from: AllowInvitesFrom::Everyone,
            guest_user_role: GuestUserRole::Limited,
            allowed_to_sign_up_email_based_subscriptions: true,
            allowed_to_use_sspr: true,
            allow_email_verified_users_to_join_organization: false,
            allow_user_consent_for_risky_apps: Some(false),
            block_msol_power_shell: Some(false),
            default_user_role_permissions: DefaultUserRolePermissions::default(),
        }
    }
}

pub const AUTHORIZATION_POLICY_ID: &str = "authorizationPolicy";

impl AuthorizationPolicy {
    /// Graph's JSON shape (graph-schema-v1.json `authorizationPolicy`).
    pub fn to_graph(&self) -> Value {
        let p = &self.default_user_role_permissions;
        json!({
            "id": AUTHORIZATION_POLICY_ID,
            "displayName": "Authorization Policy",
            "description": "Used to manage authorization related settings across the company.",
            "allowInvitesFrom": self.allow_invites_from.as_str(),
            "allowedToSignUpEmailBasedSubscriptions": self.allowed_to_sign_up_email_based_subscriptions,
            "allowedToUseSSPR": self.allowed_to_use_sspr,
            "allowEmailVerifiedUsersToJoinOrganization": self.allow_email_verified_users_to_join_organization,
            "allowUserConsentForRiskyApps": self.allow_user_consent_for_risky_apps,
            "blockMsolPowerShell": self.block_msol_power_shell,
            "guestUserRoleId": self.guest_user_role.role_id(),
            "defaultUserRolePermissions": {
                "allowedToCreateApps": p.allowed_to_create_apps,
                "allowedToCreateSecurityGroups": p.allowed_to_create_security_groups,
                "allowedToCreateTenants": p.allowed_to_create_tenants,
                "allowedToReadBitlockerKeysForOwnedDevice": p.allowed_to_read_bitlocker_keys_for_owned_device,
                "allowedToReadOtherUsers": p.allowed_to_read_other_users,
                "permissionGrantPoliciesAssigned": p.permission_grant_policies_assigned,
            },
        })
    }

    /// Applies a PATCH body: every named property is validated before anything changes, so a bad
    /// body leaves the policy as it was. Unknown and read-only properties are refused.
    pub fn patched(&self, body: &Map<String, Value>) -> Result<AuthorizationPolicy, DomainError> {
        let mut next = self.clone();
        for (name, value) in body {
            match name.as_str() {
                "allowInvitesFrom" => {
                    let text = value.as_str().ok_or_else(|| invalid_value(name, value))?;
                    next.allow_invites_from = AllowInvitesFrom::parse(text).ok_or_else(|| invalid_value(name, value))?;
                }
                "guestUserRoleId" => {
                    let text = value.as_str().ok_or_else(|| invalid_value(name, value))?;
                    next.guest_user_role = GuestUserRole::parse(text).ok_or_else(|| invalid_value(name, value))?;
                }
                "allowedToSignUpEmailBasedSubscriptions" => next.allowed_to_sign_up_email_based_subscriptions = boolean(name, value)?,
                "allowedToUseSSPR" => next.allowed_to_use_sspr = boolean(name, value)?,
                "allowEmailVerifiedUsersToJoinOrganization" => next.allow_email_verified_users_to_join_organization = boolean(name, value)?,
                "allowUserConsentForRiskyApps" => next.allow_user_consent_for_risky_apps = optional_boolean(name, value)?,
                "blockMsolPowerShell" => next.block_msol_power_shell = optional_boolean(name, value)?,
                "defaultUserRolePermissions" => {
                    let object = value.as_object().ok_or_else(|| invalid_value(name, value))?;
                    next.default_user_role_permissions = patched_permissions(&next.default_user_role_permissions, object)?;
                }
                "@odata.type" if value.as_str() == Some("#microsoft.graph.authorizationPolicy") => {}
                _ => {
                    return Err(DomainError::invalid(format!(
                        "Property '{name}' does not exist on type 'microsoft.graph.authorizationPolicy' or cannot be updated."
                    )))
                }
            }
        }
        Ok(next)
    }

    /// Property-level differences, for the `PolicyDetails` audit value.
    pub fn changed_properties(&self, next: &AuthorizationPolicy) -> Vec<String> {
        let (before, after) = (self.to_graph(), next.to_graph());
        let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else { return Vec::new() };
        after.iter().filter(|(name, value)| before.get(*name) != Some(*value)).map(|(name, _)| name.clone()).collect()
    }
}

fn patched_permissions(current: &DefaultUserRolePermissions, body: &Map<String, Value>) -> Result<DefaultUserRolePermissions, DomainError> {
    let mut next = current.clone();
    for (name, value) in body {
        match name.as_str() {
            "allowedToCreateApps" => next.allowed_to_create_apps = boolean(name, value)?,
            "allowedToCreateSecurityGroups" => next.allowed_to_create_security_groups = boolean(name, value)?,
            "allowedToCreateTenants" => next.allowed_to_create_tenants = optional_boolean(name, value)?,
            "allowedToReadBitlockerKeysForOwnedDevice" => {
                next.allowed_to_read_bitlocker_keys_for_owned_device = optional_boolean(name, value)?
            }
            "allowedToReadOtherUsers" => next.allowed_to_read_other_users = boolean(name, value)?,
            "permissionGrantPoliciesAssigned" => {
                next.permission_grant_policies_assigned = match value {
                    Value::Null => None,
                    Value::Array(items) => Some(
                        items
                            .iter()
                            .map(|item| item.as_str().map(str::to_string).ok_or_else(|| invalid_value(name, value)))
                            .collect::<Result<_, _>>()?,
                    ),
                    _ => return Err(invalid_value(name, value)),
                }
            }
            _ => {
                return Err(DomainError::invalid(format!(
                    "Property '{name}' does not exist on type 'microsoft.graph.defaultUserRolePermissions'."
                )))
            }
        }
    }
    Ok(next)
}

fn invalid_value(name: &str, value: &Value) -> DomainError {
    DomainError::invalid(format!(
        "Invalid value '{}' for property '{name}'.",
        value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string())
    ))
}

fn boolean(name: &str, value: &Value) -> Result<bool, DomainError> {
    value.as_bool().ok_or_else(|| invalid_value(name, value))
}

fn optional_boolean(name: &str, value: &Value) -> Result<Option<bool>, DomainError> {
    match value {
        Value::Null => Ok(None),
        other => boolean(name, other).map(Some),
    }
}

/// The whole policy definition may hold at most this many characters (contract §5.2).
pub const MAX_DOMAIN_POLICY_CHARS: usize = 25_000;

/// The sentence an invite to a blocked domain gets ([choice], contract §5.2).
pub const DOMAIN_BLOCKED_MESSAGE: &str =
    "The domain of the user is currently blocked by your invitation policy. Contact your administrator to allow invitations to this domain.";

/// The allow/deny list (`B2BManagementPolicy`, contract §5.2): one mode at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum InvitationDomainPolicy {
    /// "Allow invitations to any domain": the default.
    #[default]
    AnyDomain,
    /// Only these domains (lower case) may be invited.
    AllowList(Vec<String>),
    /// Every domain except these (lower case).
    BlockList(Vec<String>),
}

impl InvitationDomainPolicy {
    /// Whether an address's domain may be invited. Subdomains don't inherit a listed domain:
    /// the portal lists each domain (wildcards like `*.example.com` match subdomains).
    pub fn allows_address(&self, address: &str) -> bool {
        let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or(address).to_ascii_lowercase();
        let listed = |domains: &[String]| domains.iter().any(|entry| domain_matches(entry, &domain));
        match self {
            InvitationDomainPolicy::AnyDomain => true,
            InvitationDomainPolicy::AllowList(domains) => listed(domains),
            InvitationDomainPolicy::BlockList(domains) => !listed(domains),
        }
    }

    /// The stored definition, in Graph's shape (contract §5.2).
    pub fn definition(&self) -> Value {
        let (allowed, blocked): (&[String], &[String]) = match self {
            InvitationDomainPolicy::AnyDomain => (&[], &[]),
            InvitationDomainPolicy::AllowList(domains) => (domains, &[]),
            InvitationDomainPolicy::BlockList(domains) => (&[], domains),
        };
        json!({"B2BManagementPolicy": {"InvitationsAllowedAndBlockedDomainsPolicy": {"AllowedDomains": allowed, "BlockedDomains": blocked}}})
    }

    pub fn definition_text(&self) -> String {
        self.definition().to_string()
    }

    /// Reads a definition in Graph's shape. A missing or empty pair of lists is "any domain"; both
    /// lists non-empty at once, bad domains, or more than 25,000 characters are refused.
    pub fn from_definition(definition: &Value) -> Result<Self, DomainError> {
        let size = definition.to_string().chars().count();
        if size > MAX_DOMAIN_POLICY_CHARS {
            return Err(DomainError::invalid(format!(
                "The policy definition has {size} characters; a B2BManagementPolicy may have at most {MAX_DOMAIN_POLICY_CHARS}."
            )));
        }
        let lists = &definition["B2BManagementPolicy"]["InvitationsAllowedAndBlockedDomainsPolicy"];
        if !lists.is_object() {
            return Err(DomainError::invalid(
                "The definition must be {\"B2BManagementPolicy\":{\"InvitationsAllowedAndBlockedDomainsPolicy\":{\"AllowedDomains\":[...],\"BlockedDomains\":[...]}}}.",
            ));
        }
        let allowed = domain_list(&lists["AllowedDomains"], "AllowedDomains")?;
        let blocked = domain_list(&lists["BlockedDomains"], "BlockedDomains")?;
        let policy = match (allowed.is_empty(), blocked.is_empty()) {
            (true, true) => InvitationDomainPolicy::AnyDomain,
            (false, true) => InvitationDomainPolicy::AllowList(allowed),
            (true, false) => InvitationDomainPolicy::BlockList(blocked),
            (false, false) => {
                return Err(DomainError::invalid("A policy may have either AllowedDomains or BlockedDomains, not both."));
            }
        };
        Ok(policy)
    }

    /// The CLI's form: `any`, `allow:a.com,b.com` or `block:x.com`.
    pub fn parse_cli(text: &str) -> Result<Self, DomainError> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("any") {
            return Ok(InvitationDomainPolicy::AnyDomain);
        }
        let (mode, list) =
            text.split_once(':').ok_or_else(|| DomainError::invalid("expected any, allow:DOMAIN,... or block:DOMAIN,..."))?;
        let domains: Vec<Value> = list.split(',').map(str::trim).filter(|d| !d.is_empty()).map(|d| Value::String(d.to_string())).collect();
        if domains.is_empty() {
            return Err(DomainError::invalid("name at least one domain"));
        }
        let lists = match mode.trim().to_ascii_lowercase().as_str() {
            "allow" => json!({"AllowedDomains": domains, "BlockedDomains": []}),
            "block" => json!({"AllowedDomains": [], "BlockedDomains": domains}),
            _ => return Err(DomainError::invalid("expected any, allow:DOMAIN,... or block:DOMAIN,...")),
        };
        Self::from_definition(&json!({"B2BManagementPolicy": {"InvitationsAllowedAndBlockedDomainsPolicy": lists}}))
    }

    pub fn describe(&self) -> String {
        match self {
            InvitationDomainPolicy::AnyDomain => "any".into(),
            InvitationDomainPolicy::AllowList(domains) => format!("allow:{}", domains.join(",")),
            InvitationDomainPolicy::BlockList(domains) => format!("block:{}", domains.join(",")),
        }
    }
}

fn domain_matches(entry: &str, domain: &str) -> bool {
    match entry.strip_prefix("*.") {
        Some(parent) => domain.len() > parent.len() + 1 && domain.ends_with(parent) && domain[..domain.len() - parent.len()].ends_with('.'),
        None => entry == domain,
    }
}

fn domain_list(value: &Value, name: &str) -> Result<Vec<String>, DomainError> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err(DomainError::invalid(format!("{name} must be an array of domain names."))),
    };
    let mut domains = Vec::with_capacity(items.len());
    for item in items {
        let text = item.as_str().ok_or_else(|| DomainError::invalid(format!("{name} must be an array of domain names.")))?;
        let domain = text.trim().to_ascii_lowercase();
        if !is_domain_name(domain.strip_prefix("*.").unwrap_or(&domain)) {
            return Err(DomainError::invalid(format!("'{text}' in {name} is not a domain name.")));
        }
        if !domains.contains(&domain) {
            domains.push(domain);
        }
    }
    Ok(domains)
}

fn is_domain_name(text: &str) -> bool {
    text.len() <= 253
        && text.contains('.')
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_invites_from_and_guest_roles_parse_exactly() {
        for value in AllowInvitesFrom::ALL {
            assert_eq!(AllowInvitesFrom::parse(value.as_str()), Some(value));
        }
        assert_eq!(AllowInvitesFrom::parse("Everyone"), None);
        assert_eq!(AllowInvitesFrom::parse("unknownFutureValue"), None);
        assert_eq!(GuestUserRole::parse("2AF84B1E-32C8-42B7-82BC-DAA82404023B"), Some(GuestUserRole::Restricted));
        assert_eq!(GuestUserRole::parse("62e90394-69f5-4237-9190-012177145e10"), None);
    }

    #[test]
    fn a_bad_patch_changes_nothing() {
        let policy = AuthorizationPolicy::default();
        let body = json!({"allowInvitesFrom": "none", "guestUserRoleId": "not-a-level"});
        assert!(policy.patched(body.as_object().unwrap()).is_err());
        let body = json!({"allowInvitesFrom": "none", "defaultUserRolePermissions": {"allowedToReadOtherUsers": false}});
        let next = policy.patched(body.as_object().unwrap()).unwrap();
        assert_eq!(next.allow_invites_from, AllowInvitesFrom::None);
        assert!(!next.default_user_role_permissions.allowed_to_read_other_users);
        assert!(next.default_user_role_permissions.allowed_to_create_apps);
        assert_eq!(policy.changed_properties(&next), vec!["allowInvitesFrom".to_string(), "defaultUserRolePermissions".to_string()]);
        assert!(policy.patched(json!({"id": "x"}).as_object().unwrap()).is_err());
        assert!(policy.patched(json!({"allowedToUseSSPR": null}).as_object().unwrap()).is_err());
    }

    #[test]
    fn one_mode_at_a_time_and_the_size_cap() {
        let both = json!({"B2BManagementPolicy": {"InvitationsAllowedAndBlockedDomainsPolicy": {"AllowedDomains": ["a.com"], "BlockedDomains": ["b.com"]}}});
        assert!(InvitationDomainPolicy::from_definition(&both).is_err());
        let allow = InvitationDomainPolicy::parse_cli("allow:A.com, b.com").unwrap();
        assert_eq!(allow, InvitationDomainPolicy::AllowList(vec!["a.com".into(), "b.com".into()]));
        assert_eq!(InvitationDomainPolicy::from_definition(&allow.definition()).unwrap(), allow);
        assert!(allow.allows_address("x@B.com") && !allow.allows_address("x@c.com") && !allow.allows_address("x@sub.a.com"));
        let block = InvitationDomainPolicy::parse_cli("block:*.x.com,y.com").unwrap();
        assert!(!block.allows_address("a@sub.x.com") && block.allows_address("a@x.com") && !block.allows_address("a@y.com"));
        assert_eq!(InvitationDomainPolicy::parse_cli("any").unwrap(), InvitationDomainPolicy::AnyDomain);
        for bad in ["allow:", "deny:a.com", "allow:not a domain", "allow:-a.com"] {
            assert!(InvitationDomainPolicy::parse_cli(bad).is_err(), "{bad}");
        }
        // The cap counts the whole definition: the longest list that fits passes, one more domain fails.
        let mut domains: Vec<String> = Vec::new();
        while InvitationDomainPolicy::BlockList(domains.clone()).definition_text().chars().count() <= MAX_DOMAIN_POLICY_CHARS {
            domains.push(format!("d{:08}.example.com", domains.len()));
        }
        let over = InvitationDomainPolicy::BlockList(domains.clone());
        assert!(InvitationDomainPolicy::from_definition(&over.definition()).is_err());
        domains.pop();
        let fits = InvitationDomainPolicy::BlockList(domains);
        assert!(InvitationDomainPolicy::from_definition(&fits.definition()).is_ok());
    }
}

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{DomainError, EmailAddress};

/// A userPrincipalName: `<prefix>@<domain>`, prefix drawn from `A-Z a-z 0-9 ' . - _ ! # ^ ~`
/// (contract §2). Compared case-insensitively, as the directory does.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Upn(String);

pub const MAX_UPN_LENGTH: usize = 113 + 5 + 64; // member UPNs are ≤113; guest UPNs add "#EXT#" and a tenant domain.

/// The marker Entra puts in every guest UPN (contract §2.1).
pub const EXTERNAL_MARKER: &str = "#EXT#";

impl Upn {
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let invalid =
            |why: &str| DomainError::invalid(format!("Invalid value specified for property 'userPrincipalName' of resource 'User': {why}"));
        let (prefix, domain) = input.split_once('@').ok_or_else(|| invalid("it has no '@'."))?;
        if prefix.is_empty() || domain.is_empty() || domain.contains('@') {
            return Err(invalid("it must be of the form alias@domain."));
        }
        if input.len() > MAX_UPN_LENGTH {
            return Err(invalid("it is too long."));
        }
        if !prefix.chars().all(|c| c.is_ascii_alphanumeric() || "'.-_!#^~".contains(c)) {
            return Err(invalid("only letters, digits and ' . - _ ! # ^ ~ are allowed before '@'."));
        }
        if prefix.starts_with('.') || prefix.ends_with('.') {
            return Err(invalid("'.' may not open or close the alias."));
        }
        if !domain.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')) {
            return Err(invalid("the domain is not valid."));
        }
        Ok(Upn(input.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }

    pub fn normalized(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    pub fn is_external(&self) -> bool {
        self.0.contains(EXTERNAL_MARKER)
    }
}

/// The UPN Entra gives a guest: `john@contoso.com` invited into `fabrikam.onmicrosoft.com`
/// becomes `john_contoso.com#EXT#@fabrikam.onmicrosoft.com` (contract §2.1). When that UPN is
/// taken, a short suffix goes before `#EXT#` (DECISIONS 9).
pub fn guest_upn(email: &EmailAddress, tenant_domain: &str, collision_suffix: Option<&str>) -> Upn {
    let suffix = collision_suffix.unwrap_or_default();
    Upn(format!("{}_{}{suffix}{EXTERNAL_MARKER}@{tenant_domain}", email.local_part(), email.domain()))
}

impl PartialEq for Upn {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}
impl Eq for Upn {}

impl fmt::Display for Upn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Upn {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Upn::parse(&value)
    }
}

impl From<Upn> for String {
    fn from(value: Upn) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn email(text: &str) -> EmailAddress {
        EmailAddress::parse(text).unwrap()
    }

    #[test]
    fn documented_examples() {
        assert_eq!(
            guest_upn(&email("john@contoso.com"), "fabrikam.onmicrosoft.com", None).as_str(),
            "john_contoso.com#EXT#@fabrikam.onmicrosoft.com"
        );
        assert_eq!(
            guest_upn(&email("admin@fabrikam.com"), "doc.onmicrosoft.com", None).as_str(),
            "admin_fabrikam.com#EXT#@doc.onmicrosoft.com"
        );
    }

    #[test]
    fn collision_suffix_goes_before_the_marker() {
        let upn = guest_upn(&email("john@contoso.com"), "fabrikam.onmicrosoft.com", Some("a1b2"));
        assert_eq!(upn.as_str(), "john_contoso.coma1b2#EXT#@fabrikam.onmicrosoft.com");
    }

    #[test]
    fn guest_upns_are_valid_upns() {
        let upn = guest_upn(&email("o'brien@example.ie"), "contoso.onmicrosoft.com", None);
        assert!(Upn::parse(upn.as_str()).is_ok());
        assert!(upn.is_external());
        assert_eq!(upn.domain(), "contoso.onmicrosoft.com");
    }

    #[test]
    fn parse_refuses_bad_upns() {
        for bad in ["", "noat", "@contoso.com", "a@", "a b@contoso.com", "a@b@contoso.com", "a%@contoso.com", ".a@contoso.com"] {
            assert!(Upn::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn ext_rule_holds_for_any_valid_email(local in "[a-z0-9_][a-z0-9_.-]{0,15}[a-z0-9_]", domain in "[a-z0-9]{1,10}\\.[a-z]{2,5}", tenant in "[a-z]{3,12}") {
            prop_assume!(!local.contains(".."));
            let invited = email(&format!("{local}@{domain}"));
            let tenant_domain = format!("{tenant}.onmicrosoft.com");
            let upn = guest_upn(&invited, &tenant_domain, None);
            // exactly one '@', and it separates "<local>_<domain>#EXT#" from the tenant's domain
            prop_assert_eq!(upn.as_str().matches('@').count(), 1);
            let (prefix, upn_domain) = upn.as_str().split_once('@').unwrap();
            prop_assert_eq!(upn_domain, tenant_domain.as_str());
            prop_assert_eq!(prefix.to_string(), format!("{local}_{domain}#EXT#"));
            prop_assert!(Upn::parse(upn.as_str()).is_ok());
        }
    }
}

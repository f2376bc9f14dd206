use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// An email address accepted by Graph's invitation service.
///
/// Keeps the caller's spelling (Graph echoes it) and compares case-insensitively.
/// Rules from the invitation resource docs (contract §1.2): the local part must not contain
/// `~ ! # $ % ^ & * ( ) + = [ ] { } \ / | ; : " < > ? ,`; `.` and `-` may not open or close it;
/// `_` is allowed anywhere. Accented characters are refused (contract §2, `mail`/`otherMails`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress {
    text: String,
    at: usize,
}

pub const MAX_EMAIL_LENGTH: usize = 254;
const MAX_LOCAL_PART_LENGTH: usize = 64;

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let text = input.trim();
        let invalid = |why: &str| DomainError::invalid(format!("The email address '{text}' is invalid: {why}"));
        if text.is_empty() {
            return Err(DomainError::invalid("The email address is empty."));
        }
        if text.len() > MAX_EMAIL_LENGTH {
            return Err(invalid(&format!("it is longer than {MAX_EMAIL_LENGTH} characters.")));
        }
        if !text.is_ascii() {
            return Err(invalid("accented and other non-ASCII characters are not allowed."));
        }
        let at = match (text.find('@'), text.rfind('@')) {
            (Some(first), Some(last)) if first == last => first,
            (None, _) => return Err(invalid("it has no '@'.")),
            _ => return Err(invalid("it has more than one '@'.")),
        };
        let (local, domain) = (&text[..at], &text[at + 1..]);
        check_local_part(local).map_err(|why| invalid(&why))?;
        check_domain(domain).map_err(|why| invalid(&why))?;
        Ok(EmailAddress { text: text.to_string(), at })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn local_part(&self) -> &str {
        &self.text[..self.at]
    }

    pub fn domain(&self) -> &str {
        &self.text[self.at + 1..]
    }

    /// The form used for comparisons and uniqueness: lower case.
    pub fn normalized(&self) -> String {
        self.text.to_ascii_lowercase()
    }

    pub fn matches(&self, other: &str) -> bool {
        self.text.eq_ignore_ascii_case(other.trim())
    }
}

fn check_local_part(local: &str) -> Result<(), String> {
    if local.is_empty() {
        return Err("the part before '@' is empty.".into());
    }
    if local.len() > MAX_LOCAL_PART_LENGTH {
        return Err(format!("the part before '@' is longer than {MAX_LOCAL_PART_LENGTH} characters."));
    }
    if let Some(bad) = local.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '\''))) {
        return Err(format!("the character '{bad}' is not allowed before '@'."));
    }
    for edge in ['.', '-'] {
        if local.starts_with(edge) || local.ends_with(edge) {
            return Err(format!("'{edge}' may not be the first or last character before '@'."));
        }
    }
    if local.contains("..") {
        return Err("two consecutive dots are not allowed.".into());
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("the domain after '@' is empty.".into());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("the domain needs at least one dot.".into());
    }
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Err("the domain has an empty or over-long label.".into());
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') || label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the domain label '{label}' is not valid."));
        }
    }
    Ok(())
}

impl PartialEq for EmailAddress {
    fn eq(&self, other: &Self) -> bool {
        self.text.eq_ignore_ascii_case(&other.text)
    }
}
impl Eq for EmailAddress {}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        EmailAddress::parse(&value)
    }
}

impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> Self {
        value.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in ["alice@example.com", "a.b-c_d@sub.example.co.uk", "_x_@example.org", "o'brien@example.ie", "A@B.CD"] {
            let email = EmailAddress::parse(ok).unwrap();
            assert_eq!(email.as_str(), ok);
        }
    }

    #[test]
    fn splits_local_part_and_domain() {
        let email = EmailAddress::parse("Alice@Example.com").unwrap();
        assert_eq!(email.local_part(), "Alice");
        assert_eq!(email.domain(), "Example.com");
        assert_eq!(email.normalized(), "alice@example.com");
        assert!(email.matches("ALICE@example.COM"));
    }

    #[test]
    fn refuses_documented_bad_characters() {
        for c in "~!#$%^&*()+=[]{}\\/|;:\"<>?, ".chars() {
            let candidate = format!("a{c}b@example.com");
            assert!(EmailAddress::parse(&candidate).is_err(), "{candidate} should be refused");
        }
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "plain",
            "a@b",
            "@example.com",
            "a@",
            "a@@example.com",
            "a@b@example.com",
            ".a@example.com",
            "a.@example.com",
            "-a@example.com",
            "a-@example.com",
            "a..b@example.com",
            "a@-example.com",
            "a@exa_mple.com",
            "jos\u{e9}@example.com",
            "a@example..com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn refuses_over_long_addresses() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(EmailAddress::parse(&long_local).is_err());
        let long_domain = format!("a@{}.com", vec!["b".repeat(60); 5].join("."));
        assert!(EmailAddress::parse(&long_domain).is_err());
    }

    proptest! {
        #[test]
        fn valid_shapes_parse_and_round_trip(local in "[a-z0-9_][a-z0-9_.'-]{0,20}[a-z0-9_]", domain in "[a-z0-9]{1,10}(\\.[a-z]{2,6}){1,2}") {
            prop_assume!(!local.contains(".."));
            let text = format!("{local}@{domain}");
            let email = EmailAddress::parse(&text).unwrap();
            prop_assert_eq!(email.as_str(), text.as_str());
            prop_assert_eq!(email.local_part(), local.as_str());
            prop_assert_eq!(email.domain(), domain.as_str());
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,80}") {
            let _ = EmailAddress::parse(&text);
        }

        #[test]
        fn a_parsed_address_never_holds_a_forbidden_character(text in "[a-z~!#$%^&*()+=|;:<>?,.@_-]{1,30}") {
            if let Ok(email) = EmailAddress::parse(&text) {
                prop_assert!(!email.local_part().chars().any(|c| "~!#$%^&*()+=|;:<>?,".contains(c)));
                prop_assert_eq!(email.as_str().matches('@').count(), 1);
            }
        }
    }
}

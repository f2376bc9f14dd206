//! Member sign-in rules (issue 5 item 1): Graph's password complexity, the delegated scopes an
//! authorization request may carry, PKCE, and the limits of codes, refresh tokens and lockout.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Graph's refusal of a weak `passwordProfile.password` (`Request_BadRequest`).
pub const PASSWORD_COMPLEXITY_MESSAGE: &str =
    "The specified password does not comply with password complexity requirements. Please provide a different password.";

/// Entra's cloud password policy: 8 to 256 characters, three of upper case, lower case, digits
/// and symbols.
pub fn password_meets_complexity(password: &str) -> bool {
    let length = password.chars().count();
    if !(8..=256).contains(&length) {
        return false;
    }
    let classes = [
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    classes.iter().filter(|present| **present).count() >= 3
}

/// Why "Update your password" (the forced change at sign-in) refuses a new password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewPasswordProblem {
    /// New password and confirmation differ.
    Mismatch,
    /// Fails [`password_meets_complexity`].
    TooSimple,
    /// The same as the current password.
    SameAsCurrent,
}

impl NewPasswordProblem {
    /// The text the form shows; a weak password gets Graph's complexity message.
    pub fn message(self) -> &'static str {
        match self {
            NewPasswordProblem::Mismatch => "The new passwords don't match. Type the same new password in both boxes.",
            NewPasswordProblem::TooSimple => PASSWORD_COMPLEXITY_MESSAGE,
            NewPasswordProblem::SameAsCurrent => "You can't reuse your current password. Choose a different one.",
        }
    }
}

/// Checks a new password chosen at sign-in against the confirmation, the complexity rule and
/// the (already verified) current password.
pub fn check_new_password(current: &str, new: &str, confirmation: &str) -> Result<(), NewPasswordProblem> {
    if new != confirmation {
        Err(NewPasswordProblem::Mismatch)
    } else if !password_meets_complexity(new) {
        Err(NewPasswordProblem::TooSimple)
    } else if new == current {
        Err(NewPasswordProblem::SameAsCurrent)
    } else {
        Ok(())
    }
}

/// An authorization code lives at most ten minutes (Entra's documented lifetime).
pub const AUTHORIZATION_CODE_SECONDS: i64 = 600;
/// Device codes expire after 15 minutes, as Entra's `expires_in: 900`.
pub const DEVICE_CODE_SECONDS: i64 = 900;
/// The polling interval Entra announces; polling faster gets `slow_down`.
pub const DEVICE_POLL_INTERVAL_SECONDS: i64 = 5;
/// Refresh tokens of public clients: 24 hours for SPAs, 90 days otherwise (Entra's defaults).
pub const REFRESH_TOKEN_SECONDS: i64 = 90 * 24 * 3600;
/// Failed sign-ins per account within one lockout window before the account is locked.
pub const ACCOUNT_FAILURE_LIMIT: u64 = 5;
/// Failed sign-ins per client address within one lockout window before the address is refused.
pub const ADDRESS_FAILURE_LIMIT: u64 = 20;
/// Lockout windows are fixed 15-minute windows (Entra's smart lockout starts at 60 seconds and
/// grows; one fixed window is simpler to reason about and to test).
pub const LOCKOUT_WINDOW_SECONDS: i64 = 900;

/// Sign-in audit activity names (category `UserManagement`, service `Core Directory`... the
/// sign-in log is a separate Graph resource; guestlist records failures as audit entries).
pub mod activity {
    pub const SIGN_IN_FAILED: &str = "Sign-in failed";
    pub const ACCOUNT_LOCKED: &str = "Account locked out";
    /// A member chose a new password at sign-in (category `UserManagement`, success), Entra's
    /// Core Directory entry for a user's own password change.
    pub const CHANGE_PASSWORD: &str = "Change user password";
}

/// The OpenID scopes, which never reach the access token's `scp`.
pub const OPENID_SCOPES: [&str; 4] = ["openid", "profile", "offline_access", "email"];

/// A requested `scope` split into OpenID scopes and Graph scope names without the resource
/// prefix (`https://graph.microsoft.com/User.Read.All` → `User.Read.All`). `None` when a scope
/// names another resource.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestedScopes {
    pub openid: Vec<String>,
    pub graph: Vec<String>,
}

impl RequestedScopes {
    pub fn parse(scope: &str) -> Result<RequestedScopes, String> {
        let mut out = RequestedScopes::default();
        for value in scope.split_whitespace() {
            if let Some(known) = OPENID_SCOPES.iter().find(|s| s.eq_ignore_ascii_case(value)) {
                if !out.openid.iter().any(|s| s == known) {
                    out.openid.push((*known).to_string());
                }
                continue;
            }
            let name = ["https://graph.microsoft.com/", "00000003-0000-0000-c000-000000000000/"]
                .iter()
                .find_map(|prefix| value.get(..prefix.len()).filter(|p| p.eq_ignore_ascii_case(prefix)).map(|_| &value[prefix.len()..]))
                .unwrap_or(value);
            let name = name.trim_start_matches('/');
            let well_formed = !name.is_empty() && !name.contains(['/', ':']) && name.bytes().all(|b| b.is_ascii_graphic());
            if !well_formed {
                return Err(value.to_string());
            }
            // `.default` asks for what the app was consented; for a delegated token guestlist grants
            // the scopes every directory tool uses.
            let names: Vec<String> = if name.eq_ignore_ascii_case(".default") {
                DEFAULT_DELEGATED_SCOPES.iter().map(|s| s.to_string()).collect()
            } else {
                vec![name.to_string()]
            };
            for name in names {
                if !out.graph.iter().any(|s| s.eq_ignore_ascii_case(&name)) {
                    out.graph.push(name);
                }
            }
        }
        if out.graph.is_empty() && !out.openid.is_empty() {
            // Entra adds Graph's `User.Read` to a sign-in that asks only for OpenID scopes.
            out.graph.push("User.Read".to_string());
        }
        Ok(out)
    }

    /// The `scope` value of a token response: Graph scopes with their resource prefix, then the
    /// OpenID ones, as Entra answers.
    pub fn response_scope(&self) -> String {
        self.graph
            .iter()
            .map(|s| format!("https://graph.microsoft.com/{s}"))
            .chain(self.openid.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn stored(&self) -> String {
        self.graph.iter().chain(self.openid.iter()).cloned().collect::<Vec<_>>().join(" ")
    }

    pub fn wants(&self, openid_scope: &str) -> bool {
        self.openid.iter().any(|s| s == openid_scope)
    }
}

/// What `https://graph.microsoft.com/.default` stands for in a delegated request.
pub const DEFAULT_DELEGATED_SCOPES: [&str; 3] = ["User.Read", "User.ReadWrite.All", "Directory.ReadWrite.All"];

/// RFC 7636 S256: `BASE64URL(SHA256(verifier)) == challenge`. The verifier must be 43-128
/// unreserved characters.
pub fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len()) && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !well_formed {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    computed.len() == challenge.len() && computed.bytes().zip(challenge.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Redirect URIs a public client may use without registering them: Entra accepts any port on
/// `http://localhost` and `http://127.0.0.1` for native apps.
pub fn is_loopback_redirect(redirect_uri: &str) -> bool {
    let Ok(url) = url::Url::parse(redirect_uri) else { return false };
    url.scheme() == "http"
        && matches!(url.host_str(), Some("localhost") | Some("127.0.0.1") | Some("[::1]"))
        && url.fragment().is_none()
        && url.username().is_empty()
}

/// Hash of a code, refresh token or device code as stored: SHA-256, hex. They are long random
/// values, so a digest is enough.
pub fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A random opaque credential (code, refresh token, device code): 32 bytes, base64url.
pub fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A device flow `user_code`: 9 characters from an alphabet without look-alikes, as Entra's.
pub fn random_user_code() -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ23456789";
    (0..9).map(|_| ALPHABET[rand::random::<usize>() % ALPHABET.len()] as char).collect()
}

/// A typed user code as stored: upper case, without spaces or dashes.
pub fn normalize_user_code(typed: &str) -> String {
    typed.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

/// What an OAuth grant record is: the credential is stored only as [`secret_hash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKind {
    AuthorizationCode,
    RefreshToken,
    DeviceCode,
}

impl GrantKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            GrantKind::AuthorizationCode => "authorization_code",
            GrantKind::RefreshToken => "refresh_token",
            GrantKind::DeviceCode => "device_code",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        [GrantKind::AuthorizationCode, GrantKind::RefreshToken, GrantKind::DeviceCode].into_iter().find(|k| k.as_str() == text)
    }
}

/// A grant's life: codes and refresh tokens go `active` → `used` (or `revoked` with their family);
/// device codes go `pending` → `approved` or `denied`, then `used` when the token is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantState {
    Active,
    Used,
    Revoked,
    Pending,
    Approved,
    Denied,
}

impl GrantState {
    pub fn as_str(&self) -> &'static str {
        match self {
            GrantState::Active => "active",
            GrantState::Used => "used",
            GrantState::Revoked => "revoked",
            GrantState::Pending => "pending",
            GrantState::Approved => "approved",
            GrantState::Denied => "denied",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        [GrantState::Active, GrantState::Used, GrantState::Revoked, GrantState::Pending, GrantState::Approved, GrantState::Denied]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// An authorization code, refresh token or device code. A family is one sign-in: its code and
/// every refresh token rotated from it; reuse of a spent member revokes the whole family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthGrant {
    pub token_hash: String,
    pub tenant_id: crate::ids::TenantId,
    pub kind: GrantKind,
    pub state: GrantState,
    pub client_id: crate::ObjectId,
    /// The signed-in user; `None` for a device code nobody approved yet.
    pub user_id: Option<crate::ObjectId>,
    pub family_id: crate::ObjectId,
    /// [`RequestedScopes::stored`].
    pub scope: String,
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    /// Device codes: the normalized code the user types.
    pub user_code: Option<String>,
    pub created_date_time: chrono::DateTime<chrono::Utc>,
    pub expires_date_time: chrono::DateTime<chrono::Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_password_must_match_be_complex_and_differ_from_the_current_one() {
        assert_eq!(check_new_password("Corr3ct-Horse!", "N3w-Battery!", "N3w-Battery!"), Ok(()));
        assert_eq!(check_new_password("Corr3ct-Horse!", "N3w-Battery!", "N3w-Battery?"), Err(NewPasswordProblem::Mismatch));
        assert_eq!(check_new_password("Corr3ct-Horse!", "password", "password"), Err(NewPasswordProblem::TooSimple));
        assert_eq!(check_new_password("Corr3ct-Horse!", "Corr3ct-Horse!", "Corr3ct-Horse!"), Err(NewPasswordProblem::SameAsCurrent));
        assert_eq!(NewPasswordProblem::TooSimple.message(), PASSWORD_COMPLEXITY_MESSAGE);
    }

    #[test]
    fn complexity_needs_three_classes_and_eight_characters() {
        assert!(password_meets_complexity("Passw0rd"));
        assert!(password_meets_complexity("passw0rd!"));
        assert!(!password_meets_complexity("password"));
        assert!(!password_meets_complexity("password1"));
        assert!(!password_meets_complexity("Pa0!"));
        assert!(!password_meets_complexity(&"Aa1".repeat(90)));
    }

    #[test]
    fn scopes_drop_the_graph_prefix_and_keep_openid_apart() {
        let s = RequestedScopes::parse("openid profile offline_access https://graph.microsoft.com/User.Invite.All User.Read.All").unwrap();
        assert_eq!(s.openid, ["openid", "profile", "offline_access"]);
        assert_eq!(s.graph, ["User.Invite.All", "User.Read.All"]);
        assert!(s.wants("offline_access"));
        assert_eq!(RequestedScopes::parse("openid").unwrap().graph, ["User.Read"]);
        assert!(RequestedScopes::parse("https://management.azure.com/user_impersonation").is_err());
    }

    #[test]
    fn pkce_s256_is_rfc_7636s_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(pkce_s256_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!pkce_s256_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cm"));
        assert!(!pkce_s256_matches("short", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
    }

    #[test]
    fn loopback_redirects_only() {
        assert!(is_loopback_redirect("http://localhost"));
        assert!(is_loopback_redirect("http://localhost:53211/callback"));
        assert!(is_loopback_redirect("http://127.0.0.1:8400"));
        assert!(!is_loopback_redirect("https://evil.example/cb"));
        assert!(!is_loopback_redirect("http://localhost.evil.example/"));
    }

    #[test]
    fn user_codes_normalize() {
        let code = random_user_code();
        assert_eq!(code.len(), 9);
        assert_eq!(normalize_user_code(&code.to_lowercase()), code);
        assert_eq!(normalize_user_code("abc-def ghi"), "ABCDEFGHI");
    }
}

//! Access tokens for Microsoft Graph: issuing app-only tokens with the claims Entra puts in v1
//! Graph tokens, validating bearer tokens, and client secrets.

use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, TimeZone, Utc};
use guestlist_domain::permissions::AppPermission;
use guestlist_domain::ObjectId;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::signing::Keyring;
use crate::{IdentityError, GRAPH_APP_ID, GRAPH_RESOURCE};

/// Entra's default access token lifetime is 60-90 minutes; we use the low end.
const TOKEN_LIFETIME_SECONDS: i64 = 3600;
/// `expires_in` as Entra reports it for a one-hour token.
const EXPIRES_IN_SECONDS: u64 = 3599;
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: i64 = 60;

/// Audiences Graph accepts (Entra docs, "troubleshoot signature validation errors").
const ACCEPTED_AUDIENCES: [&str; 3] = [GRAPH_RESOURCE, "https://graph.microsoft.com/", GRAPH_APP_ID];

/// The `iss` of tokens for `tenant_id`, and the `issuer` of that tenant's discovery document.
/// Entra's v1 Graph tokens say `https://sts.windows.net/{tid}/`; an emulator names its own origin.
pub fn issuer(origin: &str, tenant_id: &ObjectId) -> String {
    format!("{}/{tenant_id}/v2.0", origin.trim_end_matches('/'))
}

/// What an app-only (client credentials) token is issued for.
#[derive(Debug, Clone)]
pub struct AppTokenRequest {
    pub tenant_id: ObjectId,
    /// The client id (`appId`).
    pub app_id: ObjectId,
    pub service_principal_id: ObjectId,
    pub app_display_name: String,
    pub roles: Vec<AppPermission>,
    pub issued_at: DateTime<Utc>,
}

/// What a delegated token (authorization code, refresh token, device code) is issued for.
#[derive(Debug, Clone)]
pub struct UserTokenRequest {
    pub tenant_id: ObjectId,
    /// The client the user signed in to (`appid`, and the id token's `aud`).
    pub app_id: ObjectId,
    pub app_display_name: String,
    pub user_id: ObjectId,
    pub user_principal_name: String,
    pub display_name: String,
    /// Graph scope names without the resource prefix (`User.Invite.All`).
    pub scopes: Vec<String>,
    /// The authorization request's `nonce`, echoed in the id token.
    pub nonce: Option<String>,
    pub issued_at: DateTime<Utc>,
}

/// The v2.0 id token Entra returns with `openid`.
#[derive(Debug, Serialize)]
struct IdTokenClaims {
    aud: String,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    oid: String,
    preferred_username: String,
    sub: String,
    tid: String,
    uti: String,
    ver: String,
}

/// MSAL's `client_info`: base64url JSON `{"uid", "utid"}`, the key of its account cache.
pub fn client_info(user_id: &ObjectId, tenant_id: &ObjectId) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::json!({"uid": user_id.to_string(), "utid": tenant_id.to_string()}).to_string())
}

/// A signed access token and the `expires_in` of the token response.
#[derive(Clone)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: u64,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken").field("expires_in", &self.expires_in).field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// Who a validated token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// App-only token (`idtyp: app`): the app's service principal.
    App { service_principal_id: ObjectId, display_name: Option<String> },
    /// Delegated token (`idtyp: user`): the signed-in user, acting through `ValidatedToken::app_id`.
    User { user_id: ObjectId, upn: Option<String> },
}

/// A bearer token that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedToken {
    pub tenant_id: ObjectId,
    /// The client the token was issued to (`appid`/`azp`).
    pub app_id: ObjectId,
    pub principal: Principal,
    /// Application permissions (`roles`); names guestlist does not know are dropped.
    pub roles: Vec<AppPermission>,
    /// Delegated scopes (`scp`), empty for app tokens.
    pub scopes: Vec<String>,
    /// `uti`, for audit records.
    pub token_id: String,
    pub expires_at: DateTime<Utc>,
}

/// Why a bearer token was refused. Every variant is Graph's 401 `InvalidAuthenticationToken`;
/// they differ in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("{}", self.message())]
    Missing,
    #[error("{}", self.message())]
    Malformed,
    #[error("{}", self.message())]
    Expired,
    #[error("{}", self.message())]
    InvalidSignature,
    /// The header names a kid the keyring does not hold (or none).
    #[error("{}", self.message())]
    UnknownSigningKey,
    #[error("{}", self.message())]
    InvalidAudience,
    #[error("{}", self.message())]
    InvalidIssuer,
}

impl TokenError {
    /// Graph's `error.code` for all of them.
    pub const CODE: &'static str = "InvalidAuthenticationToken";
    pub const HTTP_STATUS: u16 = 401;

    pub fn code(&self) -> &'static str {
        Self::CODE
    }

    pub fn status(&self) -> u16 {
        Self::HTTP_STATUS
    }

    /// Graph's `error.message`.
    pub fn message(&self) -> &'static str {
        match self {
            TokenError::Missing => "Access token is empty.",
            TokenError::Malformed => "CompactToken parsing failed with error code: 80049217",
            TokenError::Expired => "Access token has expired or is not yet valid.",
            // Graph's wording for a token whose signature it cannot verify.
            TokenError::InvalidSignature | TokenError::UnknownSigningKey => "Signature is invalid.",
            TokenError::InvalidAudience => "Access token validation failure. Invalid audience.",
            TokenError::InvalidIssuer => "Access token validation failure. Invalid issuer.",
        }
    }

    /// The `WWW-Authenticate` header Graph sends with these 401s, pointing at our authority.
    pub fn www_authenticate(origin: &str) -> String {
        format!(
            "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", client_id=\"{GRAPH_APP_ID}\"",
            origin.trim_end_matches('/')
        )
    }
}

/// The payload of our access tokens. App tokens leave the delegated members out and vice versa,
/// as Entra does.
#[derive(Debug, Serialize, Deserialize)]
struct AccessTokenClaims {
    aud: String,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_displayname: Option<String>,
    appid: String,
    /// 1: the client authenticated with a secret.
    appidacr: String,
    azp: String,
    azpacr: String,
    idp: String,
    idtyp: String,
    oid: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    roles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scp: Option<String>,
    sub: String,
    tid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    upn: Option<String>,
    uti: String,
    jti: String,
    ver: String,
}

/// What validation reads back; everything optional so a foreign token fails on our checks,
/// not on deserialization.
#[derive(Debug, Deserialize)]
struct ReceivedClaims {
    aud: Option<Value>,
    iss: Option<String>,
    nbf: Option<i64>,
    exp: Option<i64>,
    app_displayname: Option<String>,
    appid: Option<String>,
    azp: Option<String>,
    idtyp: Option<String>,
    oid: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    scp: Option<String>,
    tid: Option<String>,
    upn: Option<String>,
    uti: Option<String>,
}

impl Keyring {
    /// Issues an app-only access token for Microsoft Graph, signed with the newest key.
    pub fn issue_app_token(&self, req: &AppTokenRequest, issuer_origin: &str) -> Result<IssuedToken, IdentityError> {
        let iss = issuer(issuer_origin, &req.tenant_id);
        let iat = req.issued_at.timestamp();
        let token_id = random_token_id();
        let claims = AccessTokenClaims {
            aud: GRAPH_RESOURCE.to_owned(),
            iss: iss.clone(),
            iat,
            nbf: iat,
            exp: iat + TOKEN_LIFETIME_SECONDS,
            app_displayname: Some(req.app_display_name.clone()),
            appid: req.app_id.to_string(),
            appidacr: "1".to_owned(),
            azp: req.app_id.to_string(),
            azpacr: "1".to_owned(),
            idp: iss,
            idtyp: "app".to_owned(),
            oid: req.service_principal_id.to_string(),
            roles: req.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            scp: None,
            sub: req.service_principal_id.to_string(),
            tid: req.tenant_id.to_string(),
            upn: None,
            uti: token_id.clone(),
            jti: token_id,
            ver: "1.0".to_owned(),
        };
        self.sign(&claims)
    }

    /// Issues a delegated access token for Microsoft Graph: `scp` with the scope names, `oid` and
    /// `upn` of the user, `idtyp: user`, `appid` of the client (a public client: `appidacr` 0).
    pub fn issue_user_token(&self, req: &UserTokenRequest, issuer_origin: &str) -> Result<IssuedToken, IdentityError> {
        let iss = issuer(issuer_origin, &req.tenant_id);
        let iat = req.issued_at.timestamp();
        let token_id = random_token_id();
        let claims = AccessTokenClaims {
            aud: GRAPH_RESOURCE.to_owned(),
            iss: iss.clone(),
            iat,
            nbf: iat,
            exp: iat + TOKEN_LIFETIME_SECONDS,
            app_displayname: Some(req.app_display_name.clone()),
            appid: req.app_id.to_string(),
            appidacr: "0".to_owned(),
            azp: req.app_id.to_string(),
            azpacr: "0".to_owned(),
            idp: iss,
            idtyp: "user".to_owned(),
            oid: req.user_id.to_string(),
            roles: Vec::new(),
            scp: Some(req.scopes.join(" ")),
            sub: req.user_id.to_string(),
            tid: req.tenant_id.to_string(),
            upn: Some(req.user_principal_name.clone()),
            uti: token_id.clone(),
            jti: token_id,
            ver: "1.0".to_owned(),
        };
        self.sign(&claims)
    }

    /// The v2.0 id token for the same sign-in (`aud` is the client).
    pub fn issue_id_token(&self, req: &UserTokenRequest, issuer_origin: &str) -> Result<String, IdentityError> {
        let iat = req.issued_at.timestamp();
        let claims = IdTokenClaims {
            aud: req.app_id.to_string(),
            iss: issuer(issuer_origin, &req.tenant_id),
            iat,
            nbf: iat,
            exp: iat + TOKEN_LIFETIME_SECONDS,
            name: req.display_name.clone(),
            nonce: req.nonce.clone(),
            oid: req.user_id.to_string(),
            preferred_username: req.user_principal_name.clone(),
            sub: req.user_id.to_string(),
            tid: req.tenant_id.to_string(),
            uti: random_token_id(),
            ver: "2.0".to_owned(),
        };
        let key = self.signing_key();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(|e| IdentityError::Signing(e.to_string()))
    }

    fn sign(&self, claims: &AccessTokenClaims) -> Result<IssuedToken, IdentityError> {
        let key = self.signing_key();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        let access_token = jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|e| IdentityError::Signing(e.to_string()))?;
        let expires_at = Utc.timestamp_opt(claims.exp, 0).single().ok_or_else(|| IdentityError::Signing("exp out of range".to_owned()))?;
        Ok(IssuedToken { access_token, expires_in: EXPIRES_IN_SECONDS, expires_at })
    }

    /// Validates a bearer token (without the `Bearer ` prefix) against the current time.
    pub fn validate(&self, token: &str, expected_issuer_origin: &str) -> Result<ValidatedToken, TokenError> {
        self.validate_at(token, expected_issuer_origin, Utc::now())
    }

    /// Validates a bearer token as of `now`: signature by a key of this keyring, lifetime (60 s
    /// leeway), Graph audience, and issuer `{expected_issuer_origin}/{tid}/v2.0`.
    pub fn validate_at(&self, token: &str, expected_issuer_origin: &str, now: DateTime<Utc>) -> Result<ValidatedToken, TokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let key = header.kid.as_deref().and_then(|kid| self.key(kid)).ok_or(TokenError::UnknownSigningKey)?;

        // jsonwebtoken checks the signature only; the claims are checked below against `now`.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        let claims = jsonwebtoken::decode::<ReceivedClaims>(token, &key.decoding, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature
                | ErrorKind::InvalidAlgorithm
                | ErrorKind::InvalidAlgorithmName
                | ErrorKind::InvalidKeyFormat => TokenError::InvalidSignature,
                _ => TokenError::Malformed,
            })?
            .claims;

        let now = now.timestamp();
        let (Some(exp), Some(nbf)) = (claims.exp, claims.nbf) else {
            return Err(TokenError::Expired);
        };
        // Saturating: `exp` and `nbf` are the token's own numbers, anywhere in i64's range.
        if now > exp.saturating_add(LEEWAY_SECONDS) || now.saturating_add(LEEWAY_SECONDS) < nbf {
            return Err(TokenError::Expired);
        }

        let audience_ok = match &claims.aud {
            Some(Value::String(aud)) => ACCEPTED_AUDIENCES.contains(&aud.as_str()),
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str().is_some_and(|a| ACCEPTED_AUDIENCES.contains(&a))),
            _ => false,
        };
        if !audience_ok {
            return Err(TokenError::InvalidAudience);
        }

        let tenant_id = claims.tid.as_deref().and_then(|t| ObjectId::parse(t).ok()).ok_or(TokenError::InvalidIssuer)?;
        if claims.iss.as_deref() != Some(issuer(expected_issuer_origin, &tenant_id).as_str()) {
            return Err(TokenError::InvalidIssuer);
        }

        let app_id =
            claims.appid.as_deref().or(claims.azp.as_deref()).and_then(|a| ObjectId::parse(a).ok()).ok_or(TokenError::Malformed)?;
        let oid = claims.oid.as_deref().and_then(|o| ObjectId::parse(o).ok()).ok_or(TokenError::Malformed)?;
        let is_user = match claims.idtyp.as_deref() {
            Some(idtyp) => idtyp == "user",
            // Tokens without idtyp: delegated ones are those with scopes.
            None => claims.scp.is_some(),
        };
        let principal = if is_user {
            Principal::User { user_id: oid, upn: claims.upn }
        } else {
            Principal::App { service_principal_id: oid, display_name: claims.app_displayname }
        };
        Ok(ValidatedToken {
            tenant_id,
            app_id,
            principal,
            roles: claims.roles.iter().filter_map(|r| AppPermission::parse(r)).collect(),
            scopes: claims.scp.as_deref().unwrap_or_default().split_whitespace().map(str::to_owned).collect(),
            token_id: claims.uti.unwrap_or_default(),
            expires_at: Utc.timestamp_opt(exp, 0).single().ok_or(TokenError::Malformed)?,
        })
    }
}

/// Entra's `uti`: 16 random bytes, base64url.
fn random_token_id() -> String {
    let bytes: [u8; 16] = rand::rngs::OsRng.gen();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// How a client secret is stored: SHA-256, lower-case hex. Secrets are random and long, so a
/// plain digest is enough (no password hashing).
pub fn hash_client_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `secret` matches the stored hash, comparing in constant time.
pub fn verify_client_secret(secret: &str, hash: &str) -> bool {
    let candidate = hash_client_secret(secret);
    let stored = hash.trim().to_ascii_lowercase();
    if candidate.len() != stored.len() {
        return false;
    }
    candidate.bytes().zip(stored.bytes()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-";
const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A new client secret shaped like Entra's: 40 characters, three alphanumerics (the `hint` Graph
/// shows), a digit, `~`, then 35 from `[A-Za-z0-9~._-]`.
pub fn generate_client_secret() -> String {
    let mut rng = rand::rngs::OsRng;
    let mut secret = String::with_capacity(40);
    for _ in 0..3 {
        secret.push(ALPHANUMERIC[rng.gen_range(0..ALPHANUMERIC.len())] as char);
    }
    secret.push(char::from(b'0' + rng.gen_range(0..10u8)));
    secret.push('~');
    for _ in 0..35 {
        secret.push(SECRET_ALPHABET[rng.gen_range(0..SECRET_ALPHABET.len())] as char);
    }
    secret
}

/// Token lifetime, for callers that cache tokens (tests, the CLI).
pub fn token_lifetime() -> Duration {
    Duration::seconds(TOKEN_LIFETIME_SECONDS)
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::EncodingKey;
    use serde_json::json;

    use super::*;
    use crate::signing::tests::{keyring_of, test_keys};

    const ORIGIN: &str = "https://127.0.0.1:8443";

    fn request(issued_at: DateTime<Utc>) -> AppTokenRequest {
        AppTokenRequest {
            tenant_id: ObjectId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap(),
            app_id: ObjectId::parse("11111111-2222-3333-4444-555555555555").unwrap(),
            service_principal_id: ObjectId::parse("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee").unwrap(),
            app_display_name: "Inviter".to_owned(),
            roles: vec![AppPermission::UserInviteAll, AppPermission::UserReadWriteAll],
            issued_at,
        }
    }

    fn payload(token: &str) -> Value {
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    fn segment(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
    }

    /// Signs arbitrary claims with the first test key, as a forger holding our key could.
    fn sign_raw(claims: &Value, kid: &str) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        let pem = &test_keys()[0].private_key_pem;
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).unwrap();
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        let der = key.to_pkcs1_der().unwrap();
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(der.as_bytes())).unwrap()
    }

    #[test]
    fn app_token_round_trips_with_graph_claims() {
        let ring = keyring_of(&[&test_keys()[0]]);
        let req = request(Utc::now());
        let issued = ring.issue_app_token(&req, &format!("{ORIGIN}/")).unwrap();
        assert_eq!(issued.expires_in, 3599);

        let header = jsonwebtoken::decode_header(&issued.access_token).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.kid.as_deref(), Some(test_keys()[0].kid.as_str()));

        let claims = payload(&issued.access_token);
        let iat = req.issued_at.timestamp();
        let iss = "https://127.0.0.1:8443/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0";
        assert_eq!(claims["aud"], "https://graph.microsoft.com");
        assert_eq!(claims["iss"], iss);
        assert_eq!(claims["idp"], iss);
        assert_eq!(claims["iat"], iat);
        assert_eq!(claims["nbf"], iat);
        assert_eq!(claims["exp"], iat + 3600);
        assert_eq!(claims["tid"], "72f988bf-86f1-41af-91ab-2d7cd011db47");
        assert_eq!(claims["appid"], "11111111-2222-3333-4444-555555555555");
        assert_eq!(claims["azp"], "11111111-2222-3333-4444-555555555555");
        assert_eq!(claims["oid"], "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
        assert_eq!(claims["sub"], "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
        assert_eq!(claims["idtyp"], "app");
        assert_eq!(claims["app_displayname"], "Inviter");
        assert_eq!(claims["roles"], json!(["User.Invite.All", "User.ReadWrite.All"]));
        assert_eq!(claims["ver"], "1.0");
        assert!(claims.get("scp").is_none() && claims.get("upn").is_none());
        assert_eq!(claims["uti"].as_str().unwrap().len(), 22);
        assert_ne!(payload(&ring.issue_app_token(&req, ORIGIN).unwrap().access_token)["uti"], claims["uti"]);

        let validated = ring.validate(&issued.access_token, ORIGIN).unwrap();
        assert_eq!(validated.tenant_id, req.tenant_id);
        assert_eq!(validated.app_id, req.app_id);
        assert_eq!(
            validated.principal,
            Principal::App { service_principal_id: req.service_principal_id, display_name: Some("Inviter".to_owned()) }
        );
        assert_eq!(validated.roles, req.roles);
        assert!(validated.scopes.is_empty());
        assert_eq!(validated.token_id, claims["uti"].as_str().unwrap());
        assert_eq!(validated.expires_at.timestamp(), iat + 3600);
        assert_eq!(validated.expires_at, issued.expires_at);
    }

    /// Found by fuzzing: `exp` near i64::MAX overflowed the leeway addition (a panic in debug builds).
    #[test]
    fn extreme_lifetimes_are_refused_without_overflow() {
        let ring = keyring_of(&[&test_keys()[0]]);
        let token = ring.issue_app_token(&request(Utc::now()), ORIGIN).unwrap().access_token;
        for (exp, nbf) in [(i64::MAX, 0), (i64::MAX, i64::MIN), (i64::MIN, i64::MIN), (0, i64::MAX)] {
            let mut claims = payload(&token);
            claims["exp"] = json!(exp);
            claims["nbf"] = json!(nbf);
            let refused = ring.validate(&sign_raw(&claims, &test_keys()[0].kid), ORIGIN);
            assert!(matches!(refused, Err(TokenError::Expired | TokenError::Malformed)), "exp {exp}, nbf {nbf}: {refused:?}");
        }
    }

    #[test]
    fn tampered_tokens_fail_the_signature_check() {
        let ring = keyring_of(&[&test_keys()[0]]);
        let token = ring.issue_app_token(&request(Utc::now()), ORIGIN).unwrap().access_token;
        let parts: Vec<&str> = token.split('.').collect();

        let mut claims = payload(&token);
        claims["roles"] = json!(["Directory.ReadWrite.All"]);
        let forged = format!("{}.{}.{}", parts[0], segment(&claims), parts[2]);
        assert_eq!(ring.validate(&forged, ORIGIN), Err(TokenError::InvalidSignature));

        let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        signature[10] ^= 1;
        let flipped = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(signature));
        assert_eq!(ring.validate(&flipped, ORIGIN), Err(TokenError::InvalidSignature));

        // alg confusion: HS256 with the kid of our key.
        let hs_header = json!({"alg": "HS256", "typ": "JWT", "kid": test_keys()[0].kid});
        let hs = format!("{}.{}.{}", segment(&hs_header), parts[1], parts[2]);
        assert_eq!(ring.validate(&hs, ORIGIN), Err(TokenError::InvalidSignature));
    }

    #[test]
    fn tokens_of_another_keyring_or_kid_are_refused() {
        let [a, b] = test_keys();
        let signer = keyring_of(&[b]);
        let verifier = keyring_of(&[a]);
        let token = signer.issue_app_token(&request(Utc::now()), ORIGIN).unwrap().access_token;
        assert_eq!(verifier.validate(&token, ORIGIN), Err(TokenError::UnknownSigningKey));

        let claims = payload(&token);
        let no_kid = {
            let header = segment(&json!({"alg": "RS256", "typ": "JWT"}));
            let rest: Vec<&str> = token.splitn(2, '.').collect();
            format!("{header}.{}", rest[1])
        };
        assert_eq!(verifier.validate(&no_kid, ORIGIN), Err(TokenError::UnknownSigningKey));
        // Same key material under a kid the keyring does not list.
        assert_eq!(verifier.validate(&sign_raw(&claims, "someone-elses-kid"), ORIGIN), Err(TokenError::UnknownSigningKey));
    }

    #[test]
    fn a_rotated_keyring_still_accepts_tokens_of_its_older_key() {
        let [old, new] = test_keys();
        let before = keyring_of(&[old]);
        let token = before.issue_app_token(&request(Utc::now()), ORIGIN).unwrap().access_token;
        let after = keyring_of(&[new, old]);
        assert_eq!(after.current_kid(), new.kid);
        assert!(after.validate(&token, ORIGIN).is_ok());
        let fresh = after.issue_app_token(&request(Utc::now()), ORIGIN).unwrap().access_token;
        assert_eq!(jsonwebtoken::decode_header(&fresh).unwrap().kid.as_deref(), Some(new.kid.as_str()));
        assert_eq!(before.validate(&fresh, ORIGIN), Err(TokenError::UnknownSigningKey));
    }

    #[test]
    fn expired_and_not_yet_valid_tokens_are_refused_with_a_minute_of_leeway() {
        let ring = keyring_of(&[&test_keys()[0]]);
        let issued_at = Utc::now() - Duration::hours(2);
        let token = ring.issue_app_token(&request(issued_at), ORIGIN).unwrap().access_token;
        assert_eq!(ring.validate(&token, ORIGIN), Err(TokenError::Expired));

        let exp = issued_at + Duration::seconds(3600);
        assert!(ring.validate_at(&token, ORIGIN, exp + Duration::seconds(59)).is_ok());
        assert_eq!(ring.validate_at(&token, ORIGIN, exp + Duration::seconds(61)), Err(TokenError::Expired));
        assert!(ring.validate_at(&token, ORIGIN, issued_at - Duration::seconds(59)).is_ok());
        assert_eq!(ring.validate_at(&token, ORIGIN, issued_at - Duration::seconds(61)), Err(TokenError::Expired));

        let mut claims = payload(&token);
        claims.as_object_mut().unwrap().remove("exp");
        assert_eq!(ring.validate(&sign_raw(&claims, &test_keys()[0].kid), ORIGIN), Err(TokenError::Expired));
    }

    #[test]
    fn audience_must_be_graph() {
        let ring = keyring_of(&[&test_keys()[0]]);
        let kid = &test_keys()[0].kid;
        let claims = payload(&ring.issue_app_token(&request(Utc::now()), ORIGIN).unwrap().access_token);
        for accepted in [json!("https://graph.microsoft.com/"), json!(GRAPH_APP_ID), json!(["api://other", "https://graph.microsoft.com"])]
        {
            let mut c = claims.clone();
            c["aud"] = accepted.clone();
            assert!(ring.validate(&sign_raw(&c, kid), ORIGIN).is_ok(), "{accepted}");
        }
        for refused in [json!("https://management.azure.com"), json!("https://graph.microsoft.com.evil"), json!([]), json!(null)] {
            let mut c = claims.clone();
            c["aud"] = refused.clone();
            assert_eq!(ring.validate(&sign_raw(&c, kid), ORIGIN), Err(TokenError::InvalidAudience), "{refused}");
        }
    }

    #[test]
    fn issuer_must_be_this_origin_and_the_tokens_tenant() {
        let ring = keyring_of(&[&test_keys()[0]]);
        let kid = &test_keys()[0].kid;
        let token = ring.issue_app_token(&request(Utc::now()), ORIGIN).unwrap().access_token;
        assert_eq!(ring.validate(&token, "https://localhost:8443"), Err(TokenError::InvalidIssuer));
        assert_eq!(ring.validate(&token, "http://127.0.0.1:8443"), Err(TokenError::InvalidIssuer));
        assert!(ring.validate(&token, "https://127.0.0.1:8443/").is_ok());

        let mut other_tenant = payload(&token);
        other_tenant["tid"] = json!("00000000-0000-0000-0000-000000000001");
        assert_eq!(ring.validate(&sign_raw(&other_tenant, kid), ORIGIN), Err(TokenError::InvalidIssuer));
        let mut no_tid = payload(&token);
        no_tid.as_object_mut().unwrap().remove("tid");
        assert_eq!(ring.validate(&sign_raw(&no_tid, kid), ORIGIN), Err(TokenError::InvalidIssuer));
    }

    #[test]
    fn garbage_is_missing_or_malformed() {
        let ring = keyring_of(&[&test_keys()[0]]);
        assert_eq!(ring.validate("", ORIGIN), Err(TokenError::Missing));
        assert_eq!(ring.validate("  ", ORIGIN), Err(TokenError::Missing));
        for garbage in ["abc", "a.b.c", "eyJ.eyJ.x", "not base64!.x.y", "....", &segment(&json!({"alg": "none"}))] {
            assert_eq!(ring.validate(garbage, ORIGIN), Err(TokenError::Malformed), "{garbage}");
        }
        let unsigned = format!("{}.{}.", segment(&json!({"alg": "none", "kid": test_keys()[0].kid})), segment(&json!({})));
        assert_eq!(ring.validate(&unsigned, ORIGIN), Err(TokenError::Malformed));
    }

    #[test]
    fn delegated_claims_give_a_user_principal_and_scopes() {
        let ring = keyring_of(&[&test_keys()[0]]);
        let mut claims = payload(&ring.issue_app_token(&request(Utc::now()), ORIGIN).unwrap().access_token);
        claims["idtyp"] = json!("user");
        claims["oid"] = json!("99999999-8888-7777-6666-555555555555");
        claims["upn"] = json!("admin@contoso.onmicrosoft.com");
        claims["scp"] = json!("User.Invite.All User.Read");
        claims["roles"] = json!(["User.Invite.All", "Mail.Send"]);
        let validated = ring.validate(&sign_raw(&claims, &test_keys()[0].kid), ORIGIN).unwrap();
        assert_eq!(
            validated.principal,
            Principal::User {
                user_id: ObjectId::parse("99999999-8888-7777-6666-555555555555").unwrap(),
                upn: Some("admin@contoso.onmicrosoft.com".to_owned())
            }
        );
        assert_eq!(validated.scopes, ["User.Invite.All", "User.Read"]);
        assert_eq!(validated.roles, [AppPermission::UserInviteAll]);
    }

    #[test]
    fn token_errors_carry_graphs_messages() {
        assert_eq!(TokenError::Missing.message(), "Access token is empty.");
        assert_eq!(TokenError::Malformed.to_string(), "CompactToken parsing failed with error code: 80049217");
        assert_eq!(TokenError::InvalidAudience.message(), "Access token validation failure. Invalid audience.");
        assert_eq!(TokenError::Expired.code(), "InvalidAuthenticationToken");
        assert_eq!(TokenError::Expired.status(), 401);
        assert!(TokenError::www_authenticate("https://127.0.0.1:8443/")
            .contains("authorization_uri=\"https://127.0.0.1:8443/common/oauth2/authorize\""));
    }

    #[test]
    fn client_secrets_hash_and_verify() {
        let secret = generate_client_secret();
        assert_eq!(secret.len(), 40);
        assert_eq!(&secret[4..5], "~");
        assert!(secret.bytes().all(|b| SECRET_ALPHABET.contains(&b)), "{secret}");
        assert_ne!(secret, generate_client_secret());

        let hash = hash_client_secret(&secret);
        assert_eq!(hash.len(), 64);
        assert!(verify_client_secret(&secret, &hash));
        assert!(verify_client_secret(&secret, &hash.to_ascii_uppercase()));
        assert!(!verify_client_secret(&format!("{secret}x"), &hash));
        assert!(!verify_client_secret(&secret, &hash[..63]));
        assert!(!verify_client_secret(&secret, ""));
        assert_eq!(hash_client_secret("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}

//! RS256 signing keys: generation, the keyring that signs with the newest key and verifies with
//! any, and its JWKS document.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::IdentityError;

const RSA_BITS: usize = 2048;
/// Entra's kids are 27 characters: a base64url SHA-1 thumbprint. We take as many bytes of SHA-256.
const KID_BYTES: usize = 20;

/// A freshly generated signing key, ready to be stored.
pub struct GeneratedKey {
    pub kid: String,
    /// PKCS#8 (`-----BEGIN PRIVATE KEY-----`).
    pub private_key_pem: String,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// Generates an RSA-2048 key. The kid is derived from the public key, so it is stable for a key.
pub fn generate_signing_key() -> Result<GeneratedKey, IdentityError> {
    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, RSA_BITS).map_err(|e| IdentityError::SigningKey(e.to_string()))?;
    let private_key_pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| IdentityError::SigningKey(e.to_string()))?.to_string();
    Ok(GeneratedKey { kid: kid_of(&key)?, private_key_pem })
}

/// The kid `generate_signing_key` gives this key: base64url of the SHA-256 of its public key's
/// SubjectPublicKeyInfo DER, cut to 27 characters.
pub fn kid_for_private_key_pem(private_key_pem: &str) -> Result<String, IdentityError> {
    kid_of(&parse_private_key(private_key_pem)?)
}

fn kid_of(key: &RsaPrivateKey) -> Result<String, IdentityError> {
    let spki = key.to_public_key().to_public_key_der().map_err(|e| IdentityError::SigningKey(e.to_string()))?;
    let digest = Sha256::digest(spki.as_bytes());
    Ok(URL_SAFE_NO_PAD.encode(&digest[..KID_BYTES]))
}

fn parse_private_key(pem: &str) -> Result<RsaPrivateKey, IdentityError> {
    RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|e| IdentityError::SigningKey(format!("not an RSA private key in PKCS#8 or PKCS#1 PEM: {e}")))
}

pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pub(crate) created_date_time: DateTime<Utc>,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    modulus_b64: String,
    exponent_b64: String,
}

impl SigningKey {
    fn from_pem(kid: String, pem: &str, created_date_time: DateTime<Utc>) -> Result<Self, IdentityError> {
        let key = parse_private_key(pem)?;
        if key.size() * 8 < RSA_BITS {
            return Err(IdentityError::SigningKey(format!("key {kid} is shorter than {RSA_BITS} bits")));
        }
        // ring, under jsonwebtoken, signs with PKCS#1 DER only.
        let pkcs1 = key.to_pkcs1_der().map_err(|e| IdentityError::SigningKey(e.to_string()))?;
        let modulus = key.n().to_bytes_be();
        let exponent = key.e().to_bytes_be();
        Ok(SigningKey {
            kid,
            created_date_time,
            encoding: EncodingKey::from_rsa_der(pkcs1.as_bytes()),
            decoding: DecodingKey::from_rsa_raw_components(&modulus, &exponent),
            modulus_b64: URL_SAFE_NO_PAD.encode(&modulus),
            exponent_b64: URL_SAFE_NO_PAD.encode(&exponent),
        })
    }
}

/// The signing keys in force: signs with the newest, verifies with any (so tokens signed before a
/// key rotation stay valid until they expire).
pub struct Keyring {
    /// Newest first; never empty.
    keys: Vec<SigningKey>,
}

impl Keyring {
    /// Builds the keyring from stored keys as `(kid, private_key_pem, created_date_time)`.
    /// Order does not matter: the key with the latest `created_date_time` signs.
    pub fn new<I, K, P>(keys: I) -> Result<Keyring, IdentityError>
    where
        I: IntoIterator<Item = (K, P, DateTime<Utc>)>,
        K: Into<String>,
        P: AsRef<str>,
    {
        let mut keys = keys
            .into_iter()
            .map(|(kid, pem, created)| SigningKey::from_pem(kid.into(), pem.as_ref(), created))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(IdentityError::EmptyKeyring);
        }
        keys.sort_by_key(|k| std::cmp::Reverse(k.created_date_time));
        Ok(Keyring { keys })
    }

    /// The kid new tokens are signed with.
    pub fn current_kid(&self) -> &str {
        &self.keys[0].kid
    }

    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.kid.as_str())
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.keys[0]
    }

    pub(crate) fn key(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// The JWKS document served at `discovery/v2.0/keys`, newest key first. No `x5t`/`x5c`: the
    /// keys have no certificates, and MSAL and Graph clients never read them.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|k| json!({"kty": "RSA", "use": "sig", "kid": k.kid, "n": k.modulus_b64, "e": k.exponent_b64, "alg": "RS256"}))
            .collect();
        json!({ "keys": keys })
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("kids", &self.kids().collect::<Vec<_>>()).finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::OnceLock;
    use std::time::Instant;

    use chrono::Duration;
    use rsa::BigUint;

    use super::*;

    /// Two generated keys shared by the crate's tests (keygen is the slow part).
    pub(crate) fn test_keys() -> &'static [GeneratedKey; 2] {
        static KEYS: OnceLock<[GeneratedKey; 2]> = OnceLock::new();
        KEYS.get_or_init(|| [generate_signing_key().unwrap(), generate_signing_key().unwrap()])
    }

    pub(crate) fn keyring_of(keys: &[&GeneratedKey]) -> Keyring {
        let now = Utc::now();
        Keyring::new(keys.iter().enumerate().map(|(i, k)| (k.kid.clone(), k.private_key_pem.clone(), now - Duration::days(i as i64))))
            .unwrap()
    }

    #[test]
    fn generated_key_is_pkcs8_rsa_2048_with_a_stable_aad_sized_kid() {
        let started = Instant::now();
        let key = generate_signing_key().unwrap();
        let elapsed = started.elapsed();
        assert!(elapsed.as_secs_f64() < 5.0, "keygen took {elapsed:?}");
        assert!(key.private_key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{}", &key.private_key_pem[..40]);
        assert_eq!(parse_private_key(&key.private_key_pem).unwrap().size(), 256);
        assert_eq!(key.kid.len(), 27);
        assert!(key.kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{}", key.kid);
        assert_eq!(kid_for_private_key_pem(&key.private_key_pem).unwrap(), key.kid);
        assert_ne!(test_keys()[0].kid, test_keys()[1].kid);
        assert!(!format!("{key:?}").contains("PRIVATE"));
    }

    #[test]
    fn keyring_signs_with_the_newest_key_whatever_the_order() {
        let [old, new] = test_keys();
        let now = Utc::now();
        let ring = Keyring::new([
            (old.kid.clone(), old.private_key_pem.as_str(), now - Duration::days(30)),
            (new.kid.clone(), new.private_key_pem.as_str(), now),
        ])
        .unwrap();
        assert_eq!(ring.current_kid(), new.kid);
        assert_eq!(ring.kids().collect::<Vec<_>>(), [new.kid.as_str(), old.kid.as_str()]);
        assert!(ring.key(&old.kid).is_some());
        assert!(!format!("{ring:?}").contains("PRIVATE"));
    }

    #[test]
    fn keyring_refuses_empty_lists_and_bad_pem() {
        let none: Vec<(String, String, DateTime<Utc>)> = Vec::new();
        assert!(matches!(Keyring::new(none), Err(IdentityError::EmptyKeyring)));
        assert!(matches!(Keyring::new([("k", "not a key", Utc::now())]), Err(IdentityError::SigningKey(_))));
    }

    #[test]
    fn jwks_n_and_e_are_the_keys_modulus_and_exponent() {
        let [a, b] = test_keys();
        let ring = keyring_of(&[a, b]);
        let jwks = ring.jwks();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        for (jwk, generated) in keys.iter().zip([a, b]) {
            let private = parse_private_key(&generated.private_key_pem).unwrap();
            assert_eq!(jwk["kty"], "RSA");
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["alg"], "RS256");
            assert_eq!(jwk["kid"], generated.kid.as_str());
            let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
            let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
            assert_eq!(BigUint::from_bytes_be(&n), *private.n());
            assert_eq!(BigUint::from_bytes_be(&e), *private.e());
            assert_eq!(jwk["e"], "AQAB");
            assert!(!jwk["n"].as_str().unwrap().contains('='));
        }
    }
}

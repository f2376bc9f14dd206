//! What the fuzz target checks on bearer token validation: a token read from arbitrary bytes never
//! panics and never validates, and a token signed by our own key over arbitrary claims is either
//! refused with Graph's 401 or yields the identity its claims name. Shared by `fuzz/fuzz_targets/`
//! and `crates/identity/tests/fuzz_corpus.rs`.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use guestlist_domain::ObjectId;
use guestlist_identity::signing::kid_for_private_key_pem;
use guestlist_identity::Keyring;
use jsonwebtoken::{Algorithm, EncodingKey};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::RsaPrivateKey;

const ORIGIN: &str = "https://guestlist.test";

struct Signer {
    keyring: Keyring,
    kid: String,
    encoding: EncodingKey,
}

fn signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(|| {
        // A fixed key: generating one costs seconds in a sanitized build, and the first input would time out.
        let pem = include_str!("test_signing_key.pem");
        let kid = kid_for_private_key_pem(pem).expect("the key's kid");
        let created = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).expect("a fixed time");
        let keyring = Keyring::new([(kid.clone(), pem, created)]).expect("a keyring");
        let private = RsaPrivateKey::from_pkcs8_pem(pem).expect("the key as PKCS#8");
        let encoding = EncodingKey::from_rsa_der(private.to_pkcs1_der().expect("the key as PKCS#1").as_bytes());
        Signer { keyring, kid, encoding }
    })
}

/// Validation as of a fixed instant, so a replayed input takes the same path every time.
fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_790_000_000, 0).expect("a fixed time")
}

/// First byte even: the rest is a bearer token as received. Odd: the rest is a payload that our key signs
/// (so validation gets past the signature into the claims).
pub fn bearer_token(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let signer = signer();
    if mode & 1 == 0 {
        let token = String::from_utf8_lossy(rest);
        let error = signer.keyring.validate_at(&token, ORIGIN, now()).expect_err("a token nobody signed validated");
        assert_eq!(error.status(), 401);
        return;
    }
    let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": signer.kid });
    let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(rest));
    let signature = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &signer.encoding, Algorithm::RS256).expect("signing");
    let token = format!("{signing_input}.{signature}");
    match signer.keyring.validate_at(&token, ORIGIN, now()) {
        Ok(validated) => {
            let claims: serde_json::Value = serde_json::from_slice(rest).expect("validated claims are JSON");
            let tid = claims["tid"].as_str().and_then(|tid| ObjectId::parse(tid).ok());
            assert_eq!(tid, Some(validated.tenant_id));
            assert!(validated.expires_at.timestamp() + 60 >= now().timestamp());
        }
        Err(error) => assert_eq!(error.status(), 401),
    }
}

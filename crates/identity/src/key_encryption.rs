//! Encryption at rest of the signing keys' private halves: AES-256-GCM under a key-encryption
//! key that lives outside the database (a file in the data directory or an environment
//! variable), so a copied database alone cannot mint tokens.
//!
//! Each sealed key is bound to its kid (the AEAD's associated data), so ciphertexts cannot be
//! swapped between rows; the key-encryption key's id is stored beside it, so a wrong key is
//! reported as such and rotation knows which rows it has done.

use std::fmt;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use sha2::{Digest, Sha256};

use crate::IdentityError;

/// 256 bits.
pub const KEY_ENCRYPTION_KEY_BYTES: usize = 32;
/// Domain separation of the key id's digest and of the AEAD's associated data.
const KEY_ID_CONTEXT: &[u8] = b"guestlist key-encryption key id\0";
const AAD_CONTEXT: &str = "guestlist signing key\0";
/// A sealed PKCS#8 PEM of an RSA-2048 key is about 2.3 KB; anything far larger is not ours.
const MAX_SEALED_CHARS: usize = 16 * 1024;

/// The key that seals signing keys. Its `Debug` shows the id only.
#[derive(Clone)]
pub struct KeyEncryptionKey {
    bytes: [u8; KEY_ENCRYPTION_KEY_BYTES],
    id: String,
}

impl KeyEncryptionKey {
    /// A new random key.
    pub fn generate() -> KeyEncryptionKey {
        let mut bytes = [0u8; KEY_ENCRYPTION_KEY_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    fn from_bytes(bytes: [u8; KEY_ENCRYPTION_KEY_BYTES]) -> KeyEncryptionKey {
        let digest = Sha256::new().chain_update(KEY_ID_CONTEXT).chain_update(bytes).finalize();
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        KeyEncryptionKey { bytes, id }
    }

    /// Parses the base64 text of `GUESTLIST_KEY_ENCRYPTION_KEY` or a key file (standard or
    /// URL-safe alphabet, padding optional, surrounding whitespace ignored): exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<KeyEncryptionKey, IdentityError> {
        let text = text.trim();
        let unpadded = text.trim_end_matches('=');
        let decoded = if unpadded.contains(['+', '/']) {
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(unpadded)
        } else {
            URL_SAFE_NO_PAD.decode(unpadded)
        };
        let bytes: [u8; KEY_ENCRYPTION_KEY_BYTES] = decoded
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| IdentityError::KeyEncryption("a key-encryption key is 32 bytes in base64 (44 characters)".into()))?;
        Ok(Self::from_bytes(bytes))
    }

    /// Standard base64 with padding, as `from_base64` reads it and key files hold it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    /// 16 hex digits derived from the key (not secret): stored beside every key it sealed.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn aead(&self) -> LessSafeKey {
        // 32 bytes is AES-256's key length, so this cannot fail.
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.bytes).expect("AES-256 takes a 32-byte key"))
    }

    /// Seals the private key of `kid`: base64url of the random nonce followed by the ciphertext
    /// and tag.
    pub fn seal(&self, kid: &str, private_key_pem: &str) -> Result<String, IdentityError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut sealed = private_key_pem.as_bytes().to_vec();
        self.aead()
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(associated_data(kid)), &mut sealed)
            .map_err(|_| IdentityError::KeyEncryption(format!("sealing key {kid} failed")))?;
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(stored))
    }

    /// Opens what `seal` made for `kid`. Fails when this is not the key that sealed it, or the
    /// text was changed or belongs to another kid.
    pub fn open(&self, kid: &str, sealed: &str) -> Result<String, IdentityError> {
        let wrong = || IdentityError::KeyEncryption(format!("signing key {kid} does not open with key-encryption key {}", self.id));
        if sealed.len() > MAX_SEALED_CHARS {
            return Err(wrong());
        }
        let stored = URL_SAFE_NO_PAD.decode(sealed.trim()).map_err(|_| wrong())?;
        if stored.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, ciphertext) = stored.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut buffer = ciphertext.to_vec();
        let plain = self.aead().open_in_place(nonce, Aad::from(associated_data(kid)), &mut buffer).map_err(|_| wrong())?;
        String::from_utf8(plain.to_vec()).map_err(|_| wrong())
    }
}

fn associated_data(kid: &str) -> Vec<u8> {
    format!("{AAD_CONTEXT}{kid}").into_bytes()
}

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEncryptionKey").field("id", &self.id).field("key", &crate::REDACTED).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIE...\n-----END PRIVATE KEY-----\n";

    #[test]
    fn sealed_keys_open_with_the_same_key_and_kid_only() {
        let key = KeyEncryptionKey::generate();
        let sealed = key.seal("kid-1", PEM).unwrap();
        assert!(!sealed.contains("PRIVATE"), "{sealed}");
        assert_ne!(sealed, key.seal("kid-1", PEM).unwrap(), "a fresh nonce per seal");
        assert_eq!(key.open("kid-1", &sealed).unwrap(), PEM);

        let other = KeyEncryptionKey::generate();
        assert_ne!(other.id(), key.id());
        let refused = other.open("kid-1", &sealed).unwrap_err().to_string();
        assert!(refused.contains(other.id()) && refused.contains("kid-1"), "{refused}");
        // Bound to its kid: a row's ciphertext copied to another kid does not open.
        assert!(key.open("kid-2", &sealed).is_err());
        let mut tampered = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.open("kid-1", &URL_SAFE_NO_PAD.encode(tampered)).is_err());
        for garbage in ["", "abc", "!!!", &"A".repeat(MAX_SEALED_CHARS + 1)] {
            assert!(key.open("kid-1", garbage).is_err(), "{garbage}");
        }
    }

    #[test]
    fn keys_round_trip_through_base64_and_refuse_other_lengths() {
        let key = KeyEncryptionKey::generate();
        let text = key.to_base64();
        assert_eq!(text.len(), 44);
        let parsed = KeyEncryptionKey::from_base64(&format!("  {text}\n")).unwrap();
        assert_eq!(parsed.id(), key.id());
        let url_safe = URL_SAFE_NO_PAD.encode(STANDARD.decode(&text).unwrap());
        assert_eq!(KeyEncryptionKey::from_base64(&url_safe).unwrap().id(), key.id());
        assert_eq!(parsed.open("k", &key.seal("k", PEM).unwrap()).unwrap(), PEM);
        for bad in ["", "not base64!", &STANDARD.encode([0u8; 16]), &STANDARD.encode([0u8; 33])] {
            assert!(matches!(KeyEncryptionKey::from_base64(bad), Err(IdentityError::KeyEncryption(_))), "{bad}");
        }
        // The id is a function of the key: the all-zero key always has the same one.
        let zero = KeyEncryptionKey::from_base64(&STANDARD.encode([0u8; 32])).unwrap();
        assert_eq!(zero.id().len(), 16);
        assert_eq!(zero.id(), KeyEncryptionKey::from_base64(&STANDARD.encode([0u8; 32])).unwrap().id());
    }

    #[test]
    fn debug_shows_the_id_not_the_key() {
        let key = KeyEncryptionKey::generate();
        let shown = format!("{key:?}");
        assert!(shown.contains(key.id()) && shown.contains("[redacted]"), "{shown}");
        assert!(!shown.contains(&key.to_base64()) && !shown.contains(&format!("{:?}", key.bytes)), "{shown}");
    }
}

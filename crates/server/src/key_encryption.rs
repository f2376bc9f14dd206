//! Where the key-encryption key comes from: `GUESTLIST_KEY_ENCRYPTION_KEY` (base64), else the
//! file `GUESTLIST_KEY_ENCRYPTION_KEY_FILE` names, else `<data-dir>/key-encryption.key`, created
//! 0600 on first start. It never goes into the database, so a copy of the database alone
//! cannot sign tokens.

use std::path::{Path, PathBuf};

use guestlist_identity::KeyEncryptionKey;

use crate::config::{ConfigurationError, KeyEncryptionConfig};
use crate::secret_files;

/// The key file's name in the data directory.
pub const KEY_FILE_NAME: &str = "key-encryption.key";

/// Where the key in force was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    /// `--key-encryption-key-file` / `GUESTLIST_KEY_ENCRYPTION_KEY_FILE`.
    File(PathBuf),
    /// `<data-dir>/key-encryption.key`.
    DataDirectory(PathBuf),
}

impl KeySource {
    pub fn describe(&self) -> String {
        match self {
            KeySource::Environment => "GUESTLIST_KEY_ENCRYPTION_KEY".to_string(),
            KeySource::File(path) | KeySource::DataDirectory(path) => path.display().to_string(),
        }
    }
}

pub fn data_dir_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE_NAME)
}

/// Reads the key; with `create_in_data_dir`, a missing data-directory key file is created with
/// a new random key (first start). A malformed key is a [`ConfigurationError`].
pub fn load(config: &KeyEncryptionConfig, data_dir: &Path, create_in_data_dir: bool) -> anyhow::Result<(KeyEncryptionKey, KeySource)> {
    if let Some(text) = config.key.as_deref().filter(|t| !t.trim().is_empty()) {
        let key = KeyEncryptionKey::from_base64(text).map_err(|e| ConfigurationError(format!("GUESTLIST_KEY_ENCRYPTION_KEY: {e}")))?;
        return Ok((key, KeySource::Environment));
    }
    if let Some(path) = &config.key_file {
        return Ok((read_key_file(path)?, KeySource::File(path.clone())));
    }
    let path = data_dir_key_path(data_dir);
    if create_in_data_dir && !path.exists() {
        let generated = KeyEncryptionKey::generate();
        // Another process starting on the same directory may have won; its key stands.
        secret_files::create_private_file(&path, format!("{}\n", generated.to_base64()).as_bytes())
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?;
    }
    Ok((read_key_file(&path)?, KeySource::DataDirectory(path)))
}

/// A key file: the base64 text of 32 bytes.
pub fn read_key_file(path: &Path) -> anyhow::Result<KeyEncryptionKey> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigurationError(format!("reading the key-encryption key file {}: {e}", path.display())))?;
    Ok(KeyEncryptionKey::from_base64(&text).map_err(|e| ConfigurationError(format!("{}: {e}", path.display())))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_wins_then_the_file_then_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (created, source) = load(&KeyEncryptionConfig::default(), dir.path(), true).unwrap();
        assert_eq!(source, KeySource::DataDirectory(data_dir_key_path(dir.path())));
        let (again, _) = load(&KeyEncryptionConfig::default(), dir.path(), true).unwrap();
        assert_eq!(again.id(), created.id(), "the data-directory key is kept");

        let file = dir.path().join("elsewhere.key");
        let from_file = KeyEncryptionKey::generate();
        std::fs::write(&file, from_file.to_base64()).unwrap();
        let config = KeyEncryptionConfig { key: None, key_file: Some(file.clone()) };
        let (key, source) = load(&config, dir.path(), true).unwrap();
        assert_eq!((key.id(), source), (from_file.id(), KeySource::File(file.clone())));

        let from_env = KeyEncryptionKey::generate();
        let config = KeyEncryptionConfig { key: Some(from_env.to_base64()), key_file: Some(file) };
        let (key, source) = load(&config, dir.path(), true).unwrap();
        assert_eq!((key.id(), source), (from_env.id(), KeySource::Environment));
    }

    #[test]
    fn malformed_or_missing_keys_are_configuration_errors() {
        let dir = tempfile::tempdir().unwrap();
        let config = KeyEncryptionConfig { key: Some("too-short".into()), key_file: None };
        let error = load(&config, dir.path(), true).unwrap_err();
        assert!(error.downcast_ref::<ConfigurationError>().is_some(), "{error:#}");
        assert!(error.to_string().contains("GUESTLIST_KEY_ENCRYPTION_KEY"), "{error:#}");

        let missing = KeyEncryptionConfig { key: None, key_file: Some(dir.path().join("absent")) };
        assert!(load(&missing, dir.path(), true).unwrap_err().downcast_ref::<ConfigurationError>().is_some());
        // Without creation (the rotation command), a data directory without a key is an error too.
        assert!(load(&KeyEncryptionConfig::default(), dir.path(), false).is_err());
        assert!(!data_dir_key_path(dir.path()).exists());
    }
}

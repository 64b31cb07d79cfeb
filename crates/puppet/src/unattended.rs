//! Unattended access on disk: the device ID and its token, the stored password key, and the
//! count of wrong passwords, in the puppet's config folder.
//!
//! Every file is written whole to a temporary file of mode 0600 in the same folder and renamed
//! over the old one, so a crash never leaves half a file and no other local user can read them.
//! The folder itself is made 0700. The password is never written, only its Argon2id key
//! (`rtcdesk_pake::DeviceKey`), and nothing here logs either.
//!
//! | file | holds |
//! |---|---|
//! | `device.json` | `{"id":"482113905","token":"…"}`: the permanent ID and the token that owns it at the signaling server |
//! | `device-password` | the key as an Argon2id PHC string |
//! | `attempts.json` | `{"consecutive":0,"locked":false,"unseen":0,"last_failure_unix":null}` |

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use rtcdesk_pake::DeviceKey;
use rtcdesk_proto::signal::{ControlCode, DeviceClaim};
use serde::{Deserialize, Serialize};

/// The config folder: `$RTCDESK_CONFIG_DIR`, else `$XDG_CONFIG_HOME/rtcdesk`, else
/// `~/.config/rtcdesk`.
pub fn default_config_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("RTCDESK_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("rtcdesk"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".config").join("rtcdesk")),
        None => bail!("no config folder: set HOME, XDG_CONFIG_HOME or --config-dir"),
    }
}

/// What `attempts.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptLog {
    /// Wrong passwords in a row (the backoff and the lock count these).
    pub consecutive: u32,
    /// Whether the puppet refuses everyone until its owner unlocks it.
    pub locked: bool,
    /// Wrong passwords since the owner last looked (`puppet status`, `unlock`,
    /// `set-password`, or starting the puppet by hand).
    pub unseen: u32,
    /// When the latest wrong password came (Unix seconds).
    pub last_failure_unix: Option<u64>,
}

impl AttemptLog {
    /// One line for the owner: how many wrong passwords came since they last looked.
    pub fn summary(&self) -> Option<String> {
        if self.unseen == 0 && !self.locked {
            return None;
        }
        let mut line = format!(
            "{} wrong password{} for unattended access since you last looked",
            self.unseen,
            if self.unseen == 1 { "" } else { "s" }
        );
        if let Some(at) = self.last_failure_unix {
            line.push_str(&format!(" (the latest at {})", utc_text(at)));
        }
        if self.locked {
            line.push_str(
                "; the puppet is LOCKED: run `puppet unlock` to let controllers in again",
            );
        }
        Some(line)
    }
}

/// Unix seconds as `2026-12-03 19:35:50 UTC` (the proleptic Gregorian calendar; days from
/// the civil-from-days algorithm of Howard Hinnant's `chrono`-compatible date library).
fn utc_text(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let seconds = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// The puppet's config folder, for unattended access.
#[derive(Debug, Clone)]
pub struct DeviceStore {
    dir: PathBuf,
}

impl DeviceStore {
    /// The store in `dir` (not created until something is written).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The device ID and token, if `set-password` made them.
    pub fn device(&self) -> Result<Option<DeviceClaim>> {
        let path = self.path("device.json");
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let claim: DeviceClaim = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged (run `puppet set-password --new-id`)",
                path.display()
            )
        })?;
        if !claim.token_is_valid() {
            bail!(
                "{} has an unusable token (run `puppet set-password --new-id`)",
                path.display()
            );
        }
        Ok(Some(claim))
    }

    /// The device, made now (a random ID and token) if there is none yet or `new_id` asks for
    /// a fresh one.
    pub fn device_or_create(&self, new_id: bool) -> Result<DeviceClaim> {
        if !new_id {
            if let Some(claim) = self.device()? {
                return Ok(claim);
            }
        }
        let mut bytes = [0u8; 4 + 24];
        getrandom::fill(&mut bytes).context("the OS random number generator failed")?;
        // 2^32 is 4.29 × 10^9: values at or above 4 × 10^9 would make low IDs likelier.
        let id = loop {
            let value = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            if value < 4 * ControlCode::SPACE {
                break ControlCode::from_number(value % ControlCode::SPACE)
                    .context("a device ID in range")?;
            }
            getrandom::fill(&mut bytes[..4]).context("the OS random number generator failed")?;
        };
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[4..]);
        let claim = DeviceClaim { id, token };
        self.write("device.json", serde_json::to_string(&claim)?.as_bytes())?;
        Ok(claim)
    }

    /// The stored password key for device `id`, if a password was set.
    pub fn key(&self, id: ControlCode) -> Result<Option<DeviceKey>> {
        let path = self.path("device-password");
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let key = DeviceKey::from_phc(id, &text).with_context(|| {
            format!(
                "{}: set the password again (puppet set-password)",
                path.display()
            )
        })?;
        Ok(Some(key))
    }

    /// Stores the password key for device `id`.
    pub fn set_key(&self, id: ControlCode, key: &DeviceKey) -> Result<()> {
        self.write(
            "device-password",
            format!("{}\n", key.to_phc(id)).as_bytes(),
        )
    }

    /// The wrong-password log (empty when there is none).
    pub fn attempts(&self) -> Result<AttemptLog> {
        let path = self.path("attempts.json");
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is damaged", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AttemptLog::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Stores the wrong-password log.
    pub fn set_attempts(&self, log: &AttemptLog) -> Result<()> {
        self.write("attempts.json", serde_json::to_string(log)?.as_bytes())
    }

    /// Writes `name` whole, mode 0600, through a temporary file and a rename.
    fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let target = self.path(name);
        let temp = self.path(&format!(".{name}.tmp"));
        let result = (|| -> std::io::Result<()> {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temp)?;
            // An older file of another mode keeps its mode on open: set it.
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&temp, &target)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result.with_context(|| format!("writing {}", target.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_and_its_key_are_kept_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeviceStore::new(dir.path().join("rtcdesk"));
        assert!(store.device().unwrap().is_none());
        let claim = store.device_or_create(false).unwrap();
        assert!(claim.token_is_valid());
        assert_eq!(store.device_or_create(false).unwrap(), claim, "made once");
        assert_ne!(store.device_or_create(true).unwrap(), claim, "--new-id");
        let claim = store.device().unwrap().unwrap();
        assert!(store.key(claim.id).unwrap().is_none());
        let key = DeviceKey::derive(claim.id, "correct horse battery");
        store.set_key(claim.id, &key).unwrap();
        assert_eq!(store.key(claim.id).unwrap(), Some(key));
        for name in ["device.json", "device-password"] {
            let mode = fs::metadata(store.dir().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        let mode = fs::metadata(store.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let stored = fs::read_to_string(store.dir().join("device-password")).unwrap();
        assert!(!stored.contains("horse"));
    }

    #[test]
    fn damaged_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeviceStore::new(dir.path().to_path_buf());
        fs::write(dir.path().join("device.json"), "{not json").unwrap();
        let error = format!("{:#}", store.device().unwrap_err());
        assert!(error.contains("set-password --new-id"), "{error}");
        fs::write(dir.path().join("device-password"), "$argon2i$nope").unwrap();
        let id = ControlCode::from_number(1).unwrap();
        let error = format!("{:#}", store.key(id).unwrap_err());
        assert!(error.contains("set-password"), "{error}");
        fs::write(dir.path().join("attempts.json"), "[]").unwrap();
        assert!(store.attempts().is_err());
    }

    #[test]
    fn times_are_shown_as_utc_dates() {
        assert_eq!(utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_text(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_text(1_796_326_550), "2026-12-03 19:35:50 UTC");
    }

    #[test]
    fn the_attempt_log_round_trips_and_says_what_happened() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeviceStore::new(dir.path().to_path_buf());
        assert_eq!(store.attempts().unwrap(), AttemptLog::default());
        assert_eq!(AttemptLog::default().summary(), None);
        let log = AttemptLog {
            consecutive: 10,
            locked: true,
            unseen: 12,
            last_failure_unix: Some(1_800_000_000),
        };
        store.set_attempts(&log).unwrap();
        assert_eq!(store.attempts().unwrap(), log);
        let summary = log.summary().unwrap();
        assert!(summary.starts_with("12 wrong passwords"), "{summary}");
        assert!(summary.contains("2027-01-15 08:00:00 UTC"), "{summary}");
        assert!(summary.contains("puppet unlock"), "{summary}");
    }
}

//! The puppets this controller connected to lately, kept in
//! `$XDG_CONFIG_HOME/rtcdesk/recent.json` (`~/.config/...` without it), so the connect screen
//! can offer them again: control codes expire, but a named puppet that keeps its code (or one
//! reconnected within minutes) is one click away.
//!
//! The file is ours but lives on disk where anything may change it: a file that does not parse
//! is treated as empty (and replaced on the next save), never as an error that blocks connecting.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How many puppets the list keeps (most recent first).
pub const MAX_RECENT: usize = 8;

/// One puppet connected to before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentPuppet {
    /// The control code used, 9 digits.
    pub code: String,
    /// The name the puppet gave, if any.
    #[serde(default)]
    pub name: Option<String>,
    /// The signaling server it was reached through.
    pub server: String,
    /// When, in seconds since the Unix epoch.
    #[serde(default)]
    pub last_used: u64,
}

/// The recent list and where it is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentPuppets {
    /// Most recent first, at most [`MAX_RECENT`].
    pub entries: Vec<RecentPuppet>,
    path: Option<PathBuf>,
}

/// Where the list lives by default: `$XDG_CONFIG_HOME/rtcdesk/recent.json`, else
/// `$HOME/.config/rtcdesk/recent.json`; `None` when neither variable is set.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".config"))
        })?;
    Some(base.join("rtcdesk").join("recent.json"))
}

impl RecentPuppets {
    /// Reads the list at `path`; a missing or unreadable file gives an empty list.
    pub fn load(path: &Path) -> Self {
        let mut entries: Vec<RecentPuppet> = std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        entries.truncate(MAX_RECENT);
        Self {
            entries,
            path: Some(path.to_owned()),
        }
    }

    /// Puts `puppet` first (replacing an entry with the same code and server) and keeps the
    /// list bounded.
    pub fn remember(&mut self, puppet: RecentPuppet) {
        self.entries
            .retain(|e| !(e.code == puppet.code && e.server == puppet.server));
        self.entries.insert(0, puppet);
        self.entries.truncate(MAX_RECENT);
    }

    /// Writes the list back where it was loaded from (creating the folder); a list that was
    /// never loaded from a file is not saved.
    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let json = serde_json::to_vec_pretty(&self.entries).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn puppet(code: &str) -> RecentPuppet {
        RecentPuppet {
            code: code.into(),
            name: None,
            server: "ws://127.0.0.1:8443/".into(),
            last_used: 1,
        }
    }

    #[test]
    fn the_list_round_trips_newest_first_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rtcdesk").join("recent.json");
        let mut recent = RecentPuppets::load(&path);
        assert!(recent.entries.is_empty());
        for i in 0..10 {
            recent.remember(puppet(&format!("10000000{i}")));
        }
        recent.remember(puppet("100000005"));
        recent.save().unwrap();
        let again = RecentPuppets::load(&path);
        assert_eq!(again.entries.len(), MAX_RECENT);
        assert_eq!(again.entries[0].code, "100000005");
        assert_eq!(again.entries[1].code, "100000009");
        assert_eq!(
            again
                .entries
                .iter()
                .filter(|e| e.code == "100000005")
                .count(),
            1
        );
    }

    #[test]
    fn a_damaged_file_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recent.json");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(RecentPuppets::load(&path).entries.is_empty());
    }
}

//! The download folder: where received bytes go, how a file gets its final name, and how a broken
//! transfer is picked up again.
//!
//! Bytes go to `NAME.part` beside a small `NAME.part.state` sidecar (safe name, size, SHA-256 and
//! the durable offset: every byte before it was fsynced). Once the receiver has checked the hash,
//! [`PartFile::finish`] fsyncs, links the part to the first free name of `NAME`, `NAME (1).ext`,
//! `NAME (2).ext`… (a hard link fails rather than overwrite), and removes the part and sidecar.
//! On a mismatch, a failure or a cancel, [`PartFile::discard`] removes both; when the session is
//! lost, [`PartFile::suspend`] records the durable offset and keeps both, so that the same file
//! (same safe name, size and hash) offered again resumes: [`DownloadFolder::prepare`] finds the
//! part, re-hashes its durable prefix and truncates anything after it.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rtcdesk_proto::control::Sha256;
use sha2::Digest as _;

use crate::error::{hex, is_disk_full};
use crate::name::{safe_name, variant, MAX_NAME};
use crate::{FileError, Offer};

/// The sidecar's suffix after the part file's name.
const STATE_SUFFIX: &str = ".state";
/// The suffix of the sidecar's replacement while it is written.
const TEMP_SUFFIX: &str = ".new";
/// The part file's suffix after the safe name.
const PART_SUFFIX: &str = ".part";
/// Names tried before giving up (`NAME (999).ext`).
const MAX_VARIANTS: u32 = 1000;
/// Bytes written between two fsync + sidecar updates: what a crash may cost a resume.
pub const CHECKPOINT_EVERY: u64 = 8 * 1024 * 1024;
/// The sub-folder of the user's Downloads folder used by default.
pub const DEFAULT_SUBDIR: &str = "rtcdesk";

/// A folder received files are written into.
#[derive(Debug, Clone)]
pub struct DownloadFolder {
    dir: PathBuf,
}

impl DownloadFolder {
    /// The folder `dir`, created if missing.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, FileError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| FileError::Io {
            what: "creating",
            path: dir.clone(),
            source,
        })?;
        Ok(DownloadFolder { dir })
    }

    /// The user's Downloads folder + `rtcdesk/` (see [`default_dir`]), created if missing.
    pub fn default_folder() -> Result<Self, FileError> {
        Self::new(default_dir(|key| std::env::var_os(key)).ok_or(FileError::NoDownloadDir)?)
    }

    /// Where files land.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes free for an unprivileged user in the folder's file system (`u64::MAX` where the
    /// system does not say).
    pub fn free_space(&self) -> Result<u64, FileError> {
        free_space(&self.dir).map_err(|source| FileError::Io {
            what: "checking free space in",
            path: self.dir.clone(),
            source,
        })
    }

    /// A part file for `offer`: an earlier part of the same file to resume if there is one,
    /// else a new one; refused with [`FileError::NoSpace`] if the rest of the file does not fit.
    pub fn prepare(&self, offer: &Offer) -> Result<PartFile, FileError> {
        let safe = safe_name(&offer.name);
        let mut free_slot = None;
        let mut resume = None;
        for n in 0..MAX_VARIANTS {
            let part_name = variant(
                &safe,
                n,
                PART_SUFFIX,
                MAX_NAME - STATE_SUFFIX.len() - TEMP_SUFFIX.len(),
            );
            let part_path = self.dir.join(&part_name);
            let state_path = self.dir.join(format!("{part_name}{STATE_SUFFIX}"));
            if part_path.exists() {
                match read_state(&state_path) {
                    Some(state)
                        if state.name == safe
                            && state.size == offer.size
                            && state.sha256 == offer.sha256 =>
                    {
                        resume = Some((part_path, state_path, state.durable));
                        break;
                    }
                    // Another file's part (or not ours at all): leave it alone.
                    _ => continue,
                }
            }
            if free_slot.is_none() {
                free_slot = Some((part_path, state_path));
            }
        }
        let resume_from = resume.as_ref().map_or(0, |(_, _, durable)| *durable);
        let needed = offer.size.saturating_sub(resume_from);
        let available = self.free_space()?;
        if needed > available {
            return Err(FileError::NoSpace {
                dir: self.dir.clone(),
                needed,
                available,
            });
        }
        let part = match resume {
            Some((part_path, state_path, durable)) => {
                PartFile::resume(&safe, offer, part_path, state_path, durable)?
            }
            None => {
                let (part_path, state_path) = free_slot.ok_or_else(|| FileError::Io {
                    what: "finding a free part-file name in",
                    path: self.dir.clone(),
                    source: io::Error::from(io::ErrorKind::AlreadyExists),
                })?;
                PartFile::create(&self.dir, &safe, offer, part_path, state_path)?
            }
        };
        Ok(part)
    }
}

/// The user's Downloads folder + [`DEFAULT_SUBDIR`]: `XDG_DOWNLOAD_DIR` from the environment or
/// from `user-dirs.dirs` (under `XDG_CONFIG_HOME` or `~/.config`), else `$HOME/Downloads`.
/// `env` looks variables up (pass `std::env::var_os`); `None` without `HOME` or the variable.
pub fn default_dir(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let home = env("HOME").map(PathBuf::from);
    let from_env = env("XDG_DOWNLOAD_DIR").map(PathBuf::from);
    let from_user_dirs = || {
        let config = env("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".config")))?;
        let text = fs::read_to_string(config.join("user-dirs.dirs")).ok()?;
        user_dirs_download(&text, home.as_deref())
    };
    let downloads = from_env
        .filter(|p| p.is_absolute())
        .or_else(from_user_dirs)
        .or_else(|| home.as_ref().map(|h| h.join("Downloads")))?;
    Some(downloads.join(DEFAULT_SUBDIR))
}

/// `XDG_DOWNLOAD_DIR="$HOME/Downloads"` from a `user-dirs.dirs` file.
fn user_dirs_download(text: &str, home: Option<&Path>) -> Option<PathBuf> {
    let line = text
        .lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("XDG_DOWNLOAD_DIR="))?;
    let value = line.trim().trim_matches('"');
    let path = match value.strip_prefix("$HOME") {
        Some(rest) => home?.join(rest.trim_start_matches('/')),
        None => PathBuf::from(value),
    };
    path.is_absolute().then_some(path)
}

#[cfg(unix)]
fn free_space(dir: &Path) -> io::Result<u64> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(not(unix))]
fn free_space(_dir: &Path) -> io::Result<u64> {
    Ok(u64::MAX)
}

/// What a sidecar records.
#[derive(Debug, PartialEq)]
struct PartState {
    name: String,
    size: u64,
    sha256: Sha256,
    durable: u64,
}

fn read_state(path: &Path) -> Option<PartState> {
    let mut text = String::new();
    File::open(path)
        .ok()?
        .take(4096)
        .read_to_string(&mut text)
        .ok()?;
    let mut lines = text.lines();
    if lines.next()? != "rtcdesk-part 1" {
        return None;
    }
    let mut field = |key: &str| {
        lines
            .next()
            .and_then(|line| line.strip_prefix(key))
            .and_then(|rest| rest.strip_prefix(' '))
            .map(str::to_owned)
    };
    let name = field("name")?;
    let size = field("size")?.parse().ok()?;
    let sha256 = parse_hex(&field("sha256")?)?;
    let durable: u64 = field("durable")?.parse().ok()?;
    (durable <= size).then_some(PartState {
        name,
        size,
        sha256,
        durable,
    })
}

fn parse_hex(text: &str) -> Option<Sha256> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, out) in digest.iter_mut().enumerate() {
        *out = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(Sha256(digest))
}

/// A file being received, under its part name until [`PartFile::finish`].
#[derive(Debug)]
pub struct PartFile {
    dir: PathBuf,
    safe_name: String,
    part_path: PathBuf,
    state_path: PathBuf,
    file: File,
    size: u64,
    sha256: Sha256,
    written: u64,
    durable: u64,
    resumed_from: u64,
    prefix: sha2::Sha256,
}

impl PartFile {
    fn create(
        dir: &Path,
        safe: &str,
        offer: &Offer,
        part_path: PathBuf,
        state_path: PathBuf,
    ) -> Result<Self, FileError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&part_path)
            .map_err(|source| FileError::writing(part_path.clone(), source))?;
        let part = PartFile {
            dir: dir.to_owned(),
            safe_name: safe.to_owned(),
            part_path,
            state_path,
            file,
            size: offer.size,
            sha256: offer.sha256,
            written: 0,
            durable: 0,
            resumed_from: 0,
            prefix: sha2::Sha256::new(),
        };
        part.write_state()?;
        Ok(part)
    }

    fn resume(
        safe: &str,
        offer: &Offer,
        part_path: PathBuf,
        state_path: PathBuf,
        durable: u64,
    ) -> Result<Self, FileError> {
        let io_error = |what, source| FileError::Io {
            what,
            path: part_path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&part_path)
            .map_err(|e| io_error("opening", e))?;
        let len = file.metadata().map_err(|e| io_error("reading", e))?.len();
        let durable = durable.min(len);
        // Only the durable prefix is trusted: hash it again, drop what came after it.
        let mut prefix = sha2::Sha256::new();
        file.seek(SeekFrom::Start(0))
            .map_err(|e| io_error("reading", e))?;
        let mut reader = (&mut file).take(durable);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = reader.read(&mut buf).map_err(|e| io_error("reading", e))?;
            if n == 0 {
                break;
            }
            prefix.update(&buf[..n]);
        }
        file.set_len(durable)
            .map_err(|e| io_error("truncating", e))?;
        file.seek(SeekFrom::Start(durable))
            .map_err(|e| io_error("reading", e))?;
        tracing::info!(part = %part_path.display(), durable, "resuming a part file");
        let dir = part_path.parent().map(Path::to_owned).unwrap_or_default();
        Ok(PartFile {
            dir,
            safe_name: safe.to_owned(),
            part_path,
            state_path,
            file,
            size: offer.size,
            sha256: offer.sha256,
            written: durable,
            durable,
            resumed_from: durable,
            prefix,
        })
    }

    /// The offset to accept from: bytes kept from an earlier transfer of the same file.
    pub fn resume_offset(&self) -> u64 {
        self.resumed_from
    }

    /// The hash state over the first [`PartFile::resume_offset`] bytes, for
    /// [`crate::Receiver::accept`].
    pub fn prefix_hasher(&self) -> sha2::Sha256 {
        self.prefix.clone()
    }

    /// The safe name the file will get (or `NAME (n).ext` if taken).
    pub fn safe_name(&self) -> &str {
        &self.safe_name
    }

    /// Where the bytes are now.
    pub fn part_path(&self) -> &Path {
        &self.part_path
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Bytes fsynced and recorded in the sidecar: where a resume would start.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// Appends `data`, which must start at [`PartFile::written`] (the receiver checked it).
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), FileError> {
        if offset != self.written || offset + data.len() as u64 > self.size {
            return Err(FileError::Io {
                what: "writing out of order to",
                path: self.part_path.clone(),
                source: io::Error::from(io::ErrorKind::InvalidInput),
            });
        }
        self.file
            .write_all(data)
            .map_err(|e| FileError::writing(self.part_path.clone(), e))?;
        self.written += data.len() as u64;
        if self.written - self.durable >= CHECKPOINT_EVERY {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Fsyncs the bytes written and records them as durable in the sidecar.
    pub fn checkpoint(&mut self) -> Result<(), FileError> {
        self.file
            .sync_data()
            .map_err(|e| FileError::writing(self.part_path.clone(), e))?;
        let durable = self.durable;
        self.durable = self.written;
        if let Err(e) = self.write_state() {
            self.durable = durable;
            return Err(e);
        }
        Ok(())
    }

    /// The sidecar, replaced atomically (written beside it, then renamed over it).
    fn write_state(&self) -> Result<(), FileError> {
        let text = format!(
            "rtcdesk-part 1\nname {}\nsize {}\nsha256 {}\ndurable {}\n",
            self.safe_name,
            self.size,
            hex(&self.sha256),
            self.durable
        );
        let mut temp = self.state_path.clone().into_os_string();
        temp.push(TEMP_SUFFIX);
        let temp = PathBuf::from(temp);
        let result = (|| {
            let mut file = File::create(&temp)?;
            file.write_all(text.as_bytes())?;
            file.sync_data()?;
            fs::rename(&temp, &self.state_path)
        })();
        result.map_err(|e| {
            let _ = fs::remove_file(&temp);
            FileError::writing(self.state_path.clone(), e)
        })
    }

    /// Every byte is written and the hash checked: fsync, move the file to its final name (never
    /// over an existing file), remove the part and the sidecar. Gives the final path.
    pub fn finish(self) -> Result<PathBuf, FileError> {
        if self.written != self.size {
            return Err(FileError::Io {
                what: "finishing an incomplete",
                path: self.part_path.clone(),
                source: io::Error::from(io::ErrorKind::UnexpectedEof),
            });
        }
        self.file
            .sync_all()
            .map_err(|e| FileError::writing(self.part_path.clone(), e))?;
        let final_path = self.place()?;
        let _ = fs::remove_file(&self.part_path);
        let _ = fs::remove_file(&self.state_path);
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        tracing::info!(path = %final_path.display(), "file received");
        Ok(final_path)
    }

    /// Links the part file to the first free final name.
    fn place(&self) -> Result<PathBuf, FileError> {
        for n in 0..MAX_VARIANTS {
            let candidate = self.dir.join(variant(&self.safe_name, n, "", MAX_NAME));
            match fs::hard_link(&self.part_path, &candidate) {
                Ok(()) => return Ok(candidate),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) if is_disk_full(&e) => {
                    return Err(FileError::DiskFull {
                        path: candidate.clone(),
                    })
                }
                // A file system without hard links: check, then rename (which could replace a
                // file created in between; the best such a file system allows).
                Err(_) if !candidate.exists() => {
                    return fs::rename(&self.part_path, &candidate)
                        .map(|()| candidate.clone())
                        .map_err(|source| FileError::Io {
                            what: "renaming",
                            path: candidate.clone(),
                            source,
                        })
                }
                Err(_) => continue,
            }
        }
        Err(FileError::Io {
            what: "finding a free name in",
            path: self.dir.clone(),
            source: io::Error::from(io::ErrorKind::AlreadyExists),
        })
    }

    /// Removes the part file and its sidecar (hash mismatch, failure, cancel).
    pub fn discard(self) {
        let _ = fs::remove_file(&self.part_path);
        let _ = fs::remove_file(&self.state_path);
        tracing::info!(part = %self.part_path.display(), "part file removed");
    }

    /// Keeps the part file for a later resume (the session was lost): records what is durable.
    pub fn suspend(mut self) -> Result<u64, FileError> {
        self.checkpoint()?;
        Ok(self.durable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_folder_follows_xdg_then_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            default_dir(env(&[
                ("HOME", "/home/ann"),
                ("XDG_DOWNLOAD_DIR", "/data/dl")
            ])),
            Some(PathBuf::from("/data/dl/rtcdesk"))
        );
        assert_eq!(
            default_dir(env(&[
                ("HOME", "/home/ann"),
                ("XDG_CONFIG_HOME", "/nonexistent-config")
            ])),
            Some(PathBuf::from("/home/ann/Downloads/rtcdesk"))
        );
        assert_eq!(default_dir(env(&[])), None);
        assert_eq!(
            user_dirs_download(
                "# comment\nXDG_DESKTOP_DIR=\"$HOME/Desktop\"\nXDG_DOWNLOAD_DIR=\"$HOME/Téléchargements\"\n",
                Some(Path::new("/home/ann"))
            ),
            Some(PathBuf::from("/home/ann/Téléchargements"))
        );
    }

    #[test]
    fn a_sidecar_round_trips_and_garbage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.part.state");
        fs::write(
            &path,
            "rtcdesk-part 1\nname x\nsize 10\nsha256 ".to_owned()
                + &"0a".repeat(32)
                + "\ndurable 4\n",
        )
        .unwrap();
        assert_eq!(
            read_state(&path),
            Some(PartState {
                name: "x".into(),
                size: 10,
                sha256: Sha256([10; 32]),
                durable: 4
            })
        );
        fs::write(&path, "rtcdesk-part 1\nname x\nsize 10\n").unwrap();
        assert_eq!(read_state(&path), None);
        fs::write(&path, [0xff, 0xfe, 0]).unwrap();
        assert_eq!(read_state(&path), None);
    }
}

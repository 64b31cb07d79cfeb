//! A file on this machine, ready to offer: its name, size and SHA-256, and a reader for its
//! bytes. Opening hashes the whole file, so call [`LocalFile::open`] off any async task
//! (`spawn_blocking`); the session then only reads the ranges the receiver asks for.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use crate::send::{hash_source, SeekSource, Source};
use crate::Sha256;

/// A file opened to be sent. See the module documentation.
pub struct LocalFile {
    /// The name offered: the path's last component (lossy UTF-8), never a directory.
    pub name: String,
    /// Bytes, as measured when opened.
    pub size: u64,
    /// SHA-256 of those bytes.
    pub sha256: Sha256,
    /// Reads the bytes the transfer asks for.
    pub source: Box<dyn Source + Send>,
}

impl std::fmt::Debug for LocalFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalFile")
            .field("name", &self.name)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl LocalFile {
    /// Opens and hashes `path`. Errors say what is wrong in the user's terms: missing, not a
    /// regular file, unreadable.
    pub fn open(path: &Path) -> io::Result<LocalFile> {
        let file = File::open(path)?;
        let metadata = file.metadata()?;
        if !metadata.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file (folders are not sent)",
            ));
        }
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name")
            })?;
        let size = metadata.len();
        let mut source = SeekSource(BufReader::with_capacity(256 * 1024, file));
        let sha256 = hash_source(&mut source, size)?;
        Ok(LocalFile {
            name,
            size,
            sha256,
            source: Box::new(source),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_opens_with_its_name_size_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, b"abc").unwrap();
        let file = LocalFile::open(&path).unwrap();
        assert_eq!((file.name.as_str(), file.size), ("notes.txt", 3));
        assert_eq!(
            crate::hex(&file.sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn folders_and_missing_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(LocalFile::open(dir.path()).is_err());
        let missing = LocalFile::open(&dir.path().join("nope")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }
}

//! All-or-nothing file writes: every file is first written and synced under a temporary name in
//! its final directory, and only renamed into place once all of them are complete.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// Permission bits for files that hold private keys or Secret manifests.
pub const SECRET_MODE: u32 = 0o600;
/// Permission bits for public material (certificates).
pub const PUBLIC_MODE: u32 = 0o644;

/// A set of files staged under temporary names, committed together.
#[derive(Default)]
pub struct StagedFiles {
    staged: Vec<(NamedTempFile, PathBuf)>,
}

impl StagedFiles {
    /// Writes `contents` to a temporary file beside `path`, with `mode`, and syncs it.
    pub fn stage(&mut self, path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(".argocd-mtls-verify-")
            .tempfile_in(dir)?;
        // Set the final mode before any byte is written, so a key is never world-readable.
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))?;
        tmp.write_all(contents)?;
        tmp.as_file().sync_all()?;
        self.staged.push((tmp, path.to_owned()));
        Ok(())
    }

    /// Renames every staged file into place. Files not yet renamed when one fails are removed.
    pub fn commit(self) -> std::io::Result<Vec<PathBuf>> {
        let mut done = Vec::with_capacity(self.staged.len());
        for (tmp, path) in self.staged {
            tmp.persist(&path).map_err(|e| e.error)?;
            done.push(path);
        }
        Ok(done)
    }
}

/// Writes one file atomically (temporary name, then rename).
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let mut staged = StagedFiles::default();
    staged.stage(path, contents, mode)?;
    staged.commit().map(|_| ())
}

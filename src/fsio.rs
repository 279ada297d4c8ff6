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

/// Reads a whole input file, refusing anything but a regular file (a FIFO, a device, a socket, a
/// directory) before reading a byte: opening a FIFO for reading would wait for a writer forever,
/// and a device never ends. The open does not block (`O_NONBLOCK`), which a regular file ignores.
pub fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_dir() {
            "a directory"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "a special file"
        };
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is {what}, not a regular file"),
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    (&file).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// [`read_regular`] as UTF-8 text.
pub fn read_regular_text(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_regular(path)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO, a directory and a device are refused at once, naming what they are; a regular
    /// file is read whole.
    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        for (path, what) in [
            (fifo.as_path(), "a FIFO"),
            (dir.path(), "a directory"),
            (Path::new("/dev/zero"), "a device"),
        ] {
            let err = read_regular(path).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{what}");
            assert!(err.to_string().contains(what), "{err}");
        }
        let file = dir.path().join("f");
        std::fs::write(&file, b"pem").unwrap();
        assert_eq!(read_regular(&file).unwrap(), b"pem");
    }
}

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
    /// Writes `contents` to a temporary file beside the file `path` names (through its symbolic
    /// links: see [`output_target`]), with `mode`, and syncs it.
    pub fn stage(&mut self, path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
        let path = output_target(path)?;
        let dir = parent_of(&path);
        let mut tmp = tempfile::Builder::new()
            .prefix(".argocd-mtls-verify-")
            .tempfile_in(dir)?;
        // Set the final mode before any byte is written, so a key is never world-readable.
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))?;
        tmp.write_all(contents)?;
        tmp.as_file().sync_all()?;
        self.staged.push((tmp, path));
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

/// The folder a file is in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// The file a write to `path` lands in: `path` itself, or the end of its chain of symbolic links
/// (existing or not), so that a write goes through the link the user named and never replaces
/// it. Refused: a FIFO, device, socket or directory at the end, and a chain that loops.
pub fn output_target(path: &Path) -> std::io::Result<PathBuf> {
    /// Linux follows at most 40 links in one lookup; a longer chain is a loop for this purpose.
    const MAX_LINKS: usize = 40;
    let mut at = path.to_owned();
    for _ in 0..=MAX_LINKS {
        let meta = match fs::symlink_metadata(&at) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(at),
            Err(e) => return Err(e),
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = fs::read_link(&at)?;
            at = parent_of(&at).join(target);
        } else if kind.is_file() {
            return Ok(at);
        } else {
            return Err(not_regular(kind));
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("its symbolic links loop (more than {MAX_LINKS} in a chain)"),
    ))
}

/// Fails unless a file can be written where `path` leads ([`output_target`]): the folder exists
/// and takes a new file. Checked before a run probes anything, so its results are never lost at
/// the end. Returns the file a write will land in.
pub fn check_writable(path: &Path) -> std::io::Result<PathBuf> {
    let target = output_target(path)?;
    let dir = parent_of(&target);
    tempfile::Builder::new()
        .prefix(".argocd-mtls-verify-")
        .tempfile_in(dir)
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot create a file in {}: {e}", dir.display()),
            )
        })?;
    Ok(target)
}

/// The error for a path that is there but not a regular file, naming what it is.
fn not_regular(kind: fs::FileType) -> std::io::Error {
    use std::os::unix::fs::FileTypeExt;
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
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("it is {what}, not a regular file"),
    )
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
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(not_regular(meta.file_type()));
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

    fn make_fifo(path: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
    }

    /// A write through a symbolic link (relative, absolute, chained, dangling) lands in the file
    /// it leads to, and the link stays a link; a loop and a FIFO are refused, naming what they are,
    /// and nothing is replaced.
    #[test]
    fn writes_go_through_links_and_refuse_special_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/real.prom"), b"old").unwrap();
        std::os::unix::fs::symlink("sub/real.prom", d.join("rel")).unwrap();
        std::os::unix::fs::symlink(d.join("rel"), d.join("abs-to-rel")).unwrap();
        std::os::unix::fs::symlink("sub/new.prom", d.join("dangling")).unwrap();
        for (link, lands) in [
            ("rel", "sub/real.prom"),
            ("abs-to-rel", "sub/real.prom"),
            ("dangling", "sub/new.prom"),
        ] {
            write_atomic(&d.join(link), link.as_bytes(), PUBLIC_MODE).unwrap();
            assert_eq!(std::fs::read(d.join(lands)).unwrap(), link.as_bytes());
            let meta = std::fs::symlink_metadata(d.join(link)).unwrap();
            assert!(meta.file_type().is_symlink(), "{link} was replaced");
        }
        std::os::unix::fs::symlink("loop-b", d.join("loop-a")).unwrap();
        std::os::unix::fs::symlink("loop-a", d.join("loop-b")).unwrap();
        let fifo = d.join("fifo");
        make_fifo(&fifo);
        std::os::unix::fs::symlink("fifo", d.join("to-fifo")).unwrap();
        for (path, says) in [
            ("loop-a", "symbolic links loop"),
            ("fifo", "a FIFO"),
            ("to-fifo", "a FIFO"),
            ("sub", "a directory"),
        ] {
            let err = write_atomic(&d.join(path), b"x", PUBLIC_MODE).unwrap_err();
            assert!(err.to_string().contains(says), "{path}: {err}");
            assert!(check_writable(&d.join(path)).is_err(), "{path}");
        }
        assert!(
            std::fs::symlink_metadata(d.join("loop-a"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(check_writable(&d.join("no-such-dir/m.prom")).is_err());
        assert_eq!(
            check_writable(&d.join("rel")).unwrap(),
            d.join("sub/real.prom")
        );
        let leftovers: Vec<_> = std::fs::read_dir(d.join("sub"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".argocd"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    /// A FIFO, a directory and a device are refused at once, naming what they are; a regular
    /// file is read whole.
    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        make_fifo(&fifo);
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

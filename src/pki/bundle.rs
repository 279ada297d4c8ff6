//! The bundle a run uses, read in one place: files named on the command line (`--pki DIR`, or
//! `--ca-cert`/`--client-cert`/`--client-key`), or a bundle generated in memory for this run.
//! One value yields both the probe's material ([`Bundle::probe_material`]) and, for runs that
//! provision a cluster, the Secret manifests ([`Bundle::file`]).

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::{GeneratedBundle, PkiError, PkiPaths, ProbePki};

/// Where a run's client material comes from.
#[derive(Debug)]
pub enum Bundle {
    /// PEM files on disk; `dir` is the `--pki` directory, when the files came from one (only a
    /// directory has the Secret manifests).
    Files {
        /// The PEM files.
        paths: PkiPaths,
        /// The `--pki` directory.
        dir: Option<PathBuf>,
    },
    /// Generated in memory for this run (never written to disk).
    Generated {
        /// The files `pki init` would have written.
        bundle: GeneratedBundle,
        /// What to call it in messages and the report (`<kind run: generated in memory>`).
        origin: String,
    },
}

impl Bundle {
    /// The bundle of a `pki init` directory.
    pub fn from_dir(dir: &Path) -> Result<Self, PkiError> {
        Ok(Bundle::Files {
            paths: PkiPaths::from_dir(dir)?,
            dir: Some(dir.to_owned()),
        })
    }

    /// The probe's material, checked as of `now` before anything is probed: an unusable file is
    /// the user's input error (naming the file), never a verdict on the server.
    pub fn probe_material(&self, now: OffsetDateTime) -> Result<ProbePki, PkiError> {
        match self {
            Bundle::Files { paths, .. } => {
                let material = ProbePki::load(paths)?;
                material.check_usable(now)?;
                Ok(material)
            }
            Bundle::Generated { bundle, origin } => {
                ProbePki::from_generated(bundle, Path::new(origin))
            }
        }
    }

    /// The bytes of one bundle file (a Secret manifest), if the bundle has it.
    pub fn file(&self, name: &str) -> Option<Vec<u8>> {
        match self {
            Bundle::Files { dir: Some(dir), .. } => crate::fsio::read_regular(&dir.join(name)).ok(),
            Bundle::Files { dir: None, .. } => None,
            Bundle::Generated { bundle, .. } => bundle.file(name).map(<[u8]>::to_vec),
        }
    }

    /// Where it comes from, for messages: `--pki DIR`, `--ca-cert FILE`, or the generated origin.
    pub fn origin(&self) -> String {
        match self {
            Bundle::Files { dir: Some(dir), .. } => format!("--pki {}", dir.display()),
            Bundle::Files { paths, .. } => format!("--ca-cert {}", paths.ca_cert.display()),
            Bundle::Generated { origin, .. } => origin.clone(),
        }
    }
}

//! What can go wrong with certificate material: every error names the file or directory at fault.

use std::path::{Path, PathBuf};

/// What went wrong with certificate material. Every variant names the file or directory at fault.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file has no PEM block at all.
    #[error("{path}: not a PEM file (no `-----BEGIN ...-----` line)")]
    NotPem {
        /// The file at fault.
        path: PathBuf,
    },
    /// The file is PEM but holds no certificate.
    #[error("{path}: PEM file contains no certificate (found: {})", found.join(", "))]
    NoCertificate {
        /// The file at fault.
        path: PathBuf,
        /// The PEM labels that were found instead.
        found: Vec<String>,
    },
    /// A certificate block does not parse.
    #[error("{path}: certificate #{index} is not valid X.509: {detail}")]
    BadCertificate {
        /// The file at fault.
        path: PathBuf,
        /// 1-based position of the block in the file.
        index: usize,
        /// What the parser said.
        detail: String,
    },
    /// The file is PEM but holds no private key.
    #[error("{path}: PEM file contains no private key (found: {})", found.join(", "))]
    NoPrivateKey {
        /// The file at fault.
        path: PathBuf,
        /// The PEM labels that were found instead.
        found: Vec<String>,
    },
    /// The private key is encrypted.
    #[error(
        "{path}: the private key is encrypted; decrypt it first (e.g. `openssl pkey -in KEY -out KEY.plain`) and keep the result 0600"
    )]
    EncryptedKey {
        /// The file at fault.
        path: PathBuf,
    },
    /// A private key of a kind the harness cannot use.
    #[error("{path}: unsupported private key: {detail}")]
    UnsupportedKey {
        /// The file at fault.
        path: PathBuf,
        /// Why it is unsupported.
        detail: String,
    },
    /// The private key is not the key of the certificate it is paired with.
    #[error("{key}: this private key does not belong to the certificate in {cert}")]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// A bundle directory lacks one of its files.
    #[error("{dir}: bundle file `{file}` is missing (a bundle has {})", expected.join(" "))]
    MissingBundleFile {
        /// The bundle directory.
        dir: PathBuf,
        /// The missing file name.
        file: String,
        /// All files a bundle needs.
        expected: Vec<String>,
    },
    /// `pki init` would overwrite an existing bundle.
    #[error(
        "{dir}: refusing to overwrite an existing bundle ({}); choose another --out or pass --force",
        existing.join(", ")
    )]
    BundleExists {
        /// The output directory.
        dir: PathBuf,
        /// Files that already exist there.
        existing: Vec<String>,
    },
    /// A case needs the CA private key, which was not provided.
    #[error(
        "minting `{what}` needs the CA private key (ca.key / --ca-key), which was not provided"
    )]
    NeedsCaKey {
        /// What was being minted.
        what: String,
    },
    /// The bundle's own client material cannot work: the server would be right to refuse it,
    /// so a refusal would prove nothing. Input, not a finding about the server.
    #[error(
        "{path}: {fault}; a correct repo-server must refuse it, so the run could not tell a correct server from a broken one: fix the bundle (e.g. `argocd-mtls-verify pki init`)"
    )]
    UnusableBundle {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        fault: String,
    },
    /// The CA key given to mint identities belongs to no certificate of the client CA file and
    /// to no intermediate the client presents.
    #[error(
        "{key}: this CA key belongs to no certificate in {ca_cert} and to no intermediate in {client_cert}; give the key of the CA (or intermediate) that issues client certificates"
    )]
    CaKeyMatchesNoCertificate {
        /// The key file.
        key: PathBuf,
        /// The client CA file.
        ca_cert: PathBuf,
        /// The client certificate file.
        client_cert: PathBuf,
    },
    /// The legitimate client certificate does not chain to any CA of the client CA file: a
    /// correct repo-server must refuse it, so it cannot be the positive control.
    #[error(
        "{client_cert}: the client certificate does not chain to the CA in {ca_cert} ({}); a correct repo-server must refuse it, so the run could not tell a correct server from a broken one: give the CA that issued it, or a client certificate from this CA",
        cas.join("; ")
    )]
    ClientNotFromCa {
        /// The client certificate file.
        client_cert: PathBuf,
        /// The client CA file.
        ca_cert: PathBuf,
        /// The subjects of the CAs in that file.
        cas: Vec<String>,
    },
    /// Certificate or key generation failed.
    #[error("certificate generation failed: {0}")]
    Generate(String),
    /// Bad options.
    #[error("{0}")]
    Invalid(String),
}

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        PkiError::Generate(e.to_string())
    }
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, PkiError> {
    crate::fsio::read_regular(path).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })
}

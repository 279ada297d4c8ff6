//! The certificates of an Argo CD repo-server mTLS setup: generation (`pki init`), loading a bundle
//! from disk, and minting the adversarial client certificates the probes attack with.
//!
//! A bundle directory holds `ca.crt ca.key server.crt server.key client.crt client.key` (keys 0600)
//! plus ready-to-apply Secret manifests. One CA signs both the repo-server certificate and the client
//! certificates, so `client-ca.crt` and `server-ca.crt` in the Secret are the same certificate.

mod adversarial;
pub mod inspect;
mod keys;
pub mod secrets;

use std::fmt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};

pub use adversarial::{
    Adversary, HEALTH_CHECK_ORGANIZATION, HEALTH_CHECK_SAN, Minted, health_check_params, mint,
};
pub use keys::{public_key_spki, read_private_key};

use crate::x509::{self, CertFacts};

/// File names inside a bundle directory.
pub mod files {
    /// The CA certificate that signs everything in the bundle.
    pub const CA_CERT: &str = "ca.crt";
    /// The CA's private key (needed to mint expired / wrong-EKU client certificates).
    pub const CA_KEY: &str = "ca.key";
    /// The repo-server certificate.
    pub const SERVER_CERT: &str = "server.crt";
    /// The repo-server private key.
    pub const SERVER_KEY: &str = "server.key";
    /// The shared client certificate presented by every Argo CD component.
    pub const CLIENT_CERT: &str = "client.crt";
    /// The shared client private key.
    pub const CLIENT_KEY: &str = "client.key";
}

/// Common name of the shared client certificate, as in the Argo CD shared-certificate setup.
pub const CLIENT_COMMON_NAME: &str = "argocd-core-clients";
/// Common name of the generated CA.
pub const CA_COMMON_NAME: &str = "argocd-repo-server-mtls-ca";
/// Common name of the repo-server certificate.
pub const SERVER_COMMON_NAME: &str = "argocd-repo-server";

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
    std::fs::read(path).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Key algorithm for generated certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// RSA 2048-bit keys, signed with SHA-256 (the default: Argo CD's default TLS 1.2 cipher list,
    /// `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384` alone, needs an RSA server key).
    #[serde(rename = "rsa2048")]
    Rsa2048,
    /// ECDSA on P-256, signed with SHA-256. Faster, but an ECDSA repo-server certificate makes TLS
    /// 1.2 impossible with Argo CD's default ciphers (TLS 1.3 still works).
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
}

/// How client certificates are laid out across Secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// One client certificate shared by every component (the setup Argo CD documents first).
    Shared,
    /// The shared certificate plus one certificate per client component, each in its own Secret.
    PerComponent,
}

/// A client of the repo-server that presents a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    /// argocd-server (API server).
    Server,
    /// argocd-application-controller (a StatefulSet).
    Controller,
    /// argocd-applicationset-controller.
    AppSetController,
    /// argocd-notifications-controller.
    Notifications,
}

impl Component {
    /// Every client component, in a stable order.
    pub const ALL: [Component; 4] = [
        Component::Server,
        Component::Controller,
        Component::AppSetController,
        Component::Notifications,
    ];

    /// Short name used in file and Secret names (`server`, `controller`, `appsetcontroller`, `notifications`).
    pub fn short_name(self) -> &'static str {
        match self {
            Component::Server => "server",
            Component::Controller => "controller",
            Component::AppSetController => "appsetcontroller",
            Component::Notifications => "notifications",
        }
    }

    /// The workload (and `app.kubernetes.io/name` label) of the component.
    pub fn workload(self) -> &'static str {
        match self {
            Component::Server => "argocd-server",
            Component::Controller => "argocd-application-controller",
            Component::AppSetController => "argocd-applicationset-controller",
            Component::Notifications => "argocd-notifications-controller",
        }
    }

    /// Name of the component's own Secret in the per-component layout.
    pub fn secret_name(self) -> String {
        format!("{}-{}", secrets::MTLS_SECRET, self.short_name())
    }

    /// Certificate and key file names of the component in a bundle directory.
    pub fn file_names(self) -> (String, String) {
        (
            format!("client-{}.crt", self.short_name()),
            format!("client-{}.key", self.short_name()),
        )
    }
}

/// Options of `pki init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Shared or per-component client certificates.
    pub layout: Layout,
    /// Validity of the server and client certificates, in days. The CA lives at least ten years.
    pub days: u32,
    /// Namespace Argo CD runs in (server SANs and Secret metadata).
    pub namespace: String,
    /// Key algorithm.
    pub key_type: KeyType,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            layout: Layout::Shared,
            days: 365,
            namespace: "argocd".into(),
            key_type: KeyType::Rsa2048,
        }
    }
}

/// One file of a generated bundle, before it is written.
#[derive(Clone)]
pub struct BundleFile {
    /// File name inside the bundle directory.
    pub name: String,
    /// File contents.
    pub contents: Vec<u8>,
    /// Whether it holds secret material (written 0600).
    pub secret: bool,
}

impl fmt::Debug for BundleFile {
    // Never print contents: key files and Secret manifests hold private keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleFile")
            .field("name", &self.name)
            .field("bytes", &self.contents.len())
            .field("secret", &self.secret)
            .finish()
    }
}

/// A freshly generated bundle, in memory.
#[derive(Debug, Clone)]
pub struct GeneratedBundle {
    /// The files, in the order they are written.
    pub files: Vec<BundleFile>,
}

impl GeneratedBundle {
    /// The contents of the file with this name.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.contents.as_slice())
    }
}

/// Random positive 128-bit serial, as CAs are asked to use (CA/B BR 7.1: >= 64 bits of entropy).
pub(crate) fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| PkiError::Generate(format!("random serial: {e}")))?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01; // keep 16 significant bytes, and positive
    Ok(SerialNumber::from_slice(&bytes))
}

/// Start of validity for new certificates: a few minutes back, to tolerate clock skew.
pub(crate) fn backdated_now() -> OffsetDateTime {
    OffsetDateTime::now_utc() - Duration::minutes(5)
}

fn ca_params(days: u32) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "argocd-mtls-verify");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    // Valid since well before any leaf, so that the expired client certificate the probes mint
    // lies inside the CA's validity: a verifier that ignores expiry must then accept it.
    params.not_before = OffsetDateTime::now_utc() - CA_BACKDATE;
    params.not_after = after_days(params.not_before, days.max(3650))?;
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

/// How long before `pki init` its CA becomes valid: room for a month-long expired leaf.
pub const CA_BACKDATE: Duration = Duration::days(35);

fn leaf_params(
    common_name: &str,
    sans: Vec<String>,
    eku: ExtendedKeyUsagePurpose,
    key_type: KeyType,
    days: u32,
) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::new(sans)?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = match key_type {
        KeyType::Rsa2048 => vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ],
        KeyType::EcdsaP256 => vec![KeyUsagePurpose::DigitalSignature],
    };
    params.extended_key_usages = vec![eku];
    params.use_authority_key_identifier_extension = true;
    params.not_before = backdated_now();
    params.not_after = after_days(params.not_before, days)?;
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

/// `from` plus `days`, refusing dates X.509 cannot hold (after 9999-12-31).
fn after_days(from: OffsetDateTime, days: u32) -> Result<OffsetDateTime, PkiError> {
    from.checked_add(Duration::days(i64::from(days)))
        .filter(|t| t.year() <= 9999)
        .ok_or_else(|| {
            PkiError::Invalid(format!(
                "--days {days}: the certificates would end after the year 9999, which X.509 cannot express"
            ))
        })
}

/// The DNS names and IPs the repo-server certificate must carry for namespace `ns`.
pub fn server_sans(namespace: &str) -> Vec<String> {
    vec![
        "argocd-repo-server".into(),
        format!("argocd-repo-server.{namespace}"),
        format!("argocd-repo-server.{namespace}.svc"),
        format!("argocd-repo-server.{namespace}.svc.cluster.local"),
        "localhost".into(),
        "127.0.0.1".into(),
    ]
}

fn pem_file(name: impl Into<String>, contents: String, secret: bool) -> BundleFile {
    BundleFile {
        name: name.into(),
        contents: contents.into_bytes(),
        secret,
    }
}

/// Generates a complete bundle: CA, repo-server certificate, shared client certificate (and one per
/// component with [`Layout::PerComponent`]), and the Secret manifests.
pub fn generate(opts: &InitOptions) -> Result<GeneratedBundle, PkiError> {
    if opts.days == 0 {
        return Err(PkiError::Invalid("--days must be at least 1".into()));
    }
    validate_namespace(&opts.namespace)?;
    let ca_key = keys::generate(opts.key_type)?;
    let ca_cert = ca_params(opts.days)?.self_signed(&ca_key)?;
    let issuer = Issuer::from_ca_cert_der(ca_cert.der(), &ca_key)?;

    let leaf = |cn: &str, sans: Vec<String>, eku| -> Result<(String, String), PkiError> {
        let key = keys::generate(opts.key_type)?;
        let cert =
            leaf_params(cn, sans, eku, opts.key_type, opts.days)?.signed_by(&key, &issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    };
    let (server_crt, server_key) = leaf(
        SERVER_COMMON_NAME,
        server_sans(&opts.namespace),
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let (client_crt, client_key) = leaf(
        CLIENT_COMMON_NAME,
        vec![],
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    let ca_crt = ca_cert.pem();

    let mut files = vec![
        pem_file(files::CA_CERT, ca_crt.clone(), false),
        pem_file(files::CA_KEY, ca_key.serialize_pem(), true),
        pem_file(files::SERVER_CERT, server_crt.clone(), false),
        pem_file(files::SERVER_KEY, server_key.clone(), true),
        pem_file(files::CLIENT_CERT, client_crt.clone(), false),
        pem_file(files::CLIENT_KEY, client_key.clone(), true),
    ];
    let material = secrets::SecretMaterial {
        namespace: &opts.namespace,
        ca_crt: &ca_crt,
        server_crt: &server_crt,
        server_key: &server_key,
        client_crt: &client_crt,
        client_key: &client_key,
    };
    files.push(pem_file(
        secrets::MTLS_FILE,
        secrets::to_yaml(&secrets::mtls_secret(&material))?,
        true,
    ));
    files.push(pem_file(
        secrets::TLS_FILE,
        secrets::to_yaml(&secrets::tls_secret(&material))?,
        true,
    ));
    if opts.layout == Layout::PerComponent {
        for component in Component::ALL {
            let (crt, key) = leaf(
                component.workload(),
                vec![],
                ExtendedKeyUsagePurpose::ClientAuth,
            )?;
            let secret = secrets::component_secret(&material, component, &crt, &key);
            let (crt_name, key_name) = component.file_names();
            files.push(pem_file(crt_name, crt, false));
            files.push(pem_file(key_name, key, true));
            files.push(pem_file(
                format!("{}.yaml", component.secret_name()),
                secrets::to_yaml(&secret)?,
                true,
            ));
        }
    }
    Ok(GeneratedBundle { files })
}

/// A Kubernetes namespace is a DNS-1123 label; anything else would make unusable SANs and manifests.
fn validate_namespace(ns: &str) -> Result<(), PkiError> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(PkiError::Invalid(format!(
            "--namespace `{ns}` is not a valid Kubernetes namespace (lowercase letters, digits and '-', at most 63)"
        )))
    }
}

/// Writes a generated bundle into `dir` (created if needed). Refuses to replace any existing bundle
/// file unless `force`. All files are written under temporary names first, then renamed.
pub fn write_bundle(
    dir: &Path,
    bundle: &GeneratedBundle,
    force: bool,
) -> Result<Vec<PathBuf>, PkiError> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| PkiError::Io { path, source }
    };
    if dir.exists() && !dir.is_dir() {
        return Err(PkiError::Invalid(format!(
            "{}: --out must be a directory, and this is a file",
            dir.display()
        )));
    }
    let existing: Vec<String> = bundle
        .files
        .iter()
        .filter(|f| dir.join(&f.name).exists())
        .map(|f| f.name.clone())
        .collect();
    if !existing.is_empty() && !force {
        return Err(PkiError::BundleExists {
            dir: dir.to_owned(),
            existing,
        });
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut staged = crate::fsio::StagedFiles::default();
    for file in &bundle.files {
        let path = dir.join(&file.name);
        let mode = if file.secret {
            crate::fsio::SECRET_MODE
        } else {
            crate::fsio::PUBLIC_MODE
        };
        staged
            .stage(&path, &file.contents, mode)
            .map_err(io_err(&path))?;
    }
    staged.commit().map_err(io_err(dir))
}

/// Reads every certificate in a PEM file. Errors name the file and say what was found instead.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    use rustls_pki_types::pem::PemObject;
    let bytes = read_file(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let labels = keys::pem_labels(&text);
    if labels.is_empty() {
        return Err(PkiError::NotPem {
            path: path.to_owned(),
        });
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| PkiError::BadCertificate {
            path: path.to_owned(),
            index: 0,
            detail: format!("PEM decoding: {e}"),
        })?;
    if certs.is_empty() {
        return Err(PkiError::NoCertificate {
            path: path.to_owned(),
            found: labels.iter().map(|s| s.to_string()).collect(),
        });
    }
    for (i, der) in certs.iter().enumerate() {
        CertFacts::from_der(der).map_err(|e| PkiError::BadCertificate {
            path: path.to_owned(),
            index: i + 1,
            detail: e.to_string(),
        })?;
    }
    Ok(certs)
}

/// Reads a certificate file and a key file and checks that the key belongs to the first certificate.
pub fn read_identity(cert_path: &Path, key_path: &Path, label: &str) -> Result<Identity, PkiError> {
    let chain = read_certificates(cert_path)?;
    let key = read_private_key(key_path)?;
    let key_spki = public_key_spki(&key).map_err(|detail| PkiError::UnsupportedKey {
        path: key_path.to_owned(),
        detail,
    })?;
    let cert_spki = x509::spki_der(&chain[0]).map_err(|e| PkiError::BadCertificate {
        path: cert_path.to_owned(),
        index: 1,
        detail: e.to_string(),
    })?;
    if key_spki != cert_spki {
        return Err(PkiError::KeyMismatch {
            key: key_path.to_owned(),
            cert: cert_path.to_owned(),
        });
    }
    Ok(Identity {
        label: label.to_owned(),
        chain,
        key,
    })
}

/// A certificate chain and the private key a TLS client presents with it.
pub struct Identity {
    /// What this identity is (`client`, `wrong-ca-client`, ...).
    pub label: String,
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The key that signs the handshake. For a stolen certificate it is deliberately not the leaf's key.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            label: self.label.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("label", &self.label)
            .field("chain_len", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Where each piece of probe material comes from (explicit files, or a bundle directory).
#[derive(Debug, Clone, Default)]
pub struct PkiPaths {
    /// CA that signs client certificates (the server's client-ca.crt).
    pub ca_cert: PathBuf,
    /// Its private key, when available.
    pub ca_key: Option<PathBuf>,
    /// The legitimate client certificate.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    /// CA(s) that the repo-server's own certificate must chain to; defaults to `ca_cert`.
    pub server_ca: Option<PathBuf>,
}

impl PkiPaths {
    /// The paths of a bundle directory written by `pki init`; fails naming the first missing file.
    pub fn from_dir(dir: &Path) -> Result<Self, PkiError> {
        let required = [files::CA_CERT, files::CLIENT_CERT, files::CLIENT_KEY];
        if !dir.is_dir() {
            return Err(PkiError::Io {
                path: dir.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "bundle directory does not exist (create one with `argocd-mtls-verify pki init --out DIR`)",
                ),
            });
        }
        for file in required {
            if !dir.join(file).is_file() {
                return Err(PkiError::MissingBundleFile {
                    dir: dir.to_owned(),
                    file: file.into(),
                    expected: required.iter().map(|s| s.to_string()).collect(),
                });
            }
        }
        let ca_key = dir.join(files::CA_KEY);
        Ok(PkiPaths {
            ca_cert: dir.join(files::CA_CERT),
            ca_key: ca_key.is_file().then_some(ca_key),
            client_cert: dir.join(files::CLIENT_CERT),
            client_key: dir.join(files::CLIENT_KEY),
            server_ca: None,
        })
    }
}

/// Everything a probe run needs: the legitimate client identity, the client CA (and its key when
/// available, to mint adversarial certificates), and the anchors that verify the server.
pub struct ProbePki {
    /// The CA the repo-server is expected to trust for clients.
    pub ca_cert: CertificateDer<'static>,
    /// The CA key, when provided: cases that mint certificates from the trusted CA need it.
    ca_key: Option<KeyPair>,
    /// The legitimate client.
    pub client: Identity,
    /// Trust anchors for the repo-server certificate.
    pub server_ca: Vec<CertificateDer<'static>>,
    /// Where the material was read from.
    pub paths: PkiPaths,
}

impl fmt::Debug for ProbePki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbePki")
            .field("paths", &self.paths)
            .field("has_ca_key", &self.ca_key.is_some())
            .finish()
    }
}

impl ProbePki {
    /// Loads and cross-checks the material: keys match their certificates, the client certificate
    /// chains to the CA.
    pub fn load(paths: &PkiPaths) -> Result<Self, PkiError> {
        let ca_chain = read_certificates(&paths.ca_cert)?;
        let ca_cert = ca_chain[0].clone();
        let ca_key = match &paths.ca_key {
            Some(key_path) => {
                let ca = read_identity(&paths.ca_cert, key_path, "ca")?;
                Some(
                    keys::to_key_pair(&ca.key).map_err(|detail| PkiError::UnsupportedKey {
                        path: key_path.clone(),
                        detail,
                    })?,
                )
            }
            None => None,
        };
        let client = read_identity(&paths.client_cert, &paths.client_key, "client")?;
        let server_ca = match &paths.server_ca {
            Some(p) => read_certificates(p)?,
            None => ca_chain,
        };
        Ok(ProbePki {
            ca_cert,
            ca_key,
            client,
            server_ca,
            paths: paths.clone(),
        })
    }

    /// Builds probe material from an in-memory bundle (used by `demo` and tests).
    pub fn from_generated(bundle: &GeneratedBundle, dir_hint: &Path) -> Result<Self, PkiError> {
        let get = |name: &str| {
            bundle
                .file(name)
                .ok_or_else(|| PkiError::MissingBundleFile {
                    dir: dir_hint.to_owned(),
                    file: name.into(),
                    expected: vec![name.into()],
                })
        };
        use rustls_pki_types::pem::PemObject;
        let cert = |name: &str| -> Result<CertificateDer<'static>, PkiError> {
            CertificateDer::from_pem_slice(get(name)?).map_err(|e| PkiError::BadCertificate {
                path: dir_hint.join(name),
                index: 1,
                detail: e.to_string(),
            })
        };
        let key = |name: &str| -> Result<PrivateKeyDer<'static>, PkiError> {
            PrivateKeyDer::from_pem_slice(get(name)?).map_err(|e| PkiError::UnsupportedKey {
                path: dir_hint.join(name),
                detail: e.to_string(),
            })
        };
        let ca_cert = cert(files::CA_CERT)?;
        let ca_key = keys::to_key_pair(&key(files::CA_KEY)?).map_err(PkiError::Generate)?;
        Ok(ProbePki {
            server_ca: vec![ca_cert.clone()],
            ca_cert,
            ca_key: Some(ca_key),
            client: Identity {
                label: "client".into(),
                chain: vec![cert(files::CLIENT_CERT)?],
                key: key(files::CLIENT_KEY)?,
            },
            paths: PkiPaths {
                ca_cert: dir_hint.join(files::CA_CERT),
                ca_key: Some(dir_hint.join(files::CA_KEY)),
                client_cert: dir_hint.join(files::CLIENT_CERT),
                client_key: dir_hint.join(files::CLIENT_KEY),
                server_ca: None,
            },
        })
    }

    /// Builds probe material from PEM text without a CA key (e.g. the cluster's own
    /// `argocd-repo-server-mtls`): cases that mint from the trusted CA are then skipped.
    /// `origin` names where each part came from in messages and the report.
    pub fn from_pem(
        client_ca: &[u8],
        client_cert: &[u8],
        client_key: &[u8],
        server_ca: Option<&[u8]>,
        origin: &str,
    ) -> Result<Self, PkiError> {
        use rustls_pki_types::pem::PemObject;
        let at = |key: &str| PathBuf::from(format!("{origin}#{key}"));
        let certs = |bytes: &[u8], key: &str| -> Result<Vec<CertificateDer<'static>>, PkiError> {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(bytes)
                .collect::<Result<_, _>>()
                .map_err(|e| PkiError::BadCertificate {
                    path: at(key),
                    index: 1,
                    detail: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(PkiError::BadCertificate {
                    path: at(key),
                    index: 1,
                    detail: "no PEM certificate".into(),
                });
            }
            Ok(certs)
        };
        let ca_chain = certs(client_ca, "client-ca.crt")?;
        let key =
            PrivateKeyDer::from_pem_slice(client_key).map_err(|e| PkiError::UnsupportedKey {
                path: at("client.key"),
                detail: e.to_string(),
            })?;
        let server_ca_given = server_ca.is_some();
        let server_ca = match server_ca {
            Some(b) => certs(b, "server-ca.crt")?,
            None => ca_chain.clone(),
        };
        Ok(ProbePki {
            ca_cert: ca_chain[0].clone(),
            ca_key: None,
            client: Identity {
                label: "client".into(),
                chain: certs(client_cert, "client.crt")?,
                key,
            },
            server_ca,
            paths: PkiPaths {
                ca_cert: at("client-ca.crt"),
                ca_key: None,
                client_cert: at("client.crt"),
                client_key: at("client.key"),
                server_ca: server_ca_given.then(|| at("server-ca.crt")),
            },
        })
    }

    /// Checks that the legitimate client material can work at `now`: the client certificate and
    /// the CA are within their validity, and the client certificate may be used for client
    /// authentication. Run before probing, so the user's own bad input is named as such instead of
    /// showing up as "the server refused the legitimate client".
    pub fn check_usable(&self, now: OffsetDateTime) -> Result<(), PkiError> {
        let facts = |der: &CertificateDer<'_>, path: &Path| {
            CertFacts::from_der(der).map_err(|e| PkiError::BadCertificate {
                path: path.to_owned(),
                index: 1,
                detail: e.to_string(),
            })
        };
        let stamp = |t: OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        let within = |f: &CertFacts, what: &str, path: &Path| {
            if f.not_after < now {
                Err(PkiError::UnusableBundle {
                    path: path.to_owned(),
                    fault: format!("the {what} expired at {}", stamp(f.not_after)),
                })
            } else if f.not_before > now {
                Err(PkiError::UnusableBundle {
                    path: path.to_owned(),
                    fault: format!("the {what} is not valid before {}", stamp(f.not_before)),
                })
            } else {
                Ok(())
            }
        };
        let client = facts(&self.client.chain[0], &self.paths.client_cert)?;
        within(&client, "client certificate", &self.paths.client_cert)?;
        if !client.eku.is_empty()
            && !client
                .eku
                .iter()
                .any(|e| e == "clientAuth" || e == "anyExtendedKeyUsage")
        {
            return Err(PkiError::UnusableBundle {
                path: self.paths.client_cert.clone(),
                fault: format!(
                    "the client certificate's extendedKeyUsage ({}) does not allow client authentication",
                    client.eku.join(", ")
                ),
            });
        }
        let ca = facts(&self.ca_cert, &self.paths.ca_cert)?;
        within(&ca, "client CA certificate", &self.paths.ca_cert)
    }

    /// Whether the CA private key is available.
    pub fn has_ca_key(&self) -> bool {
        self.ca_key.is_some()
    }

    pub(crate) fn ca_issuer(&self, what: &str) -> Result<Issuer<'_, &KeyPair>, PkiError> {
        let key = self.ca_key.as_ref().ok_or_else(|| PkiError::NeedsCaKey {
            what: what.to_owned(),
        })?;
        Ok(Issuer::from_ca_cert_der(&self.ca_cert, key)?)
    }

    /// Facts of the CA, the client certificate and the server anchors, for the report.
    pub fn certificate_facts(&self) -> Vec<CertFacts> {
        let mut out = Vec::new();
        let mut push = |der: &CertificateDer<'_>, role: &str, source: &Path| {
            if let Ok(f) = CertFacts::from_der(der) {
                out.push(f.with_role(role).with_source(source.display().to_string()));
            }
        };
        push(&self.ca_cert, "client-ca", &self.paths.ca_cert);
        push(&self.client.chain[0], "client", &self.paths.client_cert);
        if let Some(p) = &self.paths.server_ca {
            for der in &self.server_ca {
                push(der, "server-ca", p);
            }
        }
        out
    }
}

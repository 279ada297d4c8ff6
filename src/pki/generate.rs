//! `pki init`: a CA (valid since well before any leaf), the repo-server certificate, the client
//! certificate(s), and the Secret manifests, written all-or-nothing.

use std::fmt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::*;

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
    // Ten years at least, and always past the leaves it signs (`--days` from now).
    let backdate_days = CA_BACKDATE.whole_days() as u32;
    params.not_after = after_days(
        params.not_before,
        3650.max(days.saturating_add(backdate_days + 1)),
    )
    .map_err(|_| too_far(days))?;
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
        .ok_or_else(|| too_far(days))
}

/// `--days` that would end a certificate (or the CA that must outlive it) after 9999.
fn too_far(days: u32) -> PkiError {
    PkiError::Invalid(format!(
        "--days {days}: the certificates would end after the year 9999, which X.509 cannot express"
    ))
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

/// Every file name a bundle of any layout has: what `--force` may replace.
pub fn bundle_file_names() -> Vec<String> {
    let mut names: Vec<String> = [
        files::CA_CERT,
        files::CA_KEY,
        files::SERVER_CERT,
        files::SERVER_KEY,
        files::CLIENT_CERT,
        files::CLIENT_KEY,
        secrets::MTLS_FILE,
        secrets::TLS_FILE,
    ]
    .map(str::to_owned)
    .to_vec();
    for component in Component::ALL {
        let (crt, key) = component.file_names();
        names.extend([crt, key, format!("{}.yaml", component.secret_name())]);
    }
    names
}

/// Writes a generated bundle into `dir` (created if needed). Refuses to replace any existing bundle
/// file unless `force`. A new directory gets its files under temporary names first, renamed in
/// once all are complete. An existing bundle (`force`) is replaced whole: the new bundle is written
/// completely into a directory beside it, and the two directories are exchanged in one atomic
/// step (`renameat2(RENAME_EXCHANGE)`), so the old bundle stays as it was if anything fails, and
/// no file of the previous generation (another layout's per-component files) survives next to the
/// new CA. A directory that holds files of its own besides a bundle is not replaced (they would
/// be lost with it): the error names them.
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
    let known = bundle_file_names();
    let present: Vec<String> = if dir.is_dir() {
        std::fs::read_dir(dir)
            .map_err(io_err(dir))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    } else {
        vec![]
    };
    let mut existing: Vec<String> = present
        .iter()
        .filter(|n| known.contains(n))
        .cloned()
        .collect();
    existing.sort();
    if existing.is_empty() {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        return stage_into(dir, bundle, None);
    }
    if !force {
        return Err(PkiError::BundleExists {
            dir: dir.to_owned(),
            existing,
        });
    }
    let mut foreign: Vec<&String> = present.iter().filter(|n| !known.contains(n)).collect();
    foreign.sort();
    if !foreign.is_empty() {
        return Err(PkiError::Invalid(format!(
            "{}: --force replaces the bundle directory whole, and it also holds files that are not part of a bundle ({}); move them elsewhere or choose another --out",
            dir.display(),
            foreign
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    // The new generation, complete, beside the old one (same filesystem, so it can be exchanged).
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let staging = tempfile::Builder::new()
        .prefix(".argocd-mtls-verify-bundle-")
        .tempdir_in(&parent)
        .map_err(io_err(&parent))?;
    let mode = std::fs::metadata(dir).map_err(io_err(dir))?.permissions();
    std::fs::set_permissions(staging.path(), mode).map_err(io_err(staging.path()))?;
    let written = stage_into(staging.path(), bundle, Some(dir))?;
    // One step: the new bundle takes the old one's place; the old one moves into the staging
    // name, and is removed when `staging` is dropped.
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        staging.path(),
        rustix::fs::CWD,
        dir,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .map_err(|e| PkiError::Io {
        path: dir.to_owned(),
        source: std::io::Error::other(format!(
            "cannot swap the new bundle in for the old one (left unchanged): {e}"
        )),
    })?;
    Ok(written)
}

/// Writes `bundle` into `dir` under temporary names, then renames each into place; the paths are
/// reported as under `named` (the directory the files will end up in) when given.
fn stage_into(
    dir: &Path,
    bundle: &GeneratedBundle,
    named: Option<&Path>,
) -> Result<Vec<PathBuf>, PkiError> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| PkiError::Io { path, source }
    };
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
    let written = staged.commit().map_err(io_err(dir))?;
    Ok(match named {
        Some(final_dir) => written
            .iter()
            .filter_map(|p| p.file_name())
            .map(|n| final_dir.join(n))
            .collect(),
        None => written,
    })
}

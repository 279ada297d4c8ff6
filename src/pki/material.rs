//! The probe material: a bundle read from disk (or memory, or a cluster Secret) and cross-checked,
//! the legitimate client identity, and the CA key that mints the adversaries.

use std::fmt;
use std::path::{Path, PathBuf};

use rcgen::{Issuer, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;

use crate::x509::{self, CertFacts};

use super::*;

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

/// Fails naming the first of `required` that `dir` lacks, and every file a bundle needs here. One
/// that is there but no regular file (a FIFO, a directory) is refused, saying what it is, when it
/// is read.
pub(crate) fn require_bundle_files(dir: &Path, required: &[&str]) -> Result<(), PkiError> {
    match required.iter().find(|file| !dir.join(file).exists()) {
        Some(file) => Err(PkiError::MissingBundleFile {
            dir: dir.to_owned(),
            file: (*file).into(),
            expected: required.iter().map(|s| s.to_string()).collect(),
        }),
        None => Ok(()),
    }
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
        require_bundle_files(dir, &required)?;
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
    /// The CA the legitimate client chains to: the anchor lookalikes copy.
    pub ca_cert: CertificateDer<'static>,
    /// Every certificate of the client CA file (a rotation bundle holds the old and the new CA):
    /// the CAs the repo-server is expected to trust for clients.
    pub client_cas: Vec<CertificateDer<'static>>,
    /// The key that mints the derived identities, with the certificate it belongs to.
    pub(crate) minter: Option<Minter>,
    /// The legitimate client.
    pub client: Identity,
    /// Trust anchors for the repo-server certificate.
    pub server_ca: Vec<CertificateDer<'static>>,
    /// Where the material was read from.
    pub paths: PkiPaths,
    /// Set when no real client identity was available and this one is a throwaway the server
    /// has no reason to trust: why. Probes that need no identity (no certificate, the open
    /// server's acceptance of anyone) still prove something; the valid-client case cannot.
    pub stand_in: Option<String>,
    /// With a stand-in client identity: where the installation's own server CA was found (the
    /// Secret's `server-ca.crt`, or `argocd-repo-server-tls`'s `ca.crt`), which then verifies the
    /// server's certificate in place of the stand-in's CA. `None`: the server CA is the bundle's.
    pub server_ca_origin: Option<String>,
}

/// The CA key given to the run and the certificate it belongs to: one of the client CA file's
/// CAs, or an intermediate of the client's chain. Leaves minted with it are sent with
/// `chain_above`, so that they reach the trusted anchor the way the legitimate client's do.
pub(crate) struct Minter {
    pub(crate) key: KeyPair,
    pub(crate) cert: CertificateDer<'static>,
    /// What the client sends above a leaf this key signed: the intermediates from `cert` up
    /// (empty when `cert` is a self-signed CA of the client CA file; an intermediate given as
    /// the client CA goes out with its issuers of that file that are not self-signed either, so
    /// a server anchored at their root can build the path).
    pub(crate) chain_above: Vec<CertificateDer<'static>>,
}

impl Minter {
    /// Finds the certificate `key` belongs to among `cas` and the client's intermediates.
    fn find(
        key: KeyPair,
        spki: Vec<u8>,
        key_path: &Path,
        cas: &[CertificateDer<'static>],
        client_chain: &[CertificateDer<'static>],
        paths: &PkiPaths,
    ) -> Result<Minter, PkiError> {
        let matches = |der: &CertificateDer<'_>| x509::spki_der(der).is_ok_and(|s| s == spki);
        if let Some(cert) = cas.iter().find(|c| matches(c)) {
            return Ok(Minter {
                key,
                cert: cert.clone(),
                chain_above: intermediates_from(cert, cas),
            });
        }
        if let Some(i) = client_chain.iter().skip(1).position(matches) {
            return Ok(Minter {
                key,
                cert: client_chain[i + 1].clone(),
                chain_above: client_chain[i + 1..].to_vec(),
            });
        }
        Err(PkiError::CaKeyMatchesNoCertificate {
            key: key_path.to_owned(),
            ca_cert: paths.ca_cert.clone(),
            client_cert: paths.client_cert.clone(),
        })
    }
}

/// `cert` and the certificates of `cas` above it, for as long as each is an intermediate (not
/// self-signed) whose issuer is among `cas`; empty when `cert` is self-signed (a root).
fn intermediates_from(
    cert: &CertificateDer<'static>,
    cas: &[CertificateDer<'static>],
) -> Vec<CertificateDer<'static>> {
    let self_signed = |c: &CertificateDer<'_>| x509::is_signed_by(c, c).unwrap_or(false);
    let mut above = Vec::new();
    let mut current = cert;
    // Each step moves one certificate up; no path is longer than the file.
    for _ in 0..=cas.len() {
        if self_signed(current) || above.contains(current) {
            break;
        }
        above.push(current.clone());
        match cas
            .iter()
            .find(|c| *c != current && x509::is_signed_by(current, c).unwrap_or(false))
        {
            Some(issuer) => current = issuer,
            None => break,
        }
    }
    above
}

/// The index in `cas` of the CA `chain` (leaf first, then what the client sends above it)
/// leads to, through signatures: the leaf is signed by a CA, or by an intermediate of the
/// chain that is, and so on. `None`: it reaches none of them.
pub fn chain_anchor(chain: &[CertificateDer<'_>], cas: &[CertificateDer<'_>]) -> Option<usize> {
    let signed_by =
        |a: &CertificateDer<'_>, b: &CertificateDer<'_>| x509::is_signed_by(a, b).unwrap_or(false);
    let mut current = chain.first()?;
    // Each step moves one certificate up; a chain longer than itself would loop.
    for _ in 0..chain.len() {
        if let Some(i) = cas.iter().position(|ca| signed_by(current, ca)) {
            return Some(i);
        }
        current = chain
            .iter()
            .skip(1)
            .find(|c| *c != current && signed_by(current, c))?;
    }
    None
}

impl fmt::Debug for ProbePki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbePki")
            .field("paths", &self.paths)
            .field("has_ca_key", &self.minter.is_some())
            .finish()
    }
}

impl ProbePki {
    /// Loads and cross-checks the material: keys match their certificates, the client certificate
    /// chains to the CA.
    pub fn load(paths: &PkiPaths) -> Result<Self, PkiError> {
        let client_cas = read_certificates(&paths.ca_cert)?;
        let client = read_identity(&paths.client_cert, &paths.client_key, "client")?;
        let Some(anchor) = chain_anchor(&client.chain, &client_cas) else {
            return Err(PkiError::ClientNotFromCa {
                client_cert: paths.client_cert.clone(),
                ca_cert: paths.ca_cert.clone(),
                cas: client_cas
                    .iter()
                    .filter_map(|c| CertFacts::from_der(c).ok().map(|f| f.subject))
                    .collect(),
            });
        };
        let minter = match &paths.ca_key {
            Some(key_path) => {
                let key = read_private_key(key_path)?;
                let unsupported = |detail| PkiError::UnsupportedKey {
                    path: key_path.clone(),
                    detail,
                };
                let spki = public_key_spki(&key).map_err(unsupported)?;
                let key = keys::to_key_pair(&key).map_err(unsupported)?;
                Some(Minter::find(
                    key,
                    spki,
                    key_path,
                    &client_cas,
                    &client.chain,
                    paths,
                )?)
            }
            None => None,
        };
        let server_ca = match &paths.server_ca {
            Some(p) => read_certificates(p)?,
            None => client_cas.clone(),
        };
        Ok(ProbePki {
            ca_cert: client_cas[anchor].clone(),
            client_cas,
            minter,
            client,
            server_ca,
            paths: paths.clone(),
            stand_in: None,
            server_ca_origin: None,
        })
    }

    /// A throwaway identity from a fresh in-memory CA, for a cluster whose own client identity is
    /// unknown (no Secret yet, and no `--pki`): `why` says so in every result that depends on it.
    pub fn stand_in(why: impl Into<String>) -> Result<Self, PkiError> {
        let bundle = super::generate(&super::InitOptions::default())?;
        let mut pki = Self::from_generated(&bundle, Path::new("<stand-in: generated in memory>"))?;
        pki.stand_in = Some(why.into());
        Ok(pki)
    }

    /// A stand-in identity ([`ProbePki::stand_in`]) that verifies the server against the
    /// installation's own server CA (`pem`, read from `origin`): the server's identity is then
    /// judged although no client identity of the installation is known.
    pub fn stand_in_with_server_ca(
        why: impl Into<String>,
        pem: &[u8],
        origin: &str,
    ) -> Result<Self, PkiError> {
        use rustls_pki_types::pem::PemObject;
        let mut pki = Self::stand_in(why)?;
        let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| PkiError::BadCertificate {
                path: origin.into(),
                index: 1,
                detail: e.to_string(),
            })?;
        if cas.is_empty() {
            return Err(PkiError::BadCertificate {
                path: origin.into(),
                index: 1,
                detail: "no PEM certificate".into(),
            });
        }
        pki.server_ca = cas;
        pki.server_ca_origin = Some(origin.to_owned());
        Ok(pki)
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
            client_cas: vec![ca_cert.clone()],
            minter: Some(Minter {
                key: ca_key,
                cert: ca_cert.clone(),
                chain_above: vec![],
            }),
            ca_cert,
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
            stand_in: None,
            server_ca_origin: None,
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
            client_cas: ca_chain.clone(),
            minter: None,
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
            stand_in: None,
            server_ca_origin: None,
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

    /// The material as the files a run reads with `--ca-cert`, `--client-cert`, `--client-key`,
    /// `--server-ca` and (when the run has it) `--ca-key`, by file name: what the in-cluster probe
    /// mounts from the Secret it creates. `None` for a stand-in identity, which is made afresh
    /// wherever a run needs one.
    pub fn files(&self) -> Option<Vec<(&'static str, Vec<u8>)>> {
        if self.stand_in.is_some() {
            return None;
        }
        let pem = |certs: &[CertificateDer<'_>]| -> Vec<u8> {
            certs
                .iter()
                .flat_map(|c| pem_block("CERTIFICATE", c.as_ref()).into_bytes())
                .collect()
        };
        let key_label = match &self.client.key {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        let mut out = vec![
            (identity_files::CLIENT_CA, pem(&self.client_cas)),
            (identity_files::CLIENT_CERT, pem(&self.client.chain)),
            (
                files::CLIENT_KEY,
                pem_block(key_label, self.client.key.secret_der()).into_bytes(),
            ),
            (identity_files::SERVER_CA, pem(&self.server_ca)),
        ];
        if let Some(m) = &self.minter {
            out.push((identity_files::CA_KEY, m.key.serialize_pem().into_bytes()));
        }
        Some(out)
    }

    /// Whether the CA private key is available.
    pub fn has_ca_key(&self) -> bool {
        self.minter.is_some()
    }

    pub(crate) fn minter(&self, what: &str) -> Result<&Minter, PkiError> {
        self.minter.as_ref().ok_or_else(|| PkiError::NeedsCaKey {
            what: what.to_owned(),
        })
    }

    pub(crate) fn ca_issuer(&self, what: &str) -> Result<Issuer<'_, &KeyPair>, PkiError> {
        let minter = self.minter(what)?;
        Ok(Issuer::from_ca_cert_der(&minter.cert, &minter.key)?)
    }

    /// Facts of the CA, the client certificate and the server anchors, for the report.
    pub fn certificate_facts(&self) -> Vec<CertFacts> {
        let mut out = Vec::new();
        let mut push = |der: &CertificateDer<'_>, role: &str, source: &Path| {
            if let Ok(f) = CertFacts::from_der(der) {
                out.push(f.with_role(role).with_source(source.display().to_string()));
            }
        };
        for der in &self.client_cas {
            push(der, "client-ca", &self.paths.ca_cert);
        }
        push(&self.client.chain[0], "client", &self.paths.client_cert);
        // What the client sends above its leaf: the chain it presents, not CAs it trusts.
        for der in &self.client.chain[1..] {
            push(der, "client-chain", &self.paths.client_cert);
        }
        if let Some(p) = &self.paths.server_ca {
            for der in &self.server_ca {
                push(der, "server-ca", p);
            }
        }
        out
    }
}

/// The file names [`ProbePki::files`] gives.
pub mod identity_files {
    /// The client CA(s) (`--ca-cert`).
    pub const CLIENT_CA: &str = "client-ca.crt";
    /// The client's chain (`--client-cert`).
    pub const CLIENT_CERT: &str = "client.crt";
    /// Its key (`--client-key`).
    pub const CLIENT_KEY: &str = "client.key";
    /// The server's CA(s) (`--server-ca`).
    pub const SERVER_CA: &str = "server-ca.crt";
    /// The key that mints derived identities (`--ca-key`), when the run has it.
    pub const CA_KEY: &str = "ca.key";
}

/// One PEM block of `der` under `label`, 64 characters a line.
pub fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

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

/// Fails naming the first of `required` that `dir` lacks, and every file a bundle needs here.
pub(crate) fn require_bundle_files(dir: &Path, required: &[&str]) -> Result<(), PkiError> {
    match required.iter().find(|file| !dir.join(file).is_file()) {
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
    /// The CA the repo-server is expected to trust for clients.
    pub ca_cert: CertificateDer<'static>,
    /// The CA key, when provided: cases that mint certificates from the trusted CA need it.
    pub(crate) ca_key: Option<KeyPair>,
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
            stand_in: None,
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
            stand_in: None,
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
            stand_in: None,
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

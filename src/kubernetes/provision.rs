//! What `--provision` (and kind) puts into a cluster: the two Secrets of a `pki init` bundle, the
//! profile, the grpc-go log level; and, the other way round, the client identity a cluster's own
//! `argocd-repo-server-mtls` Secret holds.

use crate::kubernetes::cluster;
use crate::pki::{Bundle, PkiError, ProbePki, secrets};

/// Why a bundle cannot be provisioned, or a cluster's Secret cannot serve as the probe's identity.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The bundle lacks one of the Secret manifests `pki init` writes.
    #[error("{origin}: no {file} (a bundle from `argocd-mtls-verify pki init` has it)")]
    MissingBundleFile {
        /// `--pki DIR`, or "generated bundle".
        origin: String,
        /// The file.
        file: &'static str,
    },
    /// The cluster has no `argocd-repo-server-mtls`, or it may not be read.
    #[error(
        "no client identity: {origin} {why}; give --pki DIR (or --ca-cert/--client-cert/--client-key)"
    )]
    NoIdentity {
        /// `secret/<ns>/argocd-repo-server-mtls`.
        origin: String,
        /// "does not exist", or the refusal.
        why: String,
    },
    /// The cluster's Secret lacks a key the identity needs.
    #[error(
        "{origin} has no `{key}`, so it cannot serve as the probe's client identity; give --pki DIR"
    )]
    MissingKey {
        /// `secret/<ns>/argocd-repo-server-mtls`.
        origin: String,
        /// The key.
        key: &'static str,
    },
    /// A manifest or certificate of the material is unusable.
    #[error(transparent)]
    Pki(#[from] PkiError),
}

/// How the Secrets are set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Exactly what operators are told: the two Secrets, then restart the components.
    Seed,
    /// Also make every client verify the repo-server (`*.repo.server.ca.cert.path`).
    Strict,
}

/// What to provision, and from what.
pub struct Provisioning {
    /// The Secrets (`argocd-repo-server-tls`, `argocd-repo-server-mtls`).
    pub secrets: Vec<k8s_openapi::api::core::v1::Secret>,
    /// Profile.
    pub profile: Profile,
    /// Set GRPC_GO_LOG_SEVERITY_LEVEL=info on the repo-server.
    pub grpc_info_log: bool,
}

impl Provisioning {
    /// The Secrets of a `pki init` bundle: its two Secret manifests, placed in `namespace`.
    pub fn from_bundle(
        bundle: &Bundle,
        namespace: &str,
        profile: Profile,
        grpc_info_log: bool,
    ) -> Result<Self, ProvisionError> {
        let origin = bundle.origin();
        let mut out = Vec::new();
        for name in [secrets::TLS_FILE, secrets::MTLS_FILE] {
            let bytes = bundle
                .file(name)
                .ok_or_else(|| ProvisionError::MissingBundleFile {
                    origin: origin.clone(),
                    file: name,
                })?;
            out.push(secrets::from_yaml(
                &bytes,
                &format!("{origin}/{name}"),
                namespace,
            )?);
        }
        Ok(Provisioning {
            secrets: out,
            profile,
            grpc_info_log,
        })
    }
}

/// Probe material from the cluster's own `argocd-repo-server-mtls` (no CA key: the cases that
/// mint from the trusted CA are skipped with that reason).
pub fn material_from_secret(
    snapshot: &cluster::Snapshot,
    namespace: &str,
) -> Result<ProbePki, ProvisionError> {
    use secrets::mtls_keys;
    let origin = format!("secret/{namespace}/{}", secrets::MTLS_SECRET);
    let secret = match (&snapshot.mtls_secret, &snapshot.secret_unreadable) {
        (Some(s), _) => s,
        (None, Some(why)) => {
            return Err(ProvisionError::NoIdentity {
                origin,
                why: format!("may not be read ({why})"),
            });
        }
        (None, None) => {
            return Err(ProvisionError::NoIdentity {
                origin,
                why: "does not exist".into(),
            });
        }
    };
    let get = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| b.0.as_slice())
    };
    let need = |key: &'static str| {
        get(key).ok_or_else(|| ProvisionError::MissingKey {
            origin: origin.clone(),
            key,
        })
    };
    Ok(ProbePki::from_pem(
        need(mtls_keys::CLIENT_CA)?,
        need(mtls_keys::CLIENT_CERT)?,
        need(mtls_keys::CLIENT_KEY)?,
        get(mtls_keys::SERVER_CA),
        &origin,
    )?)
}

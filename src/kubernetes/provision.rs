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

/// Probe material from the cluster's own Secrets, read where the components read them: the
/// client CA from the file the repo-server's client CA path leads to, the client pair from the
/// first client component (server, controller, applicationset, notifications) whose certificate
/// and key paths lead to existing Secret keys (Option A's and B's per-component pairs included);
/// `argocd-repo-server-mtls`'s own keys when no component leads anywhere. No CA key: the cases
/// that mint from the trusted CA are skipped with that reason.
pub fn material_from_secret(
    snapshot: &cluster::Snapshot,
    namespace: &str,
) -> Result<ProbePki, ProvisionError> {
    use crate::kubernetes::workloads::{FileSource, MtlsFile, Role};
    use secrets::mtls_keys;
    let shared = format!("secret/{namespace}/{}", secrets::MTLS_SECRET);
    if let Some(why) = &snapshot.secret_unreadable {
        return Err(ProvisionError::NoIdentity {
            origin: shared,
            why: format!("may not be read ({why})"),
        });
    }
    let cmd_params = snapshot.cmd_params.as_ref();
    // (Secret, key) each file comes from, by role order.
    let source = |roles: &[Role], file: MtlsFile| {
        roles.iter().find_map(|role| {
            snapshot
                .workloads
                .iter()
                .filter(|w| w.role == Some(*role) && w.replicas != Some(0))
                .flat_map(|w| w.mtls_reads(cmd_params))
                .find_map(|r| match r.source {
                    FileSource::SecretKey { secret, key } if r.file == file => Some((secret, key)),
                    _ => None,
                })
        })
    };
    let get = |(secret, key): &(String, String)| {
        snapshot
            .secrets
            .get(secret)
            .and_then(|s| s.data.as_ref()?.get(key))
            .map(|b| b.0.as_slice())
    };
    let fallback = |key: &str| (secrets::MTLS_SECRET.to_owned(), key.to_owned());
    let ca = source(&[Role::RepoServer], MtlsFile::ClientCa)
        .unwrap_or_else(|| fallback(mtls_keys::CLIENT_CA));
    let pair = Role::CLIENTS
        .iter()
        .find_map(|role| {
            let cert = source(&[*role], MtlsFile::ClientCert)?;
            let key = source(&[*role], MtlsFile::ClientKey)?;
            (get(&cert).is_some() && get(&key).is_some()).then_some((cert, key))
        })
        .unwrap_or_else(|| {
            (
                fallback(mtls_keys::CLIENT_CERT),
                fallback(mtls_keys::CLIENT_KEY),
            )
        });
    if !snapshot.secrets.contains_key(&ca.0) && !snapshot.secrets.contains_key(&pair.0.0) {
        return Err(ProvisionError::NoIdentity {
            origin: shared,
            why: "does not exist".into(),
        });
    }
    let need = |at: &(String, String), key: &'static str| {
        get(at).ok_or_else(|| ProvisionError::MissingKey {
            origin: format!("secret/{namespace}/{}", at.0),
            key,
        })
    };
    let origin = if pair.0.0 == ca.0 {
        format!("secret/{namespace}/{}", ca.0)
    } else {
        format!(
            "secret/{namespace}/{} and secret/{namespace}/{}",
            ca.0, pair.0.0
        )
    };
    Ok(ProbePki::from_pem(
        need(&ca, mtls_keys::CLIENT_CA)?,
        need(&pair.0, mtls_keys::CLIENT_CERT)?,
        need(&pair.1, mtls_keys::CLIENT_KEY)?,
        get(&fallback(mtls_keys::SERVER_CA)),
        &origin,
    )?)
}

//! The configuration audit: what the Kubernetes objects say about mTLS, judged without touching the
//! cluster. Inputs are plain k8s-openapi objects (read by the cluster target, or built by tests);
//! outputs are findings that name the object and key at fault. Secret *data* never leaves this
//! module: only key names and public certificate facts appear in a finding.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PodSpec, Secret};
use serde::{Deserialize, Serialize};

use crate::pki::secrets::{MTLS_SECRET, mtls_keys};
use crate::suite::kube_ids as ids;
use crate::x509::{self, CertFacts};

mod clients;
mod pods;

pub use clients::*;
pub use pods::*;

/// One audit finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id, e.g. `config/mtls-secret-keys`.
    pub id: String,
    /// Whether the configuration is right in this respect.
    pub ok: bool,
    /// `required` findings fail a run; `advisory` ones are reported.
    pub advisory: bool,
    /// What was found, naming the object and key.
    pub detail: String,
    /// Nothing could be concluded (e.g. the transport to the pod failed): no verdict.
    #[serde(default)]
    pub inconclusive: bool,
    /// The case does not arise on this target (e.g. no Application has asked the controller to
    /// call the repo-server): skipped as not applicable, which does not hold the gate.
    #[serde(default)]
    pub not_applicable: bool,
}

impl Finding {
    fn new(id: &str, ok: bool, advisory: bool, detail: impl Into<String>) -> Self {
        Finding {
            id: id.into(),
            ok,
            advisory,
            detail: detail.into(),
            inconclusive: false,
            not_applicable: false,
        }
    }
    /// The configuration is right in this respect.
    pub fn pass(id: &str, detail: impl Into<String>) -> Self {
        Self::new(id, true, false, detail)
    }
    /// The configuration is wrong in this respect; fails the run.
    pub fn fail(id: &str, detail: impl Into<String>) -> Self {
        Self::new(id, false, false, detail)
    }
    /// Reported, never failing the run.
    pub fn advise(id: &str, ok: bool, detail: impl Into<String>) -> Self {
        Self::new(id, ok, true, detail)
    }
    /// Nothing could be concluded; the run gets no verdict.
    pub fn inconclusive(id: &str, detail: impl Into<String>) -> Self {
        Finding {
            inconclusive: true,
            ..Self::new(id, false, false, detail)
        }
    }
    /// The case does not arise here; skipped as not applicable.
    pub fn not_applicable(id: &str, detail: impl Into<String>) -> Self {
        Finding {
            not_applicable: true,
            ..Self::new(id, true, false, detail)
        }
    }
}

/// Certificates of one Secret key, or why they are unusable.
fn certs_in(secret: &Secret, key: &str) -> Option<Result<Vec<Vec<u8>>, String>> {
    let bytes = &secret.data.as_ref()?.get(key)?.0;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let certs: Result<Vec<Vec<u8>>, String> = CertificateDer::pem_slice_iter(bytes)
        .map(|c| c.map(|c| c.to_vec()).map_err(|e| e.to_string()))
        .collect();
    Some(match certs {
        Ok(v) if v.is_empty() => Err(format!("key `{key}` holds no PEM certificate")),
        other => other,
    })
}

/// Days below which a certificate's remaining validity is flagged.
pub const EXPIRY_HORIZON_DAYS: i64 = 30;

/// Audits `argocd-repo-server-mtls` (or its absence). `ca.crt` in place of `client-ca.crt` is the
/// failure that matters most: the repo-server then finds no client CA and silently accepts anyone.
pub fn audit_mtls_secret(secret: Option<&Secret>) -> Vec<Finding> {
    const KEYS: &str = ids::MTLS_SECRET_KEYS;
    let Some(secret) = secret else {
        return vec![Finding::fail(
            KEYS,
            format!(
                "Secret `{MTLS_SECRET}` does not exist: the repo-server has no client CA and mTLS is OFF"
            ),
        )];
    };
    let keys: Vec<&str> = secret
        .data
        .as_ref()
        .map(|d| d.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    if !keys.contains(&mtls_keys::CLIENT_CA) {
        let misnamed = [
            "ca.crt",
            "client_ca.crt",
            "clientca.crt",
            "client-ca.pem",
            "ca.pem",
        ]
        .into_iter()
        .find(|k| keys.contains(k));
        out.push(Finding::fail(KEYS, match misnamed {
            Some(k) => format!(
                "Secret `{MTLS_SECRET}` has key `{k}` but no `{}`: the repo-server reads only `{}`, so mTLS is silently OFF and any TLS client is accepted",
                mtls_keys::CLIENT_CA, mtls_keys::CLIENT_CA
            ),
            None => format!(
                "Secret `{MTLS_SECRET}` has no `{}` (keys: {}): mTLS is silently OFF",
                mtls_keys::CLIENT_CA,
                if keys.is_empty() { "none".to_owned() } else { keys.join(", ") }
            ),
        }));
    } else {
        out.push(Finding::pass(
            KEYS,
            format!("Secret `{MTLS_SECRET}` has `{}`", mtls_keys::CLIENT_CA),
        ));
    }
    let missing_pair: Vec<&str> = [mtls_keys::CLIENT_CERT, mtls_keys::CLIENT_KEY]
        .into_iter()
        .filter(|key| !keys.contains(key))
        .collect();
    out.push(if missing_pair.is_empty() {
        Finding::pass(
            ids::MTLS_CLIENT_PAIR,
            format!(
                "Secret `{MTLS_SECRET}` has `{}` and `{}`",
                mtls_keys::CLIENT_CERT,
                mtls_keys::CLIENT_KEY
            ),
        )
    } else {
        Finding::fail(ids::MTLS_CLIENT_PAIR, format!(
            "Secret `{MTLS_SECRET}` has no `{}`: the components connect without a certificate and an mTLS repo-server refuses them",
            missing_pair.join("` or `")
        ))
    });
    out.push(if keys.contains(&mtls_keys::SERVER_CA) {
        Finding::advise(
            ids::SERVER_CA_PRESENT,
            true,
            format!(
                "Secret `{MTLS_SECRET}` has `{}`: the components can verify the repo-server",
                mtls_keys::SERVER_CA
            ),
        )
    } else {
        Finding::advise(ids::SERVER_CA_PRESENT, false, format!(
            "Secret `{MTLS_SECRET}` has no `{}`: the components cannot verify the repo-server (one-way authentication)",
            mtls_keys::SERVER_CA
        ))
    });
    let known = [
        mtls_keys::CLIENT_CA,
        mtls_keys::CLIENT_CERT,
        mtls_keys::CLIENT_KEY,
        mtls_keys::SERVER_CA,
    ];
    let extra: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| !known.contains(k))
        .collect();
    out.push(if extra.is_empty() {
        Finding::advise(
            ids::MTLS_SECRET_EXTRA_KEYS,
            true,
            format!("Secret `{MTLS_SECRET}` has only keys the components read"),
        )
    } else {
        Finding::advise(
            ids::MTLS_SECRET_EXTRA_KEYS,
            false,
            format!(
                "Secret `{MTLS_SECRET}` has keys no component reads: {}",
                extra.join(", ")
            ),
        )
    });

    // The client pair must chain to the client CA and belong together.
    let ca = certs_in(secret, mtls_keys::CLIENT_CA);
    let client = certs_in(secret, mtls_keys::CLIENT_CERT);
    match &ca {
        Some(Err(e)) => out.push(Finding::fail(
            ids::CLIENT_CA_PARSES,
            format!("Secret `{MTLS_SECRET}`: {e}"),
        )),
        Some(Ok(certs)) => out.push(Finding::pass(
            ids::CLIENT_CA_PARSES,
            format!(
                "Secret `{MTLS_SECRET}`: `{}` holds {} certificate(s)",
                mtls_keys::CLIENT_CA,
                certs.len()
            ),
        )),
        None => {}
    }
    if let (Some(Ok(ca)), Some(Ok(client))) = (&ca, &client) {
        let chains = ca
            .iter()
            .any(|c| x509::is_signed_by(&client[0], c).unwrap_or(false));
        out.push(if chains {
            Finding::pass(ids::CLIENT_CERT_CHAINS, "client.crt is issued by a CA in client-ca.crt")
        } else {
            Finding::fail(ids::CLIENT_CERT_CHAINS, format!(
                "Secret `{MTLS_SECRET}`: client.crt is not issued by any CA in client-ca.crt: every component would be refused"
            ))
        });
        if let Some(key_bytes) = secret
            .data
            .as_ref()
            .and_then(|d| d.get(mtls_keys::CLIENT_KEY))
        {
            use rustls_pki_types::PrivateKeyDer;
            use rustls_pki_types::pem::PemObject;
            let matches = PrivateKeyDer::from_pem_slice(&key_bytes.0)
                .ok()
                .and_then(|k| crate::pki::public_key_spki(&k).ok())
                .zip(x509::spki_der(&client[0]).ok())
                .is_some_and(|(a, b)| a == b);
            out.push(if matches {
                Finding::pass(ids::CLIENT_KEY_MATCHES, "client.key belongs to client.crt")
            } else {
                Finding::fail(ids::CLIENT_KEY_MATCHES, format!(
                    "Secret `{MTLS_SECRET}`: client.key does not belong to client.crt (or does not parse)"
                ))
            });
        }
    }
    for (key, certs) in [
        (mtls_keys::CLIENT_CA, &ca),
        (mtls_keys::CLIENT_CERT, &client),
    ] {
        if let Some(Ok(ders)) = certs {
            for der in ders {
                if let Ok(f) = CertFacts::from_der(der) {
                    out.push(expiry_finding(key, &f));
                }
            }
        }
    }
    out
}

fn expiry_finding(key: &str, f: &CertFacts) -> Finding {
    let id = ids::CERT_EXPIRY_HORIZON;
    if f.days_left < 0 {
        Finding::fail(
            id,
            format!("`{key}` ({}) expired {} days ago", f.subject, -f.days_left),
        )
    } else if f.days_left < EXPIRY_HORIZON_DAYS {
        Finding::advise(
            id,
            false,
            format!("`{key}` ({}) expires in {} days", f.subject, f.days_left),
        )
    } else {
        Finding::pass(
            id,
            format!(
                "`{key}` ({}) valid for {} more days",
                f.subject, f.days_left
            ),
        )
    }
}

/// A workload kind that can be restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub enum WorkloadKind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet (argocd-application-controller is one, in both installs).
    StatefulSet,
}

/// A workload and the mTLS Secrets its pod template mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MtlsWorkload {
    /// Kind.
    pub kind: WorkloadKind,
    /// Name.
    pub name: String,
    /// Secret name -> projected keys (empty = all keys).
    pub secrets: BTreeMap<String, Vec<String>>,
}

/// The `argocd-repo-server-mtls*` Secrets a pod template mounts, with the keys each projects.
pub fn mtls_mounts(spec: &PodSpec) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for volume in spec.volumes.iter().flatten() {
        if let Some(s) = &volume.secret
            && let Some(name) = s
                .secret_name
                .as_deref()
                .filter(|n| n.starts_with(MTLS_SECRET))
        {
            let keys = s.items.iter().flatten().map(|i| i.key.clone()).collect();
            out.insert(name.to_owned(), keys);
        }
        if let Some(p) = &volume.projected {
            for source in p.sources.iter().flatten() {
                if let Some(s) = &source.secret
                    && s.name.starts_with(MTLS_SECRET)
                {
                    let keys = s.items.iter().flatten().map(|i| i.key.clone()).collect();
                    out.insert(s.name.clone(), keys);
                }
            }
        }
    }
    out
}

/// Every Deployment and StatefulSet whose pod template mounts a Secret named `argocd-repo-server-mtls*`:
/// the set to restart after the Secret changes. Discovered, never hard-coded.
pub fn discover_mtls_workloads(
    deployments: &[Deployment],
    statefulsets: &[StatefulSet],
) -> Vec<MtlsWorkload> {
    let mut out = Vec::new();
    let mut push = |kind, name: Option<&String>, spec: Option<&PodSpec>| {
        if let (Some(name), Some(spec)) = (name, spec) {
            let secrets = mtls_mounts(spec);
            if !secrets.is_empty() {
                out.push(MtlsWorkload {
                    kind,
                    name: name.clone(),
                    secrets,
                });
            }
        }
    };
    for d in deployments {
        push(
            WorkloadKind::Deployment,
            d.metadata.name.as_ref(),
            d.spec.as_ref().and_then(|s| s.template.spec.as_ref()),
        );
    }
    for s in statefulsets {
        push(
            WorkloadKind::StatefulSet,
            s.metadata.name.as_ref(),
            s.spec.as_ref().and_then(|s| s.template.spec.as_ref()),
        );
    }
    out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    out
}

/// Checks each component's mount: the repo-server must project `client-ca.crt`; clients must
/// project `client.crt` and `client.key`.
pub fn audit_mounts(workloads: &[MtlsWorkload]) -> Vec<Finding> {
    let mut out = Vec::new();
    let expect: [(&str, &[&str]); 5] = [
        ("argocd-repo-server", &[mtls_keys::CLIENT_CA]),
        (
            "argocd-server",
            &[mtls_keys::CLIENT_CERT, mtls_keys::CLIENT_KEY],
        ),
        (
            "argocd-application-controller",
            &[mtls_keys::CLIENT_CERT, mtls_keys::CLIENT_KEY],
        ),
        (
            "argocd-applicationset-controller",
            &[mtls_keys::CLIENT_CERT, mtls_keys::CLIENT_KEY],
        ),
        (
            "argocd-notifications-controller",
            &[mtls_keys::CLIENT_CERT, mtls_keys::CLIENT_KEY],
        ),
    ];
    for (name, keys) in expect {
        let id = format!("{}/{}", ids::MOUNT, name);
        match workloads.iter().find(|w| w.name == name) {
            None => out.push(Finding::fail(
                &id,
                format!("{name} does not mount any `{MTLS_SECRET}*` Secret"),
            )),
            Some(w) => {
                let missing: Vec<&str> = keys
                    .iter()
                    .copied()
                    .filter(|k| {
                        !w.secrets
                            .values()
                            .any(|items| items.is_empty() || items.iter().any(|i| i == k))
                    })
                    .collect();
                out.push(if missing.is_empty() {
                    Finding::pass(
                        &id,
                        format!(
                            "{name} mounts {}",
                            w.secrets.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    )
                } else {
                    Finding::fail(
                        &id,
                        format!(
                            "{name} mounts {} but does not project {}",
                            w.secrets.keys().cloned().collect::<Vec<_>>().join(", "),
                            missing.join(", ")
                        ),
                    )
                });
            }
        }
    }
    out
}

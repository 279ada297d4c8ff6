//! The configuration audit: what the Kubernetes objects say about mTLS, judged without touching the
//! cluster. Inputs are plain k8s-openapi objects (read by the cluster target, or built by tests);
//! outputs are findings that name the object and key at fault. Secret *data* never leaves this
//! module: only key names and public certificate facts appear in a finding.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, PodSpec, Secret};
use serde::{Deserialize, Serialize};

use crate::pki::secrets::{MTLS_SECRET, mtls_keys};
use crate::suite::kube_ids as ids;
use crate::x509::{self, CertFacts};

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

/// When the Secret last changed: its creation or its latest managed-fields update.
pub fn secret_changed_at(secret: &Secret) -> Option<time::OffsetDateTime> {
    let meta = &secret.metadata;
    meta.creation_timestamp
        .iter()
        .map(|t| t.0)
        .chain(
            meta.managed_fields
                .iter()
                .flatten()
                .filter_map(|f| f.time.as_ref().map(|t| t.0)),
        )
        .max()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.as_second()).ok())
}

/// Whether every pod that mounts the Secret started after its last change. The repo-server
/// reads its client CA once at startup, so one started before is still open: a failure. A client
/// reloads its certificate when the file changes, so there it is advice to restart.
pub fn audit_restarts(
    secret: &Secret,
    workloads: &[MtlsWorkload],
    pods: &BTreeMap<String, Vec<crate::kubernetes::cluster::PodStart>>,
    namespace: &str,
) -> Vec<Finding> {
    let Some(changed) = secret_changed_at(secret) else {
        return vec![];
    };
    let mut out = Vec::new();
    for w in workloads {
        let id = format!("{}/{}", ids::RESTARTED_AFTER_SECRET, w.name);
        let started = pods.get(&w.name).map(Vec::as_slice).unwrap_or_default();
        let stale: Vec<String> = started
            .iter()
            .filter(|p| p.started.is_some_and(|t| t < changed))
            .map(|p| {
                format!(
                    "pod/{} started {}",
                    p.pod,
                    p.started.map(|t| t.to_string()).unwrap_or_default()
                )
            })
            .collect();
        let kind = match w.kind {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
        };
        let restart = format!("kubectl -n {namespace} rollout restart {kind}/{}", w.name);
        out.push(if stale.is_empty() {
            Finding::pass(
                &id,
                format!(
                    "{kind}/{}: its {} pod(s) started after Secret `{MTLS_SECRET}` last changed ({changed})",
                    w.name,
                    started.len()
                ),
            )
        } else if w.name.ends_with("argocd-repo-server") {
            Finding::fail(&id, format!(
                "RESTART NEEDED: {kind}/{}: {} before Secret `{MTLS_SECRET}` last changed ({changed}); the repo-server loads its client CA only at startup, so these pods still run without mTLS: {restart}",
                w.name,
                stale.join(", ")
            ))
        } else {
            Finding::advise(&id, false, format!(
                "restart advised: {kind}/{}: {} before Secret `{MTLS_SECRET}` last changed ({changed}); a client reloads its certificate when the file changes, restarting makes sure: {restart}",
                w.name,
                stale.join(", ")
            ))
        });
    }
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

/// Per client component: the argocd-cmd-params-cm keys that make it verify the repo-server.
pub const SERVER_VERIFICATION_KEYS: [(&str, &str, &str); 4] = [
    (
        "argocd-server",
        "server.repo.server.ca.cert.path",
        "server.repo.server.strict.tls",
    ),
    (
        "argocd-application-controller",
        "controller.repo.server.ca.cert.path",
        "controller.repo.server.strict.tls",
    ),
    (
        "argocd-applicationset-controller",
        "applicationsetcontroller.repo.server.ca.cert.path",
        "applicationsetcontroller.repo.server.strict.tls",
    ),
    (
        "argocd-notifications-controller",
        "notificationscontroller.repo.server.ca.cert.path",
        "notificationscontroller.repo.server.strict.tls",
    ),
];

/// Whether the repo-server serves TLS at all: `reposerver.disable.tls: "true"` means no mTLS, and on
/// 3.5.x a repo-server that cannot start (DOMAIN: the upgrade hazard) unless its client CA path
/// is also emptied. A pre-migration check.
pub fn audit_repo_server_tls(cmd_params: Option<&ConfigMap>) -> Finding {
    let id = ids::REPO_SERVER_TLS;
    let disabled = cmd_params
        .and_then(|c| c.data.as_ref())
        .and_then(|d| d.get("reposerver.disable.tls"))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if disabled {
        Finding::fail(
            id,
            "argocd-cmd-params-cm sets reposerver.disable.tls: \"true\": the repo-server serves no TLS, so there is no mTLS; \
             on 3.5.x it also exits at startup (--client-ca-path cannot be used with --disable-tls) unless \
             ARGOCD_REPO_SERVER_CLIENT_CA_PATH=\"\" is set. Remove the key to migrate to native mTLS",
        )
    } else {
        Finding::pass(
            id,
            "argocd-cmd-params-cm does not disable the repo-server's TLS (reposerver.disable.tls unset or false)",
        )
    }
}

/// Whether each client verifies the repo-server's certificate (off unless a CA path or strict TLS is set).
pub fn audit_server_verification(cmd_params: Option<&ConfigMap>) -> Vec<Finding> {
    let data = cmd_params.and_then(|c| c.data.clone()).unwrap_or_default();
    SERVER_VERIFICATION_KEYS
        .iter()
        .map(|(component, ca_key, strict_key)| {
            let id = format!("{}/{}", ids::CLIENT_VERIFIES_SERVER, component);
            let ca = data.get(*ca_key).filter(|v| !v.trim().is_empty());
            let strict = data.get(*strict_key).is_some_and(|v| v.trim() == "true");
            match (ca, strict) {
                (Some(path), _) => Finding::advise(&id, true, format!("{component} verifies the repo-server against {path} ({ca_key})")),
                (None, true) => Finding::advise(&id, true, format!("{component} verifies the repo-server ({strict_key}=true, deprecated)")),
                (None, false) => Finding::advise(&id, false, format!(
                    "{component} does not verify the repo-server certificate: set `{ca_key}` in argocd-cmd-params-cm; server-ca.crt in the Secret alone does not make authentication mutual"
                )),
            }
        })
        .collect()
}

/// The message a client component logs when it (re)loads its client certificate.
pub const CLIENT_CERT_LOADED: &str = "Client certificate reloaded from ";

/// Text a client logs when the repo-server refuses its handshake.
pub const CLIENT_HANDSHAKE_ERRORS: [&str; 2] =
    ["authentication handshake failed", "remote error: tls:"];

/// Whether the application controller's calls to the repo-server went through, as the
/// Applications it reconciled report them. A refused client certificate does not always reach the
/// controller's log (under TLS 1.3 the refusal arrives on the first write, as a reset), but the
/// Application's ComparisonError always carries the failed call (`rpc error: code = Unavailable`).
pub fn audit_repo_server_calls(
    applications: usize,
    conditions: &[crate::kubernetes::cluster::AppCondition],
) -> Finding {
    let id = format!(
        "{}/argocd-application-controller",
        ids::CLIENT_REACHES_REPO_SERVER
    );
    if applications == 0 {
        return Finding::not_applicable(
            &id,
            "no Application exists, so the application controller has had no reason to call the repo-server",
        );
    }
    let failed: Vec<String> = conditions
        .iter()
        .filter(|c| c.message.contains("rpc error: code = Unavailable"))
        .map(|c| {
            format!(
                "Application `{}` ({}): {}",
                c.application, c.kind, c.message
            )
        })
        .collect();
    match failed.first() {
        None => Finding::pass(
            &id,
            format!(
                "{applications} Application(s) report no failed call from the application controller to the repo-server"
            ),
        ),
        Some(first) => Finding::fail(
            &id,
            format!(
                "the application controller could not call the repo-server for {} Application(s) (a client certificate the repo-server does not trust is refused exactly like this); first: {first}",
                failed.len()
            ),
        ),
    }
}

/// Audits one client component's log: it loaded its certificate, and no handshake with the
/// repo-server failed.
pub fn audit_client_log(component: &str, lines: &[String]) -> Vec<Finding> {
    let loaded = lines.iter().find_map(|l| {
        crate::endpoint::logrus_message(l)
            .and_then(|m| m.strip_prefix(CLIENT_CERT_LOADED).map(str::to_owned))
    });
    let loaded = match loaded {
        Some(rest) => Finding::pass(
            &format!("{}/{}", ids::CLIENT_CERT_LOADED, component),
            format!(
                "{component} loaded its client certificate from {}",
                rest.trim_end_matches(" (mtime changed)")
            ),
        ),
        // Clients load the certificate when they first dial the repo-server, so a component that
        // has not needed it since its restart has no such line yet: reported, not failed.
        None => Finding::advise(
            &format!("{}/{}", ids::CLIENT_CERT_LOADED, component),
            false,
            format!(
                "{component} has not logged `{CLIENT_CERT_LOADED}...` in {} lines: either it has not dialed the repo-server since its restart (the certificate loads on the first connection) or it connects without a certificate",
                lines.len()
            ),
        ),
    };
    let errors: Vec<&String> = lines
        .iter()
        .filter(|l| CLIENT_HANDSHAKE_ERRORS.iter().any(|e| l.contains(e)))
        .collect();
    let handshakes = match errors.first() {
        None => Finding::pass(
            &format!("{}/{}", ids::CLIENT_HANDSHAKE_ERRORS, component),
            format!(
                "{component}: no TLS handshake errors in {} lines",
                lines.len()
            ),
        ),
        Some(first) => Finding::fail(
            &format!("{}/{}", ids::CLIENT_HANDSHAKE_ERRORS, component),
            format!(
                "{component}: {} lines report failed handshakes, first: {first}",
                errors.len()
            ),
        ),
    };
    vec![loaded, handshakes]
}

/// The line of a crashed run that says why: the last logrus error/fatal line, or cobra's `Error:`
/// line.
pub fn last_error_line(lines: &[String]) -> Option<String> {
    let message =
        |l: &String| crate::endpoint::logrus_message(l).unwrap_or_else(|| l.trim().to_owned());
    lines
        .iter()
        .rev()
        .find(|l| {
            let lower = l.to_ascii_lowercase();
            lower.contains("level=fatal")
                || lower.contains("level=error")
                || lower.contains("\"level\":\"fatal\"")
                || lower.contains("\"level\":\"error\"")
                || l.starts_with("Error:")
        })
        .map(message)
}

/// What to change for a startup failure the repo-server is known for.
pub fn startup_failure_fix(message: &str) -> Option<&'static str> {
    // Argo CD 3.5 gives --client-ca-path a default, so a repo-server that had TLS turned off
    // (reposerver.disable.tls, common behind a mesh) refuses to start after the upgrade.
    message
        .contains("--client-ca-path cannot be used when --disable-tls is enabled")
        .then_some(
            "This is the Argo CD 3.5 upgrade hazard: reposerver.disable.tls is \"true\" and 3.5 sets a client CA path by default. \
             Either remove reposerver.disable.tls from argocd-cmd-params-cm (mTLS needs TLS), or, to keep TLS off behind a mesh, \
             set ARGOCD_REPO_SERVER_CLIENT_CA_PATH=\"\" on the repo-server; then restart it",
        )
}

#[cfg(test)]
mod crash_tests {
    use super::{last_error_line, startup_failure_fix};

    #[test]
    fn the_line_that_says_why_a_run_ended_and_its_fix() {
        let lines = |text: &str| text.lines().map(str::to_owned).collect::<Vec<_>>();
        // v3.5.1 with reposerver.disable.tls, as the real pod logged it: cobra's usage follows.
        let crashed = lines(
            "{\"level\":\"info\",\"msg\":\"ArgoCD Repository Server is starting\"}\n\
             Error: --client-ca-path cannot be used when --disable-tls is enabled\nUsage:\n  argocd-repo-server [flags]\n",
        );
        let why = last_error_line(&crashed).unwrap();
        assert_eq!(
            why,
            "Error: --client-ca-path cannot be used when --disable-tls is enabled"
        );
        assert!(
            startup_failure_fix(&why)
                .unwrap()
                .contains("ARGOCD_REPO_SERVER_CLIENT_CA_PATH")
        );
        let fatal = lines(
            "{\"level\":\"fatal\",\"msg\":\"open /app/config/tls/tls.crt: permission denied\"}",
        );
        assert_eq!(
            last_error_line(&fatal).unwrap(),
            "open /app/config/tls/tls.crt: permission denied"
        );
        assert_eq!(
            startup_failure_fix("open /app/config/tls/tls.crt: permission denied"),
            None
        );
        assert_eq!(
            last_error_line(&lines("{\"level\":\"info\",\"msg\":\"starting\"}")),
            None
        );
    }
}

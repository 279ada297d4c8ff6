//! `config/*` cases on the workloads and settings around the Secret: which components mount it
//! and project the right keys, whether they started after it last changed, whether the
//! repo-server serves TLS at all, and whether each client verifies the repo-server.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::Finding;
use crate::kubernetes::cluster::PodStart;
use crate::kubernetes::workloads::{
    MtlsWorkload, SERVER_VERIFICATION_KEYS, WorkloadKind, secret_changed_at,
};
use crate::pki::secrets::{MTLS_SECRET, mtls_keys};
use crate::suite::kube_ids as ids;

/// Checks each component's mount: the repo-server must project `client-ca.crt`; clients must
/// project `client.crt` and `client.key`.
pub fn judge_mounts(workloads: &[MtlsWorkload]) -> Vec<Finding> {
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

/// Whether every pod that mounts the Secret started after its last change. The repo-server
/// reads its client CA once at startup, so one started before is still open: a failure. A client
/// reloads its certificate when the file changes, so there it is advice to restart.
pub fn judge_restarts(
    secret: &Secret,
    workloads: &[MtlsWorkload],
    pods: &BTreeMap<String, Vec<PodStart>>,
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

/// Whether the repo-server serves TLS at all: `reposerver.disable.tls: "true"` means no mTLS, and on
/// 3.5.x a repo-server that cannot start (DOMAIN: the upgrade hazard) unless its client CA path
/// is also emptied. A pre-migration check.
pub fn judge_repo_server_tls(cmd_params: Option<&ConfigMap>) -> Finding {
    let id = ids::REPO_SERVER_TLS;
    let disabled = cmd_params
        .and_then(|c| c.data.as_ref())
        .and_then(|d| d.get("reposerver.disable.tls"))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if disabled {
        Finding::fail(
            id,
            "argocd-cmd-params-cm sets reposerver.disable.tls: \"true\": the repo-server serves no TLS, so there is no mTLS; \
             on 3.5.x it also exits at startup (--client-ca-path cannot be used with --disable-tls) unless the repo-server \
             container gets the argument `--client-ca-path=` (ARGOCD_REPO_SERVER_CLIENT_CA_PATH=\"\" does NOT do it: an empty value \
             falls back to the default). Remove the key to migrate to native mTLS",
        )
    } else {
        Finding::pass(
            id,
            "argocd-cmd-params-cm does not disable the repo-server's TLS (reposerver.disable.tls unset or false)",
        )
    }
}

/// Whether each client verifies the repo-server's certificate (off unless a CA path or strict TLS is set).
pub fn judge_server_verification(cmd_params: Option<&ConfigMap>) -> Vec<Finding> {
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

//! What the pods that mount the Secret say: whether they started after its last change, and
//! why one that cannot run stopped.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

use super::{Finding, MtlsWorkload, WorkloadKind};
use crate::pki::secrets::MTLS_SECRET;
use crate::suite::kube_ids as ids;

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

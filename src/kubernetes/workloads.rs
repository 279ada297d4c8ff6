//! Facts about the workloads that mount the mTLS Secret, read off plain k8s-openapi objects:
//! which Deployments and StatefulSets mount `argocd-repo-server-mtls*` and which keys they
//! project, when the Secret last changed, and the line a crashed run logged last. Nothing here
//! judges: the checks do (`checks/workloads.rs`, `checks/pods.rs`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PodSpec, Secret};
use serde::{Deserialize, Serialize};

use crate::pki::secrets::MTLS_SECRET;

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

#[cfg(test)]
mod tests {
    use super::last_error_line;

    #[test]
    fn the_line_that_says_why_a_run_ended() {
        let lines = |text: &str| text.lines().map(str::to_owned).collect::<Vec<_>>();
        // v3.5.1 with reposerver.disable.tls, as the real pod logged it: cobra's usage follows.
        let crashed = lines(
            "{\"level\":\"info\",\"msg\":\"ArgoCD Repository Server is starting\"}\n\
             Error: --client-ca-path cannot be used when --disable-tls is enabled\nUsage:\n  argocd-repo-server [flags]\n",
        );
        assert_eq!(
            last_error_line(&crashed).unwrap(),
            "Error: --client-ca-path cannot be used when --disable-tls is enabled"
        );
        let fatal = lines(
            "{\"level\":\"fatal\",\"msg\":\"open /app/config/tls/tls.crt: permission denied\"}",
        );
        assert_eq!(
            last_error_line(&fatal).unwrap(),
            "open /app/config/tls/tls.crt: permission denied"
        );
        assert_eq!(
            last_error_line(&lines("{\"level\":\"info\",\"msg\":\"starting\"}")),
            None
        );
    }
}

//! Kubernetes operations of the kind and cluster targets, on kube-rs.
//!
//! Reading ([`read_snapshot`]) only ever sends GET: cluster mode is read-only by default, and a test
//! fails if any other verb leaves this module's read path. Writing (restart) is separate and only
//! reached when the user asked for it.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde::Serialize;

use super::audit::{MtlsWorkload, WorkloadKind, discover_mtls_workloads};
use crate::pki::secrets::MTLS_SECRET;

/// Why a Kubernetes call failed, with the permission to grant when that is the reason.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// RBAC refused the call.
    #[error(
        "forbidden: the harness needs `{verb}` on `{resource}` in namespace `{namespace}` ({message})"
    )]
    Forbidden {
        /// The verb.
        verb: String,
        /// The resource.
        resource: String,
        /// The namespace.
        namespace: String,
        /// The API server's message.
        message: String,
    },
    /// Any other API error.
    #[error("{verb} {resource} in `{namespace}`: {source}")]
    Api {
        /// The verb.
        verb: String,
        /// The resource.
        resource: String,
        /// The namespace.
        namespace: String,
        /// The error.
        source: kube::Error,
    },
    /// Something did not become ready in time.
    #[error("{what} did not become ready within {seconds} s")]
    Timeout {
        /// What was waited for.
        what: String,
        /// The limit.
        seconds: u64,
    },
    /// A rollout did not finish.
    #[error("rollout of {kind:?}/{name} {state}")]
    Rollout {
        /// Workload kind.
        kind: WorkloadKind,
        /// Workload name.
        name: String,
        /// What went wrong.
        state: String,
    },
}

fn api_error(verb: &str, resource: &str, namespace: &str, e: kube::Error) -> ClusterError {
    if let kube::Error::Api(status) = &e
        && status.code == 403
    {
        return ClusterError::Forbidden {
            verb: verb.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            message: status.message.clone(),
        };
    }
    ClusterError::Api {
        verb: verb.into(),
        resource: resource.into(),
        namespace: namespace.into(),
        source: e,
    }
}

/// What the read path collects from the namespace. Secret data is used only by the audit and is
/// never serialized into a report.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// `argocd-repo-server-mtls`, when it exists and reading Secrets is allowed.
    pub mtls_secret: Option<Secret>,
    /// Whether the Secret was read (false when the user did not allow it).
    pub secret_read: bool,
    /// `argocd-cmd-params-cm`.
    pub cmd_params: Option<ConfigMap>,
    /// Workloads mounting `argocd-repo-server-mtls*`.
    pub workloads: Vec<MtlsWorkload>,
    /// Repo-server pods (one per replica).
    pub repo_server_pods: Vec<PodFacts>,
}

/// The facts of a repo-server pod the report records.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PodFacts {
    /// Pod name.
    pub name: String,
    /// Ready condition.
    pub ready: bool,
    /// Sum of container restart counts.
    pub restarts: i32,
    /// Image digests of the containers (`imageID`).
    pub image_ids: Vec<String>,
}

fn pod_facts(pod: &Pod) -> PodFacts {
    let status = pod.status.as_ref();
    PodFacts {
        name: pod.metadata.name.clone().unwrap_or_default(),
        ready: status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
        restarts: status
            .and_then(|s| s.container_statuses.as_ref())
            .map(|cs| cs.iter().map(|c| c.restart_count).sum())
            .unwrap_or(0),
        image_ids: status
            .and_then(|s| s.container_statuses.as_ref())
            .map(|cs| cs.iter().map(|c| c.image_id.clone()).collect())
            .unwrap_or_default(),
    }
}

/// Reads everything the audit needs. Only GET requests (get and list).
pub async fn read_snapshot(
    client: &Client,
    namespace: &str,
    read_secret: bool,
) -> Result<Snapshot, ClusterError> {
    let mut snap = Snapshot::default();
    if read_secret {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
        snap.mtls_secret = secrets
            .get_opt(MTLS_SECRET)
            .await
            .map_err(|e| api_error("get", "secrets", namespace, e))?;
        snap.secret_read = true;
    }
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    snap.cmd_params = cms
        .get_opt("argocd-cmd-params-cm")
        .await
        .map_err(|e| api_error("get", "configmaps", namespace, e))?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let deployments = deployments
        .list(&ListParams::default())
        .await
        .map_err(|e| api_error("list", "deployments.apps", namespace, e))?;
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    let statefulsets = statefulsets
        .list(&ListParams::default())
        .await
        .map_err(|e| api_error("list", "statefulsets.apps", namespace, e))?;
    snap.workloads = discover_mtls_workloads(&deployments.items, &statefulsets.items);
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let repo = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=argocd-repo-server"))
        .await
        .map_err(|e| api_error("list", "pods", namespace, e))?;
    snap.repo_server_pods = repo.items.iter().map(pod_facts).collect();
    Ok(snap)
}

/// The annotation `kubectl rollout restart` sets on the pod template.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// The strategic-merge patch `kubectl rollout restart` sends, for Deployments and StatefulSets alike.
pub fn restart_patch(at: time::OffsetDateTime) -> serde_json::Value {
    let stamp = at
        .replace_nanosecond(0)
        .unwrap_or(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    serde_json::json!({ "spec": { "template": { "metadata": { "annotations": { RESTARTED_AT: stamp } } } } })
}

/// Restarts one workload the way `kubectl rollout restart` does.
pub async fn restart(
    client: &Client,
    namespace: &str,
    w: &MtlsWorkload,
    at: time::OffsetDateTime,
) -> Result<(), ClusterError> {
    let patch = Patch::Strategic(restart_patch(at));
    let params = PatchParams::default();
    match w.kind {
        WorkloadKind::Deployment => {
            let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
            api.patch(&w.name, &params, &patch)
                .await
                .map(|_| ())
                .map_err(|e| api_error("patch", "deployments.apps", namespace, e))
        }
        WorkloadKind::StatefulSet => {
            let api: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
            api.patch(&w.name, &params, &patch)
                .await
                .map(|_| ())
                .map_err(|e| api_error("patch", "statefulsets.apps", namespace, e))
        }
    }
}

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutState {
    /// Every replica runs the new template and is available.
    Complete,
    /// Still going, with a progress message like kubectl's.
    Progressing(String),
    /// It will not finish by itself.
    Failed(String),
}

/// Rollout state of a Deployment, as `kubectl rollout status` judges it.
pub fn deployment_rollout(d: &Deployment) -> RolloutState {
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(status) = &d.status else {
        return RolloutState::Progressing("no status yet".into());
    };
    if status.observed_generation.unwrap_or(0) < generation {
        return RolloutState::Progressing(
            "waiting for the controller to observe the new generation".into(),
        );
    }
    if let Some(c) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing")
        && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    {
        return RolloutState::Failed(format!(
            "exceeded its progress deadline: {}",
            c.message.clone().unwrap_or_default()
        ));
    }
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < want {
        RolloutState::Progressing(format!(
            "{updated} of {want} updated replicas are available"
        ))
    } else if total > updated {
        RolloutState::Progressing(format!(
            "{} old replicas are pending termination",
            total - updated
        ))
    } else if available < updated {
        RolloutState::Progressing(format!(
            "{available} of {updated} updated replicas are available"
        ))
    } else {
        RolloutState::Complete
    }
}

/// Rollout state of a StatefulSet (RollingUpdate strategy), as `kubectl rollout status` judges it.
pub fn statefulset_rollout(s: &StatefulSet) -> RolloutState {
    let generation = s.metadata.generation.unwrap_or(0);
    let Some(status) = &s.status else {
        return RolloutState::Progressing("no status yet".into());
    };
    if status.observed_generation.unwrap_or(0) < generation {
        return RolloutState::Progressing(
            "waiting for the controller to observe the new generation".into(),
        );
    }
    let want = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    if ready < want {
        return RolloutState::Progressing(format!("{ready} of {want} pods are ready"));
    }
    if status.update_revision.is_some() && status.update_revision != status.current_revision {
        return RolloutState::Progressing(format!("{updated} of {want} pods run the new revision"));
    }
    RolloutState::Complete
}

/// Polls until the workload's rollout completes, fails, or `timeout` passes; reports progress.
pub async fn wait_rollout(
    client: &Client,
    namespace: &str,
    w: &MtlsWorkload,
    timeout: Duration,
    poll: Duration,
    mut progress: impl FnMut(&str),
) -> Result<(), ClusterError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let state = match w.kind {
            WorkloadKind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
                deployment_rollout(
                    &api.get(&w.name)
                        .await
                        .map_err(|e| api_error("get", "deployments.apps", namespace, e))?,
                )
            }
            WorkloadKind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
                statefulset_rollout(
                    &api.get(&w.name)
                        .await
                        .map_err(|e| api_error("get", "statefulsets.apps", namespace, e))?,
                )
            }
        };
        match state {
            RolloutState::Complete => return Ok(()),
            RolloutState::Failed(why) => {
                return Err(ClusterError::Rollout {
                    kind: w.kind,
                    name: w.name.clone(),
                    state: why,
                });
            }
            RolloutState::Progressing(msg) => {
                if msg != last {
                    progress(&format!("{:?}/{}: {msg}", w.kind, w.name));
                    last = msg;
                }
            }
        }
        if tokio::time::Instant::now() + poll > deadline {
            return Err(ClusterError::Rollout {
                kind: w.kind,
                name: w.name.clone(),
                state: format!(
                    "did not finish within {} s (last: {last})",
                    timeout.as_secs()
                ),
            });
        }
        tokio::time::sleep(poll).await;
    }
}

//! The Kubernetes subject of a report: the cluster, its repo-server pods and the workloads that
//! mount the mTLS Secrets, as facts (no Secret data). The kubernetes module fills them; the
//! report only reads them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The facts of a repo-server pod the report records.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct PodFacts {
    /// Pod name.
    pub name: String,
    /// Ready condition.
    pub ready: bool,
    /// Sum of container restart counts.
    pub restarts: i32,
    /// Image digests of the containers (`imageID`).
    pub image_ids: Vec<String>,
    /// Whether every container is running (a crash-looping or pulling pod cannot be probed).
    pub running: bool,
    /// What the containers that do not run are doing (`waiting: CrashLoopBackOff`), and how the
    /// last run of each ended (`last exit 1 (Error)`); empty when all run.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub state: String,
    /// Not Ready, and a container whose last run failed has been restarted: a crash loop
    /// caught in one of its brief runs. It cannot serve, and is judged as a stopped replica.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub crash_looping: bool,
    /// `GRPC_GO_LOG_SEVERITY_LEVEL` as the pod spec sets it on its containers (unset: `None`):
    /// whether grpc-go may log refused handshakes at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_log_level: Option<String>,
    /// `status.podIP`, once the pod has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// A service-mesh proxy running in the pod (`istio-proxy`, `linkerd-proxy`), as a container
    /// or a native sidecar: a connection to the pod IP would pass through it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mesh_proxy: Option<String>,
}

/// A workload discovery found, as the report records it: what it is, how its role was found, and
/// the `argocd-repo-server-mtls*` Secrets its pod template mounts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WorkloadFacts {
    /// `Deployment` or `StatefulSet`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Its role (`repo-server`, `application-controller`, ...), when that could be found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// How the role was found (`command`, `name-label`, `component-label`, `workload-name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found_by: Option<String>,
    /// The container that runs the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Secret name -> projected keys (empty = all keys).
    pub secrets: BTreeMap<String, Vec<String>>,
    /// What in its pod template enrols it in a service mesh.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mesh: Vec<String>,
    /// Desired replicas (`spec.replicas`; unset means 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Who made it (`Helm release argocd (chart argo-cd-10.2.3)`), read from its metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installer: Option<String>,
}

/// Kubernetes facts for the report (no Secret data).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(default)]
pub struct KubeFacts {
    /// kubeconfig context, or the kind cluster.
    pub cluster: String,
    /// API server `gitVersion`.
    pub server_version: String,
    /// Namespace.
    pub namespace: String,
    /// Repo-server pods with readiness, restarts and image digests.
    pub repo_server_pods: Vec<PodFacts>,
    /// The workloads discovery found (each with its role, container and the
    /// `argocd-repo-server-mtls*` Secrets it mounts, with their projected keys).
    pub mtls_workloads: Vec<WorkloadFacts>,
    /// What the harness changed (empty in read-only mode).
    pub changes: Vec<String>,
    /// Tools and manifest, for the kind target.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub provenance: BTreeMap<String, String>,
    /// The kind cluster this run created or reused, if any.
    pub run_cluster_name: Option<String>,
}

//! The Kubernetes target as the checks see it: every repo-server replica as an [`Endpoint`] (gRPC
//! and health ports port-forwarded through the API server, the pod's log as the log source), and
//! the namespace and pod state as [`Finding`]s. Nothing here judges a handshake; reads are GET only.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams};
use serde::Serialize;

use super::audit::{self, Finding, MtlsWorkload, WorkloadKind};
use super::cluster::{self, ClusterError, PodFacts, Snapshot};
use super::forward::{self, LocalForward};
use crate::endpoint::{Endpoint, LogSource, PodLog, Protocol};
use crate::suite::kube_ids as ids;

/// The client components whose logs show whether they present their certificate.
pub const CLIENT_COMPONENTS: [&str; 4] = [
    "argocd-server",
    "argocd-application-controller",
    "argocd-applicationset-controller",
    "argocd-notifications-controller",
];

/// The repo-server's gRPC and health ports.
pub const GRPC_PORT: u16 = 8081;
/// See [`GRPC_PORT`].
pub const HEALTH_PORT: u16 = 8084;

/// A namespace the harness works in, through one client.
#[derive(Clone)]
pub struct Session {
    /// The API client.
    pub client: Client,
    /// Namespace Argo CD runs in.
    pub namespace: String,
}

/// One repo-server replica, reachable on loopback.
#[derive(Debug)]
pub struct Replica {
    /// The pod as it was when the forwards opened.
    pub pod: PodFacts,
    /// Forward to 8081.
    pub grpc: LocalForward,
    /// Forward to 8084.
    pub health: LocalForward,
}

/// Kubernetes facts for the report (no Secret data).
#[derive(Debug, Clone, Serialize, Default)]
pub struct KubeFacts {
    /// kubeconfig context, or the kind cluster.
    pub cluster: String,
    /// API server `gitVersion`.
    pub server_version: String,
    /// Namespace.
    pub namespace: String,
    /// Repo-server pods with readiness, restarts and image digests.
    pub repo_server_pods: Vec<PodFacts>,
    /// Workloads mounting `argocd-repo-server-mtls*`, with their projected keys.
    pub mtls_workloads: Vec<MtlsWorkload>,
    /// What the harness changed (empty in read-only mode).
    pub changes: Vec<String>,
    /// Tools and manifest, for the kind target.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub provenance: BTreeMap<String, String>,
    /// The kind cluster this run created or reused, if any.
    pub run_cluster_name: Option<String>,
}

/// Time since `since` (at least one second): the window of log lines and events to read.
pub fn window_since(since: time::OffsetDateTime) -> Duration {
    let secs = (time::OffsetDateTime::now_utc() - since)
        .whole_seconds()
        .max(1);
    Duration::from_secs(secs as u64)
}

impl Session {
    /// Every Deployment and StatefulSet in the namespace (to wait for an install to settle).
    pub async fn workloads(&self) -> Result<Vec<MtlsWorkload>, ClusterError> {
        let ns = &self.namespace;
        let forbidden = |verb: &str, resource: &str, e| cluster::api_error(verb, resource, ns, e);
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let statefulsets: Api<StatefulSet> = Api::namespaced(self.client.clone(), ns);
        let mut out: Vec<MtlsWorkload> = deployments
            .list(&ListParams::default())
            .await
            .map_err(|e| forbidden("list", "deployments.apps", e))?
            .items
            .into_iter()
            .map(|d| (WorkloadKind::Deployment, d.metadata.name))
            .chain(
                statefulsets
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| forbidden("list", "statefulsets.apps", e))?
                    .items
                    .into_iter()
                    .map(|s| (WorkloadKind::StatefulSet, s.metadata.name)),
            )
            .filter_map(|(kind, name)| {
                name.map(|name| MtlsWorkload {
                    kind,
                    name,
                    secrets: BTreeMap::new(),
                })
            })
            .collect();
        out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        Ok(out)
    }

    /// Waits for each workload's rollout, one after another, each within `timeout`.
    pub async fn wait_all(
        &self,
        workloads: &[MtlsWorkload],
        timeout: Duration,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), ClusterError> {
        for w in workloads {
            cluster::wait_rollout(
                &self.client,
                &self.namespace,
                w,
                timeout,
                Duration::from_secs(2),
                &mut *progress,
            )
            .await?;
            progress(&format!("{:?}/{} is available", w.kind, w.name));
        }
        Ok(())
    }

    /// Opens port-forwards to 8081 and 8084 of every repo-server pod.
    pub async fn open_replicas(&self) -> Result<(Vec<Replica>, Vec<PodFacts>), ClusterError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut out = Vec::new();
        let mut down = Vec::new();
        for pod in cluster::repo_server_pods(&self.client, &self.namespace).await? {
            if !pod.running {
                down.push(pod);
                continue;
            }
            let io = |e: std::io::Error| ClusterError::Timeout {
                what: format!(
                    "a local listener for the port-forward to pod/{}: {e}",
                    pod.name
                ),
                seconds: 0,
            };
            let grpc = forward::to_pod(pods.clone(), &pod.name, GRPC_PORT)
                .await
                .map_err(io)?;
            let health = forward::to_pod(pods.clone(), &pod.name, HEALTH_PORT)
                .await
                .map_err(io)?;
            out.push(Replica { pod, grpc, health });
        }
        if out.is_empty() && down.is_empty() {
            return Err(ClusterError::Rollout {
                kind: WorkloadKind::Deployment,
                name: "argocd-repo-server".into(),
                state: format!(
                    "has no pods labelled app.kubernetes.io/name=argocd-repo-server in `{}`",
                    self.namespace
                ),
            });
        }
        Ok((out, down))
    }

    /// Why a repo-server pod whose containers do not run cannot serve, in words an operator can
    /// act on: the containers' state, the last lines its previous run logged, and for a known
    /// startup failure what to change.
    pub async fn not_running(&self, pod: &PodFacts) -> Finding {
        let mut words = format!(
            "pod/{} cannot serve: {}",
            pod.name,
            if pod.state.is_empty() {
                "its containers are not running"
            } else {
                &pod.state
            }
        );
        // The newest container's log is the crashed run's while the pod waits to restart or
        // has just exited; the previous one's when a new run has started meanwhile.
        let mut said = None;
        for previous in [false, true] {
            if let Ok(lines) = cluster::log_tail(
                &self.client,
                &self.namespace,
                &pod.name,
                "argocd-repo-server",
                previous,
                // cobra prints its usage after the error: the error line is ~50 lines from the end.
                200,
            )
            .await
                && let Some(last) = audit::last_error_line(&lines)
            {
                said = Some(last);
                break;
            }
        }
        if let Some(last) = said {
            words.push_str(&format!("; its last run logged: {last}"));
            if let Some(fix) = audit::startup_failure_fix(&last) {
                words.push_str(&format!(". {fix}"));
            }
        }
        Finding::fail(ids::POD_READY, words)
    }

    /// The endpoint the checks probe for `replica`: the forwards, and the pod's log.
    pub fn endpoint(&self, replica: &Replica, server_name: &str) -> Endpoint {
        let logs = Some(LogSource::Pod(PodLog {
            client: self.client.clone(),
            namespace: self.namespace.clone(),
            pod: replica.pod.name.clone(),
            grpc_log_level: replica.pod.grpc_log_level.clone(),
        }));
        Endpoint {
            label: replica.pod.name.clone(),
            addr: replica.grpc.addr,
            server_name: server_name.to_owned(),
            protocol: Protocol::Grpc,
            health: Some(replica.health.addr.to_string()),
            logs,
            relays: vec![replica.grpc.health(), replica.health.health()],
        }
    }

    /// Pod-level findings after the checks: still Ready, no restarts since `before`, no probe
    /// failures since `since`, no relay failures.
    pub async fn replica_findings(
        &self,
        replica: &Replica,
        since: time::OffsetDateTime,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        let name = &replica.pod.name;
        let now = cluster::repo_server_pods(&self.client, &self.namespace)
            .await
            .map(|pods| pods.into_iter().find(|p| &p.name == name));
        match now {
            Ok(Some(now)) => {
                out.push(if now.ready {
                    Finding::pass(ids::POD_READY, format!("pod/{name} is Ready"))
                } else {
                    Finding::fail(ids::POD_READY, format!("pod/{name} is not Ready"))
                });
                out.push(if now.restarts == replica.pod.restarts {
                    Finding::pass(
                        ids::POD_RESTARTS_UNCHANGED,
                        format!("pod/{name}: {} restarts before and after", now.restarts),
                    )
                } else {
                    Finding::fail(
                        ids::POD_RESTARTS_UNCHANGED,
                        format!(
                            "pod/{name} restarted during the run ({} -> {} restarts): a failing liveness probe (GET /healthz?full=true) shows up exactly like this",
                            replica.pod.restarts, now.restarts
                        ),
                    )
                });
            }
            Ok(None) => out.push(Finding::fail(
                ids::POD_READY,
                format!("pod/{name} is gone: it was replaced during the run"),
            )),
            Err(e) => out.push(Finding::inconclusive(ids::POD_READY, e.to_string())),
        }
        match cluster::probe_failures(&self.client, &self.namespace, name, since).await {
            Ok(events) if events.is_empty() => out.push(Finding::pass(
                ids::POD_NO_PROBE_FAILURES,
                format!("pod/{name}: no Unhealthy events since the rollout"),
            )),
            Ok(events) => out.push(Finding::fail(
                ids::POD_NO_PROBE_FAILURES,
                format!("pod/{name}: {}", events.join("; ")),
            )),
            Err(e) => out.push(Finding::inconclusive(
                ids::POD_NO_PROBE_FAILURES,
                e.to_string(),
            )),
        }
        for forward in [&replica.grpc, &replica.health] {
            out.push(match forward.failure_summary() {
                None => Finding::pass(
                    ids::PORT_FORWARD,
                    match forward.peer_closed() {
                        0 => format!("{}: every connection was relayed", forward.label),
                        n => format!(
                            "{}: every connection was relayed ({n} closed by the server under the relay, as refusals are)",
                            forward.label
                        ),
                    },
                ),
                Some(failed) => Finding::inconclusive(
                    ids::PORT_FORWARD,
                    format!("{failed}; a refusal seen through it may be the relay's"),
                ),
            });
        }
        out
    }

    /// Namespace-level findings: the Secret audit (when it was read), mounts, server verification,
    /// and each client component's log (its running container's whole log: the certificate is
    /// loaded at startup).
    pub async fn namespace_findings(&self, snapshot: &Snapshot) -> Vec<Finding> {
        let mut out = Vec::new();
        if snapshot.secret_read {
            out.extend(audit::audit_mtls_secret(snapshot.mtls_secret.as_ref()));
        }
        if let Some(secret) = &snapshot.mtls_secret {
            out.extend(audit::audit_restarts(
                secret,
                &snapshot.workloads,
                &snapshot.mounting_pods,
                &self.namespace,
            ));
        }
        out.extend(audit::audit_mounts(&snapshot.workloads));
        out.push(audit::audit_repo_server_tls(snapshot.cmd_params.as_ref()));
        out.extend(audit::audit_server_verification(
            snapshot.cmd_params.as_ref(),
        ));
        match cluster::application_conditions(&self.client, &self.namespace).await {
            Ok(Some((applications, conditions))) => {
                out.push(audit::audit_repo_server_calls(applications, &conditions))
            }
            Ok(None) => {}
            Err(e) => out.push(Finding::inconclusive(
                &format!(
                    "{}/argocd-application-controller",
                    ids::CLIENT_REACHES_REPO_SERVER
                ),
                e.to_string(),
            )),
        }
        for component in CLIENT_COMPONENTS {
            let pods = match cluster::component_pods(&self.client, &self.namespace, component).await
            {
                Ok(p) => p,
                Err(e) => {
                    out.push(Finding::inconclusive(
                        &format!("{}/{}", ids::CLIENT_CERT_LOADED, component),
                        e.to_string(),
                    ));
                    continue;
                }
            };
            let mut lines = Vec::new();
            let mut failed = None;
            for pod in pods.iter().filter_map(|p| p.metadata.name.as_deref()) {
                match cluster::pod_log(&self.client, &self.namespace, pod, None, None).await {
                    Ok(l) => lines.extend(l),
                    Err(e) => failed = Some(e.to_string()),
                }
            }
            match failed {
                Some(e) => out.push(Finding::inconclusive(
                    &format!("{}/{}", ids::CLIENT_CERT_LOADED, component),
                    e,
                )),
                None if pods.is_empty() => {}
                None => out.extend(audit::audit_client_log(component, &lines)),
            }
        }
        out
    }
}

//! The read path: only ever GET (and the watch-free polling of rollouts). Cluster mode is read-only
//! by default, and a test fails if any other verb leaves it.
//!
//! Over 500 lines on purpose: every request the harness reads with is in this one file, so the
//! read-only guarantee can be checked by reading one file.

use std::collections::BTreeMap;
use std::time::Duration;

/// The facts of a repo-server pod the report records (the report owns the type).
pub use crate::report::PodFacts;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::Client;
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};

use crate::kubernetes::workloads::{Role, Workload, WorkloadKind, discover};
use crate::pki::secrets::MTLS_SECRET;

use super::{ClusterError, api_error};

/// What the read path collects from the namespace. Secret data is used only by the audit and is
/// never serialized into a report.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// `argocd-repo-server-mtls`, when it exists and reading Secrets is allowed.
    pub mtls_secret: Option<Secret>,
    /// Every Secret a component's mTLS file comes from (and `argocd-repo-server-mtls`), by name,
    /// those that exist, when reading Secrets is allowed.
    pub secrets: BTreeMap<String, Secret>,
    /// Secrets a component's file comes from that RBAC would not let this run read, with why.
    pub unreadable_secrets: BTreeMap<String, String>,
    /// Whether the Secret was read (false when not asked to, or when RBAC refused).
    pub secret_read: bool,
    /// Why the Secret could not be read, when RBAC refused it.
    pub secret_unreadable: Option<String>,
    /// `argocd-cmd-params-cm`.
    pub cmd_params: Option<ConfigMap>,
    /// The workloads discovery found: each role's, and any other mounting `argocd-repo-server-mtls*`.
    pub workloads: Vec<Workload>,
    /// Repo-server pods (one per replica).
    pub repo_server_pods: Vec<PodFacts>,
    /// For each workload in `workloads` (by name), its pods and when their containers started.
    pub mounting_pods: BTreeMap<String, Vec<PodStart>>,
}

/// When a pod's containers last started: the moment it last read its mounted files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodStart {
    /// Pod name.
    pub pod: String,
    /// The latest `startedAt` of its running containers; `None` when none runs.
    pub started: Option<time::OffsetDateTime>,
    /// Mesh proxies running in it (`istio-proxy`, `linkerd-proxy`: injected at admission, so
    /// only the pod shows them, not its template).
    pub mesh_proxies: Vec<String>,
}

fn pod_start(pod: &Pod) -> PodStart {
    let started = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| {
            cs.iter()
                .filter_map(|c| c.state.as_ref()?.running.as_ref()?.started_at.as_ref())
                .map(|t| t.0)
                .max()
        })
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.as_second()).ok());
    let spec = pod.spec.as_ref();
    PodStart {
        pod: pod.metadata.name.clone().unwrap_or_default(),
        started,
        mesh_proxies: mesh_proxies(spec),
    }
}

/// The service-mesh proxies (`istio-proxy`, `linkerd-proxy`) a pod runs, as containers or as
/// native sidecars (init containers).
fn mesh_proxies(spec: Option<&k8s_openapi::api::core::v1::PodSpec>) -> Vec<String> {
    spec.iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .map(|c| c.name.clone())
        .filter(|n| crate::kubernetes::workloads::MESH_PROXIES.contains(&n.as_str()))
        .collect()
}

/// The live pods a workload's selector matches (terminating ones excluded).
async fn selected_pods(
    client: &Client,
    namespace: &str,
    selector: Option<&BTreeMap<String, String>>,
) -> Result<Vec<Pod>, ClusterError> {
    let Some(labels) = selector.filter(|l| !l.is_empty()) else {
        return Ok(vec![]);
    };
    let selector = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    live_pods(client, namespace, &selector).await
}

/// The pods `selector` matches that are not being deleted, by name. A pod being deleted (a
/// rollout's old replica, still Ready while it terminates) is not a replica to judge: it is gone
/// in seconds and nothing will route to it.
async fn live_pods(
    client: &Client,
    namespace: &str,
    selector: &str,
) -> Result<Vec<Pod>, ClusterError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut list = pods
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| api_error("list", "pods", namespace, e))?
        .items;
    list.retain(|p| p.metadata.deletion_timestamp.is_none());
    list.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(list)
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
        running: status
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| {
                !cs.is_empty()
                    && cs
                        .iter()
                        .all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
            }),
        crash_looping: !status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            && status
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c.restart_count > 0
                            && c.last_state
                                .as_ref()
                                .and_then(|s| s.terminated.as_ref())
                                .is_some_and(|t| t.exit_code != 0)
                    })
                }),
        state: container_state_words(pod),
        grpc_log_level: pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .flat_map(|c| c.env.iter().flatten())
            .find(|e| e.name == "GRPC_GO_LOG_SEVERITY_LEVEL")
            .and_then(|e| e.value.clone()),
        ip: status.and_then(|s| s.pod_ip.clone()),
        mesh_proxy: mesh_proxies(pod.spec.as_ref()).into_iter().next(),
    }
}

fn container_state_words(pod: &Pod) -> String {
    let mut words = Vec::new();
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    for c in statuses.into_iter().flatten() {
        let failed_before = c
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some_and(|t| t.exit_code != 0);
        if c.state.as_ref().is_some_and(|s| s.running.is_some()) {
            if failed_before && c.restart_count > 0 && !c.ready {
                let t = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
                words.push(format!(
                    "container {}: running again after {} restarts, not ready; its last run exited {} ({})",
                    c.name,
                    c.restart_count,
                    t.map(|t| t.exit_code).unwrap_or_default(),
                    t.and_then(|t| t.reason.as_deref()).unwrap_or("no reason given")
                ));
            }
            continue;
        }
        let mut w = format!("container {}", c.name);
        if let Some(waiting) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            w.push_str(&format!(
                ": waiting ({})",
                waiting.reason.as_deref().unwrap_or("no reason given")
            ));
        }
        if let Some(t) = c.state.as_ref().and_then(|s| s.terminated.as_ref()) {
            w.push_str(&format!(
                ": exited {} ({})",
                t.exit_code,
                t.reason.as_deref().unwrap_or("no reason given")
            ));
        }
        if let Some(t) = c.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
            w.push_str(&format!(
                "; its last run exited {} ({})",
                t.exit_code,
                t.reason.as_deref().unwrap_or("no reason given")
            ));
        }
        words.push(w);
    }
    if words.is_empty() && statuses.is_none() {
        words.push(match unschedulable(pod) {
            Some(why) => format!("it cannot be scheduled: {why}"),
            None => format!(
                "no container has started (phase {})",
                pod.status
                    .as_ref()
                    .and_then(|s| s.phase.as_deref())
                    .unwrap_or("unknown")
            ),
        });
    }
    words.join("; ")
}

/// The scheduler's reason when it could not place `pod` (its `PodScheduled` condition is False
/// with reason `Unschedulable`, e.g. "0/1 nodes are available: 1 node(s) didn't match pod
/// anti-affinity rules").
pub fn unschedulable(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .filter(|c| c.reason.as_deref() == Some("Unschedulable"))
        .map(|c| {
            c.message
                .clone()
                .unwrap_or_else(|| "the scheduler gave no message".into())
        })
}

/// Discovery: every Deployment and StatefulSet of the namespace, classified by role
/// ([`discover`]). Every later step uses what this found, never an upstream name.
pub async fn read_workloads(
    client: &Client,
    namespace: &str,
) -> Result<Vec<Workload>, ClusterError> {
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
    Ok(discover(&deployments.items, &statefulsets.items))
}

/// Reads everything the audit needs. Only GET requests (get and list).
pub async fn read_snapshot(
    client: &Client,
    namespace: &str,
    read_secret: bool,
) -> Result<Snapshot, ClusterError> {
    let mut snap = Snapshot::default();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    snap.cmd_params = cms
        .get_opt("argocd-cmd-params-cm")
        .await
        .map_err(|e| api_error("get", "configmaps", namespace, e))?;
    snap.workloads = read_workloads(client, namespace).await?;
    if read_secret {
        // The Secret the manifests name, and every Secret a component's mTLS file comes from
        // (Option B's per-component Secrets, a cert-manager Secret behind `items`).
        let mut names = std::collections::BTreeSet::from([
            MTLS_SECRET.to_owned(),
            // Its `ca.crt` is the server CA when nothing else gives one.
            crate::pki::secrets::TLS_SECRET.to_owned(),
        ]);
        for w in &snap.workloads {
            for r in w.mtls_reads(snap.cmd_params.as_ref()) {
                if let crate::kubernetes::workloads::FileSource::SecretKey { secret, .. } = r.source
                {
                    names.insert(secret);
                }
            }
        }
        let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
        for name in names {
            // Reading Secrets is the one permission an auditor's role may lack; the rest still runs.
            match secrets
                .get_opt(&name)
                .await
                .map_err(|e| api_error("get", "secrets", namespace, e))
            {
                Ok(secret) => {
                    snap.secret_read = true;
                    if let Some(secret) = secret {
                        snap.secrets.insert(name, secret);
                    }
                }
                // The shared Secret refused: the Secret checks are skipped with the reason. Another
                // one refused (a Role naming only the shared Secret): that one is unknown, said
                // where it matters.
                Err(e @ ClusterError::Forbidden { .. }) if name == MTLS_SECRET => {
                    snap.secret_read = false;
                    snap.secret_unreadable = Some(e.to_string());
                    break;
                }
                Err(e @ ClusterError::Forbidden { .. }) => {
                    snap.unreadable_secrets.insert(name, e.to_string());
                }
                Err(e) => return Err(e),
            }
        }
        snap.mtls_secret = snap.secrets.get(MTLS_SECRET).cloned();
    }
    for w in &snap.workloads {
        let pods = selected_pods(client, namespace, Some(&w.selector)).await?;
        snap.mounting_pods
            .insert(w.name.clone(), pods.iter().map(pod_start).collect());
    }
    snap.repo_server_pods = repo_server_pods(client, namespace, &snap.workloads).await?;
    Ok(snap)
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
    w: &Workload,
    timeout: Duration,
    poll: Duration,
    mut progress: impl FnMut(&str),
) -> Result<(), ClusterError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::new();
    // A pod the scheduler keeps refusing will not be placed by waiting: after 15 polls (30 s at
    // the runs' 2 s) the rollout is reported failed with the scheduler's reason instead of
    // running into `timeout` (10 minutes by default).
    let give_up_unschedulable = (poll * 15).min(timeout);
    let mut unschedulable_since: Option<tokio::time::Instant> = None;
    let mut pods_said = String::new();
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
                let pods = selected_pods(client, namespace, Some(&w.selector)).await?;
                // What the pods say (an image that cannot be pulled, a crash loop) goes into the
                // progress as it changes and into the message if the wait runs out.
                let said = pods
                    .iter()
                    .filter_map(|p| {
                        let words = container_state_words(p);
                        let name = p.metadata.name.as_deref()?;
                        (!words.is_empty()).then(|| format!("pod {name}: {words}"))
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                if !said.is_empty() && said != pods_said {
                    progress(&format!("{:?}/{}: {said}", w.kind, w.name));
                }
                pods_said = said;
                match pods.iter().find_map(unschedulable) {
                    Some(why) => {
                        let since =
                            *unschedulable_since.get_or_insert_with(tokio::time::Instant::now);
                        if since.elapsed() >= give_up_unschedulable {
                            return Err(ClusterError::Rollout {
                                kind: w.kind,
                                name: w.name.clone(),
                                state: format!(
                                    "cannot finish: a pod cannot be scheduled ({why}); waiting does not change that (e.g. required anti-affinity with fewer nodes than replicas)"
                                ),
                            });
                        }
                    }
                    None => unschedulable_since = None,
                }
            }
        }
        if tokio::time::Instant::now() + poll > deadline {
            return Err(ClusterError::Rollout {
                kind: w.kind,
                name: w.name.clone(),
                state: format!(
                    "did not finish within {} s (last: {last}{})",
                    timeout.as_secs(),
                    if pods_said.is_empty() {
                        String::new()
                    } else {
                        format!("; {pods_said}")
                    }
                ),
            });
        }
        tokio::time::sleep(poll).await;
    }
}

/// The live pods of every workload discovery found with `role` (their selectors' union), by
/// name. Pods a selector matches but no workload owns (a hand-made replica behind the same labels)
/// are included: the Service routes to them too.
pub async fn role_pods(
    client: &Client,
    namespace: &str,
    workloads: &[Workload],
    role: Role,
) -> Result<Vec<Pod>, ClusterError> {
    let mut out: Vec<Pod> = Vec::new();
    for w in workloads.iter().filter(|w| w.role == Some(role)) {
        for pod in selected_pods(client, namespace, Some(&w.selector)).await? {
            if !out.iter().any(|p| p.metadata.name == pod.metadata.name) {
                out.push(pod);
            }
        }
    }
    out.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(out)
}

/// The facts of each repo-server pod (of the repo-server workloads discovery found).
pub async fn repo_server_pods(
    client: &Client,
    namespace: &str,
    workloads: &[Workload],
) -> Result<Vec<PodFacts>, ClusterError> {
    Ok(role_pods(client, namespace, workloads, Role::RepoServer)
        .await?
        .iter()
        .map(pod_facts)
        .collect())
}

/// A pod's log lines from its first container (or `container`): everything the running
/// container logged since it started, its startup lines included.
pub async fn pod_log(
    client: &Client,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
) -> Result<Vec<String>, ClusterError> {
    let params = kube::api::LogParams {
        container: container.map(str::to_owned),
        ..Default::default()
    };
    log_lines(client, namespace, pod, &params).await
}

async fn log_lines(
    client: &Client,
    namespace: &str,
    pod: &str,
    params: &kube::api::LogParams,
) -> Result<Vec<String>, ClusterError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let text = pods
        .logs(pod, params)
        .await
        .map_err(|e| api_error("get", "pods/log", namespace, e))?;
    Ok(text.lines().map(str::to_owned).collect())
}

/// One condition an Application reports (where the application controller says a call to the
/// repo-server failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCondition {
    /// The Application.
    pub application: String,
    /// `ComparisonError`, `SyncError`, ...
    pub kind: String,
    /// The controller's message.
    pub message: String,
}

/// The conditions of every Application in `namespace`, or `None` when Argo CD's Application
/// resource is not installed. GET only.
pub async fn application_conditions(
    client: &Client,
    namespace: &str,
) -> Result<Option<(usize, Vec<AppCondition>)>, ClusterError> {
    use kube::api::DynamicObject;
    use kube::core::GroupVersionKind;
    use kube::discovery::ApiResource;
    let gvk = GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "applications");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let list = match api.list(&ListParams::default()).await {
        Ok(list) => list,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(None),
        Err(e) => return Err(api_error("list", "applications.argoproj.io", namespace, e)),
    };
    let mut out = Vec::new();
    for app in &list.items {
        let name = app.metadata.name.clone().unwrap_or_default();
        for c in app.data["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
        {
            out.push(AppCondition {
                application: name.clone(),
                kind: c["type"].as_str().unwrap_or_default().to_owned(),
                message: c["message"].as_str().unwrap_or_default().to_owned(),
            });
        }
    }
    Ok(Some((list.items.len(), out)))
}

/// The last `lines` lines of `container`'s newest run, or with `previous` of the run before it:
/// why a crash-looping container stopped.
pub async fn log_tail(
    client: &Client,
    namespace: &str,
    pod: &str,
    container: &str,
    previous: bool,
    lines: i64,
) -> Result<Vec<String>, ClusterError> {
    let params = kube::api::LogParams {
        container: Some(container.to_owned()),
        previous,
        tail_lines: Some(lines),
        ..Default::default()
    };
    log_lines(client, namespace, pod, &params).await
}

/// Messages of probe-failure events (`Unhealthy`) of `pod` that happened at or after `since`.
pub async fn probe_failures(
    client: &Client,
    namespace: &str,
    pod: &str,
    since: time::OffsetDateTime,
) -> Result<Vec<String>, ClusterError> {
    use k8s_openapi::api::core::v1::Event;
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let list = events
        .list(&ListParams::default().fields(&format!(
            "involvedObject.kind=Pod,involvedObject.name={pod}"
        )))
        .await
        .map_err(|e| api_error("list", "events", namespace, e))?;
    let since = since.unix_timestamp();
    Ok(list
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some("Unhealthy"))
        .filter(|e| {
            let at = e
                .last_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
                .or_else(|| e.event_time.as_ref().map(|t| t.0.as_second()))
                .or_else(|| e.first_timestamp.as_ref().map(|t| t.0.as_second()));
            at.is_none_or(|at| at >= since)
        })
        .map(|e| {
            format!(
                "{} (x{})",
                e.message.clone().unwrap_or_default().trim(),
                e.count.unwrap_or(1)
            )
        })
        .collect())
}

/// The API server's version (`gitVersion`).
pub async fn server_version(client: &Client) -> Result<String, ClusterError> {
    client
        .apiserver_version()
        .await
        .map(|v| v.git_version)
        .map_err(|e| api_error("get", "/version", "", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crash loop caught in one of its brief runs (running, not Ready, restarted after a
    /// failed run) is no replica to probe; a pod starting normally, or one that restarted after
    /// a clean exit, is.
    #[test]
    fn a_crash_loop_in_a_brief_run_is_not_serving() {
        let pod = |ready: &str, restarts: i32, last_exit: i32| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": { "name": "argocd-repo-server-x" },
                "status": {
                    "conditions": [{ "type": "Ready", "status": ready }],
                    "containerStatuses": [{
                        "name": "argocd-repo-server", "image": "i", "imageID": "d", "ready": ready == "True",
                        "restartCount": restarts,
                        "state": { "running": { "startedAt": "2026-12-03T07:00:00Z" } },
                        "lastState": { "terminated": { "exitCode": last_exit, "reason": "Error" } }
                    }]
                }
            }))
            .unwrap()
        };
        let looping = pod_facts(&pod("False", 3, 1));
        assert!(looping.running && looping.crash_looping);
        assert!(
            looping.state.contains(
                "running again after 3 restarts, not ready; its last run exited 1 (Error)"
            ),
            "{}",
            looping.state
        );
        assert!(
            !pod_facts(&pod("False", 0, 1)).crash_looping,
            "never restarted"
        );
        assert!(!pod_facts(&pod("True", 3, 1)).crash_looping, "ready again");
        assert!(
            !pod_facts(&pod("False", 1, 0)).crash_looping,
            "a clean exit"
        );
    }
}

/// A Service that routes to a role's pods, found by what it selects and where it sends traffic,
/// never by its name (Helm and kustomize rename it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceFacts {
    /// The Service's name.
    pub name: String,
    /// `spec.clusterIP` (`None` for a headless Service).
    pub cluster_ip: Option<String>,
    /// The Service port that reaches the pods' `pod_port`.
    pub port: u16,
    /// The Service port that reaches the health port, when it exposes one.
    pub health_port: Option<u16>,
}

/// The Services in `namespace` whose selector picks `pod` and that forward one of their ports to
/// its `pod_port` (by number, or by the name a container gives that port); by name.
pub async fn services_to(
    client: &Client,
    namespace: &str,
    pod: &Pod,
    pod_port: u16,
    health_port: u16,
) -> Result<Vec<ServiceFacts>, ClusterError> {
    let api: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| api_error("list", "services", namespace, e))?;
    let mut out: Vec<ServiceFacts> = list
        .items
        .iter()
        .filter_map(|s| service_to(s, pod, pod_port, health_port))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `service` as [`ServiceFacts`] when it routes to `pod`'s `pod_port`.
pub fn service_to(
    service: &k8s_openapi::api::core::v1::Service,
    pod: &Pod,
    pod_port: u16,
    health_port: u16,
) -> Option<ServiceFacts> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let spec = service.spec.as_ref()?;
    let selector = spec.selector.as_ref().filter(|s| !s.is_empty())?;
    let labels = pod.metadata.labels.as_ref()?;
    if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
        return None;
    }
    let named: BTreeMap<String, i32> = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| Some((p.name.clone()?, p.container_port)))
        .collect();
    let reaches = |want: u16| {
        spec.ports.iter().flatten().find_map(|p| {
            let target = match &p.target_port {
                None => p.port,
                Some(IntOrString::Int(n)) => *n,
                Some(IntOrString::String(name)) => *named.get(name)?,
            };
            (target == i32::from(want)).then(|| u16::try_from(p.port).ok())?
        })
    };
    Some(ServiceFacts {
        name: service.metadata.name.clone()?,
        cluster_ip: spec.cluster_ip.clone().filter(|ip| ip != "None"),
        port: reaches(pod_port)?,
        health_port: reaches(health_port),
    })
}

/// The namespace's NetworkPolicies. GET only (`list networkpolicies`).
pub async fn network_policies(
    client: &Client,
    namespace: &str,
) -> Result<Vec<k8s_openapi::api::networking::v1::NetworkPolicy>, ClusterError> {
    let api: Api<k8s_openapi::api::networking::v1::NetworkPolicy> =
        Api::namespaced(client.clone(), namespace);
    api.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .map_err(|e| api_error("list", "networkpolicies.networking.k8s.io", namespace, e))
}

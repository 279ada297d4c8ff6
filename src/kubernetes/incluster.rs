//! Probes from inside the cluster: short-lived Jobs in the Argo CD namespace that run this tool's
//! own image, so that a connection takes the path a client component's takes (the cluster's DNS,
//! the Service proxy, NetworkPolicy, a mesh proxy) instead of a port-forward into the pod.
//!
//! - The **probe**: the endpoint suite against every replica's pod IP and every Service that
//!   routes to the repo-server (`run --target cluster --connect in-cluster --print-report`), with
//!   the run's identity from a Secret this run creates and deletes, and a ServiceAccount bound to
//!   the read-only Role. Its report.json comes back through the pod's log, between
//!   [`REPORT_BEGIN`] and [`REPORT_END`].
//! - The **intruders**: pods that present no certificate, one with labels no Argo CD component
//!   has, one with a client component's labels (the "compromised pod" a NetworkPolicy admits);
//!   each tries every target (`intrude`) and prints what reached the port and what TLS then did.
//!
//! Every pod runs as a Job's (so no ReplicaSet adopts a pod carrying a client's labels), never
//! becomes Ready (a readiness gate nobody sets, so no Service sends it traffic), runs as non-root
//! on a read-only root filesystem without capabilities, and is deleted with its Job.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, LogParams};
use serde::{Deserialize, Serialize};

use super::cluster::{ClusterError, api_error};
use crate::probe::ProbeOutcome;

/// The line before the report.json a probe pod prints (`--print-report`).
pub const REPORT_BEGIN: &str = "-----BEGIN ARGOCD-MTLS-VERIFY REPORT-----";
/// The line after it.
pub const REPORT_END: &str = "-----END ARGOCD-MTLS-VERIFY REPORT-----";
/// The line before the attempts an intruder pod prints (`intrude`).
pub const INTRUDER_BEGIN: &str = "-----BEGIN ARGOCD-MTLS-VERIFY INTRUDER-----";
/// The line after them.
pub const INTRUDER_END: &str = "-----END ARGOCD-MTLS-VERIFY INTRUDER-----";
/// The label every object of a probe carries, with the run id as its value.
pub const RUN_LABEL: &str = "argocd-mtls-verify.io/run";
/// Where the identity Secret is mounted in the probe pod.
pub const IDENTITY_DIR: &str = "/identity";
/// Where the probe pod writes its report (an emptyDir).
pub const REPORTS_DIR: &str = "/reports";

/// `json` between `begin` and `end` lines, as a pod prints it.
pub fn framed(begin: &str, json: &str, end: &str) -> String {
    format!("{begin}\n{json}\n{end}\n")
}

/// The text between the last `begin` line and the `end` line after it, in a pod's log.
pub fn unframe<'a>(log: &'a str, begin: &str, end: &str) -> Option<&'a str> {
    let start = log.rfind(&format!("{begin}\n"))? + begin.len() + 1;
    let rest = &log[start..];
    let stop = rest.find(&format!("\n{end}"))?;
    Some(&rest[..stop])
}

/// One pod to run as a Job.
#[derive(Debug, Clone)]
pub struct ProbeJob {
    /// The Job's name (its pod's name starts with it).
    pub name: String,
    /// The run id: the value of [`RUN_LABEL`] on everything this probe creates.
    pub run_id: String,
    /// The tool's image.
    pub image: String,
    /// `IfNotPresent` for an image loaded onto the nodes, else `Always`-like defaults apply.
    pub pull_policy: Option<String>,
    /// The pod's labels, besides [`RUN_LABEL`].
    pub labels: BTreeMap<String, String>,
    /// The tool's arguments.
    pub args: Vec<String>,
    /// The Secret mounted at [`IDENTITY_DIR`], when the pod presents an identity.
    pub identity_secret: Option<String>,
    /// The ServiceAccount it runs as (`None`: no API token is mounted at all).
    pub service_account: Option<String>,
    /// `activeDeadlineSeconds`: the kubelet stops the pod after this.
    pub deadline: Duration,
}

impl ProbeJob {
    /// The Job object.
    pub fn job(&self, namespace: &str) -> serde_json::Value {
        let mut labels = self.labels.clone();
        labels.insert(RUN_LABEL.into(), self.run_id.clone());
        let mut volumes =
            vec![serde_json::json!({"name": "reports", "emptyDir": {"sizeLimit": "64Mi"}})];
        let mut mounts = vec![serde_json::json!({"name": "reports", "mountPath": REPORTS_DIR})];
        if let Some(secret) = &self.identity_secret {
            volumes.push(serde_json::json!({
                "name": "identity",
                "secret": {"secretName": secret, "defaultMode": 0o400}
            }));
            mounts.push(serde_json::json!({"name": "identity", "mountPath": IDENTITY_DIR, "readOnly": true}));
        }
        let mut container = serde_json::json!({
            "name": "probe",
            "image": self.image,
            "args": self.args,
            "volumeMounts": mounts,
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "runAsNonRoot": true,
                "capabilities": {"drop": ["ALL"]}
            },
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
        });
        if let Some(p) = &self.pull_policy {
            container["imagePullPolicy"] = p.clone().into();
        }
        let mut pod_spec = serde_json::json!({
            "restartPolicy": "Never",
            // Never Ready: no Service selecting these labels sends the pod traffic.
            "readinessGates": [{"conditionType": "argocd-mtls-verify.io/never-serves"}],
            "automountServiceAccountToken": self.service_account.is_some(),
            "enableServiceLinks": false,
            "securityContext": {
                "runAsNonRoot": true,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "fsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"}
            },
            "containers": [container],
            "volumes": volumes
        });
        if let Some(sa) = &self.service_account {
            pod_spec["serviceAccountName"] = sa.clone().into();
        }
        serde_json::json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": self.name, "namespace": namespace, "labels": {RUN_LABEL: self.run_id}},
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": self.deadline.as_secs().max(1),
                "ttlSecondsAfterFinished": 600,
                "template": {"metadata": {"labels": labels}, "spec": pod_spec}
            }
        })
    }
}

/// The read-only RBAC a probe pod's ServiceAccount is bound to: README's minimal Role, plus
/// `services` (to find the Services that route to the repo-server), without port-forwards (the
/// pod reaches the replicas directly).
pub fn read_only_rbac(name: &str, namespace: &str, run_id: &str) -> Vec<serde_json::Value> {
    let labels = serde_json::json!({RUN_LABEL: run_id});
    vec![
        serde_json::json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "automountServiceAccountToken": false
        }),
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "rules": read_only_rules()
        }),
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
        }),
    ]
}

/// The rules of the in-cluster read-only Role (also in deploy/rbac.yaml).
#[allow(non_snake_case)]
pub fn read_only_rules() -> serde_json::Value {
    serde_json::json!([
        {"apiGroups": [""], "resources": ["configmaps", "pods", "events", "services"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"], "verbs": ["get", "list"]},
        {"apiGroups": ["argoproj.io"], "resources": ["applications"], "verbs": ["list"]},
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["list"]}
    ])
}

/// The Secret the probe pod's identity comes from: the run's material as files.
pub fn identity_secret(
    name: &str,
    namespace: &str,
    run_id: &str,
    files: &[(&'static str, Vec<u8>)],
) -> serde_json::Value {
    use base64::Engine;
    let data: serde_json::Map<String, serde_json::Value> = files
        .iter()
        .map(|(k, v)| {
            (
                (*k).to_owned(),
                base64::engine::general_purpose::STANDARD.encode(v).into(),
            )
        })
        .collect();
    serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": {RUN_LABEL: run_id}},
        "data": data
    })
}

/// As a [`DynamicObject`] for server-side apply.
pub fn dynamic(value: serde_json::Value) -> DynamicObject {
    serde_json::from_value(value).expect("a Kubernetes object built here")
}

/// How a probe pod ended.
#[derive(Debug, Clone)]
pub struct PodEnd {
    /// The pod.
    pub pod: String,
    /// Its container's exit code.
    pub exit_code: i32,
    /// Its log.
    pub log: String,
}

/// Waits for the pod of Job `name` to finish within `limit`; its exit code and log. A pod that
/// cannot start (the image cannot be pulled, a volume is missing) stops the wait with the reason.
pub async fn wait_for(
    client: &Client,
    namespace: &str,
    name: &str,
    limit: Duration,
) -> Result<PodEnd, ClusterError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let selector = format!("batch.kubernetes.io/job-name={name}");
    let deadline = tokio::time::Instant::now() + limit;
    let mut last_state = String::from("no pod yet");
    loop {
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| api_error("list", "pods", namespace, e))?;
        if let Some(pod) = list.items.first() {
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            let status = pod.status.as_ref();
            let container = status
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|c| c.first());
            let terminated = container
                .and_then(|c| c.state.as_ref())
                .and_then(|s| s.terminated.as_ref());
            if let Some(t) = terminated {
                let log = pods
                    .logs(&pod_name, &LogParams::default())
                    .await
                    .map_err(|e| api_error("get", "pods/log", namespace, e))?;
                return Ok(PodEnd {
                    pod: pod_name,
                    exit_code: t.exit_code,
                    log,
                });
            }
            let waiting = container
                .and_then(|c| c.state.as_ref())
                .and_then(|s| s.waiting.as_ref());
            if let Some(w) = waiting {
                let reason = w.reason.clone().unwrap_or_default();
                last_state = format!(
                    "waiting: {reason}{}",
                    w.message
                        .as_deref()
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default()
                );
                if matches!(
                    reason.as_str(),
                    "ErrImagePull"
                        | "ImagePullBackOff"
                        | "InvalidImageName"
                        | "CreateContainerConfigError"
                        | "CreateContainerError"
                ) {
                    return Err(ClusterError::ProbePod {
                        job: name.to_owned(),
                        why: format!("pod/{pod_name} cannot start: {last_state}"),
                    });
                }
            } else if let Some(phase) = status.and_then(|s| s.phase.clone()) {
                last_state = phase;
            }
            if let Some(u) = super::cluster::unschedulable(pod) {
                return Err(ClusterError::ProbePod {
                    job: name.to_owned(),
                    why: format!("pod/{pod_name} cannot be scheduled: {u}"),
                });
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ClusterError::ProbePod {
                job: name.to_owned(),
                why: format!("did not finish within {} s ({last_state})", limit.as_secs()),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Deletes Job `name` and its pod (background propagation: a Job deleted with the API's default
/// would leave its pod behind). Gone already counts as deleted.
pub async fn delete_job(client: &Client, namespace: &str, name: &str) -> Result<(), ClusterError> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    match jobs.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(api_error("delete", &format!("jobs/{name}"), namespace, e)),
    }
}

/// Whether a TCP connection to a target was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tcp", rename_all = "kebab-case")]
pub enum Reach {
    /// The port accepted the connection.
    Connected,
    /// Refused (RST), or unreachable as the network said.
    Refused {
        /// The OS's words.
        why: String,
    },
    /// No answer within the limit (a policy that drops packets looks like this).
    TimedOut {
        /// The limit, ms.
        ms: u64,
    },
    /// The name did not resolve.
    Unresolved {
        /// The resolver's words.
        why: String,
    },
}

/// One intruder's try at one target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntruderAttempt {
    /// `service/NAME` or `pod/NAME`.
    pub target: String,
    /// `host:port` as given.
    pub address: String,
    /// Whether the port was reached.
    pub reach: Reach,
    /// The TLS 1.3 handshake without a certificate, made when the port was reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ProbeOutcome>,
}

/// `intrude`: each `(target, host:port)` tried from here, without a certificate.
pub async fn intrude(
    targets: &[(String, String)],
    server_name: &str,
    timeout: Duration,
) -> Vec<IntruderAttempt> {
    let mut out = Vec::new();
    for (target, address) in targets {
        let resolved =
            tokio::time::timeout(timeout, tokio::net::lookup_host(address.as_str())).await;
        let addr = match resolved {
            Ok(Ok(mut addrs)) => addrs.next(),
            Ok(Err(e)) => {
                out.push(IntruderAttempt {
                    target: target.clone(),
                    address: address.clone(),
                    reach: Reach::Unresolved { why: e.to_string() },
                    tls: None,
                });
                continue;
            }
            Err(_) => None,
        };
        let Some(addr) = addr else {
            out.push(IntruderAttempt {
                target: target.clone(),
                address: address.clone(),
                reach: Reach::Unresolved {
                    why: "no address".into(),
                },
                tls: None,
            });
            continue;
        };
        let reach = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await
        {
            Ok(Ok(_)) => Reach::Connected,
            Ok(Err(e)) => Reach::Refused { why: e.to_string() },
            Err(_) => Reach::TimedOut {
                ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            },
        };
        let tls = if reach == Reach::Connected {
            Some(crate::probe::no_certificate_attempt(addr, server_name, timeout, None).await)
        } else {
            None
        };
        out.push(IntruderAttempt {
            target: target.clone(),
            address: address.clone(),
            reach,
            tls,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_framed_report_comes_back_from_a_log_with_other_lines() {
        let log = format!(
            "progress line\n{}noise after\n",
            framed(REPORT_BEGIN, "{\"a\":1}", REPORT_END)
        );
        assert_eq!(unframe(&log, REPORT_BEGIN, REPORT_END), Some("{\"a\":1}"));
        // The last block wins; a block without its end is nothing.
        let two = format!(
            "{}{}",
            framed(REPORT_BEGIN, "1", REPORT_END),
            framed(REPORT_BEGIN, "2", REPORT_END)
        );
        assert_eq!(unframe(&two, REPORT_BEGIN, REPORT_END), Some("2"));
        assert_eq!(
            unframe(&format!("{REPORT_BEGIN}\n{{}}"), REPORT_BEGIN, REPORT_END),
            None
        );
        assert_eq!(unframe("no report", REPORT_BEGIN, REPORT_END), None);
    }

    #[test]
    fn a_probe_pod_is_owned_never_ready_and_unprivileged() {
        let job = ProbeJob {
            name: "amv-probe".into(),
            run_id: "r1".into(),
            image: "example.test/amv:1".into(),
            pull_policy: Some("IfNotPresent".into()),
            labels: BTreeMap::from([("app.kubernetes.io/name".into(), "argocd-server".into())]),
            args: vec!["run".into()],
            identity_secret: Some("amv-identity".into()),
            service_account: None,
            deadline: Duration::from_secs(120),
        }
        .job("argocd");
        let spec = &job["spec"]["template"]["spec"];
        assert_eq!(job["spec"]["backoffLimit"], 0);
        assert_eq!(
            spec["readinessGates"][0]["conditionType"],
            "argocd-mtls-verify.io/never-serves"
        );
        assert_eq!(spec["automountServiceAccountToken"], false);
        assert_eq!(
            spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
            true
        );
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
        assert_eq!(spec["volumes"][1]["secret"]["secretName"], "amv-identity");
        let labels = &job["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/name"], "argocd-server");
        assert_eq!(labels[RUN_LABEL], "r1");
        // It parses as a Job.
        let _: Job = serde_json::from_value(job).expect("a Job");
    }
}

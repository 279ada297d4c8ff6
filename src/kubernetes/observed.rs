//! What a Kubernetes target observed, as typed facts for the finding checks
//! (`checks/findings.rs` and the judges beside it). The session gathers these; nothing here says
//! whether a fact is good or bad. A read that failed is kept as its [`ClusterError`], so the judge
//! can say "no verdict" and why.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::cluster::{AppCondition, ClusterError, PodFacts, PodStart};
use super::incluster::IntruderAttempt;
use super::netpol::Admission;
use super::workloads::Workload;
use crate::probe::ProbeOutcome;

/// Everything a Kubernetes run observed that the finding checks judge.
#[derive(Debug)]
pub struct KubernetesObservations {
    /// The namespace Argo CD runs in.
    pub namespace: String,
    /// The no-mTLS attempts made before the Secret was provisioned.
    pub baseline: Baseline,
    /// Repo-server pods whose containers do not run (not probed).
    pub stopped: Vec<StoppedReplica>,
    /// Every repo-server replica that was probed, as it was after the probes.
    pub replicas: Vec<ReplicaObservation>,
    /// The namespace's configuration and the client components.
    pub config: NamespaceObservation,
    /// What the intruder pods saw (`--in-cluster`; `None` without it).
    pub in_cluster: Option<InClusterObservation>,
}

/// What the in-cluster intruder pods saw, with what the NetworkPolicies say about each attempt.
#[derive(Debug)]
pub struct InClusterObservation {
    /// The names of the namespace's NetworkPolicies, or why they could not be listed.
    pub policies: Result<Vec<String>, ClusterError>,
    /// Each intruder pod.
    pub intruders: Vec<IntruderObservation>,
}

/// One intruder pod (no client certificate) and its attempts.
#[derive(Debug)]
pub struct IntruderObservation {
    /// Which intruder: `unlabelled`, or `client-labelled`.
    pub kind: IntruderKind,
    /// The pod.
    pub pod: String,
    /// Its labels (besides the run's own).
    pub labels: BTreeMap<String, String>,
    /// Each target tried, with what the policies say about it (`None`: they could not be read).
    pub attempts: Vec<(IntruderAttempt, Option<Admission>)>,
}

/// The two intruders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntruderKind {
    /// Labels no Argo CD component has.
    Unlabelled,
    /// A client component's labels (the pods a repo-server NetworkPolicy lets through).
    ClientLabelled,
}

impl IntruderKind {
    /// As a result's subject.
    pub fn name(self) -> &'static str {
        match self {
            IntruderKind::Unlabelled => "unlabelled-pod",
            IntruderKind::ClientLabelled => "client-labelled-pod",
        }
    }
}

/// The "before" half of migration evidence.
#[derive(Debug)]
pub enum Baseline {
    /// The installation was found running: there was no "before" this run could see.
    ExistingInstallation,
    /// This run installed Argo CD and tried each replica without a certificate before mTLS.
    Attempts(Vec<BaselineAttempt>),
}

/// One replica tried without a client certificate (TLS 1.3) before the Secret existed.
#[derive(Debug)]
pub struct BaselineAttempt {
    /// The pod.
    pub pod: String,
    /// What the attempt saw.
    pub outcome: ProbeOutcome,
    /// Whether the port-forward it went through failed meanwhile.
    pub relay_failed: bool,
}

impl BaselineAttempt {
    /// The attempt in words: pod, outcome, stage and alert.
    pub fn describe(&self) -> String {
        format!(
            "pod/{} before provisioning, no client certificate, TLS 1.3: {} {}{}",
            self.pod,
            self.outcome.outcome,
            self.outcome.stage,
            self.outcome
                .alert
                .map(|a| format!(" (alert {a})"))
                .unwrap_or_default()
        )
    }
}

/// A repo-server pod whose containers do not run.
#[derive(Debug)]
pub struct StoppedReplica {
    /// The pod, with its containers' state.
    pub pod: PodFacts,
    /// The last error line its crashed run logged, when a log could be read.
    pub last_error: Option<String>,
}

/// One probed replica after the probes.
#[derive(Debug)]
pub struct ReplicaObservation {
    /// The pod as it was when its forwards opened.
    pub before: PodFacts,
    /// The pod now (`None`: it is gone).
    pub after: Result<Option<PodFacts>, ClusterError>,
    /// `Unhealthy` events since the rollout, in words.
    pub probe_failures: Result<Vec<String>, ClusterError>,
    /// The port-forwards the probes went through.
    pub relays: Vec<RelayObservation>,
    /// The pod-IP addresses probed when the replica was reached directly (no relay).
    pub direct: Option<String>,
    /// A TLS 1.3 handshake without a certificate, made after the probes (when a case needs it;
    /// else a blank record) to read what the running server announces: whether it asks for a client certificate, and the CA names of its
    /// client-CA pool (what it loaded at startup, so no timestamp is needed to tell whether it
    /// runs with the Secret's CA).
    pub announcement: ProbeOutcome,
}

/// How one port-forward fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayObservation {
    /// `pod/NAME:PORT`.
    pub label: String,
    /// What failed in the relay, when anything did.
    pub failure: Option<String>,
    /// Connections the server closed under the relay (refusals do this).
    pub peer_closed: usize,
}

/// The namespace's configuration, as read once for the verify phase.
#[derive(Debug)]
pub struct NamespaceObservation {
    /// Whether `argocd-repo-server-mtls` was read (false when RBAC refused, or not asked).
    pub secret_read: bool,
    /// Why the Secret could not be read.
    pub secret_unreadable: Option<String>,
    /// `argocd-repo-server-mtls`, when it exists and was read. Its data is judged, never reported.
    pub mtls_secret: Option<Secret>,
    /// Every Secret a component's mTLS file comes from, by name (those that exist and were read).
    pub secrets: BTreeMap<String, Secret>,
    /// Those of them RBAC would not let this run read, with why.
    pub unreadable_secrets: BTreeMap<String, String>,
    /// Workloads mounting `argocd-repo-server-mtls*`.
    pub workloads: Vec<Workload>,
    /// For each of `workloads`, its pods and when their containers started.
    pub mounting_pods: BTreeMap<String, Vec<PodStart>>,
    /// `argocd-cmd-params-cm`, when it exists.
    pub cmd_params: Option<ConfigMap>,
    /// How many Applications exist and the conditions they report; `Ok(None)` when the
    /// Application resource is not installed.
    pub applications: Result<Option<(usize, Vec<AppCondition>)>, ClusterError>,
    /// Each client component's log.
    pub client_logs: Vec<ComponentLog>,
}

/// The logs of one client component's pods.
#[derive(Debug)]
pub struct ComponentLog {
    /// `argocd-server`, ...
    pub component: String,
    /// Every line of its running containers (none when it has no pods), or why they could not
    /// be read.
    pub lines: Result<Option<Vec<String>>, ClusterError>,
}

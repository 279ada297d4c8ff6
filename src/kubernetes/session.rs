//! The Kubernetes target as the checks see it: every repo-server replica as an [`Endpoint`] (gRPC
//! and health ports port-forwarded through the API server, the pod's log as the log source), and
//! the namespace and pod state as typed observations ([`super::observed`]). Nothing here judges;
//! reads are GET only.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::Api;

use super::cluster::{self, ClusterError, PodFacts, Snapshot};
use super::forward::{self, LocalForward};
use super::observed::{
    ComponentLog, NamespaceObservation, RelayObservation, ReplicaObservation, StoppedReplica,
};
use super::workloads::{self, Role, Workload};
use crate::endpoint::{Endpoint, LogReadError, LogSource, Protocol, RemoteLog};

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
    /// What discovery found there ([`Session::discover`]): every later step uses these
    /// workloads, their selectors and containers, never an upstream name.
    pub workloads: Vec<Workload>,
}

/// How the replicas are reached (`--connect`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Connect {
    /// The pod IP when both ports answer from here and no mesh proxy is in the pod; else
    /// port-forwards.
    #[default]
    Auto,
    /// Port-forwards through the API server, always.
    PortForward,
    /// The pod IP, always.
    PodIp,
    /// The tool runs inside the cluster (a pod): every replica at its pod IP, and every Service
    /// that routes to the repo-server by its DNS name, the path a client in the cluster takes.
    InCluster,
}

/// How long [`Connect::Auto`] waits for the pod IP's ports to answer before it port-forwards.
const DIRECT_TRY: Duration = Duration::from_millis(500);

/// The route to one replica's ports.
#[derive(Debug)]
pub enum Route {
    /// Port-forwards through the API server, on loopback: every connection is relayed.
    Forwarded {
        /// Forward to 8081.
        grpc: LocalForward,
        /// Forward to 8084.
        health: LocalForward,
    },
    /// The pod IP itself: nothing relays, so nothing but the server can refuse.
    Direct {
        /// `podIP:8081`.
        grpc: std::net::SocketAddr,
        /// `podIP:8084`.
        health: std::net::SocketAddr,
    },
}

impl Route {
    /// Where the gRPC/TLS port is reached.
    pub fn grpc_addr(&self) -> std::net::SocketAddr {
        match self {
            Route::Forwarded { grpc, .. } => grpc.addr,
            Route::Direct { grpc, .. } => *grpc,
        }
    }

    /// Where the health port is reached.
    pub fn health_addr(&self) -> std::net::SocketAddr {
        match self {
            Route::Forwarded { health, .. } => health.addr,
            Route::Direct { health, .. } => *health,
        }
    }

    /// Connections the forward to 8081 failed to relay so far (0 for a direct route).
    pub fn grpc_relay_failures(&self) -> usize {
        match self {
            Route::Forwarded { grpc, .. } => grpc.failures().0,
            Route::Direct { .. } => 0,
        }
    }

    /// The relays in between, for the endpoint's checks.
    fn relays(&self) -> Vec<Arc<dyn crate::endpoint::Relay>> {
        match self {
            Route::Forwarded { grpc, health } => {
                vec![Arc::new(grpc.health()), Arc::new(health.health())]
            }
            Route::Direct { .. } => vec![],
        }
    }

    /// In words, for progress lines and the report.
    pub fn describe(&self) -> String {
        match self {
            Route::Forwarded { grpc, .. } => format!("through port-forwards ({})", grpc.label),
            Route::Direct { grpc, .. } => format!("directly at its pod IP ({})", grpc.ip()),
        }
    }
}

/// One repo-server replica, and how it is reached.
#[derive(Debug)]
pub struct Replica {
    /// The pod as it was when its route opened.
    pub pod: PodFacts,
    /// How its ports are reached.
    pub route: Route,
}

/// Whether `addr` accepts a TCP connection within [`DIRECT_TRY`].
async fn answers(addr: std::net::SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(DIRECT_TRY, tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// The SHA-256 of the certificate the TLS server at `addr` presents (TLS 1.3, no client
/// certificate: the server's certificate comes before any client one is asked for).
async fn presented_leaf(addr: std::net::SocketAddr) -> Option<String> {
    let outcome = crate::probe::attempt(&crate::probe::ProbeRequest {
        addr,
        server_name: crate::pki::SERVER_COMMON_NAME.to_owned(),
        sni: crate::probe::Sni::Configured,
        version: crate::probe::TlsVersion::Tls13,
        alpn: crate::probe::AcceptanceProof::H2Settings.front_alpn(),
        identity: None,
        server_roots: vec![],
        proof: crate::probe::AcceptanceProof::H2Settings,
        timeout: DIRECT_TRY * 4,
        silence: None,
        resume: Default::default(),
        kx_group: None,
        sig_family: None,
        framing: None,
        craft: None,
    })
    .await;
    outcome.server_chain.sha256.into_iter().next()
}

/// Whether the pod IP reaches the pod itself: its port 8081 presents the very certificate the
/// pod presents through a port-forward (which enters the pod's own network namespace). A port
/// that merely accepts connections proves nothing: a transparent egress proxy accepts them for
/// any address, and answers TLS with a certificate of its own.
async fn is_the_pod(direct: std::net::SocketAddr, forwarded: std::net::SocketAddr) -> bool {
    match presented_leaf(forwarded).await {
        Some(theirs) => presented_leaf(direct).await.as_ref() == Some(&theirs),
        None => false,
    }
}

impl Session {
    /// A session on `namespace` with its workloads discovered by role.
    pub async fn discover(client: Client, namespace: &str) -> Result<Session, ClusterError> {
        let workloads = cluster::read_workloads(&client, namespace).await?;
        Ok(Session {
            client,
            namespace: namespace.to_owned(),
            workloads,
        })
    }

    /// Discovers the workloads again (after a patch or restart changed their templates).
    pub async fn rediscover(&mut self) -> Result<(), ClusterError> {
        self.workloads = cluster::read_workloads(&self.client, &self.namespace).await?;
        Ok(())
    }

    /// The workloads discovery found with `role`.
    pub fn with_role(&self, role: Role) -> impl Iterator<Item = &Workload> {
        self.workloads.iter().filter(move |w| w.role == Some(role))
    }

    /// The container that runs `role` (the first workload's with that role), else its upstream name.
    pub fn container_of(&self, role: Role) -> String {
        self.with_role(role)
            .find_map(|w| w.container.clone())
            .unwrap_or_else(|| role.upstream().to_owned())
    }

    /// The workloads that mount an `argocd-repo-server-mtls*` Secret: the set to restart, and the
    /// repo-server's (it reads the Secret).
    pub fn involved(&self) -> Vec<Workload> {
        self.workloads
            .iter()
            .filter(|w| w.mounts_mtls() || w.role == Some(Role::RepoServer))
            .cloned()
            .collect()
    }

    /// Waits for each workload's rollout, one after another, each within `timeout`.
    pub async fn wait_all(
        &self,
        workloads: &[Workload],
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

    /// Opens a route to 8081 and 8084 of every running repo-server pod, as `connect` says, and
    /// says which it took; also returns the pods that do not run.
    pub async fn open_replicas(
        &self,
        connect: Connect,
        events: &crate::report::events::Events,
    ) -> Result<(Vec<Replica>, Vec<PodFacts>), ClusterError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut out = Vec::new();
        let mut down = Vec::new();
        if self.with_role(Role::RepoServer).next().is_none() {
            return Err(no_role(Role::RepoServer, &self.namespace));
        }
        for pod in cluster::repo_server_pods(&self.client, &self.namespace, &self.workloads).await?
        {
            // A crash loop caught in one of its brief runs cannot serve either: probing it would
            // judge a server that is about to exit.
            if !pod.running || pod.crash_looping {
                down.push(pod);
                continue;
            }
            let direct = pod
                .ip
                .as_deref()
                .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
                .map(|ip| {
                    (
                        std::net::SocketAddr::new(ip, GRPC_PORT),
                        std::net::SocketAddr::new(ip, HEALTH_PORT),
                    )
                });
            let route = match (connect, direct) {
                (Connect::PodIp | Connect::InCluster, Some((grpc, health))) => {
                    Route::Direct { grpc, health }
                }
                (Connect::PodIp | Connect::InCluster, None) => {
                    return Err(ClusterError::Unreachable {
                        pod: pod.name.clone(),
                        why: "it has no pod IP yet (--connect pod-ip)".into(),
                    });
                }
                _ => {
                    let io = |e: std::io::Error| ClusterError::Unreachable {
                        pod: pod.name.clone(),
                        why: format!("no local listener for its port-forward: {e}"),
                    };
                    let forwarded = forward::to_pod(pods.clone(), &pod.name, GRPC_PORT)
                        .await
                        .map_err(io)?;
                    match (connect, direct) {
                        (Connect::Auto, Some((grpc, health)))
                            if pod.mesh_proxy.is_none()
                                && answers(grpc).await
                                && answers(health).await
                                && is_the_pod(grpc, forwarded.addr).await =>
                        {
                            Route::Direct { grpc, health }
                        }
                        _ => {
                            let health = forward::to_pod(pods.clone(), &pod.name, HEALTH_PORT)
                                .await
                                .map_err(io)?;
                            Route::Forwarded {
                                grpc: forwarded,
                                health,
                            }
                        }
                    }
                }
            };
            let why = match (&route, connect, &pod.mesh_proxy) {
                (Route::Forwarded { .. }, Connect::Auto, Some(proxy)) => {
                    format!(" (not its pod IP: a `{proxy}` proxy in the pod would carry it)")
                }
                (Route::Forwarded { .. }, Connect::Auto, None) => {
                    " (its pod IP does not answer from here with the pod's own certificate)"
                        .to_owned()
                }
                _ => String::new(),
            };
            events.note(&format!(
                "pod/{}: reached {}{why}",
                pod.name,
                route.describe()
            ));
            out.push(Replica { pod, route });
        }
        if out.is_empty() && down.is_empty() {
            let w = self
                .with_role(Role::RepoServer)
                .next()
                .expect("checked above");
            return Err(ClusterError::Rollout {
                kind: w.kind,
                name: w.name.clone(),
                state: format!(
                    "has no pods (selector {}) in `{}`",
                    w.selector
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(","),
                    self.namespace
                ),
            });
        }
        Ok((out, down))
    }

    /// A repo-server pod whose containers do not run, with the last error line its crashed run
    /// logged.
    pub async fn stopped(&self, pod: PodFacts) -> StoppedReplica {
        // The newest container's log is the crashed run's while the pod waits to restart or
        // has just exited; the previous one's when a new run has started meanwhile.
        let mut last_error = None;
        for previous in [false, true] {
            if let Ok(lines) = cluster::log_tail(
                &self.client,
                &self.namespace,
                &pod.name,
                &self.container_of(Role::RepoServer),
                previous,
                // cobra prints its usage after the error: the error line is ~50 lines from the end.
                200,
            )
            .await
                && let Some(last) = workloads::last_error_line(&lines)
            {
                last_error = Some(last);
                break;
            }
        }
        StoppedReplica { pod, last_error }
    }

    /// The endpoint the checks probe for `replica`: the forwards, and the pod's log.
    pub fn endpoint(&self, replica: &Replica, server_name: &str) -> Endpoint {
        let logs = Some(LogSource::Remote(Arc::new(self.pod_log(replica))));
        Endpoint {
            label: replica.pod.name.clone(),
            addr: replica.route.grpc_addr(),
            server_name: server_name.to_owned(),
            protocol: Protocol::Grpc,
            health: Some(replica.route.health_addr().to_string()),
            logs,
            relays: replica.route.relays(),
        }
    }

    /// Inside the cluster ([`Connect::InCluster`]): an endpoint for every Service that routes to
    /// the repo-server's gRPC port, reached by its DNS name through the cluster's resolver and
    /// Service proxy. Its log is every replica's (which one answered is not known).
    pub async fn service_endpoints(
        &self,
        replicas: &[Replica],
        server_name: &str,
    ) -> Result<Vec<Endpoint>, ClusterError> {
        let pods = cluster::role_pods(
            &self.client,
            &self.namespace,
            &self.workloads,
            Role::RepoServer,
        )
        .await?;
        let Some(pod) = pods.first() else {
            return Ok(vec![]);
        };
        let services =
            cluster::services_to(&self.client, &self.namespace, pod, GRPC_PORT, HEALTH_PORT)
                .await?;
        let logs: Vec<PodLog> = replicas.iter().map(|r| self.pod_log(r)).collect();
        let logs = Arc::new(ServiceLogs(Arc::new(logs)));
        let mut out = Vec::new();
        for service in services {
            let host = format!("{}.{}.svc", service.name, self.namespace);
            let resolve = |port: u16| {
                let host = host.clone();
                async move {
                    tokio::time::timeout(
                        Duration::from_secs(10),
                        tokio::net::lookup_host((host.as_str(), port)),
                    )
                    .await
                    .map_err(|_| "no answer within 10 s".to_owned())?
                    .map_err(|e| e.to_string())?
                    .next()
                    .ok_or_else(|| "no address".to_owned())
                }
            };
            let addr = resolve(service.port)
                .await
                .map_err(|why| ClusterError::Unresolved {
                    service: service.name.clone(),
                    host: host.clone(),
                    why,
                })?;
            let health = service
                .health_port
                .map(|port| format!("{}:{port}", addr.ip()));
            out.push(Endpoint {
                label: format!("service/{}", service.name),
                addr,
                server_name: server_name.to_owned(),
                protocol: Protocol::Grpc,
                health,
                logs: Some(LogSource::Remote(logs.clone())),
                relays: vec![],
            });
        }
        Ok(out)
    }

    fn pod_log(&self, replica: &Replica) -> PodLog {
        PodLog {
            client: self.client.clone(),
            namespace: self.namespace.clone(),
            pod: replica.pod.name.clone(),
            container: self.container_of(Role::RepoServer),
            grpc_log_level: replica.pod.grpc_log_level.clone(),
        }
    }

    /// A probed replica after the checks: the pod now, its `Unhealthy` events since `since`, and
    /// how its port-forwards fared.
    pub async fn observe_replica(
        &self,
        replica: &Replica,
        since: time::OffsetDateTime,
    ) -> ReplicaObservation {
        let name = &replica.pod.name;
        let after = cluster::repo_server_pods(&self.client, &self.namespace, &self.workloads)
            .await
            .map(|pods| pods.into_iter().find(|p| &p.name == name));
        let probe_failures =
            cluster::probe_failures(&self.client, &self.namespace, name, since).await;
        let (relays, direct) = match &replica.route {
            Route::Forwarded { grpc, health } => (
                [grpc, health]
                    .into_iter()
                    .map(|forward| RelayObservation {
                        label: forward.label.clone(),
                        failure: forward.failure_summary(),
                        peer_closed: forward.peer_closed(),
                    })
                    .collect(),
                None,
            ),
            Route::Direct { grpc, health } => (vec![], Some(format!("{grpc} and {health}"))),
        };
        ReplicaObservation {
            before: replica.pod.clone(),
            after,
            probe_failures,
            relays,
            direct,
            announcement: crate::probe::ProbeOutcome::blank(crate::probe::TlsVersion::Tls13, None),
        }
    }

    /// The namespace as the finding checks need it: the snapshot's Secret, workloads and
    /// settings, the Applications' conditions, and each client component's log (its running
    /// containers' whole log: the certificate is loaded at startup).
    pub async fn observe_namespace(&self, snapshot: Snapshot) -> NamespaceObservation {
        let applications = cluster::application_conditions(&self.client, &self.namespace).await;
        let mut client_logs = Vec::new();
        for role in Role::CLIENTS {
            client_logs.push(ComponentLog {
                component: role.upstream().to_owned(),
                lines: self.component_log(role).await,
            });
        }
        NamespaceObservation {
            secret_read: snapshot.secret_read,
            secret_unreadable: snapshot.secret_unreadable,
            mtls_secret: snapshot.mtls_secret,
            secrets: snapshot.secrets,
            unreadable_secrets: snapshot.unreadable_secrets,
            workloads: snapshot.workloads,
            mounting_pods: snapshot.mounting_pods,
            cmd_params: snapshot.cmd_params,
            applications,
            client_logs,
        }
    }

    /// Every line of the pods of `role`'s workloads (its container's), `None` when it has no pods.
    async fn component_log(&self, role: Role) -> Result<Option<Vec<String>>, ClusterError> {
        let pods = cluster::role_pods(&self.client, &self.namespace, &self.workloads, role).await?;
        if pods.is_empty() {
            return Ok(None);
        }
        let mut lines = Vec::new();
        for pod in pods.iter().filter_map(|p| p.metadata.name.as_deref()) {
            let container = self.container_of(role);
            lines.extend(
                cluster::pod_log(&self.client, &self.namespace, pod, Some(&container)).await?,
            );
        }
        Ok(Some(lines))
    }
}

/// The error for a role discovery did not find.
pub fn no_role(role: Role, namespace: &str) -> ClusterError {
    ClusterError::NoRole {
        role: role.upstream(),
        component: role.component(),
        binary: role.binary(),
        namespace: namespace.to_owned(),
    }
}

/// Where a pod's repo-server log is read from: the running container's whole log, so the lines it
/// printed at startup (mTLS enabled, health certificate) are read however long ago it started.
struct PodLog {
    client: kube::Client,
    namespace: String,
    pod: String,
    /// The container that runs the repo-server, as discovery found it (Helm calls it
    /// `repo-server`, the upstream manifest `argocd-repo-server`).
    container: String,
    /// `GRPC_GO_LOG_SEVERITY_LEVEL` as the pod spec sets it (`None`: unset).
    grpc_log_level: Option<String>,
}

impl RemoteLog for PodLog {
    fn origin(&self) -> String {
        format!("pod/{} log", self.pod)
    }

    fn read(&self) -> futures::future::BoxFuture<'_, Result<Vec<String>, LogReadError>> {
        Box::pin(async move {
            cluster::pod_log(
                &self.client,
                &self.namespace,
                &self.pod,
                Some(&self.container),
            )
            .await
            .map_err(|e| LogReadError::Remote {
                origin: self.origin(),
                source: Box::new(e),
            })
        })
    }

    fn configured_grpc_log_level(&self) -> Option<Option<&str>> {
        Some(self.grpc_log_level.as_deref())
    }
}

/// The logs of every replica behind a Service, read one after the other: a connection through
/// the Service reaches one of them, and which one is not known.
struct ServiceLogs(Arc<Vec<PodLog>>);

impl RemoteLog for ServiceLogs {
    fn origin(&self) -> String {
        let pods: Vec<&str> = self.0.iter().map(|l| l.pod.as_str()).collect();
        format!("the logs of pod/{}", pods.join(", pod/"))
    }

    fn read(&self) -> futures::future::BoxFuture<'_, Result<Vec<String>, LogReadError>> {
        Box::pin(async move {
            let mut lines = Vec::new();
            for log in self.0.iter() {
                lines.extend(log.read().await?);
            }
            Ok(lines)
        })
    }

    fn configured_grpc_log_level(&self) -> Option<Option<&str>> {
        // The same only when every replica is configured alike.
        let mut levels = self.0.iter().map(|l| l.grpc_log_level.as_deref());
        let first = levels.next()?;
        levels.all(|l| l == first).then_some(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;

    async fn server(bundle: &crate::pki::GeneratedBundle) -> reference::RunningReference {
        reference::start(reference::ReferenceConfig::from_bundle(bundle).unwrap())
            .await
            .unwrap()
    }

    /// The pod IP is taken only when it presents what the port-forward presents: the same
    /// certificate from two listeners is the pod; another server's certificate (an egress
    /// proxy's), or a port that accepts and speaks no TLS, is not.
    #[tokio::test]
    async fn the_pod_ip_counts_only_with_the_pods_own_certificate() {
        let ours = crate::pki::generate(&Default::default()).unwrap();
        let theirs = crate::pki::generate(&Default::default()).unwrap();
        let (a, b, other) = (
            server(&ours).await,
            server(&ours).await,
            server(&theirs).await,
        );
        assert!(is_the_pod(b.grpc_addr, a.grpc_addr).await);
        assert!(!is_the_pod(other.grpc_addr, a.grpc_addr).await);
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap();
        let _accepting = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        assert!(answers(silent_addr).await, "it accepts connections");
        assert!(!is_the_pod(silent_addr, a.grpc_addr).await);
        assert!(!is_the_pod(a.grpc_addr, silent_addr).await);
    }
}

//! The Kubernetes runs, phase by phase: `kind` (create, install, baseline, provision, restart,
//! verify, teardown) and `cluster` (verify an existing installation, read-only unless asked).
//!
//! All state lives in [`KubeRun`], outside the phase futures, so a run interrupted at any phase
//! (Ctrl-C, a setup failure) still knows what it created, tears exactly that down, and reports
//! what it had so far, marked incomplete.
//!
//! Over 500 lines on purpose: the phases share one `KubeRun` (what was created, the facts so far),
//! and a stopped run's clean-up must see all of it; the judging and the reporting live elsewhere.

use std::time::Duration;

use kube::Client;

use crate::checks::{self, ProbeSettings};
use crate::kubernetes::cluster::{self, ClusterError};
use crate::kubernetes::connect::client_from_kubeconfig;
use crate::kubernetes::install::{self, Created};
use crate::kubernetes::kind::{self, KindCluster};
use crate::kubernetes::manifest::{self, ManifestSource};
use crate::kubernetes::observed::{Baseline, BaselineAttempt, KubernetesObservations};
use crate::kubernetes::provision::{Profile, Provisioning, material_from_secret};
use crate::kubernetes::session::{Session, no_role};
use crate::kubernetes::workloads::{Role, Workload};
use crate::pki::ProbePki;
use crate::probe;
use crate::report::events::{Event, Events};
use crate::report::{CheckResult, KubeFacts};
use crate::runner::{self};
use crate::suite::{CaseKind, Check, KubeCase};

mod in_cluster;
pub use in_cluster::InClusterPlan;

/// Options of the kind target.
pub struct KindPlan {
    /// Cluster name.
    pub cluster_name: String,
    /// Use the existing cluster of that name.
    pub reuse: bool,
    /// HA layout.
    pub ha: bool,
    /// Where the manifest comes from.
    pub manifest: ManifestSource,
    /// Preload the manifest's images into kind.
    pub preload_images: bool,
    /// `--node-image`: the kind node image (kind's default when absent).
    pub node_image: Option<String>,
    /// `--kind-config`: the cluster config's text and the file it came from (the built-in
    /// layout when absent).
    pub config: Option<(String, std::path::PathBuf)>,
    /// Toolchain facts from the preflight.
    pub toolchain: kind::Toolchain,
}

/// Limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// kind create, CRDs Established, each rollout.
    pub rollout: Duration,
    /// The manifest's download.
    pub download: crate::kubernetes::manifest::DownloadLimits,
}

/// Why a Kubernetes run stopped before its verification finished. The run's report is still
/// written (marked incomplete) and what it created is cleaned up.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The kind cluster could not be created, reused or loaded with images.
    #[error(transparent)]
    Kind(#[from] crate::kubernetes::kind::KindError),
    /// No API client could be built from the kubeconfig.
    #[error(transparent)]
    Connect(#[from] crate::kubernetes::connect::ConnectError),
    /// The install manifest could not be fetched, or its digest did not match.
    #[error(transparent)]
    Fetch(#[from] crate::kubernetes::manifest::FetchError),
    /// The install manifest did not parse.
    #[error(transparent)]
    Manifest(#[from] crate::kubernetes::install::ManifestError),
    /// A Kubernetes call failed, or something did not become ready in time.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// No probe identity could be made.
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    /// `--install` without the Secrets to provision.
    #[error("--install provisions the Secrets: it needs a bundle")]
    InstallNeedsBundle,
}

/// The state of a Kubernetes run, filled phase by phase.
pub struct KubeRun {
    /// Where the run's progress and phase timings go.
    pub events: Events,
    /// Results so far.
    pub results: Vec<CheckResult>,
    /// Kubernetes facts for the report.
    pub facts: KubeFacts,
    /// The kind cluster, once claimed (deleted at teardown only if this run created it).
    pub cluster: Option<KindCluster>,
    /// Probe material.
    pub material: Option<ProbePki>,
    /// The build VersionService reported.
    pub argocd_version: Option<serde_json::Value>,
    /// The certificate each repo-server replica presented.
    pub server_certificates: Vec<crate::x509::CertFacts>,
    /// Server name used for SNI.
    pub server_name: String,
    /// The replicas probed, as the report names them.
    pub addresses: Vec<String>,
    /// How the replicas are reached.
    pub connect: crate::kubernetes::session::Connect,
    /// What this run created in an existing cluster (namespace, manifest objects, Secrets): a
    /// run that stops early deletes exactly these.
    created: Vec<Created>,
    client: Option<Client>,
    /// `--in-cluster`: the probe and intruder pods to start after the run's own probes.
    pub in_cluster: Option<InClusterPlan>,
}

impl KubeRun {
    /// A fresh run against `namespace`.
    pub fn new(namespace: &str, events: Events) -> Self {
        KubeRun {
            events,
            results: vec![],
            facts: KubeFacts {
                namespace: namespace.to_owned(),
                ..Default::default()
            },
            cluster: None,
            material: None,
            connect: Default::default(),
            argocd_version: None,
            server_certificates: Vec::new(),
            server_name: crate::pki::SERVER_COMMON_NAME.to_owned(),
            addresses: vec![],
            created: vec![],
            client: None,
            in_cluster: None,
        }
    }

    /// The API client, once the run has one.
    pub fn client(&self) -> Option<&Client> {
        self.client.as_ref()
    }

    /// After a run that stopped early (`stopped`) in an existing cluster, deletes what it created
    /// there, unless `keep`; says what it did. The changes list records it.
    async fn remove_created(&mut self, keep: bool, stopped: bool) {
        if !stopped || self.created.is_empty() || self.cluster.is_some() {
            return;
        }
        let Some(client) = self.client.clone() else {
            return;
        };
        let _phase = self.events.phase("clean up");
        if keep {
            self.events.note(&format!(
                "kept what this run created (--keep-cluster): {}",
                self.created
                    .iter()
                    .map(Created::label)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return;
        }
        // A namespace this run created takes everything in it along; otherwise each object goes.
        let namespace_created = self
            .created
            .iter()
            .any(|c| c.resource.kind == "Namespace" && c.name == self.facts.namespace);
        let doomed: Vec<Created> = self
            .created
            .iter()
            .rev()
            .filter(|c| !namespace_created || c.namespace.is_none())
            .cloned()
            .collect();
        let mut removed = 0;
        for c in &doomed {
            match c.delete(&client).await {
                Ok(()) => removed += 1,
                Err(e) => self.events.problem(&format!(
                    "could not delete {}: {e}; delete it by hand",
                    c.label()
                )),
            }
        }
        self.events.note(&format!(
            "deleted {removed} of the {} objects this run created{}",
            doomed.len(),
            if namespace_created {
                format!(
                    " (namespace `{}` with everything in it)",
                    self.facts.namespace
                )
            } else {
                String::new()
            }
        ));
        self.facts.changes.push(format!(
            "stopped early: deleted what this run created ({removed} objects{})",
            if namespace_created {
                format!(", namespace {} included", self.facts.namespace)
            } else {
                String::new()
            }
        ));
    }

    /// Undoes what a run that stopped early created ([`Self::remove_created`]), and deletes the
    /// kind cluster if this run created it and `keep` is false; says what it did.
    pub async fn teardown(&mut self, keep: bool, stopped: bool) {
        self.remove_created(keep, stopped).await;
        let Some(cluster) = &self.cluster else {
            return;
        };
        let _phase = self.events.phase("teardown");
        if keep || !cluster.created {
            self.events.note(&format!(
                "kept kind cluster `{}` ({}); delete it with: kind delete cluster --name {}",
                cluster.name,
                if cluster.created {
                    "--keep-cluster"
                } else {
                    "not created by this run"
                },
                cluster.name
            ));
        } else {
            match cluster.delete_if_created().await {
                Ok(_) => self.events.note(&format!("deleted kind cluster `{}`", cluster.name)),
                Err(e) => self.events.problem(&format!(
                    "could not delete kind cluster `{}`: {e}; delete it with: kind delete cluster --name {}",
                    cluster.name, cluster.name
                )),
            }
        }
    }

    /// `run --target kind`, up to and including verification (teardown is separate).
    pub async fn kind(
        &mut self,
        plan: &KindPlan,
        provisioning: &Provisioning,
        checks: &[Check],
        settings: &ProbeSettings,
        limits: &Limits,
    ) -> Result<(), RunError> {
        let cluster_phase = self.events.phase("cluster");
        self.facts
            .provenance
            .insert("kind".into(), plan.toolchain.kind.clone());
        self.facts
            .provenance
            .insert("container_runtime".into(), plan.toolchain.runtime.clone());
        if plan.reuse {
            self.cluster = Some(kind::reuse(&plan.cluster_name).await?);
            self.events
                .note(&format!("reusing kind cluster `{}`", plan.cluster_name));
        } else {
            self.cluster = Some(
                kind::plan_create(
                    &plan.cluster_name,
                    plan.ha,
                    plan.config.as_ref().map(|(text, _)| text.as_str()),
                )
                .await?,
            );
            let layout = match (&plan.config, plan.ha) {
                (Some((_, path)), _) => format!("config {}", path.display()),
                (None, true) => "1 control plane + 3 workers".to_owned(),
                (None, false) => "single node".to_owned(),
            };
            let image = match &plan.node_image {
                Some(image) => format!(", node image {image}"),
                None => String::new(),
            };
            self.events.note(&format!(
                "creating kind cluster `{}` ({layout}{image})",
                plan.cluster_name
            ));
            self.cluster
                .as_ref()
                .expect("just set")
                .create(plan.node_image.as_deref(), limits.rollout)
                .await?;
        }
        let cluster = self.cluster.as_ref().expect("just set");
        self.facts.cluster = format!("kind-{}", cluster.name);
        let client = client_from_kubeconfig(&cluster.kubeconfig, None).await?;
        self.record_api_server(&client).await?;
        self.client = Some(client.clone());
        drop(cluster_phase);

        self.install_and_verify(
            &client,
            &plan.manifest,
            plan.preload_images,
            provisioning,
            checks,
            settings,
            limits,
        )
        .await
    }

    /// What `--target kind` does once it has a cluster, and `--target cluster --install` does in
    /// an existing one: install the manifest, wait for the workloads that matter, record the
    /// no-mTLS baseline, provision, restart what mounts the Secret, verify every replica.
    #[allow(clippy::too_many_arguments)]
    async fn install_and_verify(
        &mut self,
        client: &Client,
        manifest_source: &ManifestSource,
        preload_images: bool,
        provisioning: &Provisioning,
        checks: &[Check],
        settings: &ProbeSettings,
        limits: &Limits,
    ) -> Result<(), RunError> {
        let install = self.events.phase("install");
        let (bytes, facts) = manifest_source.fetch(limits.download).await?;
        self.events.note(&format!(
            "manifest {} ({} bytes) sha256 {}{}",
            facts.origin,
            facts.bytes,
            facts.sha256,
            match (&facts.matches, facts.pinned) {
                (Some(entry), _) => format!(" (the pinned digest of {entry})"),
                (None, true) => " (matches the pinned digest)".to_owned(),
                (None, false) => " (not pinned: verify this digest yourself)".to_owned(),
            }
        ));
        if let Some(entry) = &facts.matches {
            self.facts
                .provenance
                .insert("manifest_matches".into(), entry.clone());
        }
        self.facts
            .provenance
            .insert("manifest".into(), facts.origin.clone());
        self.facts
            .provenance
            .insert("manifest_sha256".into(), facts.sha256.clone());
        self.facts
            .provenance
            .insert("manifest_pinned".into(), facts.pinned.to_string());
        let text = String::from_utf8_lossy(&bytes);
        let mut objects = install::parse_manifest(&text, &facts.origin)?;
        if let (true, Some(kind)) = (preload_images, self.cluster.as_ref()) {
            let events = self.events.clone();
            let loaded = kind
                .preload(&manifest::images(&objects), self.events.notes(), move |m| {
                    events.problem(m)
                })
                .await?;
            // The manifest's `Always` would make the nodes pull again what was just loaded.
            let changed = manifest::prefer_loaded(&mut objects, &loaded);
            if changed > 0 {
                let change = format!(
                    "imagePullPolicy IfNotPresent on {changed} containers of the manifest (their images were preloaded: {})",
                    loaded.join(", ")
                );
                self.events.note(&change);
                self.facts.changes.push(change);
            }
        }
        if let Some(created) = cluster::ensure_namespace(client, &self.facts.namespace).await? {
            self.created.push(created);
        }
        install::apply_all(
            client,
            objects,
            &self.facts.namespace,
            limits.rollout,
            self.events.notes(),
            &mut self.created,
        )
        .await?;
        let mut session = Session::discover(client.clone(), &self.facts.namespace).await?;
        // Only what repo-server mTLS involves is waited for: the repo-server and the workloads
        // that mount its Secret. Others (Dex, whose image may be missing) are not waited for.
        let involved = session.involved();
        self.events.note(&format!(
            "waiting for {} workloads to become available: {}",
            involved.len(),
            involved
                .iter()
                .map(|w| w.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        session
            .wait_all(&involved, limits.rollout, &mut self.events.notes())
            .await?;

        drop(install);
        let baseline_phase = self.events.phase("baseline");
        let before = baseline(
            &session,
            &self.server_name,
            settings,
            self.connect,
            &self.events,
        )
        .await?;
        drop(baseline_phase);

        self.provision_and_restart(&mut session, provisioning, limits)
            .await?;
        let since = time::OffsetDateTime::now_utc();
        self.verify(&mut session, checks, settings, since, before)
            .await
    }

    /// `run --target cluster`: verify an existing installation through `client` (labelled
    /// `cluster_label` in the report). Nothing is written unless `provisioning` is given. With
    /// `install`, Argo CD is installed first from that manifest (then `provisioning` is required),
    /// exactly as the kind target does it.
    #[allow(clippy::too_many_arguments)]
    pub async fn cluster(
        &mut self,
        client: Client,
        cluster_label: &str,
        install: Option<&ManifestSource>,
        provisioning: Option<&Provisioning>,
        checks: &[Check],
        settings: &ProbeSettings,
        limits: &Limits,
    ) -> Result<(), RunError> {
        let connect = self.events.phase("connect");
        self.facts.cluster = cluster_label.to_owned();
        self.record_api_server(&client).await?;
        self.client = Some(client.clone());
        drop(connect);
        if let Some(manifest) = install {
            let provisioning = provisioning.ok_or(RunError::InstallNeedsBundle)?;
            return self
                .install_and_verify(
                    &client,
                    manifest,
                    false,
                    provisioning,
                    checks,
                    settings,
                    limits,
                )
                .await;
        }
        let mut session = Session::discover(client, &self.facts.namespace).await?;
        let mut since = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
        if let Some(p) = provisioning {
            self.provision_and_restart(&mut session, p, limits).await?;
            since = time::OffsetDateTime::now_utc();
        }
        // Not missing input: an installation found running has no 'before' this run could see.
        let before = Baseline::ExistingInstallation;
        self.verify(&mut session, checks, settings, since, before)
            .await
    }

    /// The API server's version, recorded as soon as there is a client: a run that stops early
    /// still says which cluster it talked to.
    /// An API server that does not answer at all stops the run here, before anything is
    /// downloaded, installed or changed; one that answers with an error is there, and the run goes
    /// on (its next request says more).
    async fn record_api_server(&mut self, client: &Client) -> Result<(), ClusterError> {
        self.facts.server_version = match cluster::server_version(client).await {
            Ok(version) => version,
            Err(
                e @ (ClusterError::Forbidden { .. }
                | ClusterError::Api {
                    source: kube::Error::Api(_),
                    ..
                }),
            ) => format!("unknown ({e})"),
            Err(ClusterError::Api { source, .. }) => {
                let why = crate::error_chain(&source);
                self.facts.server_version = format!("unreachable ({why})");
                return Err(ClusterError::ApiServerUnreachable {
                    cluster: self.facts.cluster.clone(),
                    why,
                });
            }
            Err(e) => format!("unknown ({e})"),
        };
        self.events
            .note(&format!("API server {}", self.facts.server_version));
        Ok(())
    }

    async fn provision_and_restart(
        &mut self,
        session: &mut Session,
        p: &Provisioning,
        limits: &Limits,
    ) -> Result<(), ClusterError> {
        let provision = self.events.phase("provision");
        let (client, ns) = (&session.client.clone(), &session.namespace.clone());
        let created = cluster::provision_secrets(client, ns, &p.secrets).await?;
        self.created.extend(created);
        for s in &p.secrets {
            let name = s.metadata.name.clone().unwrap_or_default();
            let keys: Vec<String> = s.data.iter().flatten().map(|(k, _)| k.clone()).collect();
            self.facts
                .changes
                .push(format!("applied secrets/{name} (keys {})", keys.join(", ")));
        }
        if p.profile == Profile::Strict {
            cluster::set_strict_verification(client, ns).await?;
            self.facts.changes.push(
                "argocd-cmd-params-cm: set *.repo.server.ca.cert.path for the four clients (profile strict)"
                    .into(),
            );
        }
        if p.grpc_info_log {
            let repo_servers: Vec<_> = session.with_role(Role::RepoServer).cloned().collect();
            if repo_servers.is_empty() {
                return Err(no_role(Role::RepoServer, ns));
            }
            for w in &repo_servers {
                cluster::set_grpc_info_log(client, ns, w).await?;
                self.facts.changes.push(format!(
                    "{}: GRPC_GO_LOG_SEVERITY_LEVEL=info on container {}",
                    w.reference(),
                    w.container.as_deref().unwrap_or_default()
                ));
            }
        }

        drop(provision);
        let _restart = self.events.phase("restart");
        session.rediscover().await?;
        // What mounts a Secret this run wrote reads it only when it starts: every one of them
        // restarts, the repo-server for argocd-repo-server-tls as much as for the mTLS Secret.
        let written: Vec<&str> = p
            .secrets
            .iter()
            .filter_map(|s| s.metadata.name.as_deref())
            .collect();
        let restart: Vec<_> = session
            .workloads
            .iter()
            .filter(|w| w.mounts_mtls() || w.mounts_any(&written))
            .cloned()
            .collect();
        if !session.workloads.iter().any(|w| w.mounts_mtls()) {
            self.events.problem(&format!(
                "no workload mounts `{}`: creating it changes nothing until the installer mounts it (config/mount/* say how, in its terms)",
                crate::pki::secrets::MTLS_SECRET
            ));
        }
        let at = time::OffsetDateTime::now_utc();
        for w in &restart {
            cluster::restart(client, ns, w, at).await?;
            self.facts
                .changes
                .push(format!("restarted {:?}/{}", w.kind, w.name));
            self.events
                .note(&format!("restarted {:?}/{}", w.kind, w.name));
        }
        session
            .wait_all(&restart, limits.rollout, &mut self.events.notes())
            .await?;
        Ok(())
    }

    async fn verify(
        &mut self,
        session: &mut Session,
        checks: &[Check],
        settings: &ProbeSettings,
        since: time::OffsetDateTime,
        baseline: Baseline,
    ) -> Result<(), RunError> {
        let _phase = self.events.phase("verify");
        let (finding_checks, probe_checks): (Vec<Check>, Vec<Check>) = checks
            .iter()
            .cloned()
            .partition(|c| matches!(c.case.kind, CaseKind::Finding { .. }));
        let snapshot = cluster::read_snapshot(&session.client, &session.namespace, true).await?;
        // The snapshot's discovery is the session's from here on: the probes, logs and judges
        // use the same workloads.
        session.workloads = snapshot.workloads.clone();
        if self.material.is_none() {
            self.material = Some(match material_from_secret(&snapshot, &session.namespace) {
                Ok(m) => m,
                // The no-certificate attempts need no identity, and an open repo-server admits
                // anyone: a throwaway client still proves that. The valid-client case is not judged.
                Err(why) => {
                    let why = format!("{why:#}");
                    // The server's identity still has a judge when the installation's server
                    // CA can be read: the Secret's server-ca.crt, else argocd-repo-server-tls's ca.crt.
                    let server_ca = [
                        (
                            crate::pki::secrets::MTLS_SECRET,
                            crate::pki::secrets::mtls_keys::SERVER_CA,
                        ),
                        (crate::pki::secrets::TLS_SECRET, "ca.crt"),
                    ]
                    .into_iter()
                    .find_map(|(secret, key)| {
                        let pem = snapshot.secrets.get(secret)?.data.as_ref()?.get(key)?;
                        Some((
                            pem.0.clone(),
                            format!("secret/{}/{secret} key {key}", session.namespace),
                        ))
                    });
                    self.events.note(&format!(
                        "{why}; probing with a stand-in client identity (the valid-client case is not judged){}",
                        server_ca
                            .as_ref()
                            .map(|(_, o)| format!("; the server is verified against {o}"))
                            .unwrap_or_default()
                    ));
                    match server_ca {
                        Some((pem, origin)) => {
                            ProbePki::stand_in_with_server_ca(why.clone(), &pem, &origin).or_else(
                                |e| {
                                    ProbePki::stand_in(format!(
                                        "{why}; the server CA in {origin} is unusable: {e}"
                                    ))
                                },
                            )?
                        }
                        None => ProbePki::stand_in(why)?,
                    }
                }
            });
        }
        let material = self.material.as_ref().expect("set above");

        let (replicas, not_running) = session.open_replicas(self.connect, &self.events).await?;
        let mut endpoints = Vec::new();
        for r in &replicas {
            endpoints.push(session.endpoint(r, &self.server_name));
        }
        self.addresses = replicas
            .iter()
            .map(|r| format!("pod/{} ({})", r.pod.name, r.route.describe()))
            .collect();
        if self.connect == crate::kubernetes::session::Connect::InCluster {
            for e in session
                .service_endpoints(&replicas, &self.server_name)
                .await?
            {
                self.events.note(&format!(
                    "{}: reached by its DNS name ({}.{}.svc -> {})",
                    e.label,
                    e.label.trim_start_matches("service/"),
                    session.namespace,
                    e.addr
                ));
                self.addresses
                    .push(format!("{} (by its DNS name, {})", e.label, e.addr));
                endpoints.push(e);
            }
        }
        if !probe_checks.is_empty() {
            let mut executed =
                runner::execute(&endpoints, material, &probe_checks, settings, &self.events).await;
            if self.connect == crate::kubernetes::session::Connect::InCluster {
                // This run is the pod inside the cluster: every route it took is in-cluster.
                for r in &mut executed.results {
                    r.path = Some(crate::report::ProbePath::InCluster);
                }
            }
            self.results.extend(executed.results);
            self.argocd_version = executed.argocd_version;
            self.server_certificates = executed.server_certificates;
        }
        let mut stopped = Vec::new();
        for pod in not_running {
            let pod = session.stopped(pod).await;
            self.events.note(&format!(
                "pod/{} cannot serve: {}{}",
                pod.pod.name,
                pod.pod.state,
                pod.last_error
                    .as_deref()
                    .map(|e| format!("; its last run logged: {e}"))
                    .unwrap_or_default()
            ));
            stopped.push(pod);
        }
        let mut observed_replicas = Vec::new();
        // What each replica announces is read only when a case judges it, and after its relays
        // were observed (the extra connection is not the probes' evidence).
        let announce = finding_checks.iter().any(|c| {
            matches!(
                c.case.kind,
                CaseKind::Finding {
                    case: KubeCase::RestartedAfterSecret | KubeCase::PeerIsRepoServer
                }
            )
        });
        for r in &replicas {
            let mut observed = session.observe_replica(r, since).await;
            if announce {
                observed.announcement = probe::no_certificate_attempt(
                    r.route.grpc_addr(),
                    &self.server_name,
                    settings.timeout,
                    settings.silence,
                )
                .await;
            }
            observed_replicas.push(observed);
        }
        let in_cluster = match self.in_cluster.clone() {
            Some(plan) => {
                let identity = material.files();
                let probe = !probe_checks.is_empty();
                Some(
                    self.in_cluster_probes(session, &replicas, &plan, identity, probe)
                        .await?,
                )
            }
            None => None,
        };
        self.facts.repo_server_pods = snapshot.repo_server_pods.clone();
        self.facts.mtls_workloads = snapshot.workloads.iter().map(Workload::facts).collect();
        let observed = KubernetesObservations {
            namespace: session.namespace.clone(),
            baseline,
            stopped,
            replicas: observed_replicas,
            config: session.observe_namespace(snapshot).await,
            in_cluster,
        };
        for result in checks::kubernetes::evaluate(&finding_checks, &observed) {
            self.events.emit(Event::CheckJudged(&result));
            self.results.push(result);
        }
        // The cluster, API server, changes and provenance were recorded as they happened.
        Ok(())
    }
}

/// The "before" half of migration evidence: each running replica tried without a certificate.
async fn baseline(
    session: &Session,
    server_name: &str,
    settings: &ProbeSettings,
    connect: crate::kubernetes::session::Connect,
    events: &Events,
) -> Result<Baseline, ClusterError> {
    let mut out = Vec::new();
    let (replicas, not_running) = session.open_replicas(connect, events).await?;
    for pod in not_running {
        events.note(&format!(
            "pod/{} is not running before provisioning ({}): no baseline for it",
            pod.name, pod.state
        ));
    }
    for r in replicas {
        let outcome = probe::no_certificate_attempt(
            r.route.grpc_addr(),
            server_name,
            settings.timeout,
            settings.silence,
        )
        .await;
        let attempt = BaselineAttempt {
            pod: r.pod.name.clone(),
            outcome,
            relay_failed: r.route.grpc_relay_failures() > 0,
        };
        events.note(&attempt.describe());
        out.push(attempt);
    }
    Ok(Baseline::Attempts(out))
}

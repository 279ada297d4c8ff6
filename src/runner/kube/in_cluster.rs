//! `--in-cluster`: the probe Job and the two intruder Jobs, started after the run's own probes,
//! their results collected from the pods' logs, and everything they needed deleted again.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::Client;

use super::{KubeRun, RunError};
use crate::kubernetes::cluster::{self, ClusterError};
use crate::kubernetes::incluster::{
    self, IDENTITY_DIR, INTRUDER_BEGIN, INTRUDER_END, IntruderAttempt, ProbeJob, REPORT_BEGIN,
    REPORT_END, REPORTS_DIR,
};
use crate::kubernetes::install::{self, Created};
use crate::kubernetes::netpol::{self, PodView, TargetPort};
use crate::kubernetes::observed::{InClusterObservation, IntruderKind, IntruderObservation};
use crate::kubernetes::session::{GRPC_PORT, HEALTH_PORT, Replica, Session};
use crate::kubernetes::workloads::Role;
use crate::pki::identity_files;
use crate::report::{CheckResult, ProbePath, Report};

/// What `--in-cluster` runs.
#[derive(Debug, Clone)]
pub struct InClusterPlan {
    /// The tool's image.
    pub image: String,
    /// Arguments the probe pod's `run` gets from this run's command line (selection, timing).
    pub run_args: Vec<String>,
    /// How long each pod may take, from its creation to its end.
    pub limit: Duration,
    /// Each intruder connection's and handshake's limit.
    pub attempt_timeout: Duration,
}

/// The label the intruder without a client's labels carries (no Argo CD component has it).
const INTRUDER_LABEL: (&str, &str) = ("app.kubernetes.io/name", "argocd-mtls-verify-intruder");

impl KubeRun {
    /// Runs the in-cluster probe and the intruders, and deletes what they needed, however they
    /// end. The probe's results join `self.results` (marked [`ProbePath::InCluster`]).
    pub(super) async fn in_cluster_probes(
        &mut self,
        session: &Session,
        replicas: &[Replica],
        plan: &InClusterPlan,
        identity: Option<Vec<(&'static str, Vec<u8>)>>,
        probe: bool,
    ) -> Result<InClusterObservation, RunError> {
        let _phase = self.events.phase("in-cluster");
        let base = format!("amv-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let before = self.created.len();
        let outcome = self
            .probe_and_intrude(
                session,
                replicas,
                plan,
                identity.filter(|_| probe),
                &base,
                probe,
            )
            .await;
        // Everything this step created goes, whatever happened (the Jobs with their pods).
        let mine: Vec<Created> = self.created.split_off(before);
        let mut removed = 0;
        for c in mine.iter().rev() {
            let gone = if c.resource.kind == "Job" {
                incluster::delete_job(&session.client, &session.namespace, &c.name).await
            } else {
                c.delete(&session.client).await
            };
            match gone {
                Ok(()) => removed += 1,
                Err(e) => self.events.problem(&format!(
                    "could not delete {}: {e}; delete it by hand (label {}={base})",
                    c.label(),
                    incluster::RUN_LABEL
                )),
            }
        }
        self.events.note(&format!(
            "in-cluster: deleted the {removed} of {} objects it created",
            mine.len()
        ));
        self.facts.changes.push(format!(
            "in-cluster probe: created and deleted {} ({removed} of {} deleted)",
            mine.iter()
                .map(Created::label)
                .collect::<Vec<_>>()
                .join(", "),
            mine.len()
        ));
        outcome
    }

    async fn probe_and_intrude(
        &mut self,
        session: &Session,
        replicas: &[Replica],
        plan: &InClusterPlan,
        identity: Option<Vec<(&'static str, Vec<u8>)>>,
        base: &str,
        probe: bool,
    ) -> Result<InClusterObservation, RunError> {
        // The labels of a client component's pods: what the repo-server's NetworkPolicy admits.
        let client_labels = Role::CLIENTS
            .iter()
            .find_map(|role| {
                session
                    .with_role(*role)
                    .find(|w| !w.selector.is_empty())
                    .map(|w| w.selector.clone())
            })
            .unwrap_or_default();

        // 1. The probe: the endpoint suite from inside, as a client component (when the run's
        // selection has endpoint checks at all).
        if probe {
            self.run_probe_job(session, plan, identity, base, &client_labels)
                .await?;
        } else {
            self.events
                .note("in-cluster: no endpoint check is selected: only the intruders run");
        }
        self.intruders(session, replicas, plan, base, client_labels)
            .await
    }

    async fn run_probe_job(
        &mut self,
        session: &Session,
        plan: &InClusterPlan,
        identity: Option<Vec<(&'static str, Vec<u8>)>>,
        base: &str,
        client_labels: &BTreeMap<String, String>,
    ) -> Result<(), RunError> {
        let client = &session.client;
        let ns = session.namespace.as_str();
        let mut objects = incluster::read_only_rbac(base, ns, base);
        let secret = format!("{base}-identity");
        let mut args: Vec<String> = [
            "run",
            "--target",
            "cluster",
            "--namespace",
            ns,
            "--connect",
            "in-cluster",
            "--suite",
            "endpoint",
            "--report-dir",
            REPORTS_DIR,
            "--format",
            "json",
            "--print-report",
        ]
        .map(str::to_owned)
        .to_vec();
        if let Some(files) = &identity {
            objects.push(incluster::identity_secret(&secret, ns, base, files));
            let at = |f: &str| format!("{IDENTITY_DIR}/{f}");
            for (flag, file) in [
                ("--ca-cert", identity_files::CLIENT_CA),
                ("--client-cert", identity_files::CLIENT_CERT),
                ("--client-key", identity_files::CLIENT_KEY),
                ("--server-ca", identity_files::SERVER_CA),
            ] {
                args.extend([flag.to_owned(), at(file)]);
            }
            if files.iter().any(|(f, _)| *f == identity_files::CA_KEY) {
                args.extend(["--ca-key".to_owned(), at(identity_files::CA_KEY)]);
                self.events.note(
                    "in-cluster: the CA key goes into the probe's Secret for the probe's life (the cases that mint from it need it); the Secret is deleted with the probe",
                );
            }
        }
        args.extend(plan.run_args.iter().cloned());
        let probe = ProbeJob {
            name: format!("{base}-probe"),
            run_id: base.to_owned(),
            image: plan.image.clone(),
            pull_policy: None,
            labels: client_labels.clone(),
            args,
            identity_secret: identity.is_some().then(|| secret.clone()),
            service_account: Some(base.to_owned()),
            deadline: plan.limit,
        };
        objects.push(probe.job(ns));
        self.apply(client, ns, objects, plan.limit).await?;
        self.events.note(&format!(
            "in-cluster: job/{} runs {} with the labels of a client component ({})",
            probe.name,
            plan.image,
            words(client_labels)
        ));
        let end = incluster::wait_for(client, ns, &probe.name, plan.limit).await?;
        let text = incluster::unframe(&end.log, REPORT_BEGIN, REPORT_END).ok_or_else(|| {
            ClusterError::ProbePod {
                job: probe.name.clone(),
                why: format!(
                    "pod/{} exited {} without a report; its log ends: {}",
                    end.pod,
                    end.exit_code,
                    last_lines(&end.log, 5)
                ),
            }
        })?;
        let report: Report = serde_json::from_str(text).map_err(|e| ClusterError::ProbePod {
            job: probe.name.clone(),
            why: format!("pod/{}'s report does not parse: {e}", end.pod),
        })?;
        self.events.note(&format!(
            "in-cluster: pod/{} exited {} ({} results, {})",
            end.pod,
            end.exit_code,
            report.checks.len(),
            report.summary.verdict
        ));
        self.results.extend(inside(report.checks));
        Ok(())
    }

    /// The intruders: no certificate, every target, one unlabelled and one as a client.
    async fn intruders(
        &mut self,
        session: &Session,
        replicas: &[Replica],
        plan: &InClusterPlan,
        base: &str,
        client_labels: BTreeMap<String, String>,
    ) -> Result<InClusterObservation, RunError> {
        let client = &session.client;
        let ns = session.namespace.as_str();
        let pods = cluster::role_pods(client, ns, &session.workloads, Role::RepoServer).await?;
        let first = pods.first();
        let services = match first {
            Some(pod) => cluster::services_to(client, ns, pod, GRPC_PORT, HEALTH_PORT).await?,
            None => vec![],
        };
        let mut targets: Vec<(String, String)> = services
            .iter()
            .map(|s| {
                (
                    format!("service/{}", s.name),
                    format!("{}.{ns}.svc:{}", s.name, s.port),
                )
            })
            .collect();
        targets.extend(replicas.iter().filter_map(|r| {
            let ip = r.pod.ip.as_deref()?;
            let host = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip.to_owned()
            };
            Some((format!("pod/{}", r.pod.name), format!("{host}:{GRPC_PORT}")))
        }));
        let policies = cluster::network_policies(client, ns).await;
        let mut intruders = Vec::new();
        for (kind, labels) in [
            (
                IntruderKind::Unlabelled,
                BTreeMap::from([(INTRUDER_LABEL.0.to_owned(), INTRUDER_LABEL.1.to_owned())]),
            ),
            (IntruderKind::ClientLabelled, client_labels),
        ] {
            let name = format!("{base}-{}", kind.name());
            let mut args = vec![
                "intrude".to_owned(),
                "--server-name".to_owned(),
                self.server_name.clone(),
                "--timeout-ms".to_owned(),
                plan.attempt_timeout.as_millis().to_string(),
            ];
            for (label, addr) in &targets {
                args.extend(["--to".to_owned(), format!("{label}={addr}")]);
            }
            let job = ProbeJob {
                name: name.clone(),
                run_id: base.to_owned(),
                image: plan.image.clone(),
                pull_policy: None,
                labels: labels.clone(),
                args,
                identity_secret: None,
                service_account: None,
                deadline: plan.limit,
            };
            self.apply(client, ns, vec![job.job(ns)], plan.limit)
                .await?;
            let end = incluster::wait_for(client, ns, &name, plan.limit).await?;
            let text =
                incluster::unframe(&end.log, INTRUDER_BEGIN, INTRUDER_END).ok_or_else(|| {
                    ClusterError::ProbePod {
                        job: name.clone(),
                        why: format!(
                            "pod/{} exited {} without its attempts; its log ends: {}",
                            end.pod,
                            end.exit_code,
                            last_lines(&end.log, 5)
                        ),
                    }
                })?;
            let attempts: Vec<IntruderAttempt> =
                serde_json::from_str(text).map_err(|e| ClusterError::ProbePod {
                    job: name.clone(),
                    why: format!("pod/{}'s attempts do not parse: {e}", end.pod),
                })?;
            let judged = attempts
                .into_iter()
                .map(|a| {
                    // A Service routes to the repo-server's pods: its first stands for them.
                    let target = match a.target.strip_prefix("pod/") {
                        Some(name) => pods
                            .iter()
                            .find(|p| p.metadata.name.as_deref() == Some(name)),
                        None => first,
                    };
                    let admission = match (&policies, target) {
                        (Ok(policies), Some(pod)) => Some(admission_to(policies, pod, ns, &labels)),
                        _ => None,
                    };
                    (a, admission)
                })
                .collect::<Vec<_>>();
            for (a, admission) in &judged {
                self.events.note(&format!(
                    "in-cluster: {} -> {}: {}{}{}",
                    kind.name(),
                    a.target,
                    admission
                        .as_ref()
                        .map_or("policies not read".into(), |a| a.describe()),
                    match &a.reach {
                        incluster::Reach::Connected => "; reached the port".to_owned(),
                        other => format!("; not reached ({other:?})"),
                    },
                    a.tls
                        .as_ref()
                        .map(|o| format!("; TLS without a certificate: {}", o.outcome))
                        .unwrap_or_default()
                ));
            }
            intruders.push(IntruderObservation {
                kind,
                pod: end.pod,
                labels,
                attempts: judged,
            });
        }
        Ok(InClusterObservation {
            policies: policies.map(|p| p.iter().filter_map(|p| p.metadata.name.clone()).collect()),
            intruders,
        })
    }

    /// Server-side applies `objects`, recording what it created.
    async fn apply(
        &mut self,
        client: &Client,
        ns: &str,
        objects: Vec<serde_json::Value>,
        limit: Duration,
    ) -> Result<(), RunError> {
        let objects = objects.into_iter().map(incluster::dynamic).collect();
        install::apply_all(client, objects, ns, limit, |_| {}, &mut self.created).await?;
        Ok(())
    }
}

/// What the policies say about a pod labelled `labels` in `ns` connecting to `pod`'s gRPC port.
fn admission_to(
    policies: &[k8s_openapi::api::networking::v1::NetworkPolicy],
    pod: &k8s_openapi::api::core::v1::Pod,
    ns: &str,
    labels: &BTreeMap<String, String>,
) -> netpol::Admission {
    let empty = BTreeMap::new();
    let target_labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    let port_name = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.container_port == i32::from(GRPC_PORT))
        .and_then(|p| p.name.as_deref());
    netpol::admission(
        policies,
        &PodView {
            labels: target_labels,
            namespace: ns,
        },
        TargetPort {
            number: GRPC_PORT,
            name: port_name,
        },
        &PodView {
            labels,
            namespace: ns,
        },
    )
}

/// The probe pod's endpoint results as this run reports them: marked in-cluster, their
/// endpoint named so beside the same replica's port-forward results.
fn inside(results: Vec<CheckResult>) -> Vec<CheckResult> {
    results
        .into_iter()
        .map(|mut r| {
            r.path = Some(ProbePath::InCluster);
            r.endpoint = format!("in-cluster {}", r.endpoint);
            r
        })
        .collect()
}

fn words(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "none found".into();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn last_lines(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

//! The Kubernetes cases: judged on what a Kubernetes target observed (its configuration, the
//! pods and the client components' logs), one file per subject, each returning [`Finding`]s:
//!
//! - [`secret`]: the Secret `argocd-repo-server-mtls` (keys, the client CA's parsing and expiry);
//! - [`identities`]: the pair each client presents, wherever it comes from (chain, key match,
//!   expiry; shared or unique);
//! - [`workloads`]: mounts, restarts after the Secret changed, the repo-server's TLS switch,
//!   whether clients verify the repo-server;
//! - [`components`]: client logs and the application controller's calls;
//! - [`pods`]: replicas after the probes, replicas that cannot run, the no-mTLS baseline;
//! - [`network`]: the in-cluster intruder pods' attempts beside what the NetworkPolicies allow.
//!
//! [`evaluate`] folds the findings into one result per scope (the namespace, or a pod) and id.

pub mod components;
pub mod identities;
pub mod network;
pub mod pods;
pub mod remedy;
pub mod secret;
pub mod workloads;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use super::expected_text;
use super::judgement::Judgement;
use crate::endpoint::Protocol;
use crate::kubernetes::observed::{KubernetesObservations, NamespaceObservation};
use crate::kubernetes::workloads::{FileSource, MtlsFile, Role};
use crate::pki::secrets::{MTLS_SECRET, mtls_keys};
use crate::report::{CheckResult, Observed, SkipKind, Verdict};
use crate::suite::{CaseKind, Check, KubeCase};

/// How one finding came out. Whether a failure fails the run is not the finding's to say: the
/// suite's severity for its case decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Right in this respect.
    Holds,
    /// Wrong in this respect.
    Fails,
    /// Nothing could be concluded (e.g. a read failed, or the port-forward did): no verdict.
    Inconclusive,
    /// The case does not arise on this target (e.g. no Application has asked the controller to
    /// call the repo-server): skipped as not applicable, which does not hold the gate.
    NotApplicable,
}

/// One judged finding: its case, its subject when the case is judged per subject (a component:
/// `config/mount/argocd-server`), how it came out, and what was found, naming the object and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The case it answers.
    pub case: KubeCase,
    /// What it is about within its scope, when the case has one result per subject (a
    /// component's name); `None` for one result per scope.
    pub subject: Option<String>,
    /// How it came out.
    pub status: Status,
    /// What was found, naming the object and key (never Secret data).
    pub detail: String,
}

impl Finding {
    fn new(case: KubeCase, status: Status, detail: impl Into<String>) -> Self {
        Finding {
            case,
            subject: None,
            status,
            detail: detail.into(),
        }
    }
    /// Right in this respect.
    pub fn pass(case: KubeCase, detail: impl Into<String>) -> Self {
        Self::new(case, Status::Holds, detail)
    }
    /// Wrong in this respect.
    pub fn fail(case: KubeCase, detail: impl Into<String>) -> Self {
        Self::new(case, Status::Fails, detail)
    }
    /// [`Finding::pass`] if `holds`, else [`Finding::fail`].
    pub fn holds_if(case: KubeCase, holds: bool, detail: impl Into<String>) -> Self {
        Self::new(
            case,
            if holds { Status::Holds } else { Status::Fails },
            detail,
        )
    }
    /// Nothing could be concluded; the run gets no verdict.
    pub fn inconclusive(case: KubeCase, detail: impl Into<String>) -> Self {
        Self::new(case, Status::Inconclusive, detail)
    }
    /// The case does not arise here; skipped as not applicable.
    pub fn not_applicable(case: KubeCase, detail: impl Into<String>) -> Self {
        Self::new(case, Status::NotApplicable, detail)
    }
    /// The same finding, about `subject` (a component).
    pub fn about(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
    /// The result id: the case's, with `/<subject>` when it has one.
    pub fn id(&self) -> String {
        match &self.subject {
            Some(subject) => format!("{}/{subject}", self.case.id()),
            None => self.case.id().to_owned(),
        }
    }
    /// Whether nothing is wrong in this respect (it holds, or the case does not arise).
    pub fn ok(&self) -> bool {
        matches!(self.status, Status::Holds | Status::NotApplicable)
    }
}

/// Findings about one scope: the namespace (configuration, components) or one repo-server pod.
#[derive(Debug, Clone, Default)]
struct ScopedFindings {
    /// `namespace/argocd` or the pod name; becomes the results' `endpoint`.
    scope: String,
    /// What was judged there.
    findings: Vec<Finding>,
}

/// The cases a Secret that could not be read leaves unobserved.
const NEEDS_THE_SECRET: [KubeCase; 12] = [
    KubeCase::ClientIdentities,
    KubeCase::MtlsSecretKeys,
    KubeCase::MtlsClientPair,
    KubeCase::ClientCaParses,
    KubeCase::ClientCertChains,
    KubeCase::ClientKeyMatches,
    KubeCase::CertNotExpired,
    KubeCase::CertExpiryHorizon,
    KubeCase::ServerCaPresent,
    KubeCase::MtlsSecretExtraKeys,
    KubeCase::RestartedAfterSecret,
    KubeCase::ClientRestartedAfterSecret,
];

/// Judges the finding-based checks of `checks` on what a Kubernetes run observed: one result per
/// scope (the namespace or a pod) and finding id.
pub fn evaluate(checks: &[Check], observed: &KubernetesObservations) -> Vec<CheckResult> {
    let namespace_scope = format!("namespace/{}", observed.namespace);
    let mut scopes = Vec::new();
    for (pod, finding) in pods::judge_baseline(&observed.baseline) {
        scopes.push(ScopedFindings {
            scope: pod.map_or_else(|| namespace_scope.clone(), str::to_owned),
            findings: vec![finding],
        });
    }
    for stopped in &observed.stopped {
        scopes.push(ScopedFindings {
            scope: stopped.pod.name.clone(),
            findings: vec![pods::judge_stopped(stopped)],
        });
    }
    for replica in &observed.replicas {
        let mut findings = pods::judge_replica(replica);
        findings.push(pods::judge_peer(replica));
        if let Some(secret) = &observed.config.mtls_secret {
            findings.push(workloads::judge_repo_server_restart(
                secret,
                replica,
                &observed.config.workloads,
                &observed.namespace,
            ));
        }
        scopes.push(ScopedFindings {
            scope: replica.before.name.clone(),
            findings,
        });
    }
    scopes.push(ScopedFindings {
        scope: namespace_scope.clone(),
        findings: judge_namespace(&observed.namespace, &observed.config),
    });
    if let Some(in_cluster) = &observed.in_cluster {
        let mut findings = network::judge_policies(in_cluster);
        for intruder in &in_cluster.intruders {
            findings.extend(network::judge_intruder(intruder));
        }
        scopes.push(ScopedFindings {
            scope: namespace_scope.clone(),
            findings,
        });
    }
    let mut not_observed: BTreeMap<KubeCase, String> = observed
        .config
        .secret_unreadable
        .iter()
        .flat_map(|why| NEEDS_THE_SECRET.map(|case| (case, why.clone())))
        .collect();
    if observed.in_cluster.is_none() {
        for case in [KubeCase::IntruderRefused, KubeCase::PolicyEnforced] {
            not_observed.insert(case, "needs the intruder pods of --in-cluster".into());
        }
    }
    fold(checks, &scopes, &not_observed, &namespace_scope)
}

/// The namespace's findings: the Secret (when it was read), what mounts it and when it started,
/// the settings, the Applications and each client component's log.
pub fn judge_namespace(namespace: &str, config: &NamespaceObservation) -> Vec<Finding> {
    let mut out = Vec::new();
    if config.secret_read {
        let cmd_params = config.cmd_params.as_ref();
        let mut read_keys = std::collections::BTreeSet::new();
        let mut ca_key = None;
        for w in &config.workloads {
            for r in w.mtls_reads(cmd_params) {
                if let FileSource::SecretKey { secret, key } = r.source
                    && secret == MTLS_SECRET
                {
                    if r.file == MtlsFile::ClientCa {
                        ca_key.get_or_insert(key.clone());
                    }
                    read_keys.insert(key);
                }
            }
        }
        out.extend(secret::judge_mtls_secret(
            config.mtls_secret.as_ref(),
            ca_key.as_deref().unwrap_or(mtls_keys::CLIENT_CA),
            &read_keys,
        ));
        out.extend(identities::judge_identities(
            &config.workloads,
            cmd_params,
            &identities::SecretsRead {
                found: &config.secrets,
                refused: &config.unreadable_secrets,
            },
        ));
    }
    if let Some(secret) = &config.mtls_secret {
        out.extend(workloads::judge_client_restarts(
            secret,
            &config.workloads,
            &config.mounting_pods,
            &config.client_logs,
            config.cmd_params.as_ref(),
            namespace,
        ));
    }
    out.extend(workloads::judge_mounts(
        &config.workloads,
        config.cmd_params.as_ref(),
        namespace,
    ));
    out.push(workloads::judge_mesh(
        &config.workloads,
        &config.mounting_pods,
    ));
    out.push(workloads::judge_repo_server_tls(config.cmd_params.as_ref()));
    out.extend(workloads::judge_server_verification(
        config.cmd_params.as_ref(),
    ));
    match &config.applications {
        Ok(Some((applications, conditions))) => out.push(components::judge_repo_server_calls(
            *applications,
            conditions,
        )),
        Ok(None) => {}
        Err(e) => out.push(
            Finding::inconclusive(KubeCase::ClientReachesRepoServer, e.to_string())
                .about(Role::ApplicationController.upstream()),
        ),
    }
    for log in &config.client_logs {
        match &log.lines {
            Ok(Some(lines)) => out.extend(components::judge_client_log(&log.component, lines)),
            Ok(None) => {}
            Err(e) => out.push(
                Finding::inconclusive(KubeCase::ClientCertLoaded, e.to_string())
                    .about(&log.component),
            ),
        }
    }
    out
}

/// One result per (scope, finding id), several findings with one id (e.g. two certificates'
/// expiry) folded into one result that fails if any of them fails. A check no finding answers is
/// skipped (reported at `skip_scope`), with `not_observed`'s reason for its case when there is one.
fn fold(
    checks: &[Check],
    scopes: &[ScopedFindings],
    not_observed: &BTreeMap<KubeCase, String>,
    skip_scope: &str,
) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for check in checks {
        let CaseKind::Finding { case } = check.case.kind else {
            continue;
        };
        let expected = expected_text(&check.case.kind, Protocol::Grpc);
        let mut answered = false;
        for scoped in scopes {
            let mut subjects: Vec<&Option<String>> = scoped
                .findings
                .iter()
                .filter(|f| f.case == case)
                .map(|f| &f.subject)
                .collect();
            subjects.sort_unstable();
            subjects.dedup();
            for subject in subjects {
                answered = true;
                let group: Vec<&Finding> = scoped
                    .findings
                    .iter()
                    .filter(|f| f.case == case && &f.subject == subject)
                    .collect();
                let verdict = if group.iter().any(|f| f.status == Status::Inconclusive) {
                    Verdict::Error
                } else if group.iter().all(|f| f.status == Status::NotApplicable) {
                    Verdict::Skip
                } else if group.iter().all(|f| f.ok()) {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                };
                // The reason is what decided: every finding for a pass, the failing ones else.
                let reason = group
                    .iter()
                    .filter(|f| matches!(verdict, Verdict::Pass | Verdict::Skip) || !f.ok())
                    .map(|f| f.detail.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                let evidence: Vec<String> = group.iter().map(|f| f.detail.clone()).collect();
                let mut judged = Judgement::new(verdict, reason)
                    .observed(Observed::Findings {
                        findings: evidence.clone(),
                    })
                    .evidence(evidence);
                judged.skip = (verdict == Verdict::Skip).then_some(SkipKind::NotApplicable);
                out.push(judged.into_result(
                    check,
                    group[0].id(),
                    scoped.scope.clone(),
                    expected.clone(),
                ));
            }
        }
        if !answered {
            let reason = not_observed
                .get(&case)
                .cloned()
                .unwrap_or_else(|| "not observed on this target".into());
            out.push(
                Judgement::not_judged(reason)
                    .observed(Observed::Findings { findings: vec![] })
                    .into_result(check, check.id.clone(), skip_scope.to_owned(), expected),
            );
        }
    }
    out
}

#[cfg(test)]
mod fold_tests {
    use super::*;
    use crate::suite::{Severity, Suite};

    fn kube_checks() -> Vec<Check> {
        Suite::load("kubernetes").unwrap().checks()
    }

    fn find<'a>(results: &'a [CheckResult], id: &str, endpoint: &str) -> &'a CheckResult {
        results
            .iter()
            .find(|r| r.id == id && r.endpoint == endpoint)
            .unwrap_or_else(|| panic!("no {id} [{endpoint}] in {results:#?}"))
    }

    /// One result per (scope, case, subject); same-subject findings fold (any failure fails);
    /// the severity is the suite's, whatever the finding; inconclusive means no verdict; an
    /// unanswered case is skipped with the reason given for it.
    #[test]
    fn findings_become_results() {
        let ns = ScopedFindings {
            scope: "namespace/argocd".into(),
            findings: vec![
                Finding::pass(KubeCase::MtlsSecretKeys, "has client-ca.crt"),
                Finding::pass(KubeCase::CertNotExpired, "client-ca.crt ok"),
                Finding::fail(KubeCase::CertNotExpired, "client.crt expired"),
                Finding::pass(KubeCase::Mount, "mounts").about("argocd-server"),
                Finding::fail(KubeCase::Mount, "no client-ca.crt").about("argocd-repo-server"),
                Finding::fail(KubeCase::ClientVerifiesServer, "off").about("argocd-server"),
                Finding::fail(KubeCase::ClientRestartedAfterSecret, "restart advised")
                    .about("argocd-server"),
            ],
        };
        let pod = ScopedFindings {
            scope: "argocd-repo-server-0".into(),
            findings: vec![
                Finding::inconclusive(KubeCase::PodReady, "API timeout"),
                Finding::fail(KubeCase::RestartedAfterSecret, "old CA").about("argocd-repo-server"),
            ],
        };
        let not_observed =
            BTreeMap::from([(KubeCase::PodNoProbeFailures, "RBAC: list events".to_owned())]);
        let results = fold(
            &kube_checks(),
            &[ns, pod],
            &not_observed,
            "namespace/argocd",
        );
        let n = "namespace/argocd";
        assert_eq!(
            find(&results, "config/mtls-secret-keys", n).verdict,
            Verdict::Pass
        );
        let expiry = find(&results, "config/cert-not-expired", n);
        assert_eq!(expiry.verdict, Verdict::Fail);
        assert_eq!(expiry.reason, "client.crt expired");
        assert_eq!(expiry.evidence.len(), 2);
        assert_eq!(
            find(&results, "config/mount/argocd-server", n).verdict,
            Verdict::Pass
        );
        assert_eq!(
            find(&results, "config/mount/argocd-repo-server", n).verdict,
            Verdict::Fail
        );
        // Severity is the suite's: the client's restart is advice, the repo-server's required.
        for (id, scope, severity) in [
            (
                "config/client-verifies-server/argocd-server",
                n,
                Severity::Advisory,
            ),
            (
                "config/client-restarted-after-secret/argocd-server",
                n,
                Severity::Advisory,
            ),
            (
                "config/restarted-after-secret/argocd-repo-server",
                "argocd-repo-server-0",
                Severity::Required,
            ),
        ] {
            let r = find(&results, id, scope);
            assert_eq!((r.verdict, r.severity), (Verdict::Fail, severity), "{id}");
        }
        assert_eq!(
            find(&results, "pod/ready", "argocd-repo-server-0").verdict,
            Verdict::Error
        );
        let skipped = find(&results, "pod/no-probe-failures", n);
        assert_eq!(
            (skipped.verdict, skipped.reason.as_str()),
            (Verdict::Skip, "RBAC: list events")
        );
        assert_eq!(
            find(&results, "pod/restarts-unchanged", n).reason,
            "not observed on this target"
        );
        let summary = crate::report::Summary::of(&results, false, false);
        assert_eq!(summary.exit_code(), 1, "required failures fail the run");
    }
}

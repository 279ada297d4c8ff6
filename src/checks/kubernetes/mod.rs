//! The Kubernetes cases: judged on what a Kubernetes target observed (its configuration, the
//! pods and the client components' logs), one file per subject, each returning [`Finding`]s:
//!
//! - [`secret`]: the Secret `argocd-repo-server-mtls` (keys, the client CA's parsing and expiry);
//! - [`identities`]: the pair each client presents, wherever it comes from (chain, key match,
//!   expiry; shared or unique);
//! - [`workloads`]: mounts, restarts after the Secret changed, the repo-server's TLS switch,
//!   whether clients verify the repo-server;
//! - [`components`]: client logs and the application controller's calls;
//! - [`pods`]: replicas after the probes, replicas that cannot run, the no-mTLS baseline.
//!
//! [`evaluate`] folds the findings into one result per scope (the namespace, or a pod) and id.

pub mod components;
pub mod identities;
pub mod pods;
pub mod secret;
pub mod workloads;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use super::expected_text;
use crate::endpoint::Protocol;
use crate::kubernetes::observed::{KubernetesObservations, NamespaceObservation};
use crate::kubernetes::workloads::{FileSource, MtlsFile};
use crate::pki::secrets::{MTLS_SECRET, mtls_keys};
use crate::report::{CheckResult, Observed, SkipKind, Verdict};
use crate::suite::{CaseKind, Check, kube_ids as ids};

/// How one finding came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Right in this respect.
    Holds,
    /// Wrong in this respect: a required failure, which fails the run.
    Fails,
    /// Reported, never failing the run, whether it holds or not.
    Advice {
        /// Whether it holds.
        holds: bool,
    },
    /// Nothing could be concluded (e.g. a read failed, or the port-forward did): no verdict.
    Inconclusive,
    /// The case does not arise on this target (e.g. no Application has asked the controller to
    /// call the repo-server): skipped as not applicable, which does not hold the gate.
    NotApplicable,
}

/// One judged finding: an id of `suites/kubernetes.toml` (or a sub-id such as
/// `config/mount/argocd-server`), how it came out, and what was found, naming the object and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable id, e.g. `config/mtls-secret-keys`.
    pub id: String,
    /// How it came out.
    pub status: Status,
    /// What was found, naming the object and key (never Secret data).
    pub detail: String,
}

impl Finding {
    fn new(id: &str, status: Status, detail: impl Into<String>) -> Self {
        Finding {
            id: id.into(),
            status,
            detail: detail.into(),
        }
    }
    /// The configuration is right in this respect.
    pub fn pass(id: &str, detail: impl Into<String>) -> Self {
        Self::new(id, Status::Holds, detail)
    }
    /// The configuration is wrong in this respect; fails the run.
    pub fn fail(id: &str, detail: impl Into<String>) -> Self {
        Self::new(id, Status::Fails, detail)
    }
    /// Reported, never failing the run.
    pub fn advise(id: &str, holds: bool, detail: impl Into<String>) -> Self {
        Self::new(id, Status::Advice { holds }, detail)
    }
    /// Nothing could be concluded; the run gets no verdict.
    pub fn inconclusive(id: &str, detail: impl Into<String>) -> Self {
        Self::new(id, Status::Inconclusive, detail)
    }
    /// The case does not arise here; skipped as not applicable.
    pub fn not_applicable(id: &str, detail: impl Into<String>) -> Self {
        Self::new(id, Status::NotApplicable, detail)
    }
    /// Whether nothing is wrong in this respect (advice that holds, or a case that does not arise).
    pub fn ok(&self) -> bool {
        matches!(
            self.status,
            Status::Holds | Status::Advice { holds: true } | Status::NotApplicable
        )
    }
    /// Whether it is only reported, never failing the run.
    pub fn advisory(&self) -> bool {
        matches!(self.status, Status::Advice { .. })
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

/// The ids a Secret that could not be read leaves unobserved.
const NEEDS_THE_SECRET: [&str; 10] = [
    ids::CLIENT_IDENTITIES,
    ids::MTLS_SECRET_KEYS,
    ids::MTLS_CLIENT_PAIR,
    ids::CLIENT_CA_PARSES,
    ids::CLIENT_CERT_CHAINS,
    ids::CLIENT_KEY_MATCHES,
    ids::CERT_EXPIRY_HORIZON,
    ids::SERVER_CA_PRESENT,
    ids::MTLS_SECRET_EXTRA_KEYS,
    ids::RESTARTED_AFTER_SECRET,
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
    let not_observed: BTreeMap<String, String> = observed
        .config
        .secret_unreadable
        .iter()
        .flat_map(|why| NEEDS_THE_SECRET.map(|id| (id.to_owned(), why.clone())))
        .collect();
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
    let calls = format!(
        "{}/argocd-application-controller",
        ids::CLIENT_REACHES_REPO_SERVER
    );
    match &config.applications {
        Ok(Some((applications, conditions))) => out.push(components::judge_repo_server_calls(
            *applications,
            conditions,
        )),
        Ok(None) => {}
        Err(e) => out.push(Finding::inconclusive(&calls, e.to_string())),
    }
    for log in &config.client_logs {
        match &log.lines {
            Ok(Some(lines)) => out.extend(components::judge_client_log(&log.component, lines)),
            Ok(None) => {}
            Err(e) => out.push(Finding::inconclusive(
                &format!("{}/{}", ids::CLIENT_CERT_LOADED, log.component),
                e.to_string(),
            )),
        }
    }
    out
}

fn finding_matches(case_id: &str, finding_id: &str) -> bool {
    finding_id == case_id
        || finding_id
            .strip_prefix(case_id)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// One result per (scope, finding id), several findings with one id (e.g. two certificates'
/// expiry) folded into one result that fails if any of them fails. A check no finding answers is
/// skipped (reported at `skip_scope`), with `not_observed`'s reason for its id when there is one.
fn fold(
    checks: &[Check],
    scopes: &[ScopedFindings],
    not_observed: &BTreeMap<String, String>,
    skip_scope: &str,
) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for check in checks
        .iter()
        .filter(|c| matches!(c.case.kind, CaseKind::Finding))
    {
        let result = |id: String,
                      endpoint: &str,
                      (verdict, skip): (Verdict, Option<SkipKind>),
                      reason: String,
                      evidence: Vec<String>,
                      advisory| {
            CheckResult {
                id,
                title: check.case.title.clone(),
                suite: check.suite.clone(),
                action: check.case.action.clone(),
                requirement: check.case.requirement.clone(),
                spec: check.case.spec.clone(),
                severity: if advisory {
                    crate::suite::Severity::Advisory
                } else {
                    check.case.severity
                },
                controls: check.case.controls.clone(),
                verdict,
                skip_kind: skip,
                expected: expected_text(&check.case.kind, Protocol::Grpc),
                observed: Observed::Findings {
                    findings: evidence.clone(),
                },
                reason,
                evidence,
                duration_ms: 0.0,
                endpoint: endpoint.to_owned(),
            }
        };
        let mut answered = false;
        for scoped in scopes {
            let mut ids: Vec<&str> = scoped
                .findings
                .iter()
                .filter(|f| finding_matches(&check.case.id, &f.id))
                .map(|f| f.id.as_str())
                .collect();
            ids.sort_unstable();
            ids.dedup();
            for id in ids {
                answered = true;
                let group: Vec<&Finding> = scoped.findings.iter().filter(|f| f.id == id).collect();
                let verdict = if group.iter().any(|f| f.status == Status::Inconclusive) {
                    Verdict::Error
                } else if group.iter().all(|f| f.status == Status::NotApplicable) {
                    Verdict::Skip
                } else if group.iter().all(|f| f.ok()) {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                };
                // A group is advisory only if every finding that decides it is.
                let deciding: Vec<&&Finding> = group
                    .iter()
                    .filter(|f| matches!(verdict, Verdict::Pass | Verdict::Skip) || !f.ok())
                    .collect();
                let advisory = deciding.iter().all(|f| f.advisory());
                let reason = deciding
                    .iter()
                    .map(|f| f.detail.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                let evidence = group.iter().map(|f| f.detail.clone()).collect();
                let skip = (verdict == Verdict::Skip).then_some(SkipKind::NotApplicable);
                out.push(result(
                    id.to_owned(),
                    &scoped.scope,
                    (verdict, skip),
                    reason,
                    evidence,
                    advisory,
                ));
            }
        }
        if !answered {
            let reason = not_observed
                .get(&check.case.id)
                .cloned()
                .unwrap_or_else(|| "not observed on this target".into());
            out.push(result(
                check.id.clone(),
                skip_scope,
                (Verdict::Skip, Some(SkipKind::MissingInput)),
                reason,
                vec![],
                false,
            ));
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

    /// One result per (scope, finding id); same-id findings fold (any failure fails); the
    /// deciding findings' advisory flag sets the severity; inconclusive means no verdict; an
    /// unanswered case is skipped with the reason given for it.
    #[test]
    fn findings_become_results() {
        let ns = ScopedFindings {
            scope: "namespace/argocd".into(),
            findings: vec![
                Finding::pass("config/mtls-secret-keys", "has client-ca.crt"),
                Finding::pass("config/cert-expiry-horizon", "client-ca.crt ok"),
                Finding::fail("config/cert-expiry-horizon", "client.crt expired"),
                Finding::pass("config/mount/argocd-server", "mounts"),
                Finding::fail("config/mount/argocd-repo-server", "no client-ca.crt"),
                Finding::advise("config/client-verifies-server/argocd-server", false, "off"),
                // Prefix matching is per path segment: this must not answer `config/mount`.
                Finding::fail("config/mountain", "unrelated"),
            ],
        };
        let pod = ScopedFindings {
            scope: "argocd-repo-server-0".into(),
            findings: vec![Finding::inconclusive("pod/ready", "API timeout")],
        };
        let not_observed = BTreeMap::from([(
            "pod/no-probe-failures".to_owned(),
            "RBAC: list events".to_owned(),
        )]);
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
        let expiry = find(&results, "config/cert-expiry-horizon", n);
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
        let verifies = find(&results, "config/client-verifies-server/argocd-server", n);
        assert_eq!(
            (verifies.verdict, verifies.severity),
            (Verdict::Fail, Severity::Advisory)
        );
        assert!(!results.iter().any(|r| r.id == "config/mountain"));
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

//! The Kubernetes cases, judged on the findings a Kubernetes target made (configuration audit, pod
//! state, component logs): one result per scope and finding id.

use serde_json::json;

use super::expected_text;
use crate::endpoint::Protocol;
use crate::kubernetes::audit::Finding;
use crate::probe::{Outcome, ProbeOutcome};
use crate::report::{CheckResult, SkipKind, Verdict};
use crate::suite::{CaseKind, Check};

/// Findings about one scope: the namespace (configuration, components) or one repo-server pod.
#[derive(Debug, Clone, Default)]
pub struct ScopedFindings {
    /// `namespace/argocd` or the pod name; becomes the results' `endpoint`.
    pub scope: String,
    /// What the Kubernetes target found there.
    pub findings: Vec<Finding>,
}

fn finding_matches(case_id: &str, finding_id: &str) -> bool {
    finding_id == case_id
        || finding_id
            .strip_prefix(case_id)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Judges the finding-based checks: one result per (scope, finding id), several findings with one
/// id (e.g. two certificates' expiry) folded into one result that fails if any of them fails. A
/// check no finding answers is skipped (reported at `skip_scope`), with `not_observed`'s reason for
/// its id when there is one.
pub fn evaluate_findings(
    checks: &[Check],
    scopes: &[ScopedFindings],
    not_observed: &std::collections::BTreeMap<String, String>,
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
                      evidence,
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
                observed: json!({ "findings": evidence }),
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
                let verdict = if group.iter().any(|f| f.inconclusive) {
                    Verdict::Error
                } else if group.iter().all(|f| f.not_applicable) {
                    Verdict::Skip
                } else if group.iter().all(|f| f.ok) {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                };
                // A group is advisory only if every finding that decides it is.
                let deciding: Vec<&&Finding> = group
                    .iter()
                    .filter(|f| matches!(verdict, Verdict::Pass | Verdict::Skip) || !f.ok)
                    .collect();
                let advisory = deciding.iter().all(|f| f.advisory);
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

/// The migration baseline (`baseline/no-cert-accepted-before-mtls`), judged from one attempt
/// without a certificate made before mTLS was configured: it must have been admitted, or later
/// refusals cannot be credited to mTLS. Nothing seen through a failing port-forward counts.
pub fn baseline_finding(outcome: &ProbeOutcome, what: &str, relay_failed: bool) -> Finding {
    use crate::suite::kube_ids::BASELINE_NO_CERT_ACCEPTED as ID;
    match outcome.outcome {
        _ if relay_failed => Finding::inconclusive(ID, format!("{what}; the port-forward failed")),
        Outcome::Accepted => Finding::pass(ID, what),
        Outcome::Rejected => Finding::fail(
            ID,
            format!(
                "{what}: already refused before mTLS was configured, so later refusals cannot be attributed to it"
            ),
        ),
        _ => Finding::inconclusive(ID, what),
    }
}

#[cfg(test)]
mod finding_tests {
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
        let not_observed = std::collections::BTreeMap::from([(
            "pod/no-probe-failures".to_owned(),
            "RBAC: list events".to_owned(),
        )]);
        let results = evaluate_findings(
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

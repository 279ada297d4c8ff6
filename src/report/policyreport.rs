//! The report as a `PolicyReport` (`wgpolicyk8s.io/v1alpha2`, the format Kyverno, Trivy Operator
//! and kubescape write): one result per check, and one `run/gate` result that carries the run's
//! verdict and, when it has none, why. Written into the namespace by `run --policy-report`.

use super::{CheckResult, Report, Severity, Verdict};

/// The PolicyReport's name in the namespace: one per namespace, replaced by each run.
pub const NAME: &str = "argocd-mtls-verify";
/// Its `source` and `policy` prefix.
pub const SOURCE: &str = "argocd-mtls-verify";

/// `pass`, `fail`, `warn` (an advisory failure), `error` or `skip`.
fn result_word(c: &CheckResult) -> &'static str {
    match (c.verdict, c.severity) {
        (Verdict::Pass, _) => "pass",
        (Verdict::Fail, Severity::Advisory) => "warn",
        (Verdict::Fail, _) => "fail",
        (Verdict::Skip, _) => "skip",
        (Verdict::Error, _) => "error",
    }
}

/// The PolicyReport object for `namespace`.
pub fn render(report: &Report, namespace: &str) -> serde_json::Value {
    let at = report.run.finished_at;
    let timestamp = serde_json::json!({"seconds": at.unix_timestamp(), "nanos": 0});
    let mut results: Vec<serde_json::Value> = Vec::with_capacity(report.checks.len() + 1);
    let s = &report.summary;
    let gate_message = match (&report.run.stopped, s.verdict) {
        (Some(why), _) => format!("no verdict: the run stopped early ({why})"),
        (None, Verdict::Pass) => format!("{} checks passed; no required check failed", s.passed),
        (None, Verdict::Fail) => format!(
            "{} required checks failed: {}",
            s.failed,
            failing(report).join(", ")
        ),
        (None, _) => format!(
            "no verdict: {} required checks have none and {} were not judged for want of input",
            s.errors, s.not_judged
        ),
    };
    results.push(serde_json::json!({
        "policy": format!("{SOURCE}/run"),
        "rule": "run/gate",
        "result": match s.verdict { Verdict::Pass => "pass", Verdict::Fail => "fail", _ => "error" },
        "severity": "critical",
        "category": "Repo-server mTLS",
        "source": SOURCE,
        "scored": true,
        "message": gate_message,
        "timestamp": timestamp,
        "properties": {"run": report.run.id, "exit-code": s.exit_code().to_string()},
    }));
    for c in &report.checks {
        let mut properties = serde_json::json!({
            "endpoint": c.endpoint,
            "expected": c.expected,
            "severity": match c.severity { Severity::Required => "required", Severity::Advisory => "advisory" },
        });
        if let Some(p) = c.path {
            properties["path"] = p.name().into();
        }
        if !c.controls.is_empty() {
            properties["controls"] = c.controls.join(",").into();
        }
        results.push(serde_json::json!({
            "policy": format!("{SOURCE}/{}", c.suite),
            "rule": c.id,
            "result": result_word(c),
            "severity": match c.severity { Severity::Required => "high", Severity::Advisory => "low" },
            "category": "Repo-server mTLS",
            "source": SOURCE,
            "scored": true,
            "message": truncate(&c.reason, 1024),
            "timestamp": timestamp,
            "properties": properties,
        }));
    }
    let count = |w: &str| results.iter().filter(|r| r["result"] == w).count();
    let summary = serde_json::json!({
        "pass": count("pass"), "fail": count("fail"), "warn": count("warn"),
        "error": count("error"), "skip": count("skip"),
    });
    serde_json::json!({
        "apiVersion": "wgpolicyk8s.io/v1alpha2",
        "kind": "PolicyReport",
        "metadata": {
            "name": NAME,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": SOURCE},
        },
        "summary": summary,
        "results": results,
    })
}

fn failing(report: &Report) -> Vec<String> {
    let mut ids: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail && c.severity == Severity::Required)
        .map(|c| c.id.clone())
        .collect();
    ids.dedup();
    ids.truncate(10);
    ids
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

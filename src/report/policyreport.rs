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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_report;

    fn results(report: &Report) -> Vec<(String, String)> {
        render(report, "argocd")["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["rule"].as_str().unwrap().to_owned(),
                    r["result"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn one_result_per_check_and_a_gate_that_says_why() {
        use Severity::*;
        use Verdict::*;
        let passing = test_report(
            &[
                ("a", Pass, Required),
                ("b", Fail, Advisory),
                ("c", Skip, Required),
            ],
            None,
        );
        assert_eq!(
            results(&passing),
            [
                ("run/gate", "pass"),
                ("a", "pass"),
                ("b", "warn"),
                ("c", "skip")
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        let object = render(&passing, "argocd");
        assert_eq!(object["apiVersion"], "wgpolicyk8s.io/v1alpha2");
        assert_eq!(object["metadata"]["namespace"], "argocd");
        assert_eq!(object["summary"]["warn"], 1);
        assert_eq!(object["results"][1]["properties"]["path"], "in-cluster");
        // Every property is a string (the resource's schema says so).
        for r in object["results"].as_array().unwrap() {
            for (_, v) in r["properties"].as_object().unwrap() {
                assert!(v.is_string(), "{r}");
            }
        }

        let failing = test_report(&[("a", Fail, Required), ("d", Error, Required)], None);
        let object = render(&failing, "argocd");
        assert_eq!(object["results"][0]["result"], "fail");
        assert!(
            object["results"][0]["message"]
                .as_str()
                .unwrap()
                .contains("required checks failed: a")
        );
        assert_eq!(results(&failing)[2], ("d".to_owned(), "error".to_owned()));

        let no_verdict = test_report(&[("d", Error, Required)], None);
        let message = render(&no_verdict, "argocd")["results"][0]["message"].to_string();
        assert!(message.contains("no verdict"), "{message}");
        let stopped = test_report(&[("a", Pass, Required)], Some("interrupted (Ctrl-C)"));
        let gate = &render(&stopped, "argocd")["results"][0];
        assert_eq!(gate["result"], "error");
        assert!(
            gate["message"]
                .as_str()
                .unwrap()
                .contains("interrupted (Ctrl-C)"),
            "{gate}"
        );
    }
}

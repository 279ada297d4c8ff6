//! The report as a Kubernetes policy report, in either of the two APIs policy engines write:
//! OpenReports' `Report` (`openreports.io/v1alpha1`, what Kubewarden writes and Kyverno 1.15+ can)
//! or the `PolicyReport` of the retired policy working group (`wgpolicyk8s.io/v1alpha2`, Kyverno,
//! Trivy Operator, kubescape). Both carry the same results: one per check, and one `run/gate`
//! result that carries the run's verdict and, when it has none, why. Its `scope` is the
//! repo-server workload; each result names the pod or Service it is about (`resources`). Written
//! into the namespace by `run --policy-report`.

use super::{CheckResult, Report, Severity, Verdict};

/// The report's name in the namespace: one per namespace and API, replaced by each run.
pub const NAME: &str = "argocd-mtls-verify";
/// Its `source` and `policy` prefix.
pub const SOURCE: &str = "argocd-mtls-verify";

/// The two report resources, with the same schema for what this tool writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReportApi {
    /// `reports.openreports.io/v1alpha1`, kind `Report`: the current API.
    OpenReports,
    /// `policyreports.wgpolicyk8s.io/v1alpha2`, kind `PolicyReport`: the legacy API.
    PolicyReport,
}

impl ReportApi {
    /// In the order `--policy-report-api auto` prefers them.
    pub const ALL: [ReportApi; 2] = [ReportApi::OpenReports, ReportApi::PolicyReport];

    /// `openreports.io` or `wgpolicyk8s.io`.
    pub fn group(self) -> &'static str {
        match self {
            ReportApi::OpenReports => "openreports.io",
            ReportApi::PolicyReport => "wgpolicyk8s.io",
        }
    }

    /// `v1alpha1` or `v1alpha2`: the one version of each this tool writes.
    pub fn version(self) -> &'static str {
        match self {
            ReportApi::OpenReports => "v1alpha1",
            ReportApi::PolicyReport => "v1alpha2",
        }
    }

    /// `Report` or `PolicyReport`.
    pub fn kind(self) -> &'static str {
        match self {
            ReportApi::OpenReports => "Report",
            ReportApi::PolicyReport => "PolicyReport",
        }
    }

    /// The resource's plural, as RBAC rules and `kubectl get` name it.
    pub fn plural(self) -> &'static str {
        match self {
            ReportApi::OpenReports => "reports",
            ReportApi::PolicyReport => "policyreports",
        }
    }

    /// `group/version`.
    pub fn api_version(self) -> String {
        format!("{}/{}", self.group(), self.version())
    }
}

/// `reports.openreports.io/v1alpha1`: how `kubectl api-resources` and the CRD name it.
impl std::fmt::Display for ReportApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}/{}", self.plural(), self.group(), self.version())
    }
}

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

/// The report object of `api` for `namespace`.
pub fn render(report: &Report, namespace: &str, api: ReportApi) -> serde_json::Value {
    let refs = References::of(report, namespace);
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
    if let Some(scope) = &refs.scope {
        results[0]["resources"] = serde_json::json!([scope]);
    }
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
        let mut result = serde_json::json!({
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
        });
        if let Some(about) = refs.about(&c.endpoint) {
            result["resources"] = serde_json::json!([about]);
        }
        results.push(result);
    }
    let count = |w: &str| results.iter().filter(|r| r["result"] == w).count();
    let summary = serde_json::json!({
        "pass": count("pass"), "fail": count("fail"), "warn": count("warn"),
        "error": count("error"), "skip": count("skip"),
    });
    let mut object = serde_json::json!({
        "apiVersion": api.api_version(),
        "kind": api.kind(),
        "metadata": {
            "name": NAME,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": SOURCE},
        },
        "summary": summary,
        "results": results,
    });
    if api == ReportApi::OpenReports {
        object["source"] = SOURCE.into();
    }
    if let Some(scope) = refs.scope {
        object["scope"] = scope;
    }
    object
}

/// What the results are about, as object references: the repo-server workload is the report's
/// scope; a check of one replica names its pod, one through a Service names the Service.
struct References<'a> {
    namespace: &'a str,
    scope: Option<serde_json::Value>,
    pods: Vec<&'a str>,
}

impl<'a> References<'a> {
    fn of(report: &'a Report, namespace: &'a str) -> Self {
        let kube = report.subject.kubernetes.as_ref();
        let scope = kube
            .and_then(|k| {
                k.mtls_workloads
                    .iter()
                    .find(|w| w.role.as_deref() == Some("repo-server"))
            })
            .map(|w| reference("apps/v1", &w.kind, &w.name, namespace));
        let pods = kube
            .map(|k| k.repo_server_pods.iter().map(|p| p.name.as_str()).collect())
            .unwrap_or_default();
        References {
            namespace,
            scope,
            pods,
        }
    }

    /// The object a check's endpoint names (`POD`, `pod/POD`, `service/NAME`, each perhaps after
    /// `in-cluster `); none for the namespace's configuration, which the scope covers.
    fn about(&self, endpoint: &str) -> Option<serde_json::Value> {
        let endpoint = endpoint.strip_prefix("in-cluster ").unwrap_or(endpoint);
        let name = endpoint.split(' ').next().unwrap_or_default();
        if let Some(service) = name.strip_prefix("service/") {
            return Some(reference("v1", "Service", service, self.namespace));
        }
        let pod = name.strip_prefix("pod/").unwrap_or(name);
        self.pods
            .contains(&pod)
            .then(|| reference("v1", "Pod", pod, self.namespace))
    }
}

fn reference(api_version: &str, kind: &str, name: &str, namespace: &str) -> serde_json::Value {
    serde_json::json!({"apiVersion": api_version, "kind": kind, "name": name, "namespace": namespace})
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
        render(report, "argocd", ReportApi::PolicyReport)["results"]
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
        let object = render(&passing, "argocd", ReportApi::PolicyReport);
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
        let object = render(&failing, "argocd", ReportApi::PolicyReport);
        assert_eq!(object["results"][0]["result"], "fail");
        assert!(
            object["results"][0]["message"]
                .as_str()
                .unwrap()
                .contains("required checks failed: a")
        );
        assert_eq!(results(&failing)[2], ("d".to_owned(), "error".to_owned()));

        let no_verdict = test_report(&[("d", Error, Required)], None);
        let message =
            render(&no_verdict, "argocd", ReportApi::PolicyReport)["results"][0]["message"]
                .to_string();
        assert!(message.contains("no verdict"), "{message}");
        let stopped = test_report(&[("a", Pass, Required)], Some("interrupted (Ctrl-C)"));
        let gate = &render(&stopped, "argocd", ReportApi::PolicyReport)["results"][0];
        assert_eq!(gate["result"], "error");
        assert!(
            gate["message"]
                .as_str()
                .unwrap()
                .contains("interrupted (Ctrl-C)"),
            "{gate}"
        );
    }

    #[test]
    fn both_apis_carry_the_same_results_about_the_workload_its_pods_and_services() {
        use Severity::*;
        use Verdict::*;
        let mut report = test_report(
            &[
                ("a", Pass, Required),
                ("b", Pass, Required),
                ("c", Pass, Required),
                ("d", Pass, Required),
            ],
            None,
        );
        for (check, endpoint) in report.checks.iter_mut().zip([
            "argocd-repo-server-x",
            "in-cluster service/argocd-repo-server",
            "namespace/argocd",
            "in-cluster pod/argocd-repo-server-x (10.0.0.5:8081)",
        ]) {
            check.endpoint = endpoint.into();
        }
        report.subject.kubernetes = Some(crate::report::KubeFacts {
            namespace: "argocd".into(),
            repo_server_pods: vec![crate::report::PodFacts {
                name: "argocd-repo-server-x".into(),
                ..Default::default()
            }],
            mtls_workloads: vec![crate::report::WorkloadFacts {
                kind: "Deployment".into(),
                name: "gitops-argocd-repo-server".into(),
                role: Some("repo-server".into()),
                ..Default::default()
            }],
            ..Default::default()
        });
        let open = render(&report, "argocd", ReportApi::OpenReports);
        let legacy = render(&report, "argocd", ReportApi::PolicyReport);
        assert_eq!(open["apiVersion"], "openreports.io/v1alpha1");
        assert_eq!(open["kind"], "Report");
        assert_eq!(open["source"], SOURCE);
        assert_eq!(legacy["apiVersion"], "wgpolicyk8s.io/v1alpha2");
        assert!(legacy.get("source").is_none(), "not in the legacy schema");
        assert_eq!(open["results"], legacy["results"]);
        let deployment = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "name": "gitops-argocd-repo-server", "namespace": "argocd"});
        assert_eq!(open["scope"], deployment);
        let about: Vec<_> = open["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.get("resources").map(|r| r[0]["kind"].as_str().unwrap()))
            .collect();
        assert_eq!(
            about,
            [
                Some("Deployment"),
                Some("Pod"),
                Some("Service"),
                None,
                Some("Pod")
            ]
        );
        assert_eq!(
            open["results"][2]["resources"][0]["name"],
            "argocd-repo-server"
        );
        // Without Kubernetes facts (an endpoint run), no reference is made up.
        let bare = render(
            &test_report(&[("a", Pass, Required)], None),
            "argocd",
            ReportApi::OpenReports,
        );
        assert!(bare.get("scope").is_none());
        assert!(bare["results"][1].get("resources").is_none());
        assert_eq!(
            ReportApi::OpenReports.to_string(),
            "reports.openreports.io/v1alpha1"
        );
    }
}

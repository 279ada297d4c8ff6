//! The Kubernetes judges' golden file: every verdict and reason the `kubernetes` suite gives on
//! the mock installation (one Secret, both client-verification states, a replica with a failed
//! probe), kept in tests/golden/cluster-mock-findings.json and compared on every run, as the demo
//! report is for the endpoint suite. After an intended change:
//! `UPDATE_GOLDEN=1 cargo test --test cluster_mock golden`.

use super::common;
use super::fixtures::*;

#[tokio::test]
async fn kubernetes_findings_match_the_golden_file() {
    use argocd_mtls_verify::report::diff::mask;
    use argocd_mtls_verify::report::events::Events;
    let checks = argocd_mtls_verify::suite::Suite::load("kubernetes")
        .unwrap()
        .checks();
    let (run, _) = verify_mock_installation(&checks, Events::silent()).await;
    let findings: Vec<serde_json::Value> = run
        .results
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "endpoint": r.endpoint,
                "severity": r.severity,
                "verdict": r.verdict,
                "skip_kind": r.skip_kind,
                "reason": mask(&r.reason),
            })
        })
        .collect();
    common::golden::assert_matches(
        "cluster-mock-findings.json",
        &serde_json::Value::Array(findings),
        "UPDATE_GOLDEN=1 cargo test --test cluster_mock golden",
    );
}

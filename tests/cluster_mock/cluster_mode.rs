//! Cluster mode end to end on the mock API: read-only unless asked, and provisioning that writes
//! exactly what it names.

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use super::fixtures::*;

/// `run --target cluster` end to end against the mock API server: it sends nothing but GET and
/// port-forward requests (the read-only guarantee), judges the configuration, pods and logs it read, and refuses to call
/// anything a pass that went through a failing port-forward.
#[tokio::test]
async fn cluster_mode_end_to_end_is_read_only() {
    let judged = JudgedIds::default();
    let events = argocd_mtls_verify::report::events::Events::to(vec![Box::new(judged.clone())]);
    let (run, seen) = verify_mock_installation(&all_checks(), events).await;

    // Opening a port-forward is a POST (SPDY, as kubectl) or a GET (WebSocket) on
    // pods/portforward: a `create` in RBAC terms that changes nothing, so not a write.
    let forward = |p: &str| p.ends_with("/portforward");
    let writes: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(m, p, ..)| m != Method::GET && !forward(p))
        .map(|(m, p, ..)| format!("{m} {p}"))
        .collect();
    assert!(writes.is_empty(), "read-only mode sent writes: {writes:?}");
    // The mock does not switch to SPDY (400): each forward then tried a WebSocket of its own.
    let forwards: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, p, ..)| forward(p))
        .map(|(m, ..)| m.to_string())
        .collect();
    assert!(
        forwards.contains(&"POST".to_owned()) && forwards.contains(&"GET".to_owned()),
        "{forwards:?}"
    );

    let verdict = |id: &str, endpoint: &str| {
        run.results
            .iter()
            .find(|r| r.id == id && r.endpoint == endpoint)
            .map(|r| (r.verdict, r.reason.clone()))
            .unwrap_or_else(|| panic!("no result {id} [{endpoint}]"))
    };
    // The runner emits one judged event per result, and the phases the report lists are the
    // ones its events finished.
    let mut emitted = judged.0.lock().unwrap().clone();
    let mut reported: Vec<String> = run
        .results
        .iter()
        .map(|r| format!("{} [{}]", r.id, r.endpoint))
        .collect();
    emitted.sort();
    reported.sort();
    assert_eq!(emitted, reported);
    let phases: Vec<String> = run.events.phases().into_iter().map(|p| p.name).collect();
    assert_eq!(phases, ["connect", "verify"]);

    use argocd_mtls_verify::report::Verdict::*;
    let ns = "namespace/argocd";
    assert_eq!(verdict("config/mtls-secret-keys", ns).0, Pass);
    assert_eq!(
        verdict("config/client-cert-chains/argocd-server", ns).0,
        Pass
    );
    assert_eq!(verdict("config/mount/argocd-repo-server", ns).0, Pass);
    assert_eq!(
        verdict("config/mount/argocd-application-controller", ns).0,
        Pass,
        "the StatefulSet is audited too"
    );
    assert_eq!(verdict("log/client-cert-loaded/argocd-server", ns).0, Pass);
    let (v, why) = verdict("config/client-verifies-server/argocd-server", ns);
    assert_eq!(v, Fail, "no CA path set: {why}");
    assert_eq!(verdict("pod/ready", "argocd-repo-server-a").0, Pass);
    assert_eq!(
        verdict("pod/no-probe-failures", "argocd-repo-server-a").0,
        Pass
    );
    let (v, why) = verdict("pod/no-probe-failures", "argocd-repo-server-b");
    assert_eq!(v, Fail);
    assert!(why.contains("Liveness probe failed"), "{why}");
    let (v, why) = verdict("baseline/no-cert-accepted-before-mtls", ns);
    assert_eq!(v, Skip);
    assert!(why.contains("no 'before' state"), "{why}");
    // Every replica is probed on its own, and nothing seen through a broken relay passes.
    for pod in ["argocd-repo-server-a", "argocd-repo-server-b"] {
        assert_eq!(verdict("transport/port-forward", pod).0, Error);
        let probed: Vec<_> = run
            .results
            .iter()
            .filter(|r| r.endpoint == pod && r.suite == "endpoint")
            .collect();
        assert!(!probed.is_empty(), "{pod} was not probed");
        for r in probed {
            assert_ne!(
                r.verdict, Pass,
                "{} [{pod}] passed through a failed port-forward",
                r.id
            );
        }
    }
    let summary = argocd_mtls_verify::report::Summary::of(&run.results, false, false);
    assert_ne!(summary.exit_code(), 0);
    assert_eq!(run.facts.repo_server_pods.len(), 2);
    assert_eq!(run.facts.server_version, "v1.33.1");
    assert!(run.facts.changes.is_empty());
    let facts = serde_json::to_string(&run.facts).unwrap();
    assert!(
        !facts.contains("PRIVATE KEY") && !facts.contains("BEGIN"),
        "{facts}"
    );
}

/// `--provision` writes exactly this, in this order: both Secrets (server-side apply), the strict
/// profile's cmd-params (merge patch), the grpc-go log level (strategic merge), then one restart
/// patch per discovered workload. A Secret an operator made is never overwritten: that run stops
/// before any write.
#[tokio::test]
async fn provisioning_writes_only_what_it_names_and_never_overwrites() {
    use argocd_mtls_verify::kubernetes::provision::{Profile, Provisioning};
    use argocd_mtls_verify::runner::kube::{KubeRun, Limits};
    argocd_mtls_verify::install_crypto_provider();
    let bundle = argocd_mtls_verify::pki::Bundle::Generated {
        bundle: argocd_mtls_verify::pki::generate(&Default::default()).unwrap(),
        origin: "bundle".into(),
    };
    let provisioning = Provisioning::from_bundle(&bundle, "argocd", Profile::Strict, true).unwrap();
    let limits = Limits {
        rollout: Duration::from_secs(1),
        download: Default::default(),
    };
    for operator_made in [true, false] {
        let api = installed_cluster_api();
        let (client, seen) = mock_client(move |method, path, query| {
            if method == Method::PATCH {
                // Answer with an object of the patched kind, as the API server does.
                let name = path.rsplit('/').next().unwrap_or_default();
                return ok(&match path {
                    p if p.contains("/secrets/") => provisioned_secret(),
                    p if p.contains("/deployments/") => workload("Deployment", name, 1),
                    p if p.contains("/statefulsets/") => workload("StatefulSet", name, 1),
                    _ => {
                        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
                    }
                });
            }
            let mut response = api(method, path, query);
            if operator_made && path.ends_with("/secrets/argocd-repo-server-mtls") {
                let mut s = provisioned_secret();
                s["metadata"]["labels"] = json!({"team": "platform"});
                response = ok(&s);
            }
            response
        });
        let mut run = KubeRun::new(
            "argocd",
            argocd_mtls_verify::report::events::Events::silent(),
        );
        let err = run
            .cluster(
                client,
                "mock",
                None,
                Some(&provisioning),
                &all_checks(),
                &Default::default(),
                &limits,
            )
            .await
            .unwrap_err()
            .to_string();
        let writes: Vec<(String, String, Option<String>)> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, ..)| m != Method::GET)
            .map(|(m, p, _, ctype, _)| (m.to_string(), p.clone(), ctype.clone()))
            .collect();
        if operator_made {
            assert!(err.contains("refusing to overwrite"), "{err}");
            assert!(writes.is_empty(), "{writes:?}");
            continue;
        }
        let ns = "/api/v1/namespaces/argocd";
        let apps = "/apis/apps/v1/namespaces/argocd";
        let expected: Vec<(&str, String, &str)> = vec![
            (
                "PATCH",
                format!("{ns}/secrets/argocd-repo-server-tls"),
                "application/apply-patch+yaml",
            ),
            (
                "PATCH",
                format!("{ns}/secrets/argocd-repo-server-mtls"),
                "application/apply-patch+yaml",
            ),
            (
                "PATCH",
                format!("{ns}/configmaps/argocd-cmd-params-cm"),
                "application/merge-patch+json",
            ),
            (
                "PATCH",
                format!("{apps}/deployments/argocd-repo-server"),
                "application/strategic-merge-patch+json",
            ),
            (
                "PATCH",
                format!("{apps}/deployments/argocd-applicationset-controller"),
                "application/strategic-merge-patch+json",
            ),
            (
                "PATCH",
                format!("{apps}/deployments/argocd-notifications-controller"),
                "application/strategic-merge-patch+json",
            ),
            (
                "PATCH",
                format!("{apps}/deployments/argocd-repo-server"),
                "application/strategic-merge-patch+json",
            ),
            (
                "PATCH",
                format!("{apps}/deployments/argocd-server"),
                "application/strategic-merge-patch+json",
            ),
            (
                "PATCH",
                format!("{apps}/statefulsets/argocd-application-controller"),
                "application/strategic-merge-patch+json",
            ),
        ];
        let got: Vec<(&str, String, &str)> = writes
            .iter()
            .map(|(m, p, c)| (m.as_str(), p.clone(), c.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(got, expected);
        // The rollout wait then fails on the mock (no such Deployment object): a setup error, not a verdict.
        assert!(err.contains("argocd-applicationset-controller"), "{err}");
        assert!(run.results.is_empty());
        let cm_patch = seen
            .lock()
            .unwrap()
            .iter()
            .find(|(_, p, ..)| p.ends_with("argocd-cmd-params-cm"))
            .map(|(.., body)| serde_json::from_slice::<Value>(body).unwrap())
            .unwrap();
        assert_eq!(
            cm_patch["data"]["server.repo.server.ca.cert.path"],
            "/app/config/reposerver/mtls/server-ca.crt"
        );
    }
}

/// A reporter that keeps the `id [endpoint]` of every judged check.
#[derive(Clone, Default)]
struct JudgedIds(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl argocd_mtls_verify::report::events::Reporter for JudgedIds {
    fn report(&mut self, event: &argocd_mtls_verify::report::events::Event<'_>) {
        if let argocd_mtls_verify::report::events::Event::CheckJudged(r) = event {
            self.0
                .lock()
                .unwrap()
                .push(format!("{} [{}]", r.id, r.endpoint));
        }
    }
}

//! Workload discovery on the plain and HA layouts, the Secret read only when allowed, RBAC errors
//! that name what to grant, and the exact restart patch.

use argocd_mtls_verify::checks::kubernetes::{secret, workloads};
use argocd_mtls_verify::kubernetes::cluster::{self, ClusterError};
use argocd_mtls_verify::kubernetes::workloads::{Workload, WorkloadKind};
use http::{Method, Response};
use kube::client::Body;
use serde_json::{Value, json};

use super::fixtures::*;

/// Discovery finds exactly the workloads that mount the mTLS Secret, StatefulSet included, on both
/// layouts; dex, redis and the HA redis pieces are left alone. The read path sends only GETs.
#[tokio::test]
async fn discovery_on_plain_and_ha_layouts_is_read_only() {
    for ha in [false, true] {
        let (client, seen) = mock_client(cluster_api(ha, None));
        let snap = cluster::read_snapshot(&client, "argocd", true)
            .await
            .unwrap();
        let got: Vec<(WorkloadKind, &str)> = snap
            .workloads
            .iter()
            .map(|w| (w.kind, w.name.as_str()))
            .collect();
        assert_eq!(got, expected_restart_set(), "ha={ha}");
        let repo = snap
            .workloads
            .iter()
            .find(|w| w.name == "argocd-repo-server")
            .unwrap();
        assert_eq!(repo.secrets["argocd-repo-server-mtls"], ["client-ca.crt"]);
        assert!(snap.mtls_secret.is_none(), "404 means no Secret");
        let methods: Vec<Method> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|(m, ..)| m.clone())
            .collect();
        assert!(!methods.is_empty());
        assert!(
            methods.iter().all(|m| m == Method::GET),
            "read path sent a write: {methods:?}"
        );
        // The audit of that snapshot: no Secret = mTLS off; mounts fine; one client verifies the server.
        let findings = secret::judge_mtls_secret(
            snap.mtls_secret.as_ref(),
            "client-ca.crt",
            &Default::default(),
        );
        assert!(
            !findings[0].ok() && findings[0].detail.contains("mTLS is OFF"),
            "{findings:?}"
        );
        assert!(
            workloads::judge_mounts(&snap.workloads, snap.cmd_params.as_ref(), "argocd")
                .iter()
                .all(|f| f.ok())
        );
        let verification = workloads::judge_server_verification(snap.cmd_params.as_ref());
        let verifying: Vec<bool> = verification.iter().map(|f| f.ok()).collect();
        assert_eq!(verifying, [false, true, false, false], "{verification:?}");
    }
}

/// Without permission to read Secrets (the default in cluster mode), the Secret is not even requested.
#[tokio::test]
async fn secret_is_not_read_unless_allowed() {
    let (client, seen) = mock_client(cluster_api(false, None));
    let snap = cluster::read_snapshot(&client, "argocd", false)
        .await
        .unwrap();
    assert!(!snap.secret_read);
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|(_, path, ..)| !path.contains("/secrets"))
    );
}

/// RBAC refusals name the verb and resource to grant.
#[tokio::test]
async fn forbidden_names_verb_and_resource() {
    let (client, _) = mock_client(|_, path, _| {
        if path.ends_with("/statefulsets") {
            let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "statefulsets.apps is forbidden: User \"ci\" cannot list resource \"statefulsets\"", "reason": "Forbidden", "code": 403});
            Response::builder()
                .status(403)
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap()
        } else if path.ends_with("/deployments") {
            ok(&list("Deployment", &[]))
        } else {
            not_found(path)
        }
    });
    let err = cluster::read_snapshot(&client, "argocd", false)
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::Forbidden { .. }));
    let text = err.to_string();
    assert!(
        text.contains("`list` on `statefulsets.apps` in namespace `argocd`"),
        "{text}"
    );
}

/// The restart is exactly `kubectl rollout restart`: a strategic-merge PATCH of the pod template's
/// restartedAt annotation, on the right resource for Deployments and StatefulSets.
#[tokio::test]
async fn restart_sends_the_kubectl_patch() {
    let at = time::macros::datetime!(2026-11-23 10:00:00.123 UTC);
    for (kind, name, path) in [
        (
            WorkloadKind::StatefulSet,
            "argocd-application-controller",
            "/apis/apps/v1/namespaces/argocd/statefulsets/argocd-application-controller",
        ),
        (
            WorkloadKind::Deployment,
            "argocd-server",
            "/apis/apps/v1/namespaces/argocd/deployments/argocd-server",
        ),
    ] {
        let object = workload(
            if kind == WorkloadKind::Deployment {
                "Deployment"
            } else {
                "StatefulSet"
            },
            name,
            1,
        );
        let (client, seen) = mock_client(move |_, _, _| ok(&object));
        let w = Workload {
            kind,
            name: name.into(),
            secrets: Default::default(),
            ..Default::default()
        };
        cluster::restart(&client, "argocd", &w, at).await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let (method, got_path, _, ctype, body) = &seen[0];
        assert_eq!(method, Method::PATCH);
        assert_eq!(got_path, path);
        assert_eq!(
            ctype.as_deref(),
            Some("application/strategic-merge-patch+json")
        );
        let body: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            body,
            json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-23T10:00:00Z"}}}}})
        );
    }
}

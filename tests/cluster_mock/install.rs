//! Installing a manifest: CRDs first and Established before the rest; errors that name the document.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Method;
use serde_json::json;

use super::fixtures::*;

const MANIFEST: &str = r#"# a trimmed install.yaml: the CRD comes after a Deployment on purpose
apiVersion: v1
kind: ServiceAccount
metadata:
  name: argocd-repo-server
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: argocd-repo-server
spec:
  selector:
    matchLabels:
      app.kubernetes.io/name: argocd-repo-server
  template:
    metadata:
      labels:
        app.kubernetes.io/name: argocd-repo-server
    spec:
      containers:
      - name: argocd-repo-server
        image: quay.io/argoproj/argocd:v3.5.1
---
# an empty document, as generated manifests sometimes have
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: applications.argoproj.io
spec:
  group: argoproj.io
  names:
    kind: Application
    plural: applications
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: argocd-server
rules: []
"#;

/// Install: CRDs are applied first and waited for (Established), then everything else in file
/// order; every write is a server-side apply (PATCH, apply-patch+yaml, our field manager, force);
/// namespaced objects go to the target namespace, cluster-scoped ones to the cluster.
#[tokio::test]
async fn install_applies_crds_first_and_waits_for_established() {
    use argocd_mtls_verify::kubernetes::install;
    let objects = install::parse_manifest(MANIFEST, "test manifest").unwrap();
    assert_eq!(objects.len(), 4, "the empty document is skipped");
    let crd_gets = Arc::new(Mutex::new(0));
    let counter = crd_gets.clone();
    let (client, seen) = mock_client(move |method, path, _| match (method.as_str(), path) {
        ("GET", "/api/v1") => ok(&resource_list(
            "v1",
            &[("serviceaccounts", "ServiceAccount", true)],
        )),
        ("GET", "/apis/apps/v1") => ok(&resource_list(
            "apps/v1",
            &[("deployments", "Deployment", true)],
        )),
        ("GET", "/apis/apiextensions.k8s.io/v1") => ok(&resource_list(
            "apiextensions.k8s.io/v1",
            &[(
                "customresourcedefinitions",
                "CustomResourceDefinition",
                false,
            )],
        )),
        ("GET", "/apis/rbac.authorization.k8s.io/v1") => ok(&resource_list(
            "rbac.authorization.k8s.io/v1",
            &[("clusterroles", "ClusterRole", false)],
        )),
        (
            "GET",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/applications.argoproj.io",
        ) => {
            let mut n = counter.lock().unwrap();
            *n += 1;
            // Not yet Established on the first look, Established on the second.
            let status = if *n < 2 { "False" } else { "True" };
            ok(
                &json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "applications.argoproj.io"},
                "spec": {"group": "argoproj.io", "names": {"kind": "Application", "plural": "applications"}, "scope": "Namespaced", "versions": []},
                "status": {"conditions": [{"type": "Established", "status": status}]}}),
            )
        }
        ("PATCH", _) => {
            ok(&json!({"apiVersion": "v1", "kind": "Status", "metadata": {"name": "x"}}))
        }
        _ => not_found(path),
    });
    let mut progress = Vec::new();
    let mut created = Vec::new();
    let applied = install::apply_all(
        &client,
        objects,
        "argocd",
        Duration::from_secs(5),
        |m| progress.push(m.to_owned()),
        &mut created,
    )
    .await
    .unwrap();
    assert_eq!(applied, 4);
    // One look before applying (it exists), then until Established.
    assert_eq!(*crd_gets.lock().unwrap(), 2, "waited for Established");
    // What answered 404 before the apply is what this run created; the CRD was already there.
    let created: Vec<String> = created.iter().map(|c| c.label()).collect();
    assert_eq!(
        created,
        [
            "ServiceAccount/argocd-repo-server in argocd",
            "Deployment/argocd-repo-server in argocd",
            "ClusterRole/argocd-server",
        ]
    );
    let seen = seen.lock().unwrap();
    let writes: Vec<&str> = seen
        .iter()
        .filter(|(m, ..)| m != Method::GET)
        .map(|(_, p, ..)| p.as_str())
        .collect();
    assert_eq!(
        writes,
        [
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/applications.argoproj.io",
            "/api/v1/namespaces/argocd/serviceaccounts/argocd-repo-server",
            "/apis/apps/v1/namespaces/argocd/deployments/argocd-repo-server",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/argocd-server",
        ]
    );
    let is_crd = |p: &str| p.ends_with("/customresourcedefinitions/applications.argoproj.io");
    let crd_apply = seen
        .iter()
        .position(|(m, p, ..)| m == Method::PATCH && is_crd(p))
        .unwrap();
    let last_crd_get = seen
        .iter()
        .rposition(|(m, p, ..)| m == Method::GET && is_crd(p))
        .unwrap();
    let first_other_write = seen
        .iter()
        .position(|(m, p, ..)| m == Method::PATCH && !is_crd(p))
        .unwrap();
    assert!(
        crd_apply < last_crd_get && last_crd_get < first_other_write,
        "the CRD is applied, then seen Established, before anything else is applied"
    );
    for (method, path, query, ctype, _) in seen.iter().filter(|(m, ..)| m == Method::PATCH) {
        assert_eq!(method, Method::PATCH);
        assert_eq!(
            ctype.as_deref(),
            Some("application/apply-patch+yaml"),
            "{path}"
        );
        assert!(
            query.contains("fieldManager=argocd-mtls-verify") && query.contains("force=true"),
            "{path}?{query}"
        );
    }
    assert!(
        progress
            .iter()
            .any(|m| m.contains("waiting for them to be Established")),
        "{progress:?}"
    );
}

#[test]
fn manifest_errors_name_the_document() {
    use argocd_mtls_verify::kubernetes::install;
    let err = install::parse_manifest("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "m.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("m.yaml") && err.contains("document #1"),
        "{err}"
    );
    let err = install::parse_manifest("key: [unclosed\n", "m.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("m.yaml: not a YAML manifest"), "{err}");
}

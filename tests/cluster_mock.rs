//! The Kubernetes layer against kube's mock service (tower-test), with objects shaped like the
//! v3.5.1 install.yaml and ha/install.yaml: workload discovery, the exact restart patch, rollout
//! waiting, RBAC errors, the config audit, and the read-only guarantee of the read path.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use argocd_mtls_verify::kubernetes::audit::{self, MtlsWorkload, WorkloadKind};
use argocd_mtls_verify::kubernetes::cluster::{self, ClusterError, RolloutState};
use http::{Method, Request, Response};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Secret;
use kube::client::Body;
use serde_json::{Value, json};

/// A pod template volume list as the v3.5 manifests write it: clients project the client pair and
/// server CA from `argocd-repo-server-mtls`, the repo-server projects only `client-ca.crt`.
fn volumes(name: &str) -> Value {
    let items = if name == "argocd-repo-server" {
        json!([{"key": "client-ca.crt", "path": "client-ca.crt"}])
    } else {
        json!([{"key": "client.crt", "path": "client.crt"}, {"key": "client.key", "path": "client.key"}, {"key": "server-ca.crt", "path": "server-ca.crt"}])
    };
    let mut v = vec![
        json!({"name": "argocd-cmd-params-cm", "configMap": {"name": "argocd-cmd-params-cm", "optional": true}}),
    ];
    if [
        "argocd-repo-server",
        "argocd-server",
        "argocd-application-controller",
        "argocd-applicationset-controller",
        "argocd-notifications-controller",
    ]
    .contains(&name)
    {
        v.push(json!({"name": "argocd-repo-server-mtls", "secret": {"secretName": "argocd-repo-server-mtls", "optional": true, "items": items}}));
    }
    if name == "argocd-repo-server" {
        v.push(json!({"name": "argocd-repo-server-tls", "secret": {"secretName": "argocd-repo-server-tls", "optional": true}}));
    }
    json!(v)
}

fn workload(kind: &str, name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": name, "namespace": "argocd", "generation": 1, "labels": {"app.kubernetes.io/name": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {"metadata": {"labels": {"app.kubernetes.io/name": name}},
                "spec": {"containers": [{"name": name, "image": "quay.io/argoproj/argocd:v3.5.1"}], "volumes": volumes(name)}}}
    })
}

/// (deployments, statefulsets) of the plain or HA install.
fn layout(ha: bool) -> (Vec<Value>, Vec<Value>) {
    let mut deployments = vec![
        workload("Deployment", "argocd-server", if ha { 2 } else { 1 }),
        workload("Deployment", "argocd-repo-server", if ha { 2 } else { 1 }),
        workload("Deployment", "argocd-applicationset-controller", 1),
        workload("Deployment", "argocd-notifications-controller", 1),
        workload("Deployment", "argocd-dex-server", 1),
    ];
    let mut statefulsets = vec![workload("StatefulSet", "argocd-application-controller", 1)];
    if ha {
        deployments.push(workload("Deployment", "argocd-redis-ha-haproxy", 3));
        statefulsets.push(workload("StatefulSet", "argocd-redis-ha-server", 3));
    } else {
        deployments.push(workload("Deployment", "argocd-redis", 1));
    }
    (deployments, statefulsets)
}

fn list(kind: &str, items: &[Value]) -> Value {
    json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {"resourceVersion": "1"}, "items": items})
}

fn not_found(what: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": format!("{what} not found"), "reason": "NotFound", "code": 404});
    Response::builder()
        .status(404)
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn ok(v: &Value) -> Response<Body> {
    Response::builder()
        .body(Body::from(serde_json::to_vec(v).unwrap()))
        .unwrap()
}

/// Each request the mock API server saw: method, path, query, content type, body.
type Seen = Arc<Mutex<Vec<(Method, String, String, Option<String>, Vec<u8>)>>>;

/// A kube client whose API server is `respond`, recording every request (method, path, content type, body).
fn mock_client(
    respond: impl Fn(&Method, &str, &str) -> Response<Body> + Send + 'static,
) -> (kube::Client, Seen) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = http_body_util::BodyExt::collect(body)
                .await
                .map(|b| b.to_bytes().to_vec())
                .unwrap_or_default();
            let path = parts.uri.path().to_owned();
            let query = parts.uri.query().unwrap_or_default().to_owned();
            let ctype = parts
                .headers
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            log.lock().unwrap().push((
                parts.method.clone(),
                path.clone(),
                query.clone(),
                ctype,
                bytes,
            ));
            send.send_response(respond(&parts.method, &path, &query));
        }
    });
    (kube::Client::new(service, "argocd"), seen)
}

fn expected_restart_set() -> Vec<(WorkloadKind, &'static str)> {
    vec![
        (WorkloadKind::Deployment, "argocd-applicationset-controller"),
        (WorkloadKind::Deployment, "argocd-notifications-controller"),
        (WorkloadKind::Deployment, "argocd-repo-server"),
        (WorkloadKind::Deployment, "argocd-server"),
        (WorkloadKind::StatefulSet, "argocd-application-controller"),
    ]
}

fn cluster_api(
    ha: bool,
    secret: Option<Value>,
) -> impl Fn(&Method, &str, &str) -> Response<Body> + Send + 'static {
    let (deployments, statefulsets) = layout(ha);
    move |_method, path, _query| match path {
        "/apis/apps/v1/namespaces/argocd/deployments" => ok(&list("Deployment", &deployments)),
        "/apis/apps/v1/namespaces/argocd/statefulsets" => ok(&list("StatefulSet", &statefulsets)),
        "/api/v1/namespaces/argocd/pods" => ok(&list("Pod", &[])),
        "/api/v1/namespaces/argocd/configmaps/argocd-cmd-params-cm" => ok(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cmd-params-cm"}, "data": {"controller.repo.server.ca.cert.path": "/app/config/reposerver/mtls/server-ca.crt"}}),
        ),
        "/api/v1/namespaces/argocd/secrets/argocd-repo-server-mtls" => match &secret {
            Some(s) => ok(s),
            None => not_found("secrets \"argocd-repo-server-mtls\""),
        },
        other => not_found(other),
    }
}

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
        let findings = audit::audit_mtls_secret(snap.mtls_secret.as_ref());
        assert!(
            !findings[0].ok && findings[0].detail.contains("mTLS is OFF"),
            "{findings:?}"
        );
        assert!(audit::audit_mounts(&snap.workloads).iter().all(|f| f.ok));
        let verification = audit::audit_server_verification(snap.cmd_params.as_ref());
        let verifying: Vec<bool> = verification.iter().map(|f| f.ok).collect();
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
        let w = MtlsWorkload {
            kind,
            name: name.into(),
            secrets: Default::default(),
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

fn with_status(mut w: Value, generation: i64, status: Value) -> Value {
    w["metadata"]["generation"] = generation.into();
    w["status"] = status;
    w
}

/// Rollout judgement on progressing, complete and failed rollouts.
#[test]
fn rollout_states() {
    let d = |status: Value| -> Deployment {
        serde_json::from_value(with_status(
            workload("Deployment", "argocd-server", 2),
            2,
            status,
        ))
        .unwrap()
    };
    let s = |status: Value| -> StatefulSet {
        serde_json::from_value(with_status(
            workload("StatefulSet", "argocd-application-controller", 1),
            2,
            status,
        ))
        .unwrap()
    };
    let progressing = |st: RolloutState| matches!(st, RolloutState::Progressing(_));
    assert!(progressing(cluster::deployment_rollout(&d(
        json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2})
    ))));
    assert!(progressing(cluster::deployment_rollout(&d(
        json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2})
    ))));
    assert!(progressing(cluster::deployment_rollout(&d(
        json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1})
    ))));
    assert_eq!(
        cluster::deployment_rollout(&d(
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2})
        )),
        RolloutState::Complete
    );
    let failed = cluster::deployment_rollout(&d(
        json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1,
        "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"argocd-server-7c\" has timed out progressing."}]}),
    ));
    assert!(
        matches!(&failed, RolloutState::Failed(m) if m.contains("progress deadline")),
        "{failed:?}"
    );
    assert!(progressing(cluster::statefulset_rollout(&s(
        json!({"observedGeneration": 2, "replicas": 1, "readyReplicas": 1, "updatedReplicas": 0, "currentRevision": "a-1", "updateRevision": "a-2"})
    ))));
    assert!(progressing(cluster::statefulset_rollout(&s(
        json!({"observedGeneration": 2, "replicas": 1, "readyReplicas": 0, "currentRevision": "a-2", "updateRevision": "a-2"})
    ))));
    assert_eq!(
        cluster::statefulset_rollout(&s(
            json!({"observedGeneration": 2, "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1, "currentRevision": "a-2", "updateRevision": "a-2"})
        )),
        RolloutState::Complete
    );
}

/// wait_rollout follows a StatefulSet through progress to completion, reports progress, and gives
/// up on a rollout that never finishes.
#[tokio::test]
async fn wait_rollout_progress_completion_and_timeout() {
    let calls = Arc::new(Mutex::new(0));
    let counter = calls.clone();
    let (client, _) = mock_client(move |_, _, _| {
        let mut n = counter.lock().unwrap();
        *n += 1;
        let status = if *n < 3 {
            json!({"observedGeneration": 2, "replicas": 1, "readyReplicas": 0, "currentRevision": "a-1", "updateRevision": "a-2"})
        } else {
            json!({"observedGeneration": 2, "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1, "currentRevision": "a-2", "updateRevision": "a-2"})
        };
        ok(&with_status(
            workload("StatefulSet", "argocd-application-controller", 1),
            2,
            status,
        ))
    });
    let w = MtlsWorkload {
        kind: WorkloadKind::StatefulSet,
        name: "argocd-application-controller".into(),
        secrets: Default::default(),
    };
    let mut messages = Vec::new();
    cluster::wait_rollout(
        &client,
        "argocd",
        &w,
        Duration::from_secs(5),
        Duration::from_millis(10),
        |m| messages.push(m.to_owned()),
    )
    .await
    .unwrap();
    assert_eq!(*calls.lock().unwrap(), 3);
    assert_eq!(
        messages,
        ["StatefulSet/argocd-application-controller: 0 of 1 pods are ready"]
    );

    let (client, _) = mock_client(|_, _, _| {
        ok(&with_status(
            workload("Deployment", "argocd-server", 1),
            2,
            json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 0}),
        ))
    });
    let w = MtlsWorkload {
        kind: WorkloadKind::Deployment,
        name: "argocd-server".into(),
        secrets: Default::default(),
    };
    let err = cluster::wait_rollout(
        &client,
        "argocd",
        &w,
        Duration::from_millis(60),
        Duration::from_millis(20),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("did not finish within"), "{err}");
}

fn secret_with(data: &[(&str, &[u8])]) -> Secret {
    use base64::Engine;
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| {
            (
                (*k).to_owned(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(v)),
            )
        })
        .collect();
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "argocd-repo-server-mtls"}, "data": data})).unwrap()
}

/// The config audit on a correct Secret and on Secrets broken one way each. `ca.crt` instead of
/// `client-ca.crt` must be a failure that says mTLS is silently off. No finding echoes Secret data.
#[test]
fn config_audit_on_correct_and_broken_secrets() {
    let fx = common::fixture();
    let other = common::fixture();
    let f = |name: &str| std::fs::read(fx.dir.path().join(name)).unwrap();
    let ca = f("ca.crt");
    let crt = f("client.crt");
    let key = f("client.key");
    let other_key = std::fs::read(other.dir.path().join("client.key")).unwrap();
    let other_crt = std::fs::read(other.dir.path().join("client.crt")).unwrap();
    /// (case name, the Secret, the one required failure expected as (finding id, text))
    type AuditCase<'a> = (&'a str, Secret, Option<(&'a str, &'a str)>);
    let cases: Vec<AuditCase> = vec![
        (
            "correct",
            secret_with(&[
                ("client-ca.crt", &ca),
                ("client.crt", &crt),
                ("client.key", &key),
                ("server-ca.crt", &ca),
            ]),
            None,
        ),
        (
            "ca.crt instead of client-ca.crt",
            secret_with(&[
                ("ca.crt", &ca),
                ("client.crt", &crt),
                ("client.key", &key),
                ("server-ca.crt", &ca),
            ]),
            Some((
                "config/mtls-secret-keys",
                "has key `ca.crt` but no `client-ca.crt`: the repo-server reads only `client-ca.crt`, so mTLS is silently OFF",
            )),
        ),
        (
            "no client key",
            secret_with(&[
                ("client-ca.crt", &ca),
                ("client.crt", &crt),
                ("server-ca.crt", &ca),
            ]),
            Some(("config/mtls-client-pair", "has no `client.key`")),
        ),
        (
            "client from another CA",
            secret_with(&[
                ("client-ca.crt", &ca),
                ("client.crt", &other_crt),
                ("client.key", &other_key),
                ("server-ca.crt", &ca),
            ]),
            Some((
                "config/client-cert-chains",
                "not issued by any CA in client-ca.crt",
            )),
        ),
        (
            "key of another cert",
            secret_with(&[
                ("client-ca.crt", &ca),
                ("client.crt", &crt),
                ("client.key", &other_key),
                ("server-ca.crt", &ca),
            ]),
            Some(("config/client-key-matches", "does not belong to client.crt")),
        ),
        (
            "CA not PEM",
            secret_with(&[
                ("client-ca.crt", b"not a certificate"),
                ("client.crt", &crt),
                ("client.key", &key),
            ]),
            Some(("config/client-ca-parses", "holds no PEM certificate")),
        ),
    ];
    let key_text = String::from_utf8(key.clone()).unwrap();
    let key_body: Vec<&str> = key_text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for (name, secret, want_failure) in cases {
        let findings = audit::audit_mtls_secret(Some(&secret));
        let required_failures: Vec<&audit::Finding> =
            findings.iter().filter(|f| !f.ok && !f.advisory).collect();
        match want_failure {
            None => assert!(
                required_failures.is_empty(),
                "{name}: {required_failures:?}"
            ),
            Some((id, text)) => {
                assert_eq!(
                    required_failures.len(),
                    1,
                    "{name}: exactly one required failure, got {required_failures:?}"
                );
                assert_eq!(required_failures[0].id, id, "{name}");
                assert!(
                    required_failures[0].detail.contains(text),
                    "{name}: {}",
                    required_failures[0].detail
                );
            }
        }
        let all = serde_json::to_string(&findings).unwrap();
        assert!(
            key_body.iter().all(|l| !all.contains(l)) && !all.contains("PRIVATE KEY"),
            "{name}: a finding leaks Secret data"
        );
    }
    // The advisory side: no server-ca.crt, and a key nobody reads.
    let findings = audit::audit_mtls_secret(Some(&secret_with(&[
        ("client-ca.crt", &ca),
        ("client.crt", &crt),
        ("client.key", &key),
        ("tls.crt", &crt),
    ])));
    let advisories: Vec<&str> = findings
        .iter()
        .filter(|f| f.advisory && !f.ok)
        .map(|f| f.id.as_str())
        .collect();
    assert_eq!(
        advisories,
        ["config/server-ca-present", "config/mtls-secret-extra-keys"]
    );
}

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

fn resource_list(group_version: &str, resources: &[(&str, &str, bool)]) -> Value {
    let resources: Vec<Value> = resources
        .iter()
        .map(|(name, kind, namespaced)| {
            json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

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
    let applied = install::apply_all(&client, objects, "argocd", Duration::from_secs(5), |m| {
        progress.push(m.to_owned())
    })
    .await
    .unwrap();
    assert_eq!(applied, 4);
    assert_eq!(*crd_gets.lock().unwrap(), 2, "waited for Established");
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

/// Client logs on real-format text: the certificate-loaded line (text and JSON logrus) passes; a
/// log without it, or with refused handshakes, fails with the reason.
#[test]
fn client_log_audit_on_real_format_lines() {
    let lines = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let good_text = lines(&[
        r#"time="2026-11-23T10:00:01Z" level=info msg="Starting configmap/secret informers""#,
        r#"time="2026-11-23T10:00:02Z" level=info msg="Client certificate reloaded from /app/config/reposerver/mtls/client.crt (mtime changed)""#,
    ]);
    let good_json = lines(&[
        r#"{"level":"info","msg":"Client certificate reloaded from /app/config/reposerver/mtls/client.crt (mtime changed)","time":"2026-11-23T10:00:02Z"}"#,
    ]);
    let no_cert = lines(&[
        r#"time="2026-11-23T10:00:01Z" level=info msg="Starting configmap/secret informers""#,
    ]);
    let refused = lines(&[
        r#"time="2026-11-23T10:00:02Z" level=info msg="Client certificate reloaded from /app/config/reposerver/mtls/client.crt (mtime changed)""#,
        r#"time="2026-11-23T10:00:05Z" level=error msg="Failed to get app details" error="rpc error: code = Unavailable desc = connection error: desc = \"transport: authentication handshake failed: remote error: tls: unknown certificate authority\"""#,
    ]);
    let cases: [(&[String], bool, bool, &str); 4] = [
        (
            &good_text,
            true,
            true,
            "loaded its client certificate from /app/config/reposerver/mtls/client.crt",
        ),
        (&good_json, true, true, "loaded its client certificate"),
        (&no_cert, false, true, "connects without a certificate"),
        (&refused, true, false, "1 lines report failed handshakes"),
    ];
    for (log, loaded_ok, handshakes_ok, needle) in cases {
        let findings = audit::audit_client_log("argocd-server", log);
        assert_eq!(findings[0].ok, loaded_ok, "{findings:?}");
        assert_eq!(findings[1].ok, handshakes_ok, "{findings:?}");
        assert!(
            findings.iter().any(|f| f.detail.contains(needle)),
            "`{needle}` in {findings:?}"
        );
        assert_eq!(findings[0].id, "log/client-cert-loaded/argocd-server");
        // A missing line is advisory (the certificate loads on the first dial); refused handshakes fail the run.
        assert_eq!(findings[0].advisory, !loaded_ok, "{findings:?}");
        assert!(!findings[1].advisory);
    }
}

/// A pod as the API returns it, with the Ready condition and container statuses.
fn pod(name: &str, component: &str, ready: bool, restarts: i64) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "argocd", "labels": {"app.kubernetes.io/name": component}},
        "spec": {"containers": [{"name": component, "image": "quay.io/argoproj/argocd:v3.5.1"}]},
        "status": {
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            "containerStatuses": [{"name": component, "image": "quay.io/argoproj/argocd:v3.5.1",
                "imageID": "quay.io/argoproj/argocd@sha256:0123456789abcdef", "ready": ready, "restartCount": restarts}]
        }
    })
}

/// The mTLS Secret exactly as `pki init` writes it, as the API would return it.
fn provisioned_secret() -> Value {
    let bundle = argocd_mtls_verify::pki::generate(&Default::default()).unwrap();
    let secret = argocd_mtls_verify::pki::secrets::from_yaml(
        bundle
            .file(argocd_mtls_verify::pki::secrets::MTLS_FILE)
            .unwrap(),
        "bundle",
        "argocd",
    )
    .unwrap();
    let mut v = serde_json::to_value(secret).unwrap();
    v["apiVersion"] = "v1".into();
    v["kind"] = "Secret".into();
    v
}

/// An HA installation with mTLS provisioned: two repo-server replicas (the second one had a liveness
/// probe failure), client logs in logrus text format. Port-forwards cannot be served by a mock, so
/// every relayed connection fails: that must make the probes inconclusive, never a pass.
fn installed_cluster_api() -> impl Fn(&Method, &str, &str) -> Response<Body> + Send + 'static {
    let (deployments, statefulsets) = layout(true);
    let secret = provisioned_secret();
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    move |_method, path, query| {
        let pods_of = |component: &str| -> Vec<Value> {
            match component {
                "argocd-repo-server" => vec![
                    pod("argocd-repo-server-a", component, true, 0),
                    pod("argocd-repo-server-b", component, true, 0),
                ],
                c => vec![pod(&format!("{c}-0"), c, true, 0)],
            }
        };
        match path {
            "/version" => ok(
                &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.1", "gitCommit": "x", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"}),
            ),
            "/apis/apps/v1/namespaces/argocd/deployments" => ok(&list("Deployment", &deployments)),
            "/apis/apps/v1/namespaces/argocd/statefulsets" => {
                ok(&list("StatefulSet", &statefulsets))
            }
            "/api/v1/namespaces/argocd/configmaps/argocd-cmd-params-cm" => ok(
                &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cmd-params-cm"}, "data": {}}),
            ),
            "/api/v1/namespaces/argocd/secrets/argocd-repo-server-mtls" => ok(&secret),
            "/api/v1/namespaces/argocd/pods" => {
                let component = query
                    .split("app.kubernetes.io%2Fname%3D")
                    .nth(1)
                    .map(|c| c.split('&').next().unwrap_or_default())
                    .unwrap_or_default();
                ok(&list("Pod", &pods_of(component)))
            }
            "/api/v1/namespaces/argocd/events" => {
                let items = if query.contains("argocd-repo-server-b") {
                    vec![json!({
                        "apiVersion": "v1", "kind": "Event",
                        "metadata": {"name": "argocd-repo-server-b.1", "namespace": "argocd"},
                        "involvedObject": {"kind": "Pod", "name": "argocd-repo-server-b"},
                        "reason": "Unhealthy", "type": "Warning", "count": 3,
                        "message": "Liveness probe failed: HTTP probe failed with statuscode: 500",
                        "lastTimestamp": now,
                    })]
                } else {
                    vec![]
                };
                ok(&list("Event", &items))
            }
            p if p.ends_with("/log") => {
                let text = if p.contains("argocd-repo-server") {
                    "time=\"2026-11-23T10:00:00Z\" level=info msg=\"mTLS enabled for repo-server: requiring client certificates from CA=/app/config/reposerver/mtls/client-ca.crt\"\ntime=\"2026-11-23T10:00:00Z\" level=info msg=\"Generated ephemeral health-check client certificate (CN=)\"\n"
                } else {
                    "time=\"2026-11-23T10:00:02Z\" level=info msg=\"Client certificate reloaded from /app/config/reposerver/mtls/client.crt (mtime changed)\"\n"
                };
                Response::builder()
                    .body(Body::from(text.as_bytes().to_vec()))
                    .unwrap()
            }
            p if p.ends_with("/portforward") => Response::builder()
                .status(400)
                .body(Body::from(b"upgrade not possible in a mock".to_vec()))
                .unwrap(),
            other => not_found(other),
        }
    }
}

fn all_checks() -> Vec<argocd_mtls_verify::suite::Check> {
    let suites: Vec<_> = ["endpoint", "kubernetes"]
        .iter()
        .map(|n| argocd_mtls_verify::suite::Suite::load(n).unwrap())
        .collect();
    argocd_mtls_verify::runner::select(&suites, &Default::default())
}

/// `run --target cluster` end to end against the mock API server: it sends nothing but GET
/// (the read-only guarantee), judges the configuration, pods and logs it read, and refuses to call
/// anything a pass that went through a failing port-forward.
#[tokio::test]
async fn cluster_mode_end_to_end_is_read_only() {
    use argocd_mtls_verify::runner::kube::{KubeRun, Limits};
    argocd_mtls_verify::install_crypto_provider();
    let (client, seen) = mock_client(installed_cluster_api());
    let mut run = KubeRun::new("argocd");
    let settings = argocd_mtls_verify::checks::ProbeSettings {
        timeout: Duration::from_millis(1500),
        ..Default::default()
    };
    let limits = Limits {
        rollout: Duration::from_secs(5),
        download: Duration::from_secs(5),
    };
    run.cluster(client, "mock", None, &all_checks(), &settings, &limits)
        .await
        .unwrap();

    let writes: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(m, ..)| m != Method::GET)
        .map(|(m, p, ..)| format!("{m} {p}"))
        .collect();
    assert!(writes.is_empty(), "read-only mode sent writes: {writes:?}");

    let verdict = |id: &str, endpoint: &str| {
        run.results
            .iter()
            .find(|r| r.id == id && r.endpoint == endpoint)
            .map(|r| (r.verdict, r.reason.clone()))
            .unwrap_or_else(|| panic!("no result {id} [{endpoint}]"))
    };
    use argocd_mtls_verify::report::Verdict::*;
    let ns = "namespace/argocd";
    assert_eq!(verdict("config/mtls-secret-keys", ns).0, Pass);
    assert_eq!(verdict("config/client-cert-chains", ns).0, Pass);
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
    let bundle = argocd_mtls_verify::pki::generate(&Default::default()).unwrap();
    let provisioning = Provisioning::from_bundle(
        |n| bundle.file(n).map(<[u8]>::to_vec),
        "bundle",
        "argocd",
        Profile::Strict,
        true,
    )
    .unwrap();
    let limits = Limits {
        rollout: Duration::from_secs(1),
        download: Duration::from_secs(1),
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
        let mut run = KubeRun::new("argocd");
        let err = run
            .cluster(
                client,
                "mock",
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

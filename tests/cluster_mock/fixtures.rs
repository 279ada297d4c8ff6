//! Shared fixtures: objects shaped like the v3.5.1 install.yaml and ha/install.yaml, and kube's
//! mock service answering for them while recording every request.

use std::sync::{Arc, Mutex};

use argocd_mtls_verify::kubernetes::workloads::WorkloadKind;
use http::{Method, Request, Response};
use k8s_openapi::api::core::v1::Secret;
use kube::client::Body;
use serde_json::{Value, json};

/// A pod template volume list as the v3.5 manifests write it: clients project the client pair and
/// server CA from `argocd-repo-server-mtls`, the repo-server projects only `client-ca.crt`.
pub(crate) fn volumes(name: &str) -> Value {
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

/// The container of a workload: Argo CD's run the `argocd` binary under their role's name and
/// mount the mTLS Secret where the manifests do.
pub(crate) fn container(name: &str) -> Value {
    let binary = match name {
        "argocd-notifications-controller" => "argocd-notifications",
        "argocd-dex-server" => "/shared/argocd-dex",
        other => other,
    };
    let mut mounts = vec![];
    if volumes(name)
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["name"] == "argocd-repo-server-mtls")
    {
        mounts.push(
            json!({"name": "argocd-repo-server-mtls", "mountPath": "/app/config/reposerver/mtls"}),
        );
    }
    json!({"name": name, "image": "quay.io/argoproj/argocd:v3.5.1",
        "args": [format!("/usr/local/bin/{binary}")], "volumeMounts": mounts})
}

pub(crate) fn workload(kind: &str, name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": name, "namespace": "argocd", "generation": 1, "labels": {"app.kubernetes.io/name": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {"metadata": {"labels": {"app.kubernetes.io/name": name}},
                "spec": {"containers": [container(name)], "volumes": volumes(name)}}}
    })
}

/// (deployments, statefulsets) of the plain or HA install.
pub(crate) fn layout(ha: bool) -> (Vec<Value>, Vec<Value>) {
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

pub(crate) fn list(kind: &str, items: &[Value]) -> Value {
    json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {"resourceVersion": "1"}, "items": items})
}

pub(crate) fn not_found(what: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": format!("{what} not found"), "reason": "NotFound", "code": 404});
    Response::builder()
        .status(404)
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

pub(crate) fn ok(v: &Value) -> Response<Body> {
    Response::builder()
        .body(Body::from(serde_json::to_vec(v).unwrap()))
        .unwrap()
}

/// Each request the mock API server saw: method, path, query, content type, body.
pub(crate) type Seen = Arc<Mutex<Vec<(Method, String, String, Option<String>, Vec<u8>)>>>;

/// A kube client whose API server is `respond`, recording every request (method, path, content type, body).
pub(crate) fn mock_client(
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

pub(crate) fn expected_restart_set() -> Vec<(WorkloadKind, &'static str)> {
    vec![
        (WorkloadKind::Deployment, "argocd-applicationset-controller"),
        (WorkloadKind::Deployment, "argocd-notifications-controller"),
        (WorkloadKind::Deployment, "argocd-repo-server"),
        (WorkloadKind::Deployment, "argocd-server"),
        (WorkloadKind::StatefulSet, "argocd-application-controller"),
    ]
}

pub(crate) fn cluster_api(
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

pub(crate) fn with_status(mut w: Value, generation: i64, status: Value) -> Value {
    w["metadata"]["generation"] = generation.into();
    w["status"] = status;
    w
}

pub(crate) fn secret_with(data: &[(&str, &[u8])]) -> Secret {
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

pub(crate) fn resource_list(group_version: &str, resources: &[(&str, &str, bool)]) -> Value {
    let resources: Vec<Value> = resources
        .iter()
        .map(|(name, kind, namespaced)| {
            json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

/// A pod as the API returns it, with the Ready condition and container statuses.
pub(crate) fn pod(name: &str, component: &str, ready: bool, restarts: i64) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "argocd", "labels": {"app.kubernetes.io/name": component}},
        "spec": {"containers": [{"name": component, "image": "quay.io/argoproj/argocd:v3.5.1"}]},
        "status": {
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            "containerStatuses": [{"name": component, "image": "quay.io/argoproj/argocd:v3.5.1",
                "imageID": "quay.io/argoproj/argocd@sha256:0123456789abcdef", "ready": ready, "restartCount": restarts,
                "state": {"running": {"startedAt": "2026-11-01T00:00:00Z"}}}]
        }
    })
}

/// The mTLS Secret exactly as `pki init` writes it, as the API would return it.
pub(crate) fn provisioned_secret() -> Value {
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
pub(crate) fn installed_cluster_api()
-> impl Fn(&Method, &str, &str) -> Response<Body> + Send + 'static {
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

pub(crate) fn all_checks() -> Vec<argocd_mtls_verify::suite::Check> {
    let suites: Vec<_> = ["endpoint", "kubernetes"]
        .iter()
        .map(|n| argocd_mtls_verify::suite::Suite::load(n).unwrap())
        .collect();
    argocd_mtls_verify::runner::select(&suites, &Default::default())
}

/// `run --target cluster`, read-only, on the mock installation: the run (its results and events)
/// and every request it sent.
pub(crate) async fn verify_mock_installation(
    checks: &[argocd_mtls_verify::suite::Check],
    events: argocd_mtls_verify::report::events::Events,
) -> (argocd_mtls_verify::runner::kube::KubeRun, Seen) {
    use argocd_mtls_verify::runner::kube::{KubeRun, Limits};
    argocd_mtls_verify::install_crypto_provider();
    let (client, seen) = mock_client(installed_cluster_api());
    let mut run = KubeRun::new("argocd", events);
    let settings = argocd_mtls_verify::checks::ProbeSettings {
        timeout: std::time::Duration::from_millis(1500),
        ..Default::default()
    };
    let limits = Limits {
        rollout: std::time::Duration::from_secs(5),
        download: Default::default(),
    };
    run.cluster(client, "mock", None, None, checks, &settings, &limits)
        .await
        .unwrap();
    (run, seen)
}

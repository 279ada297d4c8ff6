//! Each Kubernetes judge on canned facts: the branch that passes and each branch that does not.
//! The Secret judge and the client-log judge have their tables in `tests/cluster_mock/audit.rs`
//! (canned Secrets and real-format log lines).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use serde_json::json;

use super::{Finding, Status, components, pods, workloads};
use crate::kubernetes::cluster::{AppCondition, ClusterError, PodFacts, PodStart};
use crate::kubernetes::observed::{RelayObservation, ReplicaObservation, StoppedReplica};
use crate::kubernetes::workloads::{EnvValue, FoundBy, Role, Workload, discover};

fn status(findings: &[Finding], id: &str) -> Status {
    findings
        .iter()
        .find(|f| f.id() == id)
        .unwrap_or_else(|| panic!("no {id} in {findings:#?}"))
        .status
}

fn detail<'a>(findings: &'a [Finding], id: &str) -> &'a str {
    &findings
        .iter()
        .find(|f| f.id() == id)
        .expect("present")
        .detail
}

/// A pod template as an installer writes it: `args[0]` is the role's binary, the mTLS Secret
/// mounted at the default path with `items` (key, path).
fn template(
    container: &str,
    binary: &str,
    labels: serde_json::Value,
    items: &[(&str, &str)],
) -> serde_json::Value {
    let items: Vec<serde_json::Value> = items
        .iter()
        .map(|(k, p)| json!({ "key": k, "path": p }))
        .collect();
    json!({
        "metadata": { "labels": labels },
        "spec": {
            "containers": [{
                "name": container,
                "args": [format!("/usr/local/bin/{binary}")],
                "volumeMounts": [{ "name": "mtls", "mountPath": "/app/config/reposerver/mtls" }]
            }],
            "volumes": [{ "name": "mtls", "secret": {
                "secretName": "argocd-repo-server-mtls", "optional": true, "items": items
            } }]
        }
    })
}

/// Discovery over one workload per role, named and labelled as `name(role)` and
/// `container(role)` say, mounting what `items(role)` gives.
fn layout(
    name: impl Fn(Role) -> String,
    container: impl Fn(Role) -> String,
    items: impl Fn(Role) -> Vec<(&'static str, &'static str)>,
) -> Vec<Workload> {
    let mut deployments = Vec::new();
    let mut statefulsets = Vec::new();
    for role in Role::ALL {
        let labels = json!({ "app.kubernetes.io/name": role.upstream() });
        let body = json!({
            "metadata": { "name": name(role) },
            "spec": {
                "selector": { "matchLabels": labels },
                "template": template(&container(role), role.binary(), labels.clone(), &items(role))
            }
        });
        if role == Role::ApplicationController {
            statefulsets.push(serde_json::from_value(body).unwrap());
        } else {
            deployments.push(serde_json::from_value(body).unwrap());
        }
    }
    discover(&deployments, &statefulsets)
}

fn upstream_items(role: Role) -> Vec<(&'static str, &'static str)> {
    if role == Role::RepoServer {
        vec![("client-ca.crt", "client-ca.crt")]
    } else {
        vec![
            ("client.crt", "client.crt"),
            ("client.key", "client.key"),
            ("server-ca.crt", "server-ca.crt"),
        ]
    }
}

fn correct_mounts() -> Vec<Workload> {
    layout(
        |r| r.upstream().to_owned(),
        |r| r.upstream().to_owned(),
        upstream_items,
    )
}

/// `config/mount/*`: each role is found whatever the installer named it, and its mTLS files are
/// followed to Secret keys: the upstream layout, Helm's names and Argo CD's Option A (each
/// client's own keys mapped onto `client.crt`/`client.key` by `items`) pass; a repo-server without
/// `client-ca.crt` at its path, a client whose pair is not mounted, a client whose cert path
/// points at a file nothing provides, fail naming the workload and the fix; a role nobody runs is
/// not applicable.
#[test]
fn mounts() {
    let ok = workloads::judge_mounts(&correct_mounts(), None, "argocd");
    assert_eq!(ok.len(), 5);
    assert!(ok.iter().all(|f| f.status == Status::Holds), "{ok:#?}");
    assert!(
        detail(&ok, "config/mount/argocd-server")
            .contains("Secret `argocd-repo-server-mtls` key `client.crt`")
    );

    // Helm: `<release>-argocd-<component>` workloads, containers named by component.
    let helm = layout(
        |r| format!("prod-argocd-{}", r.component()),
        |r| r.component().to_owned(),
        upstream_items,
    );
    assert!(helm.iter().all(|w| w.role.is_some()), "{helm:#?}");
    let judged = workloads::judge_mounts(&helm, None, "gitops");
    assert!(
        judged.iter().all(|f| f.status == Status::Holds),
        "{judged:#?}"
    );
    assert!(
        detail(&judged, "config/mount/argocd-repo-server")
            .contains("deployment/prod-argocd-repo-server (container repo-server)")
    );

    // Option A: one Secret, per-component keys, each client's items map its own pair.
    let option_a = layout(
        |r| r.upstream().to_owned(),
        |r| r.upstream().to_owned(),
        |r| match r {
            Role::RepoServer => vec![("client-ca.crt", "client-ca.crt")],
            Role::Server => vec![
                ("server-client.crt", "client.crt"),
                ("server-client.key", "client.key"),
            ],
            _ => vec![
                ("controller-client.crt", "client.crt"),
                ("controller-client.key", "client.key"),
            ],
        },
    );
    let judged = workloads::judge_mounts(&option_a, None, "argocd");
    assert!(
        judged.iter().all(|f| f.status == Status::Holds),
        "{judged:#?}"
    );
    assert!(detail(&judged, "config/mount/argocd-server").contains("key `server-client.crt`"));

    // Wrong in one respect each.
    let mut wrong = layout(
        |r| r.upstream().to_owned(),
        |r| r.upstream().to_owned(),
        |r| match r {
            Role::RepoServer => vec![("ca.crt", "ca.crt")],
            Role::Server => vec![("server-ca.crt", "server-ca.crt")],
            other => upstream_items(other),
        },
    );
    wrong.retain(|w| w.role != Some(Role::NotificationsController));
    let appset = wrong
        .iter_mut()
        .find(|w| w.role == Some(Role::ApplicationSetController))
        .unwrap();
    appset.env.insert(
        "ARGOCD_APPLICATIONSET_CONTROLLER_REPO_SERVER_CLIENT_CERT_PATH".into(),
        EnvValue::Literal("/app/config/other/client.crt".into()),
    );
    let judged = workloads::judge_mounts(&wrong, None, "argocd");
    let repo = detail(&judged, "config/mount/argocd-repo-server");
    assert_eq!(
        status(&judged, "config/mount/argocd-repo-server"),
        Status::Fails
    );
    assert!(
        repo.contains("/app/config/reposerver/mtls/client-ca.crt (the default)")
            && repo.contains("admits any TLS client"),
        "{repo}"
    );
    let server = detail(&judged, "config/mount/argocd-server");
    assert_eq!(status(&judged, "config/mount/argocd-server"), Status::Fails);
    assert!(
        server.contains("WITHOUT a client certificate")
            && server.contains(
                "Fix: kubectl -n argocd patch deployment argocd-server -p '{\"spec\":{\"template\""
            ),
        "{server}"
    );
    let appset = detail(&judged, "config/mount/argocd-applicationset-controller");
    assert!(appset.contains("/app/config/other/client.crt (env ARGOCD_APPLICATIONSET_CONTROLLER_REPO_SERVER_CLIENT_CERT_PATH)"), "{appset}");
    assert!(
        appset.contains("but its client certificate path is `/app/config/other/client.crt`"),
        "the fix says its mount does not serve a path set elsewhere: {appset}"
    );
    assert_eq!(
        status(&judged, "config/mount/argocd-application-controller"),
        Status::Holds
    );
    assert_eq!(
        status(&judged, "config/mount/argocd-notifications-controller"),
        Status::NotApplicable
    );

    // The cmd-params key through configMapKeyRef, and an empty value falling back to the default.
    let mut via_params = correct_mounts();
    let server = via_params
        .iter_mut()
        .find(|w| w.role == Some(Role::Server))
        .unwrap();
    server.env.insert(
        "ARGOCD_SERVER_REPO_SERVER_CLIENT_CERT_PATH".into(),
        EnvValue::ConfigMapKey {
            config_map: "argocd-cmd-params-cm".into(),
            key: "server.repo.server.client.cert.path".into(),
        },
    );
    let params = cmd_params(&[("server.repo.server.client.cert.path", "/tmp/missing.crt")]);
    let judged = workloads::judge_mounts(&via_params, Some(&params), "argocd");
    assert_eq!(status(&judged, "config/mount/argocd-server"), Status::Fails);
    let empty = cmd_params(&[("server.repo.server.client.cert.path", "")]);
    let judged = workloads::judge_mounts(&via_params, Some(&empty), "argocd");
    assert_eq!(status(&judged, "config/mount/argocd-server"), Status::Holds);
}

/// Discovery by role: the container's binary first, then the name and component labels, then the
/// workload's name; `-server` never claims a repo-server, Dex or Redis HA.
#[test]
fn roles_are_found_by_binary_labels_and_name() {
    let pod = |container: &str, args: serde_json::Value, labels: serde_json::Value| json!({ "metadata": { "labels": labels }, "spec": { "containers": [{ "name": container, "args": args }] } });
    let deployment =
        |name: &str, template: serde_json::Value| -> k8s_openapi::api::apps::v1::Deployment {
            serde_json::from_value(json!({ "metadata": { "name": name }, "spec": {
            "selector": { "matchLabels": { "x": name } }, "template": template } }))
            .unwrap()
        };
    let found = discover(
        &[
            // The Operator: a wrapper script before the binary.
            deployment(
                "example-repo-server",
                pod(
                    "argocd-repo-server",
                    json!(["uid_entrypoint.sh", "argocd-repo-server"]),
                    json!({}),
                ),
            ),
            deployment(
                "a",
                pod(
                    "x",
                    json!([]),
                    json!({ "app.kubernetes.io/name": "cr-server" }),
                ),
            ),
            deployment(
                "b",
                pod(
                    "x",
                    json!([]),
                    json!({ "app.kubernetes.io/component": "notifications-controller" }),
                ),
            ),
            deployment(
                "c-applicationset-controller",
                pod("x", json!([]), json!({})),
            ),
            deployment(
                "argocd-dex-server",
                pod(
                    "dex",
                    json!(["/shared/argocd-dex", "rundex"]),
                    json!({ "app.kubernetes.io/name": "argocd-dex-server" }),
                ),
            ),
            deployment("argocd-redis-ha-server", pod("redis", json!([]), json!({}))),
        ],
        &[],
    );
    type Found<'a> = (&'a str, Option<Role>, Option<FoundBy>, Option<&'a str>);
    let got: Vec<Found> = found
        .iter()
        .map(|w| (w.name.as_str(), w.role, w.found_by, w.container.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("a", Some(Role::Server), Some(FoundBy::NameLabel), Some("x")),
            (
                "b",
                Some(Role::NotificationsController),
                Some(FoundBy::ComponentLabel),
                Some("x")
            ),
            (
                "c-applicationset-controller",
                Some(Role::ApplicationSetController),
                Some(FoundBy::WorkloadName),
                Some("x")
            ),
            (
                "example-repo-server",
                Some(Role::RepoServer),
                Some(FoundBy::Command),
                Some("argocd-repo-server")
            ),
        ]
    );
}

fn secret_changed_at(rfc3339: &str) -> Secret {
    serde_json::from_value(json!({
        "metadata": { "name": "argocd-repo-server-mtls", "creationTimestamp": rfc3339 }
    }))
    .unwrap()
}

fn started(pod: &str, rfc3339: &str) -> PodStart {
    PodStart {
        pod: pod.into(),
        started: Some(
            time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
                .unwrap(),
        ),
        mesh_proxies: vec![],
    }
}

/// A self-signed CA's PEM with `CN=<cn>`.
fn ca_pem(cn: &str) -> String {
    let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

fn secret_with_client_ca(changed: &str, pem: &str) -> Secret {
    use base64::Engine;
    serde_json::from_value(json!({
        "metadata": { "name": "argocd-repo-server-mtls", "creationTimestamp": changed },
        "data": { "client-ca.crt": base64::engine::general_purpose::STANDARD.encode(pem) }
    }))
    .unwrap()
}

/// What a replica announced: whether it asked for a certificate, and the CA names.
fn announcing(pod_name: &str, requested: bool, names: &[&str]) -> ReplicaObservation {
    let mut a = crate::probe::ProbeOutcome::blank(crate::probe::TlsVersion::Tls13, None);
    a.tls_version = Some("TLSv1_3".into());
    a.client_cert_requested = requested;
    a.acceptable_ca_names = names.iter().map(|n| (*n).to_owned()).collect();
    ReplicaObservation {
        before: pod(pod_name, true, 0),
        after: Ok(Some(pod(pod_name, true, 0))),
        probe_failures: Ok(vec![]),
        relays: vec![],
        direct: None,
        announcement: a,
    }
}

/// `config/restarted-after-secret/argocd-repo-server` is judged from what each running replica
/// announces, never from timestamps: the Secret's CA(s) announced (plus the health-check name)
/// pass however recently the Secret changed (a client-pair renewal); other CAs, or no
/// CertificateRequest at all, fail with the restart command of the workload discovery found.
#[test]
fn repo_server_restart_from_what_it_announces() {
    let secret = secret_with_client_ca("2026-11-20T10:00:00Z", &ca_pem("ops-ca"));
    let w = layout(
        |r| format!("prod-{}", r.component()),
        |r| r.component().to_owned(),
        upstream_items,
    );
    let id = "config/restarted-after-secret/argocd-repo-server";
    let health = "O=Argo CD Health Check";
    let judge = |secret: &Secret, replica: &ReplicaObservation| {
        workloads::judge_repo_server_restart(secret, replica, &w, "gitops")
    };
    for replica in [
        announcing("r-1", true, &["CN=ops-ca", health]),
        announcing("r-2", true, &[health, "CN=ops-ca"]),
    ] {
        let f = judge(&secret, &replica);
        assert_eq!((f.id().as_str(), f.status), (id, Status::Holds), "{f:?}");
    }

    let old = judge(&secret, &announcing("r-1", true, &["CN=old-ca", health]));
    let open = judge(&secret, &announcing("r-2", false, &[]));
    for f in [&old, &open] {
        assert_eq!(f.status, Status::Fails, "{f:?}");
        assert!(
            f.detail.starts_with("RESTART NEEDED")
                && f.detail
                    .contains("kubectl -n gitops rollout restart deployment/prod-repo-server"),
            "{}",
            f.detail
        );
    }
    assert!(
        old.detail.contains("runs with client CA(s) `CN=old-ca`")
            && old.detail.contains("`CN=ops-ca`"),
        "{}",
        old.detail
    );
    assert!(open.detail.contains("still runs without mTLS"));

    // A bundle of two CAs must be announced whole; a handshake that never happened is no verdict.
    let two = secret_with_client_ca(
        "2026-11-20T10:00:00Z",
        &(ca_pem("old-ca") + &ca_pem("new-ca")),
    );
    assert_eq!(
        judge(&two, &announcing("r-1", true, &["CN=old-ca", health])).status,
        Status::Fails
    );
    // Two CAs of one name (old and new of a rotation): told apart by count.
    let same_name = secret_with_client_ca(
        "2026-11-20T10:00:00Z",
        &(ca_pem("ops-ca") + &ca_pem("ops-ca")),
    );
    assert_eq!(
        judge(&same_name, &announcing("r-1", true, &["CN=ops-ca", health])).status,
        Status::Fails
    );
    assert_eq!(
        judge(
            &same_name,
            &announcing("r-1", true, &["CN=ops-ca", "CN=ops-ca", health])
        )
        .status,
        Status::Holds
    );
    let mut silent = announcing("r-1", false, &[]);
    silent.announcement.tls_version = None;
    assert_eq!(judge(&two, &silent).status, Status::Inconclusive);
    // Without client-ca.crt no restart helps: not applicable (the Secret checks fail it).
    assert_eq!(
        judge(
            &secret_changed_at("2026-11-20T10:00:00Z"),
            &announcing("r-1", false, &[])
        )
        .status,
        Status::NotApplicable
    );
}

/// `config/restarted-after-secret/<client>` (advice): started after the change holds; started
/// before holds when a `Client certificate reloaded` line after the change proves the reload, and
/// says "not yet proven" without one; a client that verifies the repo-server (its CA path is read
/// once) is advised to restart.
#[test]
fn client_restarts_after_the_secret() {
    use crate::kubernetes::observed::ComponentLog;
    let secret = secret_changed_at("2026-11-20T10:00:00Z");
    let w = correct_mounts();
    let pods = |at: &str| {
        BTreeMap::from([(
            "argocd-server".to_owned(),
            vec![started("argocd-server-1", at)],
        )])
    };
    let id = "config/client-restarted-after-secret/argocd-server";
    let log = |line: &str| {
        vec![ComponentLog {
            component: "argocd-server".into(),
            lines: Ok(Some(vec![line.to_owned()])),
        }]
    };
    let reloaded = |at: &str| {
        log(&format!(
            r#"{{"level":"info","msg":"Client certificate reloaded from /app/config/reposerver/mtls/client.crt (mtime changed)","time":"{at}"}}"#
        ))
    };

    let judged = workloads::judge_client_restarts(
        &secret,
        &w,
        &pods("2026-11-20T10:05:00Z"),
        &[],
        None,
        "argocd",
    );
    assert_eq!(status(&judged, id), Status::Holds);
    assert!(
        !judged
            .iter()
            .any(|f| f.id().ends_with("argocd-repo-server")),
        "the repo-server is judged from its handshake"
    );

    let before = pods("2026-11-20T09:00:00Z");
    let judged = workloads::judge_client_restarts(
        &secret,
        &w,
        &before,
        &reloaded("2026-11-20T10:01:00Z"),
        None,
        "argocd",
    );
    assert_eq!(status(&judged, id), Status::Holds);
    assert!(detail(&judged, id).contains("reloaded its client certificate at"));
    let judged = workloads::judge_client_restarts(
        &secret,
        &w,
        &before,
        &reloaded("2026-11-20T09:30:00Z"),
        None,
        "argocd",
    );
    assert!(
        detail(&judged, id).contains("not yet proven"),
        "a reload before the change proves nothing"
    );

    let mut verifying = correct_mounts();
    verifying
        .iter_mut()
        .find(|w| w.role == Some(Role::Server))
        .unwrap()
        .env
        .insert(
            "ARGOCD_SERVER_REPO_SERVER_CA_CERT_PATH".into(),
            EnvValue::Literal("/app/config/reposerver/mtls/server-ca.crt".into()),
        );
    let judged = workloads::judge_client_restarts(
        &secret,
        &verifying,
        &before,
        &reloaded("2026-11-20T10:01:00Z"),
        None,
        "argocd",
    );
    assert_eq!(status(&judged, id), Status::Fails);
    assert!(
        detail(&judged, id).contains("kubectl -n argocd rollout restart deployment/argocd-server")
    );

    let no_time: Secret =
        serde_json::from_value(json!({ "metadata": { "name": "argocd-repo-server-mtls" } }))
            .unwrap();
    assert!(
        workloads::judge_client_restarts(&no_time, &w, &before, &[], None, "argocd").is_empty()
    );
}

fn cmd_params(data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..Default::default()
    }
}

/// `config/repo-server-tls`: TLS on (unset or false) passes; `reposerver.disable.tls: "true"`
/// fails, naming the 3.5 startup hazard and its way out.
#[test]
fn repo_server_tls() {
    for ok in [
        None,
        Some(cmd_params(&[])),
        Some(cmd_params(&[("reposerver.disable.tls", "false")])),
    ] {
        assert_eq!(
            workloads::judge_repo_server_tls(ok.as_ref()).status,
            Status::Holds
        );
    }
    let off = workloads::judge_repo_server_tls(Some(&cmd_params(&[(
        "reposerver.disable.tls",
        " TRUE ",
    )])));
    assert_eq!(off.status, Status::Fails);
    assert!(off.detail.contains("ARGOCD_REPO_SERVER_CLIENT_CA_PATH"));
    // The remedy that works is the container argument; the empty env var is named as not working.
    assert!(off.detail.contains("argument `--client-ca-path=`"));
    assert!(off.detail.contains("does NOT do it"));
}

/// `config/client-verifies-server/*` (advisory): a CA path or the deprecated strict flag holds;
/// neither does not, and says which key to set.
#[test]
fn clients_verify_the_repo_server() {
    let params = cmd_params(&[
        (
            "server.repo.server.ca.cert.path",
            "/app/config/reposerver/tls/ca.crt",
        ),
        ("controller.repo.server.strict.tls", "true"),
        ("applicationsetcontroller.repo.server.ca.cert.path", " "),
    ]);
    let judged = workloads::judge_server_verification(Some(&params));
    let id = |c: &str| format!("config/client-verifies-server/{c}");
    assert_eq!(status(&judged, &id("argocd-server")), Status::Holds);
    assert_eq!(
        status(&judged, &id("argocd-application-controller")),
        Status::Holds
    );
    for off in [
        "argocd-applicationset-controller",
        "argocd-notifications-controller",
    ] {
        assert_eq!(status(&judged, &id(off)), Status::Fails);
        assert!(detail(&judged, &id(off)).contains(".repo.server.ca.cert.path"));
    }
}

/// `client/reaches-repo-server/argocd-application-controller`: no Application is not applicable;
/// Applications without a failed call pass; an `Unavailable` call fails, quoting it.
#[test]
fn application_controller_calls() {
    let id = "client/reaches-repo-server/argocd-application-controller";
    let condition = |message: &str| AppCondition {
        application: "guestbook".into(),
        kind: "ComparisonError".into(),
        message: message.into(),
    };
    let none = components::judge_repo_server_calls(0, &[]);
    assert_eq!(
        (none.id().as_str(), none.status),
        (id, Status::NotApplicable)
    );
    let fine = components::judge_repo_server_calls(2, &[condition("app path does not exist")]);
    assert_eq!(fine.status, Status::Holds);
    let refused = components::judge_repo_server_calls(
        2,
        &[condition(
            "rpc error: code = Unavailable desc = connection error: remote error: tls: certificate required",
        )],
    );
    assert_eq!(refused.status, Status::Fails);
    assert!(refused.detail.contains("Application `guestbook`"));
}

fn pod(name: &str, ready: bool, restarts: i32) -> PodFacts {
    PodFacts {
        name: name.into(),
        ready,
        restarts,
        image_ids: vec![],
        running: true,
        state: String::new(),
        ..PodFacts::default()
    }
}

fn relay(failure: Option<&str>, peer_closed: usize) -> RelayObservation {
    RelayObservation {
        label: "pod/argocd-repo-server-1:8081".into(),
        failure: failure.map(str::to_owned),
        peer_closed,
    }
}

fn read_error() -> ClusterError {
    ClusterError::Timeout {
        what: "the API server".into(),
        seconds: 5,
    }
}

/// `pod/ready`, `pod/restarts-unchanged`, `pod/no-probe-failures`, `transport/port-forward` on a
/// probed replica: each passes on a healthy one and fails (or gives no verdict, when the read or
/// the relay failed) on a replica wrong in that respect alone.
#[test]
fn replica_after_the_probes() {
    let healthy = || ReplicaObservation {
        before: pod("argocd-repo-server-1", true, 0),
        after: Ok(Some(pod("argocd-repo-server-1", true, 0))),
        probe_failures: Ok(vec![]),
        relays: vec![relay(None, 0), relay(None, 12)],
        direct: None,
        announcement: crate::probe::ProbeOutcome::blank(crate::probe::TlsVersion::Tls13, None),
    };
    let judged = pods::judge_replica(&healthy());
    assert_eq!(judged.len(), 5);
    assert!(
        judged.iter().all(|f| f.status == Status::Holds),
        "{judged:#?}"
    );
    assert!(judged[4].detail.contains("12 closed by the server"));

    type Break = fn(&mut ReplicaObservation);
    let cases: [(&str, Break, &str, Status); 6] = [
        (
            "not ready",
            |r| r.after = Ok(Some(pod("argocd-repo-server-1", false, 0))),
            "pod/ready",
            Status::Fails,
        ),
        (
            "replaced",
            |r| r.after = Ok(None),
            "pod/ready",
            Status::Fails,
        ),
        (
            "unreadable",
            |r| r.after = Err(read_error()),
            "pod/ready",
            Status::Inconclusive,
        ),
        (
            "restarted",
            |r| r.after = Ok(Some(pod("argocd-repo-server-1", true, 1))),
            "pod/restarts-unchanged",
            Status::Fails,
        ),
        (
            "liveness failed",
            |r| r.probe_failures = Ok(vec!["Liveness probe failed: HTTP 500".into()]),
            "pod/no-probe-failures",
            Status::Fails,
        ),
        (
            "relay broke",
            |r| r.relays[0] = relay(Some("1 connection failed in the relay"), 0),
            "transport/port-forward",
            Status::Inconclusive,
        ),
    ];
    for (name, break_it, id, expected) in cases {
        let mut replica = healthy();
        break_it(&mut replica);
        let judged = pods::judge_replica(&replica);
        let wrong: Vec<&Finding> = judged
            .iter()
            .filter(|f| f.status != Status::Holds)
            .collect();
        assert_eq!(wrong.len(), 1, "{name}: {judged:#?}");
        assert_eq!(
            (wrong[0].id().as_str(), wrong[0].status),
            (id, expected),
            "{name}"
        );
    }
    // Reached at its pod IP: no relay to judge, so the relay case does not arise.
    let mut direct = healthy();
    direct.relays.clear();
    direct.direct = Some("10.88.0.9:8081 and 10.88.0.9:8084".into());
    let judged = pods::judge_replica(&direct);
    let relay: Vec<&Finding> = judged
        .iter()
        .filter(|f| f.case == crate::suite::KubeCase::PortForward)
        .collect();
    assert_eq!(relay.len(), 1, "{judged:#?}");
    assert_eq!(relay[0].status, Status::NotApplicable);
    assert!(
        relay[0]
            .detail
            .contains("reached directly at 10.88.0.9:8081")
    );
}

/// `pod/ready` on a replica that cannot run: always a failure, with its state, its last error
/// line and, for the 3.5 upgrade hazard, the fix.
#[test]
fn replica_that_cannot_run() {
    let stopped = |last_error: Option<&str>| StoppedReplica {
        pod: PodFacts {
            running: false,
            ready: false,
            state: "waiting: CrashLoopBackOff, last exit 1 (Error)".into(),
            ..pod("argocd-repo-server-1", false, 4)
        },
        last_error: last_error.map(str::to_owned),
    };
    let plain = pods::judge_stopped(&stopped(None));
    assert_eq!(
        (plain.id().as_str(), plain.status),
        ("pod/ready", Status::Fails)
    );
    assert!(plain.detail.contains("CrashLoopBackOff"));
    let hazard = pods::judge_stopped(&stopped(Some(
        "Error: --client-ca-path cannot be used when --disable-tls is enabled",
    )));
    assert!(
        hazard
            .detail
            .contains("its last run logged: Error: --client-ca-path")
    );
    assert!(hazard.detail.contains("ARGOCD_REPO_SERVER_CLIENT_CA_PATH"));
    assert!(hazard.detail.contains("\"value\":\"--client-ca-path=\""));
    assert!(hazard.detail.contains("does NOT work"));
    let other = pods::judge_stopped(&stopped(Some(
        "open /app/config/tls/tls.crt: permission denied",
    )));
    assert!(!other.detail.contains("upgrade hazard"));
    assert!(!other.detail.contains("no PEM certificate"));
    let empty_ca = pods::judge_stopped(&stopped(Some(
        "invalid cert data in /app/config/reposerver/mtls/client-ca.crt",
    )));
    assert!(
        empty_ca.detail.contains("holds no PEM certificate")
            && empty_ca
                .detail
                .contains("refuses to start rather than run open"),
        "{}",
        empty_ca.detail
    );
}

/// The whole fold on one canned run: a Secret RBAC would not let us read leaves its cases
/// skipped with that reason (not passed, not failed); the other cases are still judged; an
/// existing installation's baseline is not applicable; pod cases land on the pod's scope.
#[test]
fn evaluate_a_run_whose_secret_could_not_be_read() {
    use crate::kubernetes::observed::{Baseline, KubernetesObservations, NamespaceObservation};
    use crate::report::{SkipKind, Verdict};
    let checks = crate::suite::Suite::load("kubernetes").unwrap().checks();
    let observed = KubernetesObservations {
        namespace: "argocd".into(),
        baseline: Baseline::ExistingInstallation,
        stopped: vec![],
        replicas: vec![ReplicaObservation {
            before: pod("argocd-repo-server-1", true, 0),
            after: Ok(Some(pod("argocd-repo-server-1", true, 0))),
            probe_failures: Ok(vec![]),
            relays: vec![relay(None, 0)],
            direct: None,
            announcement: crate::probe::ProbeOutcome::blank(crate::probe::TlsVersion::Tls13, None),
        }],
        config: NamespaceObservation {
            secret_read: false,
            secret_unreadable: Some("forbidden: get secrets".into()),
            mtls_secret: None,
            secrets: BTreeMap::new(),
            unreadable_secrets: BTreeMap::new(),
            workloads: correct_mounts(),
            mounting_pods: BTreeMap::new(),
            cmd_params: None,
            applications: Ok(None),
            client_logs: vec![],
        },
        in_cluster: None,
    };
    let results = super::evaluate(&checks, &observed);
    let find = |id: &str| {
        results
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no {id}"))
    };
    let keys = find("config/mtls-secret-keys");
    assert_eq!(
        (keys.verdict, keys.skip_kind, keys.reason.as_str()),
        (
            Verdict::Skip,
            Some(SkipKind::MissingInput),
            "forbidden: get secrets"
        )
    );
    assert_eq!(find("config/mount/argocd-server").verdict, Verdict::Pass);
    let baseline = find("baseline/no-cert-accepted-before-mtls");
    assert_eq!(
        (
            baseline.verdict,
            baseline.skip_kind,
            baseline.endpoint.as_str()
        ),
        (
            Verdict::Skip,
            Some(SkipKind::NotApplicable),
            "namespace/argocd"
        )
    );
    assert_eq!(find("pod/ready").endpoint, "argocd-repo-server-1");
}

/// `transport/peer-is-repo-server`: a peer announcing the health-check name is the repo-server;
/// one asking for a certificate without it is something else (a mesh proxy); one asking for
/// none is not judged here; no handshake is no verdict.
#[test]
fn the_peer_on_8081_is_the_repo_server() {
    let health = "O=Argo CD Health Check";
    assert_eq!(
        pods::judge_peer(&announcing("r-1", true, &["CN=ops-ca", health])).status,
        Status::Holds
    );
    let proxy = pods::judge_peer(&announcing("r-1", true, &["CN=istio-ca"]));
    assert_eq!(proxy.status, Status::Fails);
    assert!(
        proxy.detail.contains("not the repo-server itself") && proxy.detail.contains("CN=istio-ca")
    );
    assert_eq!(
        pods::judge_peer(&announcing("r-1", false, &[])).status,
        Status::NotApplicable
    );
    let mut silent = announcing("r-1", false, &[]);
    silent.announcement.tls_version = None;
    assert_eq!(pods::judge_peer(&silent).status, Status::Inconclusive);
}

/// `config/mesh` (advice): nothing meshed holds; a proxy in a client's pod, or ambient
/// enrolment in the repo-server's template, is named with what it means for the probes' path.
#[test]
fn a_mesh_in_the_path_is_named() {
    let mut w = correct_mounts();
    let none = workloads::judge_mesh(&w, &BTreeMap::new());
    assert_eq!(none.status, Status::Holds);
    w.iter_mut()
        .find(|w| w.role == Some(Role::RepoServer))
        .unwrap()
        .mesh = vec!["istio.io/dataplane-mode=ambient".into()];
    let mut proxied = started("argocd-server-1", "2026-11-20T10:00:00Z");
    proxied.mesh_proxies = vec!["istio-proxy".into()];
    let pods = BTreeMap::from([("argocd-server".to_owned(), vec![proxied])]);
    let meshed = workloads::judge_mesh(&w, &pods);
    assert_eq!(meshed.status, Status::Fails);
    assert!(
        meshed
            .detail
            .contains("deployment/argocd-repo-server: istio.io/dataplane-mode=ambient")
            && meshed
                .detail
                .contains("deployment/argocd-server: istio-proxy in pod/argocd-server-1")
            && meshed.detail.contains("past the proxy"),
        "{}",
        meshed.detail
    );
}

/// Expiry is two cases: an expired certificate fails `config/cert-not-expired` (required); one
/// valid for fewer than 30 days fails only `config/cert-expiry-horizon` (advisory in the suite).
#[test]
fn expired_and_expiring_certificates_are_two_cases() {
    let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "client");
    params.not_before = rcgen::date_time_ymd(2026, 1, 1);
    params.not_after = rcgen::date_time_ymd(2026, 12, 31);
    let key = rcgen::KeyPair::generate().unwrap();
    let der = params.self_signed(&key).unwrap().der().to_vec();
    let at = |y, m, d| {
        time::Date::from_calendar_date(y, m, d)
            .unwrap()
            .midnight()
            .assume_utc()
    };
    let cases = [
        (at(2026, time::Month::June, 1), Status::Holds, Status::Holds),
        (
            at(2026, time::Month::December, 15),
            Status::Holds,
            Status::Fails,
        ),
        (
            at(2027, time::Month::January, 2),
            Status::Fails,
            Status::Fails,
        ),
    ];
    for (now, not_expired, horizon) in cases {
        let facts = crate::x509::CertFacts::from_der_at(&der, now).unwrap();
        let [expired, soon] = super::secret::judge_expiry("client.crt", &facts);
        assert_eq!(
            (expired.case, expired.status, soon.case, soon.status),
            (
                crate::suite::KubeCase::CertNotExpired,
                not_expired,
                crate::suite::KubeCase::CertExpiryHorizon,
                horizon
            ),
            "{now}: {} / {}",
            expired.detail,
            soon.detail
        );
    }
    let suite = crate::suite::Suite::load("kubernetes").unwrap();
    let severity = |id: &str| suite.cases.iter().find(|c| c.id == id).unwrap().severity;
    assert_eq!(
        severity("config/cert-not-expired"),
        crate::suite::Severity::Required
    );
    assert_eq!(
        severity("config/cert-expiry-horizon"),
        crate::suite::Severity::Advisory
    );
}

/// The intruders' judges, row by row: a session is a failure whatever the network did; a port not
/// reached keeps the intruder out; a policy that denies what connected is "not enforced".
#[test]
fn intruders_and_policies_are_judged_from_what_was_observed() {
    use super::network::{judge_intruder, judge_policies};
    use crate::kubernetes::incluster::{IntruderAttempt, Reach};
    use crate::kubernetes::netpol::Admission;
    use crate::kubernetes::observed::{InClusterObservation, IntruderKind, IntruderObservation};
    use crate::probe::{Outcome, ProbeOutcome, TlsVersion};
    use crate::suite::KubeCase;

    let tls = |outcome: Outcome| {
        let mut o = ProbeOutcome::blank(TlsVersion::Tls13, None);
        o.outcome = outcome;
        Some(o)
    };
    let attempt = |reach: Reach, tls: Option<ProbeOutcome>| IntruderAttempt {
        target: "service/argocd-repo-server".into(),
        address: "argocd-repo-server.argocd.svc:8081".into(),
        reach,
        tls,
    };
    let denied = || {
        Some(Admission::Denied {
            selected_by: vec!["argocd-repo-server-network-policy".into()],
        })
    };
    let allowed = || {
        Some(Admission::Allowed {
            by: "argocd-repo-server-network-policy".into(),
        })
    };
    let intruder = |attempts| IntruderObservation {
        kind: IntruderKind::Unlabelled,
        pod: "amv-x".into(),
        labels: Default::default(),
        attempts,
    };
    let timed_out = || Reach::TimedOut { ms: 5000 };
    // (attempt, admission, intruder-refused ok?, policy-enforced status)
    let rows = [
        (
            attempt(Reach::Connected, tls(Outcome::Rejected)),
            denied(),
            Some(true),
            Status::Fails,
        ),
        (
            attempt(Reach::Connected, tls(Outcome::Accepted)),
            allowed(),
            Some(false),
            Status::Holds,
        ),
        (
            attempt(timed_out(), None),
            denied(),
            Some(true),
            Status::Holds,
        ),
        (
            attempt(timed_out(), None),
            allowed(),
            Some(true),
            Status::Inconclusive,
        ),
        (
            attempt(Reach::Connected, tls(Outcome::Error)),
            Some(Admission::NoPolicy),
            None,
            Status::NotApplicable,
        ),
        (
            attempt(
                Reach::Unresolved {
                    why: "NXDOMAIN".into(),
                },
                None,
            ),
            denied(),
            None,
            Status::Inconclusive,
        ),
    ];
    for (a, admission, refused, policy) in rows {
        let obs = InClusterObservation {
            policies: Ok(vec!["argocd-repo-server-network-policy".into()]),
            intruders: vec![intruder(vec![(a.clone(), admission.clone())])],
        };
        let f = &judge_intruder(&obs.intruders[0])[0];
        assert_eq!(f.case, KubeCase::IntruderRefused);
        assert_eq!(f.subject.as_deref(), Some("unlabelled-pod"));
        match refused {
            Some(ok) => assert_eq!(f.ok(), ok, "{a:?}: {}", f.detail),
            None => assert_eq!(f.status, Status::Inconclusive, "{a:?}: {}", f.detail),
        }
        let p = &judge_policies(&obs)[0];
        assert_eq!(p.status, policy, "{a:?} {admission:?}: {}", p.detail);
        if policy == Status::Fails {
            assert!(p.detail.contains("NOT ENFORCED"), "{}", p.detail);
        }
    }
    // Policies that could not be read: no verdict on enforcement, with the reason.
    let unread = InClusterObservation {
        policies: Err(crate::kubernetes::cluster::ClusterError::Timeout {
            what: "list".into(),
            seconds: 1,
        }),
        intruders: vec![],
    };
    assert_eq!(judge_policies(&unread)[0].status, Status::Inconclusive);
}

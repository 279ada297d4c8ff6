//! Each Kubernetes judge on canned facts: the branch that passes and each branch that does not.
//! The Secret judge and the client-log judge have their tables in `tests/cluster_mock/audit.rs`
//! (canned Secrets and real-format log lines).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use serde_json::json;

use super::{Finding, Status, components, pods, workloads};
use crate::kubernetes::cluster::{AppCondition, ClusterError, PodFacts, PodStart};
use crate::kubernetes::observed::{RelayObservation, ReplicaObservation, StoppedReplica};
use crate::kubernetes::workloads::{MtlsWorkload, WorkloadKind};

fn status(findings: &[Finding], id: &str) -> Status {
    findings
        .iter()
        .find(|f| f.id == id)
        .unwrap_or_else(|| panic!("no {id} in {findings:#?}"))
        .status
}

fn detail<'a>(findings: &'a [Finding], id: &str) -> &'a str {
    &findings
        .iter()
        .find(|f| f.id == id)
        .expect("present")
        .detail
}

fn workload(kind: WorkloadKind, name: &str, keys: &[&str]) -> MtlsWorkload {
    MtlsWorkload {
        kind,
        name: name.into(),
        secrets: BTreeMap::from([(
            "argocd-repo-server-mtls".to_owned(),
            keys.iter().map(|k| (*k).to_owned()).collect(),
        )]),
    }
}

fn correct_mounts() -> Vec<MtlsWorkload> {
    let client = ["client.crt", "client.key"];
    vec![
        workload(
            WorkloadKind::Deployment,
            "argocd-repo-server",
            &["client-ca.crt"],
        ),
        workload(WorkloadKind::Deployment, "argocd-server", &client),
        workload(
            WorkloadKind::StatefulSet,
            "argocd-application-controller",
            &client,
        ),
        workload(
            WorkloadKind::Deployment,
            "argocd-applicationset-controller",
            &client,
        ),
        workload(
            WorkloadKind::Deployment,
            "argocd-notifications-controller",
            // No items: the whole Secret is projected, which includes the pair.
            &[],
        ),
    ]
}

/// `config/mount/*`: every component projects what it reads; a missing projection or a
/// component that mounts nothing fails, naming it.
#[test]
fn mounts() {
    let ok = workloads::judge_mounts(&correct_mounts());
    assert_eq!(ok.len(), 5);
    assert!(ok.iter().all(|f| f.status == Status::Holds), "{ok:#?}");

    let mut wrong = correct_mounts();
    wrong[0] = workload(WorkloadKind::Deployment, "argocd-repo-server", &["ca.crt"]);
    wrong.retain(|w| w.name != "argocd-server");
    let judged = workloads::judge_mounts(&wrong);
    assert_eq!(
        status(&judged, "config/mount/argocd-repo-server"),
        Status::Fails
    );
    assert!(detail(&judged, "config/mount/argocd-repo-server").contains("client-ca.crt"));
    assert_eq!(status(&judged, "config/mount/argocd-server"), Status::Fails);
    assert_eq!(
        status(&judged, "config/mount/argocd-application-controller"),
        Status::Holds
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
    }
}

/// `config/restarted-after-secret/*`: pods started after the Secret changed pass; a repo-server
/// started before it still runs without mTLS (a required failure with the restart command); a
/// client started before it is advised to restart.
#[test]
fn restarts_after_the_secret() {
    let secret = secret_changed_at("2026-11-20T10:00:00Z");
    let mounts = correct_mounts();
    let pods = |repo: &str, server: &str| {
        BTreeMap::from([
            (
                "argocd-repo-server".to_owned(),
                vec![started("argocd-repo-server-1", repo)],
            ),
            (
                "argocd-server".to_owned(),
                vec![started("argocd-server-1", server)],
            ),
        ])
    };
    let repo = "config/restarted-after-secret/argocd-repo-server";
    let server = "config/restarted-after-secret/argocd-server";

    let after = pods("2026-11-20T10:05:00Z", "2026-11-20T10:05:00Z");
    let judged = workloads::judge_restarts(&secret, &mounts, &after, "argocd");
    assert_eq!(judged.len(), mounts.len());
    assert!(
        judged.iter().all(|f| f.status == Status::Holds),
        "{judged:#?}"
    );

    let before = pods("2026-11-20T09:00:00Z", "2026-11-20T09:00:00Z");
    let judged = workloads::judge_restarts(&secret, &mounts, &before, "argocd");
    assert_eq!(status(&judged, repo), Status::Fails);
    let words = detail(&judged, repo);
    assert!(words.starts_with("RESTART NEEDED"), "{words}");
    assert!(words.contains("kubectl -n argocd rollout restart deployment/argocd-repo-server"));
    assert_eq!(status(&judged, server), Status::Advice { holds: false });

    let no_time: Secret =
        serde_json::from_value(json!({ "metadata": { "name": "argocd-repo-server-mtls" } }))
            .unwrap();
    assert!(
        workloads::judge_restarts(&no_time, &mounts, &before, "argocd").is_empty(),
        "a Secret with no timestamp gives nothing to compare with"
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
    assert_eq!(
        status(&judged, &id("argocd-server")),
        Status::Advice { holds: true }
    );
    assert_eq!(
        status(&judged, &id("argocd-application-controller")),
        Status::Advice { holds: true }
    );
    for off in [
        "argocd-applicationset-controller",
        "argocd-notifications-controller",
    ] {
        assert_eq!(status(&judged, &id(off)), Status::Advice { holds: false });
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
    assert_eq!((none.id.as_str(), none.status), (id, Status::NotApplicable));
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
        grpc_log_level: None,
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
            (wrong[0].id.as_str(), wrong[0].status),
            (id, expected),
            "{name}"
        );
    }
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
        (plain.id.as_str(), plain.status),
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
        }],
        config: NamespaceObservation {
            secret_read: false,
            secret_unreadable: Some("forbidden: get secrets".into()),
            mtls_secret: None,
            workloads: correct_mounts(),
            mounting_pods: BTreeMap::new(),
            cmd_params: None,
            applications: Ok(None),
            client_logs: vec![],
        },
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

//! Rollout judgement of Deployments and StatefulSets, and waiting on it with progress.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use argocd_mtls_verify::kubernetes::cluster::{self, RolloutState};
use argocd_mtls_verify::kubernetes::workloads::{Workload, WorkloadKind};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use serde_json::{Value, json};

use super::fixtures::*;

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
    let w = Workload {
        kind: WorkloadKind::StatefulSet,
        name: "argocd-application-controller".into(),
        secrets: Default::default(),
        ..Default::default()
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
    let w = Workload {
        kind: WorkloadKind::Deployment,
        name: "argocd-server".into(),
        secrets: Default::default(),
        ..Default::default()
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

/// A rollout whose new pod the scheduler keeps refusing (required anti-affinity on too few
/// nodes) stops after 15 polls with the scheduler's own reason, long before the timeout; the
/// pod's state words say it too. A pod that is merely pending is waited for.
#[tokio::test]
async fn an_unschedulable_pod_ends_the_wait_with_the_schedulers_reason() {
    let reason = "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules.";
    let pod = |unschedulable: bool| {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "prod-argocd-repo-server-x", "namespace": "argocd",
                "labels": {"app.kubernetes.io/name": "argocd-repo-server"}},
            "status": {"phase": "Pending"}});
        if unschedulable {
            p["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": reason}]);
        }
        p
    };
    for unschedulable in [true, false] {
        let listed = pod(unschedulable);
        let (client, _) = mock_client(move |_, path, _| {
            if path.ends_with("/pods") {
                ok(&list("Pod", std::slice::from_ref(&listed)))
            } else {
                ok(&with_status(
                    workload("Deployment", "argocd-repo-server", 2),
                    2,
                    json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1}),
                ))
            }
        });
        let w = Workload {
            kind: WorkloadKind::Deployment,
            name: "prod-argocd-repo-server".into(),
            selector: [(
                "app.kubernetes.io/name".to_owned(),
                "argocd-repo-server".to_owned(),
            )]
            .into(),
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let err = cluster::wait_rollout(
            &client,
            "argocd",
            &w,
            Duration::from_secs(2),
            Duration::from_millis(10),
            |_| {},
        )
        .await
        .unwrap_err()
        .to_string();
        if unschedulable {
            assert!(
                err.contains("cannot be scheduled") && err.contains(reason),
                "{err}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "gave up before the timeout"
            );
        } else {
            assert!(err.contains("did not finish within 2 s"), "{err}");
        }
    }
    let words: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod(true)).unwrap();
    assert_eq!(cluster::unschedulable(&words).as_deref(), Some(reason));
}

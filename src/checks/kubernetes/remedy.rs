//! Fixes for a workload that does not mount `argocd-repo-server-mtls`, in the terms of whoever
//! made it ([`Installer`]): the Helm chart's values, the Operator's `ArgoCD` resource, a
//! strategic-merge patch for plain manifests and kustomize. Each is one line a user can apply as
//! printed; none is a `kubectl edit`, which the installer would undo.
//!
//! The mount is the one upstream's v3.5 install.yaml has: the Secret at
//! `/app/config/reposerver/mtls`, `optional: true`, projecting only what the role reads (the
//! repo-server the client CA; a client its pair and the repo-server's CA). The components' default
//! paths point there, so no flag is needed.

use crate::kubernetes::workloads::{Installer, Role, Workload};
use crate::pki::secrets::{MTLS_SECRET, mtls_keys};

/// Where upstream mounts the Secret, and where every component looks by default.
pub const MOUNT_PATH: &str = "/app/config/reposerver/mtls";

/// The pod volume for `role`: the Secret, projecting only the keys the role reads.
fn volume(role: Role) -> serde_json::Value {
    let keys: &[&str] = match role {
        Role::RepoServer => &[mtls_keys::CLIENT_CA],
        _ => &[
            mtls_keys::CLIENT_CERT,
            mtls_keys::CLIENT_KEY,
            mtls_keys::SERVER_CA,
        ],
    };
    let items: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| serde_json::json!({"key": k, "path": k}))
        .collect();
    serde_json::json!({
        "name": MTLS_SECRET,
        "secret": {"secretName": MTLS_SECRET, "optional": true, "items": items},
    })
}

fn volume_mount() -> serde_json::Value {
    serde_json::json!({"name": MTLS_SECRET, "mountPath": MOUNT_PATH})
}

/// The community chart's values keys for a role's extra volumes and mounts (charts 9.x and 10.x:
/// the first three components say `volumes`, the last two `extraVolumes`).
pub fn helm_keys(role: Role) -> (&'static str, &'static str, &'static str) {
    match role {
        Role::RepoServer => ("repoServer", "volumes", "volumeMounts"),
        Role::Server => ("server", "volumes", "volumeMounts"),
        Role::ApplicationController => ("controller", "volumes", "volumeMounts"),
        Role::ApplicationSetController => ("applicationSet", "extraVolumes", "extraVolumeMounts"),
        Role::NotificationsController => ("notifications", "extraVolumes", "extraVolumeMounts"),
    }
}

/// The `ArgoCD` resource's field for a role's pod (`spec.repo`, ...), where it has volumes: the
/// Operator (v0.18, and its main branch) gives the notifications controller none.
pub fn operator_field(role: Role) -> Option<&'static str> {
    match role {
        Role::RepoServer => Some("repo"),
        Role::Server => Some("server"),
        Role::ApplicationController => Some("controller"),
        Role::ApplicationSetController => Some("applicationSet"),
        Role::NotificationsController => None,
    }
}

/// The values (as one line of YAML: JSON) that mount the Secret for `role` in the chart.
pub fn helm_values(role: Role) -> serde_json::Value {
    let (component, volumes, mounts) = helm_keys(role);
    serde_json::json!({component: {volumes: [volume(role)], mounts: [volume_mount()]}})
}

/// The merge patch of the `ArgoCD` resource that mounts the Secret for `role`, where it can.
pub fn operator_patch(role: Role) -> Option<serde_json::Value> {
    let field = operator_field(role)?;
    Some(serde_json::json!({"spec": {field: {
        "volumes": [volume(role)],
        "volumeMounts": [volume_mount()],
    }}}))
}

/// The strategic-merge patch of the workload itself (volumes merge by name, the container by name,
/// its mounts by path).
pub fn workload_patch(role: Role, container: &str) -> serde_json::Value {
    serde_json::json!({"spec": {"template": {"spec": {
        "volumes": [volume(role)],
        "containers": [{"name": container, "volumeMounts": [volume_mount()]}],
    }}}})
}

/// The fix for `w` (running `role` in `container`), as its installer takes it.
pub fn mount(role: Role, w: &Workload, container: &str, namespace: &str) -> String {
    match &w.installer {
        Installer::Helm {
            chart,
            release,
            by_argocd,
        } => {
            let (component, volumes, mounts) = helm_keys(role);
            let values = helm_values(role);
            if *by_argocd {
                format!(
                    "{} was rendered by Argo CD from the chart {chart}: add `{component}.{volumes}` and `{component}.{mounts}` to the Helm values of the Application that syncs it (in Git; a patch here is undone by the next sync): {values}",
                    w.reference()
                )
            } else {
                let release = release.as_deref().unwrap_or("RELEASE");
                format!(
                    "Helm release `{release}` (chart {chart}) made {}: set `{component}.{volumes}` and `{component}.{mounts}` in its values (a patch is undone by the next helm upgrade). Save this line as mtls-values.yaml: {values} then: helm upgrade {release} <the chart you installed> -n {namespace} --reuse-values -f mtls-values.yaml",
                    w.reference()
                )
            }
        }
        Installer::Operator { argocd } => match operator_patch(role) {
            Some(patch) => format!(
                "the Argo CD Operator made {} from ArgoCD `{argocd}` and reverts patches of it: set `spec.{}.volumes` and `.volumeMounts` in the ArgoCD resource (this replaces those two lists: keep any you already have): kubectl -n {namespace} patch argocds.argoproj.io {argocd} --type merge -p '{patch}'",
                w.reference(),
                operator_field(role).unwrap_or_default()
            ),
            None => format!(
                "the Argo CD Operator made {} from ArgoCD `{argocd}`, and its ArgoCD resource has no volumes for the notifications controller: the Operator cannot mount the Secret there, and it reverts a patch of the Deployment. Once the repo-server enforces mTLS, this controller's calls to it are refused: switch notifications off, kubectl -n {namespace} patch argocds.argoproj.io {argocd} --type merge -p '{}', or accept that",
                w.reference(),
                serde_json::json!({"spec": {"notifications": {"enabled": false}}})
            ),
        },
        Installer::Kustomize | Installer::Manifests => {
            let patch = workload_patch(role, container);
            format!(
                "kubectl -n {namespace} patch {} {} -p '{patch}' (kustomize: put the same patch under `patches:`; Argo CD v3.5's own install.yaml has this mount: re-applying it adds it too)",
                w.kind.kubectl(),
                w.name
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::workloads::WorkloadKind;

    fn workload(installer: Installer) -> Workload {
        Workload {
            kind: WorkloadKind::Deployment,
            name: "gitops-argocd-repo-server".into(),
            installer,
            ..Default::default()
        }
    }

    #[test]
    fn each_installer_gets_its_own_fix_and_none_says_kubectl_edit() {
        let helm = mount(
            Role::RepoServer,
            &workload(Installer::Helm {
                chart: "argo-cd-10.2.3".into(),
                release: Some("gitops".into()),
                by_argocd: false,
            }),
            "repo-server",
            "argocd",
        );
        assert!(
            helm.contains("Helm release `gitops` (chart argo-cd-10.2.3)"),
            "{helm}"
        );
        assert!(helm.contains(r#"{"repoServer":{"volumes":[{"name":"argocd-repo-server-mtls","secret":{"secretName":"argocd-repo-server-mtls","optional":true,"items":[{"key":"client-ca.crt","path":"client-ca.crt"}]}}],"volumeMounts":[{"name":"argocd-repo-server-mtls","mountPath":"/app/config/reposerver/mtls"}]}}"#), "{helm}");
        assert!(helm.contains("helm upgrade gitops"), "{helm}");
        let appset = helm_values(Role::ApplicationSetController);
        assert!(
            appset["applicationSet"]["extraVolumes"][0]["secret"]["items"][1]["key"]
                == "client.key"
        );
        assert!(appset["applicationSet"]["extraVolumeMounts"].is_array());

        let by_argocd = mount(
            Role::Server,
            &workload(Installer::Helm {
                chart: "argo-cd-10.2.3".into(),
                release: Some("argocd".into()),
                by_argocd: true,
            }),
            "server",
            "argocd",
        );
        assert!(
            by_argocd.contains("Helm values of the Application"),
            "{by_argocd}"
        );

        let operator = mount(
            Role::ApplicationController,
            &workload(Installer::Operator {
                argocd: "example".into(),
            }),
            "argocd-application-controller",
            "argocd",
        );
        assert!(operator.contains("kubectl -n argocd patch argocds.argoproj.io example --type merge -p '{\"spec\":{\"controller\":{\"volumes\""), "{operator}");
        let notifications = mount(
            Role::NotificationsController,
            &workload(Installer::Operator {
                argocd: "example".into(),
            }),
            "argocd-notifications-controller",
            "argocd",
        );
        assert!(
            notifications.contains("has no volumes for the notifications controller"),
            "{notifications}"
        );
        assert!(
            notifications
                .contains(r#"--type merge -p '{"spec":{"notifications":{"enabled":false}}}'"#),
            "{notifications}"
        );

        let plain = mount(
            Role::RepoServer,
            &workload(Installer::Manifests),
            "argocd-repo-server",
            "argocd",
        );
        assert!(plain.starts_with("kubectl -n argocd patch deployment gitops-argocd-repo-server -p '{\"spec\":{\"template\""), "{plain}");
        for fix in [helm, by_argocd, operator, notifications, plain] {
            assert!(
                !fix.contains("kubectl edit") && !fix.contains(" edit "),
                "{fix}"
            );
        }
    }

    #[test]
    fn the_installer_is_read_from_owner_labels_and_annotations() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
        let map = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let operator = ObjectMeta {
            owner_references: Some(vec![OwnerReference {
                api_version: "argoproj.io/v1beta1".into(),
                kind: "ArgoCD".into(),
                name: "example".into(),
                controller: Some(true),
                ..Default::default()
            }]),
            labels: map(&[("helm.sh/chart", "argocd-operator-0.18.0")]),
            ..Default::default()
        };
        assert_eq!(
            Installer::of(&operator),
            Installer::Operator {
                argocd: "example".into()
            }
        );
        let helm = ObjectMeta {
            labels: map(&[
                ("helm.sh/chart", "argo-cd-10.2.3"),
                ("app.kubernetes.io/instance", "gitops"),
            ]),
            annotations: map(&[("meta.helm.sh/release-name", "gitops")]),
            ..Default::default()
        };
        assert_eq!(
            Installer::of(&helm),
            Installer::Helm {
                chart: "argo-cd-10.2.3".into(),
                release: Some("gitops".into()),
                by_argocd: false
            }
        );
        let rendered = ObjectMeta {
            labels: map(&[
                ("helm.sh/chart", "argo-cd-10.2.3"),
                ("app.kubernetes.io/instance", "argocd"),
            ]),
            annotations: map(&[(
                "argocd.argoproj.io/tracking-id",
                "argocd:apps/Deployment:argocd/argocd-server",
            )]),
            ..Default::default()
        };
        assert!(matches!(
            Installer::of(&rendered),
            Installer::Helm {
                by_argocd: true,
                ..
            }
        ));
        let kustomize = ObjectMeta {
            labels: map(&[("app.kubernetes.io/managed-by", "kustomize-v5.7.1")]),
            ..Default::default()
        };
        assert_eq!(Installer::of(&kustomize), Installer::Kustomize);
        assert_eq!(Installer::of(&ObjectMeta::default()), Installer::Manifests);
    }
}

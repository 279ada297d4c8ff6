//! The write path, reached only when the user asked for it (`--provision`, kind): the Secrets by
//! server-side apply, the strict profile's cmd-params, the grpc-go log level, and restarts.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};

use crate::kubernetes::workloads::{Workload, WorkloadKind};
use crate::report::policyreport::ReportApi;

use super::{ClusterError, api_error};

/// The annotation `kubectl rollout restart` sets on the pod template.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// The strategic-merge patch `kubectl rollout restart` sends, for Deployments and StatefulSets alike.
pub fn restart_patch(at: time::OffsetDateTime) -> serde_json::Value {
    let stamp = at
        .replace_nanosecond(0)
        .unwrap_or(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    serde_json::json!({ "spec": { "template": { "metadata": { "annotations": { RESTARTED_AT: stamp } } } } })
}

/// Restarts one workload the way `kubectl rollout restart` does.
pub async fn restart(
    client: &Client,
    namespace: &str,
    w: &Workload,
    at: time::OffsetDateTime,
) -> Result<(), ClusterError> {
    let patch = Patch::Strategic(restart_patch(at));
    let params = PatchParams::default();
    match w.kind {
        WorkloadKind::Deployment => {
            let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
            api.patch(&w.name, &params, &patch)
                .await
                .map(|_| ())
                .map_err(|e| api_error("patch", "deployments.apps", namespace, e))
        }
        WorkloadKind::StatefulSet => {
            let api: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
            api.patch(&w.name, &params, &patch)
                .await
                .map(|_| ())
                .map_err(|e| api_error("patch", "statefulsets.apps", namespace, e))
        }
    }
}

/// The field manager provisioning applies as (distinct from the installer's, so re-applying the
/// Secrets never prunes fields the install set).
pub const PROVISION_MANAGER: &str = "argocd-mtls-verify-provision";

/// Mount path of `argocd-repo-server-mtls` in the client components.
pub const CLIENT_MTLS_DIR: &str = "/app/config/reposerver/mtls";

/// Creates or updates the mTLS Secrets. A Secret that exists and was not made by this tool is left
/// alone and reported: provisioning never overwrites an operator's material.
pub async fn provision_secrets(
    client: &Client,
    namespace: &str,
    secrets: &[Secret],
) -> Result<Vec<crate::kubernetes::install::Created>, ClusterError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut created = Vec::new();
    // Every Secret is checked before any is written, so a refusal leaves nothing half-provisioned.
    for secret in secrets {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let existing = api
            .get_metadata_opt(&name)
            .await
            .map_err(|e| api_error("get", "secrets", namespace, e))?;
        if existing.is_none() {
            created.push(crate::kubernetes::install::Created {
                resource: kube::discovery::ApiResource::erase::<Secret>(&()),
                name: name.clone(),
                namespace: Some(namespace.to_owned()),
            });
        }
        if let Some(existing) = existing {
            let ours = existing
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(crate::pki::secrets::MANAGED_BY.0))
                .is_some_and(|v| v == crate::pki::secrets::MANAGED_BY.1);
            if !ours {
                return Err(ClusterError::WouldOverwrite {
                    resource: format!("secrets/{name}"),
                    namespace: namespace.into(),
                });
            }
        }
    }
    for secret in secrets {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let mut body = serde_json::to_value(secret).expect("a Secret serializes");
        body["apiVersion"] = "v1".into();
        body["kind"] = "Secret".into();
        body["metadata"]["namespace"] = namespace.into();
        api.patch(
            &name,
            &PatchParams::apply(PROVISION_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await
        .map_err(|e| api_error("patch", "secrets", namespace, e))?;
    }
    Ok(created)
}

/// The argocd-cmd-params-cm patch of the `strict` profile: every client verifies the repo-server
/// against the `server-ca.crt` it already mounts.
pub fn strict_verification_patch() -> serde_json::Value {
    let data: serde_json::Map<String, serde_json::Value> =
        crate::kubernetes::workloads::SERVER_VERIFICATION_KEYS
            .iter()
            .map(|(_, ca_key, _)| {
                (
                    (*ca_key).to_owned(),
                    format!(
                        "{CLIENT_MTLS_DIR}/{}",
                        crate::pki::secrets::mtls_keys::SERVER_CA
                    )
                    .into(),
                )
            })
            .collect();
    serde_json::json!({ "data": data })
}

/// Applies [`strict_verification_patch`] (a merge patch: other keys are kept).
pub async fn set_strict_verification(client: &Client, namespace: &str) -> Result<(), ClusterError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    api.patch(
        "argocd-cmd-params-cm",
        &PatchParams::default(),
        &Patch::Merge(strict_verification_patch()),
    )
    .await
    .map(|_| ())
    .map_err(|e| api_error("patch", "configmaps", namespace, e))
}

/// The repo-server workload patch that makes grpc-go log refused handshakes (v1.81 logs them
/// only at INFO, which it hides by default), on `container` (the one discovery found running the
/// repo-server). Strategic merge: containers and env merge by name.
pub fn grpc_info_log_patch(container: &str) -> serde_json::Value {
    serde_json::json!({ "spec": { "template": { "spec": { "containers": [{
        "name": container,
        "env": [{ "name": "GRPC_GO_LOG_SEVERITY_LEVEL", "value": "info" }]
    }] } } } })
}

/// Applies [`grpc_info_log_patch`] to the repo-server workload `w`, by its kind and name.
pub async fn set_grpc_info_log(
    client: &Client,
    namespace: &str,
    w: &Workload,
) -> Result<(), ClusterError> {
    let container = w.container.as_deref().ok_or_else(|| ClusterError::NoRole {
        role: "argocd-repo-server",
        component: "repo-server",
        binary: "argocd-repo-server",
        namespace: namespace.to_owned(),
    })?;
    let patch = Patch::Strategic(grpc_info_log_patch(container));
    let params = PatchParams::default();
    match w.kind {
        WorkloadKind::Deployment => {
            let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
            api.patch(&w.name, &params, &patch).await.map(|_| ())
        }
        WorkloadKind::StatefulSet => {
            let api: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
            api.patch(&w.name, &params, &patch).await.map(|_| ())
        }
    }
    .map_err(|e| api_error("patch", w.kind.resource(), namespace, e))
}

/// Creates the namespace (server-side apply) if it is not there.
pub async fn ensure_namespace(
    client: &Client,
    namespace: &str,
) -> Result<Option<crate::kubernetes::install::Created>, ClusterError> {
    use k8s_openapi::api::core::v1::Namespace;
    let api: kube::Api<Namespace> = kube::Api::all(client.clone());
    let existed = api
        .get_metadata_opt(namespace)
        .await
        .map_err(|e| api_error("get", "namespaces", namespace, e))?
        .is_some();
    let body = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": namespace }
    });
    api.patch(
        namespace,
        &kube::api::PatchParams::apply(crate::kubernetes::install::FIELD_MANAGER),
        &kube::api::Patch::Apply(body),
    )
    .await
    .map_err(|e| api_error("patch", "namespaces", namespace, e))?;
    Ok((!existed).then(|| crate::kubernetes::install::Created {
        resource: kube::discovery::ApiResource::erase::<Namespace>(&()),
        name: namespace.to_owned(),
        namespace: None,
    }))
}

/// Which of the report APIs (`--policy-report`) the cluster serves, in [`ReportApi::ALL`]'s order.
pub async fn served_report_apis(client: &Client) -> Result<Vec<ReportApi>, ClusterError> {
    let mut served = Vec::new();
    for api in ReportApi::ALL {
        match client.list_api_group_resources(&api.api_version()).await {
            Ok(list) if list.resources.iter().any(|r| r.name == api.plural()) => served.push(api),
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(api_error("get", &api.api_version(), "", e)),
        }
    }
    Ok(served)
}

/// Server-side applies a report of `api` into `namespace`, replacing this tool's previous one,
/// with strict field validation: a field the cluster's schema does not know is an error, never
/// silently pruned. A cluster without the resource gets an error that says how to add it.
pub async fn apply_policy_report(
    client: &Client,
    namespace: &str,
    api: ReportApi,
    report: &serde_json::Value,
) -> Result<(), ClusterError> {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let gvk = GroupVersionKind::gvk(api.group(), api.version(), api.kind());
    let resource = ApiResource::from_gvk_with_plural(&gvk, api.plural());
    let objects: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let name = report["metadata"]["name"].as_str().unwrap_or_default();
    match objects
        .patch(
            name,
            &PatchParams::apply(crate::kubernetes::install::FIELD_MANAGER)
                .force()
                .validation_strict(),
            &Patch::Apply(report),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Err(ClusterError::NoReportResource {
            api,
            namespace: namespace.to_owned(),
        }),
        Err(e) => Err(api_error(
            "patch",
            &format!("{}.{}", api.plural(), api.group()),
            namespace,
            e,
        )),
    }
}

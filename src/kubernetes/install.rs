//! Installing a manifest the way install.yaml must be installed: server-side apply (client-side
//! apply overflows the last-applied annotation on Argo CD's large CRDs), namespaces and CRDs first,
//! then wait until every CRD is Established before anything that may depend on it.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{self, ApiCapabilities, ApiResource, Scope};

use super::cluster::{ClusterError, api_error};

/// The field manager the harness applies as.
pub const FIELD_MANAGER: &str = "argocd-mtls-verify";

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not YAML.
    #[error("{origin}: not a YAML manifest: {detail}")]
    Yaml {
        /// Where it came from.
        origin: String,
        /// The parser's message.
        detail: String,
    },
    /// A document lacks apiVersion, kind or metadata.name.
    #[error("{origin}: document #{index} is not a Kubernetes object: {detail}")]
    NotAnObject {
        /// Where it came from.
        origin: String,
        /// 1-based document number.
        index: usize,
        /// What is missing.
        detail: String,
    },
}

/// Parses a multi-document manifest; empty documents are skipped.
pub fn parse_manifest(text: &str, origin: &str) -> Result<Vec<DynamicObject>, ManifestError> {
    let docs: Vec<Option<serde_json::Value>> =
        serde_saphyr::from_multiple(text).map_err(|e| ManifestError::Yaml {
            origin: origin.to_owned(),
            detail: e.to_string(),
        })?;
    docs.into_iter()
        .enumerate()
        .filter_map(|(i, d)| d.filter(|v| !v.is_null()).map(|v| (i + 1, v)))
        .map(|(index, value)| {
            let obj: DynamicObject =
                serde_json::from_value(value).map_err(|e| ManifestError::NotAnObject {
                    origin: origin.to_owned(),
                    index,
                    detail: e.to_string(),
                })?;
            if obj.types.is_none() || obj.metadata.name.is_none() {
                return Err(ManifestError::NotAnObject {
                    origin: origin.to_owned(),
                    index,
                    detail: "missing apiVersion/kind or metadata.name".into(),
                });
            }
            Ok(obj)
        })
        .collect()
}

fn kind_of(obj: &DynamicObject) -> &str {
    obj.types
        .as_ref()
        .map(|t| t.kind.as_str())
        .unwrap_or_default()
}

/// Splits objects into what must exist first (Namespaces, CRDs) and the rest, keeping file order.
pub fn apply_order(objects: Vec<DynamicObject>) -> (Vec<DynamicObject>, Vec<DynamicObject>) {
    objects
        .into_iter()
        .partition(|o| matches!(kind_of(o), "Namespace" | "CustomResourceDefinition"))
}

fn gvk(obj: &DynamicObject) -> GroupVersionKind {
    let types = obj.types.as_ref().expect("checked in parse_manifest");
    let (group, version) = types
        .api_version
        .split_once('/')
        .unwrap_or(("", types.api_version.as_str()));
    GroupVersionKind::gvk(group, version, &types.kind)
}

/// Server-side applies `objects` into `namespace` (for namespaced kinds without one), CRDs first,
/// waiting up to `crd_timeout` for each CRD to be Established. Returns how many were applied.
pub async fn apply_all(
    client: &Client,
    objects: Vec<DynamicObject>,
    namespace: &str,
    crd_timeout: Duration,
    mut progress: impl FnMut(&str),
    created: &mut Vec<Created>,
) -> Result<usize, ClusterError> {
    let (first, rest) = apply_order(objects);
    let mut resolved: HashMap<String, (ApiResource, ApiCapabilities)> = HashMap::new();
    let total = first.len() + rest.len();
    let mut applied = 0;
    for obj in &first {
        apply_one(client, obj, namespace, &mut resolved, created).await?;
        applied += 1;
    }
    let crds: Vec<String> = first
        .iter()
        .filter(|o| kind_of(o) == "CustomResourceDefinition")
        .filter_map(|o| o.metadata.name.clone())
        .collect();
    if !crds.is_empty() {
        progress(&format!(
            "applied {} CRDs; waiting for them to be Established",
            crds.len()
        ));
    }
    for name in &crds {
        wait_established(client, name, crd_timeout).await?;
    }
    for (i, obj) in rest.iter().enumerate() {
        apply_one(client, obj, namespace, &mut resolved, created).await?;
        applied += 1;
        if (i + 1) % 20 == 0 {
            progress(&format!("applied {applied} of {total} objects"));
        }
    }
    progress(&format!("applied {applied} objects"));
    Ok(applied)
}

/// An object a run created (it did not exist before the run applied it), so a run that stops
/// early can delete exactly what it added and nothing that was there before.
#[derive(Debug, Clone)]
pub struct Created {
    /// Its API resource (for the delete call).
    pub resource: ApiResource,
    /// Its name.
    pub name: String,
    /// Its namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
}

impl Created {
    /// `kind/name` (and ` in namespace`), for messages.
    pub fn label(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{} in {ns}", self.resource.kind, self.name),
            None => format!("{}/{}", self.resource.kind, self.name),
        }
    }

    /// Deletes it, its dependents in the background (a Job deleted with the API's default would
    /// leave its pods behind). Gone already counts as deleted.
    pub async fn delete(&self, client: &Client) -> Result<(), ClusterError> {
        let api: Api<DynamicObject> = match &self.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &self.resource),
            None => Api::all_with(client.clone(), &self.resource),
        };
        match api
            .delete(&self.name, &kube::api::DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(api_error(
                "delete",
                &format!("{}/{}", self.resource.plural, self.name),
                self.namespace.as_deref().unwrap_or_default(),
                e,
            )),
        }
    }
}

async fn apply_one(
    client: &Client,
    obj: &DynamicObject,
    namespace: &str,
    resolved: &mut HashMap<String, (ApiResource, ApiCapabilities)>,
    created: &mut Vec<Created>,
) -> Result<(), ClusterError> {
    let gvk = gvk(obj);
    let key = format!("{}/{}/{}", gvk.group, gvk.version, gvk.kind);
    if !resolved.contains_key(&key) {
        let found = discovery::pinned_kind(client, &gvk)
            .await
            .map_err(|e| api_error("discover", &key, namespace, e))?;
        resolved.insert(key.clone(), found);
    }
    let (ar, caps) = &resolved[&key];
    let name = obj
        .metadata
        .name
        .clone()
        .expect("checked in parse_manifest");
    let object_namespace = match caps.scope {
        Scope::Namespaced => Some(obj.metadata.namespace.as_deref().unwrap_or(namespace)),
        Scope::Cluster => None,
    };
    let api: Api<DynamicObject> = match object_namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    };
    // Whether it exists decides whether this run created it (and may delete it if it stops).
    let existed = api
        .get_metadata_opt(&name)
        .await
        .map_err(|e| api_error("get", &format!("{}/{name}", ar.plural), namespace, e))?
        .is_some();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let applied = api
        .patch(&name, &params, &Patch::Apply(obj))
        .await
        .map(|_| ())
        .map_err(|e| {
            let resource = format!("{}/{name}", ar.plural);
            match e {
                kube::Error::Api(ref s) if s.code == 403 => ClusterError::Forbidden {
                    verb: "patch".into(),
                    resource,
                    namespace: namespace.into(),
                    message: s.message.clone(),
                },
                e => ClusterError::Api {
                    verb: "apply".into(),
                    resource,
                    namespace: namespace.into(),
                    source: e,
                },
            }
        });
    if applied.is_ok() && !existed {
        created.push(Created {
            resource: ar.clone(),
            name: name.clone(),
            namespace: object_namespace.map(str::to_owned),
        });
    }
    applied
}

/// Whether a CRD reports condition Established=True.
pub fn is_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}

async fn wait_established(
    client: &Client,
    name: &str,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let crd = api
            .get(name)
            .await
            .map_err(|e| api_error("get", &format!("customresourcedefinitions/{name}"), "", e))?;
        if is_established(&crd) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ClusterError::Timeout {
                what: format!("CustomResourceDefinition {name} (Established)"),
                seconds: timeout.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

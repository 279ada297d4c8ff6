//! Facts about the workloads of repo-server mTLS, read off plain k8s-openapi objects: each
//! Deployment and StatefulSet's [`Role`] (found by its container's binary, its labels or its name,
//! never by an upstream name), the container that runs it, its Secret mounts and settings, the
//! `argocd-repo-server-mtls*` Secrets it mounts, when the Secret last changed, and the line a
//! crashed run logged last. Nothing here judges: the checks do (`checks/kubernetes/`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, PodSpec, Secret, Volume};
use serde::{Deserialize, Serialize};

use crate::pki::secrets::MTLS_SECRET;

/// A workload kind that can be restarted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub enum WorkloadKind {
    /// apps/v1 Deployment.
    #[default]
    Deployment,
    /// apps/v1 StatefulSet (argocd-application-controller is one, in both installs).
    StatefulSet,
}

impl WorkloadKind {
    /// The kubectl resource word (`deployment`, `statefulset`).
    pub fn kubectl(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
        }
    }
    /// The API resource (`deployments.apps`, `statefulsets.apps`), for messages.
    pub fn resource(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployments.apps",
            WorkloadKind::StatefulSet => "statefulsets.apps",
        }
    }
}

/// What a workload is to repo-server mTLS: the server, or one of its four clients. Found from the
/// workload itself (its container's binary, its labels, its name), never assumed from a name:
/// Helm, the Operator and kustomize rename workloads and containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// argocd-repo-server: trusts the client CA.
    RepoServer,
    /// argocd-server (a client).
    Server,
    /// argocd-application-controller, a StatefulSet or (dynamic cluster distribution) a Deployment.
    ApplicationController,
    /// argocd-applicationset-controller (a client).
    ApplicationSetController,
    /// argocd-notifications-controller (a client).
    NotificationsController,
}

impl Role {
    /// Every role, the repo-server first.
    pub const ALL: [Role; 5] = [
        Role::RepoServer,
        Role::Server,
        Role::ApplicationController,
        Role::ApplicationSetController,
        Role::NotificationsController,
    ];
    /// The four clients of the repo-server.
    pub const CLIENTS: [Role; 4] = [
        Role::Server,
        Role::ApplicationController,
        Role::ApplicationSetController,
        Role::NotificationsController,
    ];

    /// The upstream workload name and `app.kubernetes.io/name` value. Per-component case ids end
    /// with it (`config/mount/argocd-server`) whatever the installation calls the workload, so a
    /// baseline compares equal across installers.
    pub fn upstream(self) -> &'static str {
        match self {
            Role::RepoServer => "argocd-repo-server",
            Role::Server => "argocd-server",
            Role::ApplicationController => "argocd-application-controller",
            Role::ApplicationSetController => "argocd-applicationset-controller",
            Role::NotificationsController => "argocd-notifications-controller",
        }
    }

    /// The `app.kubernetes.io/component` value upstream and the Helm chart give it (Helm also
    /// names the container so).
    pub fn component(self) -> &'static str {
        match self {
            Role::RepoServer => "repo-server",
            Role::Server => "server",
            Role::ApplicationController => "application-controller",
            Role::ApplicationSetController => "applicationset-controller",
            Role::NotificationsController => "notifications-controller",
        }
    }

    /// The name the one `argocd` binary runs under for this role (`/usr/local/bin/<it>`).
    pub fn binary(self) -> &'static str {
        match self {
            Role::RepoServer => "argocd-repo-server",
            Role::Server => "argocd-server",
            Role::ApplicationController => "argocd-application-controller",
            Role::ApplicationSetController => "argocd-applicationset-controller",
            Role::NotificationsController => "argocd-notifications",
        }
    }

    /// A client's environment prefix of its repo-server TLS settings
    /// (`ARGOCD_<it>REPO_SERVER_CLIENT_CERT_PATH`) and its argocd-cmd-params-cm key prefix
    /// (`<it>.repo.server.client.cert.path`); `None` for the repo-server.
    pub fn client_settings(self) -> Option<(&'static str, &'static str)> {
        match self {
            Role::RepoServer => None,
            Role::Server => Some(("SERVER_", "server")),
            Role::ApplicationController => Some(("APPLICATION_CONTROLLER_", "controller")),
            Role::ApplicationSetController => {
                Some(("APPLICATIONSET_CONTROLLER_", "applicationsetcontroller"))
            }
            Role::NotificationsController => {
                Some(("NOTIFICATION_CONTROLLER_", "notificationscontroller"))
            }
        }
    }

    /// The role whose binary `token` (a command or argument word, with or without a directory)
    /// names.
    fn of_binary(token: &str) -> Option<Role> {
        let base = token.rsplit('/').next().unwrap_or(token);
        Role::ALL.into_iter().find(|r| r.binary() == base)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.upstream())
    }
}

/// How a workload's role was found, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FoundBy {
    /// A container runs the role's binary (its command or first argument).
    Command,
    /// The pod template's `app.kubernetes.io/name` is the upstream name, or ends with
    /// `-<component>` (the Operator's `<cr>-repo-server`).
    NameLabel,
    /// The pod template's `app.kubernetes.io/component` is the role's component.
    ComponentLabel,
    /// Only the workload's name ends with the role's component: the last resort.
    WorkloadName,
}

/// Where a container's environment variable takes its value from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// A literal value.
    Literal(String),
    /// A ConfigMap key (`valueFrom.configMapKeyRef`).
    ConfigMapKey {
        /// The ConfigMap.
        config_map: String,
        /// The key.
        key: String,
    },
    /// Anything else (a Secret key, a field reference): not resolved.
    Other,
}

/// One Secret-backed volume mounted into the role's container: where it is mounted and which of
/// the Secret's keys become which files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretMount {
    /// The mount path in the container.
    pub mount_path: String,
    /// `subPath` of the mount (one file of the volume), when set.
    pub sub_path: Option<String>,
    /// The Secrets the volume projects, each with its `items` as (key, path) pairs; no items
    /// means every key becomes a file of its own name.
    pub sources: Vec<(String, Vec<(String, String)>)>,
}

/// A path setting as the role's binary will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The value.
    pub value: String,
    /// Where it came from, in words (`the default`, `argument --client-ca-path`,
    /// `argocd-cmd-params-cm key reposerver.client.ca.path (env ARGOCD_REPO_SERVER_CLIENT_CA_PATH)`).
    pub from: String,
}

/// The repo-server's client CA path: flag, environment variable, default.
pub const CLIENT_CA_PATH: (&str, &str, &str) = (
    "client-ca-path",
    "ARGOCD_REPO_SERVER_CLIENT_CA_PATH",
    "/app/config/reposerver/mtls/client-ca.crt",
);

/// A client's certificate and key paths: (flag, environment suffix after `ARGOCD_<prefix>`,
/// argocd-cmd-params-cm suffix after `<prefix>.`, default).
pub const CLIENT_PAIR_PATHS: [(&str, &str, &str, &str); 2] = [
    (
        "repo-server-client-cert-path",
        "REPO_SERVER_CLIENT_CERT_PATH",
        "repo.server.client.cert.path",
        "/app/config/reposerver/mtls/client.crt",
    ),
    (
        "repo-server-client-cert-key-path",
        "REPO_SERVER_CLIENT_CERT_KEY_PATH",
        "repo.server.client.cert.key.path",
        "/app/config/reposerver/mtls/client.key",
    ),
];

/// What an mTLS file is to the component that reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MtlsFile {
    /// The repo-server's client CA bundle (`client-ca.crt` by default).
    ClientCa,
    /// A client's certificate (`client.crt` by default).
    ClientCert,
    /// A client's private key (`client.key` by default).
    ClientKey,
}

impl MtlsFile {
    /// In words: `client CA`, `client certificate`, `client key`.
    pub fn words(self) -> &'static str {
        match self {
            MtlsFile::ClientCa => "client CA",
            MtlsFile::ClientCert => "client certificate",
            MtlsFile::ClientKey => "client key",
        }
    }
}

/// One mTLS file a component reads: the path it runs with and where that file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtlsRead {
    /// Which file.
    pub file: MtlsFile,
    /// The effective path setting.
    pub setting: Setting,
    /// The Secret key mounted there, or nothing.
    pub source: FileSource,
}

/// Where a file path of a container comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// A key of a Secret.
    SecretKey {
        /// The Secret.
        secret: String,
        /// The key.
        key: String,
    },
    /// No Secret volume of the container holds that path: the file does not exist (unless the
    /// image ships it).
    NotMounted,
}

/// Who made a workload, read from its own metadata. A fix to its pod template belongs there: a
/// `kubectl edit` is undone by the next `helm upgrade`, by the Operator's next reconcile, or by
/// Argo CD's next sync of the chart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "by")]
pub enum Installer {
    /// The Argo CD Operator: an `ArgoCD` resource (`argoproj.io`) is its controller owner.
    Operator {
        /// The `ArgoCD` resource's name.
        argocd: String,
    },
    /// The community Helm chart (label `helm.sh/chart: argo-cd-<version>`).
    Helm {
        /// `argo-cd-<version>`.
        chart: String,
        /// The release (`meta.helm.sh/release-name`, else `app.kubernetes.io/instance`).
        release: Option<String>,
        /// Rendered by Argo CD from Git (`helm template`: no `meta.helm.sh/*` annotations, an
        /// `argocd.argoproj.io/tracking-id`): its values live in the Application, not a release.
        by_argocd: bool,
    },
    /// Kustomize with its build metadata on (`app.kubernetes.io/managed-by: kustomize-*`).
    Kustomize,
    /// Plain manifests: install.yaml, or kustomize without build metadata (on the cluster the
    /// two look the same).
    #[default]
    Manifests,
}

impl Installer {
    /// Reads the installer off a workload's metadata.
    pub fn of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Installer {
        let owner = meta.owner_references.iter().flatten().find(|o| {
            o.kind == "ArgoCD"
                && o.api_version.starts_with("argoproj.io/")
                && o.controller == Some(true)
        });
        if let Some(owner) = owner {
            return Installer::Operator {
                argocd: owner.name.clone(),
            };
        }
        let label = |k: &str| meta.labels.as_ref().and_then(|l| l.get(k));
        let annotation = |k: &str| meta.annotations.as_ref().and_then(|a| a.get(k));
        if let Some(chart) = label("helm.sh/chart") {
            let release =
                annotation("meta.helm.sh/release-name").or(label("app.kubernetes.io/instance"));
            return Installer::Helm {
                chart: chart.clone(),
                release: release.cloned(),
                by_argocd: annotation("meta.helm.sh/release-name").is_none()
                    && annotation("argocd.argoproj.io/tracking-id").is_some(),
            };
        }
        if label("app.kubernetes.io/managed-by").is_some_and(|m| m.starts_with("kustomize")) {
            return Installer::Kustomize;
        }
        Installer::Manifests
    }

    /// One line for messages: `Helm release argocd (chart argo-cd-10.2.3)`.
    pub fn describe(&self) -> String {
        match self {
            Installer::Operator { argocd } => format!("the Argo CD Operator (ArgoCD `{argocd}`)"),
            Installer::Helm {
                chart,
                release,
                by_argocd: true,
            } => format!(
                "the Helm chart {chart}{}, rendered by Argo CD from Git",
                release
                    .as_ref()
                    .map(|r| format!(" (instance {r})"))
                    .unwrap_or_default()
            ),
            Installer::Helm { chart, release, .. } => match release {
                Some(r) => format!("Helm release `{r}` (chart {chart})"),
                None => format!("the Helm chart {chart}"),
            },
            Installer::Kustomize => "kustomize".into(),
            Installer::Manifests => "plain manifests (install.yaml or kustomize)".into(),
        }
    }
}

/// A Deployment or StatefulSet that matters to repo-server mTLS: it has a role, or it mounts an
/// `argocd-repo-server-mtls*` Secret, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// Kind.
    pub kind: WorkloadKind,
    /// Name.
    pub name: String,
    /// What it is, when that could be found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// How the role was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found_by: Option<FoundBy>,
    /// The container that runs the role (its log, its env and mounts are that container's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Secret name -> projected keys (empty = all keys), for the `argocd-repo-server-mtls*`
    /// Secrets the pod template mounts.
    pub secrets: BTreeMap<String, Vec<String>>,
    /// What in its pod template enrols it in a service mesh (`sidecar.istio.io/inject=true`,
    /// `istio.io/dataplane-mode=ambient`, `linkerd.io/inject=enabled`); empty when nothing does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mesh: Vec<String>,
    /// Desired replicas (`spec.replicas`; unset means 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Who made it.
    #[serde(default)]
    pub installer: Installer,
    /// Every Secret its pod template mounts as a volume (by name), for restarting what mounts
    /// a Secret the run wrote.
    #[serde(skip)]
    pub mounted_secrets: std::collections::BTreeSet<String>,
    /// The label selector of its pods (`matchLabels`).
    #[serde(skip)]
    pub selector: BTreeMap<String, String>,
    /// The Secret volumes mounted into the role's container.
    #[serde(skip)]
    pub mounts: Vec<SecretMount>,
    /// The role container's environment.
    #[serde(skip)]
    pub env: BTreeMap<String, EnvValue>,
    /// The role container's command and arguments, in order.
    #[serde(skip)]
    pub argv: Vec<String>,
}

/// A value's name as serde writes it (`repo-server`, `name-label`).
fn serde_name(value: impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

impl Workload {
    /// What the report records of it.
    pub fn facts(&self) -> crate::report::WorkloadFacts {
        crate::report::WorkloadFacts {
            kind: serde_name(self.kind),
            name: self.name.clone(),
            role: self.role.map(serde_name),
            found_by: self.found_by.map(serde_name),
            container: self.container.clone(),
            secrets: self.secrets.clone(),
            mesh: self.mesh.clone(),
            replicas: self.replicas,
            installer: Some(self.installer.describe()),
        }
    }

    /// `deployment/NAME` or `statefulset/NAME`.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.kind.kubectl(), self.name)
    }

    /// Whether the pod template mounts any of `secrets` (by name).
    pub fn mounts_any(&self, secrets: &[&str]) -> bool {
        secrets.iter().any(|s| self.mounted_secrets.contains(*s))
    }

    /// Whether the pod template mounts an `argocd-repo-server-mtls*` Secret.
    pub fn mounts_mtls(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// The value of `--flag` in the role container's command line (`--flag=V` or `--flag V`).
    pub fn flag(&self, flag: &str) -> Option<&str> {
        let long = format!("--{flag}");
        let mut words = self.argv.iter();
        while let Some(w) = words.next() {
            if *w == long {
                return words.next().map(String::as_str);
            }
            if let Some(v) = w.strip_prefix(&long).and_then(|r| r.strip_prefix('=')) {
                return Some(v);
            }
        }
        None
    }

    /// The value the role's binary runs with for one of its path settings: the command-line flag,
    /// else the environment variable (a literal, or an argocd-cmd-params-cm key through
    /// `configMapKeyRef`), else the binary's default. An empty environment value counts as unset
    /// (Argo CD's `env.StringFromEnv`); an empty flag value (`--client-ca-path=`) does not.
    pub fn setting(
        &self,
        flag: &str,
        env: &str,
        default: &str,
        cmd_params: Option<&ConfigMap>,
    ) -> Setting {
        if let Some(v) = self.flag(flag) {
            return Setting {
                value: v.to_owned(),
                from: format!("argument --{flag}"),
            };
        }
        let from_env = match self.env.get(env) {
            Some(EnvValue::Literal(v)) => Some((v.clone(), format!("env {env}"))),
            Some(EnvValue::ConfigMapKey { config_map, key }) => cmd_params
                .filter(|c| c.metadata.name.as_deref().is_none_or(|n| n == config_map))
                .and_then(|c| c.data.as_ref()?.get(key).cloned())
                .map(|v| (v, format!("{config_map} key {key} (env {env})"))),
            _ => None,
        };
        match from_env {
            Some((v, from)) if !v.trim().is_empty() => Setting {
                value: v.trim().to_owned(),
                from,
            },
            _ => Setting {
                value: default.to_owned(),
                from: "the default".to_owned(),
            },
        }
    }

    /// The mTLS files its role reads (the repo-server its client CA; a client its certificate
    /// and key), each followed from its effective path to the Secret key mounted there. Empty
    /// without a role.
    pub fn mtls_reads(&self, cmd_params: Option<&ConfigMap>) -> Vec<MtlsRead> {
        let Some(role) = self.role else {
            return vec![];
        };
        let settings: Vec<(MtlsFile, Setting)> = match role.client_settings() {
            None => {
                let (flag, env, default) = CLIENT_CA_PATH;
                vec![(
                    MtlsFile::ClientCa,
                    self.setting(flag, env, default, cmd_params),
                )]
            }
            Some((env_prefix, _)) => CLIENT_PAIR_PATHS
                .iter()
                .zip([MtlsFile::ClientCert, MtlsFile::ClientKey])
                .map(|((flag, env, _, default), file)| {
                    let env = format!("ARGOCD_{env_prefix}{env}");
                    (file, self.setting(flag, &env, default, cmd_params))
                })
                .collect(),
        };
        settings
            .into_iter()
            .map(|(file, setting)| MtlsRead {
                file,
                source: if setting.value.is_empty() {
                    FileSource::NotMounted
                } else {
                    self.file_source(&setting.value)
                },
                setting,
            })
            .collect()
    }

    /// Where `path` in the role container comes from: the Secret key its mounts project there.
    pub fn file_source(&self, path: &str) -> FileSource {
        for m in &self.mounts {
            let relative = match &m.sub_path {
                // A subPath mount puts one file of the volume at mount_path.
                Some(sub) if m.mount_path == path => sub.as_str(),
                Some(_) => continue,
                None => match path
                    .strip_prefix(m.mount_path.trim_end_matches('/'))
                    .and_then(|r| r.strip_prefix('/'))
                {
                    Some(r) => r,
                    None => continue,
                },
            };
            for (secret, items) in &m.sources {
                let key = if items.is_empty() {
                    (!relative.contains('/')).then(|| relative.to_owned())
                } else {
                    items
                        .iter()
                        .find(|(_, p)| p == relative)
                        .map(|(k, _)| k.clone())
                };
                if let Some(key) = key {
                    return FileSource::SecretKey {
                        secret: secret.clone(),
                        key,
                    };
                }
            }
        }
        FileSource::NotMounted
    }
}

/// The `argocd-repo-server-mtls*` Secrets a pod template mounts, with the keys each projects.
pub fn mtls_mounts(spec: &PodSpec) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for volume in spec.volumes.iter().flatten() {
        for (name, items) in volume_secrets(volume) {
            if name.starts_with(MTLS_SECRET) {
                out.insert(name, items.into_iter().map(|(k, _)| k).collect());
            }
        }
    }
    out
}

/// The Secrets a volume projects, each with its items as (key, path).
fn volume_secrets(volume: &Volume) -> Vec<(String, Vec<(String, String)>)> {
    let items = |items: Option<&Vec<k8s_openapi::api::core::v1::KeyToPath>>| {
        items
            .into_iter()
            .flatten()
            .map(|i| (i.key.clone(), i.path.clone()))
            .collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    if let Some(s) = &volume.secret
        && let Some(name) = &s.secret_name
    {
        out.push((name.clone(), items(s.items.as_ref())));
    }
    if let Some(p) = &volume.projected {
        for source in p.sources.iter().flatten() {
            if let Some(s) = &source.secret {
                out.push((s.name.clone(), items(s.items.as_ref())));
            }
        }
    }
    out
}

/// The role of a pod template, how it was found, and the container that runs it.
fn role_of(
    workload_name: &str,
    labels: Option<&BTreeMap<String, String>>,
    spec: &PodSpec,
) -> Option<(Role, FoundBy, String)> {
    for c in &spec.containers {
        let words = c.command.iter().flatten().chain(c.args.iter().flatten());
        // The binary is the first word, or follows a wrapper (`uid_entrypoint.sh argocd-...`).
        if let Some(role) = words.take(2).find_map(|w| Role::of_binary(w)) {
            return Some((role, FoundBy::Command, c.name.clone()));
        }
    }
    let container = |role: Role| {
        spec.containers
            .iter()
            .find(|c| c.name == role.upstream() || c.name == role.component())
            .or(spec.containers.first())
            .map(|c| c.name.clone())
    };
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    // Longest component first: `-server` must not claim `-repo-server`.
    let mut by_suffix = Role::ALL;
    by_suffix.sort_by_key(|r| std::cmp::Reverse(r.component().len()));
    let suffix_role = |name: &str| {
        by_suffix.into_iter().find(|r| {
            name == r.upstream()
                || (name.ends_with(&format!("-{}", r.component()))
                    && !OTHER_SERVERS.iter().any(|o| name.ends_with(o)))
        })
    };
    if let Some(name) = label("app.kubernetes.io/name")
        && let Some(role) = suffix_role(name)
    {
        return Some((role, FoundBy::NameLabel, container(role)?));
    }
    if let Some(component) = label("app.kubernetes.io/component")
        && let Some(role) = Role::ALL.into_iter().find(|r| r.component() == component)
    {
        return Some((role, FoundBy::ComponentLabel, container(role)?));
    }
    let role = suffix_role(workload_name)?;
    Some((role, FoundBy::WorkloadName, container(role)?))
}

/// The containers a service mesh injects beside the application (Istio's and Linkerd's proxies).
pub const MESH_PROXIES: [&str; 2] = ["istio-proxy", "linkerd-proxy"];

/// What in a pod template asks a mesh to take the pod's traffic: Istio's and Linkerd's
/// injection switches and Istio's ambient enrolment, as `key=value` words.
fn mesh_enrolment(
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
) -> Vec<String> {
    let wanted = [
        ("sidecar.istio.io/inject", "true"),
        ("istio.io/dataplane-mode", "ambient"),
        ("linkerd.io/inject", "enabled"),
    ];
    let mut out = Vec::new();
    for map in [labels, annotations].into_iter().flatten() {
        for (k, v) in wanted {
            if map.get(k).is_some_and(|x| x == v) {
                out.push(format!("{k}={v}"));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Argo CD workloads whose names end like a role's but are none (`-dex-server`, Redis HA's server).
const OTHER_SERVERS: [&str; 3] = ["-dex-server", "-redis-ha-server", "-commit-server"];

fn workload_of(
    kind: WorkloadKind,
    replicas: Option<i32>,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    selector: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    template: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>,
) -> Option<Workload> {
    let name = meta.name.clone()?;
    let spec = template?.spec.as_ref()?;
    let labels = template.and_then(|t| t.metadata.as_ref()?.labels.as_ref());
    let annotations = template.and_then(|t| t.metadata.as_ref()?.annotations.as_ref());
    let found = role_of(&name, labels, spec);
    let secrets = mtls_mounts(spec);
    if found.is_none() && secrets.is_empty() {
        return None;
    }
    let container = found
        .as_ref()
        .and_then(|(_, _, c)| spec.containers.iter().find(|x| &x.name == c));
    let volumes: BTreeMap<&str, &Volume> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| (v.name.as_str(), v))
        .collect();
    let mounts = container
        .and_then(|c| c.volume_mounts.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let sources = volume_secrets(volumes.get(m.name.as_str())?);
            (!sources.is_empty()).then(|| SecretMount {
                mount_path: m.mount_path.clone(),
                sub_path: m.sub_path.clone().filter(|s| !s.is_empty()),
                sources,
            })
        })
        .collect();
    let env = container
        .and_then(|c| c.env.as_ref())
        .into_iter()
        .flatten()
        .map(|e| {
            let value = match (&e.value, &e.value_from) {
                (_, Some(from)) => match &from.config_map_key_ref {
                    Some(r) => EnvValue::ConfigMapKey {
                        config_map: r.name.clone(),
                        key: r.key.clone(),
                    },
                    None => EnvValue::Other,
                },
                (v, None) => EnvValue::Literal(v.clone().unwrap_or_default()),
            };
            (e.name.clone(), value)
        })
        .collect();
    let argv = container
        .map(|c| {
            c.command
                .iter()
                .flatten()
                .chain(c.args.iter().flatten())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    Some(Workload {
        kind,
        name,
        role: found.as_ref().map(|(r, _, _)| *r),
        found_by: found.as_ref().map(|(_, b, _)| *b),
        container: found.map(|(_, _, c)| c),
        secrets,
        mesh: mesh_enrolment(labels, annotations),
        replicas,
        installer: Installer::of(meta),
        mounted_secrets: spec
            .volumes
            .iter()
            .flatten()
            .flat_map(volume_secrets)
            .map(|(name, _)| name)
            .collect(),
        selector: selector
            .and_then(|s| s.match_labels.clone())
            .unwrap_or_default(),
        mounts,
        env,
        argv,
    })
}

/// Every Deployment and StatefulSet that is an Argo CD component with a part in repo-server mTLS
/// (by role: [`Role`]) or mounts a Secret named `argocd-repo-server-mtls*` (the set to restart
/// after the Secret changes). Discovered, never hard-coded.
pub fn discover(deployments: &[Deployment], statefulsets: &[StatefulSet]) -> Vec<Workload> {
    let mut out: Vec<Workload> = deployments
        .iter()
        .filter_map(|d| {
            let spec = d.spec.as_ref();
            workload_of(
                WorkloadKind::Deployment,
                spec.and_then(|s| s.replicas),
                &d.metadata,
                spec.map(|s| &s.selector),
                spec.map(|s| &s.template),
            )
        })
        .chain(statefulsets.iter().filter_map(|s| {
            let spec = s.spec.as_ref();
            workload_of(
                WorkloadKind::StatefulSet,
                spec.and_then(|s| s.replicas),
                &s.metadata,
                spec.map(|s| &s.selector),
                spec.map(|s| &s.template),
            )
        }))
        .collect();
    out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    out
}

/// When the Secret last changed: its creation or its latest managed-fields update.
pub fn secret_changed_at(secret: &Secret) -> Option<time::OffsetDateTime> {
    let meta = &secret.metadata;
    meta.creation_timestamp
        .iter()
        .map(|t| t.0)
        .chain(
            meta.managed_fields
                .iter()
                .flatten()
                .filter_map(|f| f.time.as_ref().map(|t| t.0)),
        )
        .max()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.as_second()).ok())
}

/// The line of a crashed run that says why: the last logrus error/fatal line, or cobra's `Error:`
/// line.
pub fn last_error_line(lines: &[String]) -> Option<String> {
    let message =
        |l: &String| crate::endpoint::logrus_message(l).unwrap_or_else(|| l.trim().to_owned());
    lines
        .iter()
        .rev()
        .find(|l| {
            let lower = l.to_ascii_lowercase();
            lower.contains("level=fatal")
                || lower.contains("level=error")
                || lower.contains("\"level\":\"fatal\"")
                || lower.contains("\"level\":\"error\"")
                || l.starts_with("Error:")
        })
        .map(message)
}

/// Per client component: the argocd-cmd-params-cm keys that make it verify the repo-server.
pub const SERVER_VERIFICATION_KEYS: [(&str, &str, &str); 4] = [
    (
        "argocd-server",
        "server.repo.server.ca.cert.path",
        "server.repo.server.strict.tls",
    ),
    (
        "argocd-application-controller",
        "controller.repo.server.ca.cert.path",
        "controller.repo.server.strict.tls",
    ),
    (
        "argocd-applicationset-controller",
        "applicationsetcontroller.repo.server.ca.cert.path",
        "applicationsetcontroller.repo.server.strict.tls",
    ),
    (
        "argocd-notifications-controller",
        "notificationscontroller.repo.server.ca.cert.path",
        "notificationscontroller.repo.server.strict.tls",
    ),
];

#[cfg(test)]
mod tests {
    use super::last_error_line;

    #[test]
    fn the_line_that_says_why_a_run_ended() {
        let lines = |text: &str| text.lines().map(str::to_owned).collect::<Vec<_>>();
        // v3.5.1 with reposerver.disable.tls, as the real pod logged it: cobra's usage follows.
        let crashed = lines(
            "{\"level\":\"info\",\"msg\":\"ArgoCD Repository Server is starting\"}\n\
             Error: --client-ca-path cannot be used when --disable-tls is enabled\nUsage:\n  argocd-repo-server [flags]\n",
        );
        assert_eq!(
            last_error_line(&crashed).unwrap(),
            "Error: --client-ca-path cannot be used when --disable-tls is enabled"
        );
        let fatal = lines(
            "{\"level\":\"fatal\",\"msg\":\"open /app/config/tls/tls.crt: permission denied\"}",
        );
        assert_eq!(
            last_error_line(&fatal).unwrap(),
            "open /app/config/tls/tls.crt: permission denied"
        );
        assert_eq!(
            last_error_line(&lines("{\"level\":\"info\",\"msg\":\"starting\"}")),
            None
        );
    }
}

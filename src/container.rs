//! Where the repo-server is, for `--target container`: the exact Argo CD image a user is about to
//! deploy, started on a container engine (Docker's API, `DOCKER_HOST`) as the manifest runs the
//! repo-server, with the bundle's two Secrets' keys as files where the manifest mounts those
//! Secrets, its two ports published, its log read from the engine; removed when the run ends.
//! The engine is driven through the `testcontainers` crate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, CopyTargetOptions, GenericImage, ImageExt};

use crate::endpoint::{LogReadError, RemoteLog};

/// The Secrets the manifest mounts into the repo-server container: where, and the keys its
/// `items` project (the v3.5 install.yaml; both `optional`, so a missing key is a missing file).
pub const SECRET_MOUNTS: [(&str, &str, &[&str]); 2] = [
    (
        "argocd-repo-server-tls",
        "/app/config/reposerver/tls",
        &["tls.crt", "tls.key", "ca.crt"],
    ),
    (
        "argocd-repo-server-mtls",
        "/app/config/reposerver/mtls",
        &["client-ca.crt"],
    ),
];

/// The manifest's other volumes of the repo-server container (emptyDirs, and ConfigMaps whose
/// content no mTLS case reads), as empty writable directories: the repo-server refuses to start
/// without its GnuPG keyring directory, for one.
const EMPTY_DIRS: [&str; 8] = [
    "/app/config/ssh",
    "/app/config/tls",
    "/app/config/gpg/source",
    "/app/config/gpg/keys",
    "/tmp",
    "/helm-working-dir",
    "/home/argocd/cmp-server/plugins",
    "/home/argocd/params",
];

/// The files the Secret mounts put into the container, from the Secrets' `data`: for each of
/// [`SECRET_MOUNTS`], the keys its items project that the Secret has.
pub fn secret_files(secrets: &[k8s_openapi::api::core::v1::Secret]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, dir, keys) in SECRET_MOUNTS {
        let Some(secret) = secrets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))
        else {
            continue;
        };
        for key in keys {
            let value = secret
                .data
                .as_ref()
                .and_then(|d| d.get(*key))
                .map(|v| v.0.clone())
                .or_else(|| {
                    secret
                        .string_data
                        .as_ref()
                        .and_then(|d| d.get(*key))
                        .map(|v| v.clone().into_bytes())
                });
            if let Some(value) = value {
                out.push((format!("{dir}/{key}"), value));
            }
        }
    }
    out
}
const GRPC_PORT: u16 = 8081;
const HEALTH_PORT: u16 = 8084;

/// What to start.
#[derive(Debug, Clone)]
pub struct ContainerPlan {
    /// The image, `registry/repository:tag` (or `@sha256:` digest).
    pub image: String,
    /// A network to attach it to (`--container-network`); the engine's default otherwise.
    pub network: Option<String>,
    /// Files to place before it starts: path in the container, contents.
    pub files: Vec<(String, Vec<u8>)>,
    /// `GRPC_GO_LOG_SEVERITY_LEVEL=info`, so refused handshakes are logged.
    pub grpc_info_log: bool,
    /// How long the health port may take to answer 200 after the start.
    pub ready_within: Duration,
}

/// Why the repo-server container could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// No engine answers at the configured address.
    #[error(
        "no container engine answers ({detail}); start Docker, or point DOCKER_HOST at one that runs"
    )]
    NoEngine {
        /// What the client said.
        detail: String,
    },
    /// The image name has no tag or digest.
    #[error(
        "--image `{0}`: name the exact image you deploy, with its tag or digest (e.g. quay.io/argoproj/argocd:v3.5.1)"
    )]
    Unpinned(String),
    /// The engine could not create or start it (image absent and not pullable, a bad network).
    #[error("starting `{image}` as the repo-server: {detail}")]
    Start {
        /// The image.
        image: String,
        /// What the engine said.
        detail: String,
    },
    /// It started, but its health port never answered 200; its log's last lines say why.
    #[error(
        "the repo-server from `{image}` did not become ready within {} s ({state}); its log ends:\n{log_tail}",
        within.as_secs()
    )]
    NotReady {
        /// The image.
        image: String,
        /// Running or exited (with its code).
        state: String,
        /// The limit.
        within: Duration,
        /// The last lines it logged.
        log_tail: String,
    },
}

/// Asks the engine at `DOCKER_HOST` (or the platform's default socket) for its version, bounded:
/// the container target's preflight. Returns `name version` for the report.
pub async fn preflight() -> Result<String, ContainerError> {
    let no_engine = |detail: String| ContainerError::NoEngine { detail };
    let docker = testcontainers::bollard::Docker::connect_with_defaults()
        .map_err(|e| no_engine(e.to_string()))?;
    let version = tokio::time::timeout(Duration::from_secs(10), docker.version())
        .await
        .map_err(|_| no_engine("no answer within 10 s".into()))?
        .map_err(|e| no_engine(e.to_string()))?;
    let name = version
        .platform
        .map(|p| p.name)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "Docker Engine".into());
    Ok(format!("{name} {}", version.version.unwrap_or_default()))
}

/// Refuses an image reference without a tag or digest: the run is about one exact image.
pub fn pinned(image: &str) -> Result<(), ContainerError> {
    split_image(image)
        .map(|_| ())
        .ok_or_else(|| ContainerError::Unpinned(image.to_owned()))
}

/// The two halves the engine's `name:tag` is made of: the reference split at its last `:` after
/// the last `/` (a registry port is not a tag). A digest splits as `repo@sha256` and its hex,
/// which join back into the same reference.
fn split_image(image: &str) -> Option<(&str, &str)> {
    let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    let colon = image[slash..].rfind(':')? + slash;
    Some((&image[..colon], &image[colon + 1..]))
}

/// The repo-server container, running.
pub struct RunningContainer {
    inner: ContainerAsync<GenericImage>,
    /// The image it runs.
    pub image: String,
    /// The published gRPC/TLS port, as reached from here.
    pub grpc: SocketAddr,
    /// The published health port, as reached from here.
    pub health: SocketAddr,
}

/// Starts `plan.image` as the repo-server and waits (bounded) until its health port answers 200.
pub async fn start(plan: &ContainerPlan) -> Result<RunningContainer, ContainerError> {
    let (name, tag) =
        split_image(&plan.image).ok_or_else(|| ContainerError::Unpinned(plan.image.clone()))?;
    let start_error = |detail: String| ContainerError::Start {
        image: plan.image.clone(),
        detail,
    };
    let image = GenericImage::new(name, tag)
        .with_exposed_port(GRPC_PORT.tcp())
        .with_exposed_port(HEALTH_PORT.tcp())
        .with_wait_for(WaitFor::Nothing);
    // As the manifest runs it: the repo-server command, the image's user, no flags beyond what
    // the env the manifest could set would say.
    let mut request = image.with_cmd(["/usr/local/bin/argocd-repo-server"]);
    if plan.grpc_info_log {
        request = request.with_env_var("GRPC_GO_LOG_SEVERITY_LEVEL", "info");
    }
    if let Some(network) = &plan.network {
        request = request.with_network(network.clone());
    }
    for dir in EMPTY_DIRS {
        request = request.with_mount(testcontainers::core::Mount::tmpfs_mount(dir));
    }
    for (path, bytes) in &plan.files {
        // A Secret volume's default mode (defaultMode 0644), as the manifest mounts them: the
        // image's non-root user reads them.
        request = request.with_copy_to(
            CopyTargetOptions::new(path.clone()).with_mode(0o644),
            bytes.clone(),
        );
    }
    let inner = request
        .start()
        .await
        .map_err(|e| start_error(e.to_string()))?;
    let host = match inner.get_host().await {
        Ok(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
        Ok(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
        _ => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    };
    let port = |p: u16| {
        let inner = &inner;
        async move {
            inner
                .get_host_port_ipv4(p.tcp())
                .await
                .map_err(|e| start_error(e.to_string()))
        }
    };
    let grpc = SocketAddr::new(host, port(GRPC_PORT).await?);
    let health = SocketAddr::new(host, port(HEALTH_PORT).await?);
    let running = RunningContainer {
        inner,
        image: plan.image.clone(),
        grpc,
        health,
    };
    running.wait_ready(plan.ready_within).await?;
    Ok(running)
}

impl RunningContainer {
    /// The engine's id of the container, shortened as `docker ps` shows it.
    pub fn short_id(&self) -> &str {
        let id = self.inner.id();
        &id[..id.len().min(12)]
    }

    async fn wait_ready(&self, within: Duration) -> Result<(), ContainerError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let answered = crate::endpoint::http_get(
                &self.health.to_string(),
                "/healthz",
                Duration::from_secs(2),
            )
            .await
            .is_ok_and(|answer| answer.status == 200);
            if answered {
                return Ok(());
            }
            let running = self.inner.is_running().await.unwrap_or(false);
            if !running || tokio::time::Instant::now() >= deadline {
                let state = if running {
                    "still running".to_owned()
                } else {
                    match self.inner.exit_code().await {
                        Ok(Some(code)) => format!("exited {code}"),
                        _ => "not running".to_owned(),
                    }
                };
                let lines = self.lines().await.unwrap_or_default();
                let tail = lines[lines.len().saturating_sub(8)..].join("\n");
                return Err(ContainerError::NotReady {
                    image: self.image.clone(),
                    state,
                    within,
                    log_tail: tail,
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Every line it logged so far, both streams (the repo-server logs to stderr).
    async fn lines(&self) -> Result<Vec<String>, testcontainers::TestcontainersError> {
        let mut out = Vec::new();
        for bytes in [
            self.inner.stdout_to_vec().await?,
            self.inner.stderr_to_vec().await?,
        ] {
            out.extend(String::from_utf8_lossy(&bytes).lines().map(str::to_owned));
        }
        Ok(out)
    }

    /// Its log, as the log checks read it.
    pub fn log(self: &Arc<Self>) -> Arc<dyn RemoteLog> {
        Arc::new(ContainerLog(self.clone()))
    }

    /// Stops and removes it (and its anonymous volumes).
    pub async fn remove(self) -> Result<(), String> {
        self.inner.rm().await.map_err(|e| e.to_string())
    }
}

struct ContainerLog(Arc<RunningContainer>);

impl RemoteLog for ContainerLog {
    fn origin(&self) -> String {
        format!("container {} log", self.0.short_id())
    }

    fn read(&self) -> futures::future::BoxFuture<'_, Result<Vec<String>, LogReadError>> {
        Box::pin(async move {
            self.0.lines().await.map_err(|e| LogReadError::Remote {
                origin: self.origin(),
                source: Box::new(e),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::split_image;

    #[test]
    fn an_image_reference_splits_at_its_tag_not_at_a_registry_port() {
        assert_eq!(
            split_image("quay.io/argoproj/argocd:v3.5.1"),
            Some(("quay.io/argoproj/argocd", "v3.5.1"))
        );
        assert_eq!(
            split_image("registry.local:5000/argocd:v3.6.1"),
            Some(("registry.local:5000/argocd", "v3.6.1"))
        );
        assert_eq!(
            split_image("quay.io/argoproj/argocd@sha256:abc"),
            Some(("quay.io/argoproj/argocd@sha256", "abc"))
        );
        assert_eq!(split_image("registry.local:5000/argocd"), None);
        assert_eq!(split_image("argocd"), None);
    }
}

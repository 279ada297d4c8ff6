//! The kind target's preflight: kind and a running container runtime must be present before
//! anything is created. Fails fast, naming what is missing and how to get it.

use std::time::Duration;

use serde::Serialize;

/// Tools found on this machine, with versions, recorded in the report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Toolchain {
    /// `kind version` output.
    pub kind: String,
    /// Container runtime name and version.
    pub runtime: String,
}

/// Why the kind target cannot run here.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PreflightError {
    /// The kind binary is not on PATH.
    #[error(
        "`kind` is not on PATH: install it (https://kind.sigs.k8s.io/docs/user/quick-start/#installation); or verify an existing install with --target endpoint through a port-forward"
    )]
    NoKind,
    /// No container runtime binary.
    #[error(
        "no container runtime: `{0}` is not on PATH; kind needs Docker (or Podman with KIND_EXPERIMENTAL_PROVIDER=podman)"
    )]
    NoRuntime(String),
    /// The runtime binary exists but its engine does not answer.
    #[error(
        "`{runtime} info` failed: the container engine is not running or not reachable ({detail}); start it, or verify an existing install with --target endpoint through a port-forward"
    )]
    RuntimeDown {
        /// Runtime binary.
        runtime: String,
        /// What it said.
        detail: String,
    },
}

/// The container runtime kind uses (`KIND_EXPERIMENTAL_PROVIDER`, default docker).
fn runtime() -> &'static str {
    match std::env::var("KIND_EXPERIMENTAL_PROVIDER").as_deref() {
        Ok("podman") => "podman",
        Ok("nerdctl") => "nerdctl",
        _ => "docker",
    }
}

/// Checks for kind and a running container runtime.
pub async fn preflight() -> Result<Toolchain, PreflightError> {
    // Bounded: a hung engine must not hang the harness.
    let limit = Duration::from_secs(15);
    let runtime = runtime();
    let kind = match tool("kind", &["version"], limit, false).await {
        Err(KindError::NotStarted { .. }) => return Err(PreflightError::NoKind),
        Ok(v) => v.trim().to_owned(),
        Err(e) => format!("kind (version unknown: {})", e.detail()),
    };
    match tool(
        runtime,
        &["info", "--format", "{{.ServerVersion}}"],
        limit,
        false,
    )
    .await
    {
        Err(KindError::NotStarted { .. }) => Err(PreflightError::NoRuntime(runtime.to_owned())),
        Err(e) => Err(PreflightError::RuntimeDown {
            runtime: runtime.to_owned(),
            detail: e.detail(),
        }),
        Ok(version) => Ok(Toolchain {
            kind,
            runtime: format!("{runtime} {}", version.trim()),
        }),
    }
}

/// The kind config of the default single-node cluster.
pub const SINGLE_NODE_CONFIG: &str = include_str!("../../kind/single-node.yaml");
/// The kind config of the HA cluster (one control plane, three workers).
pub const HA_CONFIG: &str = include_str!("../../kind/ha.yaml");

/// Prefix of every cluster name the harness makes up; a cluster it creates is named `amv-<run id>`.
pub const NAME_PREFIX: &str = "amv-";

/// Why a kind step failed.
#[derive(Debug, thiserror::Error)]
pub enum KindError {
    /// `--cluster-name` names a cluster that exists, without `--reuse-cluster`.
    #[error(
        "kind cluster `{0}` already exists: pass --reuse-cluster to run against it (it is then never deleted), or choose another --cluster-name"
    )]
    Exists(String),
    /// `--reuse-cluster` names a cluster that does not exist.
    #[error("--reuse-cluster: there is no kind cluster `{name}` (existing: {existing})")]
    Missing {
        /// Requested name.
        name: String,
        /// What `kind get clusters` listed.
        existing: String,
    },
    /// Not a valid kind cluster name.
    #[error(
        "--cluster-name `{0}`: kind cluster names are lowercase letters, digits and '-', at most 40 characters"
    )]
    BadName(String),
    /// A tool could not be started at all (not on PATH, not executable).
    #[error("`{program}` cannot be started: {detail}")]
    NotStarted {
        /// The program.
        program: String,
        /// What the OS said.
        detail: String,
    },
    /// A kind or docker command failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// What it said.
        detail: String,
    },
    /// Local I/O (the temporary kubeconfig and config files).
    #[error("{what}: {source}")]
    Io {
        /// What was being written.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl KindError {
    /// What the tool said (or why it could not say anything), for messages that name it already.
    pub fn detail(&self) -> String {
        match self {
            KindError::NotStarted { detail, .. } | KindError::Command { detail, .. } => {
                detail.clone()
            }
            other => other.to_string(),
        }
    }
}

/// A kind cluster the run uses, and whether this run created it (only then may it delete it).
#[derive(Debug)]
pub struct KindCluster {
    /// Cluster name.
    pub name: String,
    /// True when this run created it.
    pub created: bool,
    /// A kubeconfig for it, private to this run (the user's ~/.kube/config is never touched).
    pub kubeconfig: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// The name of a cluster this run creates.
pub fn cluster_name_for_run(run_id: &str) -> String {
    let tail: String = run_id
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut name = format!("{NAME_PREFIX}{tail}");
    name.truncate(40);
    name.trim_end_matches('-').to_owned()
}

/// Runs `program args`, bounded by `limit`; the child is killed if the future is dropped (Ctrl-C).
/// With `show` its stderr streams to ours (kind prints progress there).
async fn tool(
    program: &str,
    args: &[&str],
    limit: Duration,
    show: bool,
) -> Result<String, KindError> {
    let command = format!("{program} {}", args.join(" "));
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(if show {
            std::process::Stdio::inherit()
        } else {
            std::process::Stdio::piped()
        })
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| KindError::NotStarted {
        program: program.to_owned(),
        detail: e.to_string(),
    })?;
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .map_err(|_| KindError::Command {
            command: command.clone(),
            detail: format!("did not finish within {} s", limit.as_secs()),
        })?
        .map_err(|e| KindError::Command {
            command: command.clone(),
            detail: e.to_string(),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(KindError::Command {
            command,
            detail: stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .unwrap_or_else(|| out.status.to_string()),
        })
    }
}

/// The names `kind get clusters` lists.
pub async fn existing_clusters() -> Result<Vec<String>, KindError> {
    let out = tool("kind", &["get", "clusters"], Duration::from_secs(30), false).await?;
    Ok(out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("No kind clusters"))
        .map(str::to_owned)
        .collect())
}

fn private_dir() -> Result<tempfile::TempDir, KindError> {
    tempfile::Builder::new()
        .prefix("argocd-mtls-verify-kind-")
        .tempdir()
        .map_err(|e| KindError::Io {
            what: "temporary directory for the kubeconfig".into(),
            source: e,
        })
}

/// Claims cluster `name` for this run (refusing a name that already exists) and writes its config
/// (`config`: the text of `--kind-config`, else the built-in single-node or HA layout) and a
/// private kubeconfig path. From here on the run owns the name, so an interrupted
/// [`KindCluster::create`] is still cleaned up.
pub async fn plan_create(
    name: &str,
    ha: bool,
    config: Option<&str>,
) -> Result<KindCluster, KindError> {
    if !valid_name(name) {
        return Err(KindError::BadName(name.to_owned()));
    }
    if existing_clusters().await?.iter().any(|c| c == name) {
        return Err(KindError::Exists(name.to_owned()));
    }
    let dir = private_dir()?;
    let path = dir.path().join("kind-config.yaml");
    let text = config.unwrap_or(if ha { HA_CONFIG } else { SINGLE_NODE_CONFIG });
    std::fs::write(&path, text).map_err(|e| KindError::Io {
        what: path.display().to_string(),
        source: e,
    })?;
    Ok(KindCluster {
        name: name.to_owned(),
        created: true,
        kubeconfig: dir.path().join("kubeconfig"),
        _dir: dir,
    })
}

/// Uses an existing cluster (never deleted by this run); its kubeconfig is fetched into a private file.
pub async fn reuse(name: &str) -> Result<KindCluster, KindError> {
    let existing = existing_clusters().await?;
    if !existing.iter().any(|c| c == name) {
        return Err(KindError::Missing {
            name: name.to_owned(),
            existing: if existing.is_empty() {
                "none".into()
            } else {
                existing.join(", ")
            },
        });
    }
    let dir = private_dir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    let text = tool(
        "kind",
        &["get", "kubeconfig", "--name", name],
        Duration::from_secs(30),
        false,
    )
    .await?;
    crate::fsio::write_atomic(&kubeconfig, text.as_bytes(), 0o600).map_err(|e| KindError::Io {
        what: kubeconfig.display().to_string(),
        source: e,
    })?;
    Ok(KindCluster {
        name: name.to_owned(),
        created: false,
        kubeconfig,
        _dir: dir,
    })
}

impl KindCluster {
    /// `kind create cluster` for a planned cluster (from `node_image` when given, else kind's
    /// default), waiting up to `limit` for the control plane. kind's own progress goes to stderr.
    pub async fn create(&self, node_image: Option<&str>, limit: Duration) -> Result<(), KindError> {
        let config = self._dir.path().join("kind-config.yaml");
        let wait = format!("{}s", limit.as_secs().max(60));
        let config = config.to_string_lossy();
        let kubeconfig = self.kubeconfig.to_string_lossy();
        let mut args = vec![
            "create",
            "cluster",
            "--name",
            &self.name,
            "--config",
            &config,
            "--kubeconfig",
            &kubeconfig,
            "--wait",
            &wait,
        ];
        if let Some(image) = node_image {
            args.extend(["--image", image]);
        }
        tool("kind", &args, limit + Duration::from_secs(60), true)
            .await
            .map(|_| ())
    }

    /// Deletes the cluster if and only if this run created it; returns whether it did.
    pub async fn delete_if_created(&self) -> Result<bool, KindError> {
        if !self.created {
            return Ok(false);
        }
        tool(
            "kind",
            &[
                "delete",
                "cluster",
                "--name",
                &self.name,
                "--kubeconfig",
                &self.kubeconfig.to_string_lossy(),
            ],
            Duration::from_secs(180),
            false,
        )
        .await?;
        Ok(true)
    }

    /// Loads `images` into the cluster's nodes, so the install does not depend on every node
    /// pulling from the registries, and returns those it loaded. An image the engine already
    /// holds (loaded by hand, in an air-gapped CI) is not pulled; one that can be neither found
    /// nor pulled is left to the nodes and said (`problem`), since only some of a manifest's
    /// images matter to the verdict (Dex's does not): a missing one that matters stops the
    /// rollout wait with the pull error.
    pub async fn preload(
        &self,
        images: &[String],
        mut progress: impl FnMut(&str),
        mut problem: impl FnMut(&str),
    ) -> Result<Vec<String>, KindError> {
        let runtime = runtime();
        let limit = Duration::from_secs(600);
        let mut loaded = Vec::new();
        for image in images {
            let present = tool(runtime, &["image", "inspect", image], limit, false)
                .await
                .is_ok();
            if present {
                progress(&format!(
                    "{image} is in the {runtime} engine already: not pulled"
                ));
            } else {
                progress(&format!("pulling {image}"));
                if let Err(e) = tool(runtime, &["pull", image], limit, false).await {
                    problem(&format!(
                        "{image} is not preloaded: not in the {runtime} engine and `{runtime} pull` failed ({}); the nodes will pull it themselves",
                        e.detail()
                    ));
                    continue;
                }
            }
            progress(&format!("loading {image} into kind cluster {}", self.name));
            tool(
                "kind",
                &["load", "docker-image", image, "--name", &self.name],
                limit,
                false,
            )
            .await?;
            loaded.push(image.clone());
        }
        Ok(loaded)
    }
}

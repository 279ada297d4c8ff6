//! Getting an API client: the kind cluster's private kubeconfig, or the way kubectl picks one.

use std::path::PathBuf;

use kube::Client;

/// Why no API client could be made; each names the kubeconfig or context at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A kubeconfig file that cannot be read or used.
    #[error("kubeconfig {}: {detail}", path.display())]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// What kube said.
        detail: String,
    },
    /// `--context` names a context the kubeconfig cannot give.
    #[error("--context {context}: {detail}")]
    Context {
        /// The context asked for.
        context: String,
        /// What kube said.
        detail: String,
    },
    /// Neither KUBECONFIG, ~/.kube/config nor the in-cluster environment gave a configuration.
    #[error("no usable kubeconfig (KUBECONFIG, ~/.kube/config or in-cluster): {0}")]
    NoConfig(String),
    /// The configuration is there, but no client could be built from it (TLS material, proxy).
    #[error("cannot build an API client: {0}")]
    Client(#[source] kube::Error),
}

/// A client for a kubeconfig file (`--kubeconfig`, the kind cluster's private one), at `context`
/// or its current context.
pub async fn client_from_kubeconfig(
    path: &std::path::Path,
    context: Option<&str>,
) -> Result<Client, ConnectError> {
    let bad = |e: &dyn std::fmt::Display| ConnectError::Kubeconfig {
        path: path.to_owned(),
        detail: e.to_string(),
    };
    let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| bad(&e))?;
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &options)
        .await
        .map_err(|e| bad(&e))?;
    Client::try_from(config).map_err(ConnectError::Client)
}

/// A client the way kubectl picks one: from `kubeconfig` when given (`--kubeconfig`), else
/// KUBECONFIG, ~/.kube/config or in-cluster; its `--context`, or the current context. Returns it
/// with a label for the report.
pub async fn connect(
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
) -> Result<(Client, String), ConnectError> {
    if let Some(path) = kubeconfig {
        let client = client_from_kubeconfig(path, context).await?;
        let label = match context {
            Some(context) => format!("context {context} of {}", path.display()),
            None => format!("current context of {}", path.display()),
        };
        return Ok((client, label));
    }
    match context {
        Some(context) => {
            let options = kube::config::KubeConfigOptions {
                context: Some(context.to_owned()),
                ..Default::default()
            };
            let config = kube::Config::from_kubeconfig(&options).await.map_err(|e| {
                ConnectError::Context {
                    context: context.to_owned(),
                    detail: e.to_string(),
                }
            })?;
            let client = Client::try_from(config).map_err(ConnectError::Client)?;
            Ok((client, format!("context {context}")))
        }
        None => {
            let config = kube::Config::infer()
                .await
                .map_err(|e| ConnectError::NoConfig(e.to_string()))?;
            let label = format!("current context ({})", config.cluster_url);
            let client = Client::try_from(config).map_err(ConnectError::Client)?;
            Ok((client, label))
        }
    }
}

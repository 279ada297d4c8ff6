//! Getting an API client: the kind cluster's private kubeconfig, or the way kubectl picks one.

use kube::Client;

/// A client for a kubeconfig file (the kind cluster's private one).
pub async fn client_from_kubeconfig(
    path: &std::path::Path,
    context: Option<&str>,
) -> anyhow::Result<Client> {
    let kc = kube::config::Kubeconfig::read_from(path)
        .map_err(|e| anyhow::anyhow!("kubeconfig {}: {e}", path.display()))?;
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &options)
        .await
        .map_err(|e| anyhow::anyhow!("kubeconfig {}: {e}", path.display()))?;
    Ok(Client::try_from(config)?)
}

/// A client the way kubectl picks one: `--context` from the kubeconfig, or the current context
/// (KUBECONFIG, ~/.kube/config, or in-cluster). Returns it with a label for the report.
pub async fn connect(context: Option<&str>) -> anyhow::Result<(Client, String)> {
    match context {
        Some(context) => {
            let options = kube::config::KubeConfigOptions {
                context: Some(context.to_owned()),
                ..Default::default()
            };
            let config = kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| anyhow::anyhow!("--context {context}: {e}"))?;
            Ok((Client::try_from(config)?, format!("context {context}")))
        }
        None => {
            let config = kube::Config::infer().await.map_err(|e| {
                anyhow::anyhow!(
                    "no usable kubeconfig (KUBECONFIG, ~/.kube/config or in-cluster): {e}"
                )
            })?;
            let label = format!("current context ({})", config.cluster_url);
            Ok((Client::try_from(config)?, label))
        }
    }
}

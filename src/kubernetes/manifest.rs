//! Getting the install manifest: the pinned one for `--argocd-version` (downloaded, SHA-256 verified
//! before anything is applied), or an override (`--install-manifest PATH|URL`) whose digest is
//! printed and recorded so the report says exactly what was installed.

use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use serde::Serialize;

use super::versions::{self, PinnedManifest, VersionError};

/// Largest manifest accepted (install.yaml is about 1.9 MB).
pub const MAX_BYTES: usize = 32 * 1024 * 1024;

/// How long a download may take: to connect (each address tried), and in all (redirects and the
/// body included). `--download-connect-timeout` and `--download-timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadLimits {
    /// TCP connect to the server.
    pub connect: Duration,
    /// The whole download.
    pub total: Duration,
}

impl Default for DownloadLimits {
    fn default() -> Self {
        DownloadLimits {
            connect: Duration::from_secs(10),
            total: Duration::from_secs(120),
        }
    }
}

/// Where the manifest comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestSource {
    /// The pinned file for a version, verified against its digest.
    Pinned {
        /// The table entry.
        entry: PinnedManifest,
        /// Its download URL.
        url: String,
    },
    /// `--install-manifest` with a local path.
    Path(std::path::PathBuf),
    /// `--install-manifest` with an http(s) URL.
    Url(String),
}

/// What was obtained, recorded in the report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ManifestFacts {
    /// URL or path.
    pub origin: String,
    /// SHA-256 of the bytes applied.
    pub sha256: String,
    /// Whether the digest is one of the pinned table's.
    pub pinned: bool,
    /// The pinned entry the bytes match (`v3.5.1 manifests/install.yaml`), whatever their origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    /// Size in bytes.
    pub bytes: usize,
}

/// Why the manifest could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The version/digest gate refused it.
    #[error(transparent)]
    Version(#[from] VersionError),
    /// A local file could not be read.
    #[error("--install-manifest {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The download failed.
    #[error("download {url}: {detail}")]
    Download {
        /// The URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
}

impl ManifestSource {
    /// From `--install-manifest` (when given) or the pinned table.
    pub fn resolve(
        version: &str,
        file: &str,
        override_: Option<&str>,
    ) -> Result<Self, VersionError> {
        match override_ {
            Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                versions::require_mtls_support(version)?;
                Ok(ManifestSource::Url(u.to_owned()))
            }
            Some(p) => {
                versions::require_mtls_support(version)?;
                Ok(ManifestSource::Path(p.into()))
            }
            None => {
                let (entry, url) = versions::pinned(version, file)?;
                Ok(ManifestSource::Pinned { entry, url })
            }
        }
    }

    /// Reads or downloads the bytes; a pinned manifest whose digest differs is refused.
    pub async fn fetch(
        &self,
        limits: DownloadLimits,
    ) -> Result<(Vec<u8>, ManifestFacts), FetchError> {
        let (bytes, origin, pinned) = match self {
            ManifestSource::Pinned { entry, url } => {
                let bytes = download(url, limits).await?;
                versions::verify(&bytes, entry)?;
                (bytes, url.clone(), true)
            }
            ManifestSource::Url(url) => (download(url, limits).await?, url.clone(), false),
            ManifestSource::Path(path) => (
                crate::fsio::read_regular(path).map_err(|e| FetchError::Read {
                    path: path.display().to_string(),
                    source: e,
                })?,
                path.display().to_string(),
                false,
            ),
        };
        let sha256 = versions::sha256_hex(&bytes);
        let matches = versions::pinned_by_digest(&sha256);
        let facts = ManifestFacts {
            origin,
            pinned: pinned || matches.is_some(),
            matches: matches.map(|m| format!("{} {}", m.version, m.file)),
            sha256,
            bytes: bytes.len(),
        };
        Ok((bytes, facts))
    }
}

/// GET `url` (https with the system's roots, or http), following up to five redirects, within
/// `limits`.
pub async fn download(url: &str, limits: DownloadLimits) -> Result<Vec<u8>, FetchError> {
    let fail = |detail: String| FetchError::Download {
        url: url.to_owned(),
        detail,
    };
    let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_connect_timeout(Some(limits.connect));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| fail(format!("no system CA certificates: {e}")))?
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    let client: hyper_util::client::legacy::Client<_, Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(https);
    let work = async {
        let mut current = url.to_owned();
        for _ in 0..5 {
            let uri: http::Uri = current
                .parse()
                .map_err(|e| fail(format!("not a URL: {e}")))?;
            let response = client.get(uri).await.map_err(|e| {
                if e.is_connect() {
                    fail(format!(
                        "cannot connect (limit {} s, --download-connect-timeout): {}",
                        limits.connect.as_secs(),
                        crate::error_chain(&e)
                    ))
                } else {
                    fail(crate::error_chain(&e))
                }
            })?;
            let status = response.status();
            if status.is_redirection() {
                current = response
                    .headers()
                    .get(http::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| fail(format!("HTTP {status} without a Location")))?
                    .to_owned();
                continue;
            }
            if !status.is_success() {
                return Err(fail(format!("HTTP {status}")));
            }
            let body = Limited::new(response.into_body(), MAX_BYTES)
                .collect()
                .await
                .map_err(|e| fail(format!("reading the body: {}", crate::error_chain(&*e))))?;
            return Ok(body.to_bytes().to_vec());
        }
        Err(fail("more than five redirects".into()))
    };
    tokio::time::timeout(limits.total, work)
        .await
        .map_err(|_| {
            fail(format!(
                "no complete answer within {} s (--download-timeout)",
                limits.total.as_secs()
            ))
        })?
}

/// The container images the manifest's Deployments and StatefulSets run (for preloading into kind).
pub fn images(objects: &[kube::api::DynamicObject]) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for obj in objects {
        let kind = obj.types.as_ref().map(|t| t.kind.as_str());
        if !matches!(kind, Some("Deployment" | "StatefulSet")) {
            continue;
        }
        let spec = &obj.data["spec"]["template"]["spec"];
        for list in ["initContainers", "containers"] {
            for c in spec[list].as_array().into_iter().flatten() {
                if let Some(image) = c["image"].as_str() {
                    out.insert(image.to_owned());
                }
            }
        }
    }
    out.into_iter().collect()
}

/// Sets `imagePullPolicy: IfNotPresent` on every container (init containers too) of the
/// manifest's Deployments and StatefulSets that runs one of `loaded`, and returns how many it
/// changed. Argo CD's manifests say `Always`, with which a node pulls again whatever was loaded
/// into it: preloading would change nothing, and on a machine without registry access every
/// Argo CD pod would stay in ErrImagePull.
pub fn prefer_loaded(objects: &mut [kube::api::DynamicObject], loaded: &[String]) -> usize {
    let mut changed = 0;
    for obj in objects.iter_mut() {
        let kind = obj.types.as_ref().map(|t| t.kind.as_str());
        if !matches!(kind, Some("Deployment" | "StatefulSet")) {
            continue;
        }
        let spec = &mut obj.data["spec"]["template"]["spec"];
        for list in ["initContainers", "containers"] {
            let Some(containers) = spec.get_mut(list).and_then(|l| l.as_array_mut()) else {
                continue;
            };
            for c in containers {
                let runs_loaded = c["image"]
                    .as_str()
                    .is_some_and(|i| loaded.iter().any(|l| l == i));
                if runs_loaded && c["imagePullPolicy"] != "IfNotPresent" {
                    c["imagePullPolicy"] = "IfNotPresent".into();
                    changed += 1;
                }
            }
        }
    }
    changed
}

/// The manifest file for the layout.
pub fn manifest_file(ha: bool) -> &'static str {
    if ha {
        "manifests/ha/install.yaml"
    } else {
        "manifests/install.yaml"
    }
}

/// Refuses versions without mTLS before anything else happens.
pub fn gate(
    version: &str,
    ha: bool,
    override_: Option<&str>,
) -> Result<ManifestSource, VersionError> {
    ManifestSource::resolve(version, manifest_file(ha), override_)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that takes the connection and never answers is given up after the total limit;
    /// one whose accept queue is full (the SYN is never answered) after the connect limit. Each
    /// error names its flag, and neither is a `Debug` dump.
    #[tokio::test]
    async fn downloads_are_bounded_by_their_connect_and_total_limits() {
        let limits = DownloadLimits {
            connect: Duration::from_secs(1),
            total: Duration::from_secs(2),
        };
        // Accepts (the kernel does, into its queue) and never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/install.yaml", silent.local_addr().unwrap());
        let e = download(&url, limits).await.unwrap_err().to_string();
        assert!(
            e.contains("no complete answer within 2 s (--download-timeout)"),
            "{e}"
        );
        // A listener with a backlog of one, filled: the next SYN is dropped, the connect hangs.
        let full = rustix::net::socket(
            rustix::net::AddressFamily::INET,
            rustix::net::SocketType::STREAM,
            None,
        )
        .unwrap();
        let loopback = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 0);
        rustix::net::bind(&full, &loopback).unwrap();
        rustix::net::listen(&full, 0).unwrap();
        let addr =
            std::net::SocketAddrV4::try_from(rustix::net::getsockname(&full).unwrap()).unwrap();
        let mut held = Vec::new();
        for _ in 0..4 {
            // Fill the queue; these connects may themselves hang once it is full.
            if let Ok(c) =
                std::net::TcpStream::connect_timeout(&addr.into(), Duration::from_millis(200))
            {
                held.push(c);
            }
        }
        let url = format!("http://{addr}/install.yaml");
        let e = download(&url, limits).await.unwrap_err().to_string();
        assert!(
            e.contains("cannot connect (limit 1 s, --download-connect-timeout)"),
            "{e}"
        );
        for dump in ["Error(", "Os {", "ConnectError("] {
            assert!(!e.contains(dump), "{e}");
        }
    }

    /// Only the containers that run a loaded image get IfNotPresent (init containers too); a
    /// Service and an image that was not loaded keep what the manifest says.
    #[test]
    fn only_containers_of_loaded_images_stop_pulling_again() {
        let yaml = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: argocd-repo-server}
spec:
  template:
    spec:
      initContainers:
        - {name: copyutil, image: "quay.io/argoproj/argocd:v3.5.1", imagePullPolicy: Always}
      containers:
        - {name: argocd-repo-server, image: "quay.io/argoproj/argocd:v3.5.1", imagePullPolicy: Always}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: argocd-dex-server}
spec:
  template:
    spec:
      containers:
        - {name: dex, image: "ghcr.io/dexidp/dex:v2.45.0", imagePullPolicy: Always}
---
apiVersion: v1
kind: Service
metadata: {name: argocd-repo-server}
spec: {ports: [{port: 8081}]}
"#;
        let mut objects = crate::kubernetes::install::parse_manifest(yaml, "test").unwrap();
        let loaded = vec!["quay.io/argoproj/argocd:v3.5.1".to_owned()];
        assert_eq!(prefer_loaded(&mut objects, &loaded), 2);
        let policy = |i: usize, list: &str| {
            objects[i].data["spec"]["template"]["spec"][list][0]["imagePullPolicy"].clone()
        };
        assert_eq!(policy(0, "initContainers"), "IfNotPresent");
        assert_eq!(policy(0, "containers"), "IfNotPresent");
        assert_eq!(policy(1, "containers"), "Always");
        assert_eq!(prefer_loaded(&mut objects, &loaded), 0, "already so");
    }
}

//! The Kubernetes Secrets that switch repo-server mTLS on, as ready-to-apply YAML.
//!
//! Key names are load-bearing: the repo-server projects only `client-ca.crt` from
//! `argocd-repo-server-mtls`, and a Secret with `ca.crt` instead leaves mTLS silently off.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{Component, PkiError};

/// The Secret whose `client-ca.crt` turns mTLS on and whose client pair every component presents.
pub const MTLS_SECRET: &str = "argocd-repo-server-mtls";
/// The Secret holding the repo-server's own certificate.
pub const TLS_SECRET: &str = "argocd-repo-server-tls";
/// File name of the mTLS Secret manifest in a bundle.
pub const MTLS_FILE: &str = "argocd-repo-server-mtls.yaml";
/// File name of the TLS Secret manifest in a bundle.
pub const TLS_FILE: &str = "argocd-repo-server-tls.yaml";

/// Exact keys of `argocd-repo-server-mtls`.
pub mod mtls_keys {
    /// CA the repo-server verifies clients with (its presence is what enables mTLS).
    pub const CLIENT_CA: &str = "client-ca.crt";
    /// Client certificate presented by the components.
    pub const CLIENT_CERT: &str = "client.crt";
    /// Client private key.
    pub const CLIENT_KEY: &str = "client.key";
    /// CA the components may verify the repo-server with.
    pub const SERVER_CA: &str = "server-ca.crt";
}

/// Exact keys of `argocd-repo-server-tls`.
pub mod tls_keys {
    /// Server certificate.
    pub const CERT: &str = "tls.crt";
    /// Server key.
    pub const KEY: &str = "tls.key";
    /// CA of the server certificate.
    pub const CA: &str = "ca.crt";
}

/// Label marking objects this tool created, so cleanup never touches anything else.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "argocd-mtls-verify");

/// The PEM material the Secrets are made of.
pub struct SecretMaterial<'a> {
    /// Namespace of the Secrets.
    pub namespace: &'a str,
    /// CA certificate (client CA and server CA).
    pub ca_crt: &'a str,
    /// Repo-server certificate.
    pub server_crt: &'a str,
    /// Repo-server key.
    pub server_key: &'a str,
    /// Shared client certificate.
    pub client_crt: &'a str,
    /// Shared client key.
    pub client_key: &'a str,
}

fn secret(name: &str, namespace: &str, kind: &str, data: &[(&str, &str)]) -> Secret {
    let labels = BTreeMap::from([
        ("app.kubernetes.io/part-of".to_owned(), "argocd".to_owned()),
        (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
    ]);
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            ..Default::default()
        },
        type_: Some(kind.to_owned()),
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Default::default()
    }
}

/// `argocd-repo-server-mtls` with exactly `client-ca.crt client.crt client.key server-ca.crt`.
pub fn mtls_secret(m: &SecretMaterial<'_>) -> Secret {
    secret(
        MTLS_SECRET,
        m.namespace,
        "Opaque",
        &[
            (mtls_keys::CLIENT_CA, m.ca_crt),
            (mtls_keys::CLIENT_CERT, m.client_crt),
            (mtls_keys::CLIENT_KEY, m.client_key),
            (mtls_keys::SERVER_CA, m.ca_crt),
        ],
    )
}

/// `argocd-repo-server-tls` with `tls.crt tls.key ca.crt`.
pub fn tls_secret(m: &SecretMaterial<'_>) -> Secret {
    secret(
        TLS_SECRET,
        m.namespace,
        "kubernetes.io/tls",
        &[
            (tls_keys::CERT, m.server_crt),
            (tls_keys::KEY, m.server_key),
            (tls_keys::CA, m.ca_crt),
        ],
    )
}

/// A component's own Secret in the per-component layout: its client pair and the server CA.
pub fn component_secret(
    m: &SecretMaterial<'_>,
    component: Component,
    client_crt: &str,
    client_key: &str,
) -> Secret {
    secret(
        &component.secret_name(),
        m.namespace,
        "Opaque",
        &[
            (mtls_keys::CLIENT_CERT, client_crt),
            (mtls_keys::CLIENT_KEY, client_key),
            (mtls_keys::SERVER_CA, m.ca_crt),
        ],
    )
}

/// Serializes a Secret as a YAML manifest with `apiVersion` and `kind`.
pub fn to_yaml(secret: &Secret) -> Result<String, PkiError> {
    let mut value = serde_json::to_value(secret)
        .map_err(|e| PkiError::Generate(format!("Secret serialization: {e}")))?;
    if let Some(obj) = value.as_object_mut() {
        // k8s-openapi leaves type meta to the client; a file for `kubectl apply` needs it.
        let mut ordered = serde_json::Map::new();
        ordered.insert("apiVersion".into(), "v1".into());
        ordered.insert("kind".into(), "Secret".into());
        ordered.extend(std::mem::take(obj));
        *obj = ordered;
    }
    // Plain scalars: a folded `>-` block is valid YAML but is not what an operator expects to read.
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    serde_saphyr::to_string_with_options(&value, options)
        .map_err(|e| PkiError::Generate(format!("Secret YAML: {e}")))
}

/// Parses a Secret manifest (as written by `pki init`) back into a Secret, placed in `namespace`.
/// Errors name `origin`, never the contents.
pub fn from_yaml(text: &[u8], origin: &str, namespace: &str) -> Result<Secret, PkiError> {
    let text = std::str::from_utf8(text)
        .map_err(|_| PkiError::Invalid(format!("{origin}: not UTF-8 text")))?;
    let value: serde_json::Value = serde_saphyr::from_str(text)
        .map_err(|_| PkiError::Invalid(format!("{origin}: not a YAML Secret manifest")))?;
    if value.get("kind").and_then(|k| k.as_str()) != Some("Secret") {
        return Err(PkiError::Invalid(format!("{origin}: kind is not Secret")));
    }
    let mut secret: Secret = serde_json::from_value(value)
        .map_err(|_| PkiError::Invalid(format!("{origin}: not a valid Secret")))?;
    secret.metadata.namespace = Some(namespace.to_owned());
    Ok(secret)
}

//! The certificates of an Argo CD repo-server mTLS setup: generation (`pki init`), loading a bundle
//! from disk, and minting the adversarial client certificates the probes attack with.
//!
//! A bundle directory holds `ca.crt ca.key server.crt server.key client.crt client.key` (keys 0600)
//! plus ready-to-apply Secret manifests. One CA signs both the repo-server certificate and the client
//! certificates, so `client-ca.crt` and `server-ca.crt` in the Secret are the same certificate.

mod adversarial;
mod bundle;
mod error;
mod generate;
pub mod inspect;
mod keys;
mod material;
pub mod secrets;

pub use adversarial::{
    Adversary, HEALTH_CHECK_ORGANIZATION, HEALTH_CHECK_SAN, MINTED_CONTROL, Minted,
    health_check_params, mint, mint_control,
};
pub use keys::{public_key_spki, read_private_key};

pub use bundle::Bundle;
pub use error::PkiError;
pub(crate) use error::read_file;
pub use generate::*;
pub use material::*;

/// File names inside a bundle directory.
pub mod files {
    /// The CA certificate that signs everything in the bundle.
    pub const CA_CERT: &str = "ca.crt";
    /// The CA's private key (needed to mint expired / wrong-EKU client certificates).
    pub const CA_KEY: &str = "ca.key";
    /// The repo-server certificate.
    pub const SERVER_CERT: &str = "server.crt";
    /// The repo-server private key.
    pub const SERVER_KEY: &str = "server.key";
    /// The shared client certificate presented by every Argo CD component.
    pub const CLIENT_CERT: &str = "client.crt";
    /// The shared client private key.
    pub const CLIENT_KEY: &str = "client.key";
}

/// Common name of the shared client certificate, as in the Argo CD shared-certificate setup.
pub const CLIENT_COMMON_NAME: &str = "argocd-core-clients";
/// Common name of the generated CA.
pub const CA_COMMON_NAME: &str = "argocd-repo-server-mtls-ca";
/// Common name of the repo-server certificate.
pub const SERVER_COMMON_NAME: &str = "argocd-repo-server";

/// Key algorithm for generated certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// RSA 2048-bit keys, signed with SHA-256 (the default: Argo CD's default TLS 1.2 cipher list,
    /// `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384` alone, needs an RSA server key).
    #[serde(rename = "rsa2048")]
    Rsa2048,
    /// ECDSA on P-256, signed with SHA-256. Faster, but an ECDSA repo-server certificate makes TLS
    /// 1.2 impossible with Argo CD's default ciphers (TLS 1.3 still works).
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
}

/// How client certificates are laid out across Secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// One client certificate shared by every component (the setup Argo CD documents first).
    Shared,
    /// The shared certificate plus one certificate per client component, each in its own Secret.
    PerComponent,
}

/// A client of the repo-server that presents a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    /// argocd-server (API server).
    Server,
    /// argocd-application-controller (a StatefulSet).
    Controller,
    /// argocd-applicationset-controller.
    AppSetController,
    /// argocd-notifications-controller.
    Notifications,
}

impl Component {
    /// Every client component, in a stable order.
    pub const ALL: [Component; 4] = [
        Component::Server,
        Component::Controller,
        Component::AppSetController,
        Component::Notifications,
    ];

    /// Short name used in file and Secret names (`server`, `controller`, `appsetcontroller`, `notifications`).
    pub fn short_name(self) -> &'static str {
        match self {
            Component::Server => "server",
            Component::Controller => "controller",
            Component::AppSetController => "appsetcontroller",
            Component::Notifications => "notifications",
        }
    }

    /// The workload (and `app.kubernetes.io/name` label) of the component.
    pub fn workload(self) -> &'static str {
        match self {
            Component::Server => "argocd-server",
            Component::Controller => "argocd-application-controller",
            Component::AppSetController => "argocd-applicationset-controller",
            Component::Notifications => "argocd-notifications-controller",
        }
    }

    /// Name of the component's own Secret in the per-component layout.
    pub fn secret_name(self) -> String {
        format!("{}-{}", secrets::MTLS_SECRET, self.short_name())
    }

    /// Certificate and key file names of the component in a bundle directory.
    pub fn file_names(self) -> (String, String) {
        (
            format!("client-{}.crt", self.short_name()),
            format!("client-{}.key", self.short_name()),
        )
    }
}

/// What to do with a bundle `pki init` wrote to `dir`: the commands, in order. With the
/// per-component layout (Option B) each client's own Secret is applied too, and its workload's
/// `argocd-repo-server-mtls` volume pointed at it (replacing the volume's Secret, not adding a
/// second volume at the same path: two volumes may not share `/app/config/reposerver/mtls`).
pub fn next_steps(layout: Layout, namespace: &str, dir: &str) -> String {
    let mut out = format!(
        "next: kubectl apply -n {namespace} -f {dir}/{} -f {dir}/{}\n",
        secrets::TLS_FILE,
        secrets::MTLS_FILE
    );
    if layout == Layout::PerComponent {
        for c in Component::ALL {
            out.push_str(&format!(
                "      kubectl apply -n {namespace} -f {dir}/{}.yaml\n      then point the `argocd-repo-server-mtls` volume of {} at it (Option B): set that volume's secret.secretName to {} where your installer keeps the pod template (Helm values, the ArgoCD resource, a kustomize patch; a `kubectl edit` is undone by the next upgrade or sync)\n",
                c.secret_name(),
                c.workload(),
                c.secret_name()
            ));
        }
    }
    out.push_str("      then restart the workloads that mount argocd-repo-server-mtls* (the repo-server reads its client CA only at startup)\n");
    out
}

#[cfg(test)]
mod next_step_tests {
    use super::*;

    /// The shared layout names the two shared Secrets; the per-component layout also each
    /// client's own Secret and the volume change that makes the client read it.
    #[test]
    fn next_steps_name_every_secret_of_the_layout() {
        let shared = next_steps(Layout::Shared, "argocd", "/b");
        assert!(
            shared.contains("-f /b/argocd-repo-server-tls.yaml -f /b/argocd-repo-server-mtls.yaml")
        );
        assert!(!shared.contains("secretName"));
        let per = next_steps(Layout::PerComponent, "gitops", "/b");
        for c in Component::ALL {
            assert!(
                per.contains(&format!("-f /b/{}.yaml", c.secret_name())),
                "{per}"
            );
            assert!(
                per.contains(&format!("volume of {} at it", c.workload())),
                "{per}"
            );
        }
        assert!(per.contains("secret.secretName to argocd-repo-server-mtls-server"));
    }
}

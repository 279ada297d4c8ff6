//! argocd-mtls-verify: proves, with evidence an auditor can keep, that an Argo CD 3.5+ repo-server
//! enforces mutual TLS.
//!
//! Data flows one way: a target says where the repo-server is, the checks probe it, and the report
//! writers turn the results into JSON, JUnit XML and Markdown.
//!
//! - [`pki`]: the CA, server, client and adversarial certificates; bundle I/O; Secret manifests.
//! - [`x509`]: the facts of a certificate, as reports print them.
//! - [`probe`]: one handshake attempt -> one classified outcome (plus legacy and plaintext probers).
//! - [`grpc`]: health, version and the unauthenticated RPC, over connections the probe opened.
//! - [`endpoint`]: one repo-server endpoint as the checks see it (address, protocol, health, log).
//! - [`kubernetes`]: install, provision, discover and reach every replica in a cluster.
//! - [`suite`], [`checks`]: declarative cases; observation, then judgement.
//! - [`runner`], [`report`]: cargo-test-like output; JSON, JUnit XML and Markdown reports.
//! - [`reference`]: the embedded repo-server double behind `demo` and the tests.

#![warn(missing_docs)]

pub mod checks;
pub mod container;
pub mod controls;
pub mod endpoint;
pub mod fsio;
pub mod grpc;
pub mod kubernetes;
pub mod pki;
pub mod probe;
pub mod pushgateway;
pub mod reference;
pub mod report;
pub mod runner;
pub mod suite;
pub mod x509;

/// Generated from proto/version.proto: Argo CD's `version.VersionService`.
#[allow(missing_docs, clippy::all)]
pub mod version_proto {
    tonic::include_proto!("version");
}

/// An error and its causes in one line, each said once (`client error (Connect): tcp connect
/// error: Connection refused (os error 111)`): what messages print where a library's error would
/// otherwise be shown as a `Debug` dump or as its outermost words only.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let said = e.to_string();
        if !line.contains(&said) {
            line.push_str(": ");
            line.push_str(&said);
        }
        cause = e.source();
    }
    line
}

/// `text` with the password of every URL in it (`scheme://user:PASSWORD@host`) replaced by
/// `REDACTED`: for command lines and messages that name a URL given with credentials
/// (`--pushgateway`, `--install-manifest`).
pub fn without_url_passwords(text: &str) -> String {
    static USERINFO: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    USERINFO
        .get_or_init(|| {
            regex::Regex::new(r"([A-Za-z][A-Za-z0-9+.-]*://[^/?#@:\s]*:)[^/?#\s]*@").expect("valid")
        })
        .replace_all(text, "${1}REDACTED@")
        .into_owned()
}

/// Installs ring as the process-wide rustls crypto provider. Idempotent; call before any TLS use,
/// so no dependency can pick a second provider and panic at runtime.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

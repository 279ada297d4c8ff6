//! The command line: `pki`, `run`, `demo`, `list`. Parsing only; `main.rs` dispatches.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use argocd_mtls_verify::pki::{KeyType, Layout};

/// Proves that an Argo CD 3.5+ repo-server enforces mutual TLS, and writes a compliance report.
///
/// Exit status: 0 every required check passed; 1 at least one check failed (or, for
/// `pki inspect`, a bundle check failed); 2 no verdict could be reached (bad input, setup failure,
/// inconclusive results).
#[derive(Debug, Parser)]
#[command(name = "argocd-mtls-verify", version, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate and inspect the certificates of a repo-server mTLS setup.
    #[command(subcommand)]
    Pki(PkiCommand),
}

/// `pki` subcommands.
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Generate a CA, a repo-server certificate and client certificate(s), plus the Secret manifests.
    ///
    /// Writes DIR/ca.crt ca.key server.crt server.key client.crt client.key (keys 0600),
    /// DIR/argocd-repo-server-mtls.yaml (client-ca.crt, client.crt, client.key, server-ca.crt) and
    /// DIR/argocd-repo-server-tls.yaml (tls.crt, tls.key, ca.crt). Refuses to overwrite an existing
    /// bundle unless --force is given.
    Init(InitArgs),
    /// Print the facts of certificates, and check a bundle directory for consistency.
    ///
    /// For each FILE: subject, issuer, serial, SHA-256 fingerprint, validity and days left, key,
    /// signature algorithm, basic constraints, key usage, extended key usage and SANs. For a bundle
    /// directory also: whether each leaf chains to ca.crt and whether each key matches its
    /// certificate (exit 1 if not).
    Inspect(InspectArgs),
}

/// Arguments of `pki init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// `shared`: one client certificate for all components. `per-component`: also one certificate
    /// and Secret (argocd-repo-server-mtls-<component>) per client component.
    #[arg(long, value_enum, default_value_t = Layout::Shared)]
    pub layout: Layout,
    /// Validity of the server and client certificates in days (the CA gets at least 3650).
    #[arg(long, default_value_t = 365, value_name = "N")]
    pub days: u32,
    /// Key algorithm of every generated key.
    #[arg(long, value_enum, default_value_t = KeyType::EcdsaP256)]
    pub key_type: KeyType,
    /// Namespace Argo CD runs in: sets the repo-server SANs and the Secrets' namespace.
    #[arg(long, default_value = "argocd", value_name = "NS")]
    pub namespace: String,
    /// Replace an existing bundle in DIR.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `pki inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// PEM certificate files, or bundle directories written by `pki init`.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print JSON (the same shape as the `certificates` section of a report).
    #[arg(long)]
    pub json: bool,
}

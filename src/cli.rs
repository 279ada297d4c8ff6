//! The command line: `pki`, `run`, `demo`, `list`. Parsing only; `main.rs` dispatches.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use argocd_mtls_verify::endpoint::Protocol;
use argocd_mtls_verify::kubernetes::provision::Profile;
use argocd_mtls_verify::pki::{KeyType, Layout};
use argocd_mtls_verify::report::policyreport::ReportApi;

// The library's enums know nothing of the command line; these are their command-line spellings
// and help texts, mapped onto them.

/// `--protocol`: what the TLS port speaks inside TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProtocolArg {
    /// gRPC over HTTP/2 (the repo-server): acceptance is proven by the server's SETTINGS frame.
    Grpc,
    /// HTTPS (an ingress or proxy): a refusal may be an HTTP status (400, 401, 403, 495, 496).
    Https,
    /// Plain TLS: acceptance is data, a TLS 1.3 session ticket, or failing those, silence.
    Tls,
}

impl From<ProtocolArg> for Protocol {
    fn from(p: ProtocolArg) -> Self {
        match p {
            ProtocolArg::Grpc => Protocol::Grpc,
            ProtocolArg::Https => Protocol::Https,
            ProtocolArg::Tls => Protocol::Tls,
        }
    }
}

/// The command line, parsed. Installed as a kubectl plugin (krew links the binary as
/// `kubectl-argocd_mtls_verify`), its usage lines say `kubectl argocd-mtls-verify`, the way the
/// user typed it.
pub fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let mut command = Cli::command();
    let invoked = std::env::args_os().next().unwrap_or_default();
    let plugin = std::path::Path::new(&invoked)
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("kubectl-"));
    if plugin {
        command = command.bin_name("kubectl argocd-mtls-verify");
    }
    Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit())
}

/// `--policy-report-api`: which report resource `--policy-report` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportApiArg {
    /// OpenReports' Report when the cluster serves it, else the PolicyReport; an error naming
    /// both CRDs when it serves neither.
    Auto,
    /// reports.openreports.io/v1alpha1 (Kubewarden, Kyverno 1.15+ with OpenReports on).
    Openreports,
    /// policyreports.wgpolicyk8s.io/v1alpha2 (Kyverno, Trivy Operator, kubescape).
    Policyreport,
    /// Both: for a cluster whose readers are split between them.
    Both,
}

impl ReportApiArg {
    /// The APIs asked for; `None` lets the cluster decide (`auto`).
    pub fn apis(self) -> Option<Vec<ReportApi>> {
        match self {
            ReportApiArg::Auto => None,
            ReportApiArg::Openreports => Some(vec![ReportApi::OpenReports]),
            ReportApiArg::Policyreport => Some(vec![ReportApi::PolicyReport]),
            ReportApiArg::Both => Some(ReportApi::ALL.to_vec()),
        }
    }
}

/// `--profile`: how the Secrets are set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileArg {
    /// Exactly what operators are told: the two Secrets, then restart the components.
    Seed,
    /// Also make every client verify the repo-server (`*.repo.server.ca.cert.path`).
    Strict,
}

impl From<ProfileArg> for Profile {
    fn from(p: ProfileArg) -> Self {
        match p {
            ProfileArg::Seed => Profile::Seed,
            ProfileArg::Strict => Profile::Strict,
        }
    }
}

/// `--layout`: how client certificates are laid out across Secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutArg {
    /// One client certificate shared by every component (the setup Argo CD documents first).
    Shared,
    /// The shared certificate plus one certificate per client component, each in its own Secret.
    PerComponent,
}

impl From<LayoutArg> for Layout {
    fn from(l: LayoutArg) -> Self {
        match l {
            LayoutArg::Shared => Layout::Shared,
            LayoutArg::PerComponent => Layout::PerComponent,
        }
    }
}

/// `--key-type`: the key algorithm of every generated key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyTypeArg {
    /// RSA 2048-bit keys (the default: Argo CD's default TLS 1.2 cipher needs an RSA server key).
    #[value(name = "rsa2048")]
    Rsa2048,
    /// ECDSA P-256: faster, but no TLS 1.2 with Argo CD's default ciphers (TLS 1.3 still works).
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
}

impl From<KeyTypeArg> for KeyType {
    fn from(k: KeyTypeArg) -> Self {
        match k {
            KeyTypeArg::Rsa2048 => KeyType::Rsa2048,
            KeyTypeArg::EcdsaP256 => KeyType::EcdsaP256,
        }
    }
}

/// Proves that an Argo CD 3.5+ repo-server enforces mutual TLS, and writes a compliance report.
///
/// Exit status: 0 every required check passed; 1 at least one check failed; 2 no verdict could be
/// reached (bad input, setup failure, inconclusive results; for `pki inspect`, a bundle whose key
/// or chain does not match, which `run` refuses as unusable input too).
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
    /// Verify a repo-server: attack it with the handshakes an intruder would try, check that the
    /// legitimate client still gets through, and write a report.
    ///
    /// Output lists one line per check, like `cargo test`. Reports go to a fresh folder
    /// <REPORT_DIR>/<run-id>/ (report.json, report.json.sha256, junit.xml, report.md).
    Run(Box<RunArgs>),
    /// Start an embedded reference repo-server (rustls + tonic, fresh PKI, mTLS required) and run
    /// the full endpoint suite against it. Needs no Docker and no network.
    Demo(DemoArgs),
    /// List the built-in suites and their checks (id, title, controls).
    List(ListArgs),
    /// Compare two reports (before/after a migration, last week and today): every check whose
    /// verdict or evidence changed, and checks only one of them has. Volatile details (timings,
    /// ports, timestamps, fingerprints) are masked. Exit 0: no change; 1: changes; 2: bad input.
    Diff(DiffArgs),
    /// Many reports (clusters x days, e.g. what a CronJob in each cluster writes) into one fleet
    /// report: per cluster the gate of its latest run, the failing checks, the Argo CD build, the
    /// nearest certificate expiry; worst first. Each report's report.json.sha256 is checked (a
    /// report that does not match is rejected, never counted); a cluster's runs of one day count
    /// once (the latest). Writes fleet.json, fleet.md and fleet-junit.xml (one suite per cluster)
    /// into <OUT>/fleet-<id>/. Exit 0: every cluster passed; 1: one failed or has no verdict;
    /// 2: a report was rejected, or none was found.
    Aggregate(AggregateArgs),
    /// What an intruder pod of `run --in-cluster` runs: tries each target without a client
    /// certificate (TCP, then a TLS 1.3 handshake) and prints the attempts as JSON between
    /// marker lines. Not meant to be run by hand.
    #[command(hide = true)]
    Intrude(IntrudeArgs),
}

/// Arguments of the hidden `intrude`.
#[derive(Debug, Args)]
pub struct IntrudeArgs {
    /// `LABEL=HOST:PORT` (e.g. `service/argocd-repo-server=argocd-repo-server.argocd.svc:8081`).
    #[arg(long = "to", value_name = "LABEL=HOST:PORT", required = true)]
    pub targets: Vec<String>,
    /// SNI.
    #[arg(long, value_name = "NAME")]
    pub server_name: String,
    /// Time limit of each connection and handshake.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub timeout_ms: u64,
}

/// Arguments of `aggregate`.
#[derive(Debug, Args)]
pub struct AggregateArgs {
    /// Folders searched (recursively) for report.json, or report.json files.
    #[arg(value_name = "DIR", required = true, num_args = 1..)]
    pub dirs: Vec<PathBuf>,
    /// Where the fleet report's folder is made.
    #[arg(long, default_value = "reports/fleet", value_name = "DIR")]
    pub out: PathBuf,
}

/// Arguments of `diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The older report: a report.json, or a run folder holding one.
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The newer report.
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where the repo-server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetKind {
    /// A bare address (--addr), e.g. a port-forward or a test server.
    Endpoint,
    /// Create a kind cluster (needs kind and Docker), install Argo CD, record the no-mTLS baseline,
    /// provision the Secrets, restart what mounts them, and verify every repo-server replica.
    Kind,
    /// An existing installation from kubeconfig: verify every replica and audit the configuration.
    /// Read-only unless --provision.
    Cluster,
    /// The Argo CD image you are about to deploy (--image), started on a container engine as a
    /// repo-server with the bundle's Secrets where the manifest mounts them, verified with the
    /// endpoint suite (its log included), removed. Needs Docker (DOCKER_HOST), no cluster.
    Container,
}

/// Options shared by `run` and `demo`: selection, output, timing.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Run only checks whose id contains one of these strings, anywhere (like `cargo test
    /// FILTER`: `valid-client` also selects `not-yet-valid-client-cert`; use --exact for whole ids).
    /// The report records the filters: a narrowed run may pass without the checks it left out.
    #[arg(value_name = "FILTER")]
    pub filters: Vec<String>,
    /// Match FILTERs against whole check ids.
    #[arg(long)]
    pub exact: bool,
    /// Skip checks whose id contains this string (repeatable).
    #[arg(long, value_name = "FILTER")]
    pub skip: Vec<String>,
    /// List the selected checks and exit without probing.
    #[arg(long)]
    pub list: bool,
    /// Accept that checks needing input you did not give (the CA key, --health-url, --log-file,
    /// a Kubernetes target) are skipped. Without it such a run cannot PASS (exit 2); with it the
    /// report records that the scope was narrowed on purpose.
    #[arg(long)]
    pub partial: bool,
    /// Parent folder for reports; each run writes a new <run-id>/ folder inside it.
    #[arg(long, default_value = "reports/runs", value_name = "DIR")]
    pub report_dir: PathBuf,
    /// Report files to write (comma-separated: json, junit, md, html; oscal writes NIST OSCAL
    /// 1.1.2 Assessment Results beside report.json, which it cites).
    #[arg(long, default_value = "json,junit,md,html", value_name = "LIST")]
    pub format: String,
    /// Time limit of each attempt, in milliseconds.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub timeout_ms: u64,
    /// With --protocol tls, TLS 1.3, and a server that shows no sign of acceptance (no data, no
    /// session ticket): how long silence must last to count as acceptance. Default: the whole
    /// --timeout-ms, so a server that refuses slowly is never taken for one that accepts. A
    /// server that issues session tickets is judged by them and never waits this long.
    #[arg(long, alias = "grace-ms", value_name = "MS")]
    pub silence_ms: Option<u64>,
    /// At most this many handshakes at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,
    /// Draws the doors' random parts (the ALPN id no registry holds). Default: a fresh one,
    /// recorded in report.json (`run.seed`): give it again to replay a run's doors exactly.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Also print report.json to stdout, between `-----BEGIN ARGOCD-MTLS-VERIFY REPORT-----` and
    /// `-----END ...-----` lines: how a pod's report leaves it through its log (`--in-cluster`
    /// collects the probe pod's this way).
    #[arg(long)]
    pub print_report: bool,
    /// Also write the report as Prometheus metrics (text exposition format) to this file, for
    /// node-exporter's textfile collector or any scraper of a file: the gate, the exit code, the
    /// checks by verdict, each check as 1 (passed) or 0, each certificate's expiry.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Also push those metrics to this Prometheus Pushgateway (http(s)://HOST:PORT[/PREFIX];
    /// `user:password@` for basic auth, never printed), as the group job="argocd-mtls-verify",
    /// cluster, namespace: each push replaces that group's previous one. https uses the system's
    /// CA certificates (the image has none: mount them at /etc/ssl/certs, or push over http inside
    /// the cluster). A push that fails leaves the run without a verdict (exit 2), and the report
    /// files and --metrics-file say why.
    #[arg(
        long,
        value_name = "URL",
        env = "ARGOCD_MTLS_VERIFY_PUSHGATEWAY",
        hide_env_values = true
    )]
    pub pushgateway: Option<String>,
}

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where the repo-server is.
    #[arg(long, value_enum, default_value_t = TargetKind::Endpoint)]
    pub target: TargetKind,
    /// HOST:PORT of the repo-server gRPC (TLS) port (target endpoint).
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// Bundle directory from `pki init` (ca.crt, client.crt, client.key; ca.key optional).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["ca_cert", "client_cert", "client_key", "ca_key"])]
    pub pki: Option<PathBuf>,
    /// CA certificate the repo-server trusts for clients (instead of --pki).
    #[arg(long, value_name = "FILE", requires_all = ["client_cert", "client_key"])]
    pub ca_cert: Option<PathBuf>,
    /// Its private key; without it, cases that mint certificates from the trusted CA are skipped.
    #[arg(long, value_name = "FILE")]
    pub ca_key: Option<PathBuf>,
    /// The legitimate client certificate.
    #[arg(long, value_name = "FILE")]
    pub client_cert: Option<PathBuf>,
    /// Its private key.
    #[arg(long, value_name = "FILE")]
    pub client_key: Option<PathBuf>,
    /// CA(s) the repo-server certificate must chain to (default: the client CA).
    #[arg(long, value_name = "FILE")]
    pub server_ca: Option<PathBuf>,
    /// Name for SNI and the server-identity check (default: the host of --addr).
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// What the port speaks inside TLS.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Grpc)]
    pub protocol: ProtocolArg,
    /// The repo-server health port, e.g. http://127.0.0.1:8084 (enables probe/readiness and probe/liveness-full).
    #[arg(long, value_name = "URL")]
    pub health_url: Option<String>,
    /// A file with the repo-server log (text or JSON logrus), for the log checks.
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// Suites to run: a built-in name or a .toml path (repeatable). Default: `endpoint`, plus
    /// `kubernetes` for the kind and cluster targets.
    #[arg(long, value_name = "NAME")]
    pub suite: Vec<String>,
    /// --target container.
    #[command(flatten)]
    pub container: ContainerArgs,
    /// Kubernetes targets (kind, cluster).
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Selection, output and timing.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Options of the container target.
#[derive(Debug, Args)]
#[command(next_help_heading = "Container target")]
pub struct ContainerArgs {
    /// The Argo CD image to verify, with its tag or digest (e.g. quay.io/argoproj/argocd:v3.5.1);
    /// used as the engine has it, pulled when it has not.
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// A container network to attach it to (the engine's default otherwise), e.g. when the engine
    /// runs without its default bridge.
    #[arg(long, value_name = "NAME", requires = "image")]
    pub container_network: Option<String>,
}

/// Options of the kind and cluster targets.
#[derive(Debug, Args)]
#[command(next_help_heading = "Kubernetes targets")]
pub struct KubeArgs {
    /// Argo CD version to install (kind, cluster --install); must be v3.5.0 or later and pinned in
    /// kind/argocd-versions.toml.
    #[arg(long, default_value = "v3.5.1", value_name = "TAG")]
    pub argocd_version: String,
    /// kind: one control plane and three workers, and the HA install (two repo-server replicas).
    #[arg(long)]
    pub ha: bool,
    /// kind: keep the cluster after the run. cluster: keep what a run that stopped early (Ctrl-C,
    /// a failed step) created, instead of deleting it (namespace, manifest objects, Secrets).
    #[arg(long)]
    pub keep_cluster: bool,
    /// kind: cluster name (default: a fresh amv-<run id> name, so no existing cluster is ever touched).
    #[arg(long, value_name = "NAME")]
    pub cluster_name: Option<String>,
    /// kind: use an existing cluster named by --cluster-name instead of creating one (never deleted).
    #[arg(long, requires = "cluster_name")]
    pub reuse_cluster: bool,
    /// kind, cluster --install: install this manifest (path or URL) instead of the pinned one; its
    /// digest is printed.
    #[arg(long, value_name = "PATH|URL")]
    pub install_manifest: Option<String>,
    /// cluster: install Argo CD first (--argocd-version, or --install-manifest), then do what the
    /// kind target does: record the no-mTLS baseline, provision the Secrets (from --pki DIR, or a
    /// fresh in-memory bundle), restart what mounts them and verify every replica.
    #[arg(long)]
    pub install: bool,
    /// cluster: the kubeconfig file, as kubectl's --kubeconfig (default: KUBECONFIG, then
    /// ~/.kube/config, then the pod's service account when run inside a cluster).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// cluster: kubeconfig context (default: the current context).
    #[arg(long, value_name = "CONTEXT")]
    pub context: Option<String>,
    /// Namespace Argo CD runs in.
    #[arg(short = 'n', long, default_value = "argocd", value_name = "NS")]
    pub namespace: String,
    /// cluster: allow creating the Secrets (from --pki DIR) and restarting the workloads that
    /// mount them. Without it nothing in the cluster is changed.
    #[arg(long, requires = "pki")]
    pub provision: bool,
    /// How to provision: `seed` = the two Secrets exactly as operators are told; `strict` = also
    /// make every client verify the repo-server (sets *.repo.server.ca.cert.path in argocd-cmd-params-cm).
    #[arg(long, value_enum, default_value_t = ProfileArg::Seed)]
    pub profile: ProfileArg,
    /// When provisioning, set GRPC_GO_LOG_SEVERITY_LEVEL=info on the repo-server: grpc-go (v1.81,
    /// Argo CD 3.5.1) logs refused handshakes only at INFO, and log/rejections-logged counts them.
    #[arg(long, alias = "grpc-log-warnings")]
    pub grpc_log_info: bool,
    /// kind: load the manifest's images into the cluster before installing. An image the
    /// container engine already holds is used as it is (air-gapped: `docker load` them first);
    /// others are pulled, and one that cannot be pulled is left to the nodes, with a warning.
    #[arg(long)]
    pub preload_images: bool,
    /// kind: the node image to create the cluster from (`kind create cluster --image`), e.g. one
    /// built with `kind build node-image` for a Kubernetes version or a registry-less machine.
    #[arg(long, value_name = "IMAGE")]
    pub node_image: Option<String>,
    /// kind: a kind cluster config (kind.x-k8s.io/v1alpha4) to create the cluster from instead of
    /// the built-in single-node (or --ha) layout: your own CNI, mirrors, node count.
    #[arg(long, value_name = "FILE", conflicts_with = "ha")]
    pub kind_config: Option<PathBuf>,
    /// Time limit for kind create, CRDs and each rollout, in seconds.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub rollout_timeout: u64,
    /// Time limit for the whole download of the install manifest (--install,
    /// --install-manifest URL), redirects and body included, in seconds.
    #[arg(long, default_value_t = 120, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub download_timeout: u64,
    /// Time limit for connecting to the manifest's server, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub download_connect_timeout: u64,
    /// How each repo-server replica is reached. `auto`: its pod IP when that answers from here
    /// (on a node, inside the cluster, or a routed pod network) and no mesh proxy sits in the pod,
    /// else port-forwards through the API server (~4x slower: every attempt opens one).
    #[arg(long, value_enum, default_value_t = ConnectArg::Auto, value_name = "HOW")]
    pub connect: ConnectArg,
    /// cluster: also probe from inside the cluster. A Job in the namespace runs --probe-image
    /// with the run's identity (from a Secret the run creates and deletes) and the read-only
    /// Role: the endpoint suite against every replica's pod IP and every Service that routes to
    /// the repo-server, by its DNS name; its results join the report marked `in-cluster`. Then two
    /// intruder pods without a certificate (one with labels no Argo CD component has, one with a
    /// client component's) try every door; the report sets what the NetworkPolicies allow beside
    /// what reached the port and what mTLS did. Needs create/delete on jobs, secrets,
    /// serviceaccounts, roles and rolebindings in the namespace.
    #[arg(long)]
    pub in_cluster: bool,
    /// cluster: write the results into the namespace as a policy report named argocd-mtls-verify,
    /// replaced by each run: one result per check and a `run/gate` result with the verdict and,
    /// when there is none, why; its scope is the repo-server workload, each result names its pod
    /// or Service. OpenReports' Report (openreports.io/v1alpha1) or the legacy PolicyReport
    /// (wgpolicyk8s.io/v1alpha2): see --policy-report-api. Needs get/create/patch on the resource
    /// (deploy/cronjob/rbac.yaml grants both). A report that cannot be written leaves the run
    /// without a verdict (exit 2), and every report file says why.
    #[arg(long)]
    pub policy_report: bool,
    /// Which report resource --policy-report writes.
    #[arg(long, value_enum, default_value_t = ReportApiArg::Auto, value_name = "API", requires = "policy_report")]
    pub policy_report_api: ReportApiArg,
    /// The image of this tool the in-cluster pods run (built from deploy/image; see README).
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_PROBE_IMAGE, requires = "in_cluster")]
    pub probe_image: String,
}

/// The image `--in-cluster` runs unless told otherwise.
pub const DEFAULT_PROBE_IMAGE: &str = concat!(
    "ghcr.io/argocd-mtls-verify/argocd-mtls-verify:v",
    env!("CARGO_PKG_VERSION")
);

/// `--connect`: how the replicas are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConnectArg {
    /// The pod IP when it answers and no mesh proxy is in the pod, else port-forwards.
    Auto,
    /// Always port-forwards through the API server.
    PortForward,
    /// Always the pod IP (a run from inside the cluster network).
    PodIp,
    /// The tool runs in a pod of the cluster (the in-cluster probe, the CronJob): every replica
    /// at its pod IP, and every Service that routes to the repo-server by its DNS name.
    InCluster,
}

impl From<ConnectArg> for argocd_mtls_verify::kubernetes::session::Connect {
    fn from(c: ConnectArg) -> Self {
        use argocd_mtls_verify::kubernetes::session::Connect;
        match c {
            ConnectArg::Auto => Connect::Auto,
            ConnectArg::PortForward => Connect::PortForward,
            ConnectArg::PodIp => Connect::PodIp,
            ConnectArg::InCluster => Connect::InCluster,
        }
    }
}

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Selection, output and timing.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Arguments of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this suite (built-in name or .toml path).
    #[arg(long, value_name = "NAME")]
    pub suite: Option<String>,
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
    /// certificate (exit 2 if not: such a bundle is unusable input, as `run` says too).
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
    #[arg(long, value_enum, default_value_t = LayoutArg::Shared)]
    pub layout: LayoutArg,
    /// Validity of the server and client certificates in days (the CA gets at least 3650).
    #[arg(long, default_value_t = 365, value_name = "N")]
    pub days: u32,
    /// Key algorithm of every generated key.
    #[arg(long, value_enum, default_value_t = KeyTypeArg::Rsa2048)]
    pub key_type: KeyTypeArg,
    /// Namespace Argo CD runs in: sets the repo-server SANs and the Secrets' namespace.
    #[arg(short = 'n', long, default_value = "argocd", value_name = "NS")]
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

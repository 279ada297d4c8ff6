//! The command line of `run` and `demo`, resolved into one [`Plan`]: what to probe, with what
//! material, which checks, where to write. Every flag and file is read here, once; bad input
//! exits 2 naming the flag or file. Cheap refusals come first (an unsupported Argo CD version needs
//! no Docker to be refused). Nothing after planning goes back to the arguments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use argocd_mtls_verify::checks::ProbeSettings;
use argocd_mtls_verify::endpoint::{Endpoint, LogSource, parse_health_url};
use argocd_mtls_verify::kubernetes::kind;
use argocd_mtls_verify::kubernetes::manifest::ManifestSource;
use argocd_mtls_verify::kubernetes::provision::Provisioning;
use argocd_mtls_verify::pki::{self, Bundle, PkiPaths, ProbePki};
use argocd_mtls_verify::report::events::Events;
use argocd_mtls_verify::report::policyreport::ReportApi;
use argocd_mtls_verify::report::progress::ConsoleProgress;
use argocd_mtls_verify::report::{self, Formats};
use argocd_mtls_verify::runner::kube::{KindPlan, Limits};
use argocd_mtls_verify::runner::{self, Selection};
use argocd_mtls_verify::suite::{Check, Suite};

use crate::cli::{OutputArgs, RunArgs, TargetKind};

/// A `run` or `demo`, resolved from the command line.
pub(crate) struct Plan {
    /// Where the repo-server is, and the material to probe it with.
    pub(crate) target: Target,
    /// The selected checks (never empty).
    pub(crate) checks: Vec<Check>,
    /// Timeouts and concurrency.
    pub(crate) settings: ProbeSettings,
    /// Where and how the report is written.
    pub(crate) output: Output,
    /// When the run started (the report's `started_at`).
    pub(crate) started_at: time::OffsetDateTime,
    /// The report's run id (a kind cluster this run creates is named after it).
    pub(crate) run_id: String,
    /// The run's events, shown as progress lines on stderr.
    pub(crate) events: Events,
}

/// Where the report goes.
pub(crate) struct Output {
    pub(crate) dir: PathBuf,
    pub(crate) formats: Formats,
    pub(crate) scope: report::Scope,
    /// `--print-report`.
    pub(crate) print_report: bool,
    /// `--metrics-file`.
    pub(crate) metrics_file: Option<PathBuf>,
    /// `--pushgateway`.
    pub(crate) pushgateway: Option<String>,
    /// `--policy-report`: where to write it (set for cluster runs).
    pub(crate) policy_report: Option<PolicyReportPlan>,
    /// The seed the doors were drawn with (`--seed`, or a fresh one), for report.json.
    pub(crate) seed: u64,
}

/// `--policy-report`: the namespace and the report APIs to write.
pub(crate) struct PolicyReportPlan {
    pub(crate) namespace: String,
    /// `--policy-report-api`; `None`: the first of [`ReportApi::ALL`] the cluster serves.
    pub(crate) apis: Option<Vec<ReportApi>>,
}

/// What a plan probes.
pub(crate) enum Target {
    /// One endpoint, with the user's bundle.
    Endpoint {
        endpoint: Endpoint,
        material: ProbePki,
    },
    /// The embedded reference repo-server, with a bundle generated in memory.
    Demo,
    /// An Argo CD image started as a repo-server on a container engine.
    Container {
        plan: argocd_mtls_verify::container::ContainerPlan,
        material: ProbePki,
        /// The engine, as its preflight named it.
        engine: String,
    },
    /// A cluster: an existing one (maybe installing into it), or a kind cluster.
    Kube(Box<KubePlan>),
}

/// A Kubernetes run, resolved.
pub(crate) struct KubePlan {
    /// `kind` or `cluster`, as the report names the target.
    pub(crate) target: &'static str,
    pub(crate) namespace: String,
    /// The probe identity; `None` in an existing cluster without a bundle (the cluster's own
    /// Secret is used, or a stand-in).
    pub(crate) material: Option<ProbePki>,
    /// What to write into the cluster (installs always; an existing cluster with --provision).
    pub(crate) provisioning: Option<Provisioning>,
    pub(crate) limits: Limits,
    pub(crate) keep_cluster: bool,
    pub(crate) how: KubeHow,
    /// How the replicas are reached.
    pub(crate) connect: argocd_mtls_verify::kubernetes::session::Connect,
    /// `--in-cluster`.
    pub(crate) in_cluster: Option<argocd_mtls_verify::runner::kube::InClusterPlan>,
}

/// How the cluster is reached.
pub(crate) enum KubeHow {
    /// The kubeconfig's (or `--context`'s) cluster; with a manifest, Argo CD is installed first.
    Existing {
        /// `--kubeconfig`.
        kubeconfig: Option<PathBuf>,
        context: Option<String>,
        install: Option<ManifestSource>,
    },
    /// A kind cluster this run creates or reuses.
    Kind(KindPlan),
}

/// The run's events, shown as progress lines on stderr.
pub(crate) fn console_events() -> Events {
    Events::to(vec![Box::new(ConsoleProgress::default())])
}

fn settings(out: &OutputArgs) -> anyhow::Result<ProbeSettings> {
    if out.timeout_ms == 0 || out.concurrency == 0 {
        bail!("--timeout-ms and --concurrency must be at least 1");
    }
    if let Some(silence) = out.silence_ms
        && silence < MIN_SILENCE_MS
    {
        bail!(
            "--silence-ms {silence}: silence shorter than {MIN_SILENCE_MS} ms is no sign of acceptance (a refusal takes longer than that to arrive); leave it out to wait the whole --timeout-ms"
        );
    }
    Ok(ProbeSettings {
        timeout: Duration::from_millis(out.timeout_ms),
        silence: out.silence_ms.map(Duration::from_millis),
        concurrency: out.concurrency,
        seed: out
            .seed
            .unwrap_or_else(argocd_mtls_verify::checks::fresh_seed),
    })
}

/// The shortest silence `--silence-ms` may call acceptance: below it, a server's refusal in
/// flight is taken for admission.
const MIN_SILENCE_MS: u64 = 100;

/// Fails unless `dir` can take the report: it is created if missing, and a file is written and
/// removed in it, before anything is probed, so a run never loses its results at the end.
fn writable_report_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--report-dir {}: cannot create it", dir.display()))?;
    tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("--report-dir {}: cannot write in it", dir.display()))?;
    Ok(())
}

/// Fails unless `name` can be sent as SNI and matched against a certificate: a DNS name (or an
/// IP address), not empty, no spaces, no scheme or port.
fn valid_server_name(name: &str) -> anyhow::Result<()> {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if rustls::pki_types::ServerName::try_from(name).is_err() || name.contains(':') {
        bail!(
            "--server-name `{name}`: not a DNS name or IP address (give the name the repo-server's certificate carries, e.g. argocd-repo-server.argocd.svc)"
        );
    }
    Ok(())
}

/// What the user narrowed on purpose, for the report.
fn scope(out: &OutputArgs) -> report::Scope {
    let mut filters = out.filters.clone();
    filters.extend(out.skip.iter().map(|s| format!("--skip {s}")));
    if out.exact && !out.filters.is_empty() {
        filters.push("--exact".into());
    }
    report::Scope {
        command: std::env::args_os()
            .skip(1)
            .map(|a| argocd_mtls_verify::without_url_passwords(&a.to_string_lossy()))
            .collect(),
        suites: vec![],
        filters,
        partial: out.partial,
    }
}

fn selection(out: &OutputArgs) -> Selection {
    Selection {
        filters: out.filters.clone(),
        exact: out.exact,
        skip: out.skip.clone(),
    }
}

pub(crate) fn load_suites(names: &[String]) -> anyhow::Result<Vec<Suite>> {
    names
        .iter()
        .map(|n| Suite::load(n).with_context(|| format!("--suite {n}")))
        .collect()
}

async fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    tokio::net::lookup_host(addr)
        .await
        .with_context(|| format!("--addr `{addr}`: cannot resolve (expected HOST:PORT)"))?
        .next()
        .ok_or_else(|| anyhow!("--addr `{addr}`: resolves to no address"))
}

/// The checks `out` selects from `suites`, or `None` after printing them for `--list`.
pub(crate) fn checks_or_list(
    suites: &[Suite],
    out: &OutputArgs,
) -> anyhow::Result<Option<Vec<Check>>> {
    let checks = runner::select(suites, &selection(out));
    if out.list {
        runner::print_list(&checks);
        return Ok(None);
    }
    if checks.is_empty() {
        bail!(
            "no check matches the filters {:?}; `--list` shows the ids",
            out.filters
        );
    }
    Ok(Some(checks))
}

/// The output half of a plan.
pub(crate) fn output(out: &OutputArgs) -> anyhow::Result<(Output, ProbeSettings)> {
    let formats = Formats::parse(&out.format).map_err(|e| anyhow!(e))?;
    writable_report_dir(&out.report_dir)?;
    if let Some(path) = &out.metrics_file {
        argocd_mtls_verify::fsio::check_writable(path)
            .with_context(|| format!("--metrics-file {}: cannot write it", path.display()))?;
    }
    let settings = settings(out)?;
    Ok((
        Output {
            dir: out.report_dir.clone(),
            formats,
            scope: scope(out),
            print_report: out.print_report,
            metrics_file: out.metrics_file.clone(),
            pushgateway: out.pushgateway.clone(),
            policy_report: None,
            seed: settings.seed,
        },
        settings,
    ))
}

fn suite_names(args: &RunArgs) -> Vec<String> {
    if !args.suite.is_empty() {
        return args.suite.clone();
    }
    match args.target {
        TargetKind::Endpoint | TargetKind::Container => vec!["endpoint".into()],
        _ if args.kube.in_cluster => {
            vec!["endpoint".into(), "kubernetes".into(), "in-cluster".into()]
        }
        _ => vec!["endpoint".into(), "kubernetes".into()],
    }
}

/// Resolves `run`'s arguments into a plan; `None` when `--list` printed the checks instead.
/// Cheap refusals come first: an unsupported Argo CD version needs no Docker to be refused.
pub(crate) async fn plan_run(args: &RunArgs) -> anyhow::Result<Option<Plan>> {
    let started_at = time::OffsetDateTime::now_utc();
    let run_id = report::new_run_id(started_at);
    let events = console_events();
    let setup = Instant::now();
    let installs = args.target == TargetKind::Kind || args.kube.install;
    if args.kube.install && args.target != TargetKind::Cluster {
        bail!("--install belongs to --target cluster (--target kind always installs)");
    }
    if args.kube.kubeconfig.is_some() && args.target != TargetKind::Cluster {
        bail!(
            "--kubeconfig belongs to --target cluster (--target kind writes a kubeconfig of its own)"
        );
    }
    if args.kube.in_cluster && args.target != TargetKind::Cluster {
        bail!(
            "--in-cluster belongs to --target cluster: it starts pods in an existing cluster (for a kind cluster, run --target cluster --context kind-NAME against it)"
        );
    }
    let manifest = if installs {
        Some(argocd_mtls_verify::kubernetes::manifest::gate(
            &args.kube.argocd_version,
            args.kube.ha,
            args.kube.install_manifest.as_deref(),
        )?)
    } else {
        None
    };
    let suites = load_suites(&suite_names(args))?;
    let Some(checks) = checks_or_list(&suites, &args.output)? else {
        return Ok(None);
    };
    let (mut output, settings) = output(&args.output)?;
    output.scope.suites = suite_names(args);
    if args.kube.policy_report {
        if args.target != TargetKind::Cluster {
            bail!(
                "--policy-report belongs to --target cluster: it writes into the cluster's namespace"
            );
        }
        output.policy_report = Some(PolicyReportPlan {
            namespace: args.kube.namespace.clone(),
            apis: args.kube.policy_report_api.apis(),
        });
    }
    let target = match args.target {
        TargetKind::Endpoint => plan_endpoint(args).await?,
        TargetKind::Container => plan_container(args).await?,
        TargetKind::Kind | TargetKind::Cluster => {
            Target::Kube(Box::new(plan_kube(args, manifest, &run_id).await?))
        }
    };
    if matches!(target, Target::Endpoint { .. }) {
        events.finish("setup", setup);
    }
    Ok(Some(Plan {
        target,
        checks,
        settings,
        output,
        started_at,
        run_id,
        events,
    }))
}

/// The bundle named on the command line: `--pki DIR`, or the PEM flags; `None` without either.
fn user_bundle(args: &RunArgs) -> anyhow::Result<Option<Bundle>> {
    let mut bundle = match (&args.pki, &args.ca_cert) {
        (Some(dir), _) => Bundle::from_dir(dir).context("--pki")?,
        (None, Some(ca)) => Bundle::Files {
            paths: PkiPaths {
                ca_cert: ca.clone(),
                ca_key: args.ca_key.clone(),
                client_cert: args
                    .client_cert
                    .clone()
                    .ok_or_else(|| anyhow!("--client-cert is required with --ca-cert"))?,
                client_key: args
                    .client_key
                    .clone()
                    .ok_or_else(|| anyhow!("--client-key is required with --ca-cert"))?,
                server_ca: None,
            },
            dir: None,
        },
        (None, None) => return Ok(None),
    };
    if let (Some(server_ca), Bundle::Files { paths, .. }) = (&args.server_ca, &mut bundle) {
        paths.server_ca = Some(server_ca.clone());
    }
    Ok(Some(bundle))
}

/// `--pki DIR`, or (none given) a fresh bundle for `namespace` generated in memory, never
/// written to disk; `run` names the run in the bundle's origin.
fn bundle_or_generated(args: &RunArgs, namespace: &str, run: &str) -> anyhow::Result<Bundle> {
    Ok(match user_bundle(args)? {
        Some(bundle) => bundle,
        None => Bundle::Generated {
            bundle: pki::generate(&pki::InitOptions {
                namespace: namespace.to_owned(),
                ..Default::default()
            })?,
            origin: format!("<{run}: generated in memory>"),
        },
    })
}

/// The user's material, loaded and checked before anything is probed.
fn material(bundle: &Bundle) -> anyhow::Result<ProbePki> {
    Ok(bundle.probe_material(time::OffsetDateTime::now_utc())?)
}

/// `--target container`: the image, the bundle (`--pki DIR`, or one generated in memory) whose two
/// Secret manifests become the container's files, and the engine's preflight.
async fn plan_container(args: &RunArgs) -> anyhow::Result<Target> {
    use argocd_mtls_verify::container::{self, ContainerPlan};
    let image = args
        .container
        .image
        .clone()
        .ok_or_else(|| anyhow!("--image IMAGE is required with --target container"))?;
    container::pinned(&image)?;
    if args.ca_cert.is_some() {
        bail!(
            "--target container mounts a bundle's Secrets into the container: use --pki DIR (from `pki init`) instead of --ca-cert/--client-cert/--client-key"
        );
    }
    let bundle = bundle_or_generated(args, "default", "container run")?;
    let material = material(&bundle)?;
    // The bundle's two Secrets, as `--provision` would write them into a cluster.
    let secrets = Provisioning::from_bundle(
        &bundle,
        "default",
        argocd_mtls_verify::kubernetes::provision::Profile::Seed,
        false,
    )?
    .secrets;
    let files = container::secret_files(&secrets);
    let engine = container::preflight()
        .await
        .context("--target container preflight")?;
    Ok(Target::Container {
        plan: ContainerPlan {
            image,
            network: args.container.container_network.clone(),
            files,
            grpc_info_log: args.kube.grpc_log_info,
            ready_within: Duration::from_secs(args.kube.rollout_timeout.clamp(1, 120)),
        },
        material,
        engine,
    })
}

async fn plan_endpoint(args: &RunArgs) -> anyhow::Result<Target> {
    let addr_text = args
        .addr
        .clone()
        .ok_or_else(|| anyhow!("--addr HOST:PORT is required with --target endpoint"))?;
    let addr = resolve(&addr_text).await?;
    if addr.port() == 0 {
        bail!("--addr `{addr_text}`: port 0 is no port a server listens on");
    }
    let bundle = user_bundle(args)?.ok_or_else(|| {
        anyhow!(
            "give the client material: --pki DIR (from `pki init`), or --ca-cert, --client-cert and --client-key"
        )
    })?;
    let material = material(&bundle)?;
    let server_name = args.server_name.clone().unwrap_or_else(|| {
        addr_text
            .rsplit_once(':')
            .map(|(h, _)| h.trim_matches(['[', ']']).to_owned())
            .unwrap_or(addr_text.clone())
    });
    valid_server_name(&server_name)?;
    let health = args
        .health_url
        .as_deref()
        .map(parse_health_url)
        .transpose()
        .map_err(|e| anyhow!(e))?;
    if let Some(log) = &args.log_file
        && !log.is_file()
    {
        bail!("--log-file {}: no such file", log.display());
    }
    let endpoint = Endpoint {
        relays: vec![],
        label: addr_text.clone(),
        addr,
        server_name,
        protocol: args.protocol.into(),
        health,
        logs: args.log_file.clone().map(LogSource::File),
    };
    Ok(Target::Endpoint { endpoint, material })
}

async fn plan_kube(
    args: &RunArgs,
    manifest: Option<ManifestSource>,
    run_id: &str,
) -> anyhow::Result<KubePlan> {
    let ns = &args.kube.namespace;
    let (profile, grpc) = (args.kube.profile.into(), args.kube.grpc_log_info);
    let limits = Limits {
        rollout: Duration::from_secs(args.kube.rollout_timeout.max(1)),
        download: argocd_mtls_verify::kubernetes::manifest::DownloadLimits {
            connect: Duration::from_secs(args.kube.download_connect_timeout),
            total: Duration::from_secs(args.kube.download_timeout),
        },
    };
    let toolchain = if args.target == TargetKind::Kind {
        Some(kind::preflight().await.context("--target kind preflight")?)
    } else {
        None
    };
    let (material, provisioning) = if manifest.is_some() {
        // A run that installs provisions the cluster from a bundle: `--pki DIR`, or a fresh one
        // generated in memory for the namespace (never written to disk).
        if args.ca_cert.is_some() {
            bail!(
                "a run that installs provisions the cluster from a bundle: use --pki DIR (from `pki init --namespace {ns}`) instead of --ca-cert/--client-cert/--client-key"
            );
        }
        let bundle = bundle_or_generated(args, ns, "kind run")?;
        (
            Some(material(&bundle)?),
            Some(Provisioning::from_bundle(&bundle, ns, profile, grpc)?),
        )
    } else {
        let bundle = user_bundle(args)?;
        let material = bundle.as_ref().map(material).transpose()?;
        let provisioning = match (&bundle, args.kube.provision) {
            (Some(bundle @ Bundle::Files { dir: Some(_), .. }), true) => {
                Some(Provisioning::from_bundle(bundle, ns, profile, grpc)?)
            }
            _ => None,
        };
        (material, provisioning)
    };
    let how = match (toolchain, manifest) {
        (Some(toolchain), Some(manifest)) => KubeHow::Kind(KindPlan {
            cluster_name: args
                .kube
                .cluster_name
                .clone()
                .unwrap_or_else(|| kind::cluster_name_for_run(run_id)),
            reuse: args.kube.reuse_cluster,
            ha: args.kube.ha,
            manifest,
            preload_images: args.kube.preload_images,
            node_image: args.kube.node_image.clone(),
            config: args
                .kube
                .kind_config
                .as_ref()
                .map(|path| {
                    argocd_mtls_verify::fsio::read_regular_text(path)
                        .map(|text| (text, path.clone()))
                        .with_context(|| format!("--kind-config {}", path.display()))
                })
                .transpose()?,
            toolchain,
        }),
        (_, install) => KubeHow::Existing {
            kubeconfig: args.kube.kubeconfig.clone(),
            context: args.kube.context.clone(),
            install,
        },
    };
    Ok(KubePlan {
        target: if args.target == TargetKind::Kind {
            "kind"
        } else {
            "cluster"
        },
        namespace: ns.clone(),
        material,
        provisioning,
        limits,
        keep_cluster: args.kube.keep_cluster,
        how,
        connect: args.kube.connect.into(),
        in_cluster: args.kube.in_cluster.then(|| in_cluster_plan(args)),
    })
}

/// `--in-cluster`: the image, and what the probe pod's run takes from this command line (the
/// selection and the timing, so it judges what this run judges).
fn in_cluster_plan(args: &RunArgs) -> argocd_mtls_verify::runner::kube::InClusterPlan {
    let out = &args.output;
    let mut run_args = vec![
        "--timeout-ms".to_owned(),
        out.timeout_ms.to_string(),
        "--concurrency".to_owned(),
        out.concurrency.to_string(),
    ];
    if let Some(ms) = out.silence_ms {
        run_args.extend(["--silence-ms".to_owned(), ms.to_string()]);
    }
    if out.exact {
        run_args.push("--exact".to_owned());
    }
    if out.partial {
        run_args.push("--partial".to_owned());
    }
    for skip in &out.skip {
        run_args.extend(["--skip".to_owned(), skip.clone()]);
    }
    if !out.filters.is_empty() {
        run_args.push("--".to_owned());
        run_args.extend(out.filters.iter().cloned());
    }
    argocd_mtls_verify::runner::kube::InClusterPlan {
        image: args.kube.probe_image.clone(),
        run_args,
        limit: Duration::from_secs(args.kube.rollout_timeout.max(1)),
        attempt_timeout: Duration::from_millis(out.timeout_ms.max(1)),
    }
}

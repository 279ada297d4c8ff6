//! What `run`, `demo` and `list` do: resolve inputs into endpoints and probe material, hand them to
//! the runner, print, and write the report. All errors name the flag or file at fault.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use argocd_mtls_verify::checks::ProbeSettings;
use argocd_mtls_verify::endpoint::{Endpoint, LogSource, parse_health_url};
use argocd_mtls_verify::kubernetes::kind;
use argocd_mtls_verify::kubernetes::provision::Provisioning;
use argocd_mtls_verify::pki::{self, PkiPaths, ProbePki};
use argocd_mtls_verify::reference;
use argocd_mtls_verify::report::progress::ConsoleProgress;
use argocd_mtls_verify::report::{self, Formats, Report};
use argocd_mtls_verify::runner::events::Events;
use argocd_mtls_verify::runner::kube::{KindPlan, KubeRun, Limits};
use argocd_mtls_verify::runner::{self, Selection};
use argocd_mtls_verify::suite::Suite;

use crate::cli::{DemoArgs, DiffArgs, ListArgs, OutputArgs, RunArgs, TargetKind};

/// The run's events, shown as progress lines on stderr.
fn console_events() -> Events {
    Events::to(vec![Box::new(ConsoleProgress)])
}

fn settings(out: &OutputArgs) -> anyhow::Result<ProbeSettings> {
    if out.timeout_ms == 0 || out.concurrency == 0 {
        bail!("--timeout-ms and --concurrency must be at least 1");
    }
    Ok(ProbeSettings {
        timeout: Duration::from_millis(out.timeout_ms),
        silence: out.silence_ms.map(Duration::from_millis),
        concurrency: out.concurrency,
    })
}

/// What the user narrowed on purpose, for the report.
fn scope(out: &OutputArgs) -> report::Scope {
    let mut filters = out.filters.clone();
    filters.extend(out.skip.iter().map(|s| format!("--skip {s}")));
    if out.exact && !out.filters.is_empty() {
        filters.push("--exact".into());
    }
    report::Scope {
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

fn load_suites(names: &[String]) -> anyhow::Result<Vec<Suite>> {
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

/// Runs the selected checks against the endpoints, prints, writes the report; returns the exit code.
async fn run_and_report(
    target: &str,
    endpoints: Vec<Endpoint>,
    material: &ProbePki,
    suites: &[Suite],
    out: &OutputArgs,
    events: Events,
    started_at: time::OffsetDateTime,
) -> anyhow::Result<ExitCode> {
    let formats = Formats::parse(&out.format).map_err(|e| anyhow!(e))?;
    let settings = settings(out)?;
    let checks = runner::select(suites, &selection(out));
    if checks.is_empty() {
        bail!(
            "no check matches the filters {:?}; `--list` shows the ids",
            out.filters
        );
    }
    let probing = events.start("probe");
    let executed = tokio::select! {
        r = runner::execute(&endpoints, material, &checks, &settings, &events) => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    events.finish("probe", probing);
    let incomplete = executed.is_none();
    let executed = executed.unwrap_or_default();
    if incomplete {
        events.problem("interrupted: writing a partial report marked incomplete");
    }
    let finished = Finished {
        run_id: report::new_run_id(started_at),
        target,
        started_at,
        subject: runner::subject(&endpoints, executed.argocd_version),
        certificates: material
            .certificate_facts()
            .into_iter()
            .chain(executed.server_certificates)
            .collect(),
        results: executed.results,
        stopped: incomplete.then(|| "interrupted (Ctrl-C)".to_owned()),
    };
    finished.write(&events, out, formats)
}

/// A run's outcome, ready to be written.
struct Finished<'a> {
    run_id: String,
    target: &'a str,
    started_at: time::OffsetDateTime,
    subject: report::Subject,
    certificates: Vec<argocd_mtls_verify::x509::CertFacts>,
    results: Vec<report::CheckResult>,
    /// Why the run stopped early; makes it incomplete.
    stopped: Option<String>,
}

impl Finished<'_> {
    /// Builds the report (timing its own phase), writes it, prints the summary; returns the exit code.
    fn write(
        self,
        events: &Events,
        out: &OutputArgs,
        formats: Formats,
    ) -> anyhow::Result<ExitCode> {
        let report_start = Instant::now();
        let mut phases = events.phases();
        phases.push(report::Phase {
            name: "report".into(),
            ms: 0.0,
        });
        let mut run = runner::run_info(
            self.run_id,
            self.target,
            self.started_at,
            phases,
            self.stopped.is_some(),
        );
        run.stopped = self.stopped;
        run.scope = scope(out);
        let mut report = Report::new(run, self.subject, self.certificates, self.results);
        if let Some(p) = report.run.phases.last_mut() {
            p.ms = report_start.elapsed().as_secs_f64() * 1000.0;
        }
        let dir = report::write(&report, &out.report_dir, formats).with_context(|| {
            format!(
                "--report-dir {}: cannot write the report",
                out.report_dir.display()
            )
        })?;
        report::console::print(&format!(
            "{}report: {}\n",
            report.to_console(),
            dir.display()
        ));
        Ok(ExitCode::from(report.summary.exit_code()))
    }
}

fn pki_paths(args: &RunArgs) -> anyhow::Result<PkiPaths> {
    let mut paths = match (&args.pki, &args.ca_cert) {
        (Some(dir), _) => PkiPaths::from_dir(dir).context("--pki")?,
        (None, Some(ca)) => PkiPaths {
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
        (None, None) => bail!(
            "give the client material: --pki DIR (from `pki init`), or --ca-cert, --client-cert and --client-key"
        ),
    };
    if args.server_ca.is_some() {
        paths.server_ca = args.server_ca.clone();
    }
    Ok(paths)
}

/// The user's bundle, loaded and checked before anything is probed: bad input exits 2 naming the
/// file, never shows up as a verdict on the server.
fn load_bundle(paths: &PkiPaths) -> anyhow::Result<ProbePki> {
    let material = ProbePki::load(paths)?;
    material.check_usable(time::OffsetDateTime::now_utc())?;
    Ok(material)
}

/// `run`.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    match args.target {
        TargetKind::Endpoint => run_endpoint(args).await,
        TargetKind::Kind | TargetKind::Cluster => run_kube(args).await,
    }
}

fn suite_names(args: &RunArgs) -> Vec<String> {
    if !args.suite.is_empty() {
        return args.suite.clone();
    }
    match args.target {
        TargetKind::Endpoint => vec!["endpoint".into()],
        _ => vec!["endpoint".into(), "kubernetes".into()],
    }
}

/// Probe material and the Secrets to provision when the run installs (kind, cluster --install):
/// from `--pki DIR`, or a fresh in-memory bundle for the namespace (never written to disk).
fn kind_material(args: &RunArgs) -> anyhow::Result<(ProbePki, Provisioning)> {
    let ns = &args.kube.namespace;
    let (profile, grpc) = (args.kube.profile.into(), args.kube.grpc_log_info);
    if args.ca_cert.is_some() {
        bail!(
            "a run that installs provisions the cluster from a bundle: use --pki DIR (from `pki init --namespace {ns}`) instead of --ca-cert/--client-cert/--client-key"
        );
    }
    match &args.pki {
        Some(dir) => {
            let material = load_bundle(&pki_paths(args)?)?;
            let provisioning = Provisioning::from_dir(dir, ns, profile, grpc)?;
            Ok((material, provisioning))
        }
        None => {
            let bundle = pki::generate(&pki::InitOptions {
                namespace: ns.clone(),
                ..Default::default()
            })?;
            let material =
                ProbePki::from_generated(&bundle, Path::new("<kind run: generated in memory>"))?;
            let provisioning = Provisioning::from_bundle(
                |name| bundle.file(name).map(<[u8]>::to_vec),
                "generated bundle",
                ns,
                profile,
                grpc,
            )?;
            Ok((material, provisioning))
        }
    }
}

/// `run --target kind` and `run --target cluster`.
async fn run_kube(args: RunArgs) -> anyhow::Result<ExitCode> {
    let started_at = time::OffsetDateTime::now_utc();
    let target = if args.target == TargetKind::Kind {
        "kind"
    } else {
        "cluster"
    };
    let installs = args.target == TargetKind::Kind || args.kube.install;
    if args.kube.install && args.target != TargetKind::Cluster {
        bail!("--install belongs to --target cluster (--target kind always installs)");
    }
    // Cheap refusals first: an unsupported version needs no Docker to be refused.
    let source = if installs {
        Some(argocd_mtls_verify::kubernetes::manifest::gate(
            &args.kube.argocd_version,
            args.kube.ha,
            args.kube.install_manifest.as_deref(),
        )?)
    } else {
        None
    };
    let suites = load_suites(&suite_names(&args))?;
    let checks = runner::select(&suites, &selection(&args.output));
    if args.output.list {
        runner::print_list(&checks);
        return Ok(ExitCode::SUCCESS);
    }
    if checks.is_empty() {
        bail!(
            "no check matches the filters {:?}; `--list` shows the ids",
            args.output.filters
        );
    }
    let formats = Formats::parse(&args.output.format).map_err(|e| anyhow!(e))?;
    let settings = settings(&args.output)?;
    let limits = Limits {
        rollout: Duration::from_secs(args.kube.rollout_timeout.max(1)),
        download: Duration::from_secs(120),
    };
    let run_id = report::new_run_id(started_at);
    let mut run = KubeRun::new(&args.kube.namespace, console_events());
    let outcome = match source {
        Some(manifest) if args.target == TargetKind::Cluster => {
            let (material, provisioning) = kind_material(&args)?;
            run.material = Some(material);
            let (client, label) =
                argocd_mtls_verify::kubernetes::connect::connect(args.kube.context.as_deref())
                    .await?;
            tokio::select! {
                r = run.cluster(client, &label, Some(&manifest), Some(&provisioning), &checks, &settings, &limits) => Some(r),
                _ = tokio::signal::ctrl_c() => None,
            }
        }
        Some(manifest) => {
            let toolchain = kind::preflight().await.context("--target kind preflight")?;
            let (material, provisioning) = kind_material(&args)?;
            run.material = Some(material);
            let plan = KindPlan {
                cluster_name: args
                    .kube
                    .cluster_name
                    .clone()
                    .unwrap_or_else(|| kind::cluster_name_for_run(&run_id)),
                reuse: args.kube.reuse_cluster,
                ha: args.kube.ha,
                manifest,
                preload_images: args.kube.preload_images,
                toolchain,
            };
            tokio::select! {
                r = run.kind(&plan, &provisioning, &checks, &settings, &limits) => Some(r),
                _ = tokio::signal::ctrl_c() => None,
            }
        }
        None => {
            if args.pki.is_some() || args.ca_cert.is_some() {
                run.material = Some(load_bundle(&pki_paths(&args)?)?);
            }
            let provisioning = match (&args.pki, args.kube.provision) {
                (Some(dir), true) => Some(Provisioning::from_dir(
                    dir,
                    &args.kube.namespace,
                    args.kube.profile.into(),
                    args.kube.grpc_log_info,
                )?),
                _ => None,
            };
            let (client, label) =
                argocd_mtls_verify::kubernetes::connect::connect(args.kube.context.as_deref())
                    .await?;
            tokio::select! {
                r = run.cluster(client, &label, None, provisioning.as_ref(), &checks, &settings, &limits) => Some(r),
                _ = tokio::signal::ctrl_c() => None,
            }
        }
    };
    let stopped = match outcome {
        None => Some("interrupted (Ctrl-C)".to_owned()),
        Some(Err(e)) => {
            run.events.problem(&format!("error: {e:#}"));
            Some(format!("{e:#}"))
        }
        Some(Ok(())) => None,
    };
    if stopped.is_some() {
        run.events.problem(
            "the run stopped early: cleaning up, then writing a partial report marked incomplete",
        );
    }
    run.teardown(args.kube.keep_cluster, stopped.is_some())
        .await;
    run.facts.run_cluster_name = run.cluster.as_ref().map(|c| c.name.clone());
    let kubernetes = serde_json::to_value(&run.facts).unwrap_or_default();
    let subject = report::Subject {
        addresses: run.addresses.clone(),
        server_name: run.server_name.clone(),
        protocol: "grpc".into(),
        argocd_version_unknown: runner::version_unknown(run.argocd_version.is_some(), None),
        argocd_version: run.argocd_version.clone(),
        kubernetes: Some(kubernetes),
    };
    let certificates = run
        .material
        .as_ref()
        .map(ProbePki::certificate_facts)
        .unwrap_or_default()
        .into_iter()
        .chain(std::mem::take(&mut run.server_certificates))
        .collect();
    let finished = Finished {
        run_id,
        target,
        started_at,
        subject,
        certificates,
        results: std::mem::take(&mut run.results),
        stopped,
    };
    finished.write(&run.events, &args.output, formats)
}

async fn run_endpoint(args: RunArgs) -> anyhow::Result<ExitCode> {
    let started_at = time::OffsetDateTime::now_utc();
    let events = console_events();
    let setup = Instant::now();
    let suites = load_suites(&suite_names(&args))?;
    if args.output.list {
        runner::print_list(&runner::select(&suites, &selection(&args.output)));
        return Ok(ExitCode::SUCCESS);
    }
    let addr_text = args
        .addr
        .clone()
        .ok_or_else(|| anyhow!("--addr HOST:PORT is required with --target endpoint"))?;
    let addr = resolve(&addr_text).await?;
    let material = load_bundle(&pki_paths(&args)?)?;
    let server_name = args.server_name.clone().unwrap_or_else(|| {
        addr_text
            .rsplit_once(':')
            .map(|(h, _)| h.trim_matches(['[', ']']).to_owned())
            .unwrap_or(addr_text.clone())
    });
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
    events.finish("setup", setup);
    run_and_report(
        "endpoint",
        vec![endpoint],
        &material,
        &suites,
        &args.output,
        events,
        started_at,
    )
    .await
}

/// `demo`.
pub async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started_at = time::OffsetDateTime::now_utc();
    let events = console_events();
    let setup = Instant::now();
    let suites = load_suites(&["endpoint".to_owned()])?;
    if args.output.list {
        runner::print_list(&runner::select(&suites, &selection(&args.output)));
        return Ok(ExitCode::SUCCESS);
    }
    events.note("generating a fresh PKI and starting the reference repo-server on 127.0.0.1 ...");
    let bundle = pki::generate(&pki::InitOptions::default())?;
    let material = ProbePki::from_generated(&bundle, Path::new("<demo: in memory>"))?;
    let server = reference::start(reference::ReferenceConfig::from_bundle(&bundle)?).await?;
    let endpoint = server.endpoint(format!("reference@{}", server.grpc_addr));
    events.note(&format!(
        "reference repo-server: gRPC {} , health http://{}",
        server.grpc_addr,
        server
            .health_addr
            .map(|a| a.to_string())
            .unwrap_or_default()
    ));
    events.finish("setup", setup);
    run_and_report(
        "demo",
        vec![endpoint],
        &material,
        &suites,
        &args.output,
        events,
        started_at,
    )
    .await
}

/// `list`.
pub fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let names: Vec<String> = match args.suite {
        Some(s) => vec![s],
        None => argocd_mtls_verify::suite::BUILTIN
            .iter()
            .map(|(n, _)| (*n).to_owned())
            .collect(),
    };
    let mut out = String::new();
    for suite in load_suites(&names)? {
        out.push_str(&format!("suite `{}`: {}\n", suite.name, suite.title));
        for check in suite.checks() {
            let advisory = if check.case.severity == argocd_mtls_verify::suite::Severity::Advisory {
                " [advisory]"
            } else {
                ""
            };
            out.push_str(&format!(
                "  {:<44} {}{advisory}\n",
                check.id, check.case.title
            ));
            if !check.case.controls.is_empty() {
                out.push_str(&format!(
                    "  {:<44}   controls: {}\n",
                    "",
                    check.case.controls.join(", ")
                ));
            }
        }
    }
    report::console::print(&out);
    Ok(ExitCode::SUCCESS)
}

/// `diff`.
pub fn diff(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let old = Report::read(&args.old).map_err(|e| anyhow!("OLD {e}"))?;
    let new = Report::read(&args.new).map_err(|e| anyhow!("NEW {e}"))?;
    let diff = report::diff::compare(&old, &new);
    if args.json {
        let json = serde_json::to_string_pretty(&diff).context("serializing the comparison")?;
        report::console::print(&format!("{json}\n"));
    } else {
        report::console::print(&report::diff::render_text(&diff));
    }
    Ok(ExitCode::from(u8::from(!diff.is_empty())))
}

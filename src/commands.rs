//! What `run`, `demo` and `list` do: resolve inputs into endpoints and probe material, hand them to
//! the runner, print, and write the report. All errors name the flag or file at fault.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use argocd_mtls_verify::checks::ProbeSettings;
use argocd_mtls_verify::pki::{self, PkiPaths, ProbePki};
use argocd_mtls_verify::reference;
use argocd_mtls_verify::report::{self, Formats, Report};
use argocd_mtls_verify::runner::{self, PhaseClock, Selection};
use argocd_mtls_verify::suite::Suite;
use argocd_mtls_verify::target::{Endpoint, LogSource, kind, parse_health_url, versions};

use crate::cli::{DemoArgs, ListArgs, OutputArgs, RunArgs, TargetKind};

fn settings(out: &OutputArgs) -> anyhow::Result<ProbeSettings> {
    if out.timeout_ms == 0 || out.concurrency == 0 {
        bail!("--timeout-ms and --concurrency must be at least 1");
    }
    Ok(ProbeSettings {
        timeout: Duration::from_millis(out.timeout_ms),
        grace: Duration::from_millis(out.grace_ms),
        concurrency: out.concurrency,
    })
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
    mut clock: PhaseClock,
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
    let probing = Instant::now();
    let executed = tokio::select! {
        r = runner::execute(&endpoints, material, &checks, &settings, true) => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    clock.record("probe", probing);
    let incomplete = executed.is_none();
    let (results, argocd_version) = executed.unwrap_or_default();
    if incomplete {
        eprintln!("interrupted: writing a partial report marked incomplete");
    } else {
        runner::print_results(&results, endpoints.len() > 1);
    }
    let report_start = Instant::now();
    let mut phases = clock.into_phases();
    phases.push(report::Phase {
        name: "report".into(),
        ms: 0.0,
    });
    let run = runner::run_info(
        report::new_run_id(started_at),
        target,
        started_at,
        phases,
        incomplete,
    );
    let mut report = Report::new(
        run,
        runner::subject(&endpoints, argocd_version),
        material.certificate_facts(),
        results,
    );
    if let Some(p) = report.run.phases.last_mut() {
        p.ms = report_start.elapsed().as_secs_f64() * 1000.0;
    }
    let dir = report::write(&report, &out.report_dir, formats).with_context(|| {
        format!(
            "--report-dir {}: cannot write the report",
            out.report_dir.display()
        )
    })?;
    runner::print_summary(&report, Some(&dir));
    Ok(ExitCode::from(report.summary.exit_code()))
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

/// `run`.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    match args.target {
        TargetKind::Endpoint => {}
        TargetKind::Kind => {
            // Cheap refusals first: an unsupported version needs no Docker to be refused.
            let file = if args.kube.ha {
                "manifests/ha/install.yaml"
            } else {
                "manifests/install.yaml"
            };
            if args.kube.install_manifest.is_none() {
                versions::pinned(&args.kube.argocd_version, file)?;
            } else {
                versions::require_mtls_support(&args.kube.argocd_version)?;
            }
            let tools = kind::preflight().context("--target kind preflight")?;
            bail!(
                "found {} and {}, but deploying Argo CD into kind is not implemented in this build yet; \
                 deploy it yourself and use --target endpoint with a port-forward \
                 (kubectl -n {} port-forward svc/argocd-repo-server 8081 8084)",
                tools.kind,
                tools.runtime,
                args.kube.namespace
            );
        }
        TargetKind::Cluster => bail!(
            "--target cluster is not implemented in this build yet; use --target endpoint with a port-forward \
             (kubectl -n {} port-forward svc/argocd-repo-server 8081 8084)",
            args.kube.namespace
        ),
    }
    let started_at = time::OffsetDateTime::now_utc();
    let mut clock = PhaseClock::default();
    let setup = Instant::now();
    let suites = load_suites(&args.suite)?;
    if args.output.list {
        runner::print_list(&runner::select(&suites, &selection(&args.output)));
        return Ok(ExitCode::SUCCESS);
    }
    let addr_text = args
        .addr
        .clone()
        .ok_or_else(|| anyhow!("--addr HOST:PORT is required with --target endpoint"))?;
    let addr = resolve(&addr_text).await?;
    let material = ProbePki::load(&pki_paths(&args)?)?;
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
        label: addr_text.clone(),
        addr,
        server_name,
        protocol: args.protocol,
        health,
        logs: args.log_file.clone().map(LogSource::File),
    };
    clock.record("setup", setup);
    run_and_report(
        "endpoint",
        vec![endpoint],
        &material,
        &suites,
        &args.output,
        clock,
        started_at,
    )
    .await
}

/// `demo`.
pub async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started_at = time::OffsetDateTime::now_utc();
    let mut clock = PhaseClock::default();
    let setup = Instant::now();
    let suites = load_suites(&["endpoint".to_owned()])?;
    if args.output.list {
        runner::print_list(&runner::select(&suites, &selection(&args.output)));
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("generating a fresh PKI and starting the reference repo-server on 127.0.0.1 ...");
    let bundle = pki::generate(&pki::InitOptions::default())?;
    let material = ProbePki::from_generated(&bundle, Path::new("<demo: in memory>"))?;
    let server = reference::start(reference::ReferenceConfig::from_bundle(&bundle)?).await?;
    let endpoint = server.endpoint(format!("reference@{}", server.grpc_addr));
    eprintln!(
        "reference repo-server: gRPC {} , health http://{}",
        server.grpc_addr,
        server
            .health_addr
            .map(|a| a.to_string())
            .unwrap_or_default()
    );
    clock.record("setup", setup);
    run_and_report(
        "demo",
        vec![endpoint],
        &material,
        &suites,
        &args.output,
        clock,
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
    for suite in load_suites(&names)? {
        println!("suite `{}`: {}", suite.name, suite.title);
        for check in suite.checks() {
            let advisory = if check.case.severity == argocd_mtls_verify::suite::Severity::Advisory {
                " [advisory]"
            } else {
                ""
            };
            println!("  {:<44} {}{advisory}", check.id, check.case.title);
            if !check.case.controls.is_empty() {
                println!(
                    "  {:<44}   controls: {}",
                    "",
                    check.case.controls.join(", ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

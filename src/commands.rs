//! What `run`, `demo`, `list` and `diff` do. `run` and `demo` resolve the command line into a
//! [`Plan`] first ([`crate::plan`]), then execute it here and write its report.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};

use argocd_mtls_verify::checks::ProbeSettings;
use argocd_mtls_verify::endpoint::Endpoint;
use argocd_mtls_verify::pki::{self, ProbePki};
use argocd_mtls_verify::reference;
use argocd_mtls_verify::report::events::Events;
use argocd_mtls_verify::report::{self, Report};
use argocd_mtls_verify::runner;
use argocd_mtls_verify::runner::kube::KubeRun;
use argocd_mtls_verify::suite::Check;

use crate::cli::{DemoArgs, DiffArgs, ListArgs, RunArgs};
use crate::plan::{
    KubeHow, KubePlan, Output, Plan, Target, checks_or_list, console_events, load_suites, output,
    plan_run,
};

/// `run`: plan, then execute.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    match plan_run(&args).await? {
        Some(plan) => execute(plan).await,
        None => Ok(ExitCode::SUCCESS),
    }
}

/// `demo`: plan, then execute.
pub async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started_at = time::OffsetDateTime::now_utc();
    let suites = load_suites(&["endpoint".to_owned()])?;
    let Some(checks) = checks_or_list(&suites, &args.output)? else {
        return Ok(ExitCode::SUCCESS);
    };
    let (output, settings) = output(&args.output)?;
    execute(Plan {
        target: Target::Demo,
        checks,
        settings,
        output,
        started_at,
        run_id: report::new_run_id(started_at),
        events: console_events(),
    })
    .await
}

/// Runs a plan and writes its report; the exit code is the report's.
async fn execute(plan: Plan) -> anyhow::Result<ExitCode> {
    let Plan {
        target,
        checks,
        settings,
        output,
        started_at,
        run_id,
        events,
    } = plan;
    // The reference server (demo) must outlive the probes.
    let mut _reference = None;
    let mut container = None;
    let (name, endpoint, material) = match target {
        Target::Endpoint { endpoint, material } => ("endpoint", endpoint, material),
        Target::Demo => {
            let setup = Instant::now();
            events.note(
                "generating a fresh PKI and starting the reference repo-server on 127.0.0.1 ...",
            );
            let bundle = pki::generate(&pki::InitOptions::default())?;
            let material = ProbePki::from_generated(&bundle, Path::new("<demo: in memory>"))?;
            let server =
                reference::start(reference::ReferenceConfig::from_bundle(&bundle)?).await?;
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
            _reference = Some(server);
            ("demo", endpoint, material)
        }
        Target::Container {
            plan,
            material,
            engine,
        } => {
            let setup = events.phase("setup");
            events.note(&format!(
                "starting {} as the repo-server on {engine} ...",
                plan.image
            ));
            let started = tokio::select! {
                biased;
                which = crate::stop::requested() => {
                    events.problem(&format!("{which} while the container started: nothing was probed"));
                    return Ok(ExitCode::from(2));
                }
                r = argocd_mtls_verify::container::start(&plan) => r?,
            };
            let running = std::sync::Arc::new(started);
            events.note(&format!(
                "container {} : gRPC {} , health http://{}",
                running.short_id(),
                running.grpc,
                running.health
            ));
            let endpoint = Endpoint {
                relays: vec![],
                label: format!("{}@{}", plan.image, running.grpc),
                addr: running.grpc,
                server_name: pki::SERVER_COMMON_NAME.to_owned(),
                protocol: argocd_mtls_verify::endpoint::Protocol::Grpc,
                health: Some(running.health.to_string()),
                logs: Some(argocd_mtls_verify::endpoint::LogSource::Remote(
                    running.log(),
                )),
            };
            drop(setup);
            container = Some(running);
            ("container", endpoint, material)
        }
        Target::Kube(kube) => {
            let stamp = (started_at, run_id);
            return execute_kube(*kube, &checks, &settings, &output, stamp, events).await;
        }
    };
    let probe = Probe {
        target: name,
        checks: &checks,
        settings: &settings,
        started_at,
        run_id,
    };
    let code = probe
        .run_and_report(vec![endpoint], &material, &output, events.clone())
        .await;
    if let Some(running) = container {
        // The log's reader holds the other reference until the report is written.
        match std::sync::Arc::try_unwrap(running) {
            Ok(running) => match running.remove().await {
                Ok(()) => events.note("removed the repo-server container"),
                Err(e) => events.problem(&format!("could not remove the container: {e}")),
            },
            Err(_) => events.problem("the container is still in use: it is removed on exit"),
        }
    }
    code
}

/// Probing endpoints, the same for `--target endpoint` and `demo`.
struct Probe<'a> {
    target: &'static str,
    checks: &'a [Check],
    settings: &'a ProbeSettings,
    started_at: time::OffsetDateTime,
    run_id: String,
}

impl Probe<'_> {
    async fn run_and_report(
        self,
        endpoints: Vec<Endpoint>,
        material: &ProbePki,
        output: &Output,
        events: Events,
    ) -> anyhow::Result<ExitCode> {
        let probing = events.phase("probe");
        let executed = tokio::select! {
            biased;
            which = crate::stop::requested() => Err(which),
            r = runner::execute(&endpoints, material, self.checks, self.settings, &events) => Ok(r),
        };
        drop(probing);
        let stopped = executed.as_ref().err().map(|which| which.to_string());
        let executed = executed.unwrap_or_default();
        if let Some(which) = &stopped {
            events.problem(&format!(
                "{which}: writing a partial report marked incomplete"
            ));
        }
        let finished = Finished {
            run_id: self.run_id,
            target: self.target,
            started_at: self.started_at,
            subject: runner::subject(&endpoints, executed.argocd_version),
            certificates: material
                .certificate_facts()
                .into_iter()
                .chain(executed.server_certificates)
                .collect(),
            results: executed.results,
            stopped,
            selected: self.checks,
        };
        finished.write(&events, output, None).await
    }
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
    /// The checks the run set out to judge: those without a result are listed as not judged.
    selected: &'a [Check],
}

impl Finished<'_> {
    /// Builds the report (timing its own phase), writes it, prints the summary; returns the exit
    /// code. `client`: the cluster a `--policy-report` goes to.
    async fn write(
        self,
        events: &Events,
        output: &Output,
        client: Option<kube::Client>,
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
        run.scope = output.scope.clone();
        run.seed = Some(output.seed);
        if run.incomplete {
            run.not_judged = runner::not_judged(self.selected, &self.results);
        }
        let mut report = Report::new(run, self.subject, self.certificates, self.results);
        if let Some(p) = report.run.phases.last_mut() {
            p.ms = report_start.elapsed().as_secs_f64() * 1000.0;
        }
        // The steps after the checks come before the report files, so that every file says what
        // the exit code says: a step that fails is recorded in the report, not only on stderr.
        if let Some(plan) = &output.policy_report {
            match &client {
                Some(client) => {
                    write_policy_reports(client, plan, &mut report, events).await;
                }
                None => {
                    let why = "the run stopped before it reached the cluster, so there is nowhere to write the report".to_owned();
                    events.problem(&format!("--policy-report: {why}"));
                    report.record_failed_step(report::AfterStep::PolicyReport, why);
                }
            }
        }
        if let Some(url) = &output.pushgateway {
            let kube = report.subject.kubernetes.as_ref();
            let pushed = argocd_mtls_verify::pushgateway::push(
                url,
                kube.map(|k| k.cluster.as_str()).unwrap_or_default(),
                kube.map(|k| k.namespace.as_str()).unwrap_or_default(),
                report::metrics::render(&report),
                std::time::Duration::from_secs(30),
            )
            .await;
            match pushed {
                Ok(()) => events.note("metrics pushed to the Pushgateway"),
                Err(e) => {
                    let why = e.to_string();
                    events.problem(&why);
                    report.record_failed_step(report::AfterStep::Pushgateway, why);
                }
            }
        }
        if let Some(path) = &output.metrics_file {
            match argocd_mtls_verify::fsio::write_atomic(
                path,
                report::metrics::render(&report).as_bytes(),
                0o644,
            ) {
                Ok(()) => events.note(&format!("metrics: {}", path.display())),
                Err(e) => {
                    let why = format!("{}: cannot write it: {e}", path.display());
                    events.problem(&format!("--metrics-file {why}"));
                    report.record_failed_step(report::AfterStep::MetricsFile, why);
                }
            }
        }
        let dir = report::write(&report, &output.dir, output.formats).with_context(|| {
            format!(
                "--report-dir {}: cannot write the report",
                output.dir.display()
            )
        })?;
        report::console::print(&format!(
            "{}report: {}\n",
            report.to_console(),
            dir.display()
        ));
        if output.print_report {
            use argocd_mtls_verify::kubernetes::incluster::{REPORT_BEGIN, REPORT_END, framed};
            let json = serde_json::to_string(&report).context("report.json")?;
            report::console::print(&framed(REPORT_BEGIN, &json, REPORT_END));
        }
        Ok(ExitCode::from(report.summary.exit_code()))
    }
}

/// `--policy-report`: each report API asked for (or the first the cluster serves) written into
/// the namespace; each one that cannot be is a failed step of the run.
async fn write_policy_reports(
    client: &kube::Client,
    plan: &crate::plan::PolicyReportPlan,
    report: &mut Report,
    events: &Events,
) {
    use argocd_mtls_verify::kubernetes::cluster::{
        ClusterError, apply_policy_report, served_report_apis,
    };
    let namespace = &plan.namespace;
    let apis = match &plan.apis {
        Some(apis) => Ok(apis.clone()),
        None => match served_report_apis(client).await {
            Ok(served) => served
                .first()
                .map(|api| vec![*api])
                .ok_or(ClusterError::NoReportApi {
                    namespace: namespace.clone(),
                }),
            Err(e) => Err(e),
        },
    };
    let outcomes = match apis {
        Ok(apis) => {
            let mut outcomes = Vec::new();
            for api in apis {
                let object = report::policyreport::render(report, namespace, api);
                let applied = apply_policy_report(client, namespace, api, &object).await;
                outcomes.push(applied.map(|()| api));
            }
            outcomes
        }
        Err(e) => vec![Err(e)],
    };
    for outcome in outcomes {
        match outcome {
            Ok(api) => events.note(&format!(
                "wrote {}.{}/{} in namespace {namespace}",
                api.plural(),
                api.group(),
                report::policyreport::NAME
            )),
            Err(e) => {
                let why = e.to_string();
                events.problem(&format!("--policy-report: {why}"));
                report.record_failed_step(report::AfterStep::PolicyReport, why);
            }
        }
    }
}

/// `run --target kind` and `run --target cluster`: the phases, then clean-up, then the report
/// (marked incomplete when the run stopped early).
async fn execute_kube(
    plan: KubePlan,
    checks: &[Check],
    settings: &ProbeSettings,
    output: &Output,
    (started_at, run_id): (time::OffsetDateTime, String),
    events: Events,
) -> anyhow::Result<ExitCode> {
    let mut run = KubeRun::new(&plan.namespace, events);
    run.material = plan.material;
    run.connect = plan.connect;
    run.in_cluster = plan.in_cluster;
    let limits = &plan.limits;
    let outcome = match &plan.how {
        KubeHow::Kind(kind_plan) => {
            let provisioning = plan
                .provisioning
                .as_ref()
                .context("a kind run provisions the Secrets")?;
            tokio::select! {
                biased;
                which = crate::stop::requested() => Err(which),
                r = run.kind(kind_plan, provisioning, checks, settings, limits) => Ok(r),
            }
        }
        KubeHow::Existing {
            kubeconfig,
            context,
            install,
        } => {
            let (client, label) = argocd_mtls_verify::kubernetes::connect::connect(
                kubeconfig.as_deref(),
                context.as_deref(),
            )
            .await?;
            tokio::select! {
                biased;
                which = crate::stop::requested() => Err(which),
                r = run.cluster(client, &label, install.as_ref(), plan.provisioning.as_ref(), checks, settings, limits) => Ok(r),
            }
        }
    };
    let stopped = match outcome {
        Err(which) => Some(which.to_owned()),
        Ok(Err(e)) => {
            let e = anyhow::Error::from(e);
            let text = crate::error_text(&e);
            run.events.problem(&format!("error: {text}"));
            Some(text)
        }
        Ok(Ok(())) => None,
    };
    if stopped.is_some() {
        run.events.problem(
            "the run stopped early: cleaning up, then writing a partial report marked incomplete",
        );
    }
    run.teardown(plan.keep_cluster, stopped.is_some()).await;
    run.facts.run_cluster_name = run.cluster.as_ref().map(|c| c.name.clone());
    let subject = report::Subject {
        addresses: run.addresses.clone(),
        server_name: run.server_name.clone(),
        protocol: "grpc".into(),
        argocd_version_unknown: runner::version_unknown(run.argocd_version.is_some(), None),
        argocd_version: run.argocd_version.clone(),
        kubernetes: Some(run.facts.clone()),
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
        target: plan.target,
        started_at,
        subject,
        certificates,
        results: std::mem::take(&mut run.results),
        stopped,
        selected: checks,
    };
    let client = run.client().cloned();
    finished.write(&run.events, output, client).await
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

/// `aggregate`: the fleet report of many runs' reports.
pub fn aggregate(args: crate::cli::AggregateArgs) -> anyhow::Result<ExitCode> {
    use argocd_mtls_verify::report::fleet;
    let fleet = fleet::aggregate(&args.dirs).context("reading the reports")?;
    if fleet.reports_read == 0 {
        bail!(
            "no report.json under {}: give the folders the runs wrote their reports into",
            args.dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let dir = fleet::write(&fleet, &args.out).with_context(|| {
        format!(
            "--out {}: cannot write the fleet report",
            args.out.display()
        )
    })?;
    let mut said = format!(
        "{} reports read, {} counted, {} superseded, {} rejected; {} clusters\n",
        fleet.reports_read,
        fleet.reports_counted,
        fleet.superseded.len(),
        fleet.rejected.len(),
        fleet.clusters.len()
    );
    for c in &fleet.clusters {
        said.push_str(&format!(
            "  {:<5} {} {}{}\n",
            c.verdict.to_string().to_uppercase(),
            c.cluster,
            c.namespace,
            if c.failing.is_empty() {
                String::new()
            } else {
                format!(" ({} failing)", c.failing.len())
            }
        ));
    }
    for r in &fleet.rejected {
        said.push_str(&format!("  REJECTED {}: {}\n", r.path.display(), r.why));
    }
    said.push_str(&format!("fleet report: {}\n", dir.display()));
    report::console::print(&said);
    Ok(ExitCode::from(fleet.exit_code()))
}

/// The hidden `intrude`: what an intruder pod of `run --in-cluster` runs.
pub async fn intrude(args: crate::cli::IntrudeArgs) -> anyhow::Result<ExitCode> {
    use argocd_mtls_verify::kubernetes::incluster::{self, INTRUDER_BEGIN, INTRUDER_END};
    let targets = args
        .targets
        .iter()
        .map(|t| {
            t.split_once('=')
                .map(|(label, addr)| (label.to_owned(), addr.to_owned()))
                .ok_or_else(|| anyhow!("--to `{t}`: expected LABEL=HOST:PORT"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let timeout = std::time::Duration::from_millis(args.timeout_ms.max(1));
    let attempts = incluster::intrude(&targets, &args.server_name, timeout).await;
    let json = serde_json::to_string(&attempts).context("the attempts as JSON")?;
    report::console::print(&incluster::framed(INTRUDER_BEGIN, &json, INTRUDER_END));
    Ok(ExitCode::SUCCESS)
}

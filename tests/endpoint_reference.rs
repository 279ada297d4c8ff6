//! Every endpoint check, proven both ways against our own rustls/tonic repo-server double: it
//! passes against the correct server, and against each server that is wrong in exactly one
//! respect, exactly the checks concerned with that respect fail.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{ADMITTED_WHEN_VERIFICATION_IS_IGNORED, NEGATIVES, both};

use argocd_mtls_verify::checks::ProbeSettings;
use argocd_mtls_verify::endpoint::{Endpoint, LogSource, Protocol};
use argocd_mtls_verify::reference::{self, ClientAuthPolicy, ReferenceConfig};
use argocd_mtls_verify::report::{CheckResult, Report, Summary, Verdict};
use argocd_mtls_verify::runner::{self, Selection};
use argocd_mtls_verify::suite::{Severity, Suite};

async fn run_against(
    config: ReferenceConfig,
    pki: &argocd_mtls_verify::pki::ProbePki,
) -> Vec<CheckResult> {
    let server = reference::start(config).await.unwrap();
    let endpoint = server.endpoint("reference");
    let suites = vec![Suite::load("endpoint").unwrap()];
    let checks = runner::select(&suites, &Selection::default());
    let settings = ProbeSettings {
        timeout: Duration::from_secs(3),
        ..ProbeSettings::default()
    };
    runner::execute(
        &[endpoint],
        pki,
        &checks,
        &settings,
        &argocd_mtls_verify::report::events::Events::silent(),
    )
    .await
    .results
}

fn failing_required(results: &[CheckResult]) -> BTreeSet<String> {
    results
        .iter()
        .filter(|r| r.verdict == Verdict::Fail && r.severity == Severity::Required)
        .map(|r| r.id.clone())
        .collect()
}

struct Row {
    name: &'static str,
    policy: ClientAuthPolicy,
    plaintext: bool,
    trust_health_cert: bool,
    /// Exactly these required checks fail.
    fails: Vec<String>,
    exit: u8,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_wrong_server_fails_exactly_its_checks() {
    let fx = common::fixture();
    let mut no_auth: Vec<String> = both(&NEGATIVES);
    no_auth.extend([
        "grpc/no-cert-rpc-denied".into(),
        "log/mtls-enabled".into(),
        "log/health-cert-generated".into(),
    ]);
    let mut optional: Vec<String> = both(&["handshake/no-client-cert"]);
    optional.push("grpc/no-cert-rpc-denied".into());
    let rows = vec![
        Row {
            name: "correct RequireAndVerify",
            policy: ClientAuthPolicy::RequireAndVerify,
            trust_health_cert: true,
            plaintext: false,
            fails: vec![],
            exit: 0,
        },
        Row {
            name: "no client auth (mTLS silently off)",
            policy: ClientAuthPolicy::NoClientAuth,
            trust_health_cert: true,
            plaintext: false,
            fails: no_auth,
            exit: 1,
        },
        Row {
            name: "optional client auth",
            policy: ClientAuthPolicy::Optional,
            trust_health_cert: true,
            plaintext: false,
            fails: optional,
            exit: 1,
        },
        Row {
            name: "certificates requested, verification errors ignored",
            policy: ClientAuthPolicy::IgnoreVerifyErrors,
            plaintext: false,
            trust_health_cert: true,
            fails: both(&ADMITTED_WHEN_VERIFICATION_IS_IGNORED),
            exit: 1,
        },
        Row {
            name: "expiry ignored",
            policy: ClientAuthPolicy::IgnoreExpiry,
            plaintext: false,
            trust_health_cert: true,
            fails: both(&[
                "handshake/expired-client-cert",
                "handshake/not-yet-valid-client-cert",
            ]),
            exit: 1,
        },
        Row {
            name: "plaintext gRPC",
            policy: ClientAuthPolicy::RequireAndVerify,
            plaintext: true,
            trust_health_cert: true,
            // No TLS session: every check judged on one has no verdict (its log is empty: no
            // evidence either way for the log checks too). An HTTP/2 answer in plaintext is a
            // finding of its own, and fails the run.
            fails: vec!["transport/plaintext-h2c".into()],
            exit: 1,
        },
        Row {
            name: "liveness self-dial refused (health-check certificate not in the pool)",
            policy: ClientAuthPolicy::RequireAndVerify,
            plaintext: false,
            trust_health_cert: false,
            fails: vec!["probe/liveness-full".into()],
            exit: 1,
        },
    ];
    for row in rows {
        let mut config = ReferenceConfig::from_bundle(&fx.bundle).unwrap();
        config.policy = row.policy;
        config.plaintext = row.plaintext;
        config.trust_health_cert = row.trust_health_cert;
        let results = run_against(config, &fx.pki).await;
        let got = failing_required(&results);
        let want: BTreeSet<String> = row.fails.iter().cloned().collect();
        let detail: Vec<String> = results
            .iter()
            .map(|r| format!("{:?} {} — {}", r.verdict, r.id, r.reason))
            .collect();
        assert_eq!(
            got,
            want,
            "{}: failing required checks differ\n{}",
            row.name,
            detail.join("\n")
        );
        assert_eq!(
            Summary::of(&results, false, false).exit_code(),
            row.exit,
            "{}: exit code\n{}",
            row.name,
            detail.join("\n")
        );
        if row.exit == 0 {
            assert!(
                results.iter().all(|r| r.verdict == Verdict::Pass),
                "{}: every check passes\n{}",
                row.name,
                detail.join("\n")
            );
        }
    }
}

/// The advisory CA-as-client case is recorded as failing against a server that accepts it, without
/// failing the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advisory_failures_are_reported_but_do_not_fail_the_run() {
    let fx = common::fixture();
    let mut config = ReferenceConfig::from_bundle(&fx.bundle).unwrap();
    config.policy = ClientAuthPolicy::IgnoreVerifyErrors;
    let results = run_against(config, &fx.pki).await;
    let advisory: Vec<&CheckResult> = results
        .iter()
        .filter(|r| r.id.starts_with("handshake/ca-cert-as-client-cert/"))
        .collect();
    assert_eq!(advisory.len(), 2);
    for r in advisory {
        assert_eq!(
            (r.verdict, r.severity),
            (Verdict::Fail, Severity::Advisory),
            "{}",
            r.reason
        );
    }
    let summary = Summary::of(&results, false, false);
    assert_eq!(summary.advisories, 2);
}

/// A server that answers a release newer than every pinned one: grpc/version says so and names the
/// release whose knowledge the run used; one that answers a pinned release says that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answered_version_is_placed_among_the_pinned_releases() {
    let fx = common::fixture();
    for (answers, says) in [
        (
            "v3.7.0+0123abc",
            "newer than every release this tool pins: the run used what it knows of v3.6.2",
        ),
        ("v3.5.8+0123abc", "v3.5.8 is a release this tool pins"),
    ] {
        let mut config = ReferenceConfig::from_bundle(&fx.bundle).unwrap();
        config.version.version = answers.into();
        let results = run_against(config, &fx.pki).await;
        let version = results.iter().find(|r| r.id == "grpc/version").unwrap();
        assert_eq!(version.verdict, Verdict::Pass, "{}", version.reason);
        assert!(
            version
                .reason
                .contains(&format!("build `{answers}`; {says}")),
            "{}",
            version.reason
        );
    }
}

/// Against a correct server, the JSON report validates against the published schema, and every
/// control is supported, or partial for its stated gaps alone (Argo CD checks no revocation and
/// authorizes nothing; uniqueness and client verification need a cluster run), or not applicable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_validates_against_the_schema() {
    let fx = common::fixture();
    let results = run_against(ReferenceConfig::from_bundle(&fx.bundle).unwrap(), &fx.pki).await;
    let now = time::OffsetDateTime::now_utc();
    let run = runner::run_info("test-run".into(), "endpoint", now, vec![], false);
    let report = Report::new(run, Default::default(), fx.pki.certificate_facts(), results);
    let schema: serde_json::Value =
        serde_json::from_str(argocd_mtls_verify::report::SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let instance: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "schema violations:\n{}",
        errors.join("\n")
    );
    use argocd_mtls_verify::report::ControlStatus::*;
    for c in &report.controls {
        let only_gaps = match c.status {
            Supported => c.gaps_holding.is_empty(),
            Partial => !c.gaps_holding.is_empty() && !c.basis.contains("did not pass"),
            NotApplicable => c.control.not_applicable.is_some() && c.checks.is_empty(),
            Contradicted | NotAssessed => false,
        };
        assert!(only_gaps, "{}: {} ({})", c.control.id, c.status, c.basis);
    }
    let status = |id: &str| {
        let c = report.controls.iter().find(|c| c.control.id == id).unwrap();
        (c.status, c.gaps_holding.join("; "))
    };
    let (s, gaps) = status("NIST-800-53-IA-5(2)");
    assert!(s == Partial && gaps.starts_with("no-revocation"), "{gaps}");
    let (s, gaps) = status("SOC2-CC6.1");
    assert!(
        s == Partial && gaps.starts_with("no-authorization"),
        "{gaps}"
    );
    assert_eq!(status("NIST-800-53-SC-8(1)").0, Supported);
    assert_eq!(status("PCI-DSS-4.0-4.2.1").0, NotApplicable);
    // The schema is not vacuous: a report with a bad verdict is rejected.
    let mut broken = instance.clone();
    broken["checks"][0]["verdict"] = "maybe".into();
    assert!(!validator.is_valid(&broken));
}

/// The log checks read both logrus formats, record the CN actually printed, and fail naming the
/// missing line; the health checks fail against a health port that answers 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_formats_and_unhealthy_health_port() {
    use argocd_mtls_verify::checks;
    let fx = common::fixture();
    let server = reference::start(ReferenceConfig::from_bundle(&fx.bundle).unwrap())
        .await
        .unwrap();
    let text = vec![
        r#"time="2026-11-23T10:00:00Z" level=info msg="ArgoCD Repository Server is starting" version=v3.5.1"#.to_owned(),
        r#"time="2026-11-23T10:00:00Z" level=info msg="mTLS enabled for repo-server: requiring client certificates from CA=/app/config/reposerver/mtls/client-ca.crt""#.to_owned(),
        r#"time="2026-11-23T10:00:00Z" level=info msg="Generated ephemeral health-check client certificate (CN=)""#.to_owned(),
    ];
    let json_lines = vec![
        r#"{"level":"info","msg":"mTLS enabled for repo-server: requiring client certificates from CA=/etc/ca.pem","time":"2026-11-23T10:00:00Z"}"#.to_owned(),
        r#"{"level":"info","msg":"Generated ephemeral health-check client certificate (CN=argocd-repo-server-healthcheck)","time":"2026-11-23T10:00:00Z"}"#.to_owned(),
        r#"{"level":"warning","msg":"[core] grpc: Server.Serve failed to complete security handshake from \"10.0.0.9:4242\": remote error: tls: unknown certificate authority","time":"2026-11-23T10:00:01Z"}"#.to_owned(),
    ];
    let unrelated = vec![
        r#"time="2026-11-23T10:00:00Z" level=info msg="ArgoCD Repository Server is starting""#
            .to_owned(),
    ];
    // A health port that is up but unhealthy.
    let sick = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sick_addr = sick.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for conn in sick.incoming().take(4).flatten() {
            let mut conn = conn;
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    let suites = vec![Suite::load("endpoint").unwrap()];
    let selection = Selection {
        filters: vec!["log/".into(), "probe/".into()],
        ..Selection::default()
    };
    let checks = runner::select(&suites, &selection);
    /// (log lines, health port, [(check id, verdict, text the reason must contain)])
    type LogCase<'a> = (
        Vec<String>,
        Option<String>,
        Vec<(&'a str, Verdict, &'a str)>,
    );
    let cases: Vec<LogCase> = vec![
        (
            text,
            server.health_addr.map(|a| a.to_string()),
            vec![
                (
                    "log/mtls-enabled",
                    Verdict::Pass,
                    "/app/config/reposerver/mtls/client-ca.crt",
                ),
                (
                    "log/health-cert-generated",
                    Verdict::Pass,
                    "the value after the prefix is empty",
                ),
                ("probe/readiness", Verdict::Pass, "200"),
                ("probe/liveness-full", Verdict::Pass, "200"),
            ],
        ),
        (
            json_lines,
            Some(sick_addr.to_string()),
            vec![
                ("log/mtls-enabled", Verdict::Pass, "/etc/ca.pem"),
                (
                    "log/health-cert-generated",
                    Verdict::Pass,
                    "argocd-repo-server-healthcheck",
                ),
                ("probe/readiness", Verdict::Fail, "503"),
                ("probe/liveness-full", Verdict::Fail, "503"),
            ],
        ),
        (
            unrelated,
            None,
            vec![
                (
                    "log/mtls-enabled",
                    Verdict::Fail,
                    "no log line starting `mTLS enabled",
                ),
                (
                    "log/health-cert-generated",
                    Verdict::Fail,
                    "no log line starting `Generated ephemeral",
                ),
                ("probe/readiness", Verdict::Skip, "--health-url"),
                ("probe/liveness-full", Verdict::Skip, "--health-url"),
            ],
        ),
        // An empty capture is no evidence: no verdict, never the FAIL of a silent server.
        (
            vec![],
            None,
            vec![
                ("log/mtls-enabled", Verdict::Error, "test log is empty"),
                (
                    "log/health-cert-generated",
                    Verdict::Error,
                    "test log is empty",
                ),
                (
                    "log/rejections-logged",
                    Verdict::Error,
                    "no evidence either way",
                ),
            ],
        ),
    ];
    for (lines, health, want) in cases {
        let endpoint = Endpoint {
            relays: vec![],
            label: "logs".into(),
            addr: server.grpc_addr,
            server_name: "localhost".into(),
            protocol: Protocol::Grpc,
            health,
            logs: Some(LogSource::Lines {
                origin: "test log".into(),
                lines,
            }),
        };
        let obs = checks::observe(
            &endpoint,
            &fx.pki,
            &checks,
            &ProbeSettings::default(),
            &|_, _| {},
        )
        .await;
        for (id, verdict, needle) in want {
            let check = checks.iter().find(|c| c.id == id).unwrap();
            let r = checks::evaluate(check, &obs, &endpoint);
            assert_eq!(r.verdict, verdict, "{id}: {}", r.reason);
            assert!(
                r.reason.contains(needle),
                "{id}: `{needle}` not in `{}`",
                r.reason
            );
        }
    }
}

/// The port-forward relay the Kubernetes targets use is transparent: the full endpoint suite run
/// through it (gRPC and health ports each behind their own relay) reaches exactly the verdicts of
/// a direct run, against a correct server and against one without client auth. A relay to a port
/// where nothing listens counts its failures instead of hiding them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_relay_is_transparent_and_counts_failures() {
    use argocd_mtls_verify::kubernetes::forward;
    let fx = common::fixture();
    let suites = vec![Suite::load("endpoint").unwrap()];
    let checks = runner::select(&suites, &Selection::default());
    let settings = ProbeSettings {
        timeout: Duration::from_secs(3),
        ..ProbeSettings::default()
    };
    for policy in [
        ClientAuthPolicy::RequireAndVerify,
        ClientAuthPolicy::NoClientAuth,
    ] {
        let mut config = ReferenceConfig::from_bundle(&fx.bundle).unwrap();
        config.policy = policy;
        let server = reference::start(config).await.unwrap();
        let direct = server.endpoint("direct");
        let grpc = forward::to_tcp(direct.addr).await.unwrap();
        let health = forward::to_tcp(direct.health.clone().unwrap().parse().unwrap())
            .await
            .unwrap();
        let relayed = Endpoint {
            label: "relayed".into(),
            addr: grpc.addr,
            health: Some(health.addr.to_string()),
            relays: vec![
                std::sync::Arc::new(grpc.health()),
                std::sync::Arc::new(health.health()),
            ],
            ..direct.clone()
        };
        let verdicts = |endpoint: Endpoint| {
            let (pki, checks, settings) = (&fx.pki, &checks, &settings);
            async move {
                runner::execute(
                    &[endpoint],
                    pki,
                    checks,
                    settings,
                    &argocd_mtls_verify::report::events::Events::silent(),
                )
                .await
                .results
                .into_iter()
                .map(|r| (r.id, r.verdict))
                .collect::<Vec<_>>()
            }
        };
        let through_relay = verdicts(relayed).await;
        assert_eq!(through_relay, verdicts(direct).await, "{policy:?}");
        assert!(through_relay.iter().any(|(_, v)| *v == Verdict::Pass));
        assert_eq!(grpc.failures().0, 0);
        assert_eq!(health.failures().0, 0);
    }

    let closed = forward::to_tcp(([127, 0, 0, 1], common::free_port()).into())
        .await
        .unwrap();
    for _ in 0..3 {
        let _ = tokio::net::TcpStream::connect(closed.addr).await;
    }
    // The failures are recorded by the relay's tasks; wait for them, bounded.
    for _ in 0..100 {
        if closed.failures().0 == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (count, first) = closed.failures();
    assert_eq!(count, 3);
    assert!(first.unwrap().contains("connect 127.0.0.1:"));
}

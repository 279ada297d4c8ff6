//! Metrics that reach Prometheus: `--pushgateway` against Debian's real `prometheus-pushgateway`
//! (started here on loopback), read back by Prometheus's own `promtool`, and the alerting rules of
//! deploy/monitoring/ checked and exercised by `promtool check rules` / `promtool test rules`
//! (Debian's `prometheus` package). .ci/run installs both; a missing one fails, never skips.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::prometheus::{Pushgateway, debian_tool};

fn promtool(args: &[&str], cwd: &Path) -> (bool, String) {
    let out = Command::new(debian_tool("promtool", "prometheus"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `demo FILTERS... --pushgateway URL` (the embedded reference repo-server: a real run, offline).
fn demo_pushing(url: &str, filters: &[&str], extra: &[&str]) -> common::Run {
    let mut cmd = Command::new(common::bin());
    cmd.arg("demo")
        .args(filters)
        .args(["--pushgateway", url])
        .args(extra);
    common::run_with_reports(cmd)
}

#[test]
fn each_run_replaces_its_group_on_a_real_pushgateway_and_promtool_reads_it_back() {
    let gateway = Pushgateway::start("127.0.0.1");
    // The password of the URL is sent as basic auth (this Pushgateway does not ask for it) and
    // appears nowhere in what the run says or writes.
    let with_auth = gateway.url.replace("http://", "http://ci:s3cret-pw@");
    let first = demo_pushing(&with_auth, &["handshake/no-client-cert"], &[]);
    first.assert_exit(0);
    assert!(!first.said.contains("s3cret-pw"), "{}", first.said);
    let metrics = gateway.metrics();
    let group = r#"cluster="",instance="",job="argocd-mtls-verify",namespace="""#;
    assert!(
        metrics.contains(&format!(
            "argocd_mtls_verify_run_verdict{{{group},verdict=\"pass\"}} 1"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("check=\"handshake/no-client-cert/tls1.3\""),
        "{metrics}"
    );
    assert!(metrics.contains("push_time_seconds{"), "{metrics}");
    // Prometheus's own parser reads what the Pushgateway now serves.
    let scratch = common::tempdir();
    std::fs::write(scratch.path().join("pushed.prom"), &metrics).unwrap();
    let out = Command::new(debian_tool("promtool", "prometheus"))
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(scratch.path().join("pushed.prom")).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The next run replaces the group: the checks it did not select are gone from it.
    let second = demo_pushing(&gateway.url, &["handshake/expired-client-cert"], &[]);
    second.assert_exit(0);
    let metrics = gateway.metrics();
    assert!(
        !metrics.contains("check=\"handshake/no-client-cert/tls1.3\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("check=\"handshake/expired-client-cert/tls1.3\""),
        "{metrics}"
    );
    assert_eq!(
        metrics.matches("argocd_mtls_verify_run_exit_code{").count(),
        1,
        "one group: {metrics}"
    );
}

#[test]
fn a_push_that_fails_leaves_the_run_without_a_verdict_in_every_file() {
    let scratch = common::tempdir();
    let metrics = scratch.path().join("m.prom");
    // A port nobody listens on, with a password that must not be printed.
    let url = format!("http://ci:s3cret-pw@127.0.0.1:{}", common::free_port());
    let run = demo_pushing(
        &url,
        &["handshake/no-client-cert"],
        &["--metrics-file", metrics.to_str().unwrap()],
    );
    run.assert_exit(2);
    assert!(!run.said.contains("s3cret-pw"), "{}", run.said);
    let step = &run.report["run"]["failed_steps"][0];
    assert_eq!(step["step"], "pushgateway", "{}", run.report["run"]);
    let why = step["error"].as_str().unwrap();
    assert!(why.starts_with("http://127.0.0.1:"), "{why}");
    assert!(
        run.said.contains("FAILED AFTER THE CHECKS: --pushgateway"),
        "{}",
        run.said
    );
    let written = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        written.contains("step=\"--pushgateway\"} 1"),
        "the metrics file records the failed push: {written}"
    );
    for file in ["report.json", "report.md", "junit.xml"] {
        let text = std::fs::read_to_string(common::report_dir(&run).join(file)).unwrap();
        assert!(text.contains("--pushgateway"), "{file}: {text}");
        assert!(!text.contains("s3cret-pw"), "{file} holds the password");
    }
}

/// deploy/monitoring/ and its tests, copied to `dir` with `mutate` applied to the rules.
fn rules_copy(dir: &Path, mutate: impl Fn(&str) -> String) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = std::fs::read_to_string(root.join("deploy/monitoring/alerts.yaml")).unwrap();
    std::fs::create_dir_all(dir.join("deploy/monitoring")).unwrap();
    std::fs::create_dir_all(dir.join("tests/monitoring")).unwrap();
    std::fs::write(dir.join("deploy/monitoring/alerts.yaml"), mutate(&rules)).unwrap();
    std::fs::copy(
        root.join("tests/monitoring/alerts.test.yaml"),
        dir.join("tests/monitoring/alerts.test.yaml"),
    )
    .unwrap();
    dir.join("tests/monitoring")
}

#[test]
fn the_alerting_rules_pass_promtool_and_their_tests_catch_each_wrong_rule() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (ok, said) = promtool(&["check", "rules", "deploy/monitoring/alerts.yaml"], root);
    assert!(ok, "{said}");
    assert!(said.contains("SUCCESS: 5 rules found"), "{said}");
    let (ok, said) = promtool(
        &["test", "rules", "alerts.test.yaml"],
        &root.join("tests/monitoring"),
    );
    assert!(ok, "{said}");
    // Each rule wrong in one respect: the tests fail.
    let mutations: [(&str, &str, &str); 6] = [
        (
            "failed: the wrong verdict",
            "verdict=\"fail\"})",
            "verdict=\"error\"})",
        ),
        ("missing: 27 h", "> 26 * 3600", "> 27 * 3600"),
        ("never ran: 24 h", "for: 26h", "for: 24h"),
        ("expiring: 20 days", "< 30 * 86400", "< 20 * 86400"),
        ("twice: a shorter window", "[25h]", "[23h]"),
        (
            "twice: without the second run",
            "changes(argocd_mtls_verify_run_timestamp_seconds[25h]) >= 1",
            "changes(argocd_mtls_verify_run_timestamp_seconds[25h]) >= 0",
        ),
    ];
    for (what, from, to) in mutations {
        let scratch = common::tempdir();
        let tests = rules_copy(scratch.path(), |rules| {
            assert!(rules.contains(from), "{what}: {from} is not in the rules");
            rules.replace(from, to)
        });
        let (ok, said) = promtool(&["test", "rules", "alerts.test.yaml"], &tests);
        assert!(!ok, "{what}: promtool test rules still passed:\n{said}");
        assert!(said.contains("FAILED"), "{what}: {said}");
    }
    // The unchanged copy passes: the failures above are the mutations'.
    let scratch = common::tempdir();
    let tests = rules_copy(scratch.path(), str::to_owned);
    let (ok, said) = promtool(&["test", "rules", "alerts.test.yaml"], &tests);
    assert!(ok, "{said}");
}

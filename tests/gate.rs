//! The CI gate: the exit-code rule of README, row by row, and every output telling the same story
//! (console, report.json, junit.xml). A CI job that reads only the exit code or only JUnit must be
//! told no more than the run proved.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use argocd_mtls_verify::pki::{self, Adversary, PkiPaths, ProbePki};
use common::rig::GoTls;
use common::{Run, pki_init, run_endpoint};

/// The status of junit.xml's `run/verdict` testcase: `success`, `failure` or `error`.
fn junit_gate(run: &Run) -> &'static str {
    let xml = std::fs::read_to_string(common::report_dir(run).join("junit.xml")).unwrap();
    let case = &xml[xml
        .find("name=\"run/verdict\"")
        .expect("run/verdict testcase")..];
    let case = &case[..case.find("</testcase>").unwrap_or(case.len())];
    if case.contains("<failure") {
        "failure"
    } else if case.contains("<error") {
        "error"
    } else {
        "success"
    }
}

/// Exit code, console verdict, report verdict and JUnit gate say the same thing.
fn assert_agree(run: &Run, code: i32, row: &str) {
    let (word, summary, junit) = match code {
        0 => ("verdict: PASS", "pass", "success"),
        1 => ("verdict: FAIL", "fail", "failure"),
        _ => ("verdict: NO VERDICT", "error", "error"),
    };
    assert_eq!(run.code, Some(code), "{row}: exit code\n{}", run.said);
    assert!(run.said.contains(word), "{row}: console\n{}", run.said);
    assert_eq!(
        run.report["summary"]["verdict"], summary,
        "{row}: report.json"
    );
    assert_eq!(junit_gate(run), junit, "{row}: junit.xml");
}

/// A copy of `bundle` whose client.crt/client.key are the adversarial identity `a`.
fn bundle_with_client(bundle: &Path, a: Adversary) -> tempfile::TempDir {
    let dir = common::tempdir();
    for f in ["ca.crt", "ca.key", "server.crt", "server.key"] {
        std::fs::copy(bundle.join(f), dir.path().join(f)).unwrap();
    }
    let material = ProbePki::load(&PkiPaths::from_dir(bundle).unwrap()).unwrap();
    let id = pki::mint(&material, a).unwrap().identity;
    common::write_cert_pem(&dir.path().join("client.crt"), &id.chain);
    std::fs::write(
        dir.path().join("client.key"),
        common::pem_block("PRIVATE KEY", id.key.secret_der()),
    )
    .unwrap();
    dir
}

#[test]
fn the_exit_code_rule_row_by_row() {
    // A full run: every check judged (the embedded reference server has a health port and a log).
    let full = common::run_cli(&["demo"]);
    assert_agree(&full, 0, "full run");
    assert_eq!(full.report["run"]["scope"]["partial"], false);

    let pki = pki_init("ecdsa-p256");
    let server = GoTls::start(pki.path(), "strict", &[]);
    let addr = server.addr();
    let name = ["--server-name", "localhost"];

    // Everything the suite needs was given... except what gotls cannot have (health port, log):
    // without --partial that is a gap in the evidence, not a pass.
    let run = run_endpoint(&addr, pki.path(), &name);
    assert_agree(&run, 2, "skipped by missing input");
    assert!(run.report["summary"]["not_judged"].as_u64().unwrap() >= 4);
    assert!(
        run.said.contains("required not judged for want of input"),
        "{}",
        run.said
    );
    assert_eq!(run.verdict("probe/readiness"), "skip");
    assert_eq!(run.check("probe/readiness")["skip_kind"], "missing-input");

    // The same, narrowed on purpose: recorded in the report, and then it may pass.
    let run = run_endpoint(&addr, pki.path(), &[name[0], name[1], "--partial"]);
    assert_agree(&run, 0, "narrowed on purpose (--partial)");
    assert_eq!(run.report["run"]["scope"]["partial"], true);
    // Skips that are the server's own policy are no gap: gRPC checks under --protocol tls-like
    // servers are not-applicable, never missing input.

    // Narrowed by filters: only those checks, recorded; nothing else is owed.
    let run = run_endpoint(
        &addr,
        pki.path(),
        &[name[0], name[1], "handshake/wrong-ca/"],
    );
    assert_agree(&run, 0, "narrowed by a filter");
    assert_eq!(
        run.report["run"]["scope"]["filters"][0],
        "handshake/wrong-ca/"
    );

    // No CA key: the cases that mint from the trusted CA are not judged.
    let no_key = common::tempdir();
    for f in ["ca.crt", "client.crt", "client.key"] {
        std::fs::copy(pki.path().join(f), no_key.path().join(f)).unwrap();
    }
    let run = run_endpoint(&addr, no_key.path(), &[name[0], name[1], "handshake/"]);
    assert_agree(&run, 2, "bundle without ca.key");
    assert!(
        run.reason("handshake/expired-client-cert/tls1.3")
            .contains("needs the CA private key")
    );
    let run = run_endpoint(
        &addr,
        no_key.path(),
        &[name[0], name[1], "handshake/", "--partial"],
    );
    assert_agree(&run, 0, "bundle without ca.key, --partial");

    // A run that judged nothing never passes, narrowed or not.
    let run = run_endpoint(&addr, pki.path(), &["--suite", "kubernetes", "--partial"]);
    assert_agree(&run, 2, "nothing judged");

    // A wrong server fails, whatever else.
    let open = GoTls::start(pki.path(), "sni-present", &[]);
    let run = run_endpoint(&open.addr(), pki.path(), &name);
    assert_agree(&run, 1, "a required check failed");
}

/// The user's own bad client certificate is named as bad input (exit 2), never blamed on the server.
#[test]
fn a_bad_bundle_is_bad_input_not_a_server_failure() {
    let pki = pki_init("ecdsa-p256");
    for (adversary, fault) in [
        (Adversary::Expired, "client certificate expired at"),
        (
            Adversary::NotYetValid,
            "client certificate is not valid before",
        ),
        (
            Adversary::ServerAuthOnly,
            "does not allow client authentication",
        ),
    ] {
        let bad = bundle_with_client(pki.path(), adversary);
        let out = Command::new(common::bin())
            .args(["run", "--addr", "127.0.0.1:9", "--pki"])
            .arg(bad.path())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{adversary:?}: {said}");
        assert!(
            said.contains("client.crt") && said.contains(fault),
            "{adversary:?}: {said}"
        );
        assert!(!said.contains("REFUSED"), "{said}");
    }
}

/// Ctrl-C in the middle of probing: a partial report, an error in every format, exit 2.
#[test]
fn an_interrupted_run_is_an_error_everywhere() {
    let pki = pki_init("ecdsa-p256");
    let hole = common::blackhole();
    let reports = common::tempdir();
    let child = Command::new(common::bin())
        .args(["run", "--addr", &hole.addr.to_string(), "--pki"])
        .arg(pki.path())
        .arg("--report-dir")
        .arg(reports.path())
        .args(["--timeout-ms", "20000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let run = common::run_from_output(out, reports);
    let dir = common::report_dir(&run);
    assert_agree(&run, 2, "interrupted");
    assert_eq!(run.report["run"]["incomplete"], true);
    assert!(run.said.contains("INCOMPLETE"), "{}", run.said);
    let xml = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(xml.contains("INCOMPLETE"), "{xml}");
}

/// Every input gets an exit code from the contract, never a panic (101).
#[test]
fn no_panics_on_huge_days_or_a_closed_pipe() {
    let dir = common::tempdir();
    let out = Command::new(common::bin())
        .args(["pki", "init", "--days", "3000000", "--out"])
        .arg(dir.path().join("b"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("--days 3000000") && said.contains("9999"),
        "{said}"
    );

    // `list | head -1` and `run ... | head -1`: the reader goes away after one line.
    let pki = pki_init("ecdsa-p256");
    let server = GoTls::start(pki.path(), "strict", &[]);
    let reports = common::tempdir();
    let server_addr = server.addr();
    let runs: [Vec<&str>; 2] = [
        vec!["list"],
        vec![
            "run",
            "--addr",
            &server_addr,
            "--server-name",
            "localhost",
            "--partial",
            "--pki",
            pki.path().to_str().unwrap(),
            "--report-dir",
            reports.path().to_str().unwrap(),
        ],
    ];
    for args in runs {
        let mut child = Command::new(common::bin())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the first line is written (`| head -0`): every write
        // the command makes meets a closed pipe.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
    // The run still wrote its report.
    assert_eq!(std::fs::read_dir(reports.path()).unwrap().count(), 1);
}

/// What an auditor asks first is in the evidence: the server certificate met, validity from/to of
/// every certificate, the tool's version, source commit, host and OS; JUnit timestamp and hostname;
/// the Argo CD build or why it is unknown; passing JUnit cases carry what was observed.
#[test]
fn the_evidence_names_what_an_auditor_asks_first() {
    let pki = pki_init("ecdsa-p256");
    let server = GoTls::start(pki.path(), "strict", &[]);
    let run = run_endpoint(
        &server.addr(),
        pki.path(),
        &["--server-name", "localhost", "--partial"],
    );
    run.assert_exit(0);
    let certs = run.report["certificates"].as_array().unwrap();
    let met = certs
        .iter()
        .find(|c| c["role"] == "server (presented)")
        .expect("the server certificate the harness met");
    assert!(met["san"].to_string().contains("DNS:localhost"));
    assert!(
        certs
            .iter()
            .all(|c| c["not_before"].is_string() && c["not_after"].is_string())
    );
    let r = &run.report["run"];
    for key in ["harness_version", "source_commit", "host", "os"] {
        assert!(!r[key].as_str().unwrap_or_default().is_empty(), "run.{key}");
    }
    let dir = common::report_dir(&run);
    let xml = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(
        xml.contains("timestamp=\"") && xml.contains("hostname=\""),
        "{xml}"
    );
    let pass = &xml[xml.find("name=\"handshake/wrong-ca/tls1.3\"").unwrap()..];
    let pass = &pass[..pass.find("</testcase>").unwrap()];
    assert!(
        pass.contains("<system-out>") && pass.contains("observed:"),
        "{pass}"
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("Valid from") && md.contains("Gate rule"),
        "{md}"
    );
    // gotls has no VersionService: the report says the build is unknown, and why.
    assert!(
        run.report["subject"]["argocd_version_unknown"]
            .as_str()
            .unwrap()
            .starts_with("unknown"),
        "{}",
        run.report["subject"]
    );
    // Internal names never reach the evidence.
    let text = run.report.to_string();
    for leak in ["PostHandshake", "Inconclusive {", "Status {", "15030300"] {
        assert!(!text.contains(leak), "`{leak}` in report.json");
    }
}

/// `diff`: a server compared with itself shows no change (volatile details masked); the same
/// address after a change of configuration shows exactly the checks that changed, in text and JSON.
#[test]
fn diff_lists_what_changed_between_two_runs() {
    let pki = pki_init("ecdsa-p256");
    let flags = ["--server-name", "localhost", "--partial"];
    let report_of = |run: &Run| common::report_dir(run).display().to_string();
    let diff = |old: &str, new: &str, json: bool| {
        let mut cmd = Command::new(common::bin());
        cmd.args(["diff", old, new]);
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };
    let strict = GoTls::start(pki.path(), "strict", &[]);
    let first = run_endpoint(&strict.addr(), pki.path(), &flags);
    let second = run_endpoint(&strict.addr(), pki.path(), &flags);
    let out = diff(&report_of(&first), &report_of(&second), false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("0 change(s)"), "{text}");

    let naive = GoTls::start(pki.path(), "issuer-name-only", &[]);
    let third = run_endpoint(&naive.addr(), pki.path(), &flags);
    let out = diff(&report_of(&first), &report_of(&third), false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("verdict  handshake/lookalike-ca/tls1.3"),
        "{text}"
    );
    assert!(text.contains("PASS -> FAIL"), "{text}");
    let out = diff(&report_of(&first), &report_of(&third), true);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let changed: Vec<&str> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["change"] == "verdict")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        changed,
        [
            "handshake/lookalike-ca/tls1.2",
            "handshake/lookalike-ca/tls1.3",
            // The forgery of the valid client names the CA as its issuer too.
            "handshake/forged-issuer-serial/tls1.2",
            "handshake/forged-issuer-serial/tls1.3",
            // A server that judges certificates itself names no CA in its CertificateRequest.
            "tls/advertised-client-cas",
        ],
        "{json}"
    );

    let out = diff("/no/such/report.json", &report_of(&first), false);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/report.json"));
}

/// README's sample report.md rows are what a run writes: the same verdict, the same observed text
/// (the sample's server name is the demo's, `localhost`).
#[test]
fn readme_sample_rows_match_a_real_report() {
    let readme = std::fs::read_to_string(common::rig::root().join("README.md")).unwrap();
    let start = readme
        .find("In report.md (rows as a run writes them")
        .expect("README sample");
    let rows: Vec<Vec<String>> = readme[start..]
        .lines()
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            l.split(" | ")
                .map(|c| c.trim_matches('|').trim().to_owned())
                .collect()
        })
        .collect();
    assert!(rows.len() >= 3, "{rows:?}");
    let run = common::run_cli(&["demo"]);
    assert_eq!(run.code, Some(0), "{}", run.said);
    let md = std::fs::read_to_string(common::report_dir(&run).join("report.md")).unwrap();
    for row in rows {
        let real = md
            .lines()
            .find(|l| l.starts_with(&format!("| {} |", row[0])))
            .unwrap_or_else(|| panic!("no row {} in report.md", row[0]));
        let real: Vec<&str> = real
            .split(" | ")
            .map(|c| c.trim_matches('|').trim())
            .collect();
        // Verdict and reason: the last two cells (a one-endpoint report has no Endpoint column).
        let last2 = |cells: &[&str]| {
            (
                cells[cells.len() - 2].to_owned(),
                cells[cells.len() - 1].to_owned(),
            )
        };
        let sample: Vec<&str> = row.iter().map(String::as_str).collect();
        assert_eq!(last2(&real), last2(&sample), "{}", row[0]);
    }
}

/// Issue 16.9: two runs against an unchanged correct server compare equal, so a gate that diffs
/// baselines trips only on a real change: the demo's reference server (its log carries
/// timestamps and Unix times), the real argocd-repo-server with its health port and log
/// (logrus JSON lines, grpc-go's dated refusal lines), and openssl s_server.
#[test]
fn unchanged_servers_compare_equal() {
    let equal = |what: &str, first: &Run, second: &Run| {
        let out = Command::new(common::bin())
            .args(["diff"])
            .arg(common::report_dir(first))
            .arg(common::report_dir(second))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{what}: {text}");
        assert!(text.contains("0 change(s)"), "{what}: {text}");
    };

    let (first, second) = (common::run_cli(&["demo"]), common::run_cli(&["demo"]));
    assert_eq!(
        (first.code, second.code),
        (Some(0), Some(0)),
        "{}",
        first.said
    );
    equal("demo", &first, &second);

    let pki = pki_init("default");
    let server = common::rig::RepoServer::start(&common::rig::RepoServerConfig {
        server_pair: Some((pki.path().join("server.crt"), pki.path().join("server.key"))),
        client_ca: Some(pki.path().join("ca.crt")),
        env: vec![("GRPC_GO_LOG_SEVERITY_LEVEL".into(), "info".into())],
        ..Default::default()
    });
    let flags = server.harness_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let first = run_endpoint(&server.addr(), pki.path(), &flags);
    let second = run_endpoint(&server.addr(), pki.path(), &flags);
    assert_eq!(
        (first.code, second.code),
        (Some(0), Some(0)),
        "{}",
        first.said
    );
    equal("the real argocd-repo-server", &first, &second);

    let fx = common::fixture();
    let s = common::s_server(
        fx.dir.path(),
        &["-CAfile", "ca.crt", "-Verify", "1", "-verify_return_error"],
    );
    let addr = format!("127.0.0.1:{}", s.port);
    let flags = ["--protocol", "tls", "--partial", "--timeout-ms", "4000"];
    let first = run_endpoint(&addr, fx.dir.path(), &flags);
    let second = run_endpoint(&addr, fx.dir.path(), &flags);
    assert_eq!(
        (first.code, second.code),
        (Some(0), Some(0)),
        "{}",
        first.said
    );
    equal("openssl s_server", &first, &second);
}

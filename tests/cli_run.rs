//! `run`, `demo` and `list` as a CI job uses them: exit codes, report files, filters, errors.
//!
//! Over 500 lines on purpose: it is the CLI contract (exit codes, files, errors) as one table-ish
//! file a CI owner can read top to bottom.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use argocd_mtls_verify::probe::{self, AcceptanceProof, Outcome, ProbeRequest, Stage, TlsVersion};
use argocd_mtls_verify::reference::{self, ReferenceConfig};

fn cli(args: &[&str]) -> Output {
    std::process::Command::new(common::bin())
        .args(args)
        .output()
        .unwrap()
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn report_dir(out: &Output) -> PathBuf {
    let text = said(out);
    PathBuf::from(
        text.lines()
            .find_map(|l| l.strip_prefix("report: "))
            .unwrap_or_else(|| panic!("no report path:\n{text}")),
    )
}

/// The report.json of the run whose output is `out`.
fn read_report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(report_dir(out).join("report.json")).unwrap()).unwrap()
}

/// The blackhole accepts TCP and never answers: nothing can be concluded, so exit 2 and every
/// probing check is `error` (inconclusive), never `pass`.
#[test]
fn blackholed_port_is_inconclusive_exit_2() {
    let fx = common::fixture();
    let hole = common::blackhole();
    let reports = common::tempdir();
    let out = cli(&[
        "run",
        "--addr",
        &hole.addr.to_string(),
        "--pki",
        fx.dir.path().to_str().unwrap(),
        "--timeout-ms",
        "300",
        "--report-dir",
        reports.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    let report: serde_json::Value = read_report(&out);
    assert_eq!(report["summary"]["verdict"], "error");
    assert_eq!(
        report["summary"]["passed"], 0,
        "nothing passes against a port that never answers"
    );
    assert_eq!(
        report["summary"]["failed"], 0,
        "and nothing is called a failure either"
    );
    for c in report["checks"].as_array().unwrap() {
        assert!(
            c["verdict"] == "error" || c["verdict"] == "skip",
            "{}: {}",
            c["id"],
            c["reason"]
        );
    }
}

/// No session, no claim: a port that does not give the valid client a TLS session (an HTTP/1.0
/// server, one that closes at once, one that never answers: real sockets on loopback) gets no
/// verdict on anything a session would show, with one reason naming what the port did; every
/// control is "not assessed"; exit 2. And the rest is not waited out (default timeouts): the
/// refusals at every door (hundreds of connections on a TLS port) are never tried, so the port
/// sees a few dozen connections at most.
#[test]
fn a_port_without_tls_is_no_verdict_with_its_reason() {
    use common::Plain;
    let fx = common::fixture();
    let rows: [(Plain, &str); 3] = [
        (
            Plain::Answer(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
            "does not speak TLS: it answered a ClientHello with an HTTP/1.x response `HTTP/1.0 400 Bad Request`",
        ),
        (
            Plain::CloseAtOnce,
            "gave the valid client no TLS session: it closed the connection on a ClientHello without sending a byte",
        ),
        (
            Plain::Silent,
            "gave the valid client no TLS session: it sent nothing in the 5000 ms after a ClientHello",
        ),
    ];
    for (what, says) in rows {
        let server = common::loopback(what);
        let run = common::run_endpoint(&server.addr.to_string(), fx.dir.path(), &[]);
        assert_eq!(run.code, Some(2), "{says}\n{}", run.said);
        let report = &run.report;
        let reason = format!("no verdict: {} {says}", server.addr);
        for c in report["checks"].as_array().unwrap() {
            let id = c["id"].as_str().unwrap();
            // Skipped: not asked for (no --health-url, no --log-file) or not applicable.
            if c["verdict"] != "skip" {
                assert_eq!(
                    (c["verdict"].as_str(), c["reason"].as_str()),
                    (Some("error"), Some(reason.as_str())),
                    "{id}"
                );
            }
        }
        for control in report["controls"].as_array().unwrap() {
            assert!(
                ["not-assessed", "not-applicable"].contains(&control["status"].as_str().unwrap()),
                "{}: {}",
                control["id"],
                control["status"]
            );
        }
        assert!(
            server.accepted() < 40,
            "{says}: {} connections: the refusals were tried on a port without TLS",
            server.accepted()
        );
    }
}

/// A refused TCP port is inconclusive too.
#[test]
fn closed_port_is_inconclusive_exit_2() {
    let fx = common::fixture();
    let reports = common::tempdir();
    let port = common::free_port();
    let out = cli(&[
        "run",
        "--addr",
        &format!("127.0.0.1:{port}"),
        "--pki",
        fx.dir.path().to_str().unwrap(),
        "--report-dir",
        reports.path().to_str().unwrap(),
        "handshake/",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
}

/// Under TLS 1.3 the client's handshake completes before the server judges the certificate; the
/// refusal is only visible on the read after it. Removing that read would turn these into
/// acceptances, and this test would fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls13_rejections_are_seen_after_the_handshake() {
    let fx = common::fixture();
    let server = reference::start(ReferenceConfig::from_bundle(&fx.bundle).unwrap())
        .await
        .unwrap();
    let wrong = argocd_mtls_verify::pki::mint(&fx.pki, argocd_mtls_verify::pki::Adversary::WrongCa)
        .unwrap()
        .identity;
    for (identity, alert) in [(None, "certificate_required"), (Some(wrong), "unknown_ca")] {
        for proof in [AcceptanceProof::H2Settings, AcceptanceProof::Tls] {
            let req = ProbeRequest {
                addr: server.grpc_addr,
                server_name: "localhost".into(),
                sni: probe::Sni::Configured,
                version: TlsVersion::Tls13,
                alpn: proof.front_alpn(),
                identity: identity.clone(),
                server_roots: fx.pki.server_ca.clone(),
                proof,
                timeout: Duration::from_secs(3),
                silence: Some(Duration::from_millis(500)),
                resume: probe::Resume::Never,
                kx_group: None,
                sig_family: None,
                framing: None,
                craft: None,
            };
            // The client side of the handshake does complete...
            let connected = probe::connect(&req, &[b"h2"]).await;
            assert!(
                connected.is_ok(),
                "TLS 1.3 client handshake completes before the server's verdict"
            );
            // ...and only the full attempt, which reads afterwards, sees the refusal.
            let o = probe::attempt(&req).await;
            assert_eq!(o.outcome, Outcome::Rejected, "{proof:?}: {}", o.detail);
            assert_eq!(o.stage, Stage::PostHandshake, "{proof:?}: {}", o.detail);
            assert_eq!(o.alert.map(|a| a.to_string()).as_deref(), Some(alert));
        }
    }
}

/// demo passes with exit 0; no file of any report contains private key material.
#[test]
fn demo_passes_and_reports_hold_no_key_material() {
    let reports = common::tempdir();
    let out = cli(&["demo", "--report-dir", reports.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let dir = report_dir(&out);
    for f in [
        "report.json",
        "report.json.sha256",
        "junit.xml",
        "report.md",
    ] {
        assert!(dir.join(f).is_file(), "{f} written");
    }
    let json = std::fs::read_to_string(dir.join("report.json")).unwrap();
    let digest = std::fs::read_to_string(dir.join("report.json.sha256")).unwrap();
    use sha2::Digest;
    assert_eq!(
        digest,
        format!(
            "{}  report.json\n",
            hex::encode(sha2::Sha256::digest(json.as_bytes()))
        )
    );
    assert!(!said(&out).contains("PRIVATE KEY"));
    assert_no_key_material(&dir, &[]);
}

/// The demo's reports are readable: report.md at most 60 KB and report.json at most 250 KB;
/// doors with the same outcome are said once (a line per door class in report.md, no door by
/// name), and every individual door is in report.json, in its class.
#[test]
fn demo_reports_say_each_door_class_once_and_fit_their_sizes() {
    let run = common::run_cli(&["demo"]);
    run.assert_exit(0);
    let dir = common::report_dir(&run);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let json = std::fs::read_to_string(dir.join("report.json")).unwrap();
    assert!(md.len() <= 60 * 1024, "report.md is {} bytes", md.len());
    assert!(
        json.len() <= 250 * 1024,
        "report.json is {} bytes",
        json.len()
    );
    // A door SNI only the certificate's names add, never in report.md, in report.json per class.
    let door = "SNI `argocd-repo-server.argocd.svc.cluster.local`, ALPN `h2`";
    assert!(
        !md.contains("argocd-repo-server.argocd.svc.cluster.local`"),
        "a door by name in report.md"
    );
    let check = run.check("handshake/wrong-ca/tls1.3");
    let classes = check["observed"]["door_classes"].as_array().unwrap();
    let doors: Vec<&str> = classes
        .iter()
        .flat_map(|c| c["doors"].as_array().unwrap())
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(doors.len(), 13, "{doors:?}");
    assert!(doors.contains(&door), "{doors:?}");
    assert!(classes.len() < doors.len(), "no door class holds two doors");
    let lines = check["evidence"].as_array().unwrap();
    assert_eq!(
        lines.len(),
        classes.len(),
        "one evidence line per door class: {lines:?}"
    );
}

/// A run with --pki: the bundle's own key bodies appear in no report file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_reports_hold_no_key_material() {
    let fx = common::fixture();
    let server = reference::start(ReferenceConfig::from_bundle(&fx.bundle).unwrap())
        .await
        .unwrap();
    let reports = common::tempdir();
    let reports_path = reports.path().to_owned();
    let addr = server.grpc_addr.to_string();
    let health = format!("http://{}", server.health_addr.unwrap());
    let dir = fx.dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        cli(&[
            "run",
            "--addr",
            &addr,
            "--server-name",
            "localhost",
            "--pki",
            dir.to_str().unwrap(),
            "--health-url",
            &health,
            // The double's log is in memory, not a file: the log checks are left out on purpose.
            "--partial",
            "--report-dir",
            reports_path.to_str().unwrap(),
        ])
    })
    .await
    .unwrap();
    let text = said(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let keys: Vec<String> = ["ca.key", "client.key", "server.key"]
        .iter()
        .map(|k| std::fs::read_to_string(fx.dir.path().join(k)).unwrap())
        .collect();
    assert_no_key_material(&report_dir(&out), &keys);
}

fn assert_no_key_material(dir: &Path, keys: &[String]) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("PRIVATE KEY"),
            "{} mentions a PEM private key",
            path.display()
        );
        for key in keys {
            for line in key
                .lines()
                .filter(|l| !l.starts_with("-----") && l.len() >= 16)
            {
                assert!(
                    !text.contains(line),
                    "{} contains key material",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn list_and_filters_select_checks_without_probing() {
    let out = cli(&["demo", "--list"]);
    let text = said(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("[endpoint] handshake/wrong-ca/tls1.3: test"),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.ends_with(": test")).count(),
        43,
        "{text}"
    );
    // The planned doors, from suites/doors.toml, with what each models.
    assert!(
        text.contains("ALPN `acme-tls/1` [explored]: a TLS-ALPN-01 challenge responder"),
        "{text}"
    );
    assert!(text.contains("server name upper-case [explored]"), "{text}");
    let reports = common::tempdir();
    let out = cli(&[
        "demo",
        "wrong-ca",
        "--report-dir",
        reports.path().to_str().unwrap(),
    ]);
    let text = said(&out);
    assert!(out.status.success(), "{text}");
    let report: serde_json::Value = read_report(&out);
    let ids: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["handshake/wrong-ca/tls1.2", "handshake/wrong-ca/tls1.3"]
    );
    let out = cli(&[
        "demo",
        "no-such-check",
        "--report-dir",
        reports.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(said(&out).contains("no check matches"), "{}", said(&out));
    // Two runs never share (or overwrite) a folder.
    let runs = std::fs::read_dir(reports.path()).unwrap().count();
    assert_eq!(runs, 1);
}

#[test]
fn run_input_errors_name_the_flag_or_file() {
    let fx = common::fixture();
    let pki = fx.dir.path().to_str().unwrap();
    let empty = common::tempdir();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["run", "--pki", pki], "--addr HOST:PORT is required"),
        (vec!["run", "--addr", "127.0.0.1:1"], "--pki DIR"),
        (
            vec!["run", "--addr", "no-port", "--pki", pki],
            "--addr `no-port`",
        ),
        (
            vec![
                "run",
                "--addr",
                "127.0.0.1:1",
                "--pki",
                empty.path().to_str().unwrap(),
            ],
            "ca.crt` is missing",
        ),
        (
            vec![
                "run",
                "--addr",
                "127.0.0.1:1",
                "--pki",
                pki,
                "--health-url",
                "https://x:1",
            ],
            "--health-url",
        ),
        (
            vec![
                "run",
                "--addr",
                "127.0.0.1:1",
                "--pki",
                pki,
                "--log-file",
                "/nonexistent.log",
            ],
            "--log-file /nonexistent.log",
        ),
        (
            vec![
                "run",
                "--addr",
                "127.0.0.1:1",
                "--pki",
                pki,
                "--suite",
                "nope",
            ],
            "unknown suite `nope`",
        ),
        (
            vec![
                "run",
                "--addr",
                "127.0.0.1:1",
                "--pki",
                pki,
                "--format",
                "pdf",
            ],
            "unknown format `pdf`",
        ),
        // Issue 16.6: input is never a verdict on the server.
        (
            vec![
                "run",
                "--addr",
                "127.0.0.1:1",
                "--pki",
                pki,
                "--server-name",
                "",
            ],
            "--server-name ``",
        ),
        (
            vec![
                "run",
                "--addr",
                "127.0.0.1:1",
                "--pki",
                pki,
                "--server-name",
                "https://argocd-repo-server:8081",
            ],
            "--server-name `https://argocd-repo-server:8081`: not a DNS name",
        ),
        (
            vec![
                "run",
                "--addr",
                "127.0.0.1:1",
                "--pki",
                pki,
                "--silence-ms",
                "0",
            ],
            "--silence-ms 0",
        ),
        (vec!["run", "--addr", "127.0.0.1:0", "--pki", pki], "port 0"),
        (
            vec![
                "run",
                "--addr",
                "127.0.0.1:1",
                "--pki",
                pki,
                "--report-dir",
                "/proc/no-report-here",
            ],
            "--report-dir /proc/no-report-here",
        ),
    ];
    for (args, needle) in cases {
        let out = cli(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", said(&out));
        assert!(
            said(&out).contains(needle),
            "{args:?}: expected `{needle}` in:\n{}",
            said(&out)
        );
    }
}

/// Issue 16.1: the bundle is checked for what it claims before anything is probed. A client
/// certificate that does not chain to the given CA, and a CA key that belongs to no CA of the
/// file (nor to an intermediate the client sends), exit 2 naming the files; nothing is probed
/// (the address is a closed port: a probe would have said "inconclusive", not this).
#[test]
fn a_bundle_that_does_not_hold_together_is_refused_before_probing() {
    let real = common::fixture();
    let other = common::fixture();
    let (r, o) = (real.dir.path(), other.dir.path());
    let path = |dir: &Path, file: &str| dir.join(file).to_str().unwrap().to_owned();
    let cases = [
        (
            vec![
                "--ca-cert".to_owned(),
                path(o, "ca.crt"),
                "--client-cert".into(),
                path(r, "client.crt"),
                "--client-key".into(),
                path(r, "client.key"),
            ],
            format!(
                "{}: the client certificate does not chain to the CA in {}",
                path(r, "client.crt"),
                path(o, "ca.crt")
            ),
        ),
        (
            vec![
                "--ca-cert".to_owned(),
                path(r, "ca.crt"),
                "--ca-key".into(),
                path(o, "ca.key"),
                "--client-cert".into(),
                path(r, "client.crt"),
                "--client-key".into(),
                path(r, "client.key"),
            ],
            format!(
                "{}: this CA key belongs to no certificate in {} and to no intermediate in {}",
                path(o, "ca.key"),
                path(r, "ca.crt"),
                path(r, "client.crt")
            ),
        ),
    ];
    for (flags, needle) in cases {
        let mut args = vec!["run", "--addr", "127.0.0.1:1"];
        args.extend(flags.iter().map(String::as_str));
        let out = cli(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", said(&out));
        assert!(
            said(&out).contains(&needle),
            "{args:?}: expected `{needle}` in:\n{}",
            said(&out)
        );
        assert!(!said(&out).contains("inconclusive"), "nothing was probed");
    }
}

#[test]
fn list_command_shows_ids_titles_and_controls() {
    let out = cli(&["list"]);
    let text = said(&out);
    assert!(out.status.success());
    assert!(
        text.contains("handshake/no-client-cert/tls1.3") && text.contains("controls: SOC2-CC6.1"),
        "{text}"
    );
    assert!(text.contains("[advisory]"), "{text}");
}

/// server/identity passes for a name the certificate carries and fails for one it does not, or
/// when the server CA given is not the one that issued the server certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_identity_fails_for_the_wrong_name_or_ca() {
    let fx = common::fixture();
    let other = common::fixture();
    let server = reference::start(ReferenceConfig::from_bundle(&fx.bundle).unwrap())
        .await
        .unwrap();
    let reports = common::tempdir();
    let other_ca = other.dir.path().join("ca.crt");
    let cases: Vec<(Vec<String>, &str, i32, &str)> = vec![
        (
            vec![
                "--server-name".into(),
                "argocd-repo-server.argocd.svc".into(),
            ],
            "pass",
            0,
            "verifies",
        ),
        (
            vec!["--server-name".into(), "wrong.example".into()],
            "fail",
            1,
            "not valid for name",
        ),
        (
            vec!["--server-ca".into(), other_ca.to_str().unwrap().into()],
            "fail",
            1,
            "was not signed by the server CA this run verifies against",
        ),
    ];
    for (extra, verdict, code, words) in cases {
        let mut args: Vec<String> = [
            "run",
            "--addr",
            &server.grpc_addr.to_string(),
            "--pki",
            fx.dir.path().to_str().unwrap(),
            "--report-dir",
            reports.path().to_str().unwrap(),
            "server/identity",
            "--exact",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.clone());
        let out = tokio::task::spawn_blocking(move || {
            cli(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await
        .unwrap();
        let report: serde_json::Value = read_report(&out);
        let check = &report["checks"][0];
        assert_eq!(check["id"], "server/identity");
        assert_eq!(check["verdict"], verdict, "{extra:?}: {}", check["reason"]);
        let reason = check["reason"].as_str().unwrap();
        assert!(reason.contains(words), "{extra:?}: {reason}");
        assert_eq!(
            reason.contains("--server-ca"),
            words.starts_with("was not signed"),
            "only another CA names --server-ca: {reason}"
        );
        assert_eq!(out.status.code(), Some(code), "{extra:?}: {}", said(&out));
    }
}

/// `run --target kind` on a machine without kind or without a container runtime fails fast with a
/// message naming what is missing, and exit 2. PATH is controlled so the result does not depend on
/// the machine (a one-line `kind` script stands for an installed kind). The kind lifecycle itself
/// runs for real in tests/real_kind.rs.
#[test]
fn kind_target_preflight_fails_fast() {
    use std::os::unix::fs::PermissionsExt;
    let bin_dir = common::tempdir();
    let write_tool = |name: &str, body: &str| {
        let path = bin_dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let run = |extra: &[&str]| {
        let started = std::time::Instant::now();
        let out = std::process::Command::new(common::bin())
            .args(["run", "--target", "kind"])
            .args(extra)
            .env("PATH", bin_dir.path())
            .env_remove("KIND_EXPERIMENTAL_PROVIDER")
            .output()
            .unwrap();
        (out, started.elapsed())
    };
    let (out, _) = run(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        said(&out).contains("`kind` is not on PATH"),
        "{}",
        said(&out)
    );

    write_tool("kind", "echo 'kind v0.30.0 go1.24 linux/amd64'");
    let (out, _) = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        said(&out).contains("no container runtime: `docker` is not on PATH"),
        "{}",
        said(&out)
    );

    // A docker CLI whose engine does not answer: tests/real_kind.rs (k3), with the real CLI.

    // Versions without repo-server mTLS are refused before any tool is looked for.
    let (out, _) = run(&["--argocd-version", "v3.4.2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        said(&out).contains("has no repo-server mTLS"),
        "{}",
        said(&out)
    );
}

/// An API server that cannot be reached stops `--target cluster --install` before anything is
/// downloaded or applied: exit 2, the cluster and the cause named in one sentence (no `Debug`
/// dump), and the manifest's server (a counting loopback) never sees a connection. A manifest
/// server that never answers is bounded by --download-timeout: tests for `download` itself in
/// src/kubernetes/manifest.rs.
/// A kubeconfig (in `dir`) whose one context is an API server at `port` on loopback.
fn kubeconfig_to(dir: &Path, port: u16) -> PathBuf {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: gone\n  context:\n    cluster: gone\n    user: u\ncurrent-context: gone\nusers:\n- name: u\n  user:\n    token: not-a-secret\n"
        ),
    )
    .unwrap();
    kubeconfig
}

#[test]
fn an_unreachable_api_server_stops_the_install_before_any_download() {
    let manifest_server = common::loopback(common::Plain::Silent);
    let closed = common::free_port();
    let dir = common::tempdir();
    let kubeconfig = kubeconfig_to(dir.path(), closed);
    let out = std::process::Command::new(common::bin())
        .args([
            "run",
            "--target",
            "cluster",
            "--install",
            "--install-manifest",
            &format!("http://{}/install.yaml", manifest_server.addr),
            "--report-dir",
            dir.path().join("reports").to_str().unwrap(),
        ])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap();
    let text = said(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "the API server of `current context (https://127.0.0.1:{closed}/)` cannot be reached: "
        )) && text.contains("Connection refused")
            && text.contains("nothing was installed, changed or downloaded"),
        "{text}"
    );
    for dump in ["Error(", "Os {", "ConnectError(", "kind: ", "ERROR"] {
        assert!(!text.contains(dump), "a Debug dump ({dump}):\n{text}");
    }
    assert_eq!(manifest_server.accepted(), 0, "the manifest was looked up");
}

/// `--kubeconfig PATH` and `-n` as kubectl takes them: the file given wins over KUBECONFIG (the
/// run reaches the cluster it names, here a closed port, and says so), a file that cannot be read
/// is named, and the flag belongs to `--target cluster`. Installed as a kubectl plugin (krew's
/// `kubectl-argocd_mtls_verify`), the usage says `kubectl argocd-mtls-verify`.
#[test]
fn kubeconfig_and_namespace_flags_work_as_kubectls_and_the_plugin_says_its_name() {
    let fx = common::fixture();
    let closed = common::free_port();
    let dir = common::tempdir();
    let kubeconfig = kubeconfig_to(dir.path(), closed);
    let run = |args: &[&str]| {
        std::process::Command::new(common::bin())
            .args(args)
            .args(["--pki", fx.dir.path().to_str().unwrap(), "--report-dir"])
            .arg(dir.path().join("reports"))
            .env("KUBECONFIG", dir.path().join("not-this-one"))
            .output()
            .unwrap()
    };
    let out = run(&[
        "run",
        "--target",
        "cluster",
        "-n",
        "gitops",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "current context of {}` cannot be reached",
            kubeconfig.display()
        )),
        "{text}"
    );
    let missing = dir.path().join("missing-kubeconfig");
    let out = run(&[
        "run",
        "--target",
        "cluster",
        "--kubeconfig",
        missing.to_str().unwrap(),
    ]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!("kubeconfig {}: ", missing.display())),
        "{text}"
    );
    let out = run(&["run", "--target", "kind", "--kubeconfig", "x"]);
    assert!(
        said(&out).contains("--kubeconfig belongs to --target cluster"),
        "{}",
        said(&out)
    );
    // As krew links it.
    let plugin = dir.path().join("kubectl-argocd_mtls_verify");
    std::os::unix::fs::symlink(common::bin(), &plugin).unwrap();
    let out = std::process::Command::new(&plugin)
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert!(
        said(&out).contains("Usage: kubectl argocd-mtls-verify run [OPTIONS]"),
        "{}",
        said(&out)
    );
}

/// Issue 16.7: SIGINT (Ctrl-C) and SIGTERM (CI cancellation) at any moment of a run end in the
/// incomplete report and exit 2, listing the checks that were not judged: right after start
/// (while the command line is resolved and the identities are minted), during the controls, and
/// deep into the refusals. The server is a port that accepts and never answers, so every attempt
/// lasts the whole timeout and the run is still going when the signal arrives.
#[test]
fn signals_at_any_moment_end_in_an_incomplete_report() {
    let fx = common::fixture();
    let hole = common::blackhole();
    let addr = hole.addr.to_string();
    for (signal, after_ms, said_as) in [
        ("INT", 30, "interrupted (Ctrl-C)"),
        ("TERM", 30, "terminated (SIGTERM)"),
        ("INT", 400, "interrupted (Ctrl-C)"),
        ("TERM", 1500, "terminated (SIGTERM)"),
        ("INT", 3000, "interrupted (Ctrl-C)"),
    ] {
        let reports = common::tempdir();
        let child = std::process::Command::new(common::bin())
            .args(["run", "--addr", &addr, "--pki"])
            .arg(fx.dir.path())
            .args(["--timeout-ms", "6000", "--report-dir"])
            .arg(reports.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(after_ms));
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let out = child.wait_with_output().unwrap();
        let what = format!("SIG{signal} after {after_ms} ms");
        assert_eq!(out.status.code(), Some(2), "{what}: {}", said(&out));
        let report = read_report(&out);
        assert_eq!(report["run"]["incomplete"], true, "{what}");
        assert_eq!(report["run"]["stopped"], said_as, "{what}");
        let not_judged = report["run"]["not_judged"].as_array().unwrap();
        assert!(
            not_judged
                .iter()
                .any(|id| id == "handshake/no-client-cert/tls1.3"),
            "{what}: {not_judged:?}"
        );
        assert!(
            said(&out).contains("not judged ("),
            "{what}: {}",
            said(&out)
        );
        assert!(said(&out).contains("verdict: NO VERDICT"), "{what}");
    }
}

/// The demo, signalled at several moments (key generation, the reference server's start, the
/// probes): never killed without a report, and never a pass for a run that was cut short.
#[test]
fn demo_signalled_is_never_a_pass_of_a_partial_run() {
    for after_ms in [5, 60, 200, 500] {
        let reports = common::tempdir();
        let child = std::process::Command::new(common::bin())
            .args(["demo", "--report-dir"])
            .arg(reports.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Counted from when the demo catches SIGTERM (its first act in main): before that the
        // process is still being loaded, and no program can report a signal it cannot see yet.
        wait_until_it_catches_sigterm(child.id());
        std::thread::sleep(Duration::from_millis(after_ms));
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let out = child.wait_with_output().unwrap();
        let code = out.status.code();
        assert!(
            code.is_some(),
            "SIGTERM after {after_ms} ms killed the demo: {}",
            said(&out)
        );
        let report = read_report(&out);
        match code {
            // It had finished before the signal arrived: a whole report.
            Some(0) => assert_eq!(report["run"]["incomplete"], false),
            _ => {
                assert_eq!(code, Some(2), "{}", said(&out));
                assert_eq!(report["run"]["incomplete"], true);
            }
        }
    }
}

/// Issue 16.10: on a terminal the attempts are a progress bar (indicatif), not lines. `script`
/// (util-linux) gives the demo a pseudo-terminal.
#[test]
fn on_a_terminal_progress_is_a_bar() {
    let reports = common::tempdir();
    let command = format!(
        "{} demo --report-dir {}",
        common::bin().display(),
        reports.path().display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script (util-linux) runs the demo on a pseudo-terminal");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{screen}");
    assert!(screen.contains("attempts ("), "{screen}");
    assert!(screen.contains("[="), "a bar is drawn: {screen}");
    let plain_line = |l: &str| {
        l.trim_end()
            .strip_suffix(" attempts")
            .and_then(|l| l.rsplit_once(": "))
            .is_some_and(|(_, count)| count.split_once('/').is_some())
    };
    assert!(
        !screen.lines().any(plain_line),
        "no plain attempts lines on a terminal: {screen}"
    );
}

/// Waits (at most 10 s) until process `pid` has a handler for SIGTERM (`SigCgt` in
/// /proc/PID/status has bit 15), or has exited.
fn wait_until_it_catches_sigterm(pid: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            return;
        };
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (15 - 1)) != 0);
        if caught {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Log lines written to a pipe carry no colour codes (the libraries' and ours alike): `demo` with
/// `RUST_LOG=debug` logs rustls's, h2's and our debug lines to a piped stderr.
#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    let mut cmd = std::process::Command::new(common::bin());
    cmd.args(["demo", "--format", "json"])
        .env("RUST_LOG", "debug");
    let run = common::run_with_reports(cmd);
    run.assert_exit(0);
    assert!(run.said.contains("DEBUG"), "{}", run.said);
    assert!(!run.said.contains('\u{1b}'), "{}", run.said);
}

/// `diff` and `aggregate` read only the report schemas this build knows: a demo report relabelled
/// schema version 2 (re-signed, so it is not merely a tampered file) is refused with exit 2,
/// naming the file and both versions, never compared or counted as if it were version 1.
#[test]
fn diff_and_aggregate_refuse_a_report_schema_they_do_not_read() {
    use sha2::Digest;
    let run = common::run_cli(&["demo", "--format", "json"]);
    run.assert_exit(0);
    let own = common::report_dir(&run).join("report.json");
    let other = common::tempdir();
    let newer = other.path().join("v2/report.json");
    std::fs::create_dir_all(newer.parent().unwrap()).unwrap();
    let mut doc = run.report.clone();
    doc["schema_version"] = "2".into();
    let json = serde_json::to_vec(&doc).unwrap();
    std::fs::write(&newer, &json).unwrap();
    std::fs::write(
        newer.with_file_name("report.json.sha256"),
        format!(
            "{}  report.json\n",
            hex::encode(sha2::Sha256::digest(&json))
        ),
    )
    .unwrap();
    let cli = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(common::bin())
            .args(args)
            .output()
            .unwrap()
    };
    let out = cli(&["diff".as_ref(), own.as_os_str(), newer.as_os_str()]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&newer.display().to_string())
            && text.contains("schema_version is \"2\"")
            && text.contains("reads schema version 1"),
        "{text}"
    );
    let fleet = common::tempdir();
    let out = cli(&[
        "aggregate".as_ref(),
        other.path().as_os_str(),
        "--out".as_ref(),
        fleet.path().as_os_str(),
    ]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&newer.display().to_string()) && text.contains("schema_version is \"2\""),
        "{text}"
    );
    // The same file at the version this build writes is compared: nothing changed.
    let mut same = doc;
    same["schema_version"] = argocd_mtls_verify::report::SCHEMA_VERSION.into();
    std::fs::write(&newer, serde_json::to_vec(&same).unwrap()).unwrap();
    let out = cli(&["diff".as_ref(), own.as_os_str(), newer.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
}

/// `aggregate`: the fleet folder is written with its three files, the exit code follows the worst
/// cluster (1: one failed), and a folder without reports is exit 2 with the reason.
#[test]
fn aggregate_writes_the_fleet_and_exits_by_the_worst_cluster() {
    use argocd_mtls_verify::report::fleet::write_sample;
    let reports = common::tempdir();
    let r = reports.path();
    write_sample(
        &r.join("a"),
        "prod",
        "2026-12-02T02:00:00Z",
        "fail",
        &["grpc/no-cert-rpc-denied"],
        0,
    )
    .unwrap();
    write_sample(
        &r.join("b"),
        "staging",
        "2026-12-02T02:00:00Z",
        "pass",
        &[],
        0,
    )
    .unwrap();
    let out = common::tempdir();
    let run = std::process::Command::new(common::bin())
        .arg("aggregate")
        .arg(r)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{}", said(&run));
    let folder = said(&run)
        .lines()
        .find_map(|l| l.strip_prefix("fleet report: "))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{}", said(&run)));
    for file in [
        "fleet.json",
        "fleet.json.sha256",
        "fleet.md",
        "fleet-junit.xml",
    ] {
        assert!(folder.join(file).is_file(), "{file}");
    }
    assert!(
        said(&run).contains("FAIL  prod argocd (1 failing)"),
        "{}",
        said(&run)
    );

    let empty = common::tempdir();
    let run = std::process::Command::new(common::bin())
        .arg("aggregate")
        .arg(empty.path())
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", said(&run));
    assert!(
        said(&run).contains("no report.json under"),
        "{}",
        said(&run)
    );
}

/// `--metrics-file` is Prometheus's text format as the Prometheus client library's own parser reads
/// it (families, types, labels, values), and `--print-report` prints exactly report.json's content
/// between its marker lines.
/// `--metrics-file` through a symbolic link writes the file it leads to and leaves the link; a
/// link loop, a FIFO, a folder and a folder that does not exist are refused while planning
/// (exit 2, the flag and the cause named), before a single connection reaches the endpoint and
/// before any report is written.
#[test]
fn metrics_file_goes_through_its_link_and_bad_paths_stop_before_probing() {
    let dir = common::tempdir();
    let d = dir.path();
    std::fs::write(d.join("real.prom"), b"old").unwrap();
    std::os::unix::fs::symlink("real.prom", d.join("link.prom")).unwrap();
    let run = common::run_cli(&[
        "demo",
        "--metrics-file",
        d.join("link.prom").to_str().unwrap(),
    ]);
    run.assert_exit(0);
    let written = std::fs::read_to_string(d.join("real.prom")).unwrap();
    assert!(
        written.contains("argocd_mtls_verify_run_verdict"),
        "{written}"
    );
    assert!(
        std::fs::symlink_metadata(d.join("link.prom"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    std::os::unix::fs::symlink("loop-b", d.join("loop-a")).unwrap();
    std::os::unix::fs::symlink("loop-a", d.join("loop-b")).unwrap();
    let fifo = d.join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let fx = common::fixture();
    let hole = common::blackhole();
    let reports = common::tempdir();
    for (path, says) in [
        (d.join("loop-a"), "symbolic links loop"),
        (fifo.clone(), "a FIFO"),
        (d.to_path_buf(), "a directory"),
        (d.join("missing/m.prom"), "cannot create a file in"),
    ] {
        let out = cli(&[
            "run",
            "--addr",
            &hole.addr.to_string(),
            "--pki",
            fx.dir.path().to_str().unwrap(),
            "--report-dir",
            reports.path().to_str().unwrap(),
            "--metrics-file",
            path.to_str().unwrap(),
        ]);
        let text = said(&out);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let want = format!("--metrics-file {}: cannot write it: ", path.display());
        assert!(
            text.contains(&want) && text.contains(says),
            "{says}:\n{text}"
        );
    }
    assert_eq!(hole.accepted(), 0, "a run with a bad --metrics-file probed");
    assert_eq!(std::fs::read_dir(reports.path()).unwrap().count(), 0);
    assert!(
        std::fs::symlink_metadata(d.join("loop-a"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn metrics_parse_with_prometheus_and_the_printed_report_is_report_json() {
    let dir = common::tempdir();
    let metrics = dir.path().join("m.prom");
    let run = common::run_cli(&[
        "demo",
        "--metrics-file",
        metrics.to_str().unwrap(),
        "--print-report",
    ]);
    run.assert_exit(0);
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in f.samples:
        out.append("%s %s %s %g" % (f.type, s.name, s.labels.get("verdict", s.labels.get("check", "")), s.value))
print("\n".join(out))
"#;
    let parsed = std::process::Command::new("python3")
        .args(["-c", script, metrics.to_str().unwrap()])
        .output()
        .expect("python3");
    assert!(
        parsed.status.success(),
        "the Prometheus parser refused it: {}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let parsed = String::from_utf8(parsed.stdout).unwrap();
    assert!(
        parsed.contains("gauge argocd_mtls_verify_run_verdict pass 1"),
        "{parsed}"
    );
    assert!(
        parsed.contains("gauge argocd_mtls_verify_run_verdict fail 0"),
        "{parsed}"
    );
    assert!(
        parsed.contains("gauge argocd_mtls_verify_check_passed handshake/no-client-cert/tls1.3 1"),
        "{parsed}"
    );
    assert!(
        parsed.contains("gauge argocd_mtls_verify_certificate_expiry_timestamp_seconds"),
        "{parsed}"
    );
    // The printed report is the report.json written beside it.
    let begin = "-----BEGIN ARGOCD-MTLS-VERIFY REPORT-----\n";
    let start = run.said.find(begin).expect("a printed report") + begin.len();
    let end = run.said[start..]
        .find("\n-----END ARGOCD-MTLS-VERIFY REPORT-----")
        .unwrap();
    let printed: serde_json::Value = serde_json::from_str(&run.said[start..start + end]).unwrap();
    assert_eq!(printed, run.report);
}

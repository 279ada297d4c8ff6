//! The endpoint suite against a TLS stack that is not ours: `openssl s_server`, correct
//! (`-Verify 1 -verify_return_error`) and wrong in one respect each, driven through the CLI with
//! `--protocol tls` exactly as a user would.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{ADMITTED_WHEN_VERIFICATION_IS_IGNORED, NEGATIVES, both};

/// The CLI with `--protocol tls` against `s_server` on `port`.
fn run_cli(pki: &Path, port: u16) -> common::Run {
    common::run_endpoint(
        &format!("127.0.0.1:{port}"),
        pki,
        // s_server has no health port or log: those checks are left out on purpose.
        &["--protocol", "tls", "--partial", "--timeout-ms", "4000"],
    )
}

#[test]
fn openssl_s_server_correct_and_wrong() {
    let fx = common::fixture();
    let dir = fx.dir.path();
    let cases: Vec<(&str, Vec<&str>, BTreeSet<String>, i32)> = vec![
        (
            "requires and verifies client certificates",
            vec!["-CAfile", "ca.crt", "-Verify", "1", "-verify_return_error"],
            BTreeSet::new(),
            0,
        ),
        ("no client auth", vec![], both(&NEGATIVES), 1),
        (
            "optional client auth",
            vec!["-CAfile", "ca.crt", "-verify", "1", "-verify_return_error"],
            both(&["handshake/no-client-cert"]),
            1,
        ),
        (
            "client certs requested, verification errors ignored",
            vec!["-CAfile", "ca.crt", "-Verify", "1"],
            both(&ADMITTED_WHEN_VERIFICATION_IS_IGNORED),
            1,
        ),
        (
            "expiry ignored",
            vec![
                "-CAfile",
                "ca.crt",
                "-Verify",
                "1",
                "-verify_return_error",
                "-no_check_time",
            ],
            both(&[
                "handshake/expired-client-cert",
                "handshake/not-yet-valid-client-cert",
            ]),
            1,
        ),
        (
            "TLS 1.0 and 1.1 allowed",
            vec![
                "-CAfile",
                "ca.crt",
                "-Verify",
                "1",
                "-verify_return_error",
                "-min_protocol",
                "TLSv1",
                "-cipher",
                "DEFAULT:@SECLEVEL=0",
            ],
            ["tls/versions/tls1.0", "tls/versions/tls1.1"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            1,
        ),
    ];
    for (name, flags, want_failing, want_code) in cases {
        let server = common::s_server(dir, &flags);
        let run = run_cli(dir, server.port);
        assert_eq!(
            run.failing_required(),
            want_failing,
            "{name}: failing required checks\n{}",
            run.said
        );
        assert_eq!(run.code, Some(want_code), "{name}: exit code\n{}", run.said);
        // gRPC-only checks are skipped, not faked, for a plain TLS server.
        for c in run.report["checks"].as_array().unwrap() {
            if c["id"].as_str().unwrap().starts_with("grpc/") {
                assert_eq!(c["verdict"], "skip", "{name}: {}", c["id"]);
            }
        }
        // s_server has no health port or log: those checks are skipped with a reason.
        let probe = run.report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "probe/readiness")
            .unwrap();
        assert_eq!(probe["verdict"], "skip");
        // A TLS 1.2 acceptance says the server checked the client only when it asked for a
        // certificate (s_server without -verify/-Verify sends no CertificateRequest).
        let text = run.report["checks"].to_string();
        let (said, not_said) = if flags.is_empty() {
            (
                "asked for no client certificate and verified none",
                "followed its check of the client",
            )
        } else {
            (
                "followed its check of the client's certificate",
                "asked for no client certificate",
            )
        };
        assert!(
            text.contains(said) && !text.contains(not_said),
            "{name}: `{said}` without `{not_said}`"
        );
    }
}

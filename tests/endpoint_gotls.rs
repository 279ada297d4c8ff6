//! The verdict classes that fooled the harness, reproduced on Go's crypto/tls (Argo CD's TLS
//! stack) with `tests/rig/gotls`: one server mode per way of being wrong, each next to the correct
//! mode, each driven through the CLI as a user would.

mod common;

use std::path::Path;

use common::rig::GoTls;
use common::{NEGATIVES, Run, pki_init, run_endpoint};

/// One server, one run, and what the run must say.
struct Row {
    /// What is wrong with the server (or that nothing is).
    name: &'static str,
    /// `gotls -mode`, and its other flags.
    mode: &'static str,
    server_flags: &'static [&'static str],
    /// Harness flags besides --addr/--pki.
    harness: &'static [&'static str],
    exit: i32,
    /// (check id, verdict, text its reason must contain).
    expect: &'static [(&'static str, &'static str, &'static str)],
    /// When set: exactly the required checks of these cases (under any TLS version) fail, no
    /// others (the server is wrong in exactly that respect).
    fails: Option<&'static [&'static str]>,
}

// gotls has no health port and no repo-server log: those checks are left out on purpose.
const GRPC: &[&str] = &["--server-name", "localhost", "--partial"];
const NAMED: &[&str] = &["--server-name", "argocd-repo-server", "--partial"];
const TLS: &[&str] = &[
    "--server-name",
    "localhost",
    "--protocol",
    "tls",
    "--partial",
];
/// A server that refuses 2 s late holds each refused attempt that long: more at once.
const SLOW_TLS: &[&str] = &[
    "--partial",
    "--server-name",
    "localhost",
    "--protocol",
    "tls",
    "--concurrency",
    "80",
];

const ROWS: &[Row] = &[
    Row {
        name: "correct: RequireAndVerifyClientCert",
        mode: "strict",
        server_flags: &[],
        harness: GRPC,
        exit: 0,
        expect: &[
            ("handshake/lookalike-ca/tls1.3", "pass", "unknown_ca"),
            (
                "handshake/expired-client-cert/tls1.2",
                "pass",
                "certificate_expired",
            ),
            ("handshake/no-client-cert/tls1.3", "pass", "no SNI"),
            ("grpc/no-cert-rpc-denied", "pass", "certificate_required"),
        ],
        fails: Some(&[]),
    },
    // 1. Issuer names compared, signatures never checked: only the lookalike CA gets in.
    Row {
        name: "issuer name compared, signature not checked",
        mode: "issuer-name-only",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[
            ("handshake/lookalike-ca/tls1.2", "fail", "ACCEPTED"),
            ("handshake/lookalike-ca/tls1.3", "fail", "ACCEPTED"),
            ("handshake/wrong-ca/tls1.3", "pass", "rejected"),
        ],
        fails: Some(&["handshake/lookalike-ca"]),
    },
    // 2. The chain checked at a time inside the validity windows: with the backdated `pki init`
    //    CA, the expired certificate lies inside its CA's validity and gets in.
    Row {
        name: "chain verified at the leaf's notBefore (expiry ignored)",
        mode: "validity-window",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[
            ("handshake/expired-client-cert/tls1.2", "fail", "ACCEPTED"),
            ("handshake/expired-client-cert/tls1.3", "fail", "ACCEPTED"),
            (
                "handshake/not-yet-valid-client-cert/tls1.3",
                "fail",
                "ACCEPTED",
            ),
            ("handshake/wrong-ca/tls1.3", "pass", "rejected"),
        ],
        fails: Some(&[
            "handshake/expired-client-cert",
            "handshake/not-yet-valid-client-cert",
        ]),
    },
    // 3. Client certificates enforced only for one server name, or only when SNI is present.
    Row {
        name: "client certificates only for SNI argocd-repo-server",
        mode: "sni-named",
        server_flags: &[],
        harness: NAMED,
        exit: 1,
        expect: &[
            (
                "handshake/no-client-cert/tls1.3",
                "fail",
                "ACCEPTED with no SNI",
            ),
            ("handshake/wrong-ca/tls1.2", "fail", "ACCEPTED with no SNI"),
            ("handshake/valid-client-cert/tls1.3", "pass", "SERVING"),
        ],
        fails: Some(&NEGATIVES),
    },
    Row {
        name: "client certificates only when SNI is present",
        mode: "sni-present",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[(
            "handshake/no-client-cert/tls1.3",
            "fail",
            "ACCEPTED with no SNI",
        )],
        fails: Some(&NEGATIVES),
    },
    // 4. An RPC that gets no answer is inconclusive, never "denied".
    Row {
        name: "unauthenticated RPCs hang",
        mode: "hang-rpc",
        server_flags: &[],
        harness: &[
            "--server-name",
            "localhost",
            "--timeout-ms",
            "3000",
            "--partial",
        ],
        exit: 1,
        expect: &[
            (
                "grpc/no-cert-rpc-denied",
                "error",
                "no answer within 3000 ms",
            ),
            ("handshake/no-client-cert/tls1.3", "fail", "ACCEPTED"),
        ],
        fails: None,
    },
    // 7. A refusal 2 s after the handshake: the default never takes it for an acceptance,
    //    with session tickets (the server's sign of acceptance) and without.
    Row {
        name: "slow refusal, session tickets on",
        mode: "slow-reject",
        server_flags: &["-no-grpc"],
        harness: SLOW_TLS,
        exit: 0,
        expect: &[
            ("handshake/wrong-ca/tls1.3", "pass", "bad_certificate"),
            (
                "handshake/valid-client-cert/tls1.3",
                "pass",
                "session ticket",
            ),
        ],
        fails: Some(&[]),
    },
    Row {
        name: "slow refusal, no session tickets",
        mode: "slow-reject",
        server_flags: &["-no-tickets", "-no-grpc"],
        harness: SLOW_TLS,
        exit: 0,
        expect: &[
            ("handshake/wrong-ca/tls1.3", "pass", "bad_certificate"),
            (
                "handshake/valid-client-cert/tls1.3",
                "pass",
                "weak evidence",
            ),
        ],
        fails: Some(&[]),
    },
    // The old 300 ms grace, asked for explicitly: silence is then taken for acceptance when the
    // server gives no other sign, and the report says that was the basis...
    Row {
        name: "slow refusal, no tickets, 300 ms silence",
        mode: "slow-reject",
        server_flags: &["-no-tickets", "-no-grpc"],
        harness: &[
            "--server-name",
            "localhost",
            "--protocol",
            "tls",
            "--partial",
            "--silence-ms",
            "300",
            "--concurrency",
            "80",
        ],
        exit: 1,
        expect: &[(
            "handshake/wrong-ca/tls1.3",
            "fail",
            "no alert, data or session ticket for 300 ms",
        )],
        fails: None,
    },
    // ...but when the valid client got a ticket, silence is no sign at all: no verdict. (1 s, not
    // 300 ms: the valid client's ticket must come inside the window even on a loaded machine,
    // and 1 s is still well before the 2 s refusal.)
    Row {
        name: "slow refusal, tickets on, 1 s silence",
        mode: "slow-reject",
        server_flags: &["-no-grpc"],
        harness: &[
            "--server-name",
            "localhost",
            "--protocol",
            "tls",
            "--partial",
            "--silence-ms",
            "1000",
            "--concurrency",
            "80",
        ],
        exit: 2,
        expect: &[(
            "handshake/wrong-ca/tls1.3",
            "error",
            "no sign of acceptance",
        )],
        fails: None,
    },
    // 6. Refusal at the HTTP layer (nginx's ssl_verify_client style): --protocol https tells it
    //    from service; plain TLS cannot.
    Row {
        name: "HTTP 400 for clients without a verified certificate, as https",
        mode: "http-reject",
        server_flags: &["-no-grpc"],
        harness: &[
            "--server-name",
            "localhost",
            "--protocol",
            "https",
            "--partial",
        ],
        exit: 0,
        expect: &[
            ("handshake/no-client-cert/tls1.3", "pass", "HTTP status 400"),
            (
                "handshake/valid-client-cert/tls1.3",
                "pass",
                "HTTP response",
            ),
        ],
        fails: Some(&[]),
    },
    Row {
        name: "HTTP 400 for clients without a verified certificate, as plain TLS",
        mode: "http-reject",
        server_flags: &["-no-grpc"],
        harness: TLS,
        exit: 1,
        expect: &[("handshake/no-client-cert/tls1.3", "fail", "ACCEPTED")],
        fails: None,
    },
    // 10. The wrong --protocol: named, never judged.
    Row {
        name: "plain HTTPS server probed as gRPC",
        mode: "strict",
        server_flags: &["-no-grpc"],
        harness: GRPC,
        exit: 2,
        expect: &[("handshake/wrong-ca/tls1.3", "error", "not a gRPC server")],
        fails: None,
    },
    Row {
        name: "gRPC server probed as plain TLS",
        mode: "strict",
        server_flags: &[],
        harness: TLS,
        exit: 2,
        expect: &[("handshake/wrong-ca/tls1.3", "error", "speaks gRPC")],
        fails: None,
    },
];

fn check_row(row: &Row, pki: &Path) -> Run {
    let server = GoTls::start(pki, row.mode, row.server_flags);
    let run = run_endpoint(&server.addr(), pki, row.harness);
    assert_eq!(
        run.code,
        Some(row.exit),
        "{}: exit code\n{}",
        row.name,
        run.said
    );
    if let Some(cases) = row.fails {
        let failing = run.failing_required();
        let want: std::collections::BTreeSet<String> = run.report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["id"].as_str())
            .filter(|id| {
                cases
                    .iter()
                    .any(|case| id.strip_prefix(case).is_some_and(|v| v.starts_with('/')))
            })
            .map(str::to_owned)
            .collect();
        assert_eq!(
            failing, want,
            "{}: failing required checks\n{}",
            row.name, run.said
        );
    }
    for (id, verdict, needle) in row.expect {
        let reason = run.reason(id);
        assert_eq!(&run.verdict(id), verdict, "{}: {id}: {reason}", row.name);
        assert!(
            reason.contains(needle),
            "{}: {id}: `{needle}` not in `{reason}`",
            row.name
        );
    }
    run
}

#[test]
fn go_crypto_tls_servers_correct_and_wrong() {
    let pki = pki_init("rsa2048");
    for row in ROWS {
        let started = std::time::Instant::now();
        check_row(row, pki.path());
        eprintln!("{}: {} ms", row.name, started.elapsed().as_millis());
    }
}

/// A CA made seconds ago cannot hold an expired certificate inside its own validity: the check
/// still passes against a correct server, but says it proves less, even against a server that
/// ignores expiry (which then refuses the certificate only for predating its issuer).
#[test]
fn a_young_ca_makes_the_expiry_checks_say_they_prove_less() {
    let pki = common::tempdir();
    young_bundle(pki.path());
    for mode in ["strict", "validity-window"] {
        let server = GoTls::start(pki.path(), mode, &[]);
        let run = run_endpoint(&server.addr(), pki.path(), GRPC);
        for v in ["tls1.2", "tls1.3"] {
            let id = format!("handshake/expired-client-cert/{v}");
            let reason = run.reason(&id);
            assert_eq!(run.verdict(&id), "pass", "{mode}: {reason}");
            assert!(
                reason.contains("WEAKER EVIDENCE") && reason.contains("predates its issuer"),
                "{mode}: {reason}"
            );
        }
    }
}

/// A bundle whose CA openssl made just now (RSA 2048), with the files `pki init` writes.
fn young_bundle(dir: &Path) {
    let ok = |args: &[&str]| {
        common::openssl_ok(dir, args);
    };
    ok(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "3650",
        "-subj",
        "/CN=young-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    for (name, cn, ext) in [
        (
            "server",
            "localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        (
            "client",
            "argocd-core-clients",
            "extendedKeyUsage=clientAuth\n",
        ),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        ok(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={cn}"),
        ]);
        ok(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "30",
            "-extfile",
            &format!("{name}.ext"),
        ]);
    }
}

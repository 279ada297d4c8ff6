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
    /// When set: exactly the required checks of these cases (under any TLS version; a handshake
    /// case under TLS 1.0/1.1 only when named by its id) fail, no others (the server is wrong in
    /// exactly that respect).
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
            (
                "handshake/no-client-cert/tls1.3",
                "pass",
                "`certificate_required` / alert `decode_error` / alert `handshake_failure` / alert `no_application_protocol` at each of",
            ),
            ("handshake/no-client-cert/tls1.3", "pass", "9 hand-built"),
            ("handshake/no-client-cert/tls1.2", "pass", "8 hand-built"),
            // Go has no chain for the ECDSA and Ed25519 doors (an RSA certificate): shut at the
            // hello, so no other refusal is sent there.
            (
                "handshake/no-client-cert/tls1.3",
                "pass",
                "3 with one family of signature algorithms",
            ),
            (
                "handshake/wrong-ca/tls1.3",
                "pass",
                "at each of 13 doors (7 server names, 3 ALPN offers)",
            ),
            (
                "handshake/no-client-cert/tls1.0",
                "pass",
                "the server refuses tls1.0 itself",
            ),
            ("grpc/no-cert-rpc-denied", "pass", "certificate_required"),
            ("handshake/forged-issuer-serial/tls1.3", "pass", "rejected"),
            (
                "handshake/untrusted-leaf-with-trusted-ca/tls1.2",
                "pass",
                "unknown_ca",
            ),
            (
                "tls/advertised-client-cas",
                "pass",
                "advertises only approved client CAs",
            ),
            (
                "transport/plaintext-h2c",
                "pass",
                "plaintext HTTP/1.1 Upgrade: h2c: the server answered the HTTP/1.1 upgrade request with `HTTP/1.0 400 Bad Request`",
            ),
            (
                "tls/session-resumption",
                "pass",
                "the server handed no session (TLS 1.3 ticket, TLS 1.2 session ID or ticket) to any of the",
            ),
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
        // The forgery of the valid client names the CA as its issuer too.
        fails: Some(&["handshake/lookalike-ca", "handshake/forged-issuer-serial"]),
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
        // Every attempt that meets the hanging handler waits out its timeout: more at once.
        harness: &[
            "--server-name",
            "localhost",
            "--timeout-ms",
            "3000",
            "--partial",
            "--concurrency",
            "80",
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
    // Issue 16.1: a verifier that ignores the extended key usage admits the serverAuth-only
    // certificate minted with the CA key, and nothing else.
    Row {
        name: "extended key usage ignored",
        mode: "eku-ignored",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[
            ("handshake/server-auth-only-eku/tls1.3", "fail", "ACCEPTED"),
            ("handshake/server-auth-only-eku/tls1.2", "fail", "ACCEPTED"),
        ],
        fails: Some(&["handshake/server-auth-only-eku"]),
    },
    // Issue 16.2: chain confusion. A verifier that admits a client when any certificate it sends
    // chains to the pool, or when the last one is the trusted CA, admits an untrusted leaf sent
    // with the trusted CA's certificate (or the valid client's chain); one that remembers verified
    // certificates by issuer and serial admits a forgery of the valid client.
    Row {
        name: "any certificate of the chain trusted",
        mode: "any-in-chain",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[
            (
                "handshake/untrusted-leaf-with-trusted-ca/tls1.3",
                "fail",
                "ACCEPTED",
            ),
            (
                "handshake/untrusted-leaf-with-client-chain/tls1.2",
                "fail",
                "ACCEPTED",
            ),
        ],
        fails: Some(&[
            "handshake/untrusted-leaf-with-trusted-ca",
            "handshake/untrusted-leaf-with-client-chain",
        ]),
    },
    Row {
        name: "the last certificate of the chain trusted",
        mode: "last-is-ca",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[(
            "handshake/untrusted-leaf-with-trusted-ca/tls1.2",
            "fail",
            "ACCEPTED",
        )],
        fails: Some(&[
            "handshake/untrusted-leaf-with-trusted-ca",
            "handshake/untrusted-leaf-with-client-chain",
        ]),
    },
    Row {
        name: "verified certificates remembered by issuer and serial",
        mode: "issuer-serial-cache",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[
            ("handshake/forged-issuer-serial/tls1.3", "fail", "ACCEPTED"),
            ("handshake/forged-issuer-serial/tls1.2", "fail", "ACCEPTED"),
        ],
        fails: Some(&["handshake/forged-issuer-serial"]),
    },
    // Issue 26.4: the positive controls strictly first. A server that admits, without a
    // certificate, any address that once presented a verified one is open to everything after the
    // legitimate client: every refusal and the RPC without a certificate come after the controls,
    // so each is admitted, every run (run beside them, the RPC raced the controls and passed at
    // times).
    Row {
        name: "verified client addresses remembered",
        mode: "address-cache",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[
            ("handshake/valid-client-cert/tls1.3", "pass", "SERVING"),
            ("handshake/no-client-cert/tls1.3", "fail", "ACCEPTED"),
            ("grpc/no-cert-rpc-denied", "fail", ""),
        ],
        fails: None,
    },
    // Issue 16.3: every door. A server that skips client authentication when no ALPN is
    // offered, when http/1.1 is offered without h2, or for one of the names of its own
    // certificate, is open to an intruder who knocks there.
    Row {
        name: "no client authentication without ALPN",
        mode: "alpn-absent",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[
            (
                "handshake/no-client-cert/tls1.3",
                "fail",
                "ACCEPTED with SNI `localhost`, no ALPN",
            ),
            ("handshake/valid-client-cert/tls1.3", "pass", "SERVING"),
        ],
        fails: Some(&NEGATIVES),
    },
    Row {
        name: "no client authentication for http/1.1",
        mode: "alpn-http11",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[("handshake/wrong-ca/tls1.2", "fail", "ALPN `http/1.1`")],
        fails: Some(&NEGATIVES),
    },
    Row {
        name: "no client authentication for a name of the server's own certificate",
        mode: "sni-san",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[(
            "handshake/no-client-cert/tls1.3",
            "fail",
            "ACCEPTED with SNI `argocd-repo-server.argocd.svc`, ALPN `h2`",
        )],
        fails: Some(&NEGATIVES),
    },
    // Issue 16.3: an RPC without a certificate is tried under every version the server speaks.
    Row {
        name: "client authentication under TLS 1.3 only",
        mode: "open-tls12",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[
            (
                "grpc/no-cert-rpc-denied",
                "fail",
                "ANSWERED an unauthenticated RPC under tls1.2",
            ),
            ("handshake/no-client-cert/tls1.2", "fail", "ACCEPTED"),
            ("handshake/no-client-cert/tls1.3", "pass", "rejected"),
        ],
        fails: None,
    },
    // Issue 26.3: a multiplexer in front that refuses the HTTP/2 preface in plaintext but
    // switches an HTTP/1.1 `Upgrade: h2c` request and serves gRPC on it, without TLS.
    Row {
        name: "plaintext HTTP/1.1 upgrade to h2c served",
        mode: "h2c-upgrade",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[(
            "transport/plaintext-h2c",
            "fail",
            "plaintext HTTP/1.1 Upgrade: h2c ACCEPTED: the server switched an HTTP/1.1 upgrade request to HTTP/2 in the clear (`HTTP/1.1 101 Switching Protocols`) and answered Health/Check on the upgraded connection with SERVING",
        )],
        fails: Some(&["transport/plaintext-h2c"]),
    },
    // Issue 26.2: sessions handed to refused connections. The server asks for a certificate
    // without requiring one, closes every connection that brought no verified one right after
    // its handshake, but has handed it a session by then (TLS 1.3 ticket, TLS 1.2 ticket).
    // Offered again without a certificate, the session resumes, and a server that trusts a
    // resumption blindly serves it; one that judges the certificates the session carries
    // refuses it, while the valid client's own session (the control) resumes and is served.
    Row {
        name: "a session handed to a refused client resumes without a certificate",
        mode: "resume-skips-auth",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[(
            "tls/session-resumption",
            "fail",
            "handed to the refused attempt `none` under tls1.2 with SNI `localhost`, ALPN `h2` let a client without a certificate in: the server resumed it, and Health/Check answered SERVING",
        )],
        fails: Some(&["tls/session-resumption"]),
    },
    Row {
        name: "correct: a resumed session is judged by the certificates it carries",
        mode: "resume-checks-auth",
        server_flags: &[],
        harness: GRPC,
        exit: 0,
        expect: &[(
            "tls/session-resumption",
            "pass",
            "every session handed to a refused attempt was refused when offered again without a certificate (24 of ",
        )],
        fails: Some(&[]),
    },
    // Issue 26.1: the ClientHello explored along its dimensions. The cheapest refusal finds
    // the door where the server behaves differently; every refusal is then tried there too.
    Row {
        name: "no client authentication for a name of the server's certificate in another letter case",
        mode: "sni-case",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[
            (
                "handshake/no-client-cert/tls1.3",
                "fail",
                "ACCEPTED with SNI `ARGOCD-REPO-SERVER",
            ),
            // Every other refusal meets that behaviour at the first door that showed it.
            (
                "handshake/expired-client-cert/tls1.2",
                "fail",
                "ACCEPTED with SNI `LOCALHOST`",
            ),
        ],
        fails: Some(&NEGATIVES),
    },
    // Issue 26.1: front ends that peek at the ClientHello. A hello cut into records of 64 bytes,
    // or its first 16 bytes sent alone, is what a peeker reading one record or one read cannot
    // parse: it falls through to a chain without client authentication. The cut is the engine's
    // own hello, so every refusal meets it.
    // Issue 26.1, signature algorithms: a dual-certificate server serves its ECDSA chain, without
    // client authentication, to a client that cannot verify its RSA one. The engine's own
    // hellos, so every refusal meets the door.
    Row {
        name: "the second chain of a dual-certificate server kept without client authentication",
        mode: "sigalg-twin",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[
            (
                "handshake/no-client-cert/tls1.3",
                "fail",
                "ACCEPTED with SNI `localhost`, ALPN `h2`, signatures `ecdsa` alone",
            ),
            (
                "handshake/wrong-ca/tls1.2",
                "fail",
                "ACCEPTED with SNI `localhost`, ALPN `h2`, signatures `ecdsa` alone",
            ),
        ],
        fails: Some(&NEGATIVES),
    },
    Row {
        name: "the chain picked from the first TLS record only",
        mode: "peek-record",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[(
            "handshake/no-client-cert/tls1.3",
            "fail",
            "ACCEPTED with SNI `localhost`, ALPN `h2`, ClientHello in records of 64 bytes",
        )],
        fails: Some(&NEGATIVES),
    },
    Row {
        name: "the chain picked from the first read of the connection only",
        mode: "peek-segment",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[(
            "handshake/wrong-ca/tls1.2",
            "fail",
            "ClientHello's first 16 bytes in a TCP segment of their own",
        )],
        fails: Some(&NEGATIVES),
    },
    // Hand-built hellos (TLS 1.2 and 1.3, no certificate): only the refusal without one is
    // tried there.
    Row {
        name: "no client authentication when the cipher suites hold a GREASE value",
        mode: "grease-open",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[
            (
                "handshake/no-client-cert/tls1.3",
                "fail",
                "ACCEPTED with SNI `localhost`, ALPN `h2`, a hand-built ClientHello with GREASE values: server sent its HTTP/2 SETTINGS frame",
            ),
            (
                "handshake/no-client-cert/tls1.2",
                "fail",
                "ACCEPTED with SNI `localhost`, ALPN `h2`, a hand-built ClientHello with GREASE values: server sent its HTTP/2 SETTINGS frame",
            ),
        ],
        fails: Some(&[
            "handshake/no-client-cert/tls1.2",
            "handshake/no-client-cert/tls1.3",
        ]),
    },
    Row {
        name: "no client authentication for clients that support X25519MLKEM768",
        mode: "group-mlkem",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[(
            "handshake/no-client-cert/tls1.3",
            "fail",
            "ACCEPTED with SNI `localhost`, ALPN `h2`, a hand-built ClientHello offering X25519MLKEM768: server sent its HTTP/2 SETTINGS frame",
        )],
        fails: Some(&["handshake/no-client-cert/tls1.3"]),
    },
    Row {
        name: "no client authentication for a server name longer than DNS allows",
        mode: "sni-long",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[
            (
                "handshake/no-client-cert/tls1.3",
                "fail",
                "characters), ALPN `h2`, a hand-built ClientHello: server sent its HTTP/2 SETTINGS frame",
            ),
            (
                "handshake/no-client-cert/tls1.2",
                "fail",
                "characters), ALPN `h2`, a hand-built ClientHello: server sent its HTTP/2 SETTINGS frame",
            ),
        ],
        fails: Some(&[
            "handshake/no-client-cert/tls1.2",
            "handshake/no-client-cert/tls1.3",
        ]),
    },
    Row {
        name: "no client authentication when acme-tls/1 is among the ALPN ids",
        mode: "alpn-acme",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[
            (
                "handshake/no-client-cert/tls1.3",
                "fail",
                "ACCEPTED with SNI `localhost`, ALPN `acme-tls/1,h2`",
            ),
            (
                "handshake/wrong-ca/tls1.2",
                "fail",
                "ACCEPTED with SNI `localhost`, ALPN `acme-tls/1,h2`",
            ),
        ],
        fails: Some(&NEGATIVES),
    },
    Row {
        name: "no client authentication when the ALPN list puts http/1.1 before h2",
        mode: "alpn-order",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[
            (
                "handshake/no-client-cert/tls1.2",
                "fail",
                "ACCEPTED with SNI `localhost`, ALPN `http/1.1,h2`",
            ),
            (
                "handshake/lookalike-ca/tls1.3",
                "fail",
                "ACCEPTED with SNI `localhost`, ALPN `http/1.1,h2`",
            ),
        ],
        fails: Some(&NEGATIVES),
    },
    // Issue 26.1: the key exchange groups a ClientHello offers are a door too.
    Row {
        name: "no client authentication for a client that offers P-384 alone",
        mode: "group-p384",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[
            (
                "handshake/no-client-cert/tls1.3",
                "fail",
                "ACCEPTED with SNI `localhost`, ALPN `h2`, group `secp384r1`",
            ),
            (
                "handshake/wrong-ca/tls1.2",
                "fail",
                "ACCEPTED with SNI `localhost`, ALPN `h2`, group `secp384r1`",
            ),
        ],
        fails: Some(&NEGATIVES),
    },
    // Issue 26.1: TLS 1.0 and 1.1 read to the end of the server's cleartext flight. A server
    // that speaks them fails the version policy either way; whether it asks for a client
    // certificate there is said: one that does not lets anyone in under that version.
    Row {
        name: "TLS 1.0 and 1.1 spoken, without client authentication",
        mode: "legacy-open",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[
            (
                "tls/versions/tls1.0",
                "fail",
                "its flight holds NO CertificateRequest: a client without any certificate completes a tls1.0 handshake",
            ),
            (
                "tls/versions/tls1.1",
                "fail",
                "its flight holds NO CertificateRequest",
            ),
            // The client authentication of those versions fails on its own.
            (
                "handshake/no-client-cert/tls1.0",
                "fail",
                "OPEN under tls1.0: the server speaks it and its flight up to ServerHelloDone holds NO CertificateRequest",
            ),
            (
                "handshake/no-client-cert/tls1.1",
                "fail",
                "OPEN under tls1.1",
            ),
        ],
        fails: Some(&[
            "tls/versions",
            "handshake/no-client-cert/tls1.0",
            "handshake/no-client-cert/tls1.1",
        ]),
    },
    Row {
        name: "TLS 1.0 and 1.1 spoken, with client authentication",
        mode: "strict",
        server_flags: &["-tls10"],
        harness: GRPC,
        exit: 1,
        expect: &[
            (
                "tls/versions/tls1.0",
                "fail",
                "its flight asks for a client certificate under tls1.0 (1 CA names)",
            ),
            (
                "handshake/no-client-cert/tls1.0",
                "pass",
                "the server speaks tls1.0 and its flight asks for a client certificate (1 CA names)",
            ),
        ],
        fails: Some(&["tls/versions"]),
    },
    // Issue 16.5: a client-CA pool wider than the operator's, announced in the CertificateRequest.
    Row {
        name: "a client CA nobody approved in the pool",
        mode: "extra-ca",
        server_flags: &[],
        harness: GRPC,
        exit: 1,
        expect: &[(
            "tls/advertised-client-cas",
            "fail",
            "`O=Example Trust Services, CN=Example Public Root CA`",
        )],
        fails: Some(&["tls/advertised-client-cas"]),
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
                cases.iter().any(|case| {
                    id.strip_prefix(case).is_some_and(|v| {
                        // A handshake case under TLS 1.0/1.1 is read from the legacy flight:
                        // named by its full id when it fails.
                        let legacy =
                            case.starts_with("handshake/") && (v == "/tls1.0" || v == "/tls1.1");
                        v.is_empty() || (v.starts_with('/') && !legacy)
                    })
                })
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

/// Issues 16.4 and 26.5: under TLS 1.2 the server speaks only a suite rustls cannot (AES-CBC).
/// When its flight holds no CertificateRequest, the server has shown that any client speaking the
/// suite gets in without a certificate: every refusal case fails under 1.2 (RFC 5246 §7.4.4),
/// with that evidence. When it asks for one, 1.2 stays no verdict (never a not-applicable skip
/// that lets the run pass), the reason naming the suite. TLS 1.3 is judged as usual in both.
#[test]
fn a_tls12_suite_the_prober_cannot_speak_is_judged_by_the_servers_flight() {
    let pki = pki_init("rsa2048");
    let open = GoTls::start(pki.path(), "tls12-cbc-open", &[]);
    let run = run_endpoint(&open.addr(), pki.path(), GRPC);
    assert_eq!(run.code, Some(1), "{}", run.said);
    let want: std::collections::BTreeSet<String> =
        NEGATIVES.iter().map(|c| format!("{c}/tls1.2")).collect();
    assert_eq!(run.failing_required(), want, "{}", run.said);
    for case in NEGATIVES {
        let id = format!("{case}/tls1.2");
        let reason = run.reason(&id);
        assert!(
            reason.contains("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA")
                && reason.contains("NO CertificateRequest"),
            "{id}: {reason}"
        );
        assert_eq!(run.verdict(&format!("{case}/tls1.3")), "pass", "{case}");
    }
    // The RPC is not made, so it is not judged: the handshake's evidence is not a session.
    assert_eq!(run.verdict("grpc/no-cert-rpc-denied"), "error");

    let strict = GoTls::start(pki.path(), "tls12-cbc-strict", &[]);
    let run = run_endpoint(&strict.addr(), pki.path(), GRPC);
    assert_eq!(run.code, Some(2), "{}", run.said);
    assert!(run.failing_required().is_empty(), "{}", run.said);
    for case in NEGATIVES {
        let id = format!("{case}/tls1.2");
        let reason = run.reason(&id);
        assert_eq!(run.verdict(&id), "error", "{id}: {reason}");
        assert!(
            reason.contains("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA")
                && reason.contains("it asked for a client certificate under it"),
            "{id}: {reason}"
        );
        assert_eq!(run.verdict(&format!("{case}/tls1.3")), "pass", "{case}");
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
    openssl_leaf(
        dir,
        ("server", "localhost"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ("ca.crt", "ca.key"),
        "30",
    );
    openssl_leaf(
        dir,
        ("client", "argocd-core-clients"),
        "extendedKeyUsage=clientAuth\n",
        ("ca.crt", "ca.key"),
        "30",
    );
}

/// openssl makes `<name>.key` (RSA 2048) and `<name>.crt` for `/CN=<cn>` with the extensions `ext`,
/// signed by the CA certificate and key `ca`, valid `days`.
fn openssl_leaf(dir: &Path, (name, cn): (&str, &str), ext: &str, ca: (&str, &str), days: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    let (key, csr, crt, extfile, subj) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
        format!("/CN={cn}"),
    );
    common::openssl_ok(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", &subj,
        ],
    );
    common::openssl_ok(
        dir,
        &[
            "x509", "-req", "-in", &csr, "-CA", ca.0, "-CAkey", ca.1, "-out", &crt, "-days", days,
            "-extfile", &extfile,
        ],
    );
}

/// Issue 16.1: the identities minted with the CA key prove something only next to their own
/// positive control. A rotation bundle whose `ca.key` is the key of the OTHER CA in `ca.crt` (one
/// the server does not trust) mints certificates the server refuses for their issuer; against a
/// server that ignores the extended key usage, the serverAuth-only case would then pass without
/// proving anything. With the control it has no verdict, and says why; the cases that need no CA
/// key are still judged, and the report lists both CAs of the file.
#[test]
fn minted_identities_need_their_own_positive_control() {
    let real = pki_init("rsa2048");
    let other = pki_init("rsa2048");
    let rotation = common::tempdir();
    let (r, o, x) = (real.path(), other.path(), rotation.path());
    let both_cas = [
        std::fs::read_to_string(o.join("ca.crt")).unwrap(),
        std::fs::read_to_string(r.join("ca.crt")).unwrap(),
    ]
    .concat();
    std::fs::write(x.join("ca.crt"), both_cas).unwrap();
    std::fs::copy(o.join("ca.key"), x.join("ca.key")).unwrap();
    for file in ["client.crt", "client.key", "server.crt", "server.key"] {
        std::fs::copy(r.join(file), x.join(file)).unwrap();
    }
    let trusts_only_real = ["-client-ca", r.join("ca.crt").to_str().unwrap()].map(str::to_owned);
    let flags: Vec<&str> = trusts_only_real.iter().map(String::as_str).collect();

    let server = GoTls::start(x, "eku-ignored", &flags);
    let run = run_endpoint(&server.addr(), x, GRPC);
    assert_eq!(run.code, Some(2), "{}", run.said);
    for case in [
        "handshake/server-auth-only-eku",
        "handshake/expired-client-cert",
        "handshake/not-yet-valid-client-cert",
        "handshake/ca-cert-as-client-cert",
    ] {
        for v in ["tls1.2", "tls1.3"] {
            let id = format!("{case}/{v}");
            assert_eq!(run.verdict(&id), "error", "{id}: {}", run.reason(&id));
            assert!(
                run.reason(&id).contains(
                    "minted with the same CA key and sent with the same chain was not admitted"
                ),
                "{id}: {}",
                run.reason(&id)
            );
        }
    }
    assert_eq!(run.verdict("handshake/wrong-ca/tls1.3"), "pass");
    let cas: Vec<&str> = run.report["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["role"] == "client-ca")
        .filter_map(|c| c["subject"].as_str())
        .collect();
    assert_eq!(cas.len(), 2, "both CAs of ca.crt are listed: {cas:?}");

    // The same server with the key of the CA it trusts: the case is judged, and fails.
    let run = run_endpoint(&server.addr(), r, GRPC);
    assert_eq!(run.code, Some(1), "{}", run.said);
    assert_eq!(run.verdict("handshake/server-auth-only-eku/tls1.3"), "fail");
}

/// Issue 16.1: root -> intermediate -> leaves, the server trusting the root and `--ca-key` the
/// intermediate's key. The minted certificates are sent with the intermediate, as the real client
/// sends its own: a correct server passes everything, and a server that ignores the extended key
/// usage is caught (sent without the intermediate, the leaf would be refused as unknown and the
/// case would pass for the wrong reason).
#[test]
fn an_intermediate_ca_key_mints_leaves_that_carry_its_chain() {
    let pki = common::tempdir();
    intermediate_bundle(pki.path());
    let server = GoTls::start(pki.path(), "strict", &[]);
    let run = run_endpoint(&server.addr(), pki.path(), GRPC);
    assert_eq!(run.code, Some(0), "{}", run.said);
    for v in ["tls1.2", "tls1.3"] {
        for case in [
            "handshake/server-auth-only-eku",
            "handshake/expired-client-cert",
            "handshake/forged-issuer-serial",
        ] {
            let id = format!("{case}/{v}");
            assert_eq!(run.verdict(&id), "pass", "{id}: {}", run.reason(&id));
        }
    }
    let chain: Vec<&str> = run.report["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["role"] == "client-chain")
        .filter_map(|c| c["subject"].as_str())
        .collect();
    assert_eq!(
        chain,
        ["CN=test intermediate CA"],
        "the chain the client presents"
    );

    // Issue 26.5: the intermediate itself given as a client CA (`--ca-cert`: it, not
    // self-signed, then the root the server is anchored at) with its key. The minted leaves go
    // out with the intermediate, so the minted control is admitted and the minted cases are
    // judged (sent alone, every one was no verdict).
    let p = pki.path();
    let bundle = [
        std::fs::read_to_string(p.join("inter.crt")).unwrap(),
        std::fs::read_to_string(p.join("ca.crt")).unwrap(),
    ]
    .concat();
    std::fs::write(p.join("inter-then-root.crt"), bundle).unwrap();
    let file = |name: &str| p.join(name).to_str().unwrap().to_owned();
    let addr = server.addr();
    let (inter, key, client, client_key, root) = (
        file("inter-then-root.crt"),
        file("inter.key"),
        file("client.crt"),
        file("client.key"),
        file("ca.crt"),
    );
    let mut args = vec![
        "run",
        "--target",
        "endpoint",
        "--addr",
        &addr,
        "--ca-cert",
        &inter,
        "--ca-key",
        &key,
        "--client-cert",
        &client,
        "--client-key",
        &client_key,
        "--server-ca",
        &root,
    ];
    args.extend_from_slice(GRPC);
    let run = common::run_cli(&args);
    assert_eq!(run.code, Some(0), "{}", run.said);
    for v in ["tls1.2", "tls1.3"] {
        for case in [
            "handshake/server-auth-only-eku",
            "handshake/expired-client-cert",
        ] {
            let id = format!("{case}/{v}");
            assert_eq!(run.verdict(&id), "pass", "{id}: {}", run.reason(&id));
        }
    }

    let server = GoTls::start(pki.path(), "eku-ignored", &[]);
    let run = run_endpoint(&server.addr(), pki.path(), GRPC);
    assert_eq!(run.code, Some(1), "{}", run.said);
    for v in ["tls1.2", "tls1.3"] {
        let id = format!("handshake/server-auth-only-eku/{v}");
        assert_eq!(run.verdict(&id), "fail", "{id}: {}", run.reason(&id));
        assert!(run.reason(&id).contains("ACCEPTED"), "{}", run.reason(&id));
    }
}

/// A bundle made by openssl: a root CA (`ca.crt`, the server's client CA and server CA), an
/// intermediate CA under it whose key is `ca.key`, a client leaf from the intermediate sent with
/// it (`client.crt` = leaf + intermediate), and a server certificate from the root.
pub fn intermediate_bundle(dir: &Path) {
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
        "root.key",
        "-out",
        "ca.crt",
        "-days",
        "3650",
        "-subj",
        "/CN=test root CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    let sign = |name: &str, cn: &str, ext: &str, ca: &str, ca_key: &str| {
        openssl_leaf(dir, (name, cn), ext, (ca, ca_key), "365");
    };
    sign(
        "inter",
        "test intermediate CA",
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n",
        "ca.crt",
        "root.key",
    );
    sign(
        "server",
        "localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        "ca.crt",
        "root.key",
    );
    sign(
        "leaf",
        "argocd-core-clients",
        "extendedKeyUsage=clientAuth\n",
        "inter.crt",
        "inter.key",
    );
    let chain = [
        std::fs::read_to_string(dir.join("leaf.crt")).unwrap(),
        std::fs::read_to_string(dir.join("inter.crt")).unwrap(),
    ]
    .concat();
    std::fs::write(dir.join("client.crt"), chain).unwrap();
    std::fs::copy(dir.join("leaf.key"), dir.join("client.key")).unwrap();
    std::fs::copy(dir.join("inter.key"), dir.join("ca.key")).unwrap();
}

/// Issue 16.10: a slow server is not 15 s of silence: stderr says how many attempts are done of
/// those planned while probing (plain lines when stderr is not a terminal); an advisory check
/// that fails is printed as advisory, never as FAIL, in a run that passes.
#[test]
fn progress_is_shown_and_advisories_are_advisory() {
    let pki = pki_init("rsa2048");
    let server = GoTls::start(pki.path(), "slow-reject", &["-no-grpc"]);
    let run = run_endpoint(&server.addr(), pki.path(), SLOW_TLS);
    assert_eq!(run.code, Some(0), "{}", run.said);
    let counts: Vec<(usize, usize)> = run
        .said
        .lines()
        .filter_map(|l| l.trim().rsplit_once(": ")?.1.strip_suffix(" attempts"))
        .filter_map(|c| c.split_once('/'))
        .map(|(d, p)| (d.parse().unwrap(), p.parse().unwrap()))
        .collect();
    assert!(counts.len() >= 3, "{}", run.said);
    let (done, planned) = *counts.last().unwrap();
    assert_eq!(done, planned, "the last line says all are done");
    assert!(planned > 100, "every door of every refusal: {planned}");
    assert!(
        counts.iter().any(|&(d, p)| d < p && p == planned),
        "a line while the refusals were under way: {counts:?}"
    );

    let strict = GoTls::start(pki.path(), "strict", &[]);
    let run = run_endpoint(&strict.addr(), pki.path(), GRPC);
    assert_eq!(run.code, Some(0), "{}", run.said);
    assert!(
        run.said
            .contains("ADVISORY handshake/ca-cert-as-client-cert/tls1.3"),
        "{}",
        run.said
    );
    assert!(!run.said.contains("FAIL handshake/ca-cert-as-client-cert"));
}

/// Issue 26.1: a server name with a trailing dot. Go refuses such a ClientHello (decode_error),
/// so the wrong server is an SNI router in front of two: names with a trailing dot pass to a
/// server without client authentication (the rustls double, which reads the name as absolute),
/// the rest to the strict Go server. Only the hand-built client sends the dot, under TLS 1.2 and
/// 1.3.
#[test]
fn a_trailing_dot_that_an_sni_router_misses_is_a_door() {
    use argocd_mtls_verify::reference::{self, ClientAuthPolicy, ReferenceConfig};
    let fx = common::fixture();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut config = ReferenceConfig::from_bundle(&fx.bundle).unwrap();
    config.policy = ClientAuthPolicy::NoClientAuth;
    config.health_http = false;
    let open = runtime.block_on(reference::start(config)).unwrap();
    let fallback = open.grpc_addr.to_string();
    let router = GoTls::start(fx.dir.path(), "sni-dot", &["-fallback", &fallback]);
    let run = run_endpoint(&router.addr(), fx.dir.path(), GRPC);
    assert_eq!(run.code, Some(1), "{}", run.said);
    let reason = run.reason("handshake/no-client-cert/tls1.3");
    assert!(
        reason.contains(".`, ALPN `h2`, a hand-built ClientHello: server sent its HTTP/2 SETTINGS"),
        "{reason}"
    );
    // Under TLS 1.2 too: the hand-built client sends the dot in a TLS 1.2 hello as well.
    let reason = run.reason("handshake/no-client-cert/tls1.2");
    assert!(
        reason.contains(".`, ALPN `h2`, a hand-built ClientHello: server sent its HTTP/2 SETTINGS"),
        "{reason}"
    );
    let want: std::collections::BTreeSet<String> = [
        "handshake/no-client-cert/tls1.2".to_owned(),
        "handshake/no-client-cert/tls1.3".to_owned(),
    ]
    .into();
    assert_eq!(run.failing_required(), want, "{}", run.said);
    // The same router with a strict server behind it: the dot is refused there too.
    drop(router);
    let strict = GoTls::start(fx.dir.path(), "strict", &[]);
    let router = GoTls::start(fx.dir.path(), "sni-dot", &["-fallback", &strict.addr()]);
    let run = run_endpoint(&router.addr(), fx.dir.path(), GRPC);
    assert_eq!(run.code, Some(0), "{}", run.said);
    drop(open);
}

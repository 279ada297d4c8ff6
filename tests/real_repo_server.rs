//! The endpoint suite against the real argocd-repo-server at every version the rig builds (v3.5.1,
//! v3.5.8 and v3.6.2, each from Argo CD's Go module by `tests/rig/argocd/build.sh`), started on
//! 127.0.0.1 in each configuration an operator can end up with. Every case runs once per version,
//! as `v3_5_1::<case>`, `v3_5_8::<case>` and `v3_6_2::<case>`. What the server did in each is in
//! ../shared/DOMAIN.md; these tests hold the harness's verdicts to it.

mod common;

use std::path::Path;

use common::rig::{ArgoCd, RepoServer, RepoServerConfig};
use common::{NEGATIVES, Run, per_version, pki_init, run_endpoint};

/// One `#[test]` per case and version: module `v3_6_2` holds `fn <case>() { <case>(V3_6_2) }`.
macro_rules! on_every_version {
    ($($case:ident),+ $(,)?) => {
        on_every_version!(@version v3_5_1 V3_5_1 $($case)+);
        on_every_version!(@version v3_5_8 V3_5_8 $($case)+);
        on_every_version!(@version v3_6_2 V3_6_2 $($case)+);
    };
    (@version $module:ident $version:ident $($case:ident)+) => {
        mod $module {
            $(
                #[test]
                fn $case() {
                    super::$case(super::ArgoCd::$version)
                }
            )+
        }
    };
}

on_every_version!(
    mtls_on_passes_and_records_what_the_server_did,
    missing_client_ca_is_silently_open_and_fails,
    client_ca_from_another_pki_refuses_the_valid_client,
    tls13_only_skips_tls12_with_the_reason,
    text_logs_and_grpc_info_logging_record_the_refusals,
    ecdsa_server_key_skips_tls12_with_the_cipher_finding,
    disabled_tls_is_detected_as_plaintext,
    grpc_server_probed_as_plain_tls_is_named_not_judged,
);

/// The repo-server of `argocd` with the bundle's server certificate and `client_ca`.
fn server(
    argocd: ArgoCd,
    pki: &Path,
    client_ca: Option<&Path>,
    args: &[&str],
    env: &[(&str, &str)],
) -> RepoServer {
    RepoServer::start(&RepoServerConfig {
        argocd,
        server_pair: Some((pki.join("server.crt"), pki.join("server.key"))),
        client_ca: client_ca.map(Path::to_owned),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        plaintext: false,
    })
}

/// The whole endpoint suite against `s`, with its health port and log.
fn probe(s: &RepoServer, pki: &Path, extra: &[&str]) -> Run {
    let flags = s.harness_flags();
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    run_endpoint(&s.addr(), pki, &args)
}

/// The alerts each attempt of a check received, at every door.
fn alerts(run: &Run, id: &str) -> Vec<String> {
    alerts_where(run, id, |_| true)
}

/// The alerts of the attempts of a check at the doors whose ALPN offer `keep` accepts (`[]`:
/// none offered): one per door, from its door class.
fn alerts_where(run: &Run, id: &str, keep: impl Fn(&[&str]) -> bool) -> Vec<String> {
    let classes = run.check(id)["observed"]["door_classes"]
        .as_array()
        .unwrap_or_else(|| panic!("{id} has no door classes"));
    let mut alerts = Vec::new();
    for class in classes {
        let alert = class["attempt"]["alert"].as_str().unwrap_or("none");
        for door in class["doors"].as_array().unwrap() {
            // `SNI `x`, ALPN `h2,http/1.1`` or `no SNI, no ALPN`.
            let door = door.as_str().unwrap();
            // A name with a trailing dot: Go refuses the ClientHello itself (decode_error, RFC
            // 6066 §3), before any certificate is asked for; checked on its own below.
            if door.contains(".`, ALPN") {
                continue;
            }
            // A signature family an RSA server cannot sign with: Go has no chain to send and
            // refuses the hello (handshake_failure), before any certificate is asked for;
            // checked on its own below.
            if door.contains("signatures `ecdsa`") || door.contains("signatures `ed25519`") {
                continue;
            }
            let offered: Vec<&str> = door
                .split("ALPN `")
                .nth(1)
                .and_then(|rest| rest.split('`').next())
                .map(|list| list.split(',').collect())
                .unwrap_or_default();
            if keep(&offered) {
                alerts.push(alert.to_owned());
            }
        }
    }
    alerts
}

/// mTLS on, bundle from `pki init` with its defaults (RSA 2048, which Argo CD's default TLS 1.2
/// cipher needs): everything passes under TLS 1.2 and 1.3; the CA certificate presented as a client
/// is accepted by Go's verifier (recorded as an advisory failure); the refusals carry the alerts
/// DOMAIN.md lists; the build is recorded.
fn mtls_on_passes_and_records_what_the_server_did(argocd: ArgoCd) {
    let pki = pki_init("default");
    let s = server(
        argocd,
        pki.path(),
        Some(&pki.path().join("ca.crt")),
        &[],
        &[],
    );
    let run = probe(&s, pki.path(), &[]);
    run.assert_exit(0);
    for id in per_version::<Vec<String>>(&NEGATIVES, &["tls1.2", "tls1.3"]) {
        assert_eq!(run.verdict(&id), "pass", "{id}: {}", run.reason(&id));
        // The base doors for every refusal: the three SNIs (configured, none, unexpected) and
        // the four other DNS names of the `pki init` server certificate with `h2`; no ALPN and
        // `http/1.1` under the three SNIs. The refusal without a certificate is tried at every
        // door of suites/doors.toml; each other one also at a door of each behaviour it found
        // (grpc-go's `no_application_protocol` for an id it does not speak).
        let doors = alerts(&run, &id).len();
        if id.starts_with("handshake/no-client-cert/") {
            assert!(doors > 40, "{id}: every door, {doors}");
        } else {
            assert!(
                (13..=16).contains(&doors),
                "{id}: base and class doors, {doors}"
            );
        }
        // Go lets an http/1.1-only ClientHello into an h2-only server as if it offered no ALPN
        // (crypto/tls's http/1.1 fallback): those doors are judged on the certificate too.
        assert_eq!(
            alerts_where(&run, &id, |o| o == ["http/1.1"]).len(),
            3,
            "{id}"
        );
    }
    // The hand-built hellos, under TLS 1.3 and (but X25519MLKEM768) 1.2: a name with a trailing
    // dot is refused as a malformed hello, every other (GREASE, X25519MLKEM768, an over-long name,
    // another fingerprint) on the certificate: under 1.2 after the client's flight, its empty
    // Certificate included.
    for (v, built, refusal) in [
        ("tls1.3", "9 hand-built", "certificate_required"),
        ("tls1.2", "8 hand-built", "handshake_failure"),
    ] {
        let id = format!("handshake/no-client-cert/{v}");
        let classes = run.check(&id)["observed"]["door_classes"]
            .as_array()
            .unwrap()
            .clone();
        let at = |dotted: bool| -> Vec<(String, bool)> {
            classes
                .iter()
                .filter(|c| {
                    c["doors"].as_array().unwrap().iter().any(|d| {
                        let d = d.as_str().unwrap();
                        d.contains("hand-built") && d.contains(".`, ALPN") == dotted
                    })
                })
                .map(|c| {
                    let o = &c["attempt"];
                    (
                        o["alert"].as_str().unwrap_or("none").to_owned(),
                        o["client_cert_requested"].as_bool().unwrap(),
                    )
                })
                .collect()
        };
        assert_eq!(at(true), [("decode_error".to_owned(), false)], "{id}");
        assert_eq!(at(false), [(refusal.to_owned(), true)], "{id}");
        let reason = run.reason(&id);
        assert!(reason.contains(built), "{reason}");
    }
    // The server's announced trust store is the operator's CA and its health-check issuer.
    assert_eq!(run.verdict("tls/advertised-client-cas"), "pass");
    assert!(
        run.reason("tls/advertised-client-cas")
            .contains("O=Argo CD Health Check"),
        "{}",
        run.reason("tls/advertised-client-cas")
    );
    for v in ["tls1.2", "tls1.3"] {
        let id = format!("handshake/ca-cert-as-client-cert/{v}");
        assert_eq!(run.verdict(&id), "fail", "Go accepts a pool CA as a leaf");
        assert_eq!(run.check(&id)["severity"], "advisory");
    }
    // The alerts DOMAIN.md records for v3.5.1, under every SNI; v3.5.8 and v3.6.2 send the same.
    let table = [
        (
            "handshake/no-client-cert",
            "handshake_failure",
            "certificate_required",
        ),
        ("handshake/wrong-ca", "unknown_ca", "unknown_ca"),
        ("handshake/lookalike-ca", "unknown_ca", "unknown_ca"),
        (
            "handshake/health-check-impostor",
            "unknown_ca",
            "unknown_ca",
        ),
        (
            "handshake/expired-client-cert",
            "certificate_expired",
            "certificate_expired",
        ),
        (
            "handshake/server-auth-only-eku",
            "bad_certificate",
            "bad_certificate",
        ),
        // With a key of the certificate's own type the signature check fails as such; DOMAIN.md's
        // `illegal_parameter` under TLS 1.3 came from signing with a P-256 key (a scheme mismatch).
        (
            "handshake/stolen-cert-without-key",
            "decrypt_error",
            "decrypt_error",
        ),
    ];
    for (id, tls12, tls13) in table {
        for (v, alert) in [("tls1.2", tls12), ("tls1.3", tls13)] {
            let id = format!("{id}/{v}");
            // At every door whose offer grpc-go can answer (h2 alone or in a list, no ALPN,
            // http/1.1) the certificate is what is judged; any other id is refused before it.
            let on_cert = |o: &[&str]| o.is_empty() || o.contains(&"h2") || o == ["http/1.1"];
            let judged = alerts_where(&run, &id, on_cert);
            assert!(judged.iter().all(|a| a == alert), "{id}: {judged:?}");
            let others = alerts_where(&run, &id, |o| !on_cert(o));
            assert!(
                others.iter().all(|a| a == "no_application_protocol"),
                "{id}: {others:?}"
            );
        }
    }
    // Issue 26.1, signature algorithms: the RSA server has no chain for a client verifying only
    // ECDSA or Ed25519 and refuses that hello whoever sends it (so no other refusal is tried
    // there); RSA-PSS (and PKCS#1 under TLS 1.2) reaches the certificate like any door.
    for v in ["tls1.2", "tls1.3"] {
        let id = format!("handshake/no-client-cert/{v}");
        let classes = run.check(&id)["observed"]["door_classes"]
            .as_array()
            .unwrap()
            .clone();
        // What the server did at a family's door: its alert, and whether it got as far as
        // asking for a certificate.
        let at = |family: &str| {
            classes
                .iter()
                .find(|c| {
                    c["doors"].as_array().unwrap().iter().any(|d| {
                        d.as_str()
                            .unwrap()
                            .contains(&format!("signatures `{family}` alone"))
                    })
                })
                .map(|c| {
                    let o = &c["attempt"];
                    (
                        o["alert"].as_str().unwrap_or("none").to_owned(),
                        o["client_cert_requested"].as_bool().unwrap(),
                    )
                })
        };
        for family in ["ecdsa", "ed25519"] {
            assert_eq!(
                at(family),
                Some(("handshake_failure".to_owned(), false)),
                "{id}: {family}"
            );
        }
        // Go's refusal without a certificate: handshake_failure under 1.2, certificate_required
        // under 1.3 (as at every other door).
        let alert = if v == "tls1.2" {
            "handshake_failure"
        } else {
            "certificate_required"
        };
        let refused = Some((alert.to_owned(), true));
        assert_eq!(at("rsa-pss"), refused, "{id}");
        assert_eq!(
            at("rsa-pkcs1"),
            if v == "tls1.2" { refused } else { None },
            "{id}"
        );
        assert!(
            run.reason(&id)
                .contains("with one family of signature algorithms")
        );
        let wrong_ca = run.reason(&format!("handshake/wrong-ca/{v}"));
        assert!(!wrong_ca.contains("signature"), "{wrong_ca}");
    }
    // TLS 1.2 refusals still record the version the ServerHello chose.
    let attempt =
        &run.check("handshake/no-client-cert/tls1.2")["observed"]["door_classes"][0]["attempt"];
    assert_eq!(attempt["tls_version"], "tls1.2");
    // The unauthenticated RPC: the server's own alert is the evidence, never a message of ours.
    let no_cert = run.reason("grpc/no-cert-rpc-denied");
    assert_eq!(run.verdict("grpc/no-cert-rpc-denied"), "pass");
    assert!(no_cert.contains("certificate_required"), "{no_cert}");
    // ... under both versions the server speaks.
    assert!(
        no_cert.contains("tls1.2:") && no_cert.contains("tls1.3:"),
        "{no_cert}"
    );
    assert!(!run.said.contains("used once"));
    assert!(
        run.reason("grpc/version").contains(&format!(
            "v{} is a release this tool pins",
            argocd.version()
        )),
        "{}",
        run.reason("grpc/version")
    );
    assert!(
        run.reason("tls/policy")
            .contains("tls1.2 negotiated with TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
        "{}",
        run.reason("tls/policy")
    );
    // JSON logs (the default of all three versions): both startup lines; the empty CN said in words.
    assert_eq!(run.verdict("log/mtls-enabled"), "pass");
    assert!(run.reason("log/health-cert-generated").contains("empty"));
    // Without gRPC INFO logging the refusals leave no line: an advisory failure that says why.
    assert_eq!(run.verdict("log/rejections-logged"), "fail");
    assert!(
        run.reason("log/rejections-logged")
            .contains("GRPC_GO_LOG_SEVERITY_LEVEL=info")
    );
    assert_eq!(run.verdict("probe/liveness-full"), "pass");
}

/// The client CA file is missing (a misnamed Secret key): the server silently accepts any client.
fn missing_client_ca_is_silently_open_and_fails(argocd: ArgoCd) {
    let pki = pki_init("rsa2048");
    let s = server(argocd, pki.path(), None, &[], &[]);
    let run = probe(&s, pki.path(), &[]);
    run.assert_exit(1);
    for id in per_version::<Vec<String>>(&NEGATIVES, &["tls1.2", "tls1.3"]) {
        assert_eq!(run.verdict(&id), "fail", "{id}: {}", run.reason(&id));
    }
    assert_eq!(run.verdict("grpc/no-cert-rpc-denied"), "fail");
    assert_eq!(run.verdict("log/mtls-enabled"), "fail");
}

/// The server trusts another PKI's CA: the legitimate client is refused, and without that positive
/// control no refusal proves anything.
fn client_ca_from_another_pki_refuses_the_valid_client(argocd: ArgoCd) {
    let pki = pki_init("rsa2048");
    let other = pki_init("rsa2048");
    let s = server(
        argocd,
        pki.path(),
        Some(&other.path().join("ca.crt")),
        &[],
        &[],
    );
    let run = probe(&s, pki.path(), &[]);
    run.assert_exit(1);
    for v in ["tls1.2", "tls1.3"] {
        let id = format!("handshake/valid-client-cert/{v}");
        assert_eq!(run.verdict(&id), "fail");
        assert!(run.reason(&id).contains("REFUSED"), "{}", run.reason(&id));
    }
    for id in per_version::<Vec<String>>(&NEGATIVES, &["tls1.2", "tls1.3"]) {
        assert_eq!(run.verdict(&id), "error", "{id}: {}", run.reason(&id));
    }
    // The failed call names what the server did, as grpc/version does.
    let health = run.reason("grpc/health");
    assert_eq!(run.verdict("grpc/health"), "fail");
    assert!(health.contains("alert `unknown_ca`"), "{health}");
}

/// `--tlsminversion 1.3`: the TLS 1.2 checks do not apply, and say why.
fn tls13_only_skips_tls12_with_the_reason(argocd: ArgoCd) {
    let pki = pki_init("rsa2048");
    let ca = pki.path().join("ca.crt");
    let s = server(
        argocd,
        pki.path(),
        Some(&ca),
        &["--tlsminversion", "1.3"],
        &[],
    );
    let run = probe(&s, pki.path(), &[]);
    run.assert_exit(0);
    let skipped = run.ids("skip", "handshake/");
    for id in per_version::<Vec<String>>(&NEGATIVES, &["tls1.2"]) {
        assert!(skipped.contains(&id), "{id}: {}", run.reason(&id));
        assert!(run.reason(&id).contains("does not offer tls1.2"));
    }
    assert_eq!(run.verdict("handshake/wrong-ca/tls1.3"), "pass");
}

/// Text logs, and grpc-go INFO logging: every refused handshake leaves a line.
fn text_logs_and_grpc_info_logging_record_the_refusals(argocd: ArgoCd) {
    let pki = pki_init("rsa2048");
    let ca = pki.path().join("ca.crt");
    let s = server(
        argocd,
        pki.path(),
        Some(&ca),
        &["--logformat", "text"],
        &[("GRPC_GO_LOG_SEVERITY_LEVEL", "info")],
    );
    let run = probe(&s, pki.path(), &[]);
    run.assert_exit(0);
    assert!(
        s.process
            .log_text()
            .contains("level=info msg=\"mTLS enabled for repo-server")
    );
    for id in [
        "log/mtls-enabled",
        "log/health-cert-generated",
        "log/rejections-logged",
    ] {
        assert_eq!(run.verdict(id), "pass", "{id}: {}", run.reason(id));
    }
    let evidence = run.check("log/rejections-logged")["evidence"].to_string();
    assert!(
        evidence.contains("tls: client didn't provide a certificate"),
        "{evidence}"
    );
    assert!(
        evidence.contains("x509: certificate signed by unknown authority"),
        "{evidence}"
    );
}

/// An ECDSA server key with Argo CD's default ciphers: TLS 1.2 cannot be negotiated at all. That is
/// a policy fact, reported with its cause; the TLS 1.2 mTLS checks are skipped, not failed.
fn ecdsa_server_key_skips_tls12_with_the_cipher_finding(argocd: ArgoCd) {
    let pki = pki_init("ecdsa-p256");
    let s = server(
        argocd,
        pki.path(),
        Some(&pki.path().join("ca.crt")),
        &[],
        &[],
    );
    let run = probe(&s, pki.path(), &[]);
    run.assert_exit(0);
    for id in per_version::<Vec<String>>(&NEGATIVES, &["tls1.2"]) {
        assert_eq!(run.verdict(&id), "skip", "{id}");
    }
    let why = run.reason("handshake/valid-client-cert/tls1.2");
    assert_eq!(
        run.verdict("handshake/valid-client-cert/tls1.2"),
        "skip",
        "{why}"
    );
    assert!(
        why.contains("cannot be negotiated")
            && why.contains("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
        "{why}"
    );
    assert!(run.reason("tls/policy").contains("ECDSA P-256"));
    assert_eq!(run.verdict("handshake/valid-client-cert/tls1.3"), "pass");
}

/// `--disable-tls` with an empty client CA path (the upgrade workaround): plaintext gRPC.
fn disabled_tls_is_detected_as_plaintext(argocd: ArgoCd) {
    let pki = pki_init("rsa2048");
    let s = RepoServer::start(&RepoServerConfig {
        argocd,
        args: ["--disable-tls", "--client-ca-path", ""]
            .map(String::from)
            .to_vec(),
        plaintext: true,
        ..Default::default()
    });
    let run = probe(&s, pki.path(), &[]);
    run.assert_exit(1);
    assert_eq!(
        run.verdict("transport/plaintext-h2c"),
        "fail",
        "{}",
        run.reason("transport/plaintext-h2c")
    );
}

/// Probed as plain TLS, the gRPC repo-server is recognised and no verdict is given.
fn grpc_server_probed_as_plain_tls_is_named_not_judged(argocd: ArgoCd) {
    let pki = pki_init("rsa2048");
    let s = server(
        argocd,
        pki.path(),
        Some(&pki.path().join("ca.crt")),
        &[],
        &[],
    );
    let run = probe(&s, pki.path(), &["--protocol", "tls"]);
    run.assert_exit(2);
    let why = run.reason("handshake/valid-client-cert/tls1.3");
    assert!(
        why.contains("speaks gRPC") && why.contains("--protocol grpc"),
        "{why}"
    );
    assert!(run.ids("pass", "handshake/").is_empty() && run.ids("fail", "").is_empty());
}

/// An offline machine has the pinned manifest in the Go module cache (the fixture build put each
/// version's module there): a local copy with the pinned digest counts as pinned, other bytes do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_manifest_with_the_pinned_digest_is_pinned() {
    use argocd_mtls_verify::kubernetes::manifest::ManifestSource;
    let out = std::process::Command::new("go")
        .args(["env", "GOMODCACHE"])
        .output()
        .unwrap();
    let cache = String::from_utf8(out.stdout).unwrap();
    let limits = argocd_mtls_verify::kubernetes::manifest::DownloadLimits::default();
    for argocd in ArgoCd::ALL {
        let tag = format!("v{}", argocd.version());
        let local = Path::new(cache.trim()).join(format!(
            "github.com/argoproj/argo-cd/v3@{tag}/manifests/install.yaml"
        ));
        assert!(
            local.is_file(),
            "{} is missing: tests/rig/build.sh downloads the module",
            local.display()
        );
        let source =
            ManifestSource::resolve(&tag, "manifests/install.yaml", local.to_str()).unwrap();
        let (_, facts) = source.fetch(limits).await.unwrap();
        assert!(facts.pinned, "{tag}: {facts:?}");
        assert_eq!(
            facts.matches,
            Some(format!("{tag} manifests/install.yaml")),
            "{tag}"
        );

        let dir = common::tempdir();
        let edited = dir.path().join("install.yaml");
        let mut bytes = std::fs::read(&local).unwrap();
        bytes.extend_from_slice(b"\n# edited\n");
        std::fs::write(&edited, bytes).unwrap();
        let source =
            ManifestSource::resolve(&tag, "manifests/install.yaml", edited.to_str()).unwrap();
        let (_, facts) = source.fetch(limits).await.unwrap();
        assert!(!facts.pinned && facts.matches.is_none(), "{tag}: {facts:?}");
    }
}

//! Every judge on canned facts: its pass and its fail branches (and the ones that must give no
//! verdict), without a network. The end-to-end proof against real servers is in tests/.
//!
//! Over 500 lines on purpose: one canned-facts table per endpoint judge, kept together so that a
//! judge without a pass and a fail row is easy to see.

use std::collections::HashMap;

use super::evaluate;
use super::observe::{AlpnOffer, AttemptKey, Door, Observations};
use crate::endpoint::{Endpoint, HttpAnswer, LogSource, Protocol};
use crate::grpc::{CallError, HealthAnswer, NoCertRpc};
use crate::probe::{AcceptanceBasis, Outcome, ProbeOutcome, Sni, Stage, TlsVersion};
use crate::report::{SkipKind, Verdict};
use crate::suite::{Check, Presented, Suite};

const V13: TlsVersion = TlsVersion::Tls13;
const V12: TlsVersion = TlsVersion::Tls12;

fn check(id: &str) -> Check {
    Suite::load("endpoint")
        .unwrap()
        .checks()
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

fn endpoint(protocol: Protocol) -> Endpoint {
    Endpoint {
        relays: vec![],
        label: "canned".into(),
        addr: "127.0.0.1:1".parse().unwrap(),
        server_name: "localhost".into(),
        protocol,
        health: Some("127.0.0.1:2".into()),
        logs: Some(LogSource::Lines {
            origin: "canned log".into(),
            lines: vec![],
        }),
    }
}

/// An attempt that ended as `outcome` (with `alert`), accepted on `basis` when accepted.
fn attempt(
    v: TlsVersion,
    sni: Option<&str>,
    outcome: Outcome,
    alert: Option<&str>,
    basis: Option<AcceptanceBasis>,
) -> ProbeOutcome {
    let mut o = ProbeOutcome::blank(v, None);
    o.outcome = outcome;
    o.stage = match outcome {
        Outcome::Accepted => Stage::Application,
        _ => Stage::PostHandshake,
    };
    o.alert = alert.map(|a| crate::probe::Alert::from_name(a).expect("an alert name"));
    o.accepted_by = basis;
    o.sni = sni.map(str::to_owned);
    o.tls_version = Some(v.id().into());
    o.cipher_suite = Some("TLS13_AES_128_GCM_SHA256".into());
    o.detail = format!("canned {outcome}");
    o
}

fn key(label: &str, v: TlsVersion, sni: Sni) -> AttemptKey {
    let present: Presented = serde_json::from_value(serde_json::json!(label)).expect("a label");
    (
        present,
        v,
        Door {
            sni,
            alpn: AlpnOffer::Front,
            kx: None,
            sigs: None,
            framing: None,
            craft: None,
        },
    )
}

/// Observations where the valid client is admitted under both versions (gRPC: SERVING).
fn admitted() -> Observations {
    let mut obs = Observations::default();
    for v in [V12, V13] {
        obs.handshakes.insert(
            key("client", v, Sni::Configured),
            attempt(
                v,
                Some("localhost"),
                Outcome::Accepted,
                None,
                Some(AcceptanceBasis::H2Settings),
            ),
        );
        obs.grpc_health.insert(
            v,
            Ok(HealthAnswer {
                status: crate::grpc::ServingStatus::Serving,
                rpc_us: 1,
                connection: attempt(v, None, Outcome::Accepted, None, None),
            }),
        );
    }
    obs
}

/// The wrong-CA client under TLS 1.3, one outcome per SNI variant.
fn with_wrong_ca(
    mut obs: Observations,
    per_sni: [(Outcome, Option<&str>, Option<AcceptanceBasis>); 3],
) -> Observations {
    let snis = [
        (Sni::Configured, Some("localhost")),
        (Sni::Absent, None),
        (Sni::Other("x.invalid".into()), Some("x.invalid")),
    ];
    for ((sni, sent), (outcome, alert, basis)) in snis.into_iter().zip(per_sni) {
        obs.handshakes.insert(
            key("wrong-ca", V13, sni),
            attempt(V13, sent, outcome, alert, basis),
        );
    }
    obs
}

fn verdict(id: &str, obs: &Observations, protocol: Protocol) -> (Verdict, String) {
    let r = evaluate(&check(id), obs, &endpoint(protocol));
    (r.verdict, r.reason)
}

#[test]
fn refusal_judge() {
    use Outcome::*;
    let rejected = (Rejected, Some("unknown_ca"), None);
    let id = "handshake/wrong-ca/tls1.3";
    // (observations, protocol, verdict, text in the reason)
    let cases: Vec<(Observations, Protocol, Verdict, &str)> = vec![
        (
            with_wrong_ca(admitted(), [rejected; 3]),
            Protocol::Grpc,
            Verdict::Pass,
            "unknown_ca",
        ),
        (
            with_wrong_ca(
                admitted(),
                [
                    rejected,
                    (Accepted, None, Some(AcceptanceBasis::H2Settings)),
                    rejected,
                ],
            ),
            Protocol::Grpc,
            Verdict::Fail,
            "ACCEPTED with no SNI",
        ),
        // Refused, but the valid client was not admitted: proves nothing.
        (
            with_wrong_ca(Observations::default(), [rejected; 3]),
            Protocol::Grpc,
            Verdict::Error,
            "positive control",
        ),
        (
            with_wrong_ca(admitted(), [rejected, (Inconclusive, None, None), rejected]),
            Protocol::Grpc,
            Verdict::Error,
            "inconclusive",
        ),
        (
            with_wrong_ca(Observations::default(), [rejected; 3]),
            Protocol::Tls,
            Verdict::Error,
            "positive control",
        ),
    ];
    for (i, (obs, protocol, want, needle)) in cases.into_iter().enumerate() {
        let (got, reason) = verdict(id, &obs, protocol);
        assert_eq!(got, want, "case {i}: {reason}");
        assert!(
            reason.contains(needle),
            "case {i}: `{needle}` not in `{reason}`"
        );
    }
}

/// Plain TLS: silence is no acceptance when the valid client got a session ticket; it is one,
/// weakly, when the server gives nobody any sign.
#[test]
fn silence_is_judged_against_the_valid_clients_sign() {
    use Outcome::*;
    let silent = (Accepted, None, Some(AcceptanceBasis::Silence));
    // (the valid client's sign, the verdict on a silent wrong-CA client, what the reason says)
    for (sign, want, says) in [
        (
            AcceptanceBasis::SessionTicket,
            Verdict::Error,
            "no sign of acceptance",
        ),
        (AcceptanceBasis::Silence, Verdict::Fail, ""),
    ] {
        let mut obs = Observations::default();
        obs.handshakes.insert(
            key("client", V13, Sni::Configured),
            attempt(V13, Some("localhost"), Accepted, None, Some(sign)),
        );
        let (v, reason) = verdict(
            "handshake/wrong-ca/tls1.3",
            &with_wrong_ca(obs, [silent; 3]),
            Protocol::Tls,
        );
        assert_eq!(v, want, "{sign:?}: {reason}");
        assert!(reason.contains(says), "{sign:?}: {reason}");
    }
}

#[test]
fn admission_judge() {
    let id = "handshake/valid-client-cert/tls1.3";
    let (v, reason) = verdict(id, &admitted(), Protocol::Grpc);
    assert_eq!(v, Verdict::Pass, "{reason}");

    let mut refused = admitted();
    refused.handshakes.insert(
        key("client", V13, Sni::Configured),
        attempt(
            V13,
            Some("localhost"),
            Outcome::Rejected,
            Some("unknown_ca"),
            None,
        ),
    );
    let (v, reason) = verdict(id, &refused, Protocol::Grpc);
    assert_eq!(v, Verdict::Fail, "{reason}");
    assert!(reason.contains("REFUSED"), "{reason}");

    let mut not_serving = admitted();
    not_serving.grpc_health.insert(
        V13,
        Err(CallError {
            inconclusive: false,
            alert: None,
            not_grpc: false,
            status_code: Some(14),
            message: "gRPC status UNAVAILABLE".into(),
        }),
    );
    assert_eq!(verdict(id, &not_serving, Protocol::Grpc).0, Verdict::Fail);

    // A version the server does not offer: not applicable, with the cause.
    let mut no12 = admitted();
    no12.handshakes.insert(
        key("client", V12, Sni::Configured),
        attempt(
            V12,
            Some("localhost"),
            Outcome::Rejected,
            Some("protocol_version"),
            None,
        ),
    );
    let r = evaluate(
        &check("handshake/valid-client-cert/tls1.2"),
        &no12,
        &endpoint(Protocol::Grpc),
    );
    assert_eq!(
        (r.verdict, r.skip_kind),
        (Verdict::Skip, Some(SkipKind::NotApplicable)),
        "{}",
        r.reason
    );
}

/// The plaintext attempt a server that speaks HTTP/2 without TLS gives: its SETTINGS frame.
fn h2_in_plaintext() -> ProbeOutcome {
    attempt(
        V13,
        None,
        Outcome::Accepted,
        None,
        Some(AcceptanceBasis::H2Settings),
    )
}

#[test]
fn transport_judges() {
    let mut obs = admitted();
    obs.plaintext = Some(attempt(V13, None, Outcome::Rejected, None, None));
    assert_eq!(
        verdict("transport/plaintext-h2c", &obs, Protocol::Grpc).0,
        Verdict::Pass
    );
    obs.plaintext = Some(h2_in_plaintext());
    assert_eq!(
        verdict("transport/plaintext-h2c", &obs, Protocol::Grpc).0,
        Verdict::Fail
    );
    obs.legacy.insert(
        TlsVersion::Tls10,
        attempt(TlsVersion::Tls10, None, Outcome::Accepted, None, None),
    );
    assert_eq!(
        verdict("tls/versions/tls1.0", &obs, Protocol::Grpc).0,
        Verdict::Fail
    );
    obs.legacy.insert(
        TlsVersion::Tls10,
        attempt(TlsVersion::Tls10, None, Outcome::Inconclusive, None, None),
    );
    assert_eq!(
        verdict("tls/versions/tls1.0", &obs, Protocol::Grpc).0,
        Verdict::Error
    );

    // Server identity: verified or not, on the valid client's handshake.
    let mut verified = admitted();
    for (ok, want) in [(true, Verdict::Pass), (false, Verdict::Fail)] {
        let o = verified
            .handshakes
            .get_mut(&key("client", V13, Sni::Configured))
            .unwrap();
        o.server_chain.sha256 = vec!["AB".into()];
        o.server_chain.verified = Some(ok);
        assert_eq!(
            verdict("server/identity", &verified, Protocol::Grpc).0,
            want
        );
    }

    // TLS policy: a cipher finding for 1.2 is recorded, not failed; nothing negotiable is no verdict.
    let mut ecdsa = admitted();
    let mut refused12 = attempt(
        V12,
        Some("localhost"),
        Outcome::Rejected,
        Some("handshake_failure"),
        None,
    );
    refused12.tls_version = None;
    ecdsa
        .handshakes
        .insert(key("client", V12, Sni::Configured), refused12);
    ecdsa
        .handshakes
        .get_mut(&key("client", V13, Sni::Configured))
        .unwrap()
        .server_chain
        .leaf_key = Some("ECDSA P-256".into());
    let (v, reason) = verdict("tls/policy", &ecdsa, Protocol::Grpc);
    assert_eq!(v, Verdict::Pass, "{reason}");
    assert!(
        reason.contains("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
        "{reason}"
    );
    assert_eq!(
        verdict("tls/policy", &Observations::default(), Protocol::Grpc).0,
        Verdict::Error
    );
}

#[test]
fn grpc_judges() {
    let obs = admitted();
    assert_eq!(
        verdict("grpc/health", &obs, Protocol::Grpc).0,
        Verdict::Pass
    );
    let mut with_version = admitted();
    with_version.grpc_version = Some(Ok(serde_json::json!({ "version": "v3.5.1+109ca7c" })));
    assert_eq!(
        verdict("grpc/version", &with_version, Protocol::Grpc).0,
        Verdict::Pass
    );
    // A server without the service answers UNIMPLEMENTED: not judged on it; any other status
    // with the same words in its message is a failed call.
    let failed = |code: i32, message: &str| {
        let mut obs = admitted();
        obs.grpc_version = Some(Err(CallError {
            inconclusive: false,
            alert: None,
            not_grpc: false,
            status_code: Some(code),
            message: message.into(),
        }));
        verdict("grpc/version", &obs, Protocol::Grpc).0
    };
    assert_eq!(failed(12, "gRPC status (12)"), Verdict::Skip);
    assert_eq!(failed(14, "UNIMPLEMENTED (12) in the text"), Verdict::Fail);

    let connection = attempt(
        V13,
        None,
        Outcome::Rejected,
        Some("certificate_required"),
        None,
    );
    let cases: Vec<(NoCertRpc, Verdict)> = vec![
        (
            NoCertRpc::DiedBeforeResponse {
                connection: connection.clone(),
                error: "alert".into(),
            },
            Verdict::Pass,
        ),
        (NoCertRpc::RefusedInHandshake { connection }, Verdict::Pass),
        (
            NoCertRpc::Answered {
                answer: "Health/Check returned SERVING".into(),
            },
            Verdict::Fail,
        ),
        // A timeout is no denial.
        (
            NoCertRpc::Inconclusive {
                reason: "no answer within 5000 ms".into(),
            },
            Verdict::Error,
        ),
    ];
    for (rpc, want) in &cases {
        // The same answer under each version, and under one version while the other denies it:
        // a server open under one version is open.
        let denied = cases[1].0.clone();
        for (v12, v13) in [(rpc, rpc), (&denied, rpc), (rpc, &denied)] {
            let mut obs = admitted();
            obs.no_cert_rpc = [(V12, v12.clone()), (V13, v13.clone())].into();
            assert_eq!(
                verdict("grpc/no-cert-rpc-denied", &obs, Protocol::Grpc).0,
                *want,
                "{v12:?} / {v13:?}"
            );
        }
    }
    // gRPC checks do not apply to a plain TLS endpoint.
    let r = evaluate(&check("grpc/health"), &obs, &endpoint(Protocol::Tls));
    assert_eq!(r.skip_kind, Some(SkipKind::NotApplicable));
}

const MTLS_LINE: &str = "{\"level\":\"info\",\"msg\":\"mTLS enabled for repo-server: requiring client certificates from CA=/x\"}";

#[test]
fn health_and_log_judges() {
    let mut obs = admitted();
    let answer = |status| {
        Ok(HttpAnswer {
            url: "http://h/healthz".into(),
            status,
            body: String::new(),
            us: 1,
        })
    };
    obs.http = HashMap::from([
        ("/healthz".to_owned(), answer(200)),
        ("/healthz?full=true".to_owned(), answer(503)),
    ]);
    assert_eq!(
        verdict("probe/readiness", &obs, Protocol::Grpc).0,
        Verdict::Pass
    );
    assert_eq!(
        verdict("probe/liveness-full", &obs, Protocol::Grpc).0,
        Verdict::Fail
    );
    let mut no_health = endpoint(Protocol::Grpc);
    no_health.health = None;
    let r = evaluate(&check("probe/readiness"), &obs, &no_health);
    assert_eq!(
        (r.verdict, r.skip_kind),
        (Verdict::Skip, Some(SkipKind::MissingInput))
    );

    let refusal = r#"2026/11/24 19:25:05 INFO: [core] [Server #1] grpc: Server.Serve failed to create ServerTransport: connection error: desc = "ServerHandshake(\"127.0.0.1:1\") failed: tls: client didn't provide a certificate""#;
    obs.handshakes.insert(
        key("none", V13, Sni::Configured),
        attempt(
            V13,
            None,
            Outcome::Rejected,
            Some("certificate_required"),
            None,
        ),
    );
    for (lines, want) in [
        (vec![MTLS_LINE.to_owned()], Verdict::Pass),
        (vec!["unrelated".to_owned()], Verdict::Fail),
    ] {
        obs.logs = Some(Ok(lines));
        assert_eq!(verdict("log/mtls-enabled", &obs, Protocol::Grpc).0, want);
    }
    for (lines, want) in [
        (vec![refusal.to_owned()], Verdict::Pass),
        (vec!["unrelated".to_owned()], Verdict::Fail),
    ] {
        obs.logs = Some(Ok(lines));
        assert_eq!(
            verdict("log/rejections-logged", &obs, Protocol::Grpc).0,
            want
        );
    }
    // No refusal logged: the reason says what the pod spec sets, not a guess.
    for (configured, says) in [
        (
            Some(Some("info")),
            "although GRPC_GO_LOG_SEVERITY_LEVEL=info is set",
        ),
        (
            Some(Some("warning")),
            "sets GRPC_GO_LOG_SEVERITY_LEVEL=warning",
        ),
        (Some(None), "is not set on the repo-server"),
        (None, "only with GRPC_GO_LOG_SEVERITY_LEVEL=info"),
    ] {
        let j = super::logs::judge_rejections_logged(
            &obs,
            &["unrelated".to_owned()],
            "pod",
            configured,
        );
        assert_eq!(j.verdict, Verdict::Fail);
        assert!(j.reason.contains(says), "{configured:?}: {}", j.reason);
    }
    obs.logs = Some(Err(crate::endpoint::LogReadError::File {
        path: "/var/log/repo-server.log".into(),
        source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
    }));
    assert_eq!(
        verdict("log/mtls-enabled", &obs, Protocol::Grpc).0,
        Verdict::Error
    );
}

/// A protocol mismatch leaves every check without a verdict.
#[test]
fn a_protocol_mismatch_judges_nothing() {
    let mut obs = admitted();
    obs.protocol_mismatch = Some("the endpoint speaks gRPC".into());
    let (v, reason) = verdict("handshake/valid-client-cert/tls1.3", &obs, Protocol::Tls);
    assert_eq!(v, Verdict::Error);
    assert!(reason.contains("speaks gRPC"));
}

/// No session, no claim: on a port where the valid client got no TLS session, every case judged
/// on a session has no verdict, with the port's one reason, whatever its canned facts say (here a
/// legacy hello "refused" and an open h2c, as a plaintext HTTP server gives); the log line of the
/// server's start is a fact of its own; "no HTTP/2 in plaintext" claims nothing, and an HTTP/2
/// answer in plaintext stays a failure.
#[test]
fn no_session_claims_nothing_that_needs_one() {
    let mut obs = admitted();
    obs.legacy.insert(
        TlsVersion::Tls10,
        attempt(TlsVersion::Tls10, None, Outcome::Rejected, None, None),
    );
    obs.plaintext = Some(attempt(V13, None, Outcome::Rejected, None, None));
    obs.logs = Some(Ok(vec![MTLS_LINE.to_owned()]));
    let why = "127.0.0.1:1 does not speak TLS: it answered a ClientHello with an HTTP/1.x response `HTTP/1.0 400 Bad Request`";
    obs.no_session = Some(why.into());
    for id in [
        "handshake/valid-client-cert/tls1.3",
        "handshake/no-client-cert/tls1.2",
        "tls/versions/tls1.0",
        "tls/policy",
        "server/identity",
        "grpc/health",
        "log/rejections-logged",
        "transport/plaintext-h2c",
    ] {
        let (v, reason) = verdict(id, &obs, Protocol::Grpc);
        assert_eq!(
            (v, reason.as_str()),
            (Verdict::Error, &*format!("no verdict: {why}")),
            "{id}"
        );
    }
    assert_eq!(
        verdict("log/mtls-enabled", &obs, Protocol::Grpc).0,
        Verdict::Pass
    );
    obs.plaintext = Some(h2_in_plaintext());
    assert_eq!(
        verdict("transport/plaintext-h2c", &obs, Protocol::Grpc).0,
        Verdict::Fail
    );
}

/// The migration baseline: admitted without a certificate before mTLS is the evidence; a refusal
/// then, or anything seen through a failing port-forward, is not.
#[test]
fn baseline_judge() {
    let accepted = attempt(
        V13,
        None,
        Outcome::Accepted,
        None,
        Some(AcceptanceBasis::H2Settings),
    );
    let refused = attempt(
        V13,
        None,
        Outcome::Rejected,
        Some("certificate_required"),
        None,
    );
    let cases = [
        (&accepted, false, true, false),
        (&refused, false, false, false),
        (&accepted, true, false, true),
    ];
    use super::kubernetes::{Status, pods::judge_baseline};
    use crate::kubernetes::observed::{Baseline, BaselineAttempt};
    for (outcome, relay_failed, ok, inconclusive) in cases {
        let baseline = Baseline::Attempts(vec![BaselineAttempt {
            pod: "x".into(),
            outcome: outcome.clone(),
            relay_failed,
        }]);
        let judged = judge_baseline(&baseline);
        let (pod, f) = &judged[0];
        assert_eq!(*pod, Some("x"));
        assert_eq!(
            (f.ok(), f.status == Status::Inconclusive),
            (ok, inconclusive),
            "{}",
            f.detail
        );
    }
    let existing = judge_baseline(&Baseline::ExistingInstallation);
    assert_eq!(existing[0].0, None, "reported on the namespace");
    assert_eq!(existing[0].1.status, Status::NotApplicable);
}

/// Without an identity of the installation (a stand-in), neither the server's identity nor
/// Health/Check is judged: the stand-in's CA is nobody's server CA, and its admission or refusal
/// says nothing about legitimate clients (issue 17.4).
#[test]
fn a_stand_in_identity_judges_neither_server_identity_nor_health() {
    let mut obs = admitted();
    obs.stand_in = Some("no Secret could be read".into());
    for id in ["server/identity", "grpc/health"] {
        let r = evaluate(&check(id), &obs, &endpoint(Protocol::Grpc));
        assert_eq!(r.verdict, Verdict::Skip, "{id}: {}", r.reason);
        assert_eq!(r.skip_kind, Some(SkipKind::MissingInput), "{id}");
        assert!(
            r.reason.contains("no Secret could be read"),
            "{id}: {}",
            r.reason
        );
    }
    // The installation's own server CA (read from its Secrets) judges the server's identity
    // without a client identity; Health/Check still needs one.
    obs.stand_in_server_ca = Some("secret/argocd/argocd-repo-server-tls key ca.crt".into());
    let r = evaluate(&check("server/identity"), &obs, &endpoint(Protocol::Grpc));
    assert_ne!(r.verdict, Verdict::Skip, "{}", r.reason);
    let r = evaluate(&check("grpc/health"), &obs, &endpoint(Protocol::Grpc));
    assert_eq!(r.verdict, Verdict::Skip, "{}", r.reason);
    obs.stand_in = None;
    let r = evaluate(&check("grpc/health"), &obs, &endpoint(Protocol::Grpc));
    assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
}

/// Issue 26, economy by behaviour: two doors whose attempts differ only in what the server chose
/// there (the ALPN it picked from the offer) are two behaviours. Both are counted, the one unlike
/// the front door is named, and the door that is not base becomes a door every other refusal
/// is tried at; the same choice at both doors is one behaviour, and nothing more is tried.
#[test]
fn doors_that_differ_only_in_the_servers_choice_are_two_classes() {
    use super::observe::{class_doors, coverage};
    let front = Door::FRONT;
    let list = Door {
        sni: Sni::Configured,
        alpn: AlpnOffer::Ids(&["h2", "http/1.1"]),
        kx: None,
        sigs: None,
        framing: None,
        craft: None,
    };
    let mut at_front = attempt(
        V13,
        Some("localhost"),
        Outcome::Rejected,
        Some("certificate_required"),
        None,
    );
    at_front.alpn = Some("h2".into());
    at_front.alpn_offered = vec!["h2".into()];
    let mut at_list = at_front.clone();
    at_list.alpn_offered = vec!["h2".into(), "http/1.1".into()];
    let doors = vec![(front.clone(), true), (list.clone(), false)];
    let explored = |chosen: &str| {
        let mut b = at_list.clone();
        b.alpn = Some(chosen.into());
        vec![
            ((Presented::None, V13, front.clone()), at_front.clone()),
            ((Presented::None, V13, list.clone()), b),
        ]
    };

    let alpn_coverage = |explored: &[(AttemptKey, ProbeOutcome)]| {
        coverage(Presented::None, explored, &doors, &Default::default())[&V13]
            .iter()
            .find(|c| c.dimension == "ALPN offer")
            .expect("the ALPN dimension")
            .clone()
    };

    let differ = explored("http/1.1");
    assert_eq!(class_doors(&differ, &doors), vec![(V13, list.clone())]);
    let alpn = alpn_coverage(&differ);
    assert_eq!((alpn.variants, alpn.behaviours), (1, 2));
    assert_eq!(alpn.apart.len(), 1, "{:?}", alpn.apart);
    assert!(
        alpn.apart[0].contains("ALPN `h2,http/1.1`")
            && alpn.apart[0].contains("ALPN `http/1.1` chosen"),
        "{:?}",
        alpn.apart
    );

    let same = explored("h2");
    assert!(class_doors(&same, &doors).is_empty());
    let alpn = alpn_coverage(&same);
    assert_eq!((alpn.variants, alpn.behaviours), (1, 1));
    assert!(alpn.apart.is_empty());
}

/// Issue 26, signature algorithms: a door the server refused on the ClientHello alone (before its
/// own certificate went out: no chain for the family offered) is a behaviour of its own, named
/// in the coverage, but no other refusal is sent there (every identity sends that same hello);
/// a door where the server went on to its certificate and behaved differently is tried by them.
#[test]
fn a_door_shut_at_the_hello_is_named_but_not_tried_again() {
    use super::observe::{class_doors, coverage};
    let front = Door::FRONT;
    let door = |f| Door {
        sigs: Some(f),
        ..Door::FRONT
    };
    let (rsa, eddsa) = (
        door(crate::probe::SigFamily::RsaPss),
        door(crate::probe::SigFamily::Ed25519),
    );
    let mut at_front = attempt(
        V13,
        Some("localhost"),
        Outcome::Rejected,
        Some("certificate_required"),
        None,
    );
    at_front.client_cert_requested = true;
    at_front.server_chain.sha256 = vec!["ab".into()];
    // No Ed25519 chain: refused at the hello.
    let mut shut = attempt(
        V13,
        Some("localhost"),
        Outcome::Rejected,
        Some("handshake_failure"),
        None,
    );
    shut.stage = Stage::Handshake;
    shut.tls_version = None;
    shut.signatures_offered = Some(crate::probe::SigFamily::Ed25519);
    // An RSA chain served, and no certificate asked for: a behaviour the others must meet too.
    let mut other_chain = attempt(
        V13,
        Some("localhost"),
        Outcome::Rejected,
        Some("bad_certificate"),
        None,
    );
    other_chain.server_chain.sha256 = vec!["cd".into()];
    other_chain.signatures_offered = Some(crate::probe::SigFamily::RsaPss);
    let doors = vec![
        (front.clone(), true),
        (rsa.clone(), false),
        (eddsa.clone(), false),
    ];
    let explored = vec![
        ((Presented::None, V13, front.clone()), at_front),
        ((Presented::None, V13, rsa.clone()), other_chain),
        ((Presented::None, V13, eddsa.clone()), shut),
    ];
    assert_eq!(class_doors(&explored, &doors), vec![(V13, rsa)]);
    let sigs = coverage(Presented::None, &explored, &doors, &Default::default())[&V13]
        .iter()
        .find(|c| c.dimension == "signature algorithms")
        .expect("the signature dimension")
        .clone();
    assert_eq!((sigs.variants, sigs.behaviours), (2, 3));
    assert!(
        sigs.apart
            .iter()
            .any(|a| a.contains("signatures `ed25519` alone") && a.contains("handshake_failure")),
        "{:?}",
        sigs.apart
    );
}

/// `tls/session-resumption` on canned facts: no session handed to a refused attempt passes, a
/// resumed one that reached gRPC fails, and a run where nothing was refused (a filter that
/// selects no refusal case, a server open to all) proves nothing.
#[test]
fn resumption_judge() {
    use crate::grpc::{ResumedCall, Resumption};
    let id = "tls/session-resumption";
    let with = |r: Resumption| {
        let mut obs = admitted();
        obs.resumption = Some(r);
        verdict(id, &obs, Protocol::Grpc)
    };
    let call = |origin: &str, resumed: bool, answer: Result<String, CallError>| ResumedCall {
        origin: origin.into(),
        session: "a TLS 1.3 session ticket".into(),
        version: "tls1.3".into(),
        resumed,
        answer,
    };
    let none_handed = with(Resumption {
        refused: 10,
        ..Default::default()
    });
    assert_eq!(none_handed.0, Verdict::Pass, "{}", none_handed.1);
    let served = with(Resumption {
        refused: 10,
        handed: 1,
        tries: vec![call("`none`", true, Ok("SERVING".into()))],
        controls: vec![call("the valid client", true, Ok("SERVING".into()))],
    });
    assert_eq!(served.0, Verdict::Fail, "{}", served.1);
    assert!(served.1.contains("the server resumed it"), "{}", served.1);
    let nothing_refused = with(Resumption::default());
    assert_eq!(nothing_refused.0, Verdict::Error, "{}", nothing_refused.1);
    assert!(
        nothing_refused
            .1
            .contains("no attempt of this run was refused")
    );
}

/// The hand-built doors stand on their premise: the hand-built client's own handshake at the
/// front door must reach the server's judgement. Where it does not (its hello refused, its
/// cryptography not followed), every hand-built door is dropped, an admission at one of them
/// included, and the coverage says why; where it does, they stay. No other refusal is sent to a
/// hand-built door, whatever behaviour it showed.
#[test]
fn hand_built_doors_count_only_when_their_own_handshake_reached_the_server() {
    use super::observe::{class_doors, coverage, hand_built_premise};
    use crate::probe::Craft;
    let grease = Door {
        craft: Some(Craft::Grease),
        ..Door::FRONT
    };
    let doors = vec![
        (Door::FRONT, true),
        (Door::CRAFTED_FRONT, false),
        (grease.clone(), false),
    ];
    let refused = attempt(
        V13,
        Some("localhost"),
        Outcome::Rejected,
        Some("certificate_required"),
        None,
    );
    let admitted = attempt(
        V13,
        Some("localhost"),
        Outcome::Accepted,
        None,
        Some(AcceptanceBasis::H2Settings),
    );
    let explored = |crafted_front: ProbeOutcome| {
        vec![
            ((Presented::None, V13, Door::FRONT), refused.clone()),
            ((Presented::None, V13, Door::CRAFTED_FRONT), crafted_front),
            ((Presented::None, V13, grease.clone()), admitted.clone()),
        ]
    };

    let mut not_followed = attempt(V13, Some("localhost"), Outcome::Error, None, None);
    not_followed.detail = "the server could not follow the crafted client".into();
    let mut failed = explored(not_followed);
    let unjudged = hand_built_premise(&mut failed);
    let why = unjudged.get(&V13).expect("the premise failed");
    assert!(why.contains("could not follow the crafted client"), "{why}");
    assert_eq!(failed.len(), 1, "only the engine's door is left");
    let hand_built = coverage(Presented::None, &failed, &doors, &unjudged)[&V13]
        .iter()
        .find(|c| c.dimension.starts_with("hand-built"))
        .expect("the hand-built dimension is reported")
        .clone();
    assert_eq!(hand_built.variants, 0);
    assert!(hand_built.words().starts_with("not judged: "));

    let mut at_hello = refused.clone();
    at_hello.stage = Stage::Handshake;
    assert!(hand_built_premise(&mut explored(at_hello.clone())).contains_key(&V13));
    // Under TLS 1.2 the server judges the client inside the handshake: a refusal after the
    // client's flight (its empty Certificate) holds the premise, one of the hello does not.
    let v12 = |crafted_front: ProbeOutcome| {
        explored(crafted_front)
            .into_iter()
            .map(|((p, _, d), o)| ((p, V12, d), o))
            .collect::<Vec<_>>()
    };
    assert!(hand_built_premise(&mut v12(at_hello.clone())).contains_key(&V12));
    let mut after_flight = at_hello;
    after_flight.flight_read = Some(true);
    let mut held12 = v12(after_flight);
    assert!(hand_built_premise(&mut held12).is_empty());
    assert_eq!(held12.len(), 3);

    let mut held = explored(refused.clone());
    assert!(hand_built_premise(&mut held).is_empty());
    assert_eq!(held.len(), 3);
    // The admission at the GREASE door is a behaviour of its own, yet no door for the others.
    assert!(class_doors(&held, &doors).is_empty());
}

/// A client without a certificate under TLS 1.0: judged from the legacy hello's flight. A refused
/// version and a flight that asks for a certificate pass; a flight read to its end without a
/// CertificateRequest fails; one not read to its end, or no answer, is no verdict.
#[test]
fn legacy_client_auth_judge() {
    let id = "handshake/no-client-cert/tls1.0";
    let v10 = TlsVersion::Tls10;
    let with = |outcome: Outcome, asked: bool, read: Option<bool>| {
        let mut o = attempt(v10, Some("localhost"), outcome, None, None);
        o.client_cert_requested = asked;
        o.flight_read = read;
        let mut obs = admitted();
        obs.legacy.insert(v10, o);
        verdict(id, &obs, Protocol::Grpc)
    };
    let cases = [
        (
            with(Outcome::Rejected, false, None),
            Verdict::Pass,
            "refuses tls1.0 itself",
        ),
        (
            with(Outcome::Accepted, true, Some(true)),
            Verdict::Pass,
            "asks for a client certificate",
        ),
        (
            with(Outcome::Accepted, false, Some(true)),
            Verdict::Fail,
            "OPEN under tls1.0",
        ),
        (
            with(Outcome::Accepted, false, Some(false)),
            Verdict::Error,
            "not read to its end",
        ),
        (
            with(Outcome::Inconclusive, false, None),
            Verdict::Error,
            "no answer to judge",
        ),
    ];
    for ((got, reason), want, needle) in cases {
        assert_eq!(got, want, "{reason}");
        assert!(reason.contains(needle), "`{needle}` not in `{reason}`");
    }
    assert_eq!(verdict(id, &admitted(), Protocol::Grpc).0, Verdict::Error);
}

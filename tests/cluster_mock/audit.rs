//! The configuration audit of the Secret and the components, and the client log audit.

use std::collections::{BTreeMap, BTreeSet};

use argocd_mtls_verify::checks::kubernetes::{Finding, components, identities, secret};
use argocd_mtls_verify::kubernetes::workloads::{Role, Workload, discover};
use k8s_openapi::api::core::v1::Secret;

use super::common;
use super::fixtures::*;

/// The plain install's workloads, discovered by role from the fixture objects.
fn upstream_workloads() -> Vec<Workload> {
    let (deployments, statefulsets) = layout(false);
    fn parse<T: serde::de::DeserializeOwned>(v: &[serde_json::Value]) -> Vec<T> {
        v.iter()
            .map(|d| serde_json::from_value(d.clone()).unwrap())
            .collect()
    }
    discover(&parse(&deployments), &parse(&statefulsets))
}

/// `argocd-server` reading its pair from Secret `secret` (Option B: a Secret per component).
fn option_b(mut workloads: Vec<Workload>, secret: &str) -> Vec<Workload> {
    let server = workloads
        .iter_mut()
        .find(|w| w.role == Some(Role::Server))
        .unwrap();
    for m in &mut server.mounts {
        for (name, _) in &mut m.sources {
            if name == "argocd-repo-server-mtls" {
                *name = secret.to_owned();
            }
        }
    }
    workloads
}

/// What the namespace audit says of these Secrets and workloads: the shared Secret's checks and
/// each client's identity.
/// Whether the built-in suite makes `finding`'s case advisory: the one place severity is decided.
fn advisory(finding: &Finding) -> bool {
    let suite = argocd_mtls_verify::suite::Suite::load("kubernetes").unwrap();
    let case = suite
        .cases
        .iter()
        .find(|c| c.id == finding.case.id())
        .unwrap();
    case.severity == argocd_mtls_verify::suite::Severity::Advisory
}

fn audit(workloads: &[Workload], secrets: &[(&str, &Secret)]) -> Vec<Finding> {
    let secrets: BTreeMap<String, Secret> = secrets
        .iter()
        .map(|(n, s)| ((*n).to_owned(), (*s).clone()))
        .collect();
    let read: BTreeSet<String> = ["client-ca.crt", "client.crt", "client.key", "server-ca.crt"]
        .map(str::to_owned)
        .into();
    let mut out = secret::judge_mtls_secret(
        secrets.get("argocd-repo-server-mtls"),
        "client-ca.crt",
        &read,
    );
    let refused = BTreeMap::new();
    out.extend(identities::judge_identities(
        workloads,
        None,
        &identities::SecretsRead {
            found: &secrets,
            refused: &refused,
        },
    ));
    out
}

/// The config audit on a correct Secret and on Secrets broken one way each, and on Option B
/// (per-component Secrets). `ca.crt` instead of `client-ca.crt` must be a failure that says mTLS
/// is silently off; a component whose own Secret holds a pair from another CA fails by name. No
/// finding echoes Secret data.
#[test]
fn config_audit_on_correct_and_broken_secrets() {
    let fx = common::fixture();
    let other = common::fixture();
    let f = |name: &str| std::fs::read(fx.dir.path().join(name)).unwrap();
    let ca = f("ca.crt");
    let crt = f("client.crt");
    let key = f("client.key");
    let other_key = std::fs::read(other.dir.path().join("client.key")).unwrap();
    let other_crt = std::fs::read(other.dir.path().join("client.crt")).unwrap();
    /// (case name, the Secret, the required failure expected as (finding id prefix, text))
    type AuditCase<'a> = (&'a str, Secret, Option<(&'a str, &'a str)>);
    let cases: Vec<AuditCase> = vec![
        (
            "correct",
            secret_with(&[
                ("client-ca.crt", &ca),
                ("client.crt", &crt),
                ("client.key", &key),
                ("server-ca.crt", &ca),
            ]),
            None,
        ),
        (
            "ca.crt instead of client-ca.crt",
            secret_with(&[
                ("ca.crt", &ca),
                ("client.crt", &crt),
                ("client.key", &key),
                ("server-ca.crt", &ca),
            ]),
            Some((
                "config/mtls-secret-keys",
                "has key `ca.crt` but no `client-ca.crt`: the repo-server reads only `client-ca.crt`, so mTLS is silently OFF",
            )),
        ),
        (
            "no client key",
            secret_with(&[
                ("client-ca.crt", &ca),
                ("client.crt", &crt),
                ("server-ca.crt", &ca),
            ]),
            Some((
                "config/mtls-client-pair/",
                "Secret `argocd-repo-server-mtls` has no key `client.key`: it connects WITHOUT a client certificate",
            )),
        ),
        (
            "client from another CA",
            secret_with(&[
                ("client-ca.crt", &ca),
                ("client.crt", &other_crt),
                ("client.key", &other_key),
                ("server-ca.crt", &ca),
            ]),
            Some((
                "config/client-cert-chains/",
                "which no CA in Secret `argocd-repo-server-mtls` key `client-ca.crt` issued",
            )),
        ),
        (
            "key of another cert",
            secret_with(&[
                ("client-ca.crt", &ca),
                ("client.crt", &crt),
                ("client.key", &other_key),
                ("server-ca.crt", &ca),
            ]),
            Some((
                "config/client-key-matches/",
                "key `client.key` does not belong to its certificate `client.crt`",
            )),
        ),
        (
            "CA not PEM",
            secret_with(&[
                ("client-ca.crt", b"not a certificate"),
                ("client.crt", &crt),
                ("client.key", &key),
            ]),
            Some(("config/client-ca-parses", "holds no PEM certificate")),
        ),
    ];
    let key_text = String::from_utf8(key.clone()).unwrap();
    let key_body: Vec<&str> = key_text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for (name, secret, want_failure) in cases {
        let findings = audit(
            &upstream_workloads(),
            &[("argocd-repo-server-mtls", &secret)],
        );
        let required_failures: Vec<&Finding> = findings
            .iter()
            .filter(|f| !f.ok() && !advisory(f))
            .collect();
        match want_failure {
            None => assert!(
                required_failures.is_empty(),
                "{name}: {required_failures:?}"
            ),
            Some((id, text)) => {
                // Only the expected case fails (once per component for the shared pair).
                assert!(!required_failures.is_empty(), "{name}: no failure");
                for failure in &required_failures {
                    assert!(failure.id().starts_with(id), "{name}: {failure:?}");
                    assert!(failure.detail.contains(text), "{name}: {}", failure.detail);
                }
            }
        }
        let all = format!("{findings:?}");
        assert!(
            key_body.iter().all(|l| !all.contains(l)) && !all.contains("PRIVATE KEY"),
            "{name}: a finding leaks Secret data"
        );
    }
    // Option B: the shared Secret holds only the CA(s); argocd-server reads its own Secret.
    let shared = secret_with(&[("client-ca.crt", &ca), ("server-ca.crt", &ca)]);
    let own_good = secret_with(&[("client.crt", &crt), ("client.key", &key)]);
    let own_foreign = secret_with(&[("client.crt", &other_crt), ("client.key", &other_key)]);
    let b = option_b(upstream_workloads(), "argocd-repo-server-mtls-server");
    let findings = audit(
        &b,
        &[
            ("argocd-repo-server-mtls", &shared),
            ("argocd-repo-server-mtls-server", &own_good),
        ],
    );
    let failing: Vec<String> = findings
        .iter()
        .filter(|f| !f.ok() && !advisory(f))
        .map(|f| f.id())
        .collect();
    // The other three clients still read the shared Secret, which has no pair now.
    assert_eq!(
        failing,
        [
            "config/mtls-client-pair/argocd-applicationset-controller",
            "config/mtls-client-pair/argocd-notifications-controller",
            "config/mtls-client-pair/argocd-application-controller",
        ],
        "{findings:#?}"
    );
    let findings = audit(
        &b,
        &[
            ("argocd-repo-server-mtls", &shared),
            ("argocd-repo-server-mtls-server", &own_foreign),
        ],
    );
    let chains = findings
        .iter()
        .find(|f| f.id() == "config/client-cert-chains/argocd-server")
        .unwrap();
    assert!(
        !chains.ok() && chains.detail.contains("deployment/argocd-server"),
        "{chains:?}"
    );
    // A Role that names only the shared Secret: argocd-server's own is unknown, not "missing".
    let found: BTreeMap<String, Secret> =
        [("argocd-repo-server-mtls".to_owned(), shared.clone())].into();
    let refused: BTreeMap<String, String> = [(
        "argocd-repo-server-mtls-server".to_owned(),
        "forbidden: get secrets".to_owned(),
    )]
    .into();
    let findings = identities::judge_identities(
        &b,
        None,
        &identities::SecretsRead {
            found: &found,
            refused: &refused,
        },
    );
    let pair = findings
        .iter()
        .find(|f| f.id() == "config/mtls-client-pair/argocd-server")
        .unwrap();
    assert_eq!(
        pair.status,
        argocd_mtls_verify::checks::kubernetes::Status::Inconclusive
    );
    assert!(
        pair.detail
            .contains("may not be read by this run (forbidden: get secrets)"),
        "{pair:?}"
    );

    // Shared or unique, and what certificates do not buy.
    let findings = audit(
        &upstream_workloads(),
        &[(
            "argocd-repo-server-mtls",
            &secret_with(&[
                ("client-ca.crt", &ca),
                ("client.crt", &crt),
                ("client.key", &key),
            ]),
        )],
    );
    let identities = findings
        .iter()
        .find(|f| f.id() == "config/client-identities")
        .unwrap();
    assert_eq!((identities.ok(), advisory(identities)), (false, true));
    assert!(
        identities.detail.starts_with(
            "shared: one certificate is presented by argocd-server, argocd-application-controller"
        ),
        "{}",
        identities.detail
    );
    assert!(
        identities
            .detail
            .contains("authenticate but do not authorize")
    );

    // The advisory side: no server-ca.crt, and a key nobody reads.
    let findings = audit(
        &upstream_workloads(),
        &[(
            "argocd-repo-server-mtls",
            &secret_with(&[
                ("client-ca.crt", &ca),
                ("client.crt", &crt),
                ("client.key", &key),
                ("tls.crt", &crt),
            ]),
        )],
    );
    let advisories: Vec<String> = findings
        .iter()
        .filter(|f| advisory(f) && !f.ok())
        .map(|f| f.id())
        .collect();
    assert_eq!(
        advisories,
        [
            "config/server-ca-present",
            "config/mtls-secret-extra-keys",
            "config/client-identities"
        ]
    );

    // A cert-manager Certificate's Secret: named as such, with the remap.
    let findings = audit(
        &upstream_workloads(),
        &[(
            "argocd-repo-server-mtls",
            &secret_with(&[("ca.crt", &ca), ("tls.crt", &crt), ("tls.key", &key)]),
        )],
    );
    let keys = findings
        .iter()
        .find(|f| f.id() == "config/mtls-secret-keys")
        .unwrap();
    assert!(
        !keys.ok()
            && keys.detail.contains("cert-manager")
            && keys.detail.contains("`ca.crt` -> path `client-ca.crt`"),
        "{keys:?}"
    );
}

/// Client logs on real-format text: the certificate-loaded line (text and JSON logrus) passes; a
/// log without it, or with refused handshakes, fails with the reason.
#[test]
fn client_log_audit_on_real_format_lines() {
    let lines = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let good_text = lines(&[
        r#"time="2026-11-23T10:00:01Z" level=info msg="Starting configmap/secret informers""#,
        r#"time="2026-11-23T10:00:02Z" level=info msg="Client certificate reloaded from /app/config/reposerver/mtls/client.crt (mtime changed)""#,
    ]);
    let good_json = lines(&[
        r#"{"level":"info","msg":"Client certificate reloaded from /app/config/reposerver/mtls/client.crt (mtime changed)","time":"2026-11-23T10:00:02Z"}"#,
    ]);
    let no_cert = lines(&[
        r#"time="2026-11-23T10:00:01Z" level=info msg="Starting configmap/secret informers""#,
    ]);
    let refused = lines(&[
        r#"time="2026-11-23T10:00:02Z" level=info msg="Client certificate reloaded from /app/config/reposerver/mtls/client.crt (mtime changed)""#,
        r#"time="2026-11-23T10:00:05Z" level=error msg="Failed to get app details" error="rpc error: code = Unavailable desc = connection error: desc = \"transport: authentication handshake failed: remote error: tls: unknown certificate authority\"""#,
    ]);
    let cases: [(&[String], bool, bool, &str); 4] = [
        (
            &good_text,
            true,
            true,
            "loaded its client certificate from /app/config/reposerver/mtls/client.crt",
        ),
        (&good_json, true, true, "loaded its client certificate"),
        (&no_cert, false, true, "connects without a certificate"),
        (&refused, true, false, "1 lines report failed handshakes"),
    ];
    for (log, loaded_ok, handshakes_ok, needle) in cases {
        let findings = components::judge_client_log("argocd-server", log);
        assert_eq!(findings[0].ok(), loaded_ok, "{findings:?}");
        assert_eq!(findings[1].ok(), handshakes_ok, "{findings:?}");
        assert!(
            findings.iter().any(|f| f.detail.contains(needle)),
            "`{needle}` in {findings:?}"
        );
        assert_eq!(findings[0].id(), "log/client-cert-loaded/argocd-server");
        // The line is advice (the certificate loads on the first dial); refused handshakes fail the run.
        assert!(advisory(&findings[0]));
        assert!(!advisory(&findings[1]));
    }
}

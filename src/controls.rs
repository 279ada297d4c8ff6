//! The control catalogue (`reports/controls.toml`): each control's clause (paraphrased), what a run
//! can show for it, the evidence it accepts and the gaps that keep it from full support; and the
//! mapping rule every suite is held to when it is read ([`check_mapping`]). How a control's status
//! follows from one run's results is [`crate::report::ControlStatus`]'s to say.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The built-in catalogue's text.
pub const CATALOGUE: &str = include_str!("../reports/controls.toml");

/// What a case proves, as a control's statement can use it. A case declares its kinds
/// (`evidence` in a suite); a control accepts some ([`Control::accepts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evidence {
    /// A client without a certificate the server trusts is refused.
    ClientAuthentication,
    /// Certificates are validated: path, validity, purpose, possession of the key.
    CertificateValidation,
    /// Only the approved CAs are trusted.
    TrustAnchors,
    /// The legitimate client gets a mutually authenticated channel.
    AuthenticatedChannel,
    /// The server's identity can be verified by its clients.
    ServerAuthentication,
    /// Nothing is served outside TLS.
    TransportProtection,
    /// Which protocol versions and suites are negotiated.
    CryptographicProtocols,
    /// Keys and certificates: they match, parse, stay valid, are rotated.
    KeyManagement,
    /// Each component has an identity of its own.
    UniqueIdentification,
    /// The settings that switch mTLS on, as configured.
    Configuration,
    /// The state before and after the change was recorded.
    ChangeEvidence,
    /// The component runs healthy: probes, restarts, calls.
    OperationalHealth,
    /// Security-relevant events are logged.
    AuditLogging,
    /// About the measurement itself (the route probed, the relay): no control's evidence.
    Measurement,
}

impl Evidence {
    /// The kebab-case name a suite and the catalogue use.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// A gap that keeps a control from full support whatever the checks show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// Stable id (`no-authorization`).
    pub id: String,
    /// What is missing, in one line.
    pub text: String,
    /// The case whose passing results (every one of them, in this run) close the gap; `None`: the
    /// gap always holds (a fact about Argo CD itself, such as no revocation checking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unless_passed: Option<String>,
}

/// One control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Control {
    /// Control id (`NIST-800-53-IA-9`).
    pub id: String,
    /// Framework name.
    pub framework: String,
    /// Control title.
    pub title: String,
    /// The framework's clause, paraphrased, with its reference: what a reader checks the claim
    /// against.
    #[serde(default)]
    pub clause: String,
    /// What a passing run can show for it, in this project's words.
    pub statement: String,
    /// The evidence kinds it accepts: a case may map to it only with one of them.
    #[serde(default)]
    pub accepts: Vec<Evidence>,
    /// When the control applies at all (HIPAA: only where ePHI flows), printed with its status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies: Option<String>,
    /// Why the control does not apply to the repo-server's traffic; such a control accepts no case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_applicable: Option<String>,
    /// Its stated gaps.
    #[serde(default, rename = "gap", skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<Gap>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalogue {
    control: Vec<Control>,
}

/// Parses a catalogue's text.
pub fn parse(text: &str) -> Result<Vec<Control>, toml::de::Error> {
    toml::from_str::<Catalogue>(text).map(|c| c.control)
}

/// The built-in catalogue (parsed once).
pub fn catalogue() -> &'static [Control] {
    static PARSED: OnceLock<Vec<Control>> = OnceLock::new();
    PARSED.get_or_init(|| {
        parse(CATALOGUE).expect("reports/controls.toml is valid (checked by tests)")
    })
}

/// Why a case may not name a control ([`check_mapping`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The control is not in the catalogue.
    #[error("control `{0}` is not in the catalogue (reports/controls.toml)")]
    Unknown(String),
    /// The control does not apply to the repo-server's traffic.
    #[error("control `{control}` does not apply here ({why}), so no case can support it")]
    NotApplicable {
        /// The control.
        control: String,
        /// The catalogue's reason.
        why: String,
    },
    /// What the case proves is not what the control's statement is about.
    #[error(
        "control `{control}` accepts evidence of {} ({statement}); this case proves {}",
        names(accepts),
        names(proves)
    )]
    Unsupported {
        /// The control.
        control: String,
        /// Its statement.
        statement: String,
        /// What it accepts.
        accepts: Vec<Evidence>,
        /// What the case declares it proves.
        proves: Vec<Evidence>,
    },
}

fn names(kinds: &[Evidence]) -> String {
    if kinds.is_empty() {
        return "nothing".into();
    }
    kinds
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The mapping rule: a case may name a control only if the control is catalogued, applies, and
/// accepts one of the evidence kinds the case proves.
pub fn check_mapping(
    catalogue: &[Control],
    proves: &[Evidence],
    control: &str,
) -> Result<(), MappingError> {
    let c = catalogue
        .iter()
        .find(|c| c.id == control)
        .ok_or_else(|| MappingError::Unknown(control.to_owned()))?;
    if let Some(why) = &c.not_applicable {
        return Err(MappingError::NotApplicable {
            control: c.id.clone(),
            why: why.clone(),
        });
    }
    if !proves.iter().any(|p| c.accepts.contains(p)) {
        return Err(MappingError::Unsupported {
            control: c.id.clone(),
            statement: c.statement.clone(),
            accepts: c.accepts.clone(),
            proves: proves.to_vec(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every control cites its clause; ids are unique; a not-applicable control accepts nothing
    /// and says why; a gap closed by a case names a case of the built-in suites.
    #[test]
    fn the_catalogue_is_complete() {
        let controls = catalogue();
        let mut ids: Vec<&str> = controls.iter().map(|c| c.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), controls.len(), "duplicate control ids");
        let cases: Vec<String> = crate::suite::BUILTIN
            .iter()
            .flat_map(|(name, _)| crate::suite::Suite::load(name).unwrap().cases)
            .map(|c| c.id)
            .collect();
        for c in controls {
            assert!(!c.clause.is_empty(), "{}: no clause", c.id);
            assert_eq!(
                c.not_applicable.is_some(),
                c.accepts.is_empty(),
                "{}: a control accepts nothing exactly when it does not apply",
                c.id
            );
            for g in &c.gaps {
                if let Some(case) = &g.unless_passed {
                    assert!(cases.contains(case), "{}: gap {} names {case}", c.id, g.id);
                }
            }
        }
    }

    /// The rule, case by case: what a check proves must be what the control is about.
    #[test]
    fn a_mapping_the_statement_cannot_support_is_refused() {
        let c = catalogue();
        let server = [Evidence::ServerAuthentication];
        assert_eq!(check_mapping(c, &server, "NIST-800-53-SC-23"), Ok(()));
        // server/identity is about man-in-the-middle, not the system boundary.
        assert!(matches!(
            check_mapping(c, &server, "SOC2-CC6.6"),
            Err(MappingError::NotApplicable { .. })
        ));
        // Client authentication is not evidence about the cipher suites in use.
        let e =
            check_mapping(c, &[Evidence::ClientAuthentication], "PCI-DSS-4.0-12.3.3").unwrap_err();
        assert!(matches!(e, MappingError::Unsupported { .. }), "{e}");
        assert!(e.to_string().contains("cryptographic-protocols"), "{e}");
        assert!(matches!(
            check_mapping(c, &server, "ISO-27001-A.8.5"),
            Err(MappingError::Unknown(_))
        ));
        // The measurement's own checks support no control.
        for control in c {
            assert!(
                check_mapping(c, &[Evidence::Measurement], &control.id).is_err(),
                "{}",
                control.id
            );
        }
    }
}

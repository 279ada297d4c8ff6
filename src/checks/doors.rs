//! The doors of the refusal cases, as data: `suites/doors.toml` lists each dimension of a
//! ClientHello a server may choose its TLS policy from (server name, ALPN offer) and the variants
//! tried, each with what it models and a reference. [`DoorSpace`] reads the table once (and checks
//! it); [`DoorSpace::doors`] turns it into the doors of one endpoint; the run's seed draws the ids
//! no registry holds.

use std::sync::LazyLock;

use serde::Deserialize;

use crate::endpoint::Protocol;
use crate::probe::{self, AcceptanceProof, Craft, Framing, KxGroup, SigFamily, Sni};

/// The table, as shipped.
const TABLE: &str = include_str!("../../suites/doors.toml");

/// The ALPN an attempt offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlpnOffer {
    /// What the endpoint's own clients offer: `h2` for gRPC, `http/1.1` for HTTPS, none for TLS.
    Front,
    /// These ids, in this order (none: no ALPN extension).
    Ids(&'static [&'static str]),
}

impl AlpnOffer {
    /// No ALPN extension.
    pub const ABSENT: AlpnOffer = AlpnOffer::Ids(&[]);
    /// `h2` alone.
    pub const H2: AlpnOffer = AlpnOffer::Ids(&["h2"]);
    /// `http/1.1` alone.
    pub const HTTP11: AlpnOffer = AlpnOffer::Ids(&["http/1.1"]);

    /// The protocols offered at an endpoint proven with `proof`.
    pub fn protocols(self, proof: AcceptanceProof) -> Vec<&'static str> {
        match self {
            AlpnOffer::Front => proof.front_alpn(),
            AlpnOffer::Ids(ids) => ids.to_vec(),
        }
    }
}

/// A way in: the SNI a ClientHello sends and the ALPN it offers. A server may key its client
/// authentication on either, so a refusal must hold at every door.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Door {
    /// The server name indication.
    pub sni: Sni,
    /// The ALPN offer.
    pub alpn: AlpnOffer,
    /// One key exchange group offered alone (`None`: every group the engine has).
    pub kx: Option<KxGroup>,
    /// How the ClientHello is cut (`None`: one record, one write).
    pub framing: Option<Framing>,
    /// The ClientHello built by hand (TLS 1.2 or 1.3, no certificate: the explorer's doors only).
    pub craft: Option<Craft>,
    /// One family of signature algorithms offered alone (`None`: every one the engine verifies).
    pub sigs: Option<SigFamily>,
}

impl Door {
    /// The front door: the configured name and the endpoint's own ALPN, as legitimate clients
    /// come in. Positive controls knock here.
    pub const FRONT: Door = Door {
        sni: Sni::Configured,
        alpn: AlpnOffer::Front,
        kx: None,
        framing: None,
        craft: None,
        sigs: None,
    };

    /// The front door knocked on by the hand-built client: the premise of every hand-built door
    /// (its handshake must reach the server's certificate here, or those doors judge nothing).
    pub const CRAFTED_FRONT: Door = Door {
        craft: Some(Craft::Plain),
        ..Door::FRONT
    };

    /// A door at the front but for `sni`.
    fn named(sni: Sni) -> Door {
        Door { sni, ..Door::FRONT }
    }

    /// Whether `present` can be tried here under `version`: a hand-built door carries no
    /// certificate and speaks TLS 1.2 or 1.3 (X25519MLKEM768 1.3 only); a signature family must
    /// be one a server may sign a handshake of that version with.
    pub fn admits(&self, present: crate::suite::Presented, version: probe::TlsVersion) -> bool {
        let modern = matches!(version, probe::TlsVersion::Tls12 | probe::TlsVersion::Tls13);
        let crafted = match self.craft {
            None => true,
            Some(Craft::MlKem) => {
                present == crate::suite::Presented::None && version == probe::TlsVersion::Tls13
            }
            Some(_) => present == crate::suite::Presented::None && modern,
        };
        crafted && self.sigs.is_none_or(|f| f.usable_under(version))
    }

    /// The dimension the door varies: how the hello is built or cut, the signature algorithms,
    /// the key exchange group, the ALPN offer, or (at the front ALPN) the server name.
    pub fn dimension(&self) -> Dimension {
        match (self.craft, self.framing, self.sigs, self.kx, self.alpn) {
            (Some(_), ..) => Dimension::HandBuilt,
            (None, Some(_), ..) => Dimension::Framing,
            (None, None, Some(_), ..) => Dimension::Signature,
            (None, None, None, Some(_), _) => Dimension::KeyExchange,
            (None, None, None, None, AlpnOffer::Front) => Dimension::ServerName,
            (None, None, None, None, AlpnOffer::Ids(_)) => Dimension::Alpn,
        }
    }
}

/// A dimension of the ClientHello the doors vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// The server name indication.
    ServerName,
    /// The ALPN offer.
    Alpn,
    /// The key exchange groups offered.
    KeyExchange,
    /// The signature algorithms offered.
    Signature,
    /// How the ClientHello is cut into records and TCP segments.
    Framing,
    /// ClientHellos the engine cannot send, built by hand.
    HandBuilt,
}

impl Dimension {
    /// Every dimension, in the order reports list them.
    pub const ALL: [Dimension; 6] = [
        Dimension::ServerName,
        Dimension::Alpn,
        Dimension::KeyExchange,
        Dimension::Signature,
        Dimension::Framing,
        Dimension::HandBuilt,
    ];
}

impl Dimension {
    /// How a refusal's reason counts the doors of this dimension (`3 with one key exchange
    /// group`); `None` for the name and the ALPN offer, which it counts by distinct values.
    pub fn counted(self) -> Option<&'static str> {
        match self {
            Dimension::ServerName | Dimension::Alpn => None,
            Dimension::KeyExchange => Some("with one key exchange group"),
            Dimension::Signature => Some("with one family of signature algorithms"),
            Dimension::Framing => Some("with the ClientHello cut"),
            Dimension::HandBuilt => Some("hand-built"),
        }
    }

    /// The dimension in words.
    pub fn words(self) -> &'static str {
        match self {
            Dimension::ServerName => "server name (SNI)",
            Dimension::Alpn => "ALPN offer",
            Dimension::KeyExchange => "key exchange group",
            Dimension::Signature => "signature algorithms",
            Dimension::Framing => "ClientHello framing",
            Dimension::HandBuilt => "hand-built ClientHello (no certificate)",
        }
    }
}

/// How an SNI row derives its names; bound by `variant` in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SniVariant {
    /// The configured name.
    Configured,
    /// No server_name extension.
    Absent,
    /// [`probe::UNEXPECTED_SNI`].
    Unexpected,
    /// Every DNS name of the certificate the controls met.
    CertificateNames,
    /// The configured name and the certificate's names, upper-cased.
    UpperCase,
    /// The same, every label capitalised.
    TitleCase,
}

impl SniVariant {
    /// The variant as the table names it.
    pub fn name(self) -> &'static str {
        match self {
            SniVariant::Configured => "configured",
            SniVariant::Absent => "absent",
            SniVariant::Unexpected => "unexpected",
            SniVariant::CertificateNames => "certificate-names",
            SniVariant::UpperCase => "upper-case",
            SniVariant::TitleCase => "title-case",
        }
    }
}

/// One SNI row of the table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SniRow {
    /// How its names are derived.
    pub variant: SniVariant,
    /// Tried by every refusal (else by the cheapest, and by the rest where it found a class).
    #[serde(default)]
    pub base: bool,
    /// What it models.
    pub models: String,
    /// Where the behaviour is specified or seen.
    pub reference: String,
}

/// One ALPN row of the table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlpnRow {
    /// The ids, in order (empty: no ALPN extension).
    #[serde(default)]
    pub offer: Vec<String>,
    /// One id no registry holds, drawn from the run's seed, instead of `offer`.
    #[serde(default)]
    pub unregistered: bool,
    /// Tried by every refusal, under every base SNI.
    #[serde(default)]
    pub base: bool,
    /// What it models.
    pub models: String,
    /// Where the behaviour is specified or seen.
    pub reference: String,
}

/// One key-exchange row of the table: the group offered alone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRow {
    /// The group.
    pub offer: KxGroup,
    /// What it models.
    pub models: String,
    /// Where the behaviour is specified or seen.
    pub reference: String,
}

/// One signature row of the table: a family of signature algorithms offered alone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureRow {
    /// The family.
    pub offer: SigFamily,
    /// What it models.
    pub models: String,
    /// Where the behaviour is specified or seen.
    pub reference: String,
}

/// One framing row of the table: how the ClientHello is cut.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FramingRow {
    /// Into records, or into TCP segments.
    pub split: Split,
    /// The records' size (32 to 16389 bytes, header included), or the first segment's.
    pub bytes: u16,
    /// What it models.
    pub models: String,
    /// Where the behaviour is specified or seen.
    pub reference: String,
}

/// What a framing row cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    /// TLS records.
    Records,
    /// TCP segments.
    Segments,
}

impl FramingRow {
    /// The framing the row asks for.
    pub fn framing(&self) -> Framing {
        match self.split {
            Split::Records => Framing::Records(self.bytes),
            Split::Segments => Framing::Segments(self.bytes),
        }
    }
}

/// One hand-built row: a ClientHello the engine cannot send.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandBuiltRow {
    /// Which; binds the row to the code that builds its doors.
    pub variant: HandBuilt,
    /// What it models.
    pub models: String,
    /// Where the behaviour is specified or seen.
    pub reference: String,
}

/// The hand-built variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HandBuilt {
    /// The configured name, from a client that is not the engine: the premise of the others.
    Fingerprint,
    /// Each name with a trailing dot.
    TrailingDot,
    /// A name longer than DNS allows.
    OverLong,
    /// GREASE values everywhere.
    Grease,
    /// X25519MLKEM768 offered first, with its share.
    #[serde(rename = "x25519mlkem768")]
    X25519MlKem768,
}

impl HandBuilt {
    /// The variant as the table names it.
    pub fn name(self) -> &'static str {
        match self {
            HandBuilt::Fingerprint => "fingerprint",
            HandBuilt::TrailingDot => "trailing-dot",
            HandBuilt::OverLong => "over-long",
            HandBuilt::Grease => "grease",
            HandBuilt::X25519MlKem768 => "x25519mlkem768",
        }
    }
}

/// Labels of 63 letters put before a name until it is longer than any DNS name (253).
pub fn over_long(name: &str) -> String {
    let mut long = name.to_owned();
    while long.len() <= 300 {
        long = format!("{}.{long}", "x".repeat(63));
    }
    long
}

/// An ALPN offer made `'static` once per process: its ids, and the slice attempts borrow.
type Interned = (Vec<String>, &'static [&'static str]);

/// The table: every dimension and its variants.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoorSpace {
    /// Server-name variants.
    pub sni: Vec<SniRow>,
    /// ALPN offers.
    pub alpn: Vec<AlpnRow>,
    /// Key exchange groups, each offered alone.
    #[serde(default)]
    pub group: Vec<GroupRow>,
    /// Signature algorithm families, each offered alone.
    #[serde(default)]
    pub signature: Vec<SignatureRow>,
    /// Ways to cut the ClientHello.
    #[serde(default)]
    pub framing: Vec<FramingRow>,
    /// ClientHellos built by hand.
    #[serde(default)]
    pub hand_built: Vec<HandBuiltRow>,
}

/// Why the door table does not load.
#[derive(Debug, thiserror::Error)]
pub enum DoorTableError {
    /// Not the table's shape.
    #[error("suites/doors.toml: {0}")]
    Parse(#[from] toml::de::Error),
    /// An ALPN id TLS cannot carry (empty, or longer than 255 bytes: RFC 7301 §3.1).
    #[error("suites/doors.toml: ALPN id `{0}` cannot be sent (1 to 255 bytes)")]
    BadAlpnId(String),
    /// The same offer twice.
    #[error("suites/doors.toml: the ALPN offer {0:?} is listed twice")]
    Duplicate(Vec<String>),
    /// A cut the TLS engine cannot make (records under 32 bytes, anything over a record).
    #[error(
        "suites/doors.toml: a framing of {0} bytes cannot be sent (records: 32 to 16389 bytes; segments: 1 to 16389)"
    )]
    BadFraming(u16),
}

impl DoorSpace {
    /// Reads and checks a table.
    pub fn parse(text: &str) -> Result<Self, DoorTableError> {
        let space: DoorSpace = toml::from_str(text)?;
        let mut seen = std::collections::BTreeSet::new();
        for row in &space.alpn {
            if let Some(id) = row.offer.iter().find(|id| id.is_empty() || id.len() > 255) {
                return Err(DoorTableError::BadAlpnId(id.clone()));
            }
            if !row.unregistered && !seen.insert(row.offer.clone()) {
                return Err(DoorTableError::Duplicate(row.offer.clone()));
            }
        }
        if let Some(row) = space.framing.iter().find(|r| {
            let least = match r.split {
                Split::Records => 32,
                Split::Segments => 1,
            };
            !(least..=16389).contains(&r.bytes)
        }) {
            return Err(DoorTableError::BadFraming(row.bytes));
        }
        Ok(space)
    }

    /// The shipped table (checked by the unit tests; a broken one cannot ship).
    pub fn shipped() -> &'static DoorSpace {
        static SPACE: LazyLock<DoorSpace> = LazyLock::new(|| {
            DoorSpace::parse(TABLE).expect("suites/doors.toml is checked by its tests")
        });
        &SPACE
    }

    /// The ALPN offers of the table, with the seeded id in place of the unregistered row, and
    /// whether each is a base offer. Ids live for the process (a few bytes per seed).
    fn alpn_offers(&self, seed: u64) -> Vec<(AlpnOffer, bool)> {
        static LEAKED: LazyLock<std::sync::Mutex<Vec<Interned>>> = LazyLock::new(Default::default);
        let mut leaked = LEAKED.lock().unwrap_or_else(|e| e.into_inner());
        self.alpn
            .iter()
            .map(|row| {
                let ids = if row.unregistered {
                    vec![unregistered_alpn(seed)]
                } else {
                    row.offer.clone()
                };
                let stat = match leaked.iter().find(|(k, _)| *k == ids) {
                    Some((_, s)) => *s,
                    None => {
                        let s: &'static [&'static str] = Box::leak(
                            ids.iter()
                                .map(|id| &*Box::leak(id.clone().into_boxed_str()))
                                .collect::<Vec<&'static str>>()
                                .into_boxed_slice(),
                        );
                        leaked.push((ids, s));
                        s
                    }
                };
                (AlpnOffer::Ids(stat), row.base)
            })
            .collect()
    }

    /// Every door a refusal may be tried at on an endpoint, each marked base (tried by every
    /// refusal) or not (tried by the cheapest, and by the rest where it found a class): each
    /// SNI variant with the endpoint's own ALPN, and each ALPN offer under the configured name
    /// (base offers under every base SNI). An offer the endpoint's own clients make is the front
    /// door's; an HTTPS endpoint is offered no list holding `h2` (its refusal would be an HTTP/2
    /// status this prober does not read).
    pub fn doors(
        &self,
        server_name: &str,
        protocol: Protocol,
        server_dns_names: &[String],
        seed: u64,
    ) -> Vec<(Door, bool)> {
        let proof = super::observe::proof_for(protocol);
        let ip = server_name.parse::<std::net::IpAddr>().is_ok();
        let mut names: Vec<String> = Vec::new();
        if !ip {
            names.push(server_name.to_owned());
        }
        for n in server_dns_names {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        let mut out: Vec<(Door, bool)> = Vec::new();
        let push = |door: Door, base: bool, out: &mut Vec<(Door, bool)>| match out
            .iter_mut()
            .find(|(d, _)| *d == door)
        {
            Some((_, b)) => *b |= base,
            None => out.push((door, base)),
        };
        let mut base_snis = Vec::new();
        for row in &self.sni {
            let snis: Vec<Sni> = match row.variant {
                SniVariant::Configured => vec![Sni::Configured],
                SniVariant::Absent if ip => vec![],
                SniVariant::Absent => vec![Sni::Absent],
                SniVariant::Unexpected => vec![Sni::Other(probe::UNEXPECTED_SNI.to_owned())],
                SniVariant::CertificateNames => server_dns_names
                    .iter()
                    .filter(|n| *n != server_name)
                    .map(|n| Sni::Other(n.clone()))
                    .collect(),
                SniVariant::UpperCase => names
                    .iter()
                    .map(|n| n.to_ascii_uppercase())
                    .filter(|n| !names.contains(n))
                    .map(Sni::Other)
                    .collect(),
                SniVariant::TitleCase => names
                    .iter()
                    .map(|n| title_case(n))
                    .filter(|n| !names.contains(n) && *n != n.to_ascii_uppercase())
                    .map(Sni::Other)
                    .collect(),
            };
            for sni in snis {
                if row.base
                    && matches!(
                        row.variant,
                        SniVariant::Configured | SniVariant::Absent | SniVariant::Unexpected
                    )
                {
                    base_snis.push(sni.clone());
                }
                push(Door::named(sni), row.base, &mut out);
            }
        }
        let front = proof.front_alpn();
        for (alpn, base) in self.alpn_offers(seed) {
            let ids = alpn.protocols(proof);
            if ids == front || (protocol == Protocol::Https && ids.contains(&"h2")) {
                continue;
            }
            let under: &[Sni] = if base { &base_snis } else { &[Sni::Configured] };
            for sni in under {
                push(
                    Door {
                        alpn,
                        ..Door::named(sni.clone())
                    },
                    base,
                    &mut out,
                );
            }
        }
        for row in &self.group {
            push(
                Door {
                    kx: Some(row.offer),
                    ..Door::FRONT
                },
                false,
                &mut out,
            );
        }
        for row in &self.signature {
            push(
                Door {
                    sigs: Some(row.offer),
                    ..Door::FRONT
                },
                false,
                &mut out,
            );
        }
        for row in &self.framing {
            push(
                Door {
                    framing: Some(row.framing()),
                    ..Door::FRONT
                },
                false,
                &mut out,
            );
        }
        for row in &self.hand_built {
            let crafted = |sni: Sni| Door {
                craft: Some(Craft::Plain),
                ..Door::named(sni)
            };
            let doors: Vec<Door> = match row.variant {
                HandBuilt::Fingerprint => vec![Door::CRAFTED_FRONT],
                HandBuilt::TrailingDot => names
                    .iter()
                    .map(|n| crafted(Sni::Other(format!("{n}."))))
                    .collect(),
                HandBuilt::OverLong => names
                    .first()
                    .map(|n| crafted(Sni::Other(over_long(n))))
                    .into_iter()
                    .collect(),
                HandBuilt::Grease => vec![Door {
                    craft: Some(Craft::Grease),
                    ..Door::FRONT
                }],
                HandBuilt::X25519MlKem768 => vec![Door {
                    craft: Some(Craft::MlKem),
                    ..Door::FRONT
                }],
            };
            for door in doors {
                push(door, false, &mut out);
            }
        }
        out
    }
}

/// Each label's first letter upper-cased, the rest lower: `Argocd-repo-server.Argocd.Svc`.
fn title_case(name: &str) -> String {
    name.split('.')
        .map(|label| {
            let mut chars = label.chars();
            match chars.next() {
                Some(first) => {
                    first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase()
                }
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The ALPN id no registry holds for `seed`: `amv-` and eight hex digits (SplitMix64 of the seed).
pub fn unregistered_alpn(seed: u64) -> String {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    format!("amv-{:08x}", z as u32)
}

/// A fresh seed for a run that was given none.
pub fn fresh_seed() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_loads_and_says_what_each_row_models() {
        let space = DoorSpace::shipped();
        assert!(
            space
                .alpn
                .iter()
                .all(|r| !r.models.is_empty() && !r.reference.is_empty())
        );
        assert!(
            space
                .sni
                .iter()
                .all(|r| !r.models.is_empty() && !r.reference.is_empty())
        );
        assert!(space.alpn.iter().any(|r| r.offer == ["acme-tls/1"]));
        assert_eq!(space.alpn.iter().filter(|r| r.unregistered).count(), 1);
        let said = |m: &str, r: &str| !m.is_empty() && !r.is_empty();
        assert!(space.group.iter().all(|r| said(&r.models, &r.reference)));
        assert!(space.framing.iter().all(|r| said(&r.models, &r.reference)));
        assert!(
            space
                .hand_built
                .iter()
                .all(|r| said(&r.models, &r.reference))
        );
        assert_eq!(space.framing.len(), 2);
        // The premise of the hand-built doors is in the table, with each of them.
        let built: Vec<HandBuilt> = space.hand_built.iter().map(|r| r.variant).collect();
        assert_eq!(
            built,
            [
                HandBuilt::Fingerprint,
                HandBuilt::TrailingDot,
                HandBuilt::OverLong,
                HandBuilt::Grease,
                HandBuilt::X25519MlKem768
            ]
        );
    }

    /// Framing rows the engine cannot send are refused when the table loads.
    #[test]
    fn a_framing_the_engine_cannot_cut_is_refused() {
        let row = |split: &str, bytes: u32| {
            format!(
                "sni = []\nalpn = []\n[[framing]]\nsplit = \"{split}\"\nbytes = {bytes}\nmodels = \"m\"\nreference = \"r\"\n"
            )
        };
        assert!(matches!(
            DoorSpace::parse(&row("records", 31)),
            Err(DoorTableError::BadFraming(31))
        ));
        assert!(DoorSpace::parse(&row("records", 32)).is_ok());
        assert!(DoorSpace::parse(&row("segments", 1)).is_ok());
        assert!(matches!(
            DoorSpace::parse(&row("segments", 0)),
            Err(DoorTableError::BadFraming(0))
        ));
        assert!(matches!(
            DoorSpace::parse(&row("lines", 64)),
            Err(DoorTableError::Parse(_))
        ));
    }

    /// Each framing gets its door; each name its trailing-dot door, the configured one an
    /// over-long one; hand-built doors admit only the refusal without a certificate, under 1.3.
    #[test]
    fn framings_and_hand_built_hellos_get_their_doors() {
        use crate::probe::TlsVersion;
        use crate::suite::Presented;
        let names = ["argocd-repo-server".to_owned()];
        let doors = DoorSpace::shipped().doors("localhost", Protocol::Grpc, &names, 7);
        let has = |d: &Door| doors.contains(&(d.clone(), false));
        assert!(has(&Door {
            framing: Some(Framing::Records(64)),
            ..Door::FRONT
        }));
        assert!(has(&Door {
            framing: Some(Framing::Segments(16)),
            ..Door::FRONT
        }));
        assert!(has(&Door::CRAFTED_FRONT));
        for dotted in ["localhost.", "argocd-repo-server."] {
            assert!(has(&Door {
                craft: Some(Craft::Plain),
                ..Door::named(Sni::Other(dotted.into()))
            }));
        }
        let long = over_long("localhost");
        assert!(long.len() > 253 && long.ends_with(".localhost"));
        assert!(long.split('.').all(|l| l.len() <= 63));
        assert!(has(&Door {
            craft: Some(Craft::Plain),
            ..Door::named(Sni::Other(long))
        }));
        let grease = Door {
            craft: Some(Craft::Grease),
            ..Door::FRONT
        };
        assert!(has(&grease));
        assert!(has(&Door {
            craft: Some(Craft::MlKem),
            ..Door::FRONT
        }));
        assert_eq!(grease.dimension(), Dimension::HandBuilt);
        assert!(grease.admits(Presented::None, TlsVersion::Tls13));
        assert!(grease.admits(Presented::None, TlsVersion::Tls12));
        let mlkem = Door {
            craft: Some(Craft::MlKem),
            ..Door::FRONT
        };
        assert!(mlkem.admits(Presented::None, TlsVersion::Tls13));
        assert!(!mlkem.admits(Presented::None, TlsVersion::Tls12));
        assert!(!grease.admits(Presented::Client, TlsVersion::Tls13));
        let framed = Door {
            framing: Some(Framing::Records(64)),
            ..Door::FRONT
        };
        assert_eq!(framed.dimension(), Dimension::Framing);
        assert!(framed.admits(Presented::Client, TlsVersion::Tls12));
    }

    #[test]
    fn a_broken_table_is_refused_with_its_fault() {
        let bad = "sni = []\n[[alpn]]\noffer = [\"\"]\nmodels = \"m\"\nreference = \"r\"\n";
        assert!(matches!(
            DoorSpace::parse(bad),
            Err(DoorTableError::BadAlpnId(_))
        ));
        let twice = "sni = []\n[[alpn]]\noffer = [\"h2\"]\nmodels = \"m\"\nreference = \"r\"\n[[alpn]]\noffer = [\"h2\"]\nmodels = \"m\"\nreference = \"r\"\n";
        assert!(matches!(
            DoorSpace::parse(twice),
            Err(DoorTableError::Duplicate(_))
        ));
        let unknown = "sni = []\nalpn = []\nextra = 1\n";
        assert!(matches!(
            DoorSpace::parse(unknown),
            Err(DoorTableError::Parse(_))
        ));
    }

    #[test]
    fn the_seed_decides_the_unregistered_id() {
        assert_eq!(unregistered_alpn(7), unregistered_alpn(7));
        assert_ne!(unregistered_alpn(7), unregistered_alpn(8));
        let space = DoorSpace::shipped();
        let a = space.doors("localhost", Protocol::Grpc, &[], 7);
        let b = space.doors("localhost", Protocol::Grpc, &[], 7);
        assert_eq!(a, b);
        let id = unregistered_alpn(7);
        assert!(
            a.iter()
                .any(|(d, _)| d.alpn.protocols(AcceptanceProof::H2Settings) == [id.as_str()])
        );
    }

    #[test]
    fn every_name_gets_its_spellings_and_every_offer_its_door() {
        let space = DoorSpace::shipped();
        let names = vec!["argocd-repo-server.argocd.svc".to_owned()];
        let doors = space.doors("localhost", Protocol::Grpc, &names, 1);
        let snis: Vec<String> = doors
            .iter()
            .filter(|(d, _)| d.alpn == AlpnOffer::Front)
            .filter_map(|(d, _)| match &d.sni {
                Sni::Other(n) => Some(n.clone()),
                _ => None,
            })
            .collect();
        for want in [
            "argocd-repo-server.argocd.svc",
            "ARGOCD-REPO-SERVER.ARGOCD.SVC",
            "Argocd-repo-server.Argocd.Svc",
            "LOCALHOST",
            "Localhost",
            probe::UNEXPECTED_SNI,
        ] {
            assert!(snis.iter().any(|s| s == want), "{want} in {snis:?}");
        }
        // The base offers under every base SNI, for every refusal; the rest under the name.
        let base: Vec<&Door> = doors.iter().filter(|(_, b)| *b).map(|(d, _)| d).collect();
        assert!(base.contains(&&Door {
            sni: Sni::Absent,
            alpn: AlpnOffer::HTTP11,
            ..Door::FRONT
        }));
        assert!(
            !base
                .iter()
                .any(|d| d.alpn == AlpnOffer::Ids(&["acme-tls/1"]))
        );
        assert!(doors.iter().any(|(d, b)| !b
            && d.sni == Sni::Configured
            && d.alpn.protocols(AcceptanceProof::H2Settings) == ["acme-tls/1"]));
        // The endpoint's own offer is the front door, not a door of its own.
        assert!(!doors.iter().any(|(d, _)| d.alpn == AlpnOffer::H2));
        // Each group alone, at the front door's name and ALPN.
        for g in [KxGroup::X25519, KxGroup::Secp256r1, KxGroup::Secp384r1] {
            assert!(doors.contains(&(
                Door {
                    kx: Some(g),
                    ..Door::FRONT
                },
                false
            )));
        }
        // Each family of signature algorithms alone, at the front door; RSA PKCS#1 v1.5 is
        // tried under TLS 1.2 only.
        for f in [
            SigFamily::Ecdsa,
            SigFamily::RsaPss,
            SigFamily::RsaPkcs1,
            SigFamily::Ed25519,
        ] {
            let door = Door {
                sigs: Some(f),
                ..Door::FRONT
            };
            assert!(doors.contains(&(door.clone(), false)));
            assert_eq!(door.dimension(), Dimension::Signature);
            assert!(door.admits(crate::suite::Presented::Client, probe::TlsVersion::Tls12));
            assert_eq!(
                door.admits(crate::suite::Presented::Client, probe::TlsVersion::Tls13),
                f != SigFamily::RsaPkcs1
            );
        }
        // Over HTTPS no offer holds h2.
        let https = space.doors("localhost", Protocol::Https, &names, 1);
        assert!(
            https
                .iter()
                .all(|(d, _)| !d.alpn.protocols(AcceptanceProof::Https).contains(&"h2"))
        );
    }
}

//! Detector identities, match spans and detector sets shared by the scanners.

/// Most detectors one policy may name: the built-ins plus custom regexes. A
/// set of detectors is one `u64`, so the per-value check is a single AND.
pub const MAX_DETECTORS: usize = 64;

/// The detectors tollgate ships. Their ids are their discriminants; custom
/// detectors take the ids after [`Builtin::COUNT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Builtin {
    Email = 0,
    Card,
    UsSsn,
    Iban,
    Phone,
    Ipv4,
    Jwt,
    Bearer,
    AwsAccessKey,
    GcpApiKey,
    GithubToken,
    SlackToken,
    PrivateKey,
}

impl Builtin {
    pub const COUNT: usize = 13;
    pub const ALL: [Builtin; Builtin::COUNT] = [
        Builtin::Email,
        Builtin::Card,
        Builtin::UsSsn,
        Builtin::Iban,
        Builtin::Phone,
        Builtin::Ipv4,
        Builtin::Jwt,
        Builtin::Bearer,
        Builtin::AwsAccessKey,
        Builtin::GcpApiKey,
        Builtin::GithubToken,
        Builtin::SlackToken,
        Builtin::PrivateKey,
    ];

    /// The name used in configuration (`detectors = [...]`) and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Builtin::Email => "email",
            Builtin::Card => "card",
            Builtin::UsSsn => "us_ssn",
            Builtin::Iban => "iban",
            Builtin::Phone => "phone",
            Builtin::Ipv4 => "ipv4",
            Builtin::Jwt => "jwt",
            Builtin::Bearer => "bearer",
            Builtin::AwsAccessKey => "aws_access_key",
            Builtin::GcpApiKey => "gcp_api_key",
            Builtin::GithubToken => "github_token",
            Builtin::SlackToken => "slack_token",
            Builtin::PrivateKey => "private_key",
        }
    }

    pub fn from_name(name: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| b.name() == name)
    }

    pub const fn id(self) -> DetectorId {
        DetectorId(self as u8)
    }
}

/// Index of a detector in a policy: built-ins first, then custom detectors in
/// configuration order. Also the index into [`super::MaskCounters`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DetectorId(pub u8);

impl DetectorId {
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A set of detector ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DetectorSet(pub u64);

impl DetectorSet {
    pub const EMPTY: DetectorSet = DetectorSet(0);

    pub const fn contains(self, id: DetectorId) -> bool {
        id.0 < 64 && self.0 & (1 << id.0) != 0
    }

    pub const fn has(self, b: Builtin) -> bool {
        self.contains(b.id())
    }

    pub fn insert(&mut self, id: DetectorId) {
        if id.0 < 64 {
            self.0 |= 1 << id.0;
        }
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub const fn intersects(self, other: DetectorSet) -> bool {
        self.0 & other.0 != 0
    }

    pub fn of(builtins: &[Builtin]) -> DetectorSet {
        let mut set = DetectorSet::EMPTY;
        for b in builtins {
            set.insert(b.id());
        }
        set
    }
}

/// A byte range of a value that a detector flagged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub detector: DetectorId,
}

/// Letters, digits and `_`: the bytes that glue a candidate to a longer word.
#[inline]
pub(crate) fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_ids_are_dense() {
        for (i, b) in Builtin::ALL.into_iter().enumerate() {
            assert_eq!(Builtin::from_name(b.name()), Some(b));
            assert_eq!(b.id().index(), i);
        }
        assert_eq!(Builtin::from_name("Email"), None);
    }

    #[test]
    fn detector_set_ops() {
        let set = DetectorSet::of(&[Builtin::Card, Builtin::Jwt]);
        assert!(set.has(Builtin::Card) && set.has(Builtin::Jwt));
        assert!(!set.has(Builtin::Email));
        assert!(!set.contains(DetectorId(200)));
        assert!(set.intersects(DetectorSet::of(&[Builtin::Jwt])));
    }
}

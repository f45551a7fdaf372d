//! Endpoint ids: the number the store keys on, and its text form `ep_<n>`.

use std::fmt;

/// Identifies a registered endpoint. Displayed as `ep_<n>`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointId(pub(crate) u64);

impl EndpointId {
    /// The raw number.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// Rebuilds an id from its raw number.
    pub fn from_u64(v: u64) -> Self {
        EndpointId(v)
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ep_{}", self.0)
    }
}

impl fmt::Debug for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A string that is not an endpoint id's text form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseEndpointIdError;

impl fmt::Display for ParseEndpointIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an endpoint id (expected ep_ and a decimal number)")
    }
}

impl std::error::Error for ParseEndpointIdError {}

/// Reads the form `Display` writes, and only that one (no sign, no leading
/// zeros), so that each id has one text form.
impl std::str::FromStr for EndpointId {
    type Err = ParseEndpointIdError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let digits = s.strip_prefix("ep_").ok_or(ParseEndpointIdError)?;
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        if !canonical {
            return Err(ParseEndpointIdError);
        }
        digits
            .parse()
            .map(EndpointId)
            .map_err(|_| ParseEndpointIdError)
    }
}

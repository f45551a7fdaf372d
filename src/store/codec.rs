//! Record encoding: one record-version byte, then bincode. The only place
//! that knows bincode, so the encoding can be migrated behind the version
//! byte: each record type has its own version, and reads the versions
//! before it (see [`Record`]).

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// A record type kept in the database.
pub(crate) trait Record: Serialize + DeserializeOwned {
    /// The version this build writes. Raised when the layout changes; the
    /// old layout is then read by [`Record::decode_older`].
    const VERSION: u8 = 1;

    /// Decodes the body of a record written with an older `version`, or
    /// `None` if this type never had that version.
    fn decode_older(version: u8, body: &[u8]) -> Option<Result<Self, String>> {
        let _ = (version, body);
        None
    }
}

/// The most a record may claim to hold. bincode allocates what a length
/// prefix announces before reading it, so without a limit a few damaged
/// bytes ask for exabytes (a panic, or an abort no `catch_unwind` stops).
/// Payloads are capped well below this (see `Config::validate`).
pub(crate) const MAX_RECORD_BYTES: usize = 128 * 1024 * 1024;

pub(crate) fn encode<T: Record>(value: &T) -> Vec<u8> {
    let mut out = vec![T::VERSION];
    // Encoding our own plain records into a Vec cannot fail: no maps with
    // non-string keys, no I/O. A failure here is a bug in a record type.
    bincode::serde::encode_into_std_write(value, &mut out, bincode::config::standard())
        .expect("hookbus records always encode");
    out
}

pub(crate) fn decode<T: Record>(what: &'static str, bytes: &[u8]) -> Result<T> {
    let corrupt = |detail: String| Error::Corrupt { what, detail };
    match bytes.split_first() {
        Some((&v, rest)) if v == T::VERSION => body(rest).map_err(corrupt),
        Some((&v, rest)) => match T::decode_older(v, rest) {
            Some(decoded) => decoded.map_err(corrupt),
            None => Err(corrupt(format!("unknown record version {v}"))),
        },
        None => Err(corrupt("empty record".to_string())),
    }
}

/// Decodes a record's bytes after the version byte: all of them, and no
/// more than [`MAX_RECORD_BYTES`] announced.
pub(crate) fn body<T: DeserializeOwned>(rest: &[u8]) -> Result<T, String> {
    let (value, used) = bincode::serde::decode_from_slice(
        rest,
        bincode::config::standard().with_limit::<MAX_RECORD_BYTES>(),
    )
    .map_err(|e| e.to_string())?;
    if used != rest.len() {
        return Err(format!("{} trailing bytes", rest.len() - used));
    }
    Ok(value)
}

/// Decodes an older record body whose layout is the current one without
/// its trailing fields, by appending the encoding of their defaults.
pub(crate) fn body_with_defaults<T: DeserializeOwned>(
    rest: &[u8],
    defaults: &impl Serialize,
) -> Result<T, String> {
    let mut bytes = rest.to_vec();
    bincode::serde::encode_into_std_write(defaults, &mut bytes, bincode::config::standard())
        .map_err(|e| e.to_string())?;
    body(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::{DeliveryRecord, DeliveryState};

    #[test]
    fn round_trips_and_rejects_damage() {
        let rec = DeliveryRecord {
            state: DeliveryState::Waiting {
                next_attempt: 2,
                due_ms: 99,
            },
            created_ms: 1,
            updated_ms: 2,
            round_start: 1,
            manual: false,
        };
        let bytes = encode(&rec);
        let back: DeliveryRecord = decode("delivery", &bytes).unwrap();
        assert_eq!(back, rec);
        assert!(decode::<DeliveryRecord>("delivery", &[]).is_err());
        assert!(decode::<DeliveryRecord>("delivery", &[9, 1, 2]).is_err());
        assert!(decode::<DeliveryRecord>("delivery", &bytes[..bytes.len() - 1]).is_err());
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode::<DeliveryRecord>("delivery", &extra).is_err());
    }

    #[test]
    fn a_damaged_length_prefix_is_an_error_not_an_allocation() {
        use crate::store::records::EventRecord;
        // Version byte, then a string length of 2^64 - 1, then of ~3.6 GB.
        let huge = [1u8, 253, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(decode::<EventRecord>("event", &huge).is_err());
        let big = [1u8, 252, 244, 1, 0, 216, 1];
        assert!(decode::<EventRecord>("event", &big).is_err());
    }
}

//! Wall-clock timestamps as stored and sent: milliseconds since the Unix
//! epoch, and microseconds for event occurrence times.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    to_ms(SystemTime::now())
}

/// Milliseconds since the Unix epoch; times before 1970 clamp to 0.
pub(crate) fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(duration_ms).unwrap_or(0)
}

/// Whole milliseconds of a duration, saturating at `u64::MAX` (585 million
/// years) instead of wrapping.
pub(crate) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A time every platform's `SystemTime` can hold: the end of the year 9999.
const LATEST_MS: u64 = 253_402_300_799_999;

/// The instant `ms` milliseconds after the epoch. Stored times may come
/// from damaged records: one the platform cannot represent (Windows stops
/// in the year 30828) reads as the end of the year 9999, never a panic.
pub(crate) fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .or_else(|| UNIX_EPOCH.checked_add(Duration::from_millis(LATEST_MS)))
        .unwrap_or(UNIX_EPOCH)
}

/// Microseconds since the Unix epoch, now.
pub(crate) fn now_us() -> u64 {
    to_us(SystemTime::now())
}

/// Microseconds since the Unix epoch; times before 1970 clamp to 0.
pub(crate) fn to_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros().min(u64::MAX as u128) as u64)
        .unwrap_or(0)
}

/// The time `us` microseconds after the Unix epoch. A value the platform's
/// clock cannot hold (only from a damaged record) reads as the epoch rather
/// than panicking.
pub(crate) fn from_us(us: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_micros(us))
        .unwrap_or(UNIX_EPOCH)
}

/// RFC 3339 in UTC with milliseconds: `2026-11-22T21:14:06.123Z`.
pub(crate) fn rfc3339_ms(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(ms / 1000);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        ms % 1000
    )
}

/// Growth-X's `YYYY-MM-DD HH:MM:SS.ffffff` in UTC, from microseconds.
pub(crate) fn space_separated_micros(us: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(us / 1_000_000);
    format!(
        "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{:06}",
        us % 1_000_000
    )
}

/// Splits Unix seconds into a proleptic Gregorian UTC date and time.
/// Days-to-civil after Howard Hinnant's public-domain algorithm.
fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        // 2022-04-07T21:39:13Z is the Standard Webhooks test-vector timestamp.
        assert_eq!(rfc3339_ms(1_649_367_553_042), "2022-04-07T21:39:13.042Z");
        // A leap day.
        assert_eq!(rfc3339_ms(1_709_208_000_000), "2024-02-29T12:00:00.000Z");
        assert_eq!(rfc3339_ms(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(
            space_separated_micros(1_737_736_239_698_000),
            "2025-01-24 16:30:39.698000"
        );
        assert_eq!(
            space_separated_micros(1_737_736_239_698_042),
            "2025-01-24 16:30:39.698042"
        );
        assert_eq!(space_separated_micros(0), "1970-01-01 00:00:00.000000");
    }

    #[test]
    fn conversions_saturate_instead_of_panicking() {
        assert_eq!(duration_ms(Duration::MAX), u64::MAX);
        assert_eq!(duration_ms(Duration::from_micros(1999)), 1);
        assert!(from_ms(u64::MAX) >= from_ms(LATEST_MS));
        assert_eq!(to_ms(from_ms(1234)), 1234);
        assert_eq!(rfc3339_ms(LATEST_MS), "9999-12-31T23:59:59.999Z");
        // The formatters take any stored value.
        rfc3339_ms(u64::MAX);
        space_separated_micros(u64::MAX);
    }
}

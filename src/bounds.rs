//! The allowed range of every duration and size a host can set, on the bus
//! or on an endpoint, and the checks that name a range in the error a host
//! gets. Plain constants: the bus config and the endpoint config both check
//! against them, so they sit below both.

use std::fmt;
use std::time::Duration;

/// A retry schedule, on the bus or an endpoint: the count, then each delay.
pub(crate) fn check_retry_delays(delays: &[Duration]) -> Result<(), String> {
    RETRY_DELAY_COUNT
        .check(delays.len())
        .map_err(|why| format!("the number of delays {why}"))?;
    for (i, delay) in delays.iter().enumerate() {
        RETRY_DELAY
            .check(*delay)
            .map_err(|why| format!("delay {} {why}", i + 1))?;
    }
    Ok(())
}

const fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

const fn hours(n: u64) -> Duration {
    Duration::from_secs(n * 3600)
}

const MIB: u64 = 1024 * 1024;

// The allowed range of every duration and size a host can set, on the bus
// or on an endpoint. Each setter's doc repeats its range. The upper bounds
// are far beyond what a host needs and far below where time arithmetic
// could overflow.

/// `max_payload_bytes`: records stay far below what the record decoder allows.
pub(crate) const PAYLOAD_BYTES: Bounds<u64> = Bounds {
    min: 1,
    max: 64 * MIB,
};
/// `max_attempts`, on the bus and on endpoints.
pub(crate) const ATTEMPTS: Bounds<u64> = Bounds { min: 1, max: 1000 };
/// How many `retry_delays` a list may hold.
pub(crate) const RETRY_DELAY_COUNT: Bounds<u64> = Bounds { min: 1, max: 100 };
/// Each of the `retry_delays`.
pub(crate) const RETRY_DELAY: Bounds<Duration> = Bounds {
    min: Duration::ZERO,
    max: days(30),
};
/// `retry_jitter`, as a fraction of the delay.
pub(crate) const RETRY_JITTER: Bounds<f64> = Bounds { min: 0.0, max: 1.0 };
/// The attempt `timeout`, on the bus and on endpoints.
pub(crate) const TIMEOUT: Bounds<Duration> = Bounds {
    min: Duration::from_millis(1),
    max: hours(2),
};
/// `connect_timeout`.
pub(crate) const CONNECT_TIMEOUT: Bounds<Duration> = TIMEOUT;
/// `concurrency`: sender threads per endpoint.
pub(crate) const CONCURRENCY: Bounds<u64> = Bounds { min: 1, max: 256 };

pub(crate) const SENDER_THREADS: Bounds<u64> = Bounds { min: 1, max: 4096 };

/// Per-endpoint rate limit, attempts per second (0 on the setter: none).
pub(crate) const RATE_LIMIT: Bounds<u64> = Bounds {
    min: 1,
    max: 100_000,
};
/// `response_body_limit`, in bytes kept per attempt.
pub(crate) const RESPONSE_BODY_LIMIT: Bounds<u64> = Bounds { min: 0, max: MIB };
/// `cache_capacity`, in bytes.
pub(crate) const CACHE_CAPACITY: Bounds<u64> = Bounds {
    min: MIB,
    max: 1024 * 1024 * MIB,
};
/// `flush_every`.
pub(crate) const FLUSH_EVERY: Bounds<Duration> = Bounds {
    min: Duration::from_millis(1),
    max: hours(1),
};
/// `sender_idle_timeout`.
pub(crate) const SENDER_IDLE_TIMEOUT: Bounds<Duration> = Bounds {
    min: Duration::ZERO,
    max: hours(24),
};
/// `shutdown_timeout`.
pub(crate) const SHUTDOWN_TIMEOUT: Bounds<Duration> = Bounds {
    min: Duration::ZERO,
    max: hours(24),
};
/// `max_retry_after`.
pub(crate) const MAX_RETRY_AFTER: Bounds<Duration> = RETRY_DELAY;
/// `pause_after` when set, on the bus and on endpoints.
pub(crate) const PAUSE_AFTER: Bounds<u64> = Bounds {
    min: 1,
    max: 1_000_000,
};
/// `retention` when set: up to a hundred years.
pub(crate) const RETENTION: Bounds<Duration> = Bounds {
    min: Duration::ZERO,
    max: days(36_525),
};
/// `idempotency_window`.
pub(crate) const IDEMPOTENCY_WINDOW: Bounds<Duration> = Bounds {
    min: Duration::ZERO,
    max: days(365),
};
/// `janitor_interval`.
pub(crate) const JANITOR_INTERVAL: Bounds<Duration> = Bounds {
    min: Duration::from_millis(1),
    max: hours(1),
};
/// The `grace` of [`Bus::rotate_secret`](crate::Bus::rotate_secret).
pub(crate) const ROTATION_GRACE: Bounds<Duration> = Bounds {
    min: Duration::ZERO,
    max: days(365),
};
/// `postgres_schema`, in bytes (the NOTIFY channel adds 8 and must stay
/// below PostgreSQL's 63).
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES_SCHEMA_BYTES: Bounds<u64> = Bounds { min: 1, max: 50 };
/// `postgres_pool_size`.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES_POOL_SIZE: Bounds<u64> = Bounds { min: 2, max: 256 };
/// `postgres_statement_timeout`.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES_STATEMENT_TIMEOUT: Bounds<Duration> = Bounds {
    min: Duration::from_millis(100),
    max: hours(1),
};
/// `postgres_lease` (and it must exceed the attempt timeout).
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES_LEASE: Bounds<Duration> = Bounds {
    min: Duration::from_secs(1),
    max: hours(1),
};
/// `postgres_poll_interval`.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES_POLL_INTERVAL: Bounds<Duration> = Bounds {
    min: Duration::from_millis(10),
    max: Duration::from_secs(60),
};
/// `user_agent`, in bytes.
pub(crate) const USER_AGENT_BYTES: Bounds<u64> = Bounds { min: 0, max: 1024 };

/// An inclusive range a setting must fall in. Its bounds are named in the
/// error a host gets for a value outside it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds<T> {
    pub(crate) min: T,
    pub(crate) max: T,
}

impl Bounds<Duration> {
    /// `Err` with the reason for the host when `value` is out of range.
    pub(crate) fn check(&self, value: Duration) -> Result<(), String> {
        if (self.min..=self.max).contains(&value) {
            Ok(())
        } else {
            Err(format!(
                "must be from {} to {}, got {value:?}",
                Human(self.min),
                Human(self.max)
            ))
        }
    }

    /// `value` moved into the range.
    pub(crate) fn clamp(&self, value: Duration) -> Duration {
        value.clamp(self.min, self.max)
    }
}

impl Bounds<u64> {
    /// `Err` with the reason for the host when `value` is out of range.
    pub(crate) fn check(&self, value: impl TryInto<u64>) -> Result<(), String> {
        match value.try_into() {
            Ok(v) if (self.min..=self.max).contains(&v) => Ok(()),
            Ok(v) => Err(format!(
                "must be from {} to {}, got {v}",
                self.min, self.max
            )),
            Err(_) => Err(format!("must be from {} to {}", self.min, self.max)),
        }
    }

    /// `value` moved into the range.
    pub(crate) fn clamp_u32(&self, value: u32) -> u32 {
        let clamped = u64::from(value).clamp(self.min, self.max);
        u32::try_from(clamped).unwrap_or(u32::MAX)
    }
}

impl Bounds<f64> {
    /// `Err` with the reason for the host when `value` is out of range or
    /// not a number.
    pub(crate) fn check(&self, value: f64) -> Result<(), String> {
        if (self.min..=self.max).contains(&value) {
            Ok(())
        } else {
            Err(format!(
                "must be a number from {} to {}, got {value}",
                self.min, self.max
            ))
        }
    }
}

/// A range bound as a person writes it: `30 days`, `2 h`, `1 ms`.
struct Human(Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let s = d.as_secs();
        if d.subsec_nanos() != 0 {
            return match d.subsec_nanos() % 1_000_000 {
                0 if s == 0 => write!(f, "{} ms", d.subsec_millis()),
                _ => write!(f, "{d:?}"),
            };
        }
        match s {
            0 => f.write_str("0 s"),
            _ if s > 86_400 && s % 86_400 == 0 => write!(f, "{} days", s / 86_400),
            _ if s % 3600 == 0 => write!(f, "{} h", s / 3600),
            _ if s % 60 == 0 => write!(f, "{} min", s / 60),
            _ => write!(f, "{s} s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_bounds_read_as_a_person_writes_them() {
        let human = |d| Human(d).to_string();
        assert_eq!(human(Duration::ZERO), "0 s");
        assert_eq!(human(Duration::from_millis(1)), "1 ms");
        assert_eq!(human(Duration::from_secs(90)), "90 s");
        assert_eq!(human(Duration::from_secs(120)), "2 min");
        assert_eq!(human(hours(2)), "2 h");
        assert_eq!(human(days(1)), "24 h");
        assert_eq!(human(days(30)), "30 days");
        assert_eq!(human(Duration::from_micros(1500)), "1.5ms");
    }
}

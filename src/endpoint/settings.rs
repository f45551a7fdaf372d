//! The per-endpoint delivery settings a host may override: how often, how
//! fast, how many at once, and what counts as delivered.
//!
//! A setting lives here whole: its field in [`Overrides`] (unset means the
//! bus default), its setter on [`EndpointConfig`], its range check, its
//! clamp for values stored before the range existed, and its resolution
//! against the bus default in [`Overrides::resolve`]. The sender reads the
//! resolved [`Settings`]. The store keeps [`Overrides`] as a whole; its
//! frozen record layout (`store::records`) lists the fields, so a new one
//! does not compile until it is given its place in a new record version.

use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::EndpointConfig;
use crate::bounds;
use crate::config::Config;
use crate::error::{Error, Result};

/// Which answers count as delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SuccessPolicy {
    /// Any 2xx status. The default.
    #[default]
    Any2xx,
    /// Exactly 200 (Grow: "if the webhook URL does not return a 200").
    Exactly200,
}

impl SuccessPolicy {
    /// Whether `status` counts as delivered.
    pub fn accepts(self, status: u16) -> bool {
        match self {
            SuccessPolicy::Any2xx => (200..300).contains(&status),
            SuccessPolicy::Exactly200 => status == 200,
        }
    }
}

/// An endpoint's own delivery settings; `None` takes the bus default.
///
/// Not part of the API: public only so that `fuzz_api` can build stored
/// endpoint records from it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Attempts per delivery, the first included.
    pub max_attempts: Option<u32>,
    /// Delays before the 2nd, 3rd… attempt (stored in milliseconds).
    pub retry_delays: Option<Vec<Duration>>,
    /// Time allowed for one attempt (stored in milliseconds).
    pub timeout: Option<Duration>,
    /// Deliveries in flight at once.
    pub concurrency: Option<u32>,
    /// Attempts started per second at most; `None` is no limit (there is no
    /// bus default).
    pub rate_limit: Option<NonZeroU32>,
    /// Which answers count as delivered.
    pub success: SuccessPolicy,
    /// One delivery at a time, in publish order.
    pub ordered: bool,
    /// Failed deliveries in a row before a pause; `Some(None)` never pauses.
    pub pause_after: Option<Option<u32>>,
}

/// An endpoint's delivery settings with the bus defaults filled in: what its
/// sender uses.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) max_attempts: u32,
    pub(crate) retry_delays: Vec<Duration>,
    pub(crate) retry_jitter: f64,
    pub(crate) timeout: Duration,
    pub(crate) concurrency: usize,
    pub(crate) rate_limit: Option<NonZeroU32>,
    pub(crate) success: SuccessPolicy,
    pub(crate) ordered: bool,
    pub(crate) pause_after: Option<u32>,
}

impl Overrides {
    /// Fills unset settings from the bus's.
    pub(crate) fn resolve(&self, bus: &Config) -> Settings {
        Settings {
            max_attempts: self.max_attempts.unwrap_or(bus.max_attempts),
            retry_delays: self
                .retry_delays
                .clone()
                .unwrap_or_else(|| bus.retry_delays.clone()),
            retry_jitter: bus.retry_jitter,
            timeout: self.timeout.unwrap_or(bus.timeout),
            // Strict order means one delivery at a time.
            concurrency: if self.ordered {
                1
            } else {
                self.concurrency.unwrap_or(bus.concurrency) as usize
            },
            rate_limit: self.rate_limit,
            success: self.success,
            ordered: self.ordered,
            pause_after: self.pause_after.unwrap_or(bus.pause_after),
        }
    }

    /// Checks every set value against its range; the error names the
    /// setting and the range. Ranges live with the bus's, in the config
    /// module.
    pub(crate) fn validate(&self) -> Result<()> {
        let ranged = |field, checked: std::result::Result<(), String>| {
            checked.map_err(|reason| Error::InvalidEndpoint { field, reason })
        };
        if let Some(n) = self.max_attempts {
            ranged("max_attempts", bounds::ATTEMPTS.check(n))?;
        }
        if let Some(delays) = &self.retry_delays {
            ranged("retry_delays", bounds::check_retry_delays(delays))?;
        }
        if let Some(t) = self.timeout {
            ranged("timeout", bounds::TIMEOUT.check(t))?;
        }
        if let Some(n) = self.concurrency {
            ranged("concurrency", bounds::CONCURRENCY.check(n))?;
        }
        if let Some(Some(n)) = self.pause_after {
            ranged("pause_after", bounds::PAUSE_AFTER.check(n))?;
        }
        if let Some(n) = self.rate_limit {
            ranged("rate_limit", bounds::RATE_LIMIT.check(n.get()))?;
        }
        Ok(())
    }

    /// Moves settings stored before their ranges existed into range, so such
    /// an endpoint keeps delivering (with the nearest allowed value) instead
    /// of being skipped as unreadable. Returns whether anything moved.
    pub(crate) fn clamp_legacy(&mut self) -> bool {
        let before = self.clone();
        if let Some(n) = &mut self.max_attempts {
            *n = bounds::ATTEMPTS.clamp_u32(*n);
        }
        if let Some(delays) = &mut self.retry_delays {
            let most = usize::try_from(bounds::RETRY_DELAY_COUNT.max).unwrap_or(usize::MAX);
            delays.truncate(most);
            for d in delays.iter_mut() {
                *d = bounds::RETRY_DELAY.clamp(*d);
            }
        }
        if let Some(t) = &mut self.timeout {
            *t = bounds::TIMEOUT.clamp(*t);
        }
        if let Some(n) = &mut self.concurrency {
            *n = bounds::CONCURRENCY.clamp_u32(*n);
        }
        if let Some(Some(n)) = &mut self.pause_after {
            *n = bounds::PAUSE_AFTER.clamp_u32(*n);
        }
        *self != before
    }
}

/// The setters of the settings above.
impl EndpointConfig {
    /// Delivers strictly in publish order: one delivery at a time, and a
    /// delivery waiting for a retry holds back every later one, across
    /// crashes and restarts too. Deliveries are never interleaved: once a
    /// delivery's attempts have begun, it finishes before any other goes,
    /// even an older one queued again meanwhile (a resend or recover) or,
    /// on PostgreSQL, one from a publish that overlapped it. Two limits,
    /// both about older deliveries queued again behind a begun one and
    /// then a restart (or, on PostgreSQL, a takeover): a begun delivery
    /// more than 8,192 deliveries into the queue is not looked for, and on
    /// sled a crash during a delivery's first attempt leaves no mark that
    /// it began (the first attempt is not written ahead). Defaults to
    /// `false` (deliveries flow independently, up to the endpoint's
    /// concurrency).
    pub fn ordered(mut self, ordered: bool) -> Self {
        self.settings.ordered = ordered;
        self
    }

    /// Pauses the endpoint after this many deliveries in a row fail their
    /// last attempt; `None` never pauses for failures.
    /// Allowed: `None`, or 1 to 1,000,000. Defaults to the bus setting (10).
    pub fn pause_after(mut self, failed_deliveries: Option<u32>) -> Self {
        self.settings.pause_after = Some(failed_deliveries);
        self
    }

    /// Which answers count as delivered. Defaults to any 2xx.
    pub fn success(mut self, policy: SuccessPolicy) -> Self {
        self.settings.success = policy;
        self
    }

    /// Maximum number of attempts per delivery, the first included.
    /// Allowed: 1 to 1000. Defaults to the bus setting (3).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.settings.max_attempts = Some(n);
        self
    }

    /// Delays before the 2nd, 3rd… attempt; the last one repeats if there
    /// are more attempts than delays. Jitter is added.
    /// Allowed: 1 to 100 delays, each from 0 to 30 days.
    /// Defaults to the bus setting (30 s, 5 min, 50 min).
    pub fn retry_delays(mut self, delays: impl IntoIterator<Item = Duration>) -> Self {
        self.settings.retry_delays = Some(delays.into_iter().collect());
        self
    }

    /// Total time allowed for one attempt, from connecting to reading the
    /// response. Allowed: 1 ms to 2 h. Defaults to the bus setting (15 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = Some(timeout);
        self
    }

    /// How many deliveries to this endpoint may be in flight at once, each
    /// on its own sender thread. Allowed: 1 to 256. Defaults to the bus
    /// setting (2).
    pub fn concurrency(mut self, n: u32) -> Self {
        self.settings.concurrency = Some(n);
        self
    }

    /// At most `per_second` attempts start per second, evenly spaced
    /// (Svix's and Convoy's per-endpoint rate limit). Deliveries held back
    /// wait in the queue: no attempt is spent on them. `0` removes the
    /// limit; otherwise 1 to 100,000 per second. Defaults to no limit.
    pub fn rate_limit(mut self, per_second: u32) -> Self {
        self.settings.rate_limit = NonZeroU32::new(per_second);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_counts_outside_their_ranges_name_field_and_range() {
        let base = || EndpointConfig::new("a", "https://example.com");
        let cases = [
            (base().max_attempts(1001), "max_attempts", "from 1 to 1000"),
            (
                base().retry_delays([Duration::MAX]),
                "retry_delays",
                "30 days",
            ),
            (
                base().retry_delays(vec![Duration::ZERO; 101]),
                "retry_delays",
                "from 1 to 100",
            ),
            (base().timeout(Duration::MAX), "timeout", "from 1 ms to 2 h"),
            (
                base().timeout(Duration::from_nanos(1)),
                "timeout",
                "from 1 ms to 2 h",
            ),
            (base().concurrency(u32::MAX), "concurrency", "from 1 to 256"),
            (
                base().pause_after(Some(u32::MAX)),
                "pause_after",
                "from 1 to 1000000",
            ),
        ];
        for (cfg, field, range) in cases {
            match cfg.validate() {
                Err(Error::InvalidEndpoint { field: f, reason }) => {
                    assert_eq!(f, field);
                    assert!(reason.contains(range), "{field}: {reason}");
                }
                other => panic!("{field}: {other:?}"),
            }
        }
        base()
            .max_attempts(1000)
            .retry_delays(vec![Duration::from_secs(30 * 86_400); 100])
            .timeout(Duration::from_secs(2 * 3600))
            .concurrency(256)
            .pause_after(Some(1_000_000))
            .validate()
            .unwrap();
    }
}

//! The retry clock: what state a delivery moves to after an attempt, and
//! when its next attempt is due.

use std::time::Duration;

use crate::store::records::DeliveryState;

/// Delays between attempts, with jitter.
#[derive(Clone, Debug)]
pub(crate) struct RetryPolicy {
    delays: Vec<Duration>,
    jitter: f64,
}

impl RetryPolicy {
    pub(crate) fn new(delays: Vec<Duration>, jitter: f64) -> Self {
        RetryPolicy { delays, jitter }
    }

    /// The delay before attempt `failed + 1`, after attempt `failed` failed:
    /// the `failed`-th delay of the list (the last one repeats), spread by
    /// ±jitter.
    pub(crate) fn delay_after(&self, failed: u32) -> Duration {
        let index = usize::try_from(failed.max(1) - 1).unwrap_or(usize::MAX);
        let Some(&base) = self.delays.get(index).or(self.delays.last()) else {
            return Duration::ZERO;
        };
        // Settings are validated (jitter 0..=1, delays up to 30 days); this
        // stays panic-free for any value anyway: `Duration::mul_f64` panics
        // on NaN, negative and overflowing results, `try_from_secs_f64`
        // reports them, and the delay then goes without jitter.
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let spread = 1.0 + jitter * (fastrand::f64() * 2.0 - 1.0);
        Duration::try_from_secs_f64(base.as_secs_f64() * spread).unwrap_or(base)
    }

    /// The state a delivery moves to after attempt `attempt` of at most
    /// `max_attempts`.
    pub(crate) fn after_attempt(
        &self,
        attempt: u32,
        succeeded: bool,
        max_attempts: u32,
        now_ms: u64,
    ) -> DeliveryState {
        if succeeded {
            DeliveryState::Delivered { attempts: attempt }
        } else if attempt >= max_attempts {
            DeliveryState::Failed { attempts: attempt }
        } else {
            let delay = crate::time::duration_ms(self.delay_after(attempt));
            DeliveryState::Waiting {
                next_attempt: attempt.saturating_add(1),
                due_ms: now_ms.saturating_add(delay),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &[u64]) -> Vec<Duration> {
        s.iter().map(|&s| Duration::from_secs(s)).collect()
    }

    #[test]
    fn follows_the_list_then_repeats_the_last() {
        let p = RetryPolicy::new(secs(&[30, 300, 3000]), 0.0);
        assert_eq!(p.delay_after(1), Duration::from_secs(30));
        assert_eq!(p.delay_after(2), Duration::from_secs(300));
        assert_eq!(p.delay_after(3), Duration::from_secs(3000));
        assert_eq!(p.delay_after(9), Duration::from_secs(3000));
        assert_eq!(RetryPolicy::new(vec![], 0.1).delay_after(1), Duration::ZERO);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let p = RetryPolicy::new(secs(&[100]), 0.2);
        for _ in 0..1000 {
            let d = p.delay_after(1).as_secs_f64();
            assert!((80.0..=120.0).contains(&d), "{d}");
        }
    }

    #[test]
    fn any_delay_and_jitter_gives_a_delay_without_panicking() {
        for jitter in [
            0.0,
            1.0,
            -1.0,
            7.5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            for base in [Duration::ZERO, Duration::from_nanos(1), Duration::MAX] {
                let p = RetryPolicy::new(vec![base], jitter);
                let d = p.delay_after(u32::MAX);
                if !jitter.is_finite() || jitter <= 0.0 {
                    assert_eq!(d, base, "{jitter} {base:?}");
                }
                let state = p.after_attempt(u32::MAX - 1, false, u32::MAX, u64::MAX);
                assert_eq!(
                    state,
                    DeliveryState::Waiting {
                        next_attempt: u32::MAX,
                        due_ms: u64::MAX
                    }
                );
            }
        }
    }

    #[test]
    fn exhausts_after_max_attempts() {
        let p = RetryPolicy::new(secs(&[1]), 0.0);
        assert_eq!(
            p.after_attempt(1, false, 3, 1000),
            DeliveryState::Waiting {
                next_attempt: 2,
                due_ms: 2000
            }
        );
        assert_eq!(
            p.after_attempt(3, false, 3, 0),
            DeliveryState::Failed { attempts: 3 }
        );
        assert_eq!(
            p.after_attempt(2, true, 3, 0),
            DeliveryState::Delivered { attempts: 2 }
        );
    }
}

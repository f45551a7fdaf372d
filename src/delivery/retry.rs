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
        let index = (failed.max(1) - 1) as usize;
        let Some(base) = self.delays.get(index).or(self.delays.last()) else {
            return Duration::ZERO;
        };
        let spread = 1.0 + self.jitter * (fastrand::f64() * 2.0 - 1.0);
        base.mul_f64(spread.max(0.0))
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
            let delay = self.delay_after(attempt).as_millis().min(u64::MAX as u128) as u64;
            DeliveryState::Waiting {
                next_attempt: attempt + 1,
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

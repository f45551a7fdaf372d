//! The `serde` feature: how the public read models look when a host
//! serializes them (to JSON for its own API, typically).
//!
//! - Ids and cursors are their text forms (`ep_3`, `evt_01J…`, `1f`), so
//!   what a host shows is what it can parse back.
//! - Times are Unix milliseconds (integers), the precision hookbus stores.
//! - Durations are microseconds (integers), the precision attempts are
//!   timed with.
//! - Enums are `snake_case`; those with fields carry a tag (`"state"` for
//!   a delivery's status, `"status"` for an endpoint's, `"kind"` for a
//!   pause reason and `"type"` for a notice).
//!
//! Nothing that holds a secret (endpoint settings, secrets, events being
//! built) implements these traits.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::SystemTime;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::endpoint::{EndpointId, EndpointStatus, PauseReason};
use crate::event::EventId;
use crate::page::Cursor;
use crate::time;

/// Reads a value from its text form with `FromStr`.
struct TextVisitor<T>(&'static str, PhantomData<T>);

impl<T> Visitor<'_> for TextVisitor<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        s.parse().map_err(E::custom)
    }
}

macro_rules! as_text {
    ($ty:ty, $expecting:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(TextVisitor($expecting, PhantomData))
            }
        }
    };
}

as_text!(EndpointId, "an endpoint id such as \"ep_3\"");
as_text!(
    EventId,
    "an event id such as \"evt_01J9Z3Q4V6K8M0N2P4R6T8W0Y2\""
);

impl<T> Serialize for Cursor<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de, T> Deserialize<'de> for Cursor<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor("a page cursor", PhantomData))
    }
}

/// `SystemTime` as Unix milliseconds.
pub(crate) mod unix_ms {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(time::to_ms(*t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        u64::deserialize(d).map(time::from_ms)
    }
}

/// `Option<SystemTime>` as Unix milliseconds or null.
pub(crate) mod opt_unix_ms {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        t.map(time::to_ms).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(time::from_ms))
    }
}

/// `Duration` as whole microseconds (saturating at `u64::MAX`).
pub(crate) mod micros {
    use super::*;
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(t: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(t.as_micros()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_micros)
    }
}

/// A pause reason's public form, independent of how it is stored.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum PauseReasonForm {
    Manual,
    ConsecutiveFailures { count: u32 },
    Gone,
}

impl From<PauseReason> for PauseReasonForm {
    fn from(r: PauseReason) -> Self {
        match r {
            PauseReason::Manual => PauseReasonForm::Manual,
            PauseReason::ConsecutiveFailures(count) => {
                PauseReasonForm::ConsecutiveFailures { count }
            }
            PauseReason::Gone => PauseReasonForm::Gone,
        }
    }
}

impl From<PauseReasonForm> for PauseReason {
    fn from(r: PauseReasonForm) -> Self {
        match r {
            PauseReasonForm::Manual => PauseReason::Manual,
            PauseReasonForm::ConsecutiveFailures { count } => {
                PauseReason::ConsecutiveFailures(count)
            }
            PauseReasonForm::Gone => PauseReason::Gone,
        }
    }
}

/// `PauseReason` as `{"kind": "manual" | "consecutive_failures" | "gone"}`
/// (with `"count"` for consecutive failures).
pub(crate) mod pause_reason {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(r: &PauseReason, s: S) -> Result<S::Ok, S::Error> {
        PauseReasonForm::from(*r).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PauseReason, D::Error> {
        PauseReasonForm::deserialize(d).map(PauseReason::from)
    }
}

/// An endpoint status's public form.
#[derive(Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum StatusForm {
    Active,
    Disabled,
    Paused {
        #[serde(with = "pause_reason")]
        reason: PauseReason,
        #[serde(with = "unix_ms")]
        since: SystemTime,
    },
}

impl Serialize for EndpointStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            EndpointStatus::Active => StatusForm::Active,
            EndpointStatus::Disabled => StatusForm::Disabled,
            EndpointStatus::Paused { reason, since } => StatusForm::Paused { reason, since },
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for EndpointStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match StatusForm::deserialize(d)? {
            StatusForm::Active => EndpointStatus::Active,
            StatusForm::Disabled => EndpointStatus::Disabled,
            StatusForm::Paused { reason, since } => EndpointStatus::Paused { reason, since },
        })
    }
}

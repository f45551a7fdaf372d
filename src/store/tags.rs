//! Every enum kept in a record is stored as an explicit, frozen tag followed
//! by its variant's fields, written by hand here: never by a derive, whose
//! variant index follows declaration order. Adding or reordering a variant
//! of a public enum ([`Format`], [`Signing`], [`SuccessPolicy`],
//! [`PauseReason`]) therefore cannot change what is stored or re-label what
//! is already stored; a new variant does not compile until it is given a
//! new tag below. The product presets were variants of `Format` when
//! their tags were given; each keeps its tag as a preset. This module is where the public types meet the stored
//! format: nothing outside the store encodes them.
//!
//! The layout is the one bincode gives an enum (the tag as a varint, then
//! the fields in order), so the bytes of databases written before the tags
//! were explicit read unchanged; `stored_format` tests pin them.
//!
//! | enum            | tag | variant (fields)                          |
//! |-----------------|-----|-------------------------------------------|
//! | `Format`        | 0   | `Standard`                                |
//! |                 | 1   | preset `GrowthX` (client: string)         |
//! |                 | 2   | preset `LeadCrm` (id_space: string)       |
//! |                 | 3   | preset `Snitcher`                         |
//! |                 | 4   | preset `Grow`                             |
//! |                 | 5   | `Raw`                                     |
//! |                 | 6   | `Custom` (name: string)                   |
//! | `Signing`       | 0   | `StandardWebhooks`                        |
//! |                 | 1   | `HmacSha256Hex` (header: string)          |
//! |                 | 2   | `SecretHeader` (header: string)           |
//! |                 | 3   | `SecretInBody`                            |
//! |                 | 4   | `None`                                    |
//! | `SuccessPolicy` | 0   | `Any2xx`                                  |
//! |                 | 1   | `Exactly200`                              |
//! | `PauseReason`   | 0   | `Manual`                                  |
//! |                 | 1   | `ConsecutiveFailures` (u32)               |
//! |                 | 2   | `Gone`                                    |
//! | `Mode`          | 0   | `Active`                                  |
//! |                 | 1   | `Disabled`                                |
//! |                 | 2   | `Paused` (reason, since_ms: u64)          |
//! | `DeliveryState` | 0   | `Waiting` (next_attempt: u32, due_ms: u64)|
//! |                 | 1   | `InFlight` (attempt: u32)                 |
//! |                 | 2   | `Delivered` (attempts: u32)               |
//! |                 | 3   | `Failed` (attempts: u32)                  |
//!
//! Tags are never reused: a removed variant's tag stays reserved.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeTuple, Serializer};

use super::records::{DeliveryState, Mode};
use crate::endpoint::{PauseReason, SuccessPolicy};
use crate::formats::presets::{Grow, GrowthX, Kind, LeadCrm, Preset, Snitcher};
use crate::formats::Format;
use crate::signing::Signing;

/// A type stored as a tag and the fields of its variant.
pub(crate) trait Tagged: Sized {
    /// The type's name, for errors.
    const WHAT: &'static str;

    /// Writes the tag and the fields, through [`tagged`].
    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;

    /// Reads the fields of the variant `tag` (one element of `seq`: a
    /// tuple of them, or `()` when there are none).
    fn read<'de, A: SeqAccess<'de>>(tag: u32, seq: &mut A) -> Result<Self, A::Error>;
}

/// For `#[serde(with = "tags")]` on a record field.
pub(crate) fn serialize<T: Tagged, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    value.write(s)
}

/// For `#[serde(with = "tags")]` on a record field.
pub(crate) fn deserialize<'de, T: Tagged, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    d.deserialize_tuple(2, TagVisitor(PhantomData))
}

/// The tag, then the fields (`&()` for none, a tuple for several).
fn tagged<S: Serializer, F: Serialize + ?Sized>(
    s: S,
    tag: u32,
    fields: &F,
) -> Result<S::Ok, S::Error> {
    let mut t = s.serialize_tuple(2)?;
    t.serialize_element(&tag)?;
    t.serialize_element(fields)?;
    t.end()
}

/// The next element, which must be there.
fn fields<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(seq: &mut A) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::custom("record ends inside a tagged value"))
}

fn unknown<T: Tagged, E: de::Error>(tag: u32) -> E {
    E::custom(format_args!("unknown {} tag {tag}", T::WHAT))
}

struct TagVisitor<T>(PhantomData<T>);

impl<'de, T: Tagged> Visitor<'de> for TagVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a tagged {}", T::WHAT)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        let tag: u32 = fields(&mut seq)?;
        T::read(tag, &mut seq)
    }
}

/// A tagged value inside the fields of another (the reason of a pause, the
/// enums of an endpoint record).
pub(crate) struct ByTag<'a, T>(pub(crate) &'a T);

impl<T: Tagged> Serialize for ByTag<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.write(s)
    }
}

pub(crate) struct FromTag<T>(pub(crate) T);

impl<'de, T: Tagged> Deserialize<'de> for FromTag<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize(d).map(FromTag)
    }
}

impl Tagged for Format {
    const WHAT: &'static str = "format";

    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Format::Standard => tagged(s, 0, &()),
            Format::Preset(Preset(Kind::GrowthX(p))) => tagged(s, 1, p.client()),
            Format::Preset(Preset(Kind::LeadCrm(p))) => tagged(s, 2, p.id_space()),
            Format::Preset(Preset(Kind::Snitcher(_))) => tagged(s, 3, &()),
            Format::Preset(Preset(Kind::Grow(_))) => tagged(s, 4, &()),
            Format::Raw => tagged(s, 5, &()),
            Format::Custom(name) => tagged(s, 6, name),
        }
    }

    fn read<'de, A: SeqAccess<'de>>(tag: u32, seq: &mut A) -> Result<Self, A::Error> {
        Ok(match tag {
            0 => fields::<(), _>(seq).map(|()| Format::Standard)?,
            1 => GrowthX::new(fields::<String, _>(seq)?).into(),
            2 => LeadCrm::new(fields::<String, _>(seq)?).into(),
            3 => fields::<(), _>(seq).map(|()| Snitcher.into())?,
            4 => fields::<(), _>(seq).map(|()| Grow.into())?,
            5 => fields::<(), _>(seq).map(|()| Format::Raw)?,
            6 => Format::Custom(fields(seq)?),
            _ => return Err(unknown::<Self, _>(tag)),
        })
    }
}

impl Tagged for Signing {
    const WHAT: &'static str = "signing";

    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Signing::StandardWebhooks => tagged(s, 0, &()),
            Signing::HmacSha256Hex { header } => tagged(s, 1, header),
            Signing::SecretHeader { header } => tagged(s, 2, header),
            Signing::SecretInBody => tagged(s, 3, &()),
            Signing::None => tagged(s, 4, &()),
        }
    }

    fn read<'de, A: SeqAccess<'de>>(tag: u32, seq: &mut A) -> Result<Self, A::Error> {
        Ok(match tag {
            0 => fields::<(), _>(seq).map(|()| Signing::StandardWebhooks)?,
            1 => Signing::HmacSha256Hex {
                header: fields(seq)?,
            },
            2 => Signing::SecretHeader {
                header: fields(seq)?,
            },
            3 => fields::<(), _>(seq).map(|()| Signing::SecretInBody)?,
            4 => fields::<(), _>(seq).map(|()| Signing::None)?,
            _ => return Err(unknown::<Self, _>(tag)),
        })
    }
}

impl Tagged for SuccessPolicy {
    const WHAT: &'static str = "success policy";

    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SuccessPolicy::Any2xx => tagged(s, 0, &()),
            SuccessPolicy::Exactly200 => tagged(s, 1, &()),
        }
    }

    fn read<'de, A: SeqAccess<'de>>(tag: u32, seq: &mut A) -> Result<Self, A::Error> {
        let policy = match tag {
            0 => SuccessPolicy::Any2xx,
            1 => SuccessPolicy::Exactly200,
            _ => return Err(unknown::<Self, _>(tag)),
        };
        fields::<(), _>(seq)?;
        Ok(policy)
    }
}

impl Tagged for PauseReason {
    const WHAT: &'static str = "pause reason";

    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PauseReason::Manual => tagged(s, 0, &()),
            PauseReason::ConsecutiveFailures(n) => tagged(s, 1, n),
            PauseReason::Gone => tagged(s, 2, &()),
        }
    }

    fn read<'de, A: SeqAccess<'de>>(tag: u32, seq: &mut A) -> Result<Self, A::Error> {
        Ok(match tag {
            0 => fields::<(), _>(seq).map(|()| PauseReason::Manual)?,
            1 => PauseReason::ConsecutiveFailures(fields(seq)?),
            2 => fields::<(), _>(seq).map(|()| PauseReason::Gone)?,
            _ => return Err(unknown::<Self, _>(tag)),
        })
    }
}

impl Tagged for Mode {
    const WHAT: &'static str = "endpoint mode";

    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Mode::Active => tagged(s, 0, &()),
            Mode::Disabled => tagged(s, 1, &()),
            Mode::Paused { reason, since_ms } => tagged(s, 2, &(ByTag(reason), since_ms)),
        }
    }

    fn read<'de, A: SeqAccess<'de>>(tag: u32, seq: &mut A) -> Result<Self, A::Error> {
        Ok(match tag {
            0 => fields::<(), _>(seq).map(|()| Mode::Active)?,
            1 => fields::<(), _>(seq).map(|()| Mode::Disabled)?,
            2 => {
                let (FromTag(reason), since_ms) = fields(seq)?;
                Mode::Paused { reason, since_ms }
            }
            _ => return Err(unknown::<Self, _>(tag)),
        })
    }
}

impl Tagged for DeliveryState {
    const WHAT: &'static str = "delivery state";

    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DeliveryState::Waiting {
                next_attempt,
                due_ms,
            } => tagged(s, 0, &(next_attempt, due_ms)),
            DeliveryState::InFlight { attempt } => tagged(s, 1, attempt),
            DeliveryState::Delivered { attempts } => tagged(s, 2, attempts),
            DeliveryState::Failed { attempts } => tagged(s, 3, attempts),
        }
    }

    fn read<'de, A: SeqAccess<'de>>(tag: u32, seq: &mut A) -> Result<Self, A::Error> {
        Ok(match tag {
            0 => {
                let (next_attempt, due_ms) = fields(seq)?;
                DeliveryState::Waiting {
                    next_attempt,
                    due_ms,
                }
            }
            1 => DeliveryState::InFlight {
                attempt: fields(seq)?,
            },
            2 => DeliveryState::Delivered {
                attempts: fields(seq)?,
            },
            3 => DeliveryState::Failed {
                attempts: fields(seq)?,
            },
            _ => return Err(unknown::<Self, _>(tag)),
        })
    }
}

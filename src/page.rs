//! Paging: every listing that can grow without bound returns a [`Page`],
//! and the page after it is asked for with the page's [`Cursor`].

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::str::FromStr;

/// One page of a listing, and where the next one starts.
///
/// Every paged listing on [`Bus`](crate::Bus) takes `after: Option<Cursor<T>>`
/// and `limit: usize` as its last two arguments: `None` asks for the first
/// page, [`Page::next`] for the one after it. A limit of 0 is read as 1.
/// Pages are cut at a position in the listing's order, so items added while
/// a caller pages through never shift or repeat a page.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Page<T> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` when this page is the last.
    pub next: Option<Cursor<T>>,
}

impl<T> Page<T> {
    pub(crate) fn new(items: Vec<T>, next: Option<Cursor<T>>) -> Self {
        Page { items, next }
    }
}

impl<T> IntoIterator for Page<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// Where a page of `T`s ended: pass it back as `after` for the next page.
///
/// Opaque, but it has a text form ([`Display`](fmt::Display) and
/// [`FromStr`]) so that a host can put it in a URL and read it back. A
/// cursor is only meaningful to the listing that returned it (and the type
/// parameter keeps a cursor of attempts from being passed to a listing of
/// deliveries); a cursor of the right type but from another filter simply
/// starts at its position.
pub struct Cursor<T> {
    position: u128,
    /// Orders items that share a position (0: none), such as one event's
    /// deliveries to several endpoints.
    tie: u64,
    // `fn() -> T`: the cursor holds no `T`, so it is `Send`, `Sync`, `Copy`
    // and so on whatever `T` is.
    of: PhantomData<fn() -> T>,
}

impl<T> Cursor<T> {
    pub(crate) fn at(position: u128) -> Self {
        Cursor::at_tie(position, 0)
    }

    pub(crate) fn at_tie(position: u128, tie: u64) -> Self {
        Cursor {
            position,
            tie,
            of: PhantomData,
        }
    }

    pub(crate) fn position(self) -> u128 {
        self.position
    }

    pub(crate) fn tie(self) -> u64 {
        self.tie
    }
}

// Written by hand: derives would require `T` to implement each trait.
impl<T> Clone for Cursor<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Cursor<T> {}

impl<T> PartialEq for Cursor<T> {
    fn eq(&self, other: &Self) -> bool {
        self.position == other.position && self.tie == other.tie
    }
}

impl<T> Eq for Cursor<T> {}

impl<T> Hash for Cursor<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.position.hash(state);
        self.tie.hash(state);
    }
}

impl<T> fmt::Debug for Cursor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({self})")
    }
}

/// Lower-case hex, without leading zeros: short in a URL, and not a number
/// a host would be tempted to compute with; `position-tie` when a tie is set.
impl<T> fmt::Display for Cursor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.position)?;
        if self.tie != 0 {
            write!(f, "-{:x}", self.tie)?;
        }
        Ok(())
    }
}

/// A cursor's text form did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseCursorError;

impl fmt::Display for ParseCursorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "not a page cursor (expected 1 to 32 lower-case hex digits, optionally '-' and 1 to 16 more)",
        )
    }
}

impl std::error::Error for ParseCursorError {}

impl<T> FromStr for Cursor<T> {
    type Err = ParseCursorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Only the form Display writes: no sign, no prefix, no upper case,
        // so that each cursor has exactly one text form.
        let canonical = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                && (s == "0" || !s.starts_with('0'))
        };
        let (position, tie) = match s.split_once('-') {
            Some((p, t)) if canonical(t, 16) && t != "0" => (p, t),
            Some(_) => return Err(ParseCursorError),
            None => (s, "0"),
        };
        if !canonical(position, 32) {
            return Err(ParseCursorError);
        }
        let position = u128::from_str_radix(position, 16).map_err(|_| ParseCursorError)?;
        let tie = u64::from_str_radix(tie, 16).map_err(|_| ParseCursorError)?;
        Ok(Cursor::at_tie(position, tie))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        for position in [0, 1, 0xff, u64::MAX as u128, u128::MAX] {
            for tie in [0, 1, 0xabc, u64::MAX] {
                let cursor = Cursor::<()>::at_tie(position, tie);
                let text = cursor.to_string();
                assert_eq!(text.parse::<Cursor<()>>(), Ok(cursor), "{text}");
            }
        }
    }

    #[test]
    fn refuses_other_forms() {
        let long_tie = format!("1-{}", "f".repeat(17));
        for bad in [
            "",
            "00",
            "0x1",
            "+1",
            "-1",
            "FF",
            "1g",
            &"f".repeat(33),
            "1-",
            "1-0",
            "1-01",
            "1-F",
            "1-2-3",
            &long_tie,
        ] {
            assert_eq!(bad.parse::<Cursor<()>>(), Err(ParseCursorError), "{bad:?}");
        }
    }
}

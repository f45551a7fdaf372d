//! Subscriptions: the event-type patterns and attribute values an endpoint
//! wants, compiled once when it is saved.

use crate::error::{Error, Result};
use crate::event::is_type_byte;

/// One compiled subscription pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pattern {
    All,
    /// `lead.*` is stored as `lead.`.
    Prefix(String),
    Exact(String),
}

/// The compiled subscriptions of an endpoint: event-type patterns, and
/// attribute values the event must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EventFilter {
    patterns: Vec<Pattern>,
    attributes: Vec<(String, Vec<String>)>,
}

impl EventFilter {
    pub(crate) fn parse(patterns: &[String]) -> Result<Self> {
        if patterns.is_empty() {
            return Err(Error::InvalidEventPattern {
                pattern: String::new(),
                reason: "an endpoint needs at least one pattern (use \"*\" for all events)",
            });
        }
        let patterns = patterns
            .iter()
            .map(|p| parse_pattern(p))
            .collect::<Result<Vec<_>>>()?;
        Ok(EventFilter {
            patterns,
            attributes: Vec::new(),
        })
    }

    /// The compiled event-type patterns (the routing index keys on them).
    pub(crate) fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    pub(super) fn with_attributes(mut self, filters: Vec<(String, Vec<String>)>) -> Self {
        // An empty value list accepts everything: nothing to check.
        self.attributes = filters.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        self
    }

    /// Whether an event of this type and with these attributes is wanted.
    // The reference model the index is tested (and fuzzed) against.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn matches(&self, event_type: &str, attributes: &[(String, String)]) -> bool {
        let type_ok = self.patterns.iter().any(|p| match p {
            Pattern::All => true,
            Pattern::Prefix(prefix) => event_type.starts_with(prefix.as_str()),
            Pattern::Exact(exact) => event_type == exact,
        });
        type_ok && self.matches_attributes(attributes)
    }

    /// Whether the event's attributes satisfy every attribute filter.
    pub(crate) fn matches_attributes(&self, attributes: &[(String, String)]) -> bool {
        self.attributes.iter().all(|(key, wanted)| {
            attributes
                .iter()
                .any(|(k, v)| k == key && wanted.iter().any(|w| w == v))
        })
    }
}

fn parse_pattern(p: &str) -> Result<Pattern> {
    let bad = |reason| {
        Err(Error::InvalidEventPattern {
            pattern: p.to_string(),
            reason,
        })
    };
    if p == "*" {
        return Ok(Pattern::All);
    }
    let (body, is_prefix) = match p.strip_suffix(".*") {
        Some(body) => (body, true),
        None => (p, false),
    };
    if body.is_empty() {
        return bad("empty");
    }
    if body.len() > crate::event::MAX_EVENT_TYPE_LEN {
        return bad("longer than 128 bytes");
    }
    if body.contains('*') {
        return bad("a wildcard is only allowed as a whole pattern (*) or at the end (lead.*)");
    }
    if !body.bytes().all(is_type_byte) {
        return bad("only A-Z a-z 0-9 . _ - : are allowed");
    }
    if body.starts_with('.') || body.ends_with('.') || body.contains("..") {
        return bad("empty segment between dots");
    }
    Ok(if is_prefix {
        Pattern::Prefix(format!("{body}."))
    } else {
        Pattern::Exact(body.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::EndpointConfig;

    fn filter(p: &[&str]) -> EventFilter {
        EventFilter::parse(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn patterns_match_exact_prefix_and_all() {
        let f = filter(&["lead.*", "tag.attached"]);
        assert!(f.matches("lead.create", &[]));
        assert!(f.matches("lead.note.add", &[]));
        assert!(!f.matches("lead", &[]));
        assert!(!f.matches("leads.create", &[]));
        assert!(f.matches("tag.attached", &[]));
        assert!(!f.matches("tag.detached", &[]));
        assert!(filter(&["*"]).matches("anything.at_all", &[]));
    }

    #[test]
    fn attribute_filters_require_one_of_the_values() {
        let cfg = EndpointConfig::new("g", "https://example.com")
            .filter_attribute("campaign", ["c1", "c2"])
            .filter_attribute("tenant", Vec::<String>::new());
        let f = cfg.validate().unwrap();
        let attrs = |c: &str| vec![("campaign".to_string(), c.to_string())];
        assert!(f.matches("x", &attrs("c1")));
        assert!(f.matches("x", &attrs("c2")));
        assert!(!f.matches("x", &attrs("c3")));
        assert!(!f.matches("x", &[]), "the attribute is required");
        let bad = EndpointConfig::new("g", "https://example.com").filter_attribute("", ["a"]);
        assert!(bad.validate().is_err());
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        for p in [
            "", "*.create", "le*d", "lead.**", ".*", "lead..x", "a b", "lead.", "**",
        ] {
            let r = EventFilter::parse(&[p.to_string()]);
            assert!(matches!(r, Err(Error::InvalidEventPattern { .. })), "{p:?}");
        }
        assert!(EventFilter::parse(&[]).is_err());
    }
}

//! Endpoint filters: compiling any patterns and attribute filters never
//! panics, and when they compile, matching agrees with the documented rules
//! (`*`; `prefix.*` matches types starting with `prefix.`; exact names;
//! every attribute filter with values needs one of them).

#![no_main]

use arbitrary::Arbitrary;
use hookbus::fuzz_api;
use libfuzzer_sys::fuzz_target;

/// Patterns and types are mostly built from a small alphabet, so that
/// they are valid and match often; `Any` lets in arbitrary text.
#[derive(Arbitrary, Debug)]
enum Text {
    Segments(Vec<Seg>),
    Any(String),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Seg {
    A,
    B,
    Ab,
    Star,
    Empty,
}

impl Text {
    fn render(&self) -> String {
        match self {
            Text::Any(s) => s.clone(),
            Text::Segments(segs) => segs
                .iter()
                .map(|s| match s {
                    Seg::A => "a",
                    Seg::B => "b",
                    Seg::Ab => "ab",
                    Seg::Star => "*",
                    Seg::Empty => "",
                })
                .collect::<Vec<_>>()
                .join("."),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    patterns: Vec<Text>,
    filters: Vec<(Text, Vec<Text>)>,
    event_type: Text,
    attributes: Vec<(Text, Text)>,
}

fn model(
    patterns: &[String],
    filters: &[(String, Vec<String>)],
    event_type: &str,
    attributes: &[(String, String)],
) -> bool {
    let type_ok = patterns.iter().any(|p| {
        p == "*"
            || (p.ends_with(".*") && event_type.starts_with(&p[..p.len() - 1]))
            || p == event_type
    });
    type_ok
        && filters.iter().all(|(key, values)| {
            values.is_empty()
                || attributes
                    .iter()
                    .any(|(k, v)| k == key && values.contains(v))
        })
}

fuzz_target!(|input: Input| {
    let patterns: Vec<String> = input.patterns.iter().map(Text::render).collect();
    let filters: Vec<(String, Vec<String>)> = input
        .filters
        .iter()
        .map(|(k, vs)| (k.render(), vs.iter().map(Text::render).collect()))
        .collect();
    let event_type = input.event_type.render();
    let attributes: Vec<(String, String)> = input
        .attributes
        .iter()
        .map(|(k, v)| (k.render(), v.render()))
        .collect();
    if let Ok(got) = fuzz_api::filter_matches(&patterns, &filters, &event_type, &attributes) {
        assert_eq!(
            got,
            model(&patterns, &filters, &event_type, &attributes),
            "patterns {patterns:?}, filters {filters:?}, type {event_type:?}, attributes {attributes:?}"
        );
    }
});

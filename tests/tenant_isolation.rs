//! Tenant isolation as a property, through a real bus and a real loopback
//! receiver: random endpoints (random tenants, patterns and attribute
//! filters), random events to random tenants. Every event's deliveries are
//! exactly what a brute-force model over every endpoint predicts, every
//! request the receiver gets is one the model predicts, and none ever
//! crosses tenants.
//!
//! `PROPTEST_CASES` sets the number of cases (default 12 here: each opens a
//! bus).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{fast_bus, Receiver, WAIT};
use hookbus::{EndpointConfig, EndpointId, Event};
use proptest::prelude::*;
use serde_json::json;

const TENANTS: [&str; 4] = ["~default", "acme", "globex", "org:42"];

fn event_type() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["lead", "note", "a"]), 1..4)
        .prop_map(|segs| segs.join("."))
}

fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("*".to_string()),
        3 => event_type(),
        3 => event_type().prop_map(|t| format!("{t}.*")),
    ]
}

#[derive(Clone, Debug)]
struct Ep {
    tenant: usize,
    patterns: Vec<String>,
    campaigns: Option<Vec<&'static str>>,
}

#[derive(Clone, Debug)]
struct Ev {
    tenant: usize,
    event_type: String,
    campaign: Option<&'static str>,
}

fn endpoint() -> impl Strategy<Value = Ep> {
    (
        0..TENANTS.len(),
        prop::collection::vec(pattern(), 1..3),
        prop::option::of(prop::collection::vec(
            prop::sample::select(vec!["c1", "c2"]),
            1..3,
        )),
    )
        .prop_map(|(tenant, patterns, campaigns)| Ep {
            tenant,
            patterns,
            campaigns,
        })
}

fn ev() -> impl Strategy<Value = Ev> {
    (
        0..TENANTS.len(),
        event_type(),
        prop::option::of(prop::sample::select(vec!["c1", "c2", "c3"])),
    )
        .prop_map(|(tenant, event_type, campaign)| Ev {
            tenant,
            event_type,
            campaign,
        })
}

/// The brute-force model: an endpoint wants an event of its own tenant
/// whose type one of its patterns matches (exact, `prefix.*`, `*`) and
/// whose campaign is one it filters on.
fn wants(ep: &Ep, ev: &Ev) -> bool {
    let type_ok = ep.patterns.iter().any(|p| {
        p == "*"
            || match p.strip_suffix(".*") {
                Some(prefix) => ev
                    .event_type
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('.')),
                None => *p == ev.event_type,
            }
    });
    let campaign_ok = match &ep.campaigns {
        None => true,
        Some(wanted) => ev.campaign.is_some_and(|c| wanted.contains(&c)),
    };
    ep.tenant == ev.tenant && type_ok && campaign_ok
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(12),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn deliveries_follow_the_model_and_never_cross_tenants(
        endpoints in prop::collection::vec(endpoint(), 1..12),
        events in prop::collection::vec(ev(), 1..25),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let rx = Receiver::ok();
        let bus = fast_bus(dir.path()).open().unwrap();
        let mut ids: BTreeMap<EndpointId, usize> = BTreeMap::new();
        for (i, ep) in endpoints.iter().enumerate() {
            let mut cfg = EndpointConfig::new(format!("e{i}"), rx.url(&format!("/e{i}")))
                .events(ep.patterns.clone());
            // The default tenant is named half the time, left implicit otherwise.
            if ep.tenant != 0 || i % 2 == 0 {
                cfg = cfg.tenant(TENANTS[ep.tenant]);
            }
            if let Some(c) = &ep.campaigns {
                cfg = cfg.filter_attribute("campaignIds", c.clone());
            }
            let added = bus.add_endpoint(cfg).unwrap();
            prop_assert_eq!(added.tenant().as_str(), TENANTS[ep.tenant]);
            ids.insert(added.id(), i);
        }
        let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
        for (n, e) in events.iter().enumerate() {
            let mut event = Event::new(e.event_type.clone(), &json!({"n": n})).unwrap();
            if e.tenant != 0 || n % 2 == 0 {
                event = event.tenant(TENANTS[e.tenant]);
            }
            if let Some(c) = e.campaign {
                event = event.attribute("campaignIds", c);
            }
            let id = bus.publish(event).unwrap();
            let want: BTreeSet<usize> = endpoints
                .iter()
                .enumerate()
                .filter(|(_, ep)| wants(ep, e))
                .map(|(i, _)| i)
                .collect();
            let got: BTreeSet<usize> = bus
                .deliveries(id)
                .unwrap()
                .iter()
                .map(|d| ids[&d.endpoint])
                .collect();
            for i in &got {
                prop_assert_eq!(endpoints[*i].tenant, e.tenant, "cross-tenant delivery");
            }
            prop_assert_eq!(&got, &want, "event {:?}", e);
            for i in want {
                expected.insert((format!("/e{i}"), id.to_string()));
            }
        }
        let requests = rx.wait_until(WAIT, "every modelled delivery", |r| {
            let seen: BTreeSet<(String, String)> =
                r.iter().map(|x| (x.path.clone(), x.webhook_id())).collect();
            expected.is_subset(&seen)
        });
        bus.shutdown().unwrap();
        // After shutdown no sender runs: what arrived is all that will.
        let arrived: BTreeSet<(String, String)> = rx
            .requests()
            .iter()
            .map(|x| (x.path.clone(), x.webhook_id()))
            .collect();
        prop_assert!(requests.len() <= rx.requests().len());
        prop_assert_eq!(arrived, expected);
    }
}

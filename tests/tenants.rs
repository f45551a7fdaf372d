//! Tenants through a real bus and a real loopback receiver: the default
//! tenant, isolation, bad keys, per-tenant queries and metadata, and tenant
//! deletion (cancelled deliveries, nothing sent, across a reopen).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{eventually, fast_bus, first_attempt, Receiver, Reply, WAIT};
use hookbus::{
    AttemptQuery, DeliveryFilter, DeliveryStatus, EndpointConfig, Error, Event, TenantConfig,
    TenantId,
};
use serde_json::json;

fn t(key: &str) -> TenantId {
    key.parse().unwrap()
}

fn event(ty: &str) -> Event {
    Event::new(ty, &json!({"n": 1})).unwrap()
}

#[test]
fn a_host_that_names_no_tenant_uses_the_default_one() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    let ep = bus
        .add_endpoint(EndpointConfig::new("crm", rx.url("/crm")))
        .unwrap();
    assert!(ep.tenant().is_default());
    assert_eq!(ep.tenant(), &TenantId::default_tenant());
    let id = bus.publish(event("lead.create")).unwrap();
    assert_eq!(rx.wait_for("/crm", 1, WAIT)[0].webhook_id(), id.to_string());
    // Naming the default tenant is the same as naming none.
    let named = bus
        .publish(event("lead.create").tenant(hookbus::DEFAULT_TENANT_KEY))
        .unwrap();
    assert_eq!(
        rx.wait_for("/crm", 2, WAIT)[1].webhook_id(),
        named.to_string()
    );
    // An event to a real tenant does not reach the default tenant.
    let other = bus.publish(event("lead.create").tenant("acme")).unwrap();
    assert!(bus.deliveries(other).unwrap().is_empty());
    // Each event knows its tenant; another tenant cannot see it.
    assert!(bus.event(id).unwrap().unwrap().tenant.is_default());
    assert_eq!(bus.event(other).unwrap().unwrap().tenant, t("acme"));
    assert!(bus.tenant_event(&t("acme"), other).unwrap().is_some());
    assert!(bus.tenant_event(&t("globex"), other).unwrap().is_none());
    assert!(bus
        .tenant_event(&TenantId::default(), other)
        .unwrap()
        .is_none());
    assert_eq!(bus.tenant_endpoints(&TenantId::default()).len(), 1);
    bus.shutdown().unwrap();
}

#[test]
fn events_reach_only_their_tenants_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    // Same patterns, same attribute filters: only the tenant tells them apart.
    let add = |tenant: &str, path: &str| {
        bus.add_endpoint(
            EndpointConfig::new(path, rx.url(path))
                .tenant(tenant)
                .events(["lead.*"])
                .filter_attribute("campaignIds", ["c1"]),
        )
        .unwrap()
    };
    let a = add("acme", "/acme");
    let b = add("globex", "/globex");
    assert_eq!(a.tenant(), &t("acme"));
    let ev = |tenant: &str, campaign: &str| {
        bus.publish(
            event("lead.create")
                .tenant(tenant)
                .attribute("campaignIds", campaign),
        )
        .unwrap()
    };
    let to_a = ev("acme", "c1");
    let to_b = ev("globex", "c1");
    let filtered_out = ev("acme", "c2");
    assert_eq!(
        rx.wait_for("/acme", 1, WAIT)[0].webhook_id(),
        to_a.to_string()
    );
    assert_eq!(
        rx.wait_for("/globex", 1, WAIT)[0].webhook_id(),
        to_b.to_string()
    );
    let targets = |e| {
        bus.deliveries(e)
            .unwrap()
            .into_iter()
            .map(|d| d.endpoint)
            .collect::<Vec<_>>()
    };
    assert_eq!(targets(to_a), [a.id()]);
    assert_eq!(targets(to_b), [b.id()]);
    assert!(targets(filtered_out).is_empty());
    // An endpoint stays in its tenant.
    let moved = bus.update_endpoint(a.id(), a.config().clone().tenant("globex"));
    assert!(
        matches!(moved, Err(Error::InvalidTenant { .. })),
        "{moved:?}"
    );
    let unnamed = bus.update_endpoint(a.id(), EndpointConfig::new("x", rx.url("/acme")));
    assert!(matches!(unnamed, Err(Error::InvalidTenant { .. })));
    // The config read back names it, so a plain edit works.
    let edited = bus
        .update_endpoint(a.id(), a.config().clone().events(["lead.create"]))
        .unwrap();
    assert_eq!(edited.tenant(), &t("acme"));
    bus.shutdown().unwrap();
}

#[test]
fn bad_tenant_keys_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    for bad in [
        "",
        "a b",
        "acme/1",
        "ünï",
        "~default2",
        "..",
        &"x".repeat(129),
    ] {
        let r = bus.add_endpoint(EndpointConfig::new("e", rx.url("/e")).tenant(bad));
        assert!(
            matches!(r, Err(Error::InvalidTenant { .. })),
            "{bad:?}: {r:?}"
        );
        // The refused event comes back whole, its tenant included.
        let r = bus.publish(event("a").tenant(bad)).unwrap_err();
        assert!(
            matches!(r.error(), Error::InvalidTenant { .. }),
            "{bad:?}: {r:?}"
        );
        assert_eq!(r.event().event_type(), "a");
        let r = bus.put_tenant(TenantConfig::new(bad));
        assert!(
            matches!(r, Err(Error::InvalidTenant { .. })),
            "{bad:?}: {r:?}"
        );
        assert!(bad.parse::<TenantId>().is_err());
    }
    assert!(bus.endpoints(None, 10).items.is_empty());
    assert_eq!(bus.stats().published, 0);
    assert!(bus.tenants(None, 10).unwrap().tenants.is_empty());
    bus.shutdown().unwrap();
    drop(bus);
    let bus = fast_bus(dir.path()).open().unwrap();
    assert_eq!(bus.recovery().endpoints, 0);
    assert!(bus.tenants(None, 10).unwrap().tenants.is_empty());
    bus.shutdown().unwrap();
}

#[test]
fn per_tenant_endpoints_log_deliveries_stats_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|r, _| {
        if r.path.starts_with("/fail") {
            Reply::Status(500)
        } else {
            Reply::Status(200)
        }
    });
    let bus = fast_bus(dir.path()).max_attempts(1).open().unwrap();
    let acme_ok = bus
        .add_endpoint(EndpointConfig::new("ok", rx.url("/ok-acme")).tenant("acme"))
        .unwrap();
    let acme_fail = bus
        .add_endpoint(EndpointConfig::new("fail", rx.url("/fail-acme")).tenant("acme"))
        .unwrap();
    let globex = bus
        .add_endpoint(EndpointConfig::new("ok", rx.url("/ok-globex")).tenant("globex"))
        .unwrap();
    let mut acme_events = Vec::new();
    for _ in 0..3 {
        let id = bus.publish(event("x").tenant("acme")).unwrap();
        acme_events.push(id);
        let g = bus.publish(event("x").tenant("globex")).unwrap();
        first_attempt(&bus, g);
    }
    eventually(WAIT, "acme's six attempts", || {
        bus.query_attempts(AttemptQuery::new().tenant(&t("acme")), None, 100)
            .unwrap()
            .items
            .len()
            == 6
    });
    let ids = |v: Vec<hookbus::Endpoint>| v.iter().map(|e| e.id()).collect::<Vec<_>>();
    assert_eq!(
        ids(bus.tenant_endpoints(&t("acme"))),
        [acme_ok.id(), acme_fail.id()]
    );
    assert_eq!(ids(bus.tenant_endpoints(&t("globex"))), [globex.id()]);
    assert!(bus.tenant_endpoints(&t("nobody")).is_empty());

    // Attempts: paged with stable cursors, never another tenant's.
    let mut seen = Vec::new();
    let q = AttemptQuery::new().tenant(&t("acme"));
    let mut after = None;
    loop {
        let page = bus.query_attempts(q.clone(), after, 4).unwrap();
        // A new attempt of another tenant between pages changes nothing.
        first_attempt(&bus, bus.publish(event("x").tenant("globex")).unwrap());
        seen.extend(page.items);
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    assert!(seen
        .iter()
        .all(|a| a.endpoint == acme_ok.id() || a.endpoint == acme_fail.id()));
    let failed = bus
        .query_attempts(
            AttemptQuery::new().tenant(&t("acme")).succeeded(false),
            None,
            100,
        )
        .unwrap();
    assert_eq!(failed.items.len(), 3);
    assert!(failed.items.iter().all(|a| a.endpoint == acme_fail.id()));
    // Another tenant's endpoint or event under this tenant's filter: nothing.
    let cross = bus
        .query_attempts(
            AttemptQuery::new().tenant(&t("acme")).endpoint(globex.id()),
            None,
            100,
        )
        .unwrap();
    assert!(cross.items.is_empty());

    // Deliveries across the tenant's endpoints, paged.
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = bus
            .tenant_deliveries(&t("acme"), DeliveryFilter::Delivered, after, 2)
            .unwrap();
        all.extend(page.items);
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    let delivered: Vec<_> = all.iter().map(|d| (d.event, d.endpoint)).collect();
    let mut want: Vec<_> = acme_events.iter().map(|e| (*e, acme_ok.id())).collect();
    want.reverse();
    assert_eq!(delivered, want);
    let failed = bus
        .tenant_deliveries(&t("acme"), DeliveryFilter::Failed, None, 10)
        .unwrap();
    assert_eq!(failed.items.len(), 3);

    // Stats and health cover the tenant's endpoints only.
    let stats = bus.tenant_stats(&t("acme"));
    assert_eq!(stats.published, 3);
    assert_eq!(stats.endpoints.len(), 2);
    assert_eq!((stats.delivered, stats.failed), (3, 3));
    let health = bus.tenant_health(&t("acme")).unwrap();
    assert_eq!(health.len(), 2);
    assert_eq!(health[1].1.consecutive_failed_deliveries, 3);

    // Metadata.
    let saved = bus
        .put_tenant(
            TenantConfig::new("acme")
                .display_name("Acme Inc.")
                .label("plan", "pro"),
        )
        .unwrap();
    assert_eq!(saved.endpoints, 2);
    bus.put_tenant(TenantConfig::new("initech")).unwrap();
    let acme = bus.tenant(&t("acme")).unwrap();
    assert_eq!(acme.display_name.as_deref(), Some("Acme Inc."));
    assert_eq!(acme.labels, [("plan".to_string(), "pro".to_string())]);
    assert!(matches!(
        bus.tenant(&t("nobody")),
        Err(Error::TenantNotFound(_))
    ));
    let mut keys = Vec::new();
    let mut after: Option<TenantId> = None;
    loop {
        let page = bus.tenants(after.as_ref(), 1).unwrap();
        keys.extend(page.tenants.iter().map(|t| t.id.to_string()));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(keys, ["acme", "globex", "initech"]);
    bus.shutdown().unwrap();
    drop(bus);
    // Tenants and metadata survive a reopen.
    let bus = fast_bus(dir.path()).open().unwrap();
    assert_eq!(bus.tenant(&t("acme")).unwrap().endpoints, 2);
    assert_eq!(bus.endpoint(globex.id()).unwrap().tenant(), &t("globex"));
    bus.shutdown().unwrap();
}

#[test]
fn deleting_a_tenant_cancels_its_queue_and_stays_deleted() {
    let dir = tempfile::tempdir().unwrap();
    // The retrying endpoint fails every attempt; its retries are far away.
    let rx = Receiver::start(|r, _| {
        if r.path == "/retrying" {
            Reply::Status(503)
        } else {
            Reply::Status(200)
        }
    });
    let open = || {
        fast_bus(dir.path())
            .retry_delays([Duration::from_secs(3600)])
            .open()
            .unwrap()
    };
    let bus = open();
    let paused = bus
        .add_endpoint(EndpointConfig::new("paused", rx.url("/paused")).tenant("acme"))
        .unwrap();
    let retrying = bus
        .add_endpoint(EndpointConfig::new("retrying", rx.url("/retrying")).tenant("acme"))
        .unwrap();
    let other = bus
        .add_endpoint(EndpointConfig::new("other", rx.url("/other")).tenant("globex"))
        .unwrap();
    bus.put_tenant(TenantConfig::new("acme").display_name("Acme"))
        .unwrap();
    bus.pause_endpoint(paused.id()).unwrap();
    let mut events = Vec::new();
    for _ in 0..20 {
        events.push(bus.publish(event("x").tenant("acme")).unwrap());
    }
    rx.wait_for("/retrying", 20, WAIT);
    // Each first attempt's outcome recorded, not only sent.
    eventually(WAIT, "20 attempts logged", || {
        bus.endpoint_attempts(retrying.id(), None, 100)
            .unwrap()
            .items
            .len()
            == 20
    });
    let sent_before = rx.requests().len();

    let report = bus.delete_tenant(&t("acme")).unwrap();
    assert_eq!(report.endpoints, 2);
    assert_eq!(report.cancelled, 40);
    let check = |bus: &hookbus::Bus| {
        for e in &events {
            for (ep, attempts) in [(paused.id(), 0), (retrying.id(), 1)] {
                match bus.delivery(ep, *e).unwrap().map(|d| d.status) {
                    Some(DeliveryStatus::Cancelled { attempts: n, .. }) => {
                        assert_eq!(n, attempts)
                    }
                    other => panic!("{e} to {ep}: {other:?}"),
                }
            }
            let all: BTreeSet<_> = bus
                .deliveries(*e)
                .unwrap()
                .iter()
                .map(|d| d.status.to_string())
                .collect();
            assert!(all.iter().all(|s| s.starts_with("cancelled")), "{all:?}");
            // The attempt made before the deletion stays in the log.
            assert_eq!(bus.attempts(*e).unwrap().len(), 1);
        }
        assert!(bus.endpoint(paused.id()).is_none());
        assert!(bus.tenant_endpoints(&t("acme")).is_empty());
        assert!(matches!(
            bus.tenant(&t("acme")),
            Err(Error::TenantNotFound(_))
        ));
    };
    check(&bus);
    // Events to the deleted tenant go nowhere; the other tenant is untouched.
    let late = bus.publish(event("x").tenant("acme")).unwrap();
    assert!(bus.deliveries(late).unwrap().is_empty());
    let to_other = bus.publish(event("x").tenant("globex")).unwrap();
    assert_eq!(
        rx.wait_for("/other", 1, WAIT)[0].webhook_id(),
        to_other.to_string()
    );
    assert!(matches!(
        bus.delete_tenant(&t("acme")),
        Err(Error::TenantNotFound(_))
    ));
    bus.shutdown().unwrap();
    drop(bus);

    let bus = open();
    assert_eq!(bus.recovery().endpoints, 1);
    check(&bus);
    // Nothing of the deleted tenant was sent after the deletion: the only
    // request since went to the other tenant.
    let to_other = bus.publish(event("x").tenant("globex")).unwrap();
    rx.wait_for("/other", 2, WAIT);
    let since: Vec<String> = rx.requests()[sent_before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(since, ["/other", "/other"], "{to_other}");
    // The key can be used again, from scratch.
    let fresh = bus
        .add_endpoint(EndpointConfig::new("again", rx.url("/again")).tenant("acme"))
        .unwrap();
    assert_eq!(bus.tenant_endpoints(&t("acme"))[0].id(), fresh.id());
    assert_eq!(bus.endpoint(other.id()).unwrap().tenant(), &t("globex"));
    bus.shutdown().unwrap();
}

#[test]
fn idempotency_keys_are_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    for tenant in ["acme", "globex"] {
        bus.add_endpoint(EndpointConfig::new(tenant, rx.url(&format!("/{tenant}"))).tenant(tenant))
            .unwrap();
    }
    let keyed = |tenant: Option<&str>| {
        let e = event("order.paid").idempotency_key("order.paid:7");
        bus.publish(match tenant {
            Some(t) => e.tenant(t),
            None => e,
        })
        .unwrap()
    };
    let acme = keyed(Some("acme"));
    let globex = keyed(Some("globex"));
    let default = keyed(None);
    assert_ne!(
        acme, globex,
        "one tenant's key must not swallow another's event"
    );
    assert_ne!(acme, default);
    assert_eq!(keyed(Some("acme")), acme);
    assert_eq!(keyed(Some("globex")), globex);
    assert_eq!(keyed(None), default);
    assert_eq!(
        rx.wait_for("/globex", 1, WAIT)[0].webhook_id(),
        globex.to_string()
    );
    bus.shutdown().unwrap();
}

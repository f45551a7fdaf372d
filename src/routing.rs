//! The routing index: which endpoints an event reaches.
//!
//! Endpoints are grouped by tenant, and within a tenant indexed by their
//! event-type patterns: exact types in a map, prefix wildcards (`lead.*`,
//! kept as `lead.`) in another, `*` in a list. Matching an event looks up
//! its exact type, then each of its prefixes that ends at a dot (`lead.`,
//! `lead.note.` for `lead.note.add`), then the `*` list: the work depends
//! on the length of the event type and on how many endpoints match, not on
//! how many endpoints or tenants exist. Attribute filters are checked on
//! those candidates only.
//!
//! The index is kept in memory, changed under the bus's registry lock on
//! every add, update and delete, and rebuilt from the endpoints at open.
//! Disabled endpoints stay indexed: whether an endpoint receives is read
//! from its lane's mode at publish, which changes atomically with the
//! stored state, so the index never has to follow it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::endpoint::{EndpointId, EventFilter, Pattern};
use crate::tenant::TenantId;

/// One tenant's endpoints, indexed by pattern.
struct TenantRoutes<V> {
    endpoints: BTreeMap<EndpointId, (EventFilter, V)>,
    all: Vec<EndpointId>,
    exact: HashMap<Box<str>, Vec<EndpointId>>,
    /// Keys end with the dot: `lead.*` is kept as `lead.`.
    prefix: HashMap<Box<str>, Vec<EndpointId>>,
    /// Events published to the tenant while it had endpoints.
    published: AtomicU64,
}

impl<V> Default for TenantRoutes<V> {
    fn default() -> Self {
        TenantRoutes {
            endpoints: BTreeMap::new(),
            all: Vec::new(),
            exact: HashMap::new(),
            prefix: HashMap::new(),
            published: AtomicU64::new(0),
        }
    }
}

impl<V> TenantRoutes<V> {
    fn link(&mut self, id: EndpointId, filter: &EventFilter) {
        for p in filter.patterns() {
            let list = match p {
                Pattern::All => &mut self.all,
                Pattern::Exact(t) => self.exact.entry(t.as_str().into()).or_default(),
                Pattern::Prefix(t) => self.prefix.entry(t.as_str().into()).or_default(),
            };
            // A pattern given twice lists the endpoint once.
            if !list.contains(&id) {
                list.push(id);
            }
        }
    }

    fn unlink(&mut self, id: EndpointId, filter: &EventFilter) {
        for p in filter.patterns() {
            match p {
                Pattern::All => self.all.retain(|e| *e != id),
                Pattern::Exact(t) => drop_from(&mut self.exact, t, id),
                Pattern::Prefix(t) => drop_from(&mut self.prefix, t, id),
            }
        }
    }
}

fn drop_from(map: &mut HashMap<Box<str>, Vec<EndpointId>>, key: &str, id: EndpointId) {
    if let Some(list) = map.get_mut(key) {
        list.retain(|e| *e != id);
        if list.is_empty() {
            map.remove(key);
        }
    }
}

/// Every live endpoint by tenant and pattern, each with a value of the
/// caller's (the bus keeps the endpoint's lane there).
pub(crate) struct Routing<V> {
    tenants: BTreeMap<TenantId, TenantRoutes<V>>,
    /// The tenant of every live endpoint.
    owner: HashMap<EndpointId, TenantId>,
}

impl<V> Default for Routing<V> {
    fn default() -> Self {
        Routing {
            tenants: BTreeMap::new(),
            owner: HashMap::new(),
        }
    }
}

impl<V> Routing<V> {
    /// Adds an endpoint, or replaces its filter and value. An endpoint never
    /// changes tenant: the bus refuses such an update before it gets here.
    pub(crate) fn insert(&mut self, tenant: &TenantId, id: EndpointId, filter: EventFilter, v: V) {
        if self.owner.get(&id).is_some_and(|t| t != tenant) {
            self.remove(id);
        }
        let routes = self.tenants.entry(tenant.clone()).or_default();
        if let Some((old, _)) = routes.endpoints.remove(&id) {
            routes.unlink(id, &old);
        }
        routes.link(id, &filter);
        routes.endpoints.insert(id, (filter, v));
        self.owner.insert(id, tenant.clone());
    }

    /// Removes an endpoint; returns its value.
    pub(crate) fn remove(&mut self, id: EndpointId) -> Option<V> {
        let tenant = self.owner.remove(&id)?;
        let routes = self.tenants.get_mut(&tenant)?;
        let (filter, v) = routes.endpoints.remove(&id)?;
        routes.unlink(id, &filter);
        if routes.endpoints.is_empty() {
            self.tenants.remove(&tenant);
        }
        Some(v)
    }

    /// The endpoints of `tenant` whose filters accept the event, in id
    /// order, each once.
    pub(crate) fn matching<'a>(
        &'a self,
        tenant: &str,
        event_type: &str,
        attributes: &[(String, String)],
    ) -> Vec<(EndpointId, &'a V)> {
        let Some(routes) = self.tenants.get(tenant) else {
            return Vec::new();
        };
        let mut ids: Vec<EndpointId> = routes.all.clone();
        if let Some(list) = routes.exact.get(event_type) {
            ids.extend_from_slice(list);
        }
        if !routes.prefix.is_empty() {
            for (i, b) in event_type.bytes().enumerate() {
                if b == b'.' {
                    if let Some(list) = routes.prefix.get(&event_type[..=i]) {
                        ids.extend_from_slice(list);
                    }
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .filter_map(|id| {
                let (filter, v) = routes.endpoints.get(&id)?;
                filter.matches_attributes(attributes).then_some((id, v))
            })
            .collect()
    }

    /// Counts an event published to a tenant.
    pub(crate) fn note_published(&self, tenant: &str) {
        if let Some(r) = self.tenants.get(tenant) {
            r.published.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events published to a tenant since it last had no endpoints (or
    /// since the bus opened).
    pub(crate) fn published_to(&self, tenant: &str) -> u64 {
        self.tenants
            .get(tenant)
            .map_or(0, |r| r.published.load(Ordering::Relaxed))
    }

    /// The live endpoints of a tenant, in id order.
    pub(crate) fn endpoints_of(&self, tenant: &str) -> impl Iterator<Item = (EndpointId, &V)> {
        self.tenants
            .get(tenant)
            .into_iter()
            .flat_map(|r| r.endpoints.iter().map(|(id, (_, v))| (*id, v)))
    }

    /// How many live endpoints a tenant has.
    pub(crate) fn count_of(&self, tenant: &str) -> usize {
        self.tenants.get(tenant).map_or(0, |r| r.endpoints.len())
    }

    /// Tenants with live endpoints, in key order, after `after`.
    pub(crate) fn tenants_after<'a>(
        &'a self,
        after: Option<&'a TenantId>,
    ) -> impl Iterator<Item = &'a TenantId> + 'a {
        use std::ops::Bound;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.tenants
            .range::<TenantId, _>((lower, Bound::Unbounded))
            .map(|(t, _)| t)
    }
}

/// Endpoints ever registered per tenant, deleted ones included, for the
/// tenant's delivery log. The default tenant is not listed: its endpoints
/// are every endpoint that has no tenant of its own.
#[derive(Default)]
pub(crate) struct Membership {
    members: BTreeMap<TenantId, BTreeSet<EndpointId>>,
    owner: HashMap<EndpointId, TenantId>,
}

impl Membership {
    pub(crate) fn add(&mut self, tenant: &TenantId, id: EndpointId) {
        if tenant.is_default() {
            return;
        }
        self.members.entry(tenant.clone()).or_default().insert(id);
        self.owner.insert(id, tenant.clone());
    }

    /// Endpoints (live or deleted) of a tenant other than the default.
    pub(crate) fn of(&self, tenant: &TenantId) -> Vec<EndpointId> {
        self.members
            .get(tenant)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Whether an endpoint (live or deleted) belongs to `tenant`.
    pub(crate) fn belongs(&self, id: EndpointId, tenant: &TenantId) -> bool {
        match self.owner.get(&id) {
            Some(t) => t == tenant,
            None => tenant.is_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::EndpointConfig;
    use proptest::prelude::*;

    fn filter(patterns: &[String], attrs: &[(String, Vec<String>)]) -> EventFilter {
        let mut cfg = EndpointConfig::new("t", "https://example.com").events(patterns.to_vec());
        for (k, v) in attrs {
            cfg = cfg.filter_attribute(k.clone(), v.clone());
        }
        cfg.validate().expect("generated settings are valid")
    }

    fn tenant(i: usize) -> TenantId {
        if i == 0 {
            TenantId::default_tenant()
        } else {
            TenantId::new(format!("t{i}")).unwrap()
        }
    }

    #[test]
    fn matches_exact_prefix_and_all_within_a_tenant_only() {
        let mut r: Routing<()> = Routing::default();
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (a, b) = (tenant(1), tenant(2));
        r.insert(&a, EndpointId(1), filter(&s(&["lead.*"]), &[]), ());
        r.insert(
            &a,
            EndpointId(2),
            filter(&s(&["lead.create", "*"]), &[]),
            (),
        );
        r.insert(&a, EndpointId(3), filter(&s(&["lead.note.*"]), &[]), ());
        r.insert(&b, EndpointId(4), filter(&s(&["*"]), &[]), ());
        let ids = |r: &Routing<()>, t: &TenantId, ty: &str| -> Vec<u64> {
            r.matching(t.as_str(), ty, &[])
                .into_iter()
                .map(|(id, _)| id.0)
                .collect()
        };
        assert_eq!(ids(&r, &a, "lead.create"), [1, 2]);
        assert_eq!(ids(&r, &a, "lead.note.add"), [1, 2, 3]);
        assert_eq!(ids(&r, &a, "lead"), [2]);
        assert_eq!(ids(&r, &a, "leads.x"), [2]);
        assert_eq!(ids(&r, &b, "lead.create"), [4]);
        assert_eq!(ids(&r, &tenant(3), "lead.create"), Vec::<u64>::new());
        // An update re-indexes; a removal forgets.
        r.insert(&a, EndpointId(2), filter(&s(&["tag.*"]), &[]), ());
        assert_eq!(ids(&r, &a, "lead.create"), [1]);
        r.remove(EndpointId(1));
        r.remove(EndpointId(3));
        assert_eq!(ids(&r, &a, "lead.note.add"), Vec::<u64>::new());
        assert_eq!(r.count_of(a.as_str()), 1);
        r.remove(EndpointId(2));
        assert_eq!(r.tenants_after(None).cloned().collect::<Vec<_>>(), [b]);
    }

    /// Event types built from a few segments, so that generated patterns
    /// and types overlap often.
    fn event_type() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["lead", "note", "a", "b-c"]), 1..4)
            .prop_map(|segs| segs.join("."))
    }

    fn pattern() -> impl Strategy<Value = String> {
        prop_oneof![
            1 => Just("*".to_string()),
            3 => event_type(),
            3 => event_type().prop_map(|t| format!("{t}.*")),
        ]
    }

    fn attr_filters() -> impl Strategy<Value = Vec<(String, Vec<String>)>> {
        prop::collection::vec(
            (
                prop::sample::select(vec!["campaign", "region"]),
                prop::collection::vec(prop::sample::select(vec!["c1", "c2", "eu"]), 0..3),
            )
                .prop_map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect())),
            0..2,
        )
    }

    fn attributes() -> impl Strategy<Value = Vec<(String, String)>> {
        prop::collection::vec(
            (
                prop::sample::select(vec!["campaign", "region", "other"]),
                prop::sample::select(vec!["c1", "c2", "eu", "x"]),
            )
                .prop_map(|(k, v)| (k.to_string(), v.to_string())),
            0..3,
        )
    }

    #[derive(Clone, Debug)]
    enum Op {
        Add {
            tenant: usize,
            patterns: Vec<String>,
            attrs: Vec<(String, Vec<String>)>,
        },
        Update {
            which: usize,
            patterns: Vec<String>,
            attrs: Vec<(String, Vec<String>)>,
        },
        Remove {
            which: usize,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let patterns = || prop::collection::vec(pattern(), 1..4);
        prop_oneof![
            4 => (0..4usize, patterns(), attr_filters())
                .prop_map(|(tenant, patterns, attrs)| Op::Add { tenant, patterns, attrs }),
            1 => (any::<usize>(), patterns(), attr_filters())
                .prop_map(|(which, patterns, attrs)| Op::Update { which, patterns, attrs }),
            1 => any::<usize>().prop_map(|which| Op::Remove { which }),
        ]
    }

    proptest! {
        /// After any sequence of adds, updates and removes, the index
        /// answers exactly what checking every endpoint's filter answers,
        /// and never returns another tenant's endpoint.
        #[test]
        fn the_index_agrees_with_checking_every_filter(
            ops in prop::collection::vec(op(), 1..40),
            events in prop::collection::vec((0..4usize, event_type(), attributes()), 1..30),
        ) {
            let mut index: Routing<()> = Routing::default();
            let mut model: BTreeMap<EndpointId, (TenantId, EventFilter)> = BTreeMap::new();
            let mut next = 0u64;
            for op in ops {
                match op {
                    Op::Add { tenant: t, patterns, attrs } => {
                        let f = filter(&patterns, &attrs);
                        let id = EndpointId(next);
                        next += 1;
                        index.insert(&tenant(t), id, f.clone(), ());
                        model.insert(id, (tenant(t), f));
                    }
                    Op::Update { which, patterns, attrs } if !model.is_empty() => {
                        let id = *model.keys().nth(which % model.len()).unwrap();
                        let f = filter(&patterns, &attrs);
                        let t = model[&id].0.clone();
                        index.insert(&t, id, f.clone(), ());
                        model.insert(id, (t, f));
                    }
                    Op::Remove { which } if !model.is_empty() => {
                        let id = *model.keys().nth(which % model.len()).unwrap();
                        prop_assert!(index.remove(id).is_some());
                        model.remove(&id);
                    }
                    _ => {}
                }
            }
            for (t, ty, attrs) in events {
                let t = tenant(t);
                let got: Vec<EndpointId> =
                    index.matching(t.as_str(), &ty, &attrs).into_iter().map(|(id, _)| id).collect();
                let want: Vec<EndpointId> = model
                    .iter()
                    .filter(|(_, (owner, f))| *owner == t && f.matches(&ty, &attrs))
                    .map(|(id, _)| *id)
                    .collect();
                prop_assert_eq!(got, want, "event {} to {}", ty, t);
            }
            for t in 0..4 {
                let t = tenant(t);
                let live: Vec<EndpointId> = index.endpoints_of(t.as_str()).map(|(id, _)| id).collect();
                let want: Vec<EndpointId> =
                    model.iter().filter(|(_, (o, _))| *o == t).map(|(id, _)| *id).collect();
                prop_assert_eq!(live, want);
            }
        }
    }
}

//! How the scenarios give an endpoint and an event to one customer.
//!
//! By default each customer is a tenant (`EndpointConfig::tenant`,
//! `Event::tenant`): a publish looks only at its tenant's endpoints.
//! `HOOKBUS_BENCH_CUSTOMERS_BY=attribute` does what a host had to do
//! before tenants existed, and what the "before" columns of BENCHMARKS.md
//! measured on the code of commit 248484b: every endpoint in the default
//! tenant carries an attribute filter on the customer's id and every event
//! the attribute, so each publish looks at every endpoint's filter.

use hookbus::{EndpointConfig, Event};

fn by_attribute() -> bool {
    static BY_ATTRIBUTE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *BY_ATTRIBUTE.get_or_init(|| {
        std::env::var("HOOKBUS_BENCH_CUSTOMERS_BY").is_ok_and(|v| v.trim() == "attribute")
    })
}

/// What the scenarios' tables call the way customers are separated.
pub fn customers_by() -> &'static str {
    if by_attribute() {
        "an attribute filter per endpoint (`customer`), all in the default tenant"
    } else {
        "tenants (one per customer)"
    }
}

fn tenant_key(customer: usize) -> String {
    format!("cust-{customer}")
}

/// `config` made one of `customer`'s endpoints.
pub fn customer_endpoint(config: EndpointConfig, customer: usize) -> EndpointConfig {
    if by_attribute() {
        config.filter_attribute("customer", [customer.to_string()])
    } else {
        config.tenant(tenant_key(customer))
    }
}

/// `event` addressed to `customer`.
pub fn customer_event(event: Event, customer: usize) -> Event {
    if by_attribute() {
        event.attribute("customer", customer.to_string())
    } else {
        event.tenant(tenant_key(customer))
    }
}

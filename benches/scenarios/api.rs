//! How the scenarios give an endpoint and an event to one customer: the
//! only calls that differ between hookbus versions, kept here so the same
//! scenarios can run against the code before tenants existed.
//!
//! Until tenants exist this is what a host had to do: every endpoint
//! carries an attribute filter on the customer's id and every event the
//! attribute, so each publish looks at every endpoint's filter.

use hookbus::{EndpointConfig, Event};

/// What the scenarios' tables call this way of separating customers.
pub const CUSTOMERS_BY: &str = "an attribute filter per endpoint (`customer`)";

/// `config` made one of `customer`'s endpoints.
pub fn customer_endpoint(config: EndpointConfig, customer: usize) -> EndpointConfig {
    config.filter_attribute("customer", [customer.to_string()])
}

/// `event` addressed to `customer`.
pub fn customer_event(event: Event, customer: usize) -> Event {
    event.attribute("customer", customer.to_string())
}

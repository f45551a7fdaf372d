//! LISTEN/NOTIFY: how one replica's changes reach the others at once.
//!
//! Every write another replica must act on sends a notification on the
//! schema's channel `hookbus_<schema>`, inside its transaction (so it is
//! delivered at commit, and never for a rolled-back write):
//!
//! | payload      | sent by                                   |
//! |--------------|-------------------------------------------|
//! | `d:1,2,…`    | a publish, a resend: new deliveries for these endpoints (`d:*`: for many) |
//! | `n:<id>`     | an endpoint added, changed or deleted     |
//! | `s:<id>`     | an endpoint enabled, disabled, paused or resumed |
//!
//! The listener holds one connection of its own, outside the pool. A
//! notification can be missed (the connection drops); the replica's
//! fallback poll (`postgres_poll_interval`) covers that.

use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use super::{PgStore, Sql};
use crate::endpoint::EndpointId;
use crate::error::Result;

/// The channel of a schema (validated: identifier characters only).
pub(crate) fn channel(schema: &str) -> String {
    format!("hookbus_{schema}")
}

/// Longest NOTIFY payload sent (PostgreSQL refuses 8000 bytes and more);
/// past it, replicas are told to look at every endpoint they serve.
const PAYLOAD_MAX: usize = 7000;

/// `d:1,2,3`: new deliveries for these endpoints; `d:*` for too many to
/// name.
pub(crate) fn deliveries_payload(endpoints: &[EndpointId]) -> String {
    let mut payload = String::from("d:");
    for (i, id) in endpoints.iter().enumerate() {
        if i > 0 {
            payload.push(',');
        }
        payload.push_str(&id.0.to_string());
        if payload.len() > PAYLOAD_MAX {
            return "d:*".to_string();
        }
    }
    payload
}

/// A notification as the replica acts on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// New deliveries to send for these endpoints; `None`: for any.
    Deliveries(Option<Vec<EndpointId>>),
    /// An endpoint's settings changed (or it was added or deleted).
    Endpoint(EndpointId),
    /// An endpoint's mode changed.
    State(EndpointId),
}

impl Change {
    fn parse(payload: &str) -> Option<Change> {
        let (kind, rest) = payload.split_once(':')?;
        let id = || rest.parse::<u64>().ok().map(EndpointId);
        match kind {
            "d" if rest == "*" => Some(Change::Deliveries(None)),
            "d" => rest
                .split(',')
                .map(|s| s.parse::<u64>().ok().map(EndpointId))
                .collect::<Option<Vec<_>>>()
                .map(|ids| Change::Deliveries(Some(ids))),
            "n" => id().map(Change::Endpoint),
            "s" => id().map(Change::State),
            _ => None,
        }
    }
}

/// A listening connection.
pub(crate) struct Listener {
    client: postgres::Client,
}

impl PgStore {
    /// Sends a notification now, outside any transaction.
    pub(crate) fn notify_now(&self, payload: &str) -> Result<()> {
        self.with_conn(|c| {
            c.execute("SELECT pg_notify($1, $2)", &[&self.channel(), &payload])
                .map(drop)
                .map_err(super::pg)
        })
    }

    /// Opens a connection of its own and listens on the schema's channel.
    pub(crate) fn listen(&self) -> Result<Listener> {
        let mut client = self.dedicated()?;
        client
            .batch_execute(&format!("LISTEN \"{}\"", self.channel()))
            .map_err(super::pg)?;
        Ok(Listener { client })
    }
}

impl Listener {
    /// Waits up to `wait` for notifications and returns those that came
    /// (possibly none). An error means the connection is lost: listen
    /// again, and assume notifications were missed.
    pub(crate) fn wait(&mut self, wait: Duration) -> Result<Vec<Change>> {
        let mut out = Vec::new();
        let mut notifications = self.client.notifications();
        let first = notifications.timeout_iter(wait).next().map_err(super::pg)?;
        let mut push = |payload: &str| match Change::parse(payload) {
            Some(change) => out.push(change),
            None => tracing::warn!(payload, "ignoring an unknown notification"),
        };
        if let Some(n) = first {
            push(n.payload());
            // Whatever else has arrived, without waiting again.
            let mut rest = notifications.iter();
            let mut taken = 1;
            while let Some(n) = rest.next().map_err(super::pg)? {
                push(n.payload());
                taken += 1;
                if taken >= 4096 {
                    break;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_and_garbage_is_refused() {
        assert_eq!(
            Change::parse("d:1,2"),
            Some(Change::Deliveries(Some(vec![EndpointId(1), EndpointId(2)])))
        );
        assert_eq!(Change::parse("d:*"), Some(Change::Deliveries(None)));
        assert_eq!(Change::parse("n:7"), Some(Change::Endpoint(EndpointId(7))));
        assert_eq!(Change::parse("s:7"), Some(Change::State(EndpointId(7))));
        assert_eq!(Change::parse("d:1,x"), None);
        assert_eq!(Change::parse("zzz"), None);
    }

    #[test]
    fn delivery_payloads_name_the_endpoints_or_all_of_them() {
        let few = [EndpointId(1), EndpointId(2), EndpointId(30)];
        assert_eq!(deliveries_payload(&few), "d:1,2,30");
        assert_eq!(
            Change::parse(&deliveries_payload(&few)),
            Some(Change::Deliveries(Some(few.to_vec())))
        );
        let many: Vec<EndpointId> = (0..2000).map(|i| EndpointId(i64::MAX as u64 - i)).collect();
        assert_eq!(deliveries_payload(&many), "d:*");
        let most: Vec<EndpointId> = (0..300).map(|i| EndpointId(i64::MAX as u64 - i)).collect();
        assert!(deliveries_payload(&most).len() < 8000);
    }
}

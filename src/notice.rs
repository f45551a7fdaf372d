//! Operational notices: what a host wants to tell its users about
//! (a delivery given up, an endpoint paused or working again).
//!
//! Each subscriber gets its own bounded channel. Shutting the bus down
//! drops every sending side, so a subscriber's `for notice in receiver`
//! loop ends once it has read what was sent before (crossbeam's
//! shutdown-by-disconnection), even while clones of the bus live on.

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;

use crate::endpoint::{EndpointId, PauseReason};
use crate::event::EventId;

/// How many notices a subscriber may fall behind before new ones are
/// dropped for it (and a warning logged).
pub const NOTICE_BUFFER: usize = 1024;

/// Something about an endpoint's deliveries worth telling a human.
///
/// Received from [`Bus::notices`](crate::Bus::notices). The receivers
/// disconnect when the bus shuts down: a `for notice in bus.notices()`
/// loop ends after [`Bus::shutdown`](crate::Bus::shutdown) (or the drop of
/// the last clone), once it has read the notices sent before.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "type", rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Notice {
    /// A delivery's last attempt failed; it is kept as failed and can be
    /// resent or recovered.
    DeliveryExhausted {
        /// The endpoint.
        endpoint: EndpointId,
        /// The event.
        event: EventId,
        /// Attempts made.
        attempts: u32,
    },
    /// An endpoint stopped sending; its events are kept until it resumes.
    EndpointPaused {
        /// The endpoint.
        endpoint: EndpointId,
        /// Why.
        #[cfg_attr(feature = "serde", serde(with = "crate::serde_support::pause_reason"))]
        reason: PauseReason,
    },
    /// An endpoint delivered again after failures.
    EndpointRecovered {
        /// The endpoint.
        endpoint: EndpointId,
    },
}

#[derive(Default)]
pub(crate) struct Notices {
    subscribers: Mutex<Subscribers>,
}

#[derive(Default)]
struct Subscribers {
    senders: Vec<Sender<Notice>>,
    /// Set at shutdown: no sender is kept any more.
    closed: bool,
}

impl Notices {
    /// A new receiver; already disconnected once the bus is shut down.
    pub(crate) fn subscribe(&self) -> Receiver<Notice> {
        let (tx, rx) = crossbeam_channel::bounded(NOTICE_BUFFER);
        let mut subscribers = self.subscribers.lock();
        if !subscribers.closed {
            subscribers.senders.push(tx);
        }
        rx
    }

    /// Drops every sending side, so that each receiver reports
    /// disconnection once it has been read to its end. Later notices (from
    /// attempts still finishing after the shutdown timeout) are only
    /// logged.
    pub(crate) fn close(&self) {
        let mut subscribers = self.subscribers.lock();
        subscribers.closed = true;
        subscribers.senders.clear();
    }

    /// Sends to every subscriber without ever blocking a sender thread;
    /// subscribers that hung up are forgotten.
    pub(crate) fn emit(&self, notice: Notice) {
        tracing::info!(?notice, "notice");
        self.subscribers
            .lock()
            .senders
            .retain(|tx| match tx.try_send(notice.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    tracing::warn!(
                        "a notice subscriber is {NOTICE_BUFFER} notices behind; dropping one"
                    );
                    true
                }
                Err(TrySendError::Disconnected(_)) => false,
            });
    }
}

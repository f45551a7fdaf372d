//! Operational notices: what a host wants to tell its users about
//! (a delivery given up, an endpoint paused or working again).

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;

use crate::endpoint::{EndpointId, PauseReason};
use crate::event::EventId;

/// How many notices a subscriber may fall behind before new ones are
/// dropped for it (and a warning logged).
pub const NOTICE_BUFFER: usize = 1024;

/// Something about an endpoint's deliveries worth telling a human.
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
    subscribers: Mutex<Vec<Sender<Notice>>>,
}

impl Notices {
    pub(crate) fn subscribe(&self) -> Receiver<Notice> {
        let (tx, rx) = crossbeam_channel::bounded(NOTICE_BUFFER);
        self.subscribers.lock().push(tx);
        rx
    }

    /// Sends to every subscriber without ever blocking a sender thread;
    /// subscribers that hung up are forgotten.
    pub(crate) fn emit(&self, notice: Notice) {
        tracing::info!(?notice, "notice");
        self.subscribers
            .lock()
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

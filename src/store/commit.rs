//! Group commit: publishers that finish writing at about the same time share
//! one `flush` (write + sync) instead of paying one each.
//!
//! Each caller takes a ticket after its write is applied. One caller at a
//! time leads: it notes the highest ticket issued so far, flushes, and marks
//! every ticket up to that one durable. Callers that arrive while a flush
//! runs wait for it and, if their ticket is newer than the one it covers,
//! the next leader flushes for all of them together.

use parking_lot::{Condvar, Mutex};

use crate::error::Result;

#[derive(Default)]
struct State {
    issued: u64,
    durable: u64,
    leader: bool,
    flushes: u64,
}

#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    done: Condvar,
}

impl GroupCommit {
    /// Returns once every write applied before the call is durable.
    /// `flush` is the storage's flush; it is called by one caller at a time.
    pub(crate) fn commit(&self, flush: impl Fn() -> Result<()>) -> Result<()> {
        let mut st = self.state.lock();
        st.issued += 1;
        let ticket = st.issued;
        loop {
            if st.durable >= ticket {
                return Ok(());
            }
            if st.leader {
                self.done.wait(&mut st);
                continue;
            }
            st.leader = true;
            let covers = st.issued;
            drop(st);
            let result = flush();
            st = self.state.lock();
            st.leader = false;
            st.flushes += 1;
            if result.is_ok() {
                st.durable = st.durable.max(covers);
            }
            self.done.notify_all();
            // A failed flush is reported to its leader; the waiters it would
            // have covered retry as leaders and see the failure themselves.
            result?;
        }
    }

    /// Number of flushes performed so far.
    pub(crate) fn flushes(&self) -> u64 {
        self.state.lock().flushes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn concurrent_commits_share_flushes() {
        let gc = Arc::new(GroupCommit::default());
        let writes = Arc::new(AtomicU64::new(0));
        let flushed_upto = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (gc, writes, flushed_upto) = (gc.clone(), writes.clone(), flushed_upto.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let mine = writes.fetch_add(1, Ordering::SeqCst) + 1;
                        gc.commit(|| {
                            let upto = writes.load(Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(1));
                            flushed_upto.fetch_max(upto, Ordering::SeqCst);
                            Ok(())
                        })
                        .unwrap();
                        // The promise: my write is covered by a finished flush.
                        assert!(flushed_upto.load(Ordering::SeqCst) >= mine);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let flushes = gc.flushes();
        assert!(flushes < 800, "800 commits took {flushes} flushes");
    }

    #[test]
    fn a_failed_flush_is_reported_and_not_counted_durable() {
        let gc = GroupCommit::default();
        let r = gc.commit(|| Err(crate::Error::ShutDown));
        assert!(r.is_err());
        gc.commit(|| Ok(())).unwrap();
        assert_eq!(gc.flushes(), 2);
    }
}

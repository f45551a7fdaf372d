//! Storage: the sled database and everything written to it. The only module
//! that knows keys, trees and the record encoding.
//!
//! Writes that change more than one record go through one `Batch`, which
//! sled applies atomically. Durability comes from [`Store::commit`], a
//! group-committed `flush`.

mod codec;
mod commit;
pub(crate) mod keys;
pub(crate) mod records;

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use sled::{Batch, IVec};

use crate::config::Config;
use crate::endpoint::EndpointId;
use crate::error::{Error, Result};
use crate::event::EventId;
use commit::GroupCommit;
use records::{AttemptRecord, DeliveryRecord, EndpointRecord, EventRecord};

/// Version of the database layout (keys and trees) written by this build.
const FORMAT_VERSION: u8 = 1;

pub(crate) struct Store {
    db: sled::Db,
    group: GroupCommit,
}

/// One stored delivery that has not finished, found at open.
pub(crate) struct Unfinished {
    pub(crate) endpoint: EndpointId,
    pub(crate) event: EventId,
    pub(crate) record: DeliveryRecord,
}

impl Store {
    pub(crate) fn open(config: &Config) -> Result<Store> {
        check_directory(&config.path)?;
        let sled_config = sled::Config::new()
            .path(&config.path)
            .cache_capacity(config.cache_capacity_bytes)
            .flush_every_ms(Some(config.flush_every.as_millis().max(1) as u64));
        // sled 0.34 can panic on some damaged files instead of returning an
        // error; a damaged directory must not take the host down.
        let db = match catch_unwind(AssertUnwindSafe(|| sled_config.open())) {
            Ok(Ok(db)) => db,
            Ok(Err(sled::Error::Corruption { .. })) => {
                return Err(Error::Corrupt {
                    what: "database",
                    detail: "sled reported corruption while opening".into(),
                })
            }
            Ok(Err(sled::Error::Unsupported(why))) => return Err(Error::ForeignDirectory(why)),
            // sled locks its file; failing to take the lock means someone
            // else has the database open.
            Ok(Err(sled::Error::Io(e))) if e.to_string().contains("could not acquire lock") => {
                return Err(Error::AlreadyOpen(config.path.display().to_string()))
            }
            Ok(Err(e)) => return Err(Error::Storage(e)),
            Err(_) => {
                return Err(Error::Corrupt {
                    what: "database",
                    detail: "sled panicked while opening the files".into(),
                })
            }
        };
        let store = Store {
            db,
            group: GroupCommit::default(),
        };
        store.check_format()?;
        Ok(store)
    }

    fn check_format(&self) -> Result<()> {
        match self.db.get(keys::FORMAT_KEY)? {
            Some(v) => match v.first() {
                Some(&found) if found <= FORMAT_VERSION => Ok(()),
                Some(&found) => Err(Error::IncompatibleFormat {
                    found,
                    supported: FORMAT_VERSION,
                }),
                None => Err(Error::Corrupt {
                    what: "format marker",
                    detail: "empty".into(),
                }),
            },
            None if self.db.is_empty() && self.db.tree_names().len() <= 1 => {
                self.db.insert(keys::FORMAT_KEY, &[FORMAT_VERSION])?;
                self.commit()
            }
            None => Err(Error::ForeignDirectory(
                "a sled database without the hookbus format marker".into(),
            )),
        }
    }

    /// Makes every write applied so far durable (survives kill -9).
    pub(crate) fn commit(&self) -> Result<()> {
        self.group
            .commit(|| self.db.flush().map(drop).map_err(Error::from))
    }

    /// Flushes performed by [`Store::commit`] so far.
    pub(crate) fn commit_flushes(&self) -> u64 {
        self.group.flushes()
    }

    /// A fresh id, unique in this database, for endpoints and log entries.
    pub(crate) fn generate_id(&self) -> Result<u64> {
        Ok(self.db.generate_id()?)
    }

    pub(crate) fn last_event_id(&self) -> Result<Option<EventId>> {
        let last = self.db.scan_prefix([keys::EVENT]).next_back().transpose()?;
        Ok(last
            .and_then(|(k, _)| keys::u128_at(&k, 1))
            .map(EventId::from_u128))
    }

    // ----- endpoints -----

    pub(crate) fn put_endpoint(&self, id: EndpointId, rec: &EndpointRecord) -> Result<()> {
        self.db.insert(keys::endpoint(id), codec::encode(rec))?;
        self.commit()
    }

    /// Every endpoint record; ones that fail to decode are returned as errors
    /// so the caller can report and skip them.
    pub(crate) fn endpoints(&self) -> Result<Vec<(EndpointId, Result<EndpointRecord>)>> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix([keys::ENDPOINT]) {
            let (k, v) = item?;
            let Some(id) = keys::u64_at(&k, 1) else {
                continue;
            };
            out.push((EndpointId(id), codec::decode("endpoint", &v)));
        }
        Ok(out)
    }

    /// Removes an endpoint and its queue. Its delivery log stays.
    pub(crate) fn delete_endpoint(&self, id: EndpointId) -> Result<()> {
        let mut batch = Batch::default();
        batch.remove(&keys::endpoint(id));
        for item in self.db.scan_prefix(keys::deliveries_of(id)).keys() {
            batch.remove(item?);
        }
        self.db.apply_batch(batch)?;
        self.commit()
    }

    // ----- events and deliveries -----

    /// Writes an event and its deliveries atomically. Not yet durable: the
    /// caller commits.
    pub(crate) fn insert_event(
        &self,
        id: EventId,
        event: &EventRecord,
        endpoints: &[EndpointId],
        now_ms: u64,
    ) -> Result<()> {
        let mut batch = Batch::default();
        batch.insert(&keys::event(id), codec::encode(event));
        let delivery = codec::encode(&DeliveryRecord {
            state: records::DeliveryState::Waiting {
                next_attempt: 1,
                due_ms: now_ms,
            },
            created_ms: now_ms,
            updated_ms: now_ms,
        });
        for ep in endpoints {
            batch.insert(&keys::delivery(*ep, id), delivery.clone());
        }
        Ok(self.db.apply_batch(batch)?)
    }

    pub(crate) fn event(&self, id: EventId) -> Result<Option<EventRecord>> {
        decode_opt("event", self.db.get(keys::event(id))?)
    }

    pub(crate) fn delivery(&self, ep: EndpointId, ev: EventId) -> Result<Option<DeliveryRecord>> {
        decode_opt("delivery", self.db.get(keys::delivery(ep, ev))?)
    }

    /// Overwrites a delivery's state. Not yet durable: the caller commits
    /// when it must.
    pub(crate) fn put_delivery(
        &self,
        ep: EndpointId,
        ev: EventId,
        rec: &DeliveryRecord,
    ) -> Result<()> {
        self.db.insert(keys::delivery(ep, ev), codec::encode(rec))?;
        Ok(())
    }

    /// Records an attempt and the delivery state it led to, atomically. The
    /// background flusher makes it durable; if the process dies first, the
    /// delivery is found unfinished at open and attempted again.
    pub(crate) fn record_attempt(
        &self,
        attempt: &AttemptRecord,
        delivery: &DeliveryRecord,
    ) -> Result<()> {
        let ep = EndpointId(attempt.endpoint);
        let ev = EventId::from_u128(attempt.event);
        let seq = self.db.generate_id()?;
        let mut batch = Batch::default();
        batch.insert(&keys::attempt(ep, seq), codec::encode(attempt));
        batch.insert(&keys::attempt_by_event(ev, seq), &ep.0.to_be_bytes());
        // The endpoint may have been deleted while the attempt ran: then its
        // queue is gone and must not be recreated.
        if self.db.contains_key(keys::endpoint(ep))? {
            batch.insert(&keys::delivery(ep, ev), codec::encode(delivery));
        }
        Ok(self.db.apply_batch(batch)?)
    }

    /// Every delivery not yet delivered or failed, in (endpoint, event)
    /// order. Undecodable records are returned as errors to report and skip.
    pub(crate) fn unfinished(&self) -> Result<Vec<Result<Unfinished>>> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix([keys::DELIVERY]) {
            let (k, v) = item?;
            let (Some(ep), Some(ev)) = (keys::u64_at(&k, 1), keys::u128_at(&k, 9)) else {
                out.push(Err(Error::Corrupt {
                    what: "delivery key",
                    detail: format!("{} bytes", k.len()),
                }));
                continue;
            };
            match codec::decode::<DeliveryRecord>("delivery", &v) {
                Ok(record) if record.state.is_finished() => {}
                Ok(record) => out.push(Ok(Unfinished {
                    endpoint: EndpointId(ep),
                    event: EventId::from_u128(ev),
                    record,
                })),
                Err(e) => out.push(Err(e)),
            }
        }
        Ok(out)
    }

    // ----- the delivery log -----

    pub(crate) fn attempts_for_event(&self, ev: EventId) -> Result<Vec<AttemptRecord>> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix(keys::attempts_by_event(ev)) {
            let (k, v) = item?;
            let (Some(seq), Some(ep)) = (keys::u64_at(&k, 17), keys::u64_at(&v, 0)) else {
                continue;
            };
            if let Some(bytes) = self.db.get(keys::attempt(EndpointId(ep), seq))? {
                out.push(codec::decode("attempt", &bytes)?);
            }
        }
        Ok(out)
    }

    /// The `limit` most recent attempts to an endpoint, newest first.
    pub(crate) fn attempts_for_endpoint(
        &self,
        ep: EndpointId,
        limit: usize,
    ) -> Result<Vec<AttemptRecord>> {
        self.db
            .scan_prefix(keys::attempts_of(ep))
            .values()
            .rev()
            .take(limit)
            .map(|v| codec::decode("attempt", &v?))
            .collect()
    }

    /// Flushes everything (used at shutdown).
    pub(crate) fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

impl records::DeliveryState {
    pub(crate) fn is_finished(&self) -> bool {
        matches!(self, Self::Delivered { .. } | Self::Failed { .. })
    }
}

fn decode_opt<T: serde::de::DeserializeOwned>(
    what: &'static str,
    v: Option<IVec>,
) -> Result<Option<T>> {
    v.map(|bytes| codec::decode(what, &bytes)).transpose()
}

/// Refuses a path that is a file, or a non-empty directory that holds no
/// sled database: hookbus must not scatter its files among someone else's.
fn check_directory(path: &Path) -> Result<()> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::Storage(sled::Error::Io(e))),
    };
    if !meta.is_dir() {
        return Err(Error::ForeignDirectory(format!(
            "{} is not a directory",
            path.display()
        )));
    }
    let mut entries = fs::read_dir(path).map_err(|e| Error::Storage(sled::Error::Io(e)))?;
    let empty = entries.next().is_none();
    if !empty && !path.join("conf").is_file() {
        return Err(Error::ForeignDirectory(format!(
            "{} holds other files and no database",
            path.display()
        )));
    }
    Ok(())
}

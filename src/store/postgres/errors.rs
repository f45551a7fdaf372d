//! PostgreSQL's failures as hookbus errors: what a caller can act on gets
//! an I/O kind ([`std::io::ErrorKind::ConnectionRefused`] for a server that
//! is down, `StorageFull` for a full disk, `TimedOut` for the statement
//! timeout, `ConnectionAborted` for a connection lost mid-operation), the
//! rest the server's own report.

use std::error::Error as _;
use std::io;

use postgres::error::SqlState;

use crate::error::{Error, StorageError};

/// A client error as [`Error::Storage`].
pub(crate) fn pg(e: postgres::Error) -> Error {
    Error::Storage(storage_error(&e))
}

fn storage_error(e: &postgres::Error) -> StorageError {
    let kind = if let Some(code) = e.code() {
        if *code == SqlState::DISK_FULL || *code == SqlState::OUT_OF_MEMORY {
            Some(io::ErrorKind::StorageFull)
        } else if *code == SqlState::QUERY_CANCELED {
            Some(io::ErrorKind::TimedOut)
        } else if *code == SqlState::ADMIN_SHUTDOWN || *code == SqlState::CRASH_SHUTDOWN {
            Some(io::ErrorKind::ConnectionAborted)
        } else {
            None
        }
    } else if let Some(io) = e.source().and_then(|s| s.downcast_ref::<io::Error>()) {
        Some(io.kind())
    } else if e.is_closed() {
        Some(io::ErrorKind::ConnectionAborted)
    } else {
        None
    };
    match kind {
        Some(kind) => StorageError::io(io::Error::new(kind, describe(e))),
        None => StorageError::engine(describe(e)),
    }
}

/// The server's message (and its code), or the client's words.
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("PostgreSQL {}: {}", db.code().code(), db.message()),
        None => match e.source() {
            Some(cause) => format!("PostgreSQL client: {e}: {cause}"),
            None => format!("PostgreSQL client: {e}"),
        },
    }
}

/// Why a connection string was refused, without repeating it (it may hold
/// a password).
pub(crate) fn describe_url_error(e: &postgres::Error) -> String {
    match e.source() {
        Some(cause) => format!("is not a valid connection string: {cause}"),
        None => "is not a valid connection string".to_string(),
    }
}

/// Whether a failed operation lost its connection before committing, so
/// that running it again on a fresh one is safe.
pub(crate) fn is_transient(e: &Error) -> bool {
    let Error::Storage(s) = e else { return false };
    matches!(
        s.io_error_kind(),
        Some(
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
        )
    )
}

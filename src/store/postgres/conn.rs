//! Connections and their prepared statements. A statement sent as text is
//! parsed and planned by the server on every call, a round trip of its own
//! before the one that runs it; each pooled connection here prepares a
//! statement the first time it runs it and reuses it after, so most
//! statements cost one round trip. The host's own transaction
//! (`publish_in`) runs its few statements as text.

use std::borrow::BorrowMut;
use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement, Transaction};
use r2d2_postgres::PostgresConnectionManager;

/// Query parameters, as the client takes them.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Prepared statements kept per connection at most; past it, the cache
/// starts again (the bus has far fewer distinct statements).
const PREPARED_MAX: usize = 256;

/// What runs SQL for the store: a pooled connection, one of its
/// transactions, or the host's transaction.
pub(crate) trait Sql {
    fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, postgres::Error>;
    fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, postgres::Error>;
    /// Statements without parameters, sent together as text.
    fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error>;

    fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, postgres::Error>;
    fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, postgres::Error>;
}

/// A pooled connection.
pub(crate) struct Conn {
    client: Client,
    prepared: HashMap<String, Statement>,
}

/// A transaction on a pooled connection.
pub(crate) struct Tx<'a> {
    tx: Transaction<'a>,
    prepared: &'a mut HashMap<String, Statement>,
}

/// The statement for `sql`, prepared on this connection once.
fn prepared(
    cache: &mut HashMap<String, Statement>,
    sql: &str,
    prepare: impl FnOnce(&str) -> Result<Statement, postgres::Error>,
) -> Result<Statement, postgres::Error> {
    if let Some(statement) = cache.get(sql) {
        return Ok(statement.clone());
    }
    let statement = prepare(sql)?;
    if cache.len() >= PREPARED_MAX {
        cache.clear();
    }
    cache.insert(sql.to_string(), statement.clone());
    Ok(statement)
}

impl Conn {
    /// Starts a transaction that shares this connection's statements.
    pub(crate) fn transaction(&mut self) -> Result<Tx<'_>, postgres::Error> {
        let Conn { client, prepared } = self;
        Ok(Tx {
            tx: client.transaction()?,
            prepared,
        })
    }
}

impl Tx<'_> {
    pub(crate) fn commit(self) -> Result<(), postgres::Error> {
        self.tx.commit()
    }
}

/// `Sql` for a type with a statement cache (`$cache`) beside the client
/// or transaction that runs the statements (`$runner`).
macro_rules! cached_sql {
    ($type:ty, $runner:ident, $cache:ident) => {
        impl $type {
            /// The statement for `sql`, prepared on this connection once.
            fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
                let runner = &mut self.$runner;
                prepared(BorrowMut::borrow_mut(&mut self.$cache), sql, |s| {
                    runner.prepare(s)
                })
            }
        }

        impl Sql for $type {
            fn query(
                &mut self,
                sql: &str,
                params: Params<'_>,
            ) -> Result<Vec<Row>, postgres::Error> {
                let statement = self.statement(sql)?;
                self.$runner.query(&statement, params)
            }

            fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, postgres::Error> {
                let statement = self.statement(sql)?;
                self.$runner.execute(&statement, params)
            }

            fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error> {
                self.$runner.batch_execute(sql)
            }

            fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, postgres::Error> {
                let statement = self.statement(sql)?;
                self.$runner.query_one(&statement, params)
            }

            fn query_opt(
                &mut self,
                sql: &str,
                params: Params<'_>,
            ) -> Result<Option<Row>, postgres::Error> {
                let statement = self.statement(sql)?;
                self.$runner.query_opt(&statement, params)
            }
        }
    };
}

cached_sql!(Conn, client, prepared);
cached_sql!(Tx<'_>, tx, prepared);

/// The host's transaction: statements as text (the host's connection is
/// not the bus's to keep statements on).
impl Sql for Transaction<'_> {
    fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, postgres::Error> {
        Transaction::query(self, sql, params)
    }

    fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, postgres::Error> {
        Transaction::execute(self, sql, params)
    }

    fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error> {
        Transaction::batch_execute(self, sql)
    }

    fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, postgres::Error> {
        Transaction::query_one(self, sql, params)
    }

    fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, postgres::Error> {
        Transaction::query_opt(self, sql, params)
    }
}

/// Makes the pool's connections: the client's manager, plus a statement
/// cache per connection.
pub(crate) struct Manager(pub(crate) PostgresConnectionManager<NoTls>);

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        Ok(Conn {
            client: self.0.connect()?,
            prepared: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

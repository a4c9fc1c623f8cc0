//! The ClickHouse backend, for several Cartograph instances sharing one server or cluster.
//!
//! The store traits are synchronous (called from the writer thread and the blocking pool); the
//! official `clickhouse` crate is async, so the store owns a small runtime and blocks on it.
//! Every value reaches SQL through the crate's bound parameters (`?`, escaped by the client)
//! or RowBinary rows — never by formatting user input into a statement. See `migrate` for the
//! schema and [`rows`] for what each row holds.

mod bound;
#[cfg(test)]
mod bucket_tests;
mod buckets;
pub mod migrate;
mod reader;
mod rows;
#[cfg(test)]
pub(crate) mod tests;
mod totals;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use clickhouse::{Client, Compression, RowOwned, RowWrite};

pub use migrate::Layout;
pub use reader::ClickHouseReader;
pub use writer::ClickHouseWriter;

use crate::store::StoreError;

/// How to reach the server and lay out the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickHouseOptions {
    pub url: String,
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// LZ4 for real servers; off for the chDB test bridge.
    pub compress: bool,
    pub cluster: Option<String>,
    /// Apply pending migrations when opening.
    pub migrate: bool,
}

/// What the writer and the reader share.
pub(crate) struct Shared {
    /// In the store's database (inserts name tables alone).
    pub(crate) client: Client,
    /// Without a database, for migrations (the database may not exist yet).
    admin: Client,
    /// Taken on drop: a runtime must not be dropped inside another one's async context.
    runtime: Option<tokio::runtime::Runtime>,
    pub(crate) database: String,
    pub(crate) layout: Layout,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouse")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Runs `work` to completion on the store's runtime (from a non-async thread).
    pub(crate) fn block<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, clickhouse::error::Error>>,
    ) -> Result<T, StoreError> {
        self.runtime()
            .block_on(async {
                tokio::time::timeout(QUERY_TIMEOUT, work)
                    .await
                    .map_err(|_| {
                        clickhouse::error::Error::Custom(format!(
                            "no answer within {QUERY_TIMEOUT:?}"
                        ))
                    })?
            })
            .map_err(|err| StoreError::ClickHouse(err.to_string()))
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives until drop")
    }

    /// Inserts `rows` into `table` (nothing when there are none).
    pub(crate) fn insert<T: RowOwned + RowWrite + Sync>(
        &self,
        table: &str,
        rows: &[T],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let client = self.client.clone();
        let name = table.to_owned();
        self.block(async move {
            let mut insert = client.insert::<T>(&name).await?;
            for row in rows {
                insert.write(row).await?;
            }
            insert.end().await
        })
    }

    /// `table` in the store's database, quoted.
    pub(crate) fn table(&self, table: &str) -> String {
        format!(
            "{}.{}",
            migrate::identifier(&self.database),
            migrate::identifier(table)
        )
    }
}

/// One query or insert at most this long.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

fn client(options: &ClickHouseOptions) -> Client {
    let mut client =
        Client::default()
            .with_url(&options.url)
            .with_compression(if options.compress {
                Compression::Lz4
            } else {
                Compression::None
            });
    if let Some(user) = &options.user {
        client = client.with_user(user);
    }
    if let Some(password) = &options.password {
        client = client.with_password(password);
    }
    client
}

/// Applies the migrations (see [`migrate::migrate`]); returns the versions applied.
pub fn run_migrations(options: &ClickHouseOptions) -> Result<Vec<u32>, StoreError> {
    let shared = connect(options)?;
    shared.block_migrations()
}

fn connect(options: &ClickHouseOptions) -> Result<Shared, StoreError> {
    if !migrate::is_plain_name(&options.database) {
        return Err(StoreError::Open {
            path: options.url.clone(),
            reason: format!(
                "database name {:?} must be letters, digits and _",
                options.database
            ),
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("clickhouse")
        .enable_all()
        .build()
        .map_err(|err| StoreError::Open {
            path: options.url.clone(),
            reason: err.to_string(),
        })?;
    Ok(Shared {
        client: client(options).with_database(&options.database),
        admin: client(options),
        runtime: Some(runtime),
        database: options.database.clone(),
        layout: Layout {
            database: options.database.clone(),
            cluster: options.cluster.clone(),
        },
    })
}

impl Shared {
    fn block_migrations(&self) -> Result<Vec<u32>, StoreError> {
        self.runtime()
            .block_on(migrate::migrate(&self.admin, &self.layout))
    }

    /// Where `ALTER ... DELETE` must go: the table itself, or the local tables on every node.
    pub(crate) fn local_table(&self, table: &str) -> String {
        let local = format!(
            "{}.{}",
            migrate::identifier(&self.database),
            migrate::identifier(&self.layout.local(table))
        );
        match &self.layout.cluster {
            Some(cluster) => format!("{local} ON CLUSTER {}", migrate::quote(cluster)),
            None => local,
        }
    }
}

/// Opens the store (migrating first when `options.migrate`): the writer half and the reader.
pub fn open(
    options: &ClickHouseOptions,
) -> Result<(ClickHouseWriter, ClickHouseReader), StoreError> {
    let shared = connect(options)?;
    if options.migrate {
        shared.block_migrations()?;
    }
    let shared = Arc::new(shared);
    Ok((
        ClickHouseWriter::new(Arc::clone(&shared)),
        ClickHouseReader::new(shared),
    ))
}

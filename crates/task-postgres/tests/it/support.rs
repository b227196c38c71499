//! Fresh schemas for tests: each test gets a randomly named schema on the server named by
//! `TASKLANE_TEST_POSTGRES`, dropped when the test's [`TestDb`] goes away.

use std::time::Duration;

use task_postgres::{PostgresConfig, PostgresStore};
use task_store::testkit::Guarded;
use tokio_postgres::NoTls;

/// The variable naming the test server.
pub const DATABASE_ENV: &str = "TASKLANE_TEST_POSTGRES";
/// The longest a test waits for anything; reaching it fails the test.
pub const WAIT: Duration = Duration::from_secs(10);

/// The test server's URL, or `None` after printing why the test is skipped.
pub fn database_url() -> Option<String> {
    match std::env::var(DATABASE_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            println!("skipped: {DATABASE_ENV} is not set");
            None
        }
    }
}

/// A schema of its own for one test, dropped (with everything in it) on drop.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    pub schema: String,
}

impl TestDb {
    /// A fresh schema name on the test server, or `None` (printed) when there is none.
    pub fn new() -> Option<Self> {
        let url = database_url()?;
        let mut random = [0u8; 8];
        getrandom::getrandom(&mut random).expect("OS randomness");
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let schema = format!("tasklane_test_{suffix}");
        // The schema's name as application name lets the drop end this test's sessions.
        let url = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}application_name={schema}")
        } else {
            format!("{url} application_name={schema}")
        };
        Some(Self { url, schema })
    }

    /// The configuration tests use: this schema, quick reconnects.
    pub fn config(&self) -> PostgresConfig {
        PostgresConfig {
            listener_backoff_min: Duration::from_millis(50),
            listener_backoff_max: Duration::from_millis(500),
            ..PostgresConfig::with_schema(self.schema.clone())
        }
    }

    /// A new store (an "instance") on this schema.
    pub async fn store(&self) -> PostgresStore {
        self.store_with(self.config()).await
    }

    /// A new store on this schema with `config`.
    pub async fn store_with(&self, config: PostgresConfig) -> PostgresStore {
        PostgresStore::connect(&self.url, config)
            .await
            .expect("connect to the test server")
    }

    /// A plain connection for looking behind the store's back.
    pub async fn admin(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .expect("admin connection");
        tokio::spawn(connection);
        client
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop cannot await, so a short-lived thread with its own runtime drops the schema.
        let url = self.url.clone();
        let schema = self.schema.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
                tokio::spawn(connection);
                // Sessions of this test that are still open (their runtime may be the one
                // blocked in this drop) would hold locks the drop waits for.
                client
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE application_name LIKE $1 || '%' AND pid <> pg_backend_pid()",
                        &[&schema],
                    )
                    .await?;
                client
                    .batch_execute(&format!(
                        "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                    ))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}: {dropped:?}", self.schema);
        }
    }
}

/// A store on a fresh schema that is dropped with it, for the conformance suite; `None`
/// (printed) without a test server.
pub async fn fresh_store() -> Option<Guarded<PostgresStore, TestDb>> {
    let db = TestDb::new()?;
    let store = db.store().await;
    Some(Guarded::new(store, db))
}

//! Fresh schemas for tests: each test gets a randomly named schema on the server named by
//! `TASKLANE_TEST_POSTGRES`, dropped when the test's [`TestDb`] goes away.

use std::time::Duration;

use task_postgres::{PostgresConfig, PostgresStore};
use task_store::testkit::Guarded;
use test_support::postgres::TestSchema;

pub use test_support::postgres::database_url;

/// The longest a test waits for anything; reaching it fails the test.
pub const WAIT: Duration = Duration::from_secs(10);

/// A schema of its own for one test, dropped (with everything in it) on drop, and the stores
/// the tests open on it.
#[derive(Debug)]
pub struct TestDb {
    schema: TestSchema,
}

impl TestDb {
    /// A fresh schema name on the test server, or `None` (printed) when there is none.
    pub fn new() -> Option<Self> {
        let schema = TestSchema::new("tasklane_test")?;
        Some(Self { schema })
    }

    /// The server's connection string, tagged so the drop finds this test's sessions.
    pub fn url(&self) -> &str {
        self.schema.url()
    }

    /// The schema's name.
    pub fn schema(&self) -> &str {
        self.schema.name()
    }

    /// The configuration tests use: this schema, quick reconnects.
    pub fn config(&self) -> PostgresConfig {
        PostgresConfig {
            listener_backoff_min: Duration::from_millis(50),
            listener_backoff_max: Duration::from_millis(500),
            ..PostgresConfig::with_schema(self.schema())
        }
    }

    /// A new store (an "instance") on this schema.
    pub async fn store(&self) -> PostgresStore {
        self.store_with(self.config()).await
    }

    /// A new store on this schema with `config`.
    pub async fn store_with(&self, config: PostgresConfig) -> PostgresStore {
        PostgresStore::connect(self.url(), config)
            .await
            .expect("connect to the test server")
    }

    /// A plain connection for looking behind the store's back.
    pub async fn admin(&self) -> tokio_postgres::Client {
        self.schema.admin().await
    }
}

/// A store on a fresh schema that is dropped with it, for the conformance suite; `None`
/// (printed) without a test server.
pub async fn fresh_store() -> Option<Guarded<PostgresStore, TestDb>> {
    let db = TestDb::new()?;
    let store = db.store().await;
    Some(Guarded::new(store, db))
}

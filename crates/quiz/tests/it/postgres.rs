//! The PostgreSQL backends for the question-store suite: each test gets its own fresh schema on
//! the server named by `TASKLANE_TEST_POSTGRES`, dropped when the test's [`Stores`] goes away.
//! Without the variable the test prints why it is skipped and passes.

use std::sync::Arc;

use quiz::PostgresQuestionStore;
use task_postgres::tokio_postgres::{self, NoTls};
use task_postgres::{PostgresConfig, PostgresStore};

use crate::support::Stores;

/// The variable naming the test server.
pub const DATABASE_ENV: &str = "TASKLANE_TEST_POSTGRES";

/// A schema of its own for one test, dropped (with everything in it) on drop.
#[derive(Debug)]
pub struct TestSchema {
    url: String,
    name: String,
}

impl TestSchema {
    /// A fresh schema name on the test server, or `None` (printed) when there is none.
    fn new() -> Option<Self> {
        let Some(url) = std::env::var(DATABASE_ENV)
            .ok()
            .filter(|url| !url.trim().is_empty())
        else {
            println!("skipped: {DATABASE_ENV} is not set");
            return None;
        };
        let mut random = [0u8; 8];
        getrandom::getrandom(&mut random).expect("OS randomness");
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("quiz_test_{suffix}");
        // The schema's name as application name lets the drop end this test's sessions.
        let separator = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{separator}application_name={name}");
        Some(Self { url, name })
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // Drop cannot await, so a short-lived thread with its own runtime drops the schema.
        let url = self.url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
                tokio::spawn(connection);
                // The test's own pooled sessions (their runtime may be the one blocked in this
                // drop) would hold locks the drop waits for.
                client
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE application_name LIKE $1 || '%' AND pid <> pg_backend_pid()",
                        &[&name],
                    )
                    .await?;
                client
                    .batch_execute(&format!(
                        "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
                    ))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}: {dropped:?}", self.name);
        }
    }
}

/// Tasks, users and questions in one fresh PostgreSQL schema, or `None` (printed) without a
/// test server.
pub async fn postgres() -> Option<Stores> {
    let schema = TestSchema::new()?;
    let store = PostgresStore::connect(&schema.url, PostgresConfig::with_schema(&schema.name))
        .await
        .expect("connect to the test server");
    Some(Stores {
        tasks: Arc::new(store.clone()),
        users: Arc::new(store.clone()),
        questions: Arc::new(PostgresQuestionStore::new(store)),
        _dir: None,
        _schema: Some(schema),
    })
}

/// A second question store ("instance") on the schema of `stores`, which must come from
/// [`postgres`].
pub async fn another_instance(stores: &Stores) -> PostgresQuestionStore {
    let schema = stores._schema.as_ref().expect("a PostgreSQL fixture");
    let store = PostgresStore::connect(&schema.url, PostgresConfig::with_schema(&schema.name))
        .await
        .expect("connect to the test server");
    PostgresQuestionStore::new(store)
}

//! The PostgreSQL backends for the question-store suite: each test gets its own fresh schema on
//! the server named by `TASKLANE_TEST_POSTGRES`, dropped when the test's [`Stores`] goes away.
//! Without the variable the test prints why it is skipped and passes.

use std::sync::Arc;

use quiz::PostgresQuestionStore;
use task_postgres::{PostgresConfig, PostgresStore};
use test_support::postgres::TestSchema;

use crate::support::Stores;

/// Tasks, users and questions in one fresh PostgreSQL schema, or `None` (printed) without a
/// test server.
pub async fn postgres() -> Option<Stores> {
    let schema = TestSchema::new("quiz_test")?;
    let store = PostgresStore::connect(schema.url(), PostgresConfig::with_schema(schema.name()))
        .await
        .expect("connect to the test server");
    store
        .apply_migrations(&[&quiz::POSTGRES_MIGRATIONS])
        .await
        .expect("questions table");
    Some(Stores {
        tasks: Arc::new(store.clone()),
        users: Arc::new(store.clone()),
        events: Arc::new(store.clone()),
        providers: Arc::new(store.clone()),
        questions: Arc::new(PostgresQuestionStore::new(store)),
        _dir: None,
        _schema: Some(schema),
    })
}

/// A second question store ("instance") on the schema of `stores`, which must come from
/// [`postgres`].
pub async fn another_instance(stores: &Stores) -> PostgresQuestionStore {
    let schema = stores._schema.as_ref().expect("a PostgreSQL fixture");
    let store = PostgresStore::connect(schema.url(), PostgresConfig::with_schema(schema.name()))
        .await
        .expect("connect to the test server");
    PostgresQuestionStore::new(store)
}

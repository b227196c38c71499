//! A database created by the first release (one `schema_migrations` sequence for every table,
//! the questions migration recorded as version 3 of it) is upgraded in place: the ledger is
//! converted to one sequence per set, nothing is re-applied, and the tasks and questions in it
//! stay readable through the stores. On SQLite, and on PostgreSQL when `TASKLANE_TEST_POSTGRES`
//! names a server.

use quiz::{PostgresQuestionStore, QuestionId, QuestionStore, SqliteQuestionStore};
use task_postgres::{PostgresConfig, PostgresStore};
use task_store::rusqlite::Connection;
use task_store::{SqliteStore, TaskStore};
use test_support::postgres::TestSchema;

const TASK_ID: &str = "task_1700000000000_abcdef";
const QUESTION_ID: &str = "q_1700000000000_abcdef";

/// The rows the first release recorded, as the per-set ledger holds them after the upgrade.
fn converted() -> Vec<(String, i64, String, i64)> {
    [
        ("tasks", 1, "0001_background_tasks", 1_700_000_000_001),
        ("tasks", 2, "0002_users_tokens", 1_700_000_000_002),
        ("questions", 1, "0001_questions", 1_700_000_000_003),
    ]
    .into_iter()
    .map(|(set, version, name, at)| (set.to_owned(), version, name.to_owned(), at))
    .collect()
}

/// One task and one question, in SQL both backends accept.
fn release_one_rows(options: &str) -> String {
    format!(
        "INSERT INTO background_tasks (id, user_id, task_type, status, label, progress, total,
             created_at, updated_at, params, run_at)
         VALUES ('{TASK_ID}', 'old@example.com', 'generation', 'completed', 'From before', 100,
                 100, 1700000000000, 1700000000001, '{{}}', 1700000000000);
         INSERT INTO questions (id, user_id, text, text_key, options, correct_index, explanation,
             emoji, category, category_key, age_group, difficulty, provider, model, created_at,
             updated_at)
         VALUES ('{QUESTION_ID}', 'old@example.com', 'Vad är två plus två?', 'vad är två plus två',
                 {options}, 1, 'Två plus två är fyra.', '🧮', 'Matte', 'matte', 'children',
                 'easy', 'offline', 'offline', 1700000000000, 1700000000000);"
    )
}

async fn assert_data_kept(tasks: &dyn TaskStore, questions: &dyn QuestionStore) {
    let task = tasks
        .get(&TASK_ID.parse().unwrap())
        .await
        .expect("old task kept");
    assert_eq!(task.label.as_deref(), Some("From before"));
    let id: QuestionId = QUESTION_ID.parse().unwrap();
    let found = questions
        .get_many(&[id], Some("old@example.com"))
        .await
        .expect("read");
    assert_eq!(found.len(), 1, "old question kept");
    assert_eq!(found[0].options[2], "4");
}

#[tokio::test]
async fn a_release_one_sqlite_database_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("release1.db");
    {
        let conn = Connection::open(&path).unwrap();
        let mut replay = String::from(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
                                             applied_at INTEGER NOT NULL);",
        );
        for migration in task_store::MIGRATIONS.migrations()
            [..task_store::testkit::RELEASE_ONE_TASKS_MIGRATIONS]
            .iter()
            .chain(quiz::SQLITE_MIGRATIONS.migrations())
        {
            replay.push_str(migration.sql());
        }
        replay.push_str(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES
                 (1, '0001_background_tasks', 1700000000001),
                 (2, '0002_users_tokens', 1700000000002),
                 (3, '0003_questions', 1700000000003);",
        );
        replay.push_str(&release_one_rows(r#"'["1", "3", "4", "5"]'"#));
        conn.execute_batch(&replay).expect("release-1 database");
    }

    for _ in 0..2 {
        let store = SqliteStore::open(&path).expect("upgrade");
        store
            .apply_migrations(&[&quiz::SQLITE_MIGRATIONS])
            .await
            .expect("questions set");
        let ledger: Vec<(String, i64, String, i64)> = store
            .with_connection(|conn| {
                let mut statement = conn
                    .prepare(
                        "SELECT set_name, version, name, applied_at FROM schema_migrations \
                         ORDER BY set_name DESC, version",
                    )
                    .map_err(task_store::map_sqlite_error)?;
                let rows = statement
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .map_err(task_store::map_sqlite_error)?;
                rows.collect::<Result<_, _>>()
                    .map_err(task_store::map_sqlite_error)
            })
            .await
            .unwrap();
        assert_eq!(
            task_store::testkit::released_rows(ledger, task_store::MIGRATIONS.migrations().len()),
            converted(),
            "converted once, nothing re-applied"
        );
        assert_data_kept(&store, &SqliteQuestionStore::new(store.clone())).await;
    }
}

#[tokio::test]
async fn a_release_one_postgres_schema_is_upgraded_in_place() {
    let Some(schema) = TestSchema::new("quiz_upgrade") else {
        return;
    };
    let admin = schema.admin().await;
    let mut replay = format!(
        "CREATE SCHEMA \"{0}\"; SET search_path TO \"{0}\";
         CREATE TABLE schema_migrations (version bigint PRIMARY KEY, name text NOT NULL,
                                         applied_at bigint NOT NULL);",
        schema.name()
    );
    for migration in task_postgres::MIGRATIONS.migrations()
        [..task_store::testkit::RELEASE_ONE_TASKS_MIGRATIONS]
        .iter()
        .chain(quiz::POSTGRES_MIGRATIONS.migrations())
    {
        replay.push_str(migration.sql());
        replay.push(';');
    }
    replay.push_str(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES
             (1, 'background_tasks', 1700000000001), (2, 'users_tokens', 1700000000002),
             (3, 'questions', 1700000000003);",
    );
    replay.push_str(&release_one_rows(r#"'["1", "3", "4", "5"]'::jsonb"#));
    admin
        .batch_execute(&replay)
        .await
        .expect("release-1 schema");

    for _ in 0..2 {
        let store =
            PostgresStore::connect(schema.url(), PostgresConfig::with_schema(schema.name()))
                .await
                .expect("upgrade");
        store
            .apply_migrations(&[&quiz::POSTGRES_MIGRATIONS])
            .await
            .expect("questions set");
        let ledger: Vec<(String, i64, String, i64)> = admin
            .query(
                &format!(
                    "SELECT set_name, version, name, applied_at FROM \"{}\".schema_migrations \
                     ORDER BY set_name DESC, version",
                    schema.name()
                ),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        assert_eq!(
            task_store::testkit::released_rows(ledger, task_store::MIGRATIONS.migrations().len()),
            converted(),
            "converted once, nothing re-applied"
        );
        assert_data_kept(&store, &PostgresQuestionStore::new(store.clone())).await;
    }
}

#[test]
fn the_question_sets_embed_every_file_of_their_directories() {
    for (set, dir) in [
        (&quiz::SQLITE_MIGRATIONS, "sqlite"),
        (&quiz::POSTGRES_MIGRATIONS, "postgres"),
    ] {
        task_store::testkit::assert_set_matches_directory(
            set,
            &format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")),
        );
    }
}

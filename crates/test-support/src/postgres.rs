//! Throwaway PostgreSQL schemas for tests that run against the server named by
//! `TASKLANE_TEST_POSTGRES`.
//!
//! [`TestSchema::new`] gives each test a randomly named schema of its own and a connection URL
//! whose `application_name` is that schema's name; dropping the [`TestSchema`] ends the sessions
//! still using it and drops the schema with everything in it. Without the variable it prints
//! the standard "skipped" line and returns `None`, so the test can return early and pass.

use tokio_postgres::NoTls;

/// The variable naming the test server.
pub const DATABASE_ENV: &str = "TASKLANE_TEST_POSTGRES";

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

/// A schema of its own for one test on the test server, dropped (with everything in it) on
/// drop, after the sessions still using it are ended.
#[derive(Debug)]
pub struct TestSchema {
    url: String,
    name: String,
}

impl TestSchema {
    /// A fresh schema named `<prefix>_<16 random hex digits>` on the test server, or `None`
    /// (printed) when there is none. The schema itself is created by whoever connects first
    /// (the stores run their migrations into it).
    pub fn new(prefix: &str) -> Option<Self> {
        let url = database_url()?;
        let mut random = [0u8; 8];
        getrandom::getrandom(&mut random).expect("OS randomness");
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("{prefix}_{suffix}");
        // The schema's name as application name lets the drop find every session of this test.
        let url = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}application_name={name}")
        } else {
            format!("{url} application_name={name}")
        };
        Some(Self { url, name })
    }

    /// The server's connection string, tagged with this schema's name as `application_name`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A plain connection for looking at the tables behind the code under test's back.
    pub async fn admin(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .expect("admin connection");
        tokio::spawn(connection);
        client
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
                // Sessions of this test that are still open (pooled connections whose runtime
                // may be the one blocked in this drop, or other processes) would hold locks
                // the drop waits for.
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

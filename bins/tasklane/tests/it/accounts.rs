//! `user add` and `token create|list|revoke`: the new secret is alone on the last line; the
//! commands work on PostgreSQL too, and database errors never show a password.

use crate::cluster::TestSchema;
use crate::process::{last_line, run, task_http};

fn is_token(line: &str) -> bool {
    line.len() == 67 && line.starts_with("tl_") && line[3..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn user_add_prints_the_token_last_and_refuses_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let output =
        run(task_http(dir.path()).args(["user", "add", "Anna@Example.com", "--superuser"]));
    assert!(output.status.success(), "{output:?}");
    assert!(is_token(&last_line(&output)), "{output:?}");
    let listed = run(task_http(dir.path()).args(["user", "list"]));
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout),
        "anna@example.com\tsuperuser\n"
    );

    let again = run(task_http(dir.path()).args(["user", "add", "anna@example.com"]));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("cannot create user"));
    let bad = run(task_http(dir.path()).args(["user", "add", "two words"]));
    assert!(!bad.status.success());
}

#[test]
fn tokens_are_created_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(task_http(dir.path()).args(["user", "add", "bo@example.com"]));
    let first_token = last_line(&first);
    let second =
        run(task_http(dir.path()).args(["token", "create", "bo@example.com", "--label", "ci"]));
    assert!(second.status.success(), "{second:?}");
    let second_token = last_line(&second);
    assert!(is_token(&second_token));
    assert_ne!(first_token, second_token);

    let listed = run(task_http(dir.path()).args(["token", "list", "bo@example.com"]));
    let listing = String::from_utf8_lossy(&listed.stdout).into_owned();
    let rows: Vec<&str> = listing.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{listing}");
    assert!(
        rows.iter().any(|row| row.contains("\tapi\tci\t")),
        "{listing}"
    );
    assert!(
        !listing.contains(&first_token) && !listing.contains(&second_token),
        "no secrets listed"
    );

    let id = rows[0].split('\t').next().unwrap();
    let revoked = run(task_http(dir.path()).args(["token", "revoke", id]));
    assert!(revoked.status.success(), "{revoked:?}");
    let listed = run(task_http(dir.path()).args(["token", "list", "bo@example.com"]));
    assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count(), 2);
    let unknown = run(task_http(dir.path()).args(["token", "revoke", id]));
    assert!(!unknown.status.success());
    let nobody = run(task_http(dir.path()).args(["token", "create", "nobody@example.com"]));
    assert!(!nobody.status.success());
}

#[test]
fn an_unreachable_postgres_server_is_named_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on the loopback interface refuses connections at once.
    let output = run(task_http(dir.path()).args([
        "--db",
        "postgres://tasklane:s3cret@127.0.0.1:1/tasklane",
        "user",
        "list",
    ]));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot open PostgreSQL database postgres://…@127.0.0.1:1/tasklane"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
    let schema_without_postgres =
        run(task_http(dir.path()).args(["--pg-schema", "tenant_a", "user", "list"]));
    assert!(!schema_without_postgres.status.success());
    assert!(
        String::from_utf8_lossy(&schema_without_postgres.stderr).contains("--pg-schema"),
        "{schema_without_postgres:?}"
    );
}

#[test]
fn users_and_tokens_live_in_postgres_too() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let on_postgres = |args: &[&str]| {
        run(task_http(dir.path())
            .env("TASKLANE_DB", schema.url())
            .env("TASKLANE_PG_SCHEMA", schema.name())
            .args(args))
    };
    let added = on_postgres(&["user", "add", "Cy@Example.com"]);
    assert!(added.status.success(), "{added:?}");
    assert!(is_token(&last_line(&added)), "{added:?}");
    let listed = on_postgres(&["user", "list"]);
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout),
        "cy@example.com\tuser\n"
    );
    let again = on_postgres(&["user", "add", "cy@example.com"]);
    assert!(!again.status.success(), "{again:?}");
}

#[test]
fn user_limits_are_set_shown_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let stdout =
        |output: &std::process::Output| String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr =
        |output: &std::process::Output| String::from_utf8_lossy(&output.stderr).into_owned();
    run(task_http(dir.path()).args(["user", "add", "li@example.com"]));
    let shown = run(task_http(dir.path()).args(["user", "limits", "li@example.com"]));
    assert!(shown.status.success(), "{shown:?}");
    assert_eq!(
        stdout(&shown),
        "li@example.com\trate=default\tburst=default\tmax-running=default\tmax-queued=default\n"
    );
    let set = run(task_http(dir.path()).args([
        "user",
        "limits",
        "li@example.com",
        "--rate",
        "30/min",
        "--burst",
        "10",
        "--max-running",
        "4",
        "--max-queued",
        "200",
    ]));
    assert!(set.status.success(), "{set:?}");
    // Setting one limit keeps the others.
    let one =
        run(task_http(dir.path()).args(["user", "limits", "li@example.com", "--burst", "12"]));
    assert_eq!(
        stdout(&one),
        "li@example.com\trate=30/min\tburst=12\tmax-running=4\tmax-queued=200\n"
    );

    for (args, expected) in [
        (vec!["--rate", "thirty"], "30/min"),
        (vec!["--rate", "0/min"], "zero"),
        (vec!["--rate", "-5/min"], "zero"),
        (vec!["--burst", "0"], "at least 1"),
        (vec!["--max-queued", "-3"], "at least 1"),
        (vec!["--max-running", "four"], "not a whole number"),
    ] {
        let bad = run(task_http(dir.path())
            .args(["user", "limits", "li@example.com"])
            .args(&args));
        assert!(!bad.status.success(), "{args:?}");
        assert!(
            stderr(&bad).contains(expected),
            "{args:?}: {}",
            stderr(&bad)
        );
    }
    let unknown =
        run(task_http(dir.path()).args(["user", "limits", "nobody@example.com", "--burst", "2"]));
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("cannot read the limits"),
        "{}",
        stderr(&unknown)
    );
    // Nothing above changed the stored limits.
    let shown = run(task_http(dir.path()).args(["user", "limits", "li@example.com"]));
    assert!(stdout(&shown).contains("burst=12"), "{}", stdout(&shown));
}

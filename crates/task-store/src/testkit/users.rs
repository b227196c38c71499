//! Cases: users and tokens.

use std::sync::Arc;

use task_core::CoreError;

use super::support::{expect_err, now_ms};
use crate::{NewToken, Role, StoreError, TokenKind, UserStore};

type Users = Arc<dyn UserStore>;

fn token(id: &str, email: &str, hash: &str, expires_at: Option<i64>) -> NewToken {
    NewToken {
        id: id.to_owned(),
        user_email: email.to_owned(),
        hash: hash.to_owned(),
        kind: TokenKind::Api,
        label: Some(format!("{id} label")),
        expires_at,
    }
}

/// Users are created with their role, read back, listed oldest first and counted.
pub async fn users_are_created_listed_and_counted(users: Users) {
    assert_eq!(users.count_users().await.expect("count"), 0);
    assert!(users.list_users().await.expect("list").is_empty());
    let before = now_ms();
    let admin = users
        .create_user("admin@example.com", Role::Superuser)
        .await
        .expect("create");
    assert_eq!(admin.email, "admin@example.com");
    assert_eq!(admin.role, Role::Superuser);
    assert!(admin.created_at >= before && admin.created_at <= now_ms());
    let ada = users
        .create_user("ada@example.com", Role::User)
        .await
        .expect("create");
    assert_eq!(users.get_user("ada@example.com").await.expect("get"), ada);
    assert_eq!(users.list_users().await.expect("list"), [admin, ada]);
    assert_eq!(users.count_users().await.expect("count"), 2);
    assert_eq!(
        users.get_user("nobody@example.com").await,
        Err(StoreError::NotFound)
    );
}

/// A second user with the same email is a `Conflict`; emails compare exactly as given.
pub async fn duplicate_users_conflict(users: Users) {
    users
        .create_user("ada@example.com", Role::User)
        .await
        .expect("create");
    expect_err(
        users.create_user("ada@example.com", Role::Superuser).await,
        "duplicate",
        |e| matches!(e, StoreError::Conflict(_)),
    );
    assert_eq!(
        users.get_user("ada@example.com").await.expect("get").role,
        Role::User,
        "the first user is unchanged"
    );
    users
        .create_user("Ada@example.com", Role::User)
        .await
        .expect("a differently spelled email is another user");
    assert_eq!(users.count_users().await.expect("count"), 2);
}

/// Blank emails and tokens without id or hash are `Invalid`.
pub async fn invalid_user_input_is_rejected(users: Users) {
    expect_err(
        users.create_user("  ", Role::User).await,
        "blank email",
        |e| {
            matches!(
                e,
                StoreError::Invalid(CoreError::InvalidField { field: "email", .. })
            )
        },
    );
    users
        .create_user("ada@example.com", Role::User)
        .await
        .expect("create");
    for (bad, field) in [
        (token("", "ada@example.com", "h1", None), "id"),
        (token("t1", "ada@example.com", "", None), "hash"),
    ] {
        expect_err(
            users.insert_token(bad).await,
            field,
            |e| matches!(e, StoreError::Invalid(CoreError::InvalidField { field: f, .. }) if *f == field),
        );
    }
    assert!(users
        .list_tokens("ada@example.com")
        .await
        .expect("list")
        .is_empty());
    assert_eq!(users.count_users().await.expect("count"), 1);
}

/// `find_token` returns the user and token by hash until `expires_at` (exclusive).
pub async fn tokens_are_found_until_they_expire(users: Users) {
    let ada = users
        .create_user("ada@example.com", Role::User)
        .await
        .expect("create");
    let now = now_ms();
    let forever = users
        .insert_token(token("t-forever", "ada@example.com", "hash-forever", None))
        .await
        .expect("insert");
    assert_eq!(forever.kind, TokenKind::Api);
    assert_eq!(forever.label.as_deref(), Some("t-forever label"));
    assert!(forever.created_at >= now);
    let mut session = token(
        "t-session",
        "ada@example.com",
        "hash-session",
        Some(now + 1000),
    );
    session.kind = TokenKind::Session;
    let session = users.insert_token(session).await.expect("insert");
    assert_eq!(session.kind, TokenKind::Session);

    let found = users
        .find_token("hash-forever", i64::MAX)
        .await
        .expect("find");
    assert_eq!(found, Some((ada.clone(), forever.clone())));
    assert_eq!(
        users
            .find_token("hash-session", now + 999)
            .await
            .expect("find"),
        Some((ada.clone(), session.clone()))
    );
    assert_eq!(
        users
            .find_token("hash-session", now + 1000)
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        users.find_token("no-such-hash", now).await.expect("find"),
        None
    );
    assert_eq!(
        users.list_tokens("ada@example.com").await.expect("list"),
        [forever, session],
        "oldest first, expired ones included"
    );
    assert!(users
        .list_tokens("bob@example.com")
        .await
        .expect("list")
        .is_empty());
}

/// `revoke_token` deletes by id (`NotFound` if absent); `delete_token_by_hash` deletes by hash
/// and ignores absent ones.
pub async fn tokens_are_revoked_and_deleted(users: Users) {
    users
        .create_user("ada@example.com", Role::User)
        .await
        .expect("create");
    for (id, hash) in [("t1", "h1"), ("t2", "h2"), ("t3", "h3")] {
        users
            .insert_token(token(id, "ada@example.com", hash, None))
            .await
            .expect("insert");
    }
    users.revoke_token("t1").await.expect("revoke");
    assert_eq!(users.find_token("h1", 0).await.expect("find"), None);
    assert_eq!(users.revoke_token("t1").await, Err(StoreError::NotFound));
    users.delete_token_by_hash("h2").await.expect("logout");
    users
        .delete_token_by_hash("h2")
        .await
        .expect("again is fine");
    users
        .delete_token_by_hash("never-existed")
        .await
        .expect("absent is fine");
    let left: Vec<String> = users
        .list_tokens("ada@example.com")
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(left, ["t3"]);
    assert!(users.find_token("h3", 0).await.expect("find").is_some());
}

/// A token for an unknown user is `NotFound`; a taken id or hash is a `Conflict`.
pub async fn token_inserts_are_checked(users: Users) {
    expect_err(
        users
            .insert_token(token("t1", "ghost@example.com", "h1", None))
            .await,
        "unknown user",
        |e| *e == StoreError::NotFound,
    );
    users
        .create_user("ada@example.com", Role::User)
        .await
        .expect("create");
    users
        .insert_token(token("t1", "ada@example.com", "h1", None))
        .await
        .expect("insert");
    for (bad, what) in [
        (token("t1", "ada@example.com", "h2", None), "taken id"),
        (token("t2", "ada@example.com", "h1", None), "taken hash"),
    ] {
        expect_err(users.insert_token(bad).await, what, |e| {
            matches!(e, StoreError::Conflict(_))
        });
    }
    let ids: Vec<String> = users
        .list_tokens("ada@example.com")
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["t1"]);
}

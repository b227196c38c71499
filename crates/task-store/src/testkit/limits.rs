//! Cases: users' own limits (issue #19).

use std::sync::Arc;

use super::support::expect_err;
use crate::{Rate, Role, StoreError, UserLimits, UserStore};

/// A user starts with no limits of their own; set limits are read back exactly, replaced
/// whole by the next set, and kept apart per user.
pub async fn user_limits_round_trip(users: Arc<dyn UserStore>) {
    users
        .create_user("ada@example.com", Role::User)
        .await
        .expect("ada");
    users
        .create_user("root@example.com", Role::Superuser)
        .await
        .expect("root");
    assert_eq!(
        users
            .get_user_limits("ada@example.com")
            .await
            .expect("none yet"),
        UserLimits::default()
    );
    let limits = UserLimits {
        rate: Some(Rate {
            count: 30,
            period_ms: 60_000,
        }),
        burst: Some(10),
        max_running: Some(4),
        max_queued: Some(200),
    };
    users
        .set_user_limits("ada@example.com", limits)
        .await
        .expect("set");
    assert_eq!(
        users.get_user_limits("ada@example.com").await.expect("get"),
        limits
    );
    let fewer = UserLimits {
        burst: Some(2),
        ..UserLimits::default()
    };
    users
        .set_user_limits("ada@example.com", fewer)
        .await
        .expect("replace");
    assert_eq!(
        users.get_user_limits("ada@example.com").await.expect("get"),
        fewer
    );
    // The superuser's limits are settable too, and separate.
    users
        .set_user_limits("root@example.com", limits)
        .await
        .expect("root");
    assert_eq!(
        users
            .get_user_limits("root@example.com")
            .await
            .expect("root"),
        limits
    );
    assert_eq!(
        users.get_user_limits("ada@example.com").await.expect("get"),
        fewer
    );
}

/// Unknown users are `NotFound`; zero limits are `Invalid` and change nothing.
pub async fn user_limits_are_checked(users: Arc<dyn UserStore>) {
    expect_err(
        users.get_user_limits("nobody@example.com").await,
        "get for an unknown user",
        |e| matches!(e, StoreError::NotFound),
    );
    expect_err(
        users
            .set_user_limits("nobody@example.com", UserLimits::default())
            .await,
        "set for an unknown user",
        |e| matches!(e, StoreError::NotFound),
    );
    users
        .create_user("ada@example.com", Role::User)
        .await
        .expect("ada");
    for bad in [
        UserLimits {
            burst: Some(0),
            ..UserLimits::default()
        },
        UserLimits {
            max_queued: Some(0),
            ..UserLimits::default()
        },
        UserLimits {
            rate: Some(Rate {
                count: 0,
                period_ms: 1_000,
            }),
            ..UserLimits::default()
        },
    ] {
        expect_err(
            users.set_user_limits("ada@example.com", bad).await,
            "a zero limit",
            |e| matches!(e, StoreError::Invalid(_)),
        );
    }
    assert_eq!(
        users.get_user_limits("ada@example.com").await.expect("get"),
        UserLimits::default()
    );
}

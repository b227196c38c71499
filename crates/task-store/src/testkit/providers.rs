//! Conformance cases for [`ProviderLimitStore`]: holds, leased concurrency slots, the
//! per-minute windows and their race-freedom, within one store and between two stores on one
//! database ([`instances_share_provider_slots`]).

use std::sync::Arc;

use crate::provider_limits::{
    Admission, AdmitRequest, ProviderCaps, ProviderKey, ProviderLease, ProviderLimitStore,
    WaitReason, CONCURRENCY_RECHECK_MS, WINDOW_MS,
};

/// A time well inside a minute, so a case's few milliseconds never cross a window edge.
const T0: i64 = 1_700_000_040_000;

fn key() -> ProviderKey {
    ProviderKey::new("openai", "gpt-4o-mini")
}

fn request(caps: ProviderCaps, now: i64) -> AdmitRequest {
    AdmitRequest {
        key: key(),
        caps,
        lease_for_ms: 30_000,
        now,
    }
}

async fn admit(store: &dyn ProviderLimitStore, caps: ProviderCaps, now: i64) -> Admission {
    store.admit(&request(caps, now)).await.expect("admit")
}

fn granted(admission: Admission) -> ProviderLease {
    match admission {
        Admission::Granted(lease) => lease,
        other => panic!("expected a grant, got {other:?}"),
    }
}

fn waits(admission: &Admission) -> (i64, WaitReason) {
    match admission {
        Admission::Wait { until, reason } => (*until, *reason),
        other => panic!("expected a wait, got {other:?}"),
    }
}

fn concurrency(n: u32) -> ProviderCaps {
    ProviderCaps {
        concurrency: Some(n),
        ..ProviderCaps::default()
    }
}

/// A hold keeps every caller of its key away until it ends, whatever the caps; a shorter
/// hold never shortens it; other keys are not held.
pub async fn provider_holds_keep_callers_away_until_they_end(store: Arc<dyn ProviderLimitStore>) {
    let store = store.as_ref();
    store.hold(&key(), T0 + 2_000).await.expect("hold");
    store.hold(&key(), T0 + 1_000).await.expect("shorter hold");
    let refused = admit(store, ProviderCaps::default(), T0).await;
    assert_eq!(waits(&refused), (T0 + 2_000, WaitReason::Hold));
    let other = AdmitRequest {
        key: ProviderKey::new("openai", "o3"),
        ..request(ProviderCaps::default(), T0)
    };
    granted(store.admit(&other).await.expect("admit"));
    granted(admit(store, ProviderCaps::default(), T0 + 2_000).await);
    let usage = store.provider_usage(T0).await.expect("usage");
    let held = usage.iter().find(|u| u.key == key()).expect("the held key");
    assert_eq!(held.hold_until, Some(T0 + 2_000));
    let later = store.provider_usage(T0 + 2_001).await.expect("usage");
    assert_eq!(
        later.iter().find(|u| u.key == key()).unwrap().hold_until,
        None
    );
}

/// At most N leases at once: the next caller waits a short re-check; a release frees a slot,
/// and so does a lease's expiry (a worker that died mid-call).
pub async fn provider_concurrency_slots_are_leased(store: Arc<dyn ProviderLimitStore>) {
    let store = store.as_ref();
    let caps = concurrency(2);
    let first = granted(admit(store, caps, T0).await);
    let second = granted(admit(store, caps, T0 + 1).await);
    assert_ne!(first.id, second.id);
    assert_eq!(first.expires_at, T0 + 30_000);
    let refused = admit(store, caps, T0 + 2).await;
    assert_eq!(
        waits(&refused),
        (T0 + 2 + CONCURRENCY_RECHECK_MS, WaitReason::Concurrency)
    );
    let usage = store.provider_usage(T0 + 2).await.expect("usage");
    assert_eq!(usage.len(), 1);
    assert_eq!((usage[0].in_flight, usage[0].requests), (2, 2));
    store
        .release_slot(&first, 0, T0 + 3)
        .await
        .expect("release");
    let third = granted(admit(store, caps, T0 + 4).await);
    // Released twice (or after expiry) is harmless.
    store
        .release_slot(&first, 0, T0 + 5)
        .await
        .expect("release again");
    assert!(matches!(
        admit(store, caps, T0 + 6).await,
        Admission::Wait { .. }
    ));
    // Just before the first of the two leases expires, the wait ends at that expiry.
    let near = admit(store, caps, second.expires_at - 10).await;
    assert_eq!(waits(&near), (second.expires_at, WaitReason::Concurrency));
    // At its expiry the dead call's slot is free again.
    let revived = granted(admit(store, caps, second.expires_at).await);
    store
        .release_slot(&third, 0, T0 + 7)
        .await
        .expect("release");
    store
        .release_slot(&revived, 0, T0 + 8)
        .await
        .expect("release");
    let usage = store
        .provider_usage(second.expires_at + 1)
        .await
        .expect("usage");
    assert_eq!(usage[0].in_flight, 0);
}

/// R calls per wall-clock minute: the next waits for the next minute, which starts afresh.
pub async fn provider_requests_per_minute_are_counted(store: Arc<dyn ProviderLimitStore>) {
    let store = store.as_ref();
    let caps = ProviderCaps {
        requests_per_minute: Some(3),
        ..ProviderCaps::default()
    };
    for n in 0..3 {
        let lease = granted(admit(store, caps, T0 + n).await);
        store
            .release_slot(&lease, 0, T0 + n)
            .await
            .expect("release");
    }
    let refused = admit(store, caps, T0 + 10).await;
    let next_minute = T0 - T0.rem_euclid(WINDOW_MS) + WINDOW_MS;
    assert_eq!(waits(&refused), (next_minute, WaitReason::Requests));
    let usage = store.provider_usage(T0 + 10).await.expect("usage");
    assert_eq!((usage[0].requests, usage[0].in_flight), (3, 0));
    granted(admit(store, caps, next_minute).await);
    let usage = store.provider_usage(next_minute).await.expect("usage");
    assert_eq!(usage[0].requests, 1);
}

/// T tokens per minute, counted from what released calls reported: once used up, callers
/// wait for the next minute.
pub async fn provider_tokens_per_minute_are_counted(store: Arc<dyn ProviderLimitStore>) {
    let store = store.as_ref();
    let caps = ProviderCaps {
        tokens_per_minute: Some(1_000),
        ..ProviderCaps::default()
    };
    let first = granted(admit(store, caps, T0).await);
    let second = granted(admit(store, caps, T0 + 1).await);
    store
        .release_slot(&first, 600, T0 + 2)
        .await
        .expect("release");
    let third = granted(admit(store, caps, T0 + 3).await);
    store
        .release_slot(&second, 400, T0 + 4)
        .await
        .expect("release");
    let refused = admit(store, caps, T0 + 5).await;
    let next_minute = T0 - T0.rem_euclid(WINDOW_MS) + WINDOW_MS;
    assert_eq!(waits(&refused), (next_minute, WaitReason::Tokens));
    let usage = store.provider_usage(T0 + 5).await.expect("usage");
    assert_eq!((usage[0].tokens, usage[0].requests), (1_000, 3));
    // Tokens reported in a later minute count in that minute.
    store
        .release_slot(&third, 50, next_minute + 1)
        .await
        .expect("release");
    let usage = store.provider_usage(next_minute + 2).await.expect("usage");
    assert_eq!((usage[0].tokens, usage[0].requests), (50, 0));
    granted(admit(store, caps, next_minute + 3).await);
}

/// Many callers at once on one store: never more grants than slots, and every grant counted.
pub async fn concurrent_provider_admissions_respect_the_cap(store: Arc<dyn ProviderLimitStore>) {
    let caps = ProviderCaps {
        concurrency: Some(3),
        requests_per_minute: Some(1_000),
        tokens_per_minute: None,
    };
    let calls: Vec<_> = (0..12)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { admit(store.as_ref(), caps, T0 + n).await })
        })
        .collect();
    let mut grants = 0;
    for call in calls {
        if matches!(call.await.expect("join"), Admission::Granted(_)) {
            grants += 1;
        }
    }
    assert_eq!(grants, 3, "exactly the cap's slots were granted");
    let usage = store.provider_usage(T0 + 20).await.expect("usage");
    assert_eq!((usage[0].in_flight, usage[0].requests), (3, 3));
}

/// Two stores on one database (two instances) contending for N slots: together they never
/// hold more than N, a slot one frees the other can take, and a hold one records the other
/// sees.
pub async fn instances_share_provider_slots(
    one: Arc<dyn ProviderLimitStore>,
    two: Arc<dyn ProviderLimitStore>,
) {
    let caps = ProviderCaps {
        concurrency: Some(4),
        ..ProviderCaps::default()
    };
    let calls: Vec<_> = (0..20)
        .map(|n| {
            let store = Arc::clone(if n % 2 == 0 { &one } else { &two });
            tokio::spawn(async move { admit(store.as_ref(), caps, T0 + n).await })
        })
        .collect();
    let mut leases = Vec::new();
    for call in calls {
        if let Admission::Granted(lease) = call.await.expect("join") {
            leases.push(lease);
        }
    }
    assert_eq!(
        leases.len(),
        4,
        "both instances together took exactly 4 slots"
    );
    let freed = leases.pop().unwrap();
    one.release_slot(&freed, 10, T0 + 30)
        .await
        .expect("release");
    granted(admit(two.as_ref(), caps, T0 + 31).await);
    assert!(matches!(
        admit(one.as_ref(), caps, T0 + 32).await,
        Admission::Wait { .. }
    ));
    two.hold(&key(), T0 + 5_000).await.expect("hold");
    let refused = admit(one.as_ref(), ProviderCaps::default(), T0 + 33).await;
    assert_eq!(waits(&refused), (T0 + 5_000, WaitReason::Hold));
    let seen = one.provider_usage(T0 + 34).await.expect("usage");
    assert_eq!(seen[0].in_flight, 4);
    assert_eq!(seen[0].tokens, 10);
}

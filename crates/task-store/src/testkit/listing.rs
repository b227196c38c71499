//! Cases: list filters, order and keyset paging.

use task_core::{CoreError, NewTask, Task, TaskStatus};

use super::support::{claim_only, drive, expect_err, new_task, Start, Store};
use crate::{ListQuery, StoreError};

/// What `list` must return for `query` over `all`: the filters, newest first. Written out
/// independently of any backend, as the specification.
fn expected(all: &[Task], query: &ListQuery) -> Vec<Task> {
    let needle = query.search.as_ref().map(|s| s.to_lowercase());
    let mut hits: Vec<Task> = all
        .iter()
        .filter(|t| query.user_id.as_ref().is_none_or(|u| *u == t.user_id))
        .filter(|t| query.statuses.is_empty() || query.statuses.contains(&t.status))
        .filter(|t| query.task_type.as_ref().is_none_or(|ty| *ty == t.task_type))
        .filter(|t| query.created_from.is_none_or(|from| t.created_at >= from))
        .filter(|t| {
            query
                .created_before
                .is_none_or(|before| t.created_at < before)
        })
        .filter(|t| {
            needle.as_ref().is_none_or(|n| {
                [&t.label, &t.description]
                    .into_iter()
                    .flatten()
                    .any(|text| text.to_lowercase().contains(n.as_str()))
            })
        })
        .cloned()
        .collect();
    hits.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    hits
}

/// Reads every page of `query` and checks each against the expectation.
async fn read_all_pages(store: &Store, query: &ListQuery) -> Vec<Task> {
    let mut seen = Vec::new();
    let mut query = query.clone();
    for _ in 0..1000 {
        let page = store.list(&query).await.expect("list");
        assert!(page.tasks.len() <= query.limit);
        seen.extend(page.tasks.iter().cloned());
        match page.next {
            Some(next) => {
                assert_eq!(page.tasks.len(), query.limit, "only full pages have a next");
                assert_eq!(Some(&next.id), page.tasks.last().map(|t| &t.id));
                // Cursors survive their text form, as clients send them back.
                query.after = Some(next.to_string().parse().expect("cursor"));
            }
            None => return seen,
        }
    }
    panic!("paging did not end");
}

async fn seed(store: &Store) -> Vec<Task> {
    let mut all = Vec::new();
    let specs: [(&str, &str, &str, &str); 6] = [
        (
            "ada@example.com",
            "generation",
            "10 frågor om Östersjön",
            "Queued",
        ),
        (
            "ada@example.com",
            "validation",
            "Validate HISTORIA set",
            "Checking answers",
        ),
        (
            "bob@example.com",
            "generation",
            "Geography quiz",
            "Generating with OpenAI...",
        ),
        (
            "bob@example.com",
            "emoji-regeneration",
            "Emojis",
            "östersjön emojis",
        ),
        (
            "cyd@example.com",
            "generation",
            "Historia 2",
            "100% done soon",
        ),
        ("cyd@example.com", "validation", "Plain", "Nothing special"),
    ];
    for round in 0..3 {
        for (user, task_type, label, description) in specs {
            let new: NewTask = new_task(user, task_type)
                .with_label(format!("{label} #{round}"))
                .with_description(description);
            all.push(store.create(new).await.expect("create"));
        }
    }
    // Give the set every status.
    for (i, start) in [
        Start::Processing,
        Start::Completed,
        Start::Failed,
        Start::Cancelled,
    ]
    .into_iter()
    .enumerate()
    {
        all.push(drive(store, &format!("status-{i}"), start).await.0);
    }
    all
}

/// Every filter, alone and combined, returns exactly the matching tasks, newest first.
pub async fn list_filters_match_the_query(store: Store) {
    let all = seed(&store).await;
    // Tasks changed by `drive` after creation: compare against their current state.
    let mut current = Vec::new();
    for task in &all {
        current.push(store.get(&task.id).await.expect("get"));
    }
    let middle = {
        let mut times: Vec<i64> = current.iter().map(|t| t.created_at).collect();
        times.sort();
        times[times.len() / 2]
    };
    let queries = vec![
        ListQuery::default(),
        ListQuery {
            user_id: Some("ada@example.com".into()),
            ..Default::default()
        },
        ListQuery {
            user_id: Some("nobody@example.com".into()),
            ..Default::default()
        },
        ListQuery {
            statuses: vec![TaskStatus::Pending],
            ..Default::default()
        },
        ListQuery {
            statuses: vec![
                TaskStatus::Failed,
                TaskStatus::Cancelled,
                TaskStatus::Completed,
            ],
            ..Default::default()
        },
        ListQuery {
            task_type: Some("validation".into()),
            ..Default::default()
        },
        ListQuery {
            search: Some("historia".into()),
            ..Default::default()
        },
        ListQuery {
            search: Some("ÖSTERSJÖN".into()),
            ..Default::default()
        },
        ListQuery {
            search: Some("100%".into()),
            ..Default::default()
        },
        ListQuery {
            search: Some("openai...".into()),
            ..Default::default()
        },
        ListQuery {
            created_from: Some(middle),
            ..Default::default()
        },
        ListQuery {
            created_before: Some(middle),
            ..Default::default()
        },
        ListQuery {
            user_id: Some("bob@example.com".into()),
            task_type: Some("generation".into()),
            statuses: vec![TaskStatus::Pending],
            search: Some("quiz".into()),
            created_from: Some(0),
            created_before: Some(i64::MAX),
            ..Default::default()
        },
    ];
    for query in queries {
        let want = expected(&current, &query);
        let got = store.list(&query).await.expect("list");
        assert_eq!(got.tasks, want, "{query:?}");
        assert!(got.next.is_none());
    }
    let search_hits = store
        .list(&ListQuery {
            search: Some("ÖSTERSJÖN".into()),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(
        search_hits.tasks.len(),
        6,
        "label and description, folded case"
    );
}

/// Paging with any page size visits every matching task once, in order, and the last page
/// has no `next`.
pub async fn list_pages_have_no_gaps_or_duplicates(store: Store) {
    let all = seed(&store).await;
    let mut current = Vec::new();
    for task in &all {
        current.push(store.get(&task.id).await.expect("get"));
    }
    for limit in [1, 5, 7, 22, 100] {
        for query in [
            ListQuery {
                limit,
                ..Default::default()
            },
            ListQuery {
                limit,
                task_type: Some("generation".into()),
                ..Default::default()
            },
        ] {
            let want = expected(&current, &query);
            let got = read_all_pages(&store, &query).await;
            assert_eq!(got, want, "limit {limit}, {query:?}");
        }
    }
}

/// A page size outside 1..=1000 is `Invalid`.
pub async fn list_limit_is_validated(store: Store) {
    for limit in [0, 1001] {
        expect_err(
            store
                .list(&ListQuery {
                    limit,
                    ..Default::default()
                })
                .await,
            &format!("limit {limit}"),
            |e| {
                matches!(
                    e,
                    StoreError::Invalid(CoreError::InvalidField { field: "limit", .. })
                )
            },
        );
    }
    store
        .list(&ListQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("1000 is allowed");
}

/// Search is a case-folded substring match however long the needle and whatever it holds
/// (quotes, LIKE's `%`, `_` and `\`, letters outside Latin), over the current description:
/// a description written by progress is found, the one it replaced is not, and a deleted
/// task is never found.
pub async fn list_search_matches_substrings_and_follows_changes(store: Store) {
    let texts = [
        ("Quote \"x\" here", "plain"),
        ("50_% off", "sale"),
        ("back\\slash", "path"),
        ("ΣΟΦΙΑ ΚΑΙ ΛΟΓΟΣ", "greek"),
        ("ab", "two letters"),
        ("Åland och ÖSTERSJÖN", "islands"),
    ];
    for (i, (label, description)) in texts.into_iter().enumerate() {
        // The first one is the task a worker claims below.
        let task_type = if i == 0 { "generation" } else { "validation" };
        store
            .create(
                new_task("ada@example.com", task_type)
                    .with_label(label)
                    .with_description(description),
            )
            .await
            .expect("create");
    }
    let (running, lease) = claim_only(&store, "generation").await;
    store
        .update_progress(
            &lease,
            10,
            Some("Genererar fråga om Segelfartyg".to_owned()),
        )
        .await
        .expect("progress");
    let mut current = Vec::new();
    let page = store.list(&ListQuery::default()).await.expect("list");
    current.extend(page.tasks);
    for needle in [
        "\"x\"",
        "e \"",
        "_%",
        "0_",
        "%",
        "_",
        "\\sl",
        "k\\s",
        "\\",
        "ab",
        "a",
        "AB",
        "σοφια",
        "ΚΑΙ ΛΟΓ",
        "åland",
        "ÅLAND OCH ö",
        "östersjön",
        "segelfartyg",
        "fråga om",
        "nothing like it",
        "plain",
        "ge",
    ] {
        for user_id in [None, Some("ada@example.com".to_owned())] {
            let query = ListQuery {
                search: Some(needle.to_owned()),
                user_id,
                ..Default::default()
            };
            let want = expected(&current, &query);
            let got = store.list(&query).await.expect("list");
            assert_eq!(got.tasks, want, "{query:?}");
        }
    }
    let segel = ListQuery {
        search: Some("SEGELFARTYG".to_owned()),
        ..Default::default()
    };
    let found = store.list(&segel).await.expect("list").tasks;
    assert_eq!(found.len(), 1, "the new description is found");
    assert_eq!(found[0].id, running.id);
    let replaced = ListQuery {
        search: Some("plain".to_owned()),
        ..Default::default()
    };
    assert!(
        store
            .list(&replaced)
            .await
            .expect("list")
            .tasks
            .iter()
            .all(|task| task.id != running.id),
        "the replaced description is not found"
    );
    store
        .complete(&lease, serde_json::json!({"ok": true}))
        .await
        .expect("complete");
    store.delete(&running.id).await.expect("delete");
    assert!(store.list(&segel).await.expect("list").tasks.is_empty());
}

/// Every search of `needles` (everyone's and one user's) answers what the stored tasks say.
async fn searches_are_exact(store: &Store, needles: &[&str]) {
    let all = store
        .list(&ListQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("list")
        .tasks;
    for needle in needles {
        for user_id in [None, Some("ada@example.com".to_owned())] {
            let query = ListQuery {
                search: Some((*needle).to_owned()),
                user_id,
                ..Default::default()
            };
            let got = store.list(&query).await.expect("list");
            assert_eq!(got.tasks, expected(&all, &query), "{query:?}");
        }
    }
}

/// The ids of the tasks a search for `needle` lists, in listing order.
async fn found_ids(store: &Store, needle: &str) -> Vec<task_core::TaskId> {
    let query = ListQuery {
        search: Some(needle.to_owned()),
        ..Default::default()
    };
    let page = store.list(&query).await.expect("list");
    page.tasks.into_iter().map(|task| task.id).collect()
}

/// Indexes for search until the backend says it has caught up; returns how many it indexed.
async fn index_until_caught_up(store: &Store) -> usize {
    let mut total = 0;
    for _ in 0..100 {
        let indexed = store.index_search(2).await.expect("index");
        total += indexed;
        if indexed < 2 {
            assert_eq!(store.index_search(2).await.expect("index"), 0, "caught up");
            return total;
        }
    }
    panic!("the search index never caught up");
}

/// A task is found by search the moment it is created, before a backend that indexes in the
/// background ([`crate::TaskStore::index_search`]) has indexed it and after; indexing catches
/// up batch by batch; new descriptions and deletions of indexed tasks keep search exact.
pub async fn list_search_is_exact_before_and_after_indexing(store: Store) {
    let needles = [
        "historia",
        "HISTORIA DEL 3",
        "quiz",
        "segelfartyg",
        "nyss",
        "del",
    ];
    for i in 1..=5 {
        // The first one is the task a worker claims below.
        let task_type = if i == 1 { "generation" } else { "validation" };
        let user = if i % 2 == 0 {
            "bob@example.com"
        } else {
            "ada@example.com"
        };
        store
            .create(
                new_task(user, task_type)
                    .with_label(format!("Historia del {i}"))
                    .with_description("quiz"),
            )
            .await
            .expect("create");
    }
    searches_are_exact(&store, &needles).await;
    let indexed = index_until_caught_up(&store).await;
    assert!(indexed <= 5, "each task is indexed once: {indexed}");
    searches_are_exact(&store, &needles).await;

    let (running, lease) = claim_only(&store, "generation").await;
    store
        .update_progress(&lease, 10, Some("Skriver om Segelfartyg".to_owned()))
        .await
        .expect("progress");
    searches_are_exact(&store, &needles).await;
    assert_eq!(
        found_ids(&store, "segelfartyg").await,
        vec![running.id],
        "the new description of an indexed task is found"
    );
    let validation = store
        .list(&ListQuery {
            task_type: Some("validation".to_owned()),
            ..Default::default()
        })
        .await
        .expect("list")
        .tasks;
    store.delete(&validation[0].id).await.expect("delete");
    searches_are_exact(&store, &needles).await;

    let fresh = store
        .create(new_task("ada@example.com", "validation").with_label("Historia, nyss skapad"))
        .await
        .expect("create");
    assert_eq!(
        found_ids(&store, "NYSS").await,
        vec![fresh.id.clone()],
        "a task created just now is found before it is indexed"
    );
    searches_are_exact(&store, &needles).await;
    index_until_caught_up(&store).await;
    searches_are_exact(&store, &needles).await;
    store
        .update_progress(&lease, 20, Some("Klar snart".to_owned()))
        .await
        .expect("progress");
    store.delete(&fresh.id).await.expect("delete");
    searches_are_exact(&store, &needles).await;
}

//! The macros that turn the suite into one `#[tokio::test]` per case in the calling crate.

/// Expands to the whole conformance suite (tasks and users): one `#[tokio::test]` per case,
/// each on a fresh store from `$factory` (an expression evaluating to a future whose output is a
/// [`TaskFixture`](crate::testkit::TaskFixture) and
/// [`UserFixture`](crate::testkit::UserFixture)). Call it inside a module per backend.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr $(,)?) => {
        $crate::task_conformance_suite!($factory);
        $crate::user_conformance_suite!($factory);
        $crate::__task_and_user_cases!($factory, [fair_claims_honour_users_own_running_caps]);
    };
}

/// Expands to the task cases of the conformance suite; see
/// [`conformance_suite!`](crate::conformance_suite).
#[macro_export]
macro_rules! task_conformance_suite {
    ($factory:expr $(,)?) => {
        $crate::__conformance_cases!(
            TaskFixture::task_store,
            $factory,
            single: [
                create_sets_documented_defaults,
                create_rejects_invalid_input_and_writes_nothing,
                create_many_is_all_or_nothing,
                get_unknown_task_is_not_found,
                ping_answers,
                transition_matrix,
                claim_sets_lease_fields,
                complete_stores_result_and_clears_lease,
                fail_retries_while_attempts_are_left,
                request_cancel_semantics,
                cancel_semantics,
                retry_resets_a_finished_task,
                release_gives_the_attempt_back,
                cancel_requested_tasks_are_never_requeued,
                progress_rules_are_enforced,
                stale_leases_are_fenced,
                heartbeat_is_not_a_visible_change,
                claim_takes_oldest_due_first,
                claim_returns_tasks_in_due_order,
                claim_validates_its_request,
                future_tasks_wait_until_due,
                claim_filters_by_task_type,
                claim_is_fair_across_users,
                fair_claim_is_round_robin,
                fair_claim_reaches_users_behind_a_backlog,
                unfair_claim_takes_oldest_regardless_of_owner,
                claim_never_takes_unclaimable_tasks,
                list_filters_match_the_query,
                list_search_matches_substrings_and_follows_changes,
                list_search_is_exact_before_and_after_indexing,
                list_pages_have_no_gaps_or_duplicates,
                list_limit_is_validated,
                rescue_expired_requeues_or_fails,
                purge_deletes_only_old_finished_tasks,
                delete_rules,
                count_unfinished_counts_pending_and_processing,
                count_unfinished_counts_waiting_tasks,
                counts_by_type_and_status,
                feed_publishes_every_change_once_in_order,
                failed_operations_publish_nothing,
                dependencies_wait_for_every_parent,
                dependencies_on_foreign_or_unknown_tasks_are_not_found,
                workflows_reject_bad_graphs,
                workflows_fan_out_and_fan_in,
                failure_cancels_dependents_and_retry_rearms_them,
                cancel_propagates_and_run_anyway_edges_recount,
                cancelling_a_workflow_cancels_unfinished_nodes,
                idempotency_keys_replay_the_first_answer,
                idempotency_keys_expire_after_their_window,
                unique_keys_return_the_unfinished_task,
                guarded_creates_validate_and_combine,
                guarded_creates_wait_for_parents,
                postpone_delays_without_using_an_attempt,
                claims_take_higher_priorities_first,
                priorities_keep_per_user_fairness,
                fair_claims_take_released_and_rescued_tasks,
                fair_claims_follow_retry_backoff,
                fair_claims_pass_cancelled_and_deleted_tasks,
                fair_claims_take_released_waiting_tasks,
                fair_claims_by_type_meet_users_at_their_oldest_of_those_types,
                fair_caps_hold_across_bands_as_tasks_finish,
                fair_claims_follow_unfair_claims,
                idempotent_workflows_replay_the_first,
            ],
            multi: [
                concurrent_last_parents_release_a_child_once,
                a_completion_releases_a_wide_fan_out_once,
                concurrent_claimers_never_share_a_task,
                concurrent_writers_publish_in_commit_order,
                concurrent_worker_writes_are_refused_alone,
                concurrent_idempotent_creates_make_one_task,
                concurrent_completions_are_fenced_alone,
            ]
        );
    };
}

/// Expands to the user cases of the conformance suite; see
/// [`conformance_suite!`](crate::conformance_suite).
#[macro_export]
macro_rules! user_conformance_suite {
    ($factory:expr $(,)?) => {
        $crate::__conformance_cases!(
            UserFixture::user_store,
            $factory,
            single: [
                users_are_created_listed_and_counted,
                duplicate_users_conflict,
                invalid_user_input_is_rejected,
                tokens_are_found_until_they_expire,
                tokens_are_revoked_and_deleted,
                token_inserts_are_checked,
                user_limits_round_trip,
                user_limits_are_checked,
            ],
            multi: []
        );
    };
}

/// Expands to the event-log cases ([`crate::TaskEventLog`]): one `#[tokio::test]` per case, each
/// on a fresh store from `$factory`, whose output is an
/// [`EventFixture`](crate::testkit::EventFixture).
#[macro_export]
macro_rules! event_log_conformance_suite {
    ($factory:expr $(,)?) => {
        $crate::__event_log_cases!(
            $factory,
            [
                events_are_numbered_and_replayed_in_order,
                appends_are_fenced_by_the_lease,
                appended_events_are_published_in_order,
                events_are_deleted_with_their_task,
            ]
        );
    };
}

/// Expands to the schedule cases of the conformance suite; `$factory`'s output must be a
/// [`ScheduleFixture`](crate::testkit::ScheduleFixture) (one store with tasks and schedules).
#[macro_export]
macro_rules! schedule_conformance_suite {
    ($factory:expr $(,)?) => {
        $crate::__conformance_cases!(
            ScheduleFixture::schedule_stores,
            $factory,
            single: [
                schedules_are_created_listed_updated_and_deleted,
                invalid_schedules_are_rejected,
                a_fire_time_is_recorded_once_with_its_task,
                runs_follow_their_tasks,
                bad_firings_write_nothing,
                old_runs_are_purged_but_unfinished_tasks_keep_theirs,
            ],
            multi: [
                concurrent_firings_create_one_task,
            ]
        );
    };
}

/// Expands to the analytics cases; `$factory`'s output must be an
/// [`AnalyticsFixture`](crate::testkit::AnalyticsFixture) (one store with tasks and rollups).
#[macro_export]
macro_rules! analytics_conformance_suite {
    ($factory:expr $(,)?) => {
        $crate::__conformance_cases!(
            AnalyticsFixture::analytics_stores,
            $factory,
            single: [
                folding_sums_finished_tasks_exactly,
                folds_resume_from_the_watermark,
                purge_spares_unfolded_tasks,
                pruning_removes_only_old_buckets,
            ],
            multi: [
                concurrent_folds_count_each_task_once,
            ]
        );
    };
}

/// Expands to the provider-limit cases ([`crate::ProviderLimitStore`]); `$factory`'s output
/// must be a [`ProviderFixture`](crate::testkit::ProviderFixture).
#[macro_export]
macro_rules! provider_limits_conformance_suite {
    ($factory:expr $(,)?) => {
        $crate::__conformance_cases!(
            ProviderFixture::provider_store,
            $factory,
            single: [
                provider_holds_keep_callers_away_until_they_end,
                provider_concurrency_slots_are_leased,
                provider_requests_per_minute_are_counted,
                provider_tokens_per_minute_are_counted,
            ],
            multi: [
                concurrent_provider_admissions_respect_the_cap,
            ]
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __task_and_user_cases {
    ($factory:expr, [$($case:ident),* $(,)?]) => {
        $(
            #[::tokio::test]
            async fn $case() {
                let fixture = $factory.await;
                $crate::testkit::$case(
                    $crate::testkit::TaskFixture::task_store(&fixture),
                    $crate::testkit::UserFixture::user_store(&fixture),
                )
                .await;
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __event_log_cases {
    ($factory:expr, [$($case:ident),* $(,)?]) => {
        $(
            #[::tokio::test]
            async fn $case() {
                let fixture = $factory.await;
                $crate::testkit::$case(
                    $crate::testkit::TaskFixture::task_store(&fixture),
                    $crate::testkit::EventFixture::event_log(&fixture),
                )
                .await;
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($fixture:ident :: $store:ident, $factory:expr, single: [$($single:ident),* $(,)?], multi: [$($multi:ident),* $(,)?]) => {
        $(
            #[::tokio::test]
            async fn $single() {
                let fixture = $factory.await;
                $crate::testkit::$single($crate::testkit::$fixture::$store(&fixture)).await;
            }
        )*
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $multi() {
                let fixture = $factory.await;
                $crate::testkit::$multi($crate::testkit::$fixture::$store(&fixture)).await;
            }
        )*
    };
}

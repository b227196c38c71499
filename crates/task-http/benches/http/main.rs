//! The HTTP and SSE benchmark (`cargo bench -p task-http --bench http`), each scenario beside a
//! bare hyper baseline measured in the same run:
//!
//! 1. task creation, `POST /api/tasks` over 64 keep-alive connections (SQLite), beside a bare
//!    hyper server that only stores the task;
//! 2. progress update → SSE client latency with 1,000 subscribers, beside the least an SSE
//!    server can do with the same clients, the least a fan-out costs on this machine, and the
//!    same update to 1,000 WebSocket subscribers;
//! 3. 10,000 idle SSE connections: server memory per connection and database calls;
//! 5. (wide) progress update → SSE client latency with 10,000 subscribers of one task, the
//!    server in a child process, beside the least an SSE server can do with the same clients;
//! 4. a generated question → `partial` event latency with 100 subscribers (the fake OpenAI
//!    server streaming 10 questions at a fixed pace), beside a plain progress update → SSE on
//!    the same server.
//!
//! Results are printed as the table in `docs/benchmarks.md` ("HTTP and SSE"). The process
//! needs about 10,100 open files (the server side runs in a child process with its own
//! limit); with a lower `ulimit -n` the idle scenario uses fewer connections and says so.
//! `TASKLANE_BENCH_QUICK=1` shortens every phase, for checking that the bench runs;
//! `TASKLANE_BENCH_ONLY=creation|latency|idle|partials|wide` runs one scenario;
//! `TASKLANE_BENCH_NO_SEARCH_INDEXER=1` runs the servers without the search indexer.

mod client;
mod counting_store;
mod creation;
mod floor;
mod idle;
mod latency;
mod minimal_sse;
#[path = "../../tests/it/support/sse_parser.rs"]
mod parser;
mod partials;
mod raw_stream;
mod servers;
mod wide;
mod ws_client;

use std::time::Duration;

/// Idle SSE connections in scenario 3.
const IDLE_CONNECTIONS: usize = 10_000;
/// Open files used besides the connections (runtime, SQLite, pipes).
const SPARE_FILES: usize = 200;
/// Subscribers of the one task in scenario 2.
const LATENCY_SUBSCRIBERS: usize = 1000;
/// Updates in scenario 2.
const LATENCY_UPDATES: usize = 100;
/// Time between updates in scenario 2 (tasklane over SSE, the two baselines and tasklane over
/// WebSocket take turns, so each server publishes every fourth interval): long enough for one
/// fan-out to finish on two cores, so the percentiles measure delivery, not a backlog.
const LATENCY_INTERVAL: Duration = Duration::from_millis(100);
/// Subscribers of the generation in scenario 4 (issue #16's target is for 100).
const PARTIAL_SUBSCRIBERS: usize = 100;
/// Questions per generation in scenario 4.
const PARTIAL_QUESTIONS: usize = 10;
/// The fake provider's pause before each question in scenario 4.
const PARTIAL_PACE: Duration = Duration::from_millis(200);
/// Generations (each followed by its baseline round) in scenario 4.
const PARTIAL_ROUNDS: usize = 5;
/// Subscribers of the one task in scenario 5 (issue #21: a 10,000-subscriber run).
const WIDE_SUBSCRIBERS: usize = 10_000;
/// Updates per server and round in scenario 5, and the time between them: enough for the
/// least server to finish one fan-out of 10,000 on two cores (about 0.2 s) with room to spare.
const WIDE_UPDATES: usize = 30;
const WIDE_INTERVAL: Duration = Duration::from_millis(600);
const WIDE_ROUNDS: usize = 2;

fn main() {
    if let Ok(kind) = std::env::var(idle::CHILD_ENV) {
        idle::child(&kind);
        return;
    }
    if let Ok(kind) = std::env::var(wide::CHILD_ENV) {
        wide::child(&kind);
        return;
    }
    let quick = std::env::var_os("TASKLANE_BENCH_QUICK").is_some();
    let only = std::env::var("TASKLANE_BENCH_ONLY").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|only| only == name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let load_before = load_average();
    runtime.block_on(async {
        println!("| Scenario | tasklane | Bare hyper baseline | tasklane / baseline |");
        println!("| --- | --- | --- | --- |");
        if wanted("creation") {
            let (rounds, warmup, measure) = if quick {
                (1, Duration::from_millis(300), Duration::from_secs(1))
            } else {
                (4, Duration::from_millis(500), Duration::from_secs(3))
            };
            eprintln!("task creation over HTTP ...");
            report_creation(&creation::run(rounds, warmup, measure).await);
        }
        if wanted("latency") {
            let updates = if quick { 10 } else { LATENCY_UPDATES };
            eprintln!("update → SSE latency, {LATENCY_SUBSCRIBERS} subscribers ...");
            let latency = latency::run(LATENCY_SUBSCRIBERS, updates, LATENCY_INTERVAL).await;
            report_latency(&latency);
        }
        if wanted("idle") {
            let limit = open_file_limit();
            let connections = IDLE_CONNECTIONS.min(limit.saturating_sub(SPARE_FILES));
            if connections < IDLE_CONNECTIONS {
                eprintln!(
                    "note: open-file limit {limit}: measuring {connections} idle connections \
                     instead of {IDLE_CONNECTIONS} (raise it with `ulimit -n 20000`)"
                );
            }
            let idle_for = if quick {
                Duration::from_secs(2)
            } else {
                // Longer than the 15 s keep-alive interval, so keep-alives are part of it.
                Duration::from_secs(20)
            };
            eprintln!("{connections} idle SSE connections ...");
            report_idle(&idle::run(connections, idle_for).await);
        }
        if wanted("partials") {
            let rounds = if quick { 1 } else { PARTIAL_ROUNDS };
            eprintln!("generated question → partial event, {PARTIAL_SUBSCRIBERS} subscribers ...");
            let result =
                partials::run(PARTIAL_SUBSCRIBERS, PARTIAL_QUESTIONS, PARTIAL_PACE, rounds).await;
            report_partials(&result);
        }
        if wanted("wide") {
            let (updates, rounds) = if quick {
                (5, 1)
            } else {
                (WIDE_UPDATES, WIDE_ROUNDS)
            };
            let subscribers = WIDE_SUBSCRIBERS.min(open_file_limit().saturating_sub(SPARE_FILES));
            eprintln!("update → SSE latency, {subscribers} subscribers of one task ...");
            let result = wide::run(subscribers, updates, WIDE_INTERVAL, rounds).await;
            report_wide(subscribers, &result);
        }
    });
    // Other work on the machine slows both columns alike, but says how noisy the run was.
    println!(
        "\nLoad average (1 min) before / after the run: {load_before} / {}",
        load_average()
    );
}

/// The 1-minute load average from `/proc/loadavg`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn report_creation(creation: &creation::Result) {
    let ratio = |rate: f64| 100.0 * rate / creation.bare;
    println!(
        "| Task creation, `POST /api/tasks` (noop, SQLite), {} keep-alive connections | {:.0} req/s | {:.0} req/s | {:.0} % (target ≥ 50 %) |",
        creation::CONNECTIONS,
        creation.tasklane,
        creation.bare,
        ratio(creation.tasklane)
    );
    println!(
        "| … bare hyper that only stores the task (one `SqliteStore::create`, nothing else) | {:.0} req/s | | {:.0} % (tasklane: {:.0} % of it) |",
        creation.bare_durable,
        ratio(creation.bare_durable),
        100.0 * creation.tasklane / creation.bare_durable
    );
    println!(
        "| … tasklane with the per-user creation rate limit on but not reached | {:.0} req/s | | {:.0} % of tasklane with it off (target ≥ 90 %) |",
        creation.tasklane_rate_limited,
        100.0 * creation.tasklane_rate_limited / creation.tasklane
    );
}

fn report_latency(latency: &latency::Result) {
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    let row = |name: &str, ours: Duration, bare: Duration, target: &str| {
        println!(
            "| Update → SSE client, {LATENCY_SUBSCRIBERS} subscribers, one update per {} ms, {name} | {}{target} | {} | {:.2}× |",
            5 * LATENCY_INTERVAL.as_millis(),
            ms(ours),
            ms(bare),
            ours.as_secs_f64() / bare.as_secs_f64()
        );
    };
    let (ours, bare, minimal) = (&latency.tasklane, &latency.bare, &latency.minimal);
    row("p50", ours.p50, bare.p50, "");
    row("p99", ours.p99, bare.p99, " (target ≤ 5 ms)");
    row("max", ours.max, bare.max, "");
    println!(
        "| Updates delivered to each subscriber (the rest coalesced into a newer state) | {:.1} % | {:.1} % | |",
        100.0 * latency.tasklane.delivered,
        100.0 * latency.bare.delivered
    );
    println!(
        "| … the least an SSE server can do (one loop writing every socket, no HTTP library, no task per stream), p50 / p99 / max | {} / {} / {} | | tasklane p99: {:.2}× it |",
        ms(minimal.p50),
        ms(minimal.p99),
        ms(minimal.max),
        ours.p99.as_secs_f64() / minimal.p99.as_secs_f64()
    );
    let stored = &latency.minimal_stored;
    println!(
        "| … the same least server committing each update to SQLite first (the same `update_progress` as tasklane's, awaited, then the fan-out) and ending its streams after the final event, p50 / p99 / max | {} / {} / {} | | tasklane p99: {:.2}× it; it: {:.2}× the least server |",
        ms(stored.p50),
        ms(stored.p99),
        ms(stored.max),
        ours.p99.as_secs_f64() / stored.p99.as_secs_f64(),
        stored.p99.as_secs_f64() / minimal.p99.as_secs_f64()
    );
    let ws = &latency.websocket;
    println!(
        "| Update → WebSocket client (`/api/ws`, one connection and one task subscription each), {LATENCY_SUBSCRIBERS} subscribers, p50 / p99 / max | {} / {} / {} | | p99: {:.2}× tasklane over SSE |",
        ms(ws.p50),
        ms(ws.p99),
        ms(ws.max),
        ws.p99.as_secs_f64() / ours.p99.as_secs_f64()
    );
    println!(
        "| … updates delivered to each WebSocket subscriber | {:.1} % | | |",
        100.0 * ws.delivered
    );
    let finals = &latency.final_event;
    println!(
        "| … the final (`complete`) event alone, p50 / p99: tasklane · bare hyper · least server · least server + SQLite, ending its streams after it · WebSocket | {} / {} | {} / {} · {} / {} · {} / {} · {} / {} | tasklane p99: {:.2}× the least server's, {:.2}× the one ending its streams |",
        ms(finals.tasklane.p50),
        ms(finals.tasklane.p99),
        ms(finals.bare.p50),
        ms(finals.bare.p99),
        ms(finals.minimal.p50),
        ms(finals.minimal.p99),
        ms(finals.minimal_stored.p50),
        ms(finals.minimal_stored.p99),
        ms(finals.websocket.p50),
        ms(finals.websocket.p99),
        finals.tasklane.p99.as_secs_f64() / finals.minimal.p99.as_secs_f64(),
        finals.tasklane.p99.as_secs_f64() / finals.minimal_stored.p99.as_secs_f64()
    );
    let floor = &latency.floor;
    println!(
        "| … the least a fan-out costs on this machine (one thread writing plain sockets, one epoll thread reading them; no HTTP, no async runtime, no parsing), p50 / p99 / max | {} / {} / {} | | tasklane p99: {:.2}× it |",
        ms(floor.p50),
        ms(floor.p99),
        ms(floor.max),
        ours.p99.as_secs_f64() / floor.p99.as_secs_f64()
    );
}

fn report_wide(subscribers: usize, result: &wide::Result) {
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    let (ours, least) = (&result.tasklane, &result.minimal);
    for (name, ours, least) in [
        ("p50", ours.p50, least.p50),
        ("p99", ours.p99, least.p99),
        ("max", ours.max, least.max),
    ] {
        println!(
            "| Update → SSE client, {subscribers} subscribers of one task (server in a child process), {name} | {} | least SSE server: {} | {:.2}× |",
            ms(ours),
            ms(least),
            ours.as_secs_f64() / least.as_secs_f64()
        );
    }
    println!(
        "| … updates delivered to each subscriber | {:.1} % | {:.1} % | |",
        100.0 * ours.delivered,
        100.0 * least.delivered
    );
}

fn report_partials(result: &partials::Result) {
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    let (partial, update) = (&result.partial, &result.update);
    let row = |name: &str, ours: Duration, base: Duration, target: &str| {
        println!(
            "| Provider's last byte of a question → `partial` parsed, {PARTIAL_SUBSCRIBERS} subscribers, {PARTIAL_QUESTIONS} questions every {} ms, {} rounds, {name} | {}{target} | {} | {:.2}× |",
            PARTIAL_PACE.as_millis(),
            result.rounds,
            ms(ours),
            ms(base),
            ours.as_secs_f64() / base.as_secs_f64()
        );
    };
    row("p50", partial.p50, update.p50, " (target ≤ 5 ms)");
    row("p99", partial.p99, update.p99, " (target ≤ 25 ms)");
    row("max", partial.max, update.max, "");
    println!(
        "| … partials / updates delivered to each subscriber (baseline column: progress update → SSE on the same server, same subscribers and pace) | {:.1} % | {:.1} % | |",
        100.0 * partial.delivered,
        100.0 * update.delivered
    );
}

fn report_idle(idle: &idle::Result) {
    let kib = |bytes: f64| format!("{:.1} KiB", bytes / 1024.0);
    println!(
        "| {} idle SSE connections: server memory (RSS) per connection | {} (target ≤ 8 KiB) | {} | {:+.1} KiB |",
        idle.connections,
        kib(idle.tasklane.bytes_per_connection),
        kib(idle.bare.bytes_per_connection),
        (idle.tasklane.bytes_per_connection - idle.bare.bytes_per_connection) / 1024.0
    );
    println!(
        "| … the live stream served from bare hyper (`live::task_stream`, no auth, no database) | {} | | {:+.1} KiB |",
        kib(idle.live_only.bytes_per_connection),
        (idle.live_only.bytes_per_connection - idle.bare.bytes_per_connection) / 1024.0
    );
    println!(
        "| {} idle WebSocket connections (`/api/ws`, one task subscription each): server memory (RSS) per connection | {} | {} | {:+.1} KiB (SSE: {}) |",
        idle.connections,
        kib(idle.websocket.bytes_per_connection),
        kib(idle.bare.bytes_per_connection),
        (idle.websocket.bytes_per_connection - idle.bare.bytes_per_connection) / 1024.0,
        kib(idle.tasklane.bytes_per_connection)
    );
    println!(
        "| Database calls during {} s of idling, all connections together (SSE / WebSocket) | {} / {} (target 0) | {} | |",
        idle.idle_for.as_secs(),
        idle.tasklane.idle_queries,
        idle.websocket.idle_queries,
        idle.bare.idle_queries
    );
    println!(
        "| Database calls per connection while it opens | {:.2} | {:.2} | |",
        idle.tasklane.queries_per_connect, idle.bare.queries_per_connect
    );
}

/// The soft `RLIMIT_NOFILE`, read from `/proc/self/limits` (no `unsafe` needed).
fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|line| line.starts_with("Max open files"))
                .and_then(|line| line.split_whitespace().nth(3))
                .and_then(|soft| soft.parse().ok())
        })
        .unwrap_or(1024)
}

# Everyday recipes. `just --list` shows them. Each is a plain command you can also run by hand.

# Run the service: SQLite at ./tasklane.db, offline AI provider unless API keys are set.
run:
    cargo run --release --bin task-http

# All tests, exactly as CI runs them (needs PostgreSQL on 127.0.0.1:5432; see README).
test:
    TASKLANE_TEST_POSTGRES=${TASKLANE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test} cargo test --workspace

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Every benchmark; numbers go into docs/benchmarks.md.
bench:
    cargo bench -p task-store --bench store
    cargo bench -p task-runtime --bench drain
    cargo bench -p task-http --bench http
    TASKLANE_TEST_POSTGRES=${TASKLANE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test} cargo bench -p task-postgres --bench drain

# The full CI script.
ci:
    bash .ci/run

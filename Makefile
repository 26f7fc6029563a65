# Task runner for Trace. Every recipe is a thin wrapper over cargo or a script
# under scripts/, so that CI and developers run exactly the same commands.

.PHONY: deps demo test build examples bench fmt lint chaos

# Install the wasm target, PostgreSQL and cargo-nextest when they are missing.
deps:
	scripts/install-deps.sh

# Start the platform, ingest the recorded mainnet data, run the example UDF
# over it and print what it found.
demo: deps build
	scripts/demo.sh

# Formatting, clippy, the example UDFs and every test of the workspace.
test: deps
	scripts/test.sh

# The long chaos run: the erc20 job under many more kills over a longer run,
# with task wake-ups dropped too (recovered by the reconciler after five
# minutes); prints its report. TRACE_CHAOS_SEED=N replays a seed's plan. The
# short form runs in `make test`. See docs/reliability.md.
chaos: deps
	cargo build --workspace --bins
	TRACE_CHAOS=long cargo nextest run -p trace-tests --test chaos --no-capture

# Build every service, the CLI and the tests (dev profile).
build:
	cargo build --workspace

# Build the example UDFs into WebAssembly components.
examples:
	cd examples/udfs && cargo build --release --target wasm32-wasip2

# Run the host benchmarks: per-task instantiation and wasm against native.
bench:
	cargo bench -p trace-host --bench udf

# Format the workspace and the example UDFs.
fmt:
	cargo fmt --all
	cd examples/udfs && cargo fmt --all

# Clippy over every target with warnings denied, as CI runs it.
lint:
	cargo clippy --workspace --all-targets -- -D warnings

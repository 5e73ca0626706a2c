# sgmp: the test command is `make test` (also what CI runs through .ci/run).
CARGO ?= cargo
SIM_SEEDS ?= 20000

.PHONY: demo all build test fmt fmt-check lint doc bench sim clean

all: build

build:
	$(CARGO) build --workspace --all-targets

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

# Formatting, clippy with -D warnings, docs, then every test of the workspace.
test: fmt-check lint doc
	$(CARGO) test --workspace

# A longer simulator batch than the one in `make test`.
sim:
	$(CARGO) run --release -p sgmp-tools --bin sgmp-sim -- --seeds $(SIM_SEEDS) --nodes 5 --json

bench:
	$(CARGO) bench -p sgmp-benches

clean:
	$(CARGO) clean

# Five sgmpd on 127.0.0.1: first view, a SIGKILL, the new view, a join, a summary.
demo:
	$(CARGO) build --release -p sgmp-tools --bin sgmpd --bin sgmpctl
	bash tools/demo.sh

# sgmp: the test command is `make test` (also what CI runs through .ci/run).
CARGO ?= cargo
SIM_SEEDS ?= 20000

.PHONY: demo all build test fmt fmt-check lint doc bench sim clean header c-example valgrind-c deny

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

# Formatting, clippy with -D warnings, docs, every test of the workspace (doctests
# included), the Rust example (membership/examples/watch.rs), then the C example (under
# valgrind's memcheck when valgrind is installed).
test: fmt-check lint doc
	$(CARGO) test --workspace
	$(CARGO) test -p sgmp-membership --features stream --lib node::event
	timeout 120 $(CARGO) run -q -p sgmp-membership --example watch
	$(MAKE) c-example
	@if command -v valgrind >/dev/null 2>&1; then $(MAKE) valgrind-c; else echo "valgrind not installed: skipping valgrind-c"; fi
	@if command -v cargo-deny >/dev/null 2>&1; then $(MAKE) deny; else echo "cargo-deny not installed: skipping deny (cargo install cargo-deny --locked)"; fi

# Licenses, duplicate versions (warnings) and sources of the dependency tree, offline
# (deny.toml). Needs cargo-deny (`cargo install cargo-deny --locked`: about 6 minutes of
# building on dev-2c, so CI does not install it; `make test` runs this when it is
# installed). Advisories need the network: `cargo deny check advisories`.
deny:
	$(CARGO) deny --offline check licenses bans sources

# libsgmp (cdylib + static library) and the C example that embeds three nodes.
C_OUT := target/c
CC ?= cc
c-example:
	$(CARGO) build -p sgmp-capi
	mkdir -p $(C_OUT)
	$(CC) -std=c11 -Wall -Wextra -Werror -I membership/include membership/examples/c/three_nodes.c \
		-o $(C_OUT)/three_nodes -Ltarget/debug -lsgmp -Wl,-rpath,$(CURDIR)/target/debug
	timeout 120 $(C_OUT)/three_nodes
	$(CC) -std=c11 -Wall -Wextra -Werror -I membership/include membership/examples/c/three_nodes.c \
		-o $(C_OUT)/three_nodes_static target/debug/libsgmp.a -lpthread -ldl -lm
	timeout 120 $(C_OUT)/three_nodes_static > /dev/null

# The C example under memcheck: no invalid accesses, no definite leaks.
valgrind-c: c-example
	SGMP_TIME_SCALE=10 timeout 600 valgrind --tool=memcheck --leak-check=full \
		--errors-for-leak-kinds=definite --error-exitcode=3 --quiet $(C_OUT)/three_nodes

# Regenerates membership/include/sgmp.h from membership/capi/src/lib.rs with cbindgen.
header:
	SGMP_WRITE_HEADER=1 $(CARGO) test -p sgmp-capi header_is_current

# A longer simulator batch than the one in `make test`.
sim:
	$(CARGO) run --profile sim -p sgmp-tools --bin sgmp-sim -- --seeds $(SIM_SEEDS) --nodes 5 --min-eligible 95 --json

# Every figure of BENCHMARKS.md and the plots in docs/bench/ (JSON reports there too),
# bounded to about fifteen minutes: criterion benches with short settings, the allocation
# report, then sgmp-load transport, view-change for N in BENCH_NODES, join, churn, counts,
# pattern (N = 5, 17), clients (10k; 1k to 100k for the scaling plot; flapping), and the SVG plots.
BENCH_OUT ?= docs/bench
BENCH_NODES ?= 3 5 9 17 33 63
BENCH_ROUNDS ?= 40
SGMP_LOAD := target/release/sgmp-load
bench:
	$(CARGO) build --release -p sgmp-tools --bin sgmp-load --bin sgmpd
	mkdir -p $(BENCH_OUT)
	$(CARGO) bench -p sgmp-benches --bench engine --bench transport --bench node_core -- --warm-up-time 0.2 --measurement-time 0.5 --sample-size 10 --noplot
	$(CARGO) bench -p sgmp-benches --bench alloc
	$(CARGO) bench -p sgmp-benches --bench alloc -- --json > $(BENCH_OUT)/alloc.json
	timeout 120 $(SGMP_LOAD) transport --seconds 10 --json > $(BENCH_OUT)/transport.json
	for n in $(BENCH_NODES); do \
	  timeout 300 $(SGMP_LOAD) view-change --nodes $$n --rounds $(BENCH_ROUNDS) --json \
	    > $(BENCH_OUT)/view_change_$$n.json || exit 1; \
	done
	timeout 300 $(SGMP_LOAD) view-change --nodes 5 --rounds $(BENCH_ROUNDS) --backend process --json \
	  > $(BENCH_OUT)/view_change_process_5.json
	timeout 300 $(SGMP_LOAD) join --nodes 5 --rounds 50 --json > $(BENCH_OUT)/join.json
	timeout 120 $(SGMP_LOAD) churn --nodes 41 --churners 20 --seconds 5 --json > $(BENCH_OUT)/churn.json
	timeout 300 $(SGMP_LOAD) counts --json > $(BENCH_OUT)/counts.json
	for n in 5 17; do \
	  timeout 120 $(SGMP_LOAD) pattern --nodes $$n --rounds 200 --passes 3 --json \
	    > $(BENCH_OUT)/pattern_$$n.json || exit 1; \
	done
	timeout 600 $(SGMP_LOAD) clients --clients 10000 --core 5 --seconds 60 --churn 500 --hold 60 --json \
	  > $(BENCH_OUT)/clients.json
	for n in 1000 10000; do \
	  timeout 300 $(SGMP_LOAD) clients --clients $$n --core 5 --seconds 10 --churn 600 --json \
	    > $(BENCH_OUT)/clients_$$n.json || exit 1; \
	done
	timeout 300 $(SGMP_LOAD) clients --clients 30000 --core 5 --seconds 10 --churn 2000 --json \
	  > $(BENCH_OUT)/clients_30000.json
	timeout 600 $(SGMP_LOAD) clients --clients 100000 --core 5 --seconds 60 --churn 2000 --json \
	  > $(BENCH_OUT)/clients_100000.json
	timeout 600 $(SGMP_LOAD) clients --flap-percent 1 --flap-period-s 20 --json \
	  > $(BENCH_OUT)/clients_flap.json
	$(SGMP_LOAD) plots --from $(BENCH_OUT)/view_change_[0-9]*.json $(BENCH_OUT)/counts.json \
	  $(BENCH_OUT)/churn.json $(BENCH_OUT)/clients_1000.json $(BENCH_OUT)/clients_10000.json \
	  $(BENCH_OUT)/clients_30000.json $(BENCH_OUT)/clients_100000.json --out $(BENCH_OUT)

# The cache lines each step of an N = 5 removal touches (code, stack, the cores' bodies,
# their heap buffers, the rest), before its first datagram and after: deterministic, so
# a change's effect on a step's footprint shows without the noise of a timing
# (docs/bench/view_change_perf.md §16). About 3 minutes; needs valgrind and python3.
# FOOTPRINT_N=17 FOOTPRINT_REMOVALS=1 (about 5 minutes) shows what grows with N; the
# step names for FOOTPRINT_STEPS are those of the table (the lengths change with N).
.PHONY: footprint
FOOTPRINT_N ?= 5
FOOTPRINT_REMOVALS ?= 3
FOOTPRINT_STEPS ?= member <- 118 B,mgr <- 99 B
footprint:
	$(CARGO) build --release -p sgmp-benches --example footprint
	valgrind --tool=lackey --trace-mem=yes --log-fd=2 target/release/examples/footprint \
	  $(FOOTPRINT_N) $(FOOTPRINT_REMOVALS) 2>&1 >/dev/null \
	  | python3 benches/footprint.py target/release/examples/footprint --functions "$(FOOTPRINT_STEPS)"

clean:
	$(CARGO) clean

# Deep model check of the real engine (stateright, release build): 3 and 4 processes,
# with and without a joiner, and 5 founders with two crashes (with and without a false
# suspicion), MODEL_SECS seconds each. Results: docs/VERIFICATION.md.
MODEL_SECS ?= 900
.PHONY: check-model fuzz
check-model:
	SGMP_MODEL_SECS=$(MODEL_SECS) $(CARGO) test --release -p sgmp-tests --test model_check -- --ignored --nocapture --test-threads 1

# cargo-fuzz (needs nightly: `rustup toolchain install nightly`, `cargo install cargo-fuzz`):
# each target for FUZZ_SECS seconds, starting from the committed corpus
# (tests/fuzz/corpus/<target>); new inputs go to tests/fuzz/target/new-corpus/<target>.
FUZZ_SECS ?= 120
FUZZ_TARGETS = transport_datagram membership_msg engine_sequence node_payloads
fuzz:
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p tests/fuzz/target/new-corpus/$$t && \
	  $(CARGO) +nightly fuzz run --fuzz-dir tests/fuzz -O $$t \
	    tests/fuzz/target/new-corpus/$$t tests/fuzz/corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECS) -print_final_stats=1 || exit 1; \
	done

# Five sgmpd on 127.0.0.1: first view, a SIGKILL, the new view, a join, a summary.
demo:
	$(CARGO) build --release -p sgmp-tools --bin sgmpd --bin sgmpctl
	bash tools/demo.sh

# Chaos on real processes: sgmpd on 127.0.0.1 under a seeded schedule of SIGKILL,
# SIGSTOP/SIGCONT, loss, duplication, reordering, partitions, restarts and joins, then
# a heal phase, the Strong GMP checks over the event logs and a liveness check.
# CHAOS_SECS (default 300), CHAOS_SEED (default: from the clock, printed), CHAOS_NODES.
CHAOS_SECS ?= 300
CHAOS_NODES ?= 5
CHAOS_SEED ?=
.PHONY: chaos
chaos:
	$(CARGO) build --release -p sgmp-tools --bin sgmpd --bin sgmpctl --bin sgmp-chaos
	target/release/sgmp-chaos --seconds $(CHAOS_SECS) --nodes $(CHAOS_NODES) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED))

# Mutation testing (cargo-mutants, pinned; installed on first use). Bounded: one job,
# a test timeout per mutant (MUTANTS_ENGINE_TIMEOUT = 30 s for the engine, whose unit
# tests take 1-3 s at opt-level 0; MUTANTS_TIMEOUT = 120 s for the transport, whose
# tests take 30-50 s and for the simulator pass), no baseline run. Each mutant is
# built with the test profile at opt-level 0 (CARGO_PROFILE_TEST_OPT_LEVEL=0) and only
# the test targets that run are built (--cargo-arg), so a mutant costs one incremental
# compile of the mutated crate (about 4 s) plus its tests; the first mutant of a run
# builds everything once in cargo-mutants' copy of the tree (5-8 minutes on a busy
# 2-core machine). Two passes, the table in docs/VERIFICATION.md ("Mutation testing"):
#  - mutants-engine: the engine (membership/src/engine/*.rs), view.rs and detector.rs
#    against the membership crate's unit tests (engine scenarios on the testkit
#    included): 1031 mutants, 5-12 s each at the 30 s timeout; the full run on a busy
#    2-core machine took 95 minutes (1f13401), i.e. about 1.5-2 hours;
#  - mutants-recovery: the node's recovery from total failure (node/recovery.rs,
#    recovery/msg.rs) and cold start (node/coldstart.rs) against the membership
#    crate's unit tests (the socket tests in node::tests included): 278 mutants,
#    50 minutes on a 2-core machine; the probe-codec mutants break the socket tests,
#    whose 10 s waits run into the 30 s timeout (53 timeouts). Not part of `mutants`
#    (it would add an hour);
#  - mutants-transport: the transport's channel.rs and endpoint.rs (their debug-only
#    `invariants` excluded: assertions only) against its unit tests and its sim, auth,
#    alloc and udp tests: 573 mutants, about 15 s each (shard 0/4: 142 in 35 min),
#    i.e. about 2.5 hours. `make mutants` runs both: about 4-4.5 hours with one job.
# Run one file (MUTANTS_ARGS='-f membership/src/view.rs') or one shard (MUTANTS_SHARD=k/n,
# round-robin, so a shard is a sample of every function). mutants-engine-sim re-checks
# survivors against the simulator's scripted figures and swarm batch (optimized, and
# rebuilding sgmp-tools: 1-2 minutes per mutant); narrow it with MUTANTS_ARGS='-F NAME'.
# Results: target/mutants/<pass>/mutants.out/{caught,missed,timeout,unviable}.txt.
MUTANTS_VERSION := 27.1.0
MUTANTS_TIMEOUT ?= 120
MUTANTS_ENGINE_TIMEOUT ?= 30
MUTANTS_OUT ?= target/mutants
MUTANTS_SHARD ?=
MUTANTS_ARGS ?=
MUTANTS_COMMON = -j 1 --build-timeout 900 --baseline skip \
	$(if $(MUTANTS_SHARD),--shard $(MUTANTS_SHARD) --sharding round-robin) $(MUTANTS_ARGS)
MUTANTS_FAST = CARGO_PROFILE_TEST_OPT_LEVEL=0
.PHONY: mutants mutants-install mutants-engine mutants-transport mutants-engine-sim mutants-recovery
mutants: mutants-engine mutants-transport

mutants-install:
	@$(CARGO) mutants --version 2>/dev/null | grep -q "cargo-mutants $(MUTANTS_VERSION)" || \
	  $(CARGO) install cargo-mutants --locked --version $(MUTANTS_VERSION)

mutants-engine: mutants-install
	mkdir -p $(MUTANTS_OUT)/membership
	$(MUTANTS_FAST) $(CARGO) mutants $(MUTANTS_COMMON) --timeout $(MUTANTS_ENGINE_TIMEOUT) \
	  -f 'membership/src/engine/*.rs' -f membership/src/view.rs -f membership/src/detector.rs \
	  --test-package sgmp-membership --cargo-arg=--lib -o $(MUTANTS_OUT)/membership

mutants-recovery: mutants-install
	mkdir -p $(MUTANTS_OUT)/recovery
	$(MUTANTS_FAST) $(CARGO) mutants $(MUTANTS_COMMON) --timeout $(MUTANTS_ENGINE_TIMEOUT) \
	  -f membership/src/node/recovery.rs -f membership/src/node/recovery/msg.rs \
	  -f membership/src/node/coldstart.rs \
	  --test-package sgmp-membership --cargo-arg=--lib -o $(MUTANTS_OUT)/recovery

mutants-transport: mutants-install
	mkdir -p $(MUTANTS_OUT)/transport
	$(MUTANTS_FAST) $(CARGO) mutants $(MUTANTS_COMMON) --timeout $(MUTANTS_TIMEOUT) \
	  -f transport/src/channel.rs -f transport/src/endpoint.rs -E invariants \
	  --test-package sgmp-transport --cargo-arg=--lib --cargo-arg=--test=sim \
	  --cargo-arg=--test=auth --cargo-arg=--test=alloc --cargo-arg=--test=udp \
	  -o $(MUTANTS_OUT)/transport

mutants-engine-sim: mutants-install
	mkdir -p $(MUTANTS_OUT)/membership-sim
	$(CARGO) mutants $(MUTANTS_COMMON) --timeout $(MUTANTS_TIMEOUT) \
	  -f 'membership/src/engine/*.rs' -f membership/src/view.rs -f membership/src/detector.rs \
	  --test-package sgmp-membership --test-package sgmp-tools \
	  --cargo-test-arg=--lib --cargo-test-arg=--test=message_counts --cargo-test-arg=--test=alloc \
	  --cargo-test-arg=--test=sim_figures --cargo-test-arg=--test=sim_batch \
	  -o $(MUTANTS_OUT)/membership-sim

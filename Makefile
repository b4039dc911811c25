# pg_reco: two commands on a fresh machine.
#   make demo   bootstrap, build and install, start a cluster, load sample payloads, show results
#   make test   bootstrap, then every test layer
SHELL := /bin/bash
PG_MAJOR ?= 15
PG_CONFIG ?= /usr/lib/postgresql/$(PG_MAJOR)/bin/pg_config
PGRX_DATA := $(CURDIR)/target/pgrx-test-data
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: demo test test-layers bootstrap install install-release test-fmt test-lint test-engine test-pgrx test-regress test-integration test-citus bench cluster-stop clean

bootstrap:
	@scripts/bootstrap

# Installs by renaming each built file over the installed one (scripts/install says why: cargo
# pgrx install writes the library in place, and a backend that has it loaded crashes).
install: bootstrap
	scripts/install $(PG_CONFIG)

install-release: bootstrap
	scripts/install --release $(PG_CONFIG)

# cargo pgrx test installs the library itself, in place; unlinking it first leaves running
# backends the old file, as a package manager does (test-pgrx only: scripts/install renames)
UNLINK_LIBRARY = rm -f "$$($(PG_CONFIG) --pkglibdir)/pg_reco.so"

demo: install-release
	scripts/cluster restart
	scripts/demo

# every layer, then one closing line counting all of them: "total: N passed, M failed"
test:
	@mkdir -p target
	@set -o pipefail; $(MAKE) --no-print-directory test-layers 2>&1 | tee target/test.log; status=$$?; \
	  scripts/cluster stop; scripts/citus stop; scripts/test-summary target/test.log; exit $$status

# the Citus layer runs after the others where Citus can be had: its source snapshot beside the
# repository (../shared/citus) or Citus's own packages
CITUS_AVAILABLE := $(or $(wildcard ../shared/citus/citus-13.2.2-trimmed.tar.xz),$(wildcard $(shell $(PG_CONFIG) --sharedir 2>/dev/null)/extension/citus.control))
test-layers: bootstrap test-fmt test-lint test-engine test-pgrx test-regress test-integration $(if $(CITUS_AVAILABLE),test-citus)

# formatting is part of the suite (rustfmt.toml): run cargo fmt --all before committing
test-fmt:
	cargo fmt --all -- --check

# lints are part of the suite too: the workspace's [lints] (Cargo.toml) and clippy's defaults,
# warnings as errors, every crate and target (tests, examples)
test-lint:
	cargo clippy --workspace --all-targets -- -D warnings

test-engine:
	cargo test -p reco-engine

# cargo pgrx test runs its cluster as the postgres OS user; its data directory must be theirs.
test-pgrx:
	scripts/pg-access $(PGRX_DATA)
	$(UNLINK_LIBRARY)
	cargo pgrx test pg$(PG_MAJOR) -p pg_reco --runas postgres --pgdata $(PGRX_DATA)/test

# pg_regress against the project cluster (cargo pgrx regress 0.18.1 ignores --runas at start-up),
# once per server clock. The clock is pinned (libfaketime), so every now() the tests and the
# serving calls see is fixed, whatever the real date and hour; three instants on different
# weekdays and hours show that the answers do not depend on which.
REGRESS_CLOCKS ?= 2026-11-26T02:30 2027-03-01T11:47 2026-06-14T19:30
test-regress: install
	scripts/regress --clocks "$(REGRESS_CLOCKS)"

test-integration: install
	scripts/cluster restart
	RECO_TEST_DSN="$$(scripts/cluster url)" cargo test -p pg_reco_integration -- --test-threads=1

# a fresh 3-node Citus cluster (scripts/citus builds Citus when missing) beside the single-node
# one, which holds the same data for the parity checks (tests/integration/tests/citus.rs)
test-citus: install
	scripts/cluster restart
	scripts/citus destroy
	scripts/citus start
	RECO_TEST_DSN="$$(scripts/cluster url)" RECO_CITUS_DSN="$$(scripts/citus url)" \
	  cargo test -p pg_reco_integration --features citus --test citus -- --test-threads=1; \
	  status=$$?; scripts/citus stop; exit $$status

bench: install-release
	scripts/cluster restart
	bench/ingest.sh
	bench/prefs.sh

cluster-stop:
	scripts/cluster stop

clean: cluster-stop
	cargo clean

# Two commands matter on a fresh machine: `make run` and `make test`.
CARGO ?= cargo
BIN := target/release/satchel

.PHONY: run test build release clippy fmt bench conformance clean

## run: build the release binary and serve ./pb_data on 127.0.0.1:8090
run: release
	$(BIN) serve --dir ./pb_data --http 127.0.0.1:8090

## test: every test: unit tests, integration tests (they start the real binary),
## and the unit tests of the vendored tiny_http
test: release
	$(CARGO) test --release --all-targets
	$(CARGO) test --release -p tiny_http --lib

build:
	$(CARGO) build

release:
	$(CARGO) build --release

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## conformance: the shared black-box suite against the release binary
conformance: release
	../shared/conformance/run $(BIN)

## bench: side-by-side benchmark against a reference binary (REF=path)
bench: release
	../shared/bench/run $(BIN) $(REF)

clean:
	$(CARGO) clean

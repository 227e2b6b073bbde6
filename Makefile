# The commands of the README. Each installs what is missing first.
.PHONY: run test lint fmt check

## Start the AWS emulator and the local API at http://127.0.0.1:3000/api/v1/ (Ctrl-C stops both).
run:
	infra/local/stack.sh run

## Start a private emulator and router on free ports, run every test, stop them.
test:
	infra/local/stack.sh test

## Formatting and lints as CI checks them.
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

## Everything CI runs.
check: lint test

# The commands of the README. Each installs what is missing first.
.PHONY: unused-deps run test test-faults sam-local sam-local-test sam-invoke bench explore fuzz lint lint-template fmt check deploy-tools package

export SAM_CLI_TELEMETRY := 0

## Start the AWS emulator and the local API at http://127.0.0.1:3000/api/v1/ (Ctrl-C stops both).
run:
	infra/local/stack.sh run

## Start a private emulator and router on free ports, run every test, stop them.
test:
	infra/local/stack.sh test

## The whole suite with 5 % of DynamoDB and SNS calls failing (throttling, internal errors)
## and 5 % of writes applied with their answers lost: tests expecting success may see 503;
## the run fails if any request was answered 500 or a fault test (no double count) fails.
test-faults:
	EMULATOR_FAULT_RATE=$${EMULATOR_FAULT_RATE:-0.05} EMULATOR_APPLIED_FAULT_RATE=$${EMULATOR_APPLIED_FAULT_RATE:-0.05} infra/local/stack.sh test

## The functions in Docker containers through `sam local start-api` (and `start-lambda`), against
## the emulator; installs and starts Docker if needed (root). Ctrl-C stops everything it started.
sam-local:
	infra/sam-local/stack.sh run

## The black-box tests through `sam local start-api` on free ports (what CI runs after make test).
sam-local-test:
	infra/sam-local/stack.sh test

## `sam local invoke` one function with an event, against a running `make sam-local`, e.g.
## make sam-invoke FUNCTION=FeedbackFunction EVENT=infra/events/delivery-failure.json
sam-invoke:
	infra/sam-local/stack.sh invoke "$(FUNCTION)" "$(EVENT)"

## Optimised build, then cold start against the floor, footprint, latency, AWS calls, fan-out, CPU
## (time and callgrind instructions), cost -> docs/BENCHMARKS.md. BENCH_COLD=1 in the bench's
## environment runs the cold-start tables alone; BENCH_STARTS=51 starts each row 51 times (default 15).
bench:
	infra/local/stack.sh bench

## The explorer: seeded clients through the real handlers, invariants at every quiescent point, e.g.
## make explore SEED=7 STEPS=100000 MODE=memory (replayable) or MODE=emulator (starts its own emulator).
explore:
	SEED=$(SEED) STEPS=$(STEPS) MODE=$(MODE) SEEDS=$(SEEDS) CLIENTS=$(CLIENTS) infra/explore/run.sh

## Fuzz a running `make run` stack with schemathesis (openapi.yaml); make test does this too.
fuzz:
	infra/fuzz.sh http://127.0.0.1:$${PORT:-3000}

## Formatting and lints as CI checks them.
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings

## No crate declares a dependency it does not use (cargo-machete, installed into .tools/).
unused-deps:
	@test -x .tools/bin/cargo-machete || cargo install --locked --quiet --version 0.9.2 --root .tools cargo-machete
	.tools/bin/cargo-machete

## The template as AWS would judge it: SAM's validator with its linter, and cfn-lint.
lint-template: deploy-tools
	AWS_DEFAULT_REGION=us-east-1 .venv-deploy/bin/sam validate --lint
	.venv-deploy/bin/cfn-lint template.yaml

fmt:
	cargo fmt --all

## SAM CLI, AWS CLI, cargo-lambda and zig, into .venv-deploy/.
deploy-tools:
	infra/local/stack.sh deploy-tools

## Release arm64 bootstraps for every function, as `sam build` makes them (~9 min from a fresh clone on 2 cores).
package: deploy-tools
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/.venv-deploy/bin:$$PATH" .venv-deploy/bin/sam build
	@for f in .aws-sam/build/*Function/bootstrap; do ls -l "$$f"; done

## Everything CI runs.
check: lint unused-deps lint-template test sam-local-test

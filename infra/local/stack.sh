#!/usr/bin/env bash
# The local stack: moto server (DynamoDB + SNS) and the local API router.
#
#   infra/local/stack.sh run    start both on fixed ports until Ctrl-C
#   infra/local/stack.sh test   start both on free ports, run every test, stop
#   infra/local/stack.sh bench  optimised build, both on free ports, run the benchmarks, stop
#   infra/local/stack.sh env    install the emulator if missing, nothing else
#   infra/local/stack.sh deploy-tools   install SAM CLI, AWS CLI, cargo-lambda
#
# Ports: PORT (router, default 3000), AWS_EMULATOR_PORT (moto, default 5000).
# The emulator models DynamoDB's transaction conflicts (EMULATOR_CONFLICTS=0
# turns that off) and ClientRequestToken (EMULATOR_IDEMPOTENCY_WINDOW_S, 600);
# EMULATOR_FAULT_RATE injects throttling (a transaction's as DynamoDB cancels
# it) and internal errors before a call is served, EMULATOR_APPLIED_FAULT_RATE
# a 500 after it was (EMULATOR_APPLIED_TIMEOUT_SHARE of them, default 0.1, held
# EMULATOR_APPLIED_TIMEOUT_MS, default 2500, to time the client out);
# EMULATOR_DYNAMODB_LATENCY_MS and EMULATOR_SNS_LATENCY_MS ("FIXED" or
# "FIXED+RANDOM" ms) delay every call; EMULATOR_INDEX_LAG_MS delays what index
# queries see (`make test`: 300 ms); EMULATOR_REFUSED_TOKEN_PREFIX makes SNS
# refuse push tokens. All can be changed at run time: GET/POST
# $AWS_ENDPOINT_URL/fidelity/settings (JSON). See infra/local/fidelity.py.
# Everything it installs goes into the project: .venv/ and target/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
VENV="$ROOT/.venv"
LOGDIR="$ROOT/.local"
mkdir -p "$LOGDIR"
PIDS=()

# shellcheck source=lib.sh
. "$ROOT/infra/local/lib.sh"

cmd=${1:-run}
case "$cmd" in
  env)
    ensure_emulator
    ;;
  deploy-tools)
    ensure_deploy_tools
    ;;
  run)
    ensure_emulator
    ensure_free_port "${AWS_EMULATOR_PORT:-5000}" AWS_EMULATOR_PORT
    ensure_free_port "${PORT:-3000}" PORT
    cargo build -p local-api
    trap 'cleanup; exit 0' INT TERM
    trap cleanup EXIT
    start_emulator "${AWS_EMULATOR_PORT:-5000}"
    start_router "${PORT:-3000}"
    log "Ctrl-C stops the emulator and the router."
    wait
    ;;
  test)
    ensure_emulator
    ensure_deploy_tools
    # The emulator's model of AWS itself, checked first (own emulator, ~6 s).
    "$VENV/bin/python" infra/local/test_fidelity.py
    cargo build --workspace --all-targets --features api-tests/stack
    # DynamoDB's indexes trail the table; AWS says usually under a second.
    export EMULATOR_INDEX_LAG_MS=${EMULATOR_INDEX_LAG_MS:-300}
    # Push tokens the tests want refused by "the push service".
    export EMULATOR_REFUSED_TOKEN_PREFIX=refused
    # The suite signs up hundreds of accounts from 127.0.0.1, and the fuzzer
    # registers hundreds of devices to one account; the caps themselves are
    # tested on routers of their own (tests/tests/quotas.rs).
    export SIGNUP_PER_IPV4_LIMIT=${SIGNUP_PER_IPV4_LIMIT:-20000}
    export DEVICE_LIMIT=${DEVICE_LIMIT:-100000} DEVICE_REGISTRATION_LIMIT=${DEVICE_REGISTRATION_LIMIT:-1000000}
    export PUBLISH_CONCURRENCY=${PUBLISH_CONCURRENCY:-50}
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    start_emulator "$(free_port)"
    router_port=$(free_port)
    start_router "$router_port"
    export PUSH_API_URL="http://127.0.0.1:$router_port/api/v1/"
    export LOCAL_API_BIN="$ROOT/target/debug/local-api"
    export DEPLOY_TOOLS_BIN="$ROOT/.venv-deploy/bin"
    export EMULATOR_PYTHON="$VENV/bin/python"
    export ROUTER_LOG_DIR="$LOGDIR/routers-$router_port"
    mkdir -p "$ROUTER_LOG_DIR"
    tests_status=0
    rm -f "$LOGDIR/fuzz.out"
    cargo test --workspace --features api-tests/stack --no-fail-fast 2>&1 | tee "$LOGDIR/cargo-test.log" || tests_status=$?
    faulted=${EMULATOR_FAULT_RATE:-}${EMULATOR_APPLIED_FAULT_RATE:-}
    faults_status=0
    if [ -n "$faulted" ]; then
      # With faults injected, the suite's tests that expect success may see
      # 503: its status is not judged. The fault tests are: each on an
      # emulator of its own with faults of its own, asserting no 500 and no
      # double count (tests/tests/faults.rs, tests/tests/aws_faults.rs).
      echo "== with EMULATOR_FAULT_RATE=${EMULATOR_FAULT_RATE:-0} EMULATOR_APPLIED_FAULT_RATE=${EMULATOR_APPLIED_FAULT_RATE:-0}: suite status $tests_status (503s allowed); the fault tests judge"
      cargo test -p api-tests --features stack --no-fail-fast --test faults --test aws_faults 2>&1 |
        tee "$LOGDIR/cargo-test-faults.log" || faults_status=$?
    fi
    # No request of the whole run may have been answered 500: every one is
    # logged as an internal error by the router that answered it.
    internal=$(cat "$LOGDIR/router-$router_port.log" "$ROUTER_LOG_DIR"/*.log 2>/dev/null |
      grep -c "internal error" || true)
    echo "== internal errors (500) answered in this run: $internal"
    if [ "$internal" -ne 0 ]; then
      summarise 1
      exit 1
    fi
    if [ -n "$faulted" ]; then
      echo "== fault tests: status $faults_status"
      exit "$faults_status"
    fi
    if [ "$tests_status" -ne 0 ]; then
      summarise 0
      exit "$tests_status"
    fi
    echo "== fuzzing the API (schemathesis, openapi.yaml)"
    fuzz_status=0
    "$ROOT/infra/fuzz.sh" "http://127.0.0.1:$router_port" "${FUZZ_EXAMPLES:-120}" 2>&1 |
      tee "$LOGDIR/fuzz.out" || fuzz_status=$?
    summarise "$fuzz_status"
    exit "$fuzz_status"
    ;;
  bench)
    ensure_emulator
    cargo build --profile perf -p register -p tokens -p knock -p feedback -p local-api -p bench -p floor
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    start_emulator "$(free_port)"
    router_port=$(free_port)
    # Measure the paths, not the abuse limits: every limit stays on (so each
    # request takes its counting path, with the default knock log of 10) but
    # out of the bench's reach: its knocks go round 50 tokens, 10 a second
    # each allowed; 200 token creations for one account.
    # The latency loops register and create hundreds to one account; the
    # in-process fan-out and deletion rows set their own caps.
    export KNOCK_LIMIT_WINDOW_SECONDS=1 TOKEN_CREATE_LIMIT=1000000
    export DEVICE_LIMIT=100000 DEVICE_REGISTRATION_LIMIT=1000000 SIGNUP_PER_IPV4_LIMIT=20000 LIVE_TOKEN_LIMIT=100000
    start_router "$router_port" "$ROOT/target/perf/local-api"
    PUSH_API_URL="http://127.0.0.1:$router_port/api/v1/" RELEASE_DIR="$ROOT/target/perf" \
      ROUTER_PID="$ROUTER_PID" "$ROOT/target/perf/bench"
    ;;
  *)
    log "usage: $0 run|test|bench|env|deploy-tools"
    exit 2
    ;;
esac

#!/usr/bin/env bash
# The functions served by the SAM CLI in Docker containers, against the AWS
# emulator: what `sam local` users run.
#
#   infra/sam-local/stack.sh run     make sam-local: serve until Ctrl-C
#   infra/sam-local/stack.sh test    make sam-local-test: serve on free ports,
#                                    run the black-box tests through it, stop
#   infra/sam-local/stack.sh invoke FUNCTION EVENT
#                                    make sam-invoke: `sam local invoke` one
#                                    function with an event file, against the
#                                    emulator of a running `make sam-local`
#
# Installs what is missing first: Docker (Debian's docker.io, started as root
# for this run when no engine answers), a Lambda base image (see
# ensure_base_image), the SAM CLI (.venv-deploy/) and the emulator (.venv/).
# The containers reach the emulator over Docker's default bridge: it listens on
# the bridge's address on this host (docker0), and nowhere else.
#
# Ports: PORT (the API, default 3000), LAMBDA_PORT (Lambda's Invoke API for
# the feedback function, default 3001), AWS_EMULATOR_PORT (default 5000).
# Functions: an x86_64 (or arm64, by host) debug build of the workspace laid
# out as `sam build` lays it out, in .aws-sam/local/; the arm64 release build
# that AWS runs stays with `make package`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
VENV="$ROOT/.venv"
LOGDIR="$ROOT/.local"
BUILD="$ROOT/.aws-sam/local"
# What the running stack's `sam local` commands take, for `make sam-invoke`.
ENV_VARS="$LOGDIR/sam-local-env.json"
PARAMETER_FILE="$LOGDIR/sam-local-parameters"
IMAGE_FILE="$LOGDIR/sam-local-image"
mkdir -p "$LOGDIR"
PIDS=()
SAM_PIDS=()
BEFORE=unset
# shellcheck source=../local/lib.sh
. "$ROOT/infra/local/lib.sh"

SAM="$ROOT/.venv-deploy/bin/sam"
export SAM_CLI_TELEMETRY=0
# The official base image, used when it is already here; never pulled.
OFFICIAL_IMAGE=public.ecr.aws/lambda/provided:al2023
STAND_IN_IMAGE=chatsecure-push/lambda-base:bookworm

as_root() {
  if [ "$(id -u)" -ne 0 ]; then
    log "$1 needs root; run it once as root, or install and start Docker yourself."
    exit 1
  fi
}

apt_install() {
  as_root "Installing $*"
  log "Installing $* (Debian packages) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "$@" >"$LOGDIR/apt.log" 2>&1 ||
    { apt-get update -q >>"$LOGDIR/apt.log" 2>&1 && apt-get install -y -q "$@" >>"$LOGDIR/apt.log" 2>&1; } ||
    { log "apt-get install $* failed; see $LOGDIR/apt.log"; exit 1; }
}

# A Docker engine that answers; started here (and stopped on exit) if none does.
ensure_docker() {
  docker info >/dev/null 2>&1 && return 0
  command -v dockerd >/dev/null || apt_install docker.io
  command -v docker >/dev/null || apt_install docker.io
  as_root "Starting the Docker engine"
  log "Starting the Docker engine (dockerd; log: $LOGDIR/dockerd.log) ..."
  # In a session of its own: Ctrl-C must not stop the engine before the SAM
  # CLI has stopped its containers (stop_sam stops it last).
  setsid dockerd >"$LOGDIR/dockerd.log" 2>&1 &
  PIDS+=($!)
  local i
  for i in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  log "The Docker engine did not start; see $LOGDIR/dockerd.log"
  exit 1
}

# INVOKE_IMAGE: the official Lambda base image if it is already present;
# otherwise a stand-in built once from Debian packages (a minimal Debian root
# filesystem with CA certificates, which the SDK's TLS set-up needs). The SAM
# CLI layers its Runtime Interface Emulator onto either.
ensure_base_image() {
  if docker image inspect "$OFFICIAL_IMAGE" >/dev/null 2>&1; then
    INVOKE_IMAGE=$OFFICIAL_IMAGE
    return 0
  fi
  INVOKE_IMAGE=$STAND_IN_IMAGE
  docker image inspect "$STAND_IN_IMAGE" >/dev/null 2>&1 && return 0
  command -v debootstrap >/dev/null || apt_install debootstrap
  as_root "Building the stand-in Lambda base image"
  local rootfs="$LOGDIR/lambda-rootfs"
  log "Building $STAND_IN_IMAGE from Debian packages (debootstrap, ~1 min) ..."
  rm -rf "$rootfs"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" \
    "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$LOGDIR/debootstrap.log" 2>&1 ||
    { log "debootstrap failed; see $LOGDIR/debootstrap.log"; exit 1; }
  tar -C "$rootfs" -c . | docker import - "$STAND_IN_IMAGE" >/dev/null
  rm -rf "$rootfs"
}

# The functions, built for this host and laid out as `sam build` would.
build_functions() {
  local arch
  case "$(uname -m)" in
    x86_64) arch=x86_64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) log "No Lambda architecture for $(uname -m)"; exit 1 ;;
  esac
  # The same build as `make test`'s, so both share one set of artifacts.
  cargo build --workspace --all-targets --features api-tests/stack
  rm -rf "$BUILD"
  local name binary
  "$ROOT/.venv-deploy/bin/python" infra/sam-local/template.py template.yaml "$BUILD" "$arch" |
    while read -r name binary; do
      mkdir -p "$BUILD/$name"
      ln -f "target/debug/$binary" "$BUILD/$name/bootstrap" 2>/dev/null ||
        cp "target/debug/$binary" "$BUILD/$name/bootstrap"
    done
}

# set_up_emulator: the table and platform applications, as `make run` makes
# them; writes the variables and parameters every `sam local` command takes.
set_up_emulator() {
  local settings
  settings=$(target/debug/local-api setup)
  TABLE_NAME=$(sed -n 's/^TABLE_NAME=//p' <<<"$settings")
  APNS_ARN=$(sed -n 's/^APNS_PLATFORM_APPLICATION_ARN=//p' <<<"$settings")
  GCM_ARN=$(sed -n 's/^GCM_PLATFORM_APPLICATION_ARN=//p' <<<"$settings")
  DEFAULT_APP_NAME=$(sed -n 's/^DEFAULT_APP_NAME=//p' <<<"$settings")
  APPS=$(sed -n 's/^APPS=//p' <<<"$settings")
  SOURCE_KEY_SECRET=$(sed -n 's/^SOURCE_KEY_SECRET=//p' <<<"$settings")
  # The template declares AWS_ENDPOINT_URL only when LocalEndpointUrl is set;
  # SAM CLI does not evaluate that condition, so the value comes from here;
  # nor does it make the SourceKeySecret resource: the set-up's secret.
  cat >"$ENV_VARS" <<JSON
{"Parameters": {"AWS_ENDPOINT_URL": "$AWS_ENDPOINT_URL", "TABLE_NAME": "$TABLE_NAME", "SOURCE_KEY_SECRET": "$SOURCE_KEY_SECRET"}}
JSON
  PARAMETERS=(
    "LocalEndpointUrl=$AWS_ENDPOINT_URL"
    "ApnsPlatformApplicationArn=$APNS_ARN"
    "GcmPlatformApplicationArn=$GCM_ARN"
    "DefaultAppName=$DEFAULT_APP_NAME"
    "Apps=$APPS"
    "PlatformApplicationPrefix=chatsecure-push-local"
    "PubsubJid=pubsub.localhost"
    "$@"
  )
  printf '%s\n' "${PARAMETERS[@]}" >"$PARAMETER_FILE"
  echo "$INVOKE_IMAGE" >"$IMAGE_FILE"
}

# invoke FUNCTION EVENT [OUTPUT]: `sam local invoke` with the settings of the
# running stack; the function's answer goes to OUTPUT (default: stdout).
invoke() {
  sam_options
  log "+ sam local invoke $1 -e $2 ${SAM_OPTIONS[*]}"
  "$SAM" local invoke "$1" -e "$2" "${SAM_OPTIONS[@]}" >"${3:-/dev/stdout}" 2>>"$LOGDIR/sam-invoke.log"
}

# Invokes each function once with `sam local invoke`, as the README shows:
# the knock function with API Gateway events that `sam local generate-event`
# makes, the feedback function with a sample event of infra/events/.
invoke_each_function() {
  local dir="$LOGDIR/sam-events" answer
  mkdir -p "$dir"
  "$SAM" local generate-event apigateway http-api-proxy --method GET --path api/v1/pubsub/ \
    --body "" >"$dir/pubsub.json"
  invoke KnockFunction "$dir/pubsub.json" "$dir/pubsub.out"
  grep -q '"statusCode": *200' "$dir/pubsub.out" && grep -q 'pubsub.localhost' "$dir/pubsub.out" ||
    { log "sam local invoke KnockFunction: $(cat "$dir/pubsub.out")"; return 1; }
  "$SAM" local generate-event apigateway http-api-proxy --method POST --path api/v1/tokens/ \
    --body '{"name": "x"}' >"$dir/tokens.json"
  invoke TokensFunction "$dir/tokens.json" "$dir/tokens.out"
  grep -q '"statusCode": *401' "$dir/tokens.out" ||
    { log "sam local invoke TokensFunction: $(cat "$dir/tokens.out")"; return 1; }
  "$SAM" local generate-event apigateway http-api-proxy --method POST --path api/v1/accounts/ \
    --body '{"username": "sam-invoke", "password": "correct-horse"}' >"$dir/accounts.json"
  invoke RegisterFunction "$dir/accounts.json" "$dir/accounts.out"
  grep -q '"statusCode": *201' "$dir/accounts.out" ||
    { log "sam local invoke RegisterFunction: $(cat "$dir/accounts.out")"; return 1; }
  invoke FeedbackFunction infra/events/malformed.json "$dir/feedback.out"
  echo "sam local invoke: each function answered as expected"
}

# The options every `sam local` command here takes.
sam_options() {
  SAM_OPTIONS=(-t "$BUILD/template.yaml" --env-vars "$ENV_VARS" --skip-pull-image
    --parameter-overrides "${PARAMETERS[*]}")
  if [ "$INVOKE_IMAGE" != "$OFFICIAL_IMAGE" ]; then
    SAM_OPTIONS+=(--invoke-image "$INVOKE_IMAGE")
  fi
}

# start_sam API_PORT LAMBDA_PORT: `sam local start-api` (one warm container
# per function) and `sam local start-lambda` (Lambda's Invoke API, for the
# feedback function, which no route fronts).
start_sam() {
  local api_port=$1 lambda_port=$2
  BEFORE=$(docker ps -q --filter label=sam.cli.container.type=lambda | sort)
  sam_options
  log "+ sam local start-api ${SAM_OPTIONS[*]} --host 127.0.0.1 --port $api_port --warm-containers EAGER"
  "$SAM" local start-api "${SAM_OPTIONS[@]}" --host 127.0.0.1 --port "$api_port" \
    --warm-containers EAGER >"$LOGDIR/sam-api-$api_port.log" 2>&1 &
  SAM_PIDS+=($!)
  "$SAM" local start-lambda "${SAM_OPTIONS[@]}" --host 127.0.0.1 --port "$lambda_port" \
    --warm-containers LAZY >"$LOGDIR/sam-lambda-$lambda_port.log" 2>&1 &
  SAM_PIDS+=($!)
  if ! wait_for_url "http://127.0.0.1:$api_port/api/v1/pubsub/" 120; then
    log "sam local start-api did not answer; see $LOGDIR/sam-api-$api_port.log"
    exit 1
  fi
  if ! wait_for_port "$lambda_port" 60; then
    log "sam local start-lambda did not start; see $LOGDIR/sam-lambda-$lambda_port.log"
    exit 1
  fi
  echo "Listening on http://127.0.0.1:$api_port/api/v1/"
  echo "App $DEFAULT_APP_NAME: http://127.0.0.1:$api_port/$DEFAULT_APP_NAME/api/v1/"
  local app
  for app in ${APPS//;/ }; do
    echo "App ${app%%=*}: http://127.0.0.1:$api_port/${app%%=*}/api/v1/"
  done
  echo "Lambda Invoke API on http://127.0.0.1:$lambda_port (FeedbackFunction)"
}

# Stops the SAM CLI, then the containers it leaves (those that were not there
# before it started), then the emulator and the engine if this run started it.
# (SIGTERM: a script's background jobs ignore SIGINT.)
stop_sam() {
  local pid left i
  for pid in "${SAM_PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  for pid in "${SAM_PIDS[@]:-}"; do
    [ -n "$pid" ] || continue
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ "$BEFORE" != unset ] && docker info >/dev/null 2>&1; then
    left=$(comm -13 <(printf '%s\n' "${BEFORE:-}") \
      <(docker ps -q --filter label=sam.cli.container.type=lambda | sort))
    [ -z "$left" ] || docker rm -f $left >/dev/null 2>&1 || true
  fi
  cleanup
}

cmd=${1:-run}
case "$cmd" in
  run | test)
    ensure_emulator
    ensure_deploy_tools
    ensure_docker
    trap stop_sam EXIT
    trap 'exit 130' INT TERM
    ensure_base_image
    bridge=$(ip -4 -o addr show dev docker0 | awk '{print $4}' | cut -d/ -f1)
    [ -n "$bridge" ] || { log "Docker's bridge (docker0) has no IPv4 address"; exit 1; }
    build_functions
    ;;&
  run)
    trap 'exit 0' INT TERM # Ctrl-C is how this one ends, as `make run`
    ensure_free_port "${AWS_EMULATOR_PORT:-5000}" AWS_EMULATOR_PORT "$bridge" "make sam-local"
    ensure_free_port "${PORT:-3000}" PORT 127.0.0.1 "make sam-local"
    ensure_free_port "${LAMBDA_PORT:-3001}" LAMBDA_PORT 127.0.0.1 "make sam-local"
    start_emulator "${AWS_EMULATOR_PORT:-5000}" "$bridge"
    set_up_emulator
    start_sam "${PORT:-3000}" "${LAMBDA_PORT:-3001}"
    log "Ctrl-C stops the SAM CLI, its containers and the emulator."
    wait "${SAM_PIDS[@]}"
    ;;
  test)
    # As `make test`: indexes trail the table; tokens the push service refuses.
    export EMULATOR_INDEX_LAG_MS=${EMULATOR_INDEX_LAG_MS:-300} EMULATOR_REFUSED_TOKEN_PREFIX=refused
    start_emulator "$(free_port)" "$bridge"
    # Every request reaches the functions from one address: the per-source
    # limits out of reach, but on, so that sign-ups read the source key
    # secret through the emulator as on AWS.
    set_up_emulator SignupPerIpv4Limit=20000 SignupPerIpv6Slash64Limit=20000 SignupPerIpv6Slash56Limit=20000 SignupPerIpv6Slash48Limit=20000
    api_port=$(free_port)
    lambda_port=$(free_port)
    start_sam "$api_port" "$lambda_port"
    export PUSH_API_URL="http://127.0.0.1:$api_port/api/v1/"
    export LAMBDA_INVOKE_URL="http://127.0.0.1:$lambda_port"
    export DEPLOY_TOOLS_BIN="$ROOT/.venv-deploy/bin"
    # Every black-box test but the concurrency races (SAM serves one request
    # per function container at a time), the tests that start a router of
    # their own (`own_stack`) and those of API Gateway's own answers, which
    # SAM emulates differently (`gateway`).
    targets=()
    for f in tests/tests/*.rs; do
      name=$(basename "$f" .rs)
      [ "$name" = concurrency ] || targets+=(--test "$name")
    done
    status=0
    log "+ cargo test -p api-tests --features stack ${targets[*]} -- --skip own_stack:: --skip gateway::"
    cargo test -p api-tests --features stack --no-fail-fast "${targets[@]}" -- \
      --skip own_stack:: --skip gateway:: 2>&1 | tee "$LOGDIR/sam-local-test.log" || status=$?
    # Then AWS slowed at run time (POST /fidelity/settings) to just under
    # and just over the SDK's attempt timeout: one request per route within
    # the functions' real 10 s timeout, normal or 503 with Retry-After
    # (tests/tests/aws_faults.rs, slow_aws; left out of the suite above, as
    # it slows the emulator for every test beside it).
    log "+ cargo test -p api-tests --features stack --test aws_faults -- --ignored slow_aws::"
    cargo test -p api-tests --features stack --test aws_faults -- --ignored slow_aws:: 2>&1 |
      tee "$LOGDIR/sam-local-slow-aws.log" || status=$?
    internal=$(cat "$LOGDIR/sam-api-$api_port.log" "$LOGDIR/sam-lambda-$lambda_port.log" |
      grep -c "internal error" || true)
    echo "== internal errors (500) answered in this run: $internal"
    if [ "$internal" -ne 0 ]; then
      summarise 1 "make sam-local-test" "$LOGDIR/sam-local-test.log" /dev/null
      exit 1
    fi
    invoked=0
    invoke_each_function || invoked=$?
    summarise "$invoked" "make sam-local-test" "$LOGDIR/sam-local-test.log" /dev/null
    [ "$invoked" -eq 0 ] || exit "$invoked"
    exit "$status"
    ;;
  invoke)
    [ $# -eq 3 ] || { log "usage: $0 invoke FUNCTION EVENT_FILE"; exit 2; }
    if [ ! -s "$PARAMETER_FILE" ] || [ ! -f "$BUILD/template.yaml" ]; then
      log "Start \`make sam-local\` first (in another terminal): this invokes against its emulator."
      exit 1
    fi
    mapfile -t PARAMETERS <"$PARAMETER_FILE"
    INVOKE_IMAGE=$(cat "$IMAGE_FILE")
    invoke "$2" "$3"
    ;;
  *)
    log "usage: $0 run|test|invoke FUNCTION EVENT"
    exit 2
    ;;
esac

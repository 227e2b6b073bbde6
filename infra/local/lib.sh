# Sourced by infra/local/stack.sh and infra/sam-local/stack.sh: the pieces of
# a local stack both use. Expects ROOT (the repository), LOGDIR (its logs) and
# VENV (the emulator's virtualenv) set, and appends what it starts to PIDS.

# shellcheck source=../venv.sh
. "$ROOT/infra/venv.sh"

log() { printf '%s\n' "$*" >&2; }

ensure_emulator() {
  ensure_venv "$VENV" infra/local/requirements.txt moto_server "the AWS emulator (moto server)"
}

ensure_deploy_tools() {
  ensure_venv "$ROOT/.venv-deploy" infra/deploy-requirements.txt sam \
    "the deployment tools (SAM CLI, AWS CLI, cargo-lambda)"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# ensure_free_port PORT VARIABLE [HOST] [COMMAND]: stop with a message if
# something listens there (say, a stack left running in another terminal,
# which would otherwise answer this one's readiness checks).
ensure_free_port() {
  # SO_REUSEADDR as the servers set it: connections of a stack just stopped
  # (TIME_WAIT) do not count, a listener does.
  if ! python3 -c 'import socket, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[2], int(sys.argv[1]))); s.listen(); s.close()' "$1" "${3:-127.0.0.1}" 2>/dev/null; then
    log "Port $1 is already in use (another stack still running?). Stop it, or choose another port: $2=<port> ${4:-make run}"
    exit 1
  fi
}

# wait_for_url URL SECONDS
wait_for_url() {
  python3 - "$1" "$2" <<'PY'
import sys, time, urllib.request
url, limit = sys.argv[1], float(sys.argv[2])
deadline = time.time() + limit
while time.time() < deadline:
    try:
        urllib.request.urlopen(url, timeout=1).read()
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit(1)
PY
}

# wait_for_port PORT SECONDS: until something accepts connections on 127.0.0.1:PORT.
wait_for_port() {
  python3 - "$1" "$2" <<'PY'
import socket, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
deadline = time.time() + limit
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY
}

cleanup() {
  local pid
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
  done
}

# start_emulator PORT [HOST]: HOST is the address it listens on (127.0.0.1).
start_emulator() {
  local port=$1 host=${2:-127.0.0.1}
  MOTO_RECORDER_FILEPATH="$LOGDIR/moto-$port.recording" "$VENV/bin/python" infra/local/emulator.py "$host" "$port" >"$LOGDIR/moto-$port.log" 2>&1 &
  PIDS+=($!)
  if ! wait_for_url "http://$host:$port/moto-api/data.json" 30; then
    log "The AWS emulator did not start; see $LOGDIR/moto-$port.log"
    exit 1
  fi
  export AWS_ENDPOINT_URL="http://$host:$port"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
  echo "AWS emulator on http://$host:$port"
}

# start_router PORT [BINARY]: waits until it accepts requests (it prints "Listening on ...").
start_router() {
  local port=$1 out="$LOGDIR/router-$1.out" bin=${2:-$ROOT/target/debug/local-api}
  : >"$out"
  PORT="$port" "$bin" >"$out" 2>"$LOGDIR/router-$port.log" &
  ROUTER_PID=$!
  PIDS+=($ROUTER_PID)
  if ! wait_for_url "http://127.0.0.1:$port/api/v1/pubsub/" 60; then
    log "The local API did not start; see $LOGDIR/router-$port.log"
    exit 1
  fi
  cat "$out"
}

# The run's last line: every test of both tiers (unit, black-box) and the
# fuzz run as one check, in the plain `N passed, M failed` form.
# summarise FUZZ_STATUS [NAME] [TEST_LOG] [FUZZ_LOG] (FUZZ_STATUS 0: the fuzz
# run passed or did not run).
summarise() {
  local passed failed name=${2:-make test} tests=${3:-$LOGDIR/cargo-test.log} fuzz=${4:-$LOGDIR/fuzz.out}
  local count='/^test result:/ { for (i = 1; i < NF; i++) if ($(i + 1) == word) s += $i } END { print s + 0 }'
  passed=$(awk -v word='passed;' "$count" "$tests")
  failed=$(awk -v word='failed;' "$count" "$tests")
  if [ "$1" -eq 0 ] && grep -q '^fuzz:' "$fuzz" 2>/dev/null; then
    passed=$((passed + 1))
  elif [ "$1" -ne 0 ]; then
    failed=$((failed + 1))
  fi
  echo "$name: $passed passed, $failed failed"
}


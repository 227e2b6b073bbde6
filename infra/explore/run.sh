#!/usr/bin/env bash
# make explore SEED=1 STEPS=10000 MODE=memory|emulator [SEEDS=1] [CLIENTS=12]
#
# The explorer (infra/explore): seeded clients through the real handlers,
# invariants checked at every quiescent point. MODE=memory replays from the
# seed; MODE=emulator starts its own emulator on a free port (conflict model
# and random per-call latency on), as infra/local/stack.sh does, and stops it
# afterwards. Exit status 1: a violation (its seed and trace are printed;
# the failing epoch's whole trace is in target/explore/).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
MODE=${MODE:-memory}
args=(--seed "${SEED:-1}" --steps "${STEPS:-10000}" --mode "$MODE" --seeds "${SEEDS:-1}")
[ -n "${CLIENTS:-}" ] && args+=(--clients "$CLIENTS")
[ -n "${NO_FAULTS:-}" ] && args+=(--no-faults)

cargo build -p explore

if [ "$MODE" = emulator ]; then
  VENV="$ROOT/.venv"
  LOGDIR="$ROOT/.local"
  mkdir -p "$LOGDIR"
  PIDS=()
  # shellcheck source=../local/lib.sh
  . "$ROOT/infra/local/lib.sh"
  ensure_emulator
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  export EMULATOR_CONFLICTS=1
  # Also set at run time through POST /fidelity/settings by the explorer.
  export EMULATOR_DYNAMODB_LATENCY_MS=${EMULATOR_DYNAMODB_LATENCY_MS:-0+20}
  export EMULATOR_SNS_LATENCY_MS=${EMULATOR_SNS_LATENCY_MS:-0+20}
  start_emulator "$(free_port)"
fi

# The handlers print their metrics on stdout as JSON lines (CloudWatch EMF):
# not the explorer's output.
status=0
"$ROOT/target/debug/explore" "${args[@]}" | grep -v '^{' || status=${PIPESTATUS[0]}
exit "$status"

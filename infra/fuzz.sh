#!/usr/bin/env bash
# Fuzzes the running local API with schemathesis, driven by openapi.yaml:
# every operation, in all three body encodings, authenticated as a fresh
# account. Fails on any 5xx or any response that breaks the spec; prints the
# request count.
#
#   infra/fuzz.sh BASE_URL [EXAMPLES_PER_OPERATION]     e.g. http://127.0.0.1:3000
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
base=${1:?usage: infra/fuzz.sh BASE_URL [EXAMPLES]}
examples=${2:-150}
VENV="$ROOT/.venv-fuzz"
out="$ROOT/.local/fuzz"
mkdir -p "$out"

# shellcheck source=venv.sh
. "$ROOT/infra/venv.sh"
ensure_venv "$VENV" infra/fuzz-requirements.txt schemathesis schemathesis

key=$(python3 - "$base" <<'PY'
import json, sys, urllib.request, uuid
req = urllib.request.Request(sys.argv[1] + "/api/v1/accounts/", method="POST",
    data=json.dumps({"username": uuid.uuid4().hex[:30], "password": uuid.uuid4().hex}).encode(),
    headers={"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req))["token"])
PY
)

rm -f "$out/fuzz.har"
status=0
SCHEMATHESIS_TELEMETRY=false "$VENV/bin/schemathesis" --config-file infra/schemathesis.toml run openapi.yaml \
  --url "$base" \
  --header "Authorization: Token $key" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,positive_data_acceptance,unsupported_method \
  --max-examples "$examples" \
  --seed 20261127 \
  --workers 1 \
  --phases examples,coverage,fuzzing,stateful \
  --report har --report-har-path "$out/fuzz.har" \
  --warnings off \
  >"$out/schemathesis.log" 2>&1 || status=$?

python3 - "$out/fuzz.har" <<'PY'
import json, sys
entries = json.load(open(sys.argv[1]))["log"]["entries"]
statuses = [e["response"]["status"] for e in entries]
server_errors = sum(1 for s in statuses if s >= 500)
by_class = {}
for s in statuses:
    by_class[f"{s // 100}xx"] = by_class.get(f"{s // 100}xx", 0) + 1
ok_share = 100 * by_class.get("2xx", 0) / max(1, len(statuses))
print(f"fuzz: {len(statuses)} requests, {server_errors} 5xx, {ok_share:.0f}% 2xx ({', '.join(f'{k}: {v}' for k, v in sorted(by_class.items()))})")
sys.exit(1 if server_errors else 0)
PY
if [ "$status" -ne 0 ]; then
  tail -60 "$out/schemathesis.log"
  echo "schemathesis found failures (full log: .local/fuzz/schemathesis.log)" >&2
  exit "$status"
fi

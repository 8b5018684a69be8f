#!/usr/bin/env bash
# What the gateway adds (issue 4): the same server with authentication, rate limits, budget and
# the usage ledger on, against it with all of them off. Both use the instant engine stand-in
# (--engine-stand-in 16: no model, 16 tokens at once), so what is left is the gateway; open loop
# at RATE requests/s. Each server runs alone. Usage: scripts/bench_gateway_overhead.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-gateway}
RATE=${RATE:-200}
N=${N:-4000}
BIN=.venv/bin
MODEL=smollm2-135m-instruct
OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)
rm -f "$OUT"/*.db "$OUT"/*.db-*
ON_DB="sqlite:///$OUT/on.db"
$BIN/tokenmill tenants create bench --database "$ON_DB" >/dev/null
KEY=$($BIN/tokenmill keys create --tenant bench --rpm 10000000 --tpm 10000000000 --budget 1000000 \
  --database "$ON_DB" 2>/dev/null | sed -n 's/^secret: //p')

SERVER=
stop_server() { if [[ -n $SERVER ]]; then kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; SERVER=; fi; }
trap stop_server EXIT
run() {  # NAME PORT SERVE_ARGS...
  local name=$1 port=$2; shift 2
  $BIN/tokenmill serve --model "$MODEL" --port "$port" --engine-stand-in 16 --log-level warning "$@" &
  SERVER=$!
  for _ in $(seq 240); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.25; done
  $BIN/tokenmill bench --base-url "http://127.0.0.1:$port/v1" --model "$MODEL" --name "$name" --no-progress \
    --request-rate "$RATE" --num-requests "$N" --input-tokens 100 --max-tokens 16 \
    ${KEY_ARG:+--api-key "$KEY_ARG"} --json "$OUT/$name.json"
  stop_server
}
KEY_ARG= run gateway-off 8141 --no-ledger --database "sqlite:///$OUT/off.db"
KEY_ARG=$KEY run gateway-on 8142 --api-key operator-only --price-input 1 --price-output 2 --database "$ON_DB"

$BIN/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
on, off = (json.loads((out / f"gateway-{s}.json").read_text())["runs"][0]["summary"] for s in ("on", "off"))
for what in ("ttft_ms", "e2e_ms"):
    for q in ("median", "p99"):
        print(f"{what} {q}: off {off[what][q]:.2f} ms, on {on[what][q]:.2f} ms, added {on[what][q] - off[what][q]:+.2f} ms")
print(f"completed off {off['completed']}, on {on['completed']}; errors off {off['errors']}, on {on['errors']}")
PY

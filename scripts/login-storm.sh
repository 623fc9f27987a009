#!/usr/bin/env bash
# Login storm: does a burst of auth-with-password at full concurrency slow
# everyone else down? Measures /api/health p99 latency idle, then while wrk
# hammers auth-with-password on another set of connections, for the given
# binary (default: the release build). Prints both p99s and their ratio.
#
#   scripts/login-storm.sh [BIN] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/satchel}"
secs="${2:-10}"
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)"; exit 1; }
work=$(mktemp -d)
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
cleanup() { [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$bin" superuser upsert storm@example.com storm-pass-123 --dir "$work/pb_data" >/dev/null
"$bin" serve --dir "$work/pb_data" --http "127.0.0.1:$port" >"$work/server.log" 2>&1 &
srv=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/api/health" >/dev/null && break; sleep 0.1; done

cat >"$work/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"identity":"storm@example.com","password":"storm-pass-123"}'
LUA

p99() { awk '/^ +99%/ {print $2}'; }
to_ms() { python3 -c 'import sys,re
v=sys.argv[1]; m=re.match(r"([\d.]+)(us|ms|s)",v); n=float(m.group(1)); u=m.group(2)
print(n/1000 if u=="us" else n*1000 if u=="s" else n)' "$1"; }

idle=$(wrk -t1 -c4 -d"${secs}s" --latency "http://127.0.0.1:$port/api/health" | p99)
wrk -t1 -c32 -d"$((secs + 2))s" -s "$work/login.lua" "http://127.0.0.1:$port/api/collections/_superusers/auth-with-password" >"$work/storm.out" &
storm=$!
sleep 1
busy=$(wrk -t1 -c4 -d"${secs}s" --latency "http://127.0.0.1:$port/api/health" | p99)
wait "$storm"
logins=$(awk '/Requests\/sec/ {print $2}' "$work/storm.out")
idle_ms=$(to_ms "$idle"); busy_ms=$(to_ms "$busy")
echo "health p99 idle:         ${idle_ms} ms"
echo "health p99 during storm: ${busy_ms} ms (logins/s: ${logins})"
python3 -c "print('ratio (storm / idle): %.2f' % ($busy_ms / $idle_ms))"

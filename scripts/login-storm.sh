#!/usr/bin/env bash
# Login storm: does a burst of auth-with-password at full concurrency slow
# everyone else down? Measures /api/health p99 latency idle, then while wrk
# hammers auth-with-password on its own connections, for the given binary
# (default: the release build). Prints both p99s, their ratio, and what the
# storm itself got (logins/s, refusals, login p99).
#
#   scripts/login-storm.sh [BIN] [SECONDS]    (env: ROUNDS=3 USERS=64 PROBE_PAUSE_MS=5)
#
# Measuring fairly:
# - The storm signs in as USERS different users with their right password.
#   All on one identity, most attempts would be refused cheaply (429) by the
#   per-identity brute-force throttle, which limits attempts in flight, and
#   the storm would measure the throttle instead of the hashing.
# - The health probe is the same idle and busy: 4 connections, each pausing
#   PROBE_PAUSE_MS between requests (wrk's latency excludes the pause). A
#   probe that never pauses would itself take every spare cycle, the thing
#   hashing is meant to use, and measure a saturated server both times.
# - Each wrk has its own connections; the storm starts a second early and
#   ends after the probe, so the probe sees only the storm's steady state.
# - Idle and busy alternate for ROUNDS rounds and the medians are compared,
#   so load that comes and goes on a shared machine hits both sides alike.
#   The load average is printed: on a machine busy with other work the
#   figures say more about that work than about Satchel.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/satchel}"
secs="${2:-5}"
rounds="${ROUNDS:-3}"
users="${USERS:-64}"
pause_ms="${PROBE_PAUSE_MS:-5}"
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)"; exit 1; }
work=$(mktemp -d)
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
cleanup() { [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$bin" superuser upsert storm@example.com storm-pass-123 --dir "$work/pb_data" >/dev/null
"$bin" serve --dir "$work/pb_data" --http "127.0.0.1:$port" >"$work/server.log" 2>&1 &
srv=$!
for _ in $(seq 1 100); do curl -fs "$base/api/health" >/dev/null && break; sleep 0.1; done

token=$(curl -fs -X POST -H 'Content-Type: application/json' \
  -d '{"identity":"storm@example.com","password":"storm-pass-123"}' \
  "$base/api/collections/_superusers/auth-with-password" |
  python3 -c 'import json,sys;print(json.load(sys.stdin)["token"])')
for n in $(seq 0 $((users - 1))); do
  curl -fs -o /dev/null -X POST -H "Authorization: $token" -H 'Content-Type: application/json' \
    -d "{\"email\":\"storm$n@example.com\",\"password\":\"storm-pass-123\",\"passwordConfirm\":\"storm-pass-123\"}" \
    "$base/api/collections/users/records"
done

cat >"$work/login.lua" <<LUA
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"identity":"storm%d@example.com","password":"storm-pass-123"}', n % $users)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
LUA
cat >"$work/probe.lua" <<LUA
delay = function() return $pause_ms end
LUA

p99() { awk '/^ +99%/ {print $2}' "$1"; }
to_ms() { python3 -c 'import sys,re
v=sys.argv[1]; m=re.match(r"([\d.]+)(us|ms|s)",v); n=float(m.group(1)); u=m.group(2)
print(n/1000 if u=="us" else n*1000 if u=="s" else n)' "$1"; }
probe() { wrk -t1 -c4 -d"${secs}s" --latency -s "$work/probe.lua" "$base/api/health" >"$1"; }
median() { python3 -c 'import statistics,sys;print(statistics.median(map(float,sys.argv[1:])))' "$@"; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
idle=(); busy=(); storm_p99=(); ok=0; attempts=0; refused=0; elapsed=0
for round in $(seq 1 "$rounds"); do
  probe "$work/idle.out"
  wrk -t1 -c32 -d"$((secs + 2))s" --timeout 30s --latency -s "$work/login.lua" \
    "$base/api/collections/users/auth-with-password" >"$work/storm.out" &
  storm=$!
  sleep 1
  probe "$work/busy.out"
  wait "$storm"
  [ -n "${KEEP:-}" ] && cat "$work"/*.out
  idle+=("$(to_ms "$(p99 "$work/idle.out")")"); busy+=("$(to_ms "$(p99 "$work/busy.out")")")
  storm_p99+=("$(to_ms "$(p99 "$work/storm.out")")")
  total=$(awk '/requests in/ {print $1}' "$work/storm.out")
  bad=$(awk '/Non-2xx/ {print $NF}' "$work/storm.out"); bad=${bad:-0}
  secs_run=$(awk '/requests in/ {sub(/s,$/, "", $4); print $4}' "$work/storm.out")
  attempts=$((attempts + total)); refused=$((refused + bad))
  elapsed=$(python3 -c "print($elapsed + $secs_run)")
  echo "round $round: health p99 idle ${idle[-1]} ms, during storm ${busy[-1]} ms; login p99 ${storm_p99[-1]} ms"
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
idle_ms=$(median "${idle[@]}"); busy_ms=$(median "${busy[@]}")
echo "health p99 idle:         ${idle_ms} ms (median of $rounds)"
echo "health p99 during storm: ${busy_ms} ms (median of $rounds)"
python3 -c "print('ratio (storm / idle):    %.2f' % ($busy_ms / $idle_ms))"
python3 -c "print('logins/s (200 only):     %.1f of %d attempts, %d refused' % (($attempts - $refused) / $elapsed, $attempts, $refused))"
echo "login p99:               $(median "${storm_p99[@]}") ms (median of $rounds)"

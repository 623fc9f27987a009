#!/usr/bin/env bash
# Idle realtime subscribers: what do N open, quiet SSE streams cost the rest
# of the server? Starts the binary on a fresh data dir, seeds one public
# record, runs wrk on /api/health and on that record's view without
# subscribers, then opens N idle subscribers (node, subscribed to posts/*)
# and runs the same again. Prints req/s for both, the ratio, and the RSS
# per idle subscriber (VmRSS with them minus without, over N, in the first
# round: later rounds reuse memory the allocator kept).
#
#   scripts/idle-subscribers.sh [BIN] [N] [SECONDS]
#
# Alternates the two conditions over ROUNDS (default 2) so machine noise
# falls on both (odd rounds measure with subscribers first); each
# throughput is the median over the rounds.
# KEEPALIVE=1 opens the streams as browsers do (keep-alive connections, each
# of which holds a tiny_http connection thread); by default they are opened
# like the bench's probe, with `Connection: close` (node without an agent),
# whose read side tiny_http lets go at once.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/satchel}"
n="${2:-1000}"
secs="${3:-5}"
rounds="${ROUNDS:-2}"
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)"; exit 1; }
command -v node >/dev/null || { echo "node is needed"; exit 1; }
work=$(mktemp -d)
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
cleanup() {
  [ -n "${subs:-}" ] && kill "$subs" 2>/dev/null
  [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" superuser upsert idle@example.com idle-pass-123 --dir "$work/pb_data" >/dev/null
"$bin" serve --dir "$work/pb_data" --http "127.0.0.1:$port" >"$work/server.log" 2>&1 &
srv=$!
for _ in $(seq 1 100); do curl -fs "$base/api/health" >/dev/null && break; sleep 0.1; done

# a public collection with one record to view
record_id=$(python3 - "$base" <<'PY'
import json, sys, urllib.request
base = sys.argv[1]
def call(method, path, body=None, token=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", token)
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"{}")
su = call("POST", "/api/collections/_superusers/auth-with-password",
          {"identity": "idle@example.com", "password": "idle-pass-123"})["token"]
call("POST", "/api/collections", {"name": "posts", "type": "base", "listRule": "", "viewRule": "",
     "fields": [{"name": "title", "type": "text"}, {"name": "body", "type": "text"}]}, su)
rec = call("POST", "/api/collections/posts/records",
           {"title": "idle subscribers", "body": "x" * 200}, su)
print(rec["id"])
PY
)

cat >"$work/subscribers.mjs" <<'JS'
// Opens N anonymous SSE subscribers on posts/*, prints "ready" once all
// are subscribed, then stays idle until killed.
import http from "node:http";
const [base, nArg, keepAliveArg] = process.argv.slice(2);
const url = new URL(base), N = Number(nArg);
const streamAgent = keepAliveArg === "1" ? new http.Agent({ keepAlive: true, maxSockets: Infinity }) : false;
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
function post(path, body) {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body));
    const req = http.request({ host: url.hostname, port: url.port, path, method: "POST", agent,
      headers: { "Content-Type": "application/json", "Content-Length": data.length } },
      (res) => { res.resume(); res.on("end", () => resolve(res.statusCode)); });
    req.on("error", reject);
    req.end(data);
  });
}
function open() {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: "/api/realtime",
      agent: streamAgent, headers: { Accept: "text/event-stream" } }, (res) => {
      if (res.statusCode !== 200) { reject(new Error(`GET /api/realtime -> ${res.statusCode}`)); return; }
      res.setEncoding("utf8");
      let buf = "", id = null;
      res.on("data", (c) => {
        if (id) return;
        buf += c;
        const m = /"clientId":"([^"]+)"/.exec(buf);
        if (m) { id = m[1]; resolve(id); }
      });
      res.on("error", () => {});
    });
    req.on("error", reject);
    req.end();
  });
}
let next = 0;
async function worker() {
  while (next < N) {
    next++;
    const id = await open();
    const status = await post("/api/realtime", { clientId: id, subscriptions: ["posts/*"] });
    if (status !== 204) throw new Error(`subscribe -> ${status}`);
  }
}
await Promise.all(Array.from({ length: 16 }, worker));
console.log("ready");
setInterval(() => {}, 1 << 30);
JS

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$srv/status"; }
rps() { wrk -t2 -c32 -d"${secs}s" "$1" 2>/dev/null | awk '/^Requests\/sec:/ {print $2}'; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$srv/status"; }
settle() { sleep 2; }

declare -a h0 v0 h1 v1
without() {
  settle
  rss0=$(rss_kib); t0=$(threads)
  h0+=("$(rps "$base/api/health")"); v0+=("$(rps "$base/api/collections/posts/records/$record_id")")
}
with() {
  node "$work/subscribers.mjs" "$base" "$n" "${KEEPALIVE:-0}" >"$work/subs.out" 2>"$work/subs.err" &
  subs=$!
  for _ in $(seq 1 1200); do grep -q ready "$work/subs.out" 2>/dev/null && break; kill -0 "$subs" 2>/dev/null || break; sleep 0.1; done
  grep -q ready "$work/subs.out" || { cat "$work/subs.err"; echo "subscribers did not connect"; exit 1; }
  settle
  rss1=$(rss_kib); t1=$(threads)
  h1+=("$(rps "$base/api/health")"); v1+=("$(rps "$base/api/collections/posts/records/$record_id")")
  kill "$subs"; wait "$subs" 2>/dev/null || true; subs=
  # the sockets close with the node process; the heartbeats (5 s) free them
  sleep 12
}
wrk -t2 -c32 -d2s "$base/api/health" >/dev/null 2>&1   # warm-up
# Odd rounds measure with subscribers first, so a drift in the machine's
# load does not always land on the same side.
for ((r = 0; r < rounds; r++)); do
  if ((r % 2 == 0)); then
    without; with
    ((r == 0)) && per_sub=$(python3 -c "print(($rss1 - $rss0) / $n)") && threads_added=$((t1 - t0))
  else
    with; without
  fi
  echo "round $((r + 1)): health ${h0[-1]} without, ${h1[-1]} with; view ${v0[-1]} without, ${v1[-1]} with (req/s)" >&2
done

python3 - "$n" "${h0[*]}" "${h1[*]}" "${v0[*]}" "${v1[*]}" "$per_sub" "$threads_added" <<'PY'
import statistics as st, sys
n = int(sys.argv[1])
h0, h1, v0, v1 = ([float(x) for x in a.split()] for a in sys.argv[2:6])
per, threads = float(sys.argv[6]), int(sys.argv[7])
med = st.median
print(f"| scenario | without subscribers req/s | with {n} idle subscribers req/s | ratio |")
print("|---|---:|---:|---:|")
for name, a, b in (("health", h0, h1), ("view", v0, v1)):
    print(f"| {name} | {med(a):,.0f} | {med(b):,.0f} | {med(b) / med(a):.2f} |")
print(f"\nRSS per idle subscriber: {per:.1f} KiB; server threads added: {threads}")
PY

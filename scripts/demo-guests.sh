#!/usr/bin/env bash
# The guest half of `make demo`: a simulated Proxmox VE cluster seeded from the bundled
# example lab, then labsmith plan / apply / plan against it over verified HTTPS. The second
# plan shows the cluster matches the inventory: nothing left to do.
set -euo pipefail
BIN=${BIN:-.venv/bin}
workdir=$(mktemp -d)
sim_pid=""
cleanup() {
    if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
    rm -rf "$workdir"
}
trap cleanup EXIT

example=$("$BIN/python" -c 'from labsmith.resources import example_inventory; print(example_inventory())')
echo "== labsmith sim serve --seed-from $example (tasks take 0.3 s)"
"$BIN/labsmith" sim serve --port 0 --seed-from "$example" --cert-dir "$workdir" \
    --task-seconds 0.3 >"$workdir/sim.out" 2>"$workdir/sim.err" &
sim_pid=$!
for _ in $(seq 150); do
    [ -s "$workdir/sim.out" ] && break
    kill -0 "$sim_pid" 2>/dev/null || { cat "$workdir/sim.err" >&2; exit 1; }
    sleep 0.1
done
read -r announcement <"$workdir/sim.out"
field() { "$BIN/python" -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$announcement" "$1"; }
url=$(field url)
# The token travels in the environment, not on a command line other users can read.
LABSMITH_PVE_TOKEN=$(field token)
export LABSMITH_PVE_TOKEN
echo "   serving $url"

echo "== labsmith plan --pve-url $url --pve-ca <sim CA>"
"$BIN/labsmith" plan --pve-url "$url" --pve-ca "$(field ca)"
echo "== labsmith apply --yes"
"$BIN/labsmith" apply --yes --pve-url "$url" --pve-ca "$(field ca)"
echo "== labsmith plan (again: the cluster now matches the inventory)"
"$BIN/labsmith" plan --pve-url "$url" --pve-ca "$(field ca)"

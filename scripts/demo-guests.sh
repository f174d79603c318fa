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
# root@pam's password lets labsmith set what PVE refuses to every API token: the
# containers' bind mounts and GPU device nodes.
(umask 077; "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(18))' >"$workdir/root-password")
echo "== labsmith sim serve --seed-from $example (tasks take 0.3 s)"
"$BIN/labsmith" sim serve --port 0 --seed-from "$example" --cert-dir "$workdir" \
    --password-file "$workdir/root-password" --task-seconds 0.3 >"$workdir/sim.out" 2>"$workdir/sim.err" &
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

# -i always: plan and apply refuse to guess which lab's Proxmox API to talk to.
api=(-i "$example" --pve-url "$url" --pve-ca "$(field ca)" --pve-root-password-file "$workdir/root-password")
echo "== labsmith plan -i $example --pve-url $url --pve-ca <sim CA> --pve-root-password-file <file>"
"$BIN/labsmith" plan "${api[@]}"
echo "== labsmith apply --yes"
"$BIN/labsmith" apply --yes "${api[@]}"
echo "== labsmith plan (again: the cluster now matches the inventory)"
"$BIN/labsmith" plan "${api[@]}"

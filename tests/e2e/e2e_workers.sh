#!/usr/bin/env bash
# e2e_workers: detourd with two workers. Frames reach a worker by the
# kernel's choice (PACKET_FANOUT with Detour's eBPF program, which picks
# the flow's owner; AF_XDP queue); each flow's state lives on the worker
# its hash names, and a worker hands over what it gets of another's flows
# (a NAT node changes the hash on the way back). Through the NAT node of
# nat.yaml (DNAT 8080 -> 80) and on the plain guest plane:
#  - 24 HTTP connections through the NAT node and 24 direct ones, each
#    byte for byte, both directions;
#  - both workers own connections, frames were handed between them;
#  - no frame was lost to a full hand-off ring.
source "$(dirname "$0")/lib.sh"
export DETOUR_LAB_WORKERS=2
e2e_init
lab_up "$TOPO/nat.yaml"

stats() { ctl h1 --json show stats; }
py_stat() { stats | "$PY" -c "import json,sys; s=json.load(sys.stdin); print($1)"; }

w=$(py_stat 's["workers"]')
assert "detourd runs two workers ($w)" "$w" = 2
check "DNAT 8080 -> 80 rule added in nat1" \
	lab_exec nat1 nft add rule inet detour prerouting tcp dport 8080 counter dnat ip to ip daddr:80
mkdir -p "$TMP/www"
make_blob "$TMP/www/blob" 65536
if http_serve vm2 192.168.1.2 80 "$TMP/www"; then
	ok_nat=0 ok_direct=0
	for i in $(seq 24); do
		http_fetch_same vm1 http://192.168.1.2:8080/blob "$TMP/n$i" "$TMP/www/blob" && ok_nat=$((ok_nat + 1))
		http_fetch_same vm1 http://192.168.1.2/blob "$TMP/d$i" "$TMP/www/blob" && ok_direct=$((ok_direct + 1))
	done
	assert "24 of 24 connections through the NAT node byte for byte ($ok_nat)" "$ok_nat" -eq 24
	assert "24 of 24 direct connections byte for byte ($ok_direct)" "$ok_direct" -eq 24
	c=$(nft_packets nat1 inet detour prerouting)
	assert "nat1's DNAT rule matched every connection ($c)" "$c" -ge 24
fi
check "ping vm2 -> vm1" ping_ok vm2 192.168.1.1 3

# iperf3 through the NAT node (client to 8080, DNAT to the server on 80),
# 4 streams, 2 s each way: the hand-off rings under load.
[ -n "${HTTP_PID:-}" ] && stop_bg "$HTTP_PID"
wait_until 5 not_listening vm2 80
bg vm2 iperf3 -s -B 192.168.1.2 -p 80 >"$TMP/iperf-server.log" 2>&1
if wait_until 10 listening vm2 80; then
	for dir in "" -R; do
		timeout 20 "$LAB" --prefix "$PREFIX" exec vm1 iperf3 -c 192.168.1.2 -p 8080 -P 4 -t 2 -J $dir \
			>"$TMP/iperf$dir.json" 2>&1
		rc=$?
		bps=$("$PY" -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]))' \
			"$TMP/iperf$dir.json" 2>/dev/null || echo 0)
		assert "iperf3 ${dir:-(forward)} through the NAT node, 4 streams (exit $rc, $((bps / 1000000)) Mbit/s)" \
			"$rc" -eq 0 -a "$bps" -gt 0
	done
else
	fail "iperf3 server in vm2 did not start"
fi

stats >"$TMP/stats.json"
read -r c0 c1 h0 h1 full < <("$PY" -c '
import json, sys
s = json.load(open(sys.argv[1]))
w = s["per_worker"]
d = s.get("drops", {})
print(w[0]["connections"], w[1]["connections"], w[0]["handed_out"], w[1]["handed_out"],
      d.get("hand-off to another worker: its ring is full", 0))' "$TMP/stats.json")
assert "worker 0 owns connections ($c0)" "$c0" -ge 1
assert "worker 1 owns connections ($c1)" "$c1" -ge 1
assert "frames were handed between the workers (NAT: $h0 + $h1)" "$((h0 + h1))" -ge 1
check "the ports spread flows by their owner (eBPF fanout)" grep -q "eBPF fanout" "$STATE/h1.log"
assert "no frame lost to a full hand-off ring ($full)" "$full" -eq 0
finish

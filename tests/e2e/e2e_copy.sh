#!/usr/bin/env bash
# e2e_copy: `copy` rules. The original goes on to its destination undelayed
# while a copy walks the chain and is dropped at its end. The service nodes
# are made to drop everything they get, so any loss of the original would
# show; their counters must show that they saw the copies.
#   icmp: chain watch = mon (l2 node mon1, nft: count then drop all)
#   tcp:  chain watchnsh = tap (nsh node tap1, detour-sn --drop tcp)
source "$(dirname "$0")/lib.sh"
e2e_init
lab_up "$TOPO/copy.yaml"

# ---- icmp copies to an l2 node that drops everything ----
check "mon1 drops everything it forwards" lab_exec mon1 nft add rule bridge detour forward counter drop
snapshot C0 mon1
check "60 pings vm1 -> vm2 with no loss while the copies are dropped" \
	ping_no_loss vm1 192.168.1.2 60 0.05
snapshot C1 mon1
d=$(delta C0 C1 mon1)
assert "mon1 saw the copies of the pings (+$d, want >= 60)" "$d" -ge 60
dd=$(nft_packets mon1 bridge detour forward drop)
assert "mon1 dropped the copies ($dd)" "$dd" -ge 60

# ---- tcp copies to detour-sn dropping tcp ----
if [ -x "$SN_BIN" ]; then
	# Replace the lab's detour-sn by one that drops tcp.
	if pid=$("$LAB" --prefix "$PREFIX" pid tap1); then
		kill -TERM "$pid"
		wait_until 3 bash -c "! kill -0 $pid"
	fi
	bg tap1 "$SN_BIN" --iface eth0 --mac 02:00:00:00:cc:01 --drop tcp --stats "$TMP/tap1.stats" \
		>"$TMP/tap1.log" 2>&1
	SNPID=$BG_PID
	has_packet_socket() { [ "$(wc -l <"/proc/$SNPID/net/packet")" -gt 1 ]; }
	check "detour-sn --drop tcp started in tap1" wait_until 5 has_packet_socket
	mkdir -p "$TMP/www"
	make_blob "$TMP/www/blob"
	if http_serve vm2 192.168.1.2 80 "$TMP/www"; then
		check "1 MiB over HTTP vm1 -> vm2 byte for byte while the copies are dropped" \
			http_fetch_same vm1 http://192.168.1.2/blob "$TMP/got" "$TMP/www/blob"
	fi
	rm -f "$TMP/tap1.stats"
	kill -USR1 "$SNPID"
	if wait_until 5 "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$TMP/tap1.stats"; then
		rx=$("$PY" -c "$SN_STATS_PY" rx "$TMP/tap1.stats" 2>/dev/null || echo 0)
		assert "tap1 (detour-sn) saw the tcp copies (rx $rx, want >= 20)" "$rx" -ge 20
	else
		fail "detour-sn in tap1 wrote no stats on SIGUSR1"
		show_out "$TMP/tap1.log"
	fi
else
	fail "$SN_BIN is missing (run make)"
fi
finish

#!/usr/bin/env bash
# e2e_chain: chain fw (l2) -> ids (nsh) -> rt (l3), two nodes per service, on
# one host; egress rules at vm1 send its TCP and ICMP through the chain.
# Checks: ping and 1 MiB HTTP both ways; per flow exactly one node of each
# service carries the packets and the replies go through the same nodes
# (l2/l3: nft forward counters see both directions; nsh: detour-sn saw the
# forward and the reverse SPI); an nft drop of tcp/80 in the firewall nodes
# blocks HTTP while ping works; detourctl show paths/flows and trace.
source "$(dirname "$0")/lib.sh"
e2e_init
lab_up "$TOPO/chain.yaml"

ALL="fw1 fw2 ids1 ids2 rt1 rt2"
NOISE=2 # packets a node that was not chosen may show (nothing expected)

# one_of WHAT A B MIN: between snapshots S0 and S1, exactly one of A, B saw
# at least MIN packets and the other at most NOISE. Sets CHOSEN.
one_of() {
	local what=$1 a=$2 b=$3 min=$4 da db
	da=$(delta S0 S1 "$a")
	db=$(delta S0 S1 "$b")
	CHOSEN=
	if [ "$da" -ge "$min" ] && [ "$db" -ge 0 ] && [ "$db" -le "$NOISE" ]; then
		CHOSEN=$a
	elif [ "$db" -ge "$min" ] && [ "$da" -ge 0 ] && [ "$da" -le "$NOISE" ]; then
		CHOSEN=$b
	fi
	if [ -n "$CHOSEN" ]; then
		pass "$what: only $CHOSEN of $a/$b carried it, both directions ($a +$da, $b +$db)"
	else
		fail "$what: want one of $a/$b with >= $min packets and the other <= $NOISE; got $a +$da, $b +$db"
	fi
}

# spis_both WHAT NODE: detour-sn on NODE saw at least two SPIs (the forward
# and the reverse path of the flow).
spis_both() {
	local s n
	s=$(sn_spis "$2")
	n=$(wc -w <<<"$s")
	if [ "$n" -ge 2 ]; then
		pass "$1: $2 saw the forward and the reverse SPI ($s)"
	else
		fail "$1: $2 should have seen two SPIs (forward and reverse); saw '${s}'"
	fi
}

# ---- ping through the chain ----
snapshot S0 $ALL
check "ping vm1 -> vm2 through the chain" ping_ok vm1 192.168.1.2 10
snapshot S1 $ALL
one_of "ping, fw" fw1 fw2 20
one_of "ping, ids" ids1 ids2 20
[ -n "$CHOSEN" ] && spis_both "ping, ids" "$CHOSEN"
if [ -n "$CHOSEN" ]; then
	other=ids1; [ "$CHOSEN" = ids1 ] && other=ids2
	s=$(sn_spis "$other")
	assert "ping, ids: $other saw no SPI at all ('$s')" -z "$s"
fi
one_of "ping, rt" rt1 rt2 20
check "ping vm2 -> vm1" ping_ok vm2 192.168.1.1 5

# ---- HTTP and 1 MiB both ways ----
mkdir -p "$TMP/www1" "$TMP/www2"
make_blob "$TMP/www2/blob"
make_blob "$TMP/www1/blob"
if http_serve vm2 192.168.1.2 80 "$TMP/www2"; then
	snapshot S0 $ALL
	check "1 MiB over HTTP vm1 -> vm2 through the chain, byte for byte" \
		http_fetch_same vm1 http://192.168.1.2/blob "$TMP/got2" "$TMP/www2/blob"
	snapshot S1 $ALL
	one_of "HTTP, fw" fw1 fw2 20
	one_of "HTTP, ids" ids1 ids2 20
	[ -n "$CHOSEN" ] && spis_both "HTTP, ids" "$CHOSEN"
	one_of "HTTP, rt" rt1 rt2 20
fi
if http_serve vm1 192.168.1.1 80 "$TMP/www1"; then
	check "1 MiB over HTTP vm2 -> vm1, byte for byte" \
		http_fetch_same vm2 http://192.168.1.1/blob "$TMP/got1" "$TMP/www1/blob"
	stop_bg "$HTTP_PID"
fi

# ---- detourctl views ----
check "detourctl show paths" ctl h1 show paths
if grep -q inspect "$TMP/out"; then pass "show paths names the chain"; else fail "show paths does not name chain inspect"; show_out "$TMP/out"; fi
check "detourctl show flows" ctl h1 show flows
if grep -q inspect "$TMP/out"; then pass "show flows names the chain"; else fail "show flows does not name chain inspect"; show_out "$TMP/out"; fi
# the HTTP connections' records: packets counted both ways, the pinned path's SPIs
flows_counted() {
	ctl h1 --json show flows | "$PY" -c '
import json, sys
rows = []
def walk(o):
    if isinstance(o, dict):
        if "pkts_fwd" in o:
            rows.append(o)
        for v in o.values():
            walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
walk(json.load(sys.stdin))
ok = [r for r in rows if r["chain"] == "inspect" and r["dst"].endswith(":80") and r["pkts_fwd"] >= 1
      and r["pkts_rev"] >= 1 and r["spi_fwd"] > 0 and r["spi_rev"] == r["spi_fwd"] + 1 and r["idle_s"] < 600]
print(len(rows), "records,", len(ok), "to port 80 with packets both ways:", ok[:1])
sys.exit(0 if ok else 1)'
}
check "show flows: an HTTP connection counts packets both ways on its path" flows_counted
check "detourctl trace" ctl h1 trace vm1 "tcp 192.168.1.1:40000 > 192.168.1.2:80"
if grep -q inspect "$TMP/out"; then pass "trace names the chain"; else fail "trace does not name chain inspect"; show_out "$TMP/out"; fi

# ---- an nft drop in the firewall nodes blocks port 80 ----
ok=1
for n in fw1 fw2; do
	lab_exec "$n" nft add rule bridge detour forward tcp dport 80 counter drop || ok=0
done
assert "nft drop of tcp/80 added in fw1 and fw2" "$ok" = 1
HTTP_TIMEOUT=3 check_not "HTTP vm1 -> vm2 blocked by the firewall node" \
	http_get vm1 http://192.168.1.2/blob "$TMP/blocked"
d=$(($(nft_packets fw1 bridge detour forward drop) + $(nft_packets fw2 bridge detour forward drop)))
assert "the firewall's drop rule counted the blocked packets" "$d" -gt 0
check "ping vm1 -> vm2 still works with the drop in place" ping_ok vm1 192.168.1.2 3
finish

#!/usr/bin/env bash
# e2e_mtu: hosts with a 1500-byte underlay (topo/mtu.yaml), guests with MTU
# 1500. For A (h1) -> B (h3) through the chain (service plane) and for C (h2)
# -> B (plain guest plane):
#   - a 1500-byte ping without DF (-M dont -s 1472) is answered: the sender's
#     host fragments it (its mtu_fragmented rises);
#   - a 1500-byte DF ping (-M do -s 1472) gets "Frag needed" with an MTU
#     below 1500 (the sender's host's mtu_icmp_sent rises), and a DF ping of
#     exactly that MTU (-s MTU-28) is answered;
# then 10 MB over HTTP both ways between A and B through the chain, byte for
# byte (path MTU discovery with the default offloads).
# The no-DF pings run first: once a guest has learnt the path MTU its own
# kernel would fragment and detourd would have nothing to do.
source "$(dirname "$0")/lib.sh"
e2e_init
lab_up "$TOPO/mtu.yaml"

# mtu_case NAME FROM FROMHOST DST: the checks above for one sender.
mtu_case() {
	local what=$1 from=$2 host=$3 dst=$4 f0 f1 i0 i1 mtu
	f0=$(stat_counter "$host" mtu_fragmented)
	check "$what: 1500-byte ping without DF answered" \
		lab_exec "$from" ping -n -q -M dont -s 1472 -c 3 -i 0.2 -W 2 "$dst"
	f1=$(stat_counter "$host" mtu_fragmented)
	assert "$what: $host counted the fragmented packets (mtu_fragmented $f0 -> $f1, want +3)" \
		"$f1" -ge $((f0 + 3))

	i0=$(stat_counter "$host" mtu_icmp_sent)
	lab_exec "$from" ping -n -M "do" -s 1472 -c 1 -W 2 "$dst" >"$TMP/df.out" 2>&1
	mtu=$(grep -o -E 'mtu ?= ?[0-9]+' "$TMP/df.out" | head -n1 | grep -o -E '[0-9]+$')
	i1=$(stat_counter "$host" mtu_icmp_sent)
	if grep -q "Frag needed" "$TMP/df.out" && [ -n "$mtu" ] && [ "$mtu" -ge 1280 ] && [ "$mtu" -lt 1500 ]; then
		pass "$what: 1500-byte DF ping gets \"Frag needed\" with mtu $mtu"
	else
		fail "$what: 1500-byte DF ping should get \"Frag needed\" with an mtu in 1280..1499"
		show_out "$TMP/df.out"
		mtu=
	fi
	assert "$what: $host counted the ICMP it sent (mtu_icmp_sent $i0 -> $i1)" "$i1" -ge $((i0 + 1))
	if [ -n "$mtu" ]; then
		check "$what: DF ping of the reported size (-M do -s $((mtu - 28))) answered" \
			lab_exec "$from" ping -n -q -M "do" -s $((mtu - 28)) -c 3 -i 0.2 -W 2 "$dst"
	fi
	MTU=$mtu
}

mtu_case "A>B via chain" A h1 192.168.1.2
MTU_CHAIN=$MTU
mtu_case "C>B guest plane" C h2 192.168.1.2
MTU_GUEST=$MTU
if [ -n "$MTU_CHAIN" ] && [ -n "$MTU_GUEST" ]; then
	assert "the service plane costs more than the guest plane (mtu $MTU_CHAIN < $MTU_GUEST)" \
		"$MTU_CHAIN" -lt "$MTU_GUEST"
fi

# ---- 10 MB through the chain, both ways ----
mkdir -p "$TMP/wwwA" "$TMP/wwwB"
make_blob "$TMP/wwwA/blob" 10485760
make_blob "$TMP/wwwB/blob" 10485760
# Forget the path MTUs the pings taught the guests: the transfers must find
# them again (the first full-size segments get ICMP too-big from detourd).
for g in A B C; do lab_exec "$g" ip route flush cache; done
i0=$(($(stat_counter h1 mtu_icmp_sent) + $(stat_counter h3 mtu_icmp_sent)))
if http_serve B 192.168.1.2 80 "$TMP/wwwB"; then
	HTTP_TIMEOUT=60 check "10 MB over HTTP B -> A (download by A) through the chain, byte for byte" \
		http_fetch_same A http://192.168.1.2/blob "$TMP/gotB" "$TMP/wwwB/blob"
fi
if http_serve A 192.168.1.1 80 "$TMP/wwwA"; then
	HTTP_TIMEOUT=60 check "10 MB over HTTP A -> B (download by B) through the chain, byte for byte" \
		http_fetch_same B http://192.168.1.1/blob "$TMP/gotA" "$TMP/wwwA/blob"
fi
i1=$(($(stat_counter h1 mtu_icmp_sent) + $(stat_counter h3 mtu_icmp_sent)))
assert "path MTU discovery ran during the transfers (mtu_icmp_sent on h1+h3: $i0 -> $i1)" "$i1" -gt "$i0"
for h in h1 h2 h3; do
	note "$h: $(ctl "$h" --json show stats | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
print("mtu_icmp_sent %s mtu_fragmented %s drops %s" % (d.get("mtu_icmp_sent"), d.get("mtu_fragmented"), d.get("drops")))')"
done
finish

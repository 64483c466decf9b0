#!/usr/bin/env bash
# e2e_forged: a guest cannot put anything on the service plane. vm1 sends
# forged NSH frames (ethertype 0x894F, live SPIs from `show paths`, to vm2,
# to broadcast, to the service nodes' MACs and to every spmac detourctl
# shows) and Geneve (UDP 6081, NSH and Ethernet payloads) with scapy; no
# service node's counter may move. A real ping afterwards must move them, so
# the counters are known to be live.
source "$(dirname "$0")/lib.sh"
e2e_init
lab_up "$TOPO/chain.yaml"
ALL="fw1 fw2 ids1 ids2 rt1 rt2"

check "ping vm1 -> vm2 through the chain (paths in use)" ping_ok vm1 192.168.1.2 3

spis=$(ctl h1 --json show paths 2>/dev/null | json_ints_named 'spi' 2>/dev/null)
if [ -n "$spis" ]; then
	pass "live SPIs from show paths: $spis"
else
	fail "no SPI found in detourctl --json show paths"
	spis="1 2"
fi
spmacs=""
for obj in nodes paths ports; do
	spmacs="$spmacs $(ctl h1 --json show "$obj" 2>/dev/null | json_macs_named 'spmac|proxy.*mac|mac.*proxy' 2>/dev/null)"
done
spmacs=$(tr ' ' '\n' <<<"$spmacs" | sort -u | xargs)
if [ -n "$spmacs" ]; then
	pass "spmacs from detourctl: $spmacs"
else
	fail "no spmac found in detourctl --json show nodes/paths/ports"
fi

snapshot F0 $ALL
cat >"$TMP/forge.py" <<'PYEOF'
import sys
from scapy.all import Ether, IP, UDP, ICMP, TCP, Dot1Q, sendp
from scapy.contrib.nsh import NSH
from scapy.contrib.geneve import GENEVE

spis = [int(x) for x in sys.argv[1].split()][:6]
dsts = sys.argv[2].split()
me, vm2 = "02:00:00:00:01:01", "02:00:00:00:01:02"
inner = Ether(src=me, dst=vm2) / IP(src="192.168.1.1", dst="192.168.1.2") / ICMP()
inner_tcp = Ether(src=me, dst=vm2) / IP(src="192.168.1.1", dst="192.168.1.2") / TCP(sport=40000, dport=80, flags="S")
frames = []
for dst in dsts:
    for spi in spis:
        for si in (255, 254, 253, 252):
            for payload in (inner, inner_tcp):
                nsh = NSH(mdtype=2, nextproto=3, spi=spi, si=si) / payload
                frames.append(Ether(src=me, dst=dst, type=0x894F) / nsh)
                frames.append(Ether(src=me, dst=dst) / Dot1Q(vlan=0, type=0x894F) / nsh)
                gen = GENEVE(vni=4000, proto=0x894F) / nsh
                for ip in ("192.168.1.2", "10.0.0.1", "255.255.255.255"):
                    frames.append(Ether(src=me, dst=dst) / IP(src="192.168.1.1", dst=ip) /
                                  UDP(sport=50000, dport=6081) / gen)
    frames.append(Ether(src=me, dst=dst) / IP(src="192.168.1.1", dst="10.0.0.1") /
                  UDP(sport=50001, dport=6081) / GENEVE(vni=100, proto=0x6558) / inner)
sendp(frames, iface="eth0", verbose=0)
print(len(frames), "frames sent")
PYEOF
dsts="02:00:00:00:01:02 ff:ff:ff:ff:ff:ff 02:00:00:00:aa:01 02:00:00:00:aa:02 02:00:00:00:bb:01 02:00:00:00:bb:02 $spmacs"
check "scapy sent forged NSH and Geneve frames from vm1" lab_exec vm1 "$PY" "$TMP/forge.py" "$spis" "$dsts"
show_out "$TMP/out" 1
# Nothing to poll for when nothing must happen: give the data plane a moment.
sleep 1
snapshot F1 $ALL
for n in $ALL; do
	d=$(delta F0 F1 "$n")
	assert "no forged frame reached $n (counter +$d)" "$d" = 0
done
check "detourd still serves after the forged frames" ctl h1 show stats

# Positive control: real traffic moves the counters read the same way.
check "ping vm1 -> vm2 through the chain after the forged frames" ping_ok vm1 192.168.1.2 3
snapshot F2 $ALL
moved=0
for n in $ALL; do [ "$(delta F1 F2 "$n")" -gt 0 ] && moved=$((moved + 1)); done
assert "real pings move the counters of the chain's nodes ($moved nodes moved, want 3)" "$moved" -ge 3
finish

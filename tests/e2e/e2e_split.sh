#!/usr/bin/env bash
# e2e_split: one NSH service with a node on h2 (ids1) and one on h3 (ids2),
# equal weights; guest A on h1 opens 1000 UDP flows (distinct source ports,
# one datagram each, echoed by B on h3) through chain "scan".
# Checks: every flow answered; detour-sn's per-SPI counters split the flows
# 50/50 within +-10% and each node saw as many reverse packets as forward
# ones and no SPI of the other node's path; per flow, from a capture of the
# underlay, the forward SPI and the reverse SPI belong to the same path and
# h1 sent both to that node's host.
source "$(dirname "$0")/lib.sh"
e2e_init
lab_up "$TOPO/split.yaml"

FLOWS=1000
PORT0=20000 # A's source ports PORT0 .. PORT0+FLOWS-1
ECHO_PORT=7777

# ---- the two paths of chain scan ----
path_spis h1 >"$TMP/paths" 2>&1
note "paths on h1: $(tr '\n' ';' <"$TMP/paths")"
read -r F1 R1 _ < <(awk '$3 == "ids1@h2"' "$TMP/paths")
read -r F2 R2 _ < <(awk '$3 == "ids2@h3"' "$TMP/paths")
if [ -n "${F1:-}" ] && [ -n "${F2:-}" ] && [ "$(wc -l <"$TMP/paths")" -eq 2 ]; then
	pass "chain scan has two paths: ids1@h2 (SPI $F1/$R1) and ids2@h3 (SPI $F2/$R2)"
else
	fail "want exactly the paths ids1@h2 and ids2@h3 on h1"
	show_out "$TMP/paths"
	finish
fi

# spi_count FILE SPI: the count of SPI in an sn_spi_counts listing (0 if none).
spi_count() { awk -v s="$2" '$1 == s { c = $2 } END { print c + 0 }' "$1"; }

# ---- UDP echo in B, 1000 flows from A ----
cat >"$TMP/echo.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, addr = s.recvfrom(2048)
    s.sendto(data, addr)
EOF
# One socket per flow (source port PORT0+i), one datagram each, sent in
# batches of 50; prints how many flows got their own datagram back.
cat >"$TMP/flows.py" <<'EOF'
import select, socket, sys, time
dst, port, n, port0 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
socks = []
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port0 + i))
    s.setblocking(False)
    socks.append(s)
got = set()
deadline = time.time() + 30
for start in range(0, n, 50):
    pending = {}
    for s in socks[start:start + 50]:
        s.sendto(b"flow %d" % s.getsockname()[1], (dst, port))
        pending[s.fileno()] = s
    while pending and time.time() < deadline:
        ready, _, _ = select.select(list(pending.values()), [], [], 2.0)
        if not ready:
            break
        for s in ready:
            try:
                data = s.recv(2048)
            except BlockingIOError:
                continue
            if data == b"flow %d" % s.getsockname()[1]:
                got.add(s.getsockname()[1])
                pending.pop(s.fileno(), None)
print(len(got))
EOF
bg B "$PY" "$TMP/echo.py" 192.168.1.2 "$ECHO_PORT" >"$TMP/echo.log" 2>&1
udp_listening() { [ -n "$(lab_exec B ss -Hlun "sport = :$ECHO_PORT" 2>/dev/null)" ]; }
if ! wait_until 10 udp_listening; then
	fail "UDP echo server in B did not start"
	show_out "$TMP/echo.log"
	finish
fi

sn_spi_counts ids1 >"$TMP/ids1.0" && sn_spi_counts ids2 >"$TMP/ids2.0"
assert "detour-sn counters of ids1 and ids2 readable" $? -eq 0
ul_capture_start "$TMP/ul.pcap" || finish
answered=$(lab_exec A "$PY" "$TMP/flows.py" 192.168.1.2 "$ECHO_PORT" "$FLOWS" "$PORT0" 2>"$TMP/flows.err")
assert "all $FLOWS UDP flows A -> B answered through the chain (got ${answered:-none})" "${answered:-0}" = "$FLOWS"
[ -s "$TMP/flows.err" ] && show_out "$TMP/flows.err"
if ul_capture_stop; then pass "underlay capture complete (no packet dropped by the kernel)"; else
	fail "underlay capture lost packets"; show_out "$CAP_LOG"; fi
sn_spi_counts ids1 >"$TMP/ids1.1"
sn_spi_counts ids2 >"$TMP/ids2.1"

# ---- the split, from the nodes' counters ----
f1=$(($(spi_count "$TMP/ids1.1" "$F1") - $(spi_count "$TMP/ids1.0" "$F1")))
r1=$(($(spi_count "$TMP/ids1.1" "$R1") - $(spi_count "$TMP/ids1.0" "$R1")))
f2=$(($(spi_count "$TMP/ids2.1" "$F2") - $(spi_count "$TMP/ids2.0" "$F2")))
r2=$(($(spi_count "$TMP/ids2.1" "$R2") - $(spi_count "$TMP/ids2.0" "$R2")))
note "ids1@h2: forward +$f1, reverse +$r1; ids2@h3: forward +$f2, reverse +$r2"
assert "every flow's forward packet went through exactly one node (ids1 $f1 + ids2 $f2 = $FLOWS)" \
	$((f1 + f2)) -eq "$FLOWS"
lo=$((FLOWS / 2 - FLOWS / 20))
hi=$((FLOWS / 2 + FLOWS / 20))
if [ "$f1" -ge "$lo" ] && [ "$f1" -le "$hi" ] && [ "$f2" -ge "$lo" ] && [ "$f2" -le "$hi" ]; then
	pass "split matches equal weights within 10% (ids1 $f1, ids2 $f2; allowed $lo..$hi)"
else
	fail "split off equal weights by more than 10%: ids1 $f1, ids2 $f2 (allowed $lo..$hi each)"
fi
assert "ids1: as many reverse packets as forward ones ($r1 = $f1)" "$r1" -eq "$f1"
assert "ids2: as many reverse packets as forward ones ($r2 = $f2)" "$r2" -eq "$f2"
o1=$(($(spi_count "$TMP/ids1.1" "$F2") + $(spi_count "$TMP/ids1.1" "$R2")))
o2=$(($(spi_count "$TMP/ids2.1" "$F1") + $(spi_count "$TMP/ids2.1" "$R1")))
assert "ids1 saw no packet of ids2's path, ids2 none of ids1's ($o1, $o2)" $((o1 + o2)) -eq 0

# ---- per flow, from the underlay: forward and reverse through one node ----
# Service-plane packets h1 sent (SI 255, the first hop of either direction):
# outer destination, SPI, inner UDP ports. A flow is A's source port.
tshark -r "$TMP/ul.pcap" -Y "ip.src == 10.0.0.1 && nsh.si == 255 && udp.port == $ECHO_PORT" \
	-T fields -E occurrence=a -E separator=/t -e ip.dst -e nsh.spi -e udp.srcport -e udp.dstport \
	2>/dev/null >"$TMP/first-hops"
"$PY" - "$TMP/first-hops" "$FLOWS" "$PORT0" "$ECHO_PORT" "$F1" "$R1" "$F2" "$R2" >"$TMP/perflow" <<'EOF'
import sys
path, n, port0, echo = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
f1, r1, f2, r2 = (int(x) for x in sys.argv[5:9])
node = {f1: ("ids1", "10.0.0.2", "fwd"), r1: ("ids1", "10.0.0.2", "rev"),
        f2: ("ids2", "10.0.0.3", "fwd"), r2: ("ids2", "10.0.0.3", "rev")}
seen = {}  # flow -> {"fwd": set of (node, ok), "rev": ...}
for line in open(path):
    cols = line.rstrip("\n").split("\t")
    if len(cols) < 4:
        continue
    dst = cols[0].split(",")[0]
    spi = int(cols[1])
    sport = [int(x) for x in cols[2].split(",")][-1]   # inner UDP
    dport = [int(x) for x in cols[3].split(",")][-1]
    if spi not in node:
        print("unknown SPI %d" % spi)
        continue
    name, host, way = node[spi]
    flow = sport if way == "fwd" else dport
    seen.setdefault(flow, {"fwd": set(), "rev": set()})[way].add((name, dst == host))
bad = 0
for flow in range(port0, port0 + n):
    s = seen.get(flow)
    if not s or len(s["fwd"]) != 1 or s["fwd"] != s["rev"] or not all(ok for _, ok in s["fwd"]):
        bad += 1
        if bad <= 5:
            print("flow %d: %r" % (flow, s))
print("flows %d bad %d" % (len(seen), bad))
EOF
if grep -q "^flows $FLOWS bad 0$" "$TMP/perflow"; then
	pass "per flow (capture): forward and reverse SPI of one path, both sent by h1 to that node's host ($FLOWS flows)"
else
	fail "per flow (capture): some flow's forward and reverse did not go through the same node"
	show_out "$TMP/perflow"
fi
finish

#!/usr/bin/env bash
# e2e_ovs_nsh: NSH interoperability with an implementation that is not ours.
# One host, chain fw (l2 bridge node) -> ids (nsh node ovs1). In ovs1's
# namespace the lab's detour-sn is stopped and Open vSwitch 3.1 (userspace
# datapath, started by this test with scripts/ovs-sn.sh) serves the node
# instead: one OpenFlow flow per SI value decrements the SI, swaps the MACs
# and sends the NSH frame back out the port it came in on.
# Checks: the frames OVS returns are the frames detourd sent with SI - 1 and
# the MACs swapped, nothing else changed (MD2 context TLV and inner frame
# intact); ping and a 1 MiB HTTP transfer both ways, byte for byte, with the
# guests' default offloads; OVS's per-SPI flow counters saw the forward and
# the reverse SPI of the chain's path; detourd counted no bad-SI/SPI or NSH
# parse drops; and as a control, a flow that returns a wrong SI makes detourd
# drop the frames as "bad SI" (so the drop check can fail).
source "$(dirname "$0")/lib.sh"
e2e_init

OVS_SN=$REPO/scripts/ovs-sn.sh
NODE=ovs1
NODE_MAC=02:00:00:00:aa:01
OVS_RUN=$TMP/ovs

if ! command -v ovs-vswitchd >/dev/null || ! command -v ovs-ofctl >/dev/null; then
	fail "Open vSwitch is not installed (scripts/install-deps.sh installs openvswitch-switch)"
	exit 1
fi

# OVS first, then everything lib.sh cleans (the lab, background jobs, TMP).
ovs_cleanup() {
	local rc=$?
	"$OVS_SN" stop "$OVS_RUN" >/dev/null 2>&1
	(exit "$rc")
	cleanup
}
trap ovs_cleanup EXIT

lab_up "$TOPO/ovs.yaml"

# ---- OVS replaces detour-sn in the nsh node's namespace ----
sn_pid=$("$LAB" --prefix "$PREFIX" pid "$NODE")
kill -TERM "$sn_pid" 2>/dev/null
sn_gone() { ! kill -0 "$sn_pid" 2>/dev/null; }
if wait_until 5 sn_gone; then
	pass "detour-sn of $NODE stopped (pid $sn_pid)"
else
	fail "detour-sn of $NODE (pid $sn_pid) did not stop"
	exit 1
fi
if "$OVS_SN" start "$PREFIX-$NODE" eth0 "$NODE_MAC" "$OVS_RUN" >"$TMP/ovs-start.log" 2>&1; then
	pass "Open vSwitch started in $PREFIX-$NODE on eth0"
else
	fail "starting Open vSwitch in $PREFIX-$NODE"
	show_out "$TMP/ovs-start.log"
	show_out "$OVS_RUN/ovs-vswitchd.log"
	exit 1
fi
dp=$("$OVS_SN" vsctl "$OVS_RUN" get bridge br-sn datapath_type 2>/dev/null)
assert "the bridge uses the userspace datapath (datapath_type=$dp)" "$dp" = netdev
vswitchd_ns=$(ip netns identify "$(cat "$OVS_RUN/ovs-vswitchd.pid" 2>/dev/null)" 2>/dev/null)
assert "ovs-vswitchd runs inside $PREFIX-$NODE ($vswitchd_ns)" "$vswitchd_ns" = "$PREFIX-$NODE"

# ---- the chain's path and its SPIs; per-SPI counter flows in OVS ----
paths=$(ctl h1 --json show paths)
SPI_FWD=$(json_ints_named '^spi_fwd$' <<<"$paths")
SPI_REV=$(json_ints_named '^spi_rev$' <<<"$paths")
if [[ $SPI_FWD =~ ^[0-9]+$ && $SPI_REV =~ ^[0-9]+$ && $SPI_FWD != "$SPI_REV" ]]; then
	pass "one path with a forward ($SPI_FWD) and a reverse ($SPI_REV) SPI"
else
	fail "want one path with two SPIs; show paths gave fwd '$SPI_FWD' rev '$SPI_REV'"
	exit 1
fi
ok=1
for s in "$SPI_FWD" "$SPI_REV"; do
	"$OVS_SN" watch-spi "$OVS_RUN" "$s" >"$TMP/out" 2>&1 || ok=0
done
assert "per-SPI counter flows added in OVS" "$ok" = 1

# drops_matching RE: detourd's drop counters whose reason matches RE, summed.
drops_matching() {
	ctl h1 --json show stats | "$PY" -c '
import json, re, sys
pat = re.compile(sys.argv[1], re.I)
d = json.load(sys.stdin).get("drops", {})
print(sum(int(v) for k, v in d.items() if pat.search(k) and isinstance(v, int)))' "$1"
}
BAD_RE='service node returned (a bad SI|another SPI|a non-NSH)|^NSH '
bad0=$(drops_matching "$BAD_RE")
badsi0=$(drops_matching 'returned a bad SI')

# ---- what OVS sends back, frame by frame ----
# A capture on eth0 inside the node: the frames detourd sends in and the
# frames OVS sends back. Each returned frame must be its request with the
# MACs swapped and the SI one lower, every other byte the same.
bg "$NODE" tcpdump -n -U --immediate-mode -i eth0 -w "$TMP/nsh.pcap" 'ether proto 0x894f' 2>"$TMP/tcpdump.log"
TCPDUMP_PID=$BG_PID
tcpdump_ready() { grep -q "listening on" "$TMP/tcpdump.log"; }
wait_until 5 tcpdump_ready || note "tcpdump did not say it listens"
check "ping vm1 -> vm2 through fw and OVS" ping_ok vm1 192.168.1.2 5
check "ping vm2 -> vm1 through fw and OVS" ping_ok vm2 192.168.1.1 5
# Every frame has gone by when ping ends; let tcpdump write the last ones.
nsh_pairs() {
	"$PY" -c '
import sys
raw = open(sys.argv[1], "rb").read()
n, off = [0, 0], 24
node = bytes.fromhex(sys.argv[2].replace(":", ""))
while off + 16 <= len(raw):
    incl = int.from_bytes(raw[off + 8:off + 12], "little")
    f = raw[off + 16:off + 16 + incl]
    n[0] += f[0:6] == node
    n[1] += f[6:12] == node
    off += 16 + incl
sys.exit(0 if n[0] >= 18 and n[0] == n[1] else 1)' "$TMP/nsh.pcap" "$NODE_MAC"
}
wait_until 3 nsh_pairs
stop_bg "$TCPDUMP_PID"

check "OVS returned each NSH frame with SI - 1 and MACs swapped, all else unchanged" \
	"$PY" - "$TMP/nsh.pcap" "$NODE_MAC" "$SPI_FWD" "$SPI_REV" <<'EOF'
import struct, sys
path, node, spi_fwd, spi_rev = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
node = bytes.fromhex(node.replace(":", ""))
raw = open(path, "rb").read()
if len(raw) < 24:
    sys.exit("empty capture")
magic = raw[:4]
endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
frames, off = [], 24
while off + 16 <= len(raw):
    incl = struct.unpack(endian + "I", raw[off + 8:off + 12])[0]
    frames.append(raw[off + 16:off + 16 + incl])
    off += 16 + incl
sent = [f for f in frames if f[0:6] == node]   # detourd -> OVS
back = [f for f in frames if f[6:12] == node]  # OVS -> detourd
print("frames: %d in, %d back" % (len(sent), len(back)))
if len(sent) < 18 or len(back) != len(sent):
    sys.exit("want >= 18 frames in and as many back")
seen = set()
for i, (a, b) in enumerate(zip(sent, back)):
    if len(a) != len(b):
        sys.exit("frame %d: length %d in, %d back" % (i, len(a), len(b)))
    if b[0:6] != a[6:12]:
        sys.exit("frame %d: returned to %s, not to the sender %s" % (i, b[0:6].hex(), a[6:12].hex()))
    if a[12:14] != b"\x89\x4f" or a[16] & 0x0f != 2:
        sys.exit("frame %d: not NSH MD type 2" % i)
    spi, si = int.from_bytes(a[18:21], "big"), a[21]
    if b[21] != si - 1:
        sys.exit("frame %d: SI %d in, %d back" % (i, si, b[21]))
    if a[12:21] != b[12:21] or a[22:] != b[22:]:
        sys.exit("frame %d: bytes other than MACs and SI changed" % i)
    seen.add(spi)
    print("SPI %d SI %d -> %d ok" % (spi, si, b[21]))
if seen != {spi_fwd, spi_rev}:
    sys.exit("SPIs seen %s, want forward and reverse %s" % (sorted(seen), [spi_fwd, spi_rev]))
EOF
sort -u "$TMP/out" | grep '^SPI' | sed 's/^/  # /'
# The SI at which the forward SPI reaches ovs1 (254: fw had 255).
FWD_SI=$(sed -n "s/^SPI $SPI_FWD SI \([0-9]*\) .*/\1/p" "$TMP/out" | head -n 1)
[[ $FWD_SI =~ ^[0-9]+$ ]] && [ "$FWD_SI" -ge 2 ] || FWD_SI=254

# ---- HTTP, 1 MiB both ways, default offloads in the guests ----
if lab_exec vm1 ethtool -k eth0 2>/dev/null | grep -q '^tcp-segmentation-offload: on'; then
	pass "vm1 eth0 keeps its default offloads (TSO on)"
else
	fail "vm1 eth0 should keep its default offloads (TSO on)"
fi
mkdir -p "$TMP/www1" "$TMP/www2"
make_blob "$TMP/www2/blob"
make_blob "$TMP/www1/blob"
if http_serve vm2 192.168.1.2 80 "$TMP/www2"; then
	check "1 MiB over HTTP vm1 -> vm2 through the chain, byte for byte" \
		http_fetch_same vm1 http://192.168.1.2/blob "$TMP/got2" "$TMP/www2/blob"
	stop_bg "$HTTP_PID"
fi
if http_serve vm1 192.168.1.1 80 "$TMP/www1"; then
	check "1 MiB over HTTP vm2 -> vm1 through the chain, byte for byte" \
		http_fetch_same vm2 http://192.168.1.1/blob "$TMP/got1" "$TMP/www1/blob"
	stop_bg "$HTTP_PID"
fi

# ---- counters ----
# OVS pushes datapath statistics to its flows about twice a second: poll.
# 1 MiB each way is >= 700 full segments in each direction of the path.
spi_count_ge() { [ "$("$OVS_SN" count "$OVS_RUN" "$1")" -ge "$2" ]; }
for s in "$SPI_FWD" "$SPI_REV"; do
	wait_until 5 spi_count_ge "$s" 700
	c=$("$OVS_SN" count "$OVS_RUN" "$s")
	assert "OVS counted >= 700 NSH frames on SPI $s ($c)" "$c" -ge 700
done
# All of them went through the SI flows (and no frame hit the SI flows
# without being counted per SPI).
si_matches_spis() {
	[ "$("$OVS_SN" count "$OVS_RUN")" -eq \
		$(($("$OVS_SN" count "$OVS_RUN" "$SPI_FWD") + $("$OVS_SN" count "$OVS_RUN" "$SPI_REV"))) ]
}
wait_until 5 si_matches_spis
c_si=$("$OVS_SN" count "$OVS_RUN")
c_f=$("$OVS_SN" count "$OVS_RUN" "$SPI_FWD")
c_r=$("$OVS_SN" count "$OVS_RUN" "$SPI_REV")
assert "SI flows returned every frame of both SPIs ($c_si = $c_f + $c_r)" "$c_si" -eq $((c_f + c_r))
"$OVS_SN" ofctl "$OVS_RUN" dump-flows "table=1" | grep -v 'n_packets=0,' |
	sed -n 's/.*n_packets=\([0-9]*\).*nsh_si=\([0-9]*\).*/SI \2: \1 packets/p' | sed 's/^/  # /'
bad1=$(drops_matching "$BAD_RE")
assert "detourd counted no bad SI/SPI, non-NSH or NSH parse drops ($bad0 -> $bad1)" "$bad1" -eq "$bad0"

# ---- control: a flow that returns the wrong SI is caught ----
# Make the SI flow of the forward SPI return SI - 2 instead of SI - 1.
si_flow() { # SI RETURNED-SI
	echo "table=1,dl_type=0x894f,nsh_si=$1,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:$NODE_MAC,set_field:$2->nsh_si,in_port"
}
"$OVS_SN" ofctl "$OVS_RUN" mod-flows "$(si_flow "$FWD_SI" $((FWD_SI - 2)))" >"$TMP/out" 2>&1 ||
	{ fail "mod-flows for the control"; show_out "$TMP/out"; }
check "with OVS returning SI - 2 at SI $FWD_SI, ping vm1 -> vm2 fails" ping_fails vm1 192.168.1.2
badsi1=$(drops_matching 'returned a bad SI')
assert "detourd dropped them as 'bad SI' ($badsi0 -> $badsi1)" "$badsi1" -gt "$badsi0"
"$OVS_SN" ofctl "$OVS_RUN" mod-flows "$(si_flow "$FWD_SI" $((FWD_SI - 1)))" >"$TMP/out" 2>&1 ||
	{ fail "mod-flows to restore"; show_out "$TMP/out"; }
check "with the SI - 1 flow back, ping vm1 -> vm2 works again" ping_ok vm1 192.168.1.2 3
finish

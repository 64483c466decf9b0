#!/usr/bin/env bash
# e2e_underlay: Geneve only from known VTEPs (topo/three.yaml).
# A real service-plane datagram is captured on the underlay (the echo request
# of one ping A -> B on its hop h2 > h3, SI 254, to the NSH node ids1), then
# its UDP payload is replayed to h3:6081 with scapy:
#   - from 10.0.0.99, an address on the underlay bridge that is no VTEP:
#     dropped: h3's "(unknown)" tunnel row counts it in rx_drops, ids1's
#     detour-sn sees nothing on the forward SPI, h3's row for h2 does not move;
#   - from 10.0.0.2 (h2's VTEP, sent inside h2): accepted: h3's row for h2
#     counts it in rx_pkts and ids1 receives it (so the first case can fail).
source "$(dirname "$0")/lib.sh"
e2e_init
lab_up "$TOPO/three.yaml"

# ---- one real service-plane datagram ----
ul_capture_start "$TMP/ul.pcap" || finish
check "ping A -> B through the chain" ping_ok A 192.168.1.2 1
ul_capture_stop
HOP="ip.src == 10.0.0.2 && ip.dst == 10.0.0.3 && nsh.si == 254 && icmp.type == 8"
n=$(ul_fields "$TMP/ul.pcap" "$HOP" frame.number | wc -l)
assert "captured the echo request on hop h2 > h3 (SI 254) once ($n)" "$n" -eq 1
"$PY" - "$TMP/ul.pcap" "$TMP/payload" >"$TMP/extract.log" 2>&1 <<'EOF'
import sys
from scapy.all import rdpcap, IP, UDP
for p in rdpcap(sys.argv[1]):
    if IP in p and UDP in p and p[IP].src == "10.0.0.2" and p[IP].dst == "10.0.0.3" \
            and p[UDP].dport == 6081:
        raw = bytes(p[UDP].payload)
        # Geneve: protocol 0x894F; NSH after 8 bytes + options; SI at byte 7.
        optlen = (raw[0] & 0x3f) * 4
        nsh = raw[8 + optlen:]
        if raw[2:4] == b"\x89\x4f" and len(nsh) > 8 and nsh[7] == 254:
            open(sys.argv[2], "wb").write(raw)
            print("payload %d bytes" % len(raw))
            sys.exit(0)
sys.exit("no service-plane datagram h2 > h3 with SI 254")
EOF
if [ -s "$TMP/payload" ]; then
	pass "UDP payload of that datagram extracted ($(cat "$TMP/extract.log"))"
else
	fail "could not extract the service-plane payload"
	show_out "$TMP/extract.log"
	finish
fi

# replay NAME SRC: sends the payload from SRC:6081 to 10.0.0.3:6081 with
# scapy inside namespace NAME.
REPLAY_PY='
import sys
from scapy.all import IP, UDP, Raw, send
payload = open(sys.argv[2], "rb").read()
send(IP(src=sys.argv[1], dst="10.0.0.3") / UDP(sport=6081, dport=6081) / Raw(payload), verbose=0)
'
replay() { lab_exec "$1" "$PY" -c "$REPLAY_PY" "$2" "$TMP/payload"; }

read -r SPI_F _ < <(path_spis h1 2>/dev/null)
# sn_fwd: packets of the forward SPI ids1's detour-sn received (the replayed
# echo request is one; B's answer to it comes back on the reverse SPI).
sn_fwd() { sn_spi_counts ids1 | awk -v s="${SPI_F:-x}" '$1 == s { c = $2 } END { print c + 0 }'; }
# counters: U = "(unknown)" rx_drops on h3, P = h3's rx_pkts from h2,
# N = forward-SPI packets ids1 received.
counters() {
	U=$(tunnel_counter h3 "(unknown)" rx_drops)
	P=$(tunnel_counter h3 h2 rx_pkts)
	N=$(sn_fwd)
}
unknown_above() { [ "$(tunnel_counter h3 "(unknown)" rx_drops)" -gt "$1" ]; }
sn_above() { [ "$(sn_fwd)" -gt "$1" ]; }

# ---- from an address that is not a VTEP ----
if ul_attach spoof 10.0.0.99/24; then
	pass "namespace $PREFIX-spoof on the underlay bridge at 10.0.0.99 (no VTEP)"
else
	fail "could not attach a namespace to the underlay bridge"
	finish
fi
counters
U0=$U P0=$P N0=$N
note "before: h3 (unknown) rx_drops $U0, h3 rx_pkts from h2 $P0, ids1 rx on SPI ${SPI_F:-?} $N0"
check "replay sent from 10.0.0.99" replay spoof 10.0.0.99
wait_until 5 unknown_above "$U0"
wait_until 1 sn_above "$N0" # give a wrongly accepted packet time to arrive
tunnels_out=$(ctl h3 show tunnels 2>&1)
counters
note "after:  h3 (unknown) rx_drops $U, h3 rx_pkts from h2 $P, ids1 rx on SPI ${SPI_F:-?} $N"
assert "non-VTEP sender: the (unknown) row of h3's show tunnels counts the drop ($U0 -> $U)" \
	"$U" -eq $((U0 + 1))
assert "non-VTEP sender: ids1 received nothing ($N0 -> $N)" "$N" = "$N0"
assert "non-VTEP sender: h3's row for h2 did not move ($P0 -> $P)" "$P" = "$P0"
[ "$U" -eq $((U0 + 1)) ] || sed "s/^/  | /" <<<"$tunnels_out"

# ---- the same payload from a VTEP ----
check "replay sent from h2's VTEP 10.0.0.2" replay h2 10.0.0.2
wait_until 5 sn_above "$N"
U1=$U P1=$P N1=$N
counters
note "after:  h3 (unknown) rx_drops $U, h3 rx_pkts from h2 $P, ids1 rx on SPI ${SPI_F:-?} $N"
assert "VTEP sender: accepted, h3's row for h2 counts it ($P1 -> $P)" "$P" -eq $((P1 + 1))
assert "VTEP sender: ids1 received the replayed packet ($N1 -> $N)" "$N" -eq $((N1 + 1))
assert "VTEP sender: the (unknown) row did not move ($U1 -> $U)" "$U" = "$U1"
check "ping A -> B still works" ping_ok A 192.168.1.2 2
finish

#!/usr/bin/env bash
# e2e_basic: two guests on one host, no rule. Ping both ways, HTTP with curl
# to a real server in the other guest, a 1 MiB random file compared byte for
# byte, both ways, with the interfaces' default offloads (nothing turned off).
source "$(dirname "$0")/lib.sh"
e2e_init
lab_up "$TOPO/basic.yaml"

check "ping vm1 -> vm2" ping_ok vm1 192.168.1.2 5
check "ping vm2 -> vm1" ping_ok vm2 192.168.1.1 5

# Offloads are left at their defaults: make sure the test runs with them on.
# (A native XDP program on the host side of a veth makes the kernel turn
# GSO/TSO off on the guest side: with AF_XDP ports that is the default.)
if [ "${E2E_IO:-}" = afxdp ]; then
	if lab_exec vm1 ethtool -k eth0 2>/dev/null | grep -q '^tx-checksumming: on'; then
		pass "vm1 eth0 keeps TX checksum offload on (the kernel turned TSO off for XDP)"
	else
		fail "vm1 eth0 should keep TX checksum offload on"
	fi
elif lab_exec vm1 ethtool -k eth0 2>/dev/null | grep -q '^tcp-segmentation-offload: on'; then
	pass "vm1 eth0 has TSO on (default offloads)"
else
	fail "vm1 eth0 should keep its default offloads (TSO on)"
fi

mkdir -p "$TMP/www1" "$TMP/www2"
make_blob "$TMP/www2/blob"
make_blob "$TMP/www1/blob"
echo "hello from vm2" >"$TMP/www2/index.html"

if http_serve vm2 192.168.1.2 80 "$TMP/www2"; then
	check "HTTP GET vm1 -> vm2 (small page)" http_fetch_same vm1 http://192.168.1.2/index.html "$TMP/page" "$TMP/www2/index.html"
	check "1 MiB over HTTP vm1 -> vm2, byte for byte" http_fetch_same vm1 http://192.168.1.2/blob "$TMP/got2" "$TMP/www2/blob"
	stop_bg "$HTTP_PID"
fi
if http_serve vm1 192.168.1.1 80 "$TMP/www1"; then
	check "1 MiB over HTTP vm2 -> vm1, byte for byte" http_fetch_same vm2 http://192.168.1.1/blob "$TMP/got1" "$TMP/www1/blob"
	stop_bg "$HTTP_PID"
fi
check "HTTP server stopped" wait_until 5 not_listening vm1 80

check "detourctl show ports" ctl h1 show ports

# A guest's interface disappears and comes back (a VM restarting): detourd
# closes the port instead of spinning on its dead socket, and picks the new
# interface up by name.
port_missing() { ctl h1 --json show ports | grep -q '"state": "missing"'; }
detourd_idle() { # CPU time of detourd over 1 s stays well under a core
	local pid t0 t1
	pid=$("$LAB" --prefix "$PREFIX" pid h1) || return 1
	t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	sleep 1
	t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	[ $((t1 - t0)) -lt 30 ]
}
lab_exec h1 ip link del vm1p
check "detourd notices vm1p is gone" wait_until 5 port_missing
check "detourd does not spin on the dead port" detourd_idle
ip link add vm1p netns "$PREFIX-h1" type veth peer name eth0 netns "$PREFIX-vm1"
lab_exec vm1 ip link set eth0 address 02:00:00:00:01:01
lab_exec vm1 ip addr add 192.168.1.1/24 dev eth0
lab_exec vm1 ip link set eth0 up
check "the recreated vm1p carries traffic again" wait_until 10 ping_ok vm1 192.168.1.2 1
finish

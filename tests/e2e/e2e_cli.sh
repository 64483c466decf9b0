#!/usr/bin/env bash
# e2e_cli: detourctl's contract. A wrong argument prints usage and exits 2;
# no daemon gives a clear error and a non-zero exit; every `show` object
# exits 0 against a running lab and its --json output parses; trace works.
source "$(dirname "$0")/lib.sh"
e2e_init

usage_exit2() {
	local rc
	"$CTL" "$@" >"$TMP/cli.out" 2>&1
	rc=$?
	[ "$rc" -eq 2 ] && grep -qi usage "$TMP/cli.out"
}
check "no argument: usage, exit 2" usage_exit2
check "unknown option: usage, exit 2" usage_exit2 --no-such-option show ports
check "unknown command: usage, exit 2" usage_exit2 frobnicate
check "unknown show object: usage, exit 2" usage_exit2 show nonsense
check "trace without a flow: usage, exit 2" usage_exit2 trace vm1

nosock=/run/detour/nonexistent-$PREFIX.sock
no_daemon() {
	local rc
	"$CTL" --socket "$nosock" show ports >"$TMP/cli.out" 2>&1
	rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] && [ "$rc" -ne 2 ] &&
		grep -Eqi "$nosock|detourd|daemon|connect" "$TMP/cli.out"
}
check "no daemon: clear error, non-zero exit" no_daemon
show_out "$TMP/cli.out" 2

lab_up "$TOPO/chain.yaml"
check "ping vm1 -> vm2 (some flows to show)" ping_ok vm1 192.168.1.2 2
for obj in ports rules chains paths flows nodes stats; do
	check "show $obj exits 0" ctl h1 show "$obj"
	if [ -s "$TMP/out" ]; then pass "show $obj prints something"; else fail "show $obj printed nothing"; fi
	check "--json show $obj parses" bash -c "'$CTL' --socket /run/detour/$PREFIX-h1.sock --json show $obj | '$PY' -m json.tool"
done
check "trace exits 0" ctl h1 trace vm1 "tcp 192.168.1.1:40000 > 192.168.1.2:80"
check "--json trace parses" bash -c "'$CTL' --socket /run/detour/$PREFIX-h1.sock --json trace vm1 'tcp 192.168.1.1:40000 > 192.168.1.2:80' | '$PY' -m json.tool"
check_not "trace of an unknown guest fails" ctl h1 trace nosuchguest "tcp 192.168.1.1:40000 > 192.168.1.2:80"
check_not "trace of a malformed flow fails" ctl h1 trace vm1 "tcp 192.168.1.1:x > nowhere"
check_not "node down of an unknown node fails" ctl h1 node down nosuchnode
check "detourctl in the host namespace finds its detourd (DETOUR_SOCKET)" lab_exec h1 "$CTL" show ports
finish

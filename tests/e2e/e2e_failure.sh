#!/usr/bin/env bash
# e2e_failure: failure policies driven by `detourctl node down|up`.
#   vm1 -> vm2 pings go through chain cb = [sb], sb has failure: block;
#   vm3 -> vm2 pings go through chain ca = [sa], sa has failure: allow.
# With every node of sb down, new flows of cb are dropped; with sa's down,
# traffic bypasses sa (its counters stay still); `node up` restores both.
# Each ping run is a new flow (a new ICMP identifier).
source "$(dirname "$0")/lib.sh"
e2e_init
lab_up "$TOPO/failure.yaml"

# ---- block ----
snapshot A0 sb1
check "ping vm1 -> vm2 through sb1" ping_ok vm1 192.168.1.2 3
snapshot A1 sb1
d=$(delta A0 A1 sb1)
assert "sb1 carried the pings (+$d, want >= 6)" "$d" -ge 6
check "detourctl node down sb1" ctl h1 node down sb1
if ctl h1 show nodes 2>/dev/null | grep -i sb1 | grep -qi down; then
	pass "show nodes reports sb1 down"
else
	fail "show nodes does not report sb1 down"
fi
check "failure: block drops new flows while sb has no live node" ping_fails vm1 192.168.1.2
check "detourctl node up sb1" ctl h1 node up sb1
check "node up restores the blocked chain" wait_until 5 ping_ok vm1 192.168.1.2 2
snapshot A2 sb1
d=$(delta A1 A2 sb1)
assert "sb1 carries traffic again (+$d)" "$d" -gt 0

# ---- allow ----
snapshot B0 sa1
check "ping vm3 -> vm2 through sa1" ping_ok vm3 192.168.1.2 3
snapshot B1 sa1
d=$(delta B0 B1 sa1)
assert "sa1 carried the pings (+$d, want >= 6)" "$d" -ge 6
check "detourctl node down sa1" ctl h1 node down sa1
check "failure: allow lets new flows bypass sa" ping_ok vm3 192.168.1.2 5
snapshot B2 sa1
d=$(delta B1 B2 sa1)
assert "sa1's counter did not move while it was down (+$d)" "$d" = 0
check "detourctl node up sa1" ctl h1 node up sa1
check "ping vm3 -> vm2 after node up" ping_ok vm3 192.168.1.2 3
snapshot B3 sa1
d=$(delta B2 B3 sa1)
assert "sa1 carries traffic again after node up (+$d)" "$d" -gt 0

check_not "node down of an unknown node fails" ctl h1 node down nosuchnode
finish

#!/usr/bin/env bash
# e2e_reload: a rejected reload leaves traffic flowing, a valid one applies,
# and valid reloads under traffic lose no packet.
# A `ping -i 0.05 -c 60` through chain c1 runs across `detourctl reload` of
# an invalid topology (unknown network, duplicate MAC) written over the
# lab's copy of the file: reload exits non-zero and prints each error with
# its line, and not one ping is lost. Then a valid change applies (exit 0).
source "$(dirname "$0")/lib.sh"
e2e_init
lab_up "$TOPO/reload.yaml"
CFG=$STATE/topology.yaml
cp "$CFG" "$TMP/orig.yaml"

snapshot R0 mon1
check "ping vm1 -> vm2 through chain c1" ping_ok vm1 192.168.1.2 3
snapshot R1 mon1
d=$(delta R0 R1 mon1)
assert "mon1 carried the pings (+$d)" "$d" -ge 6

# The invalid file: vm2 on an unknown network (line L1), and a new guest
# with vm1's MAC (line L2 = L1 + 1).
L1=$(grep -n 'name: vm2,' "$TMP/orig.yaml" | cut -d: -f1)
L2=$((L1 + 1))
awk -v l="$L1" '{
	if (NR == l) { sub(/network: blue/, "network: nosuchnet"); print;
	  print "  - { name: vm9, host: h1, network: blue, port: vm9p, mac: \"02:00:00:00:01:01\" }" }
	else print }' "$TMP/orig.yaml" >"$TMP/bad.yaml"

bg vm1 ping -n -i 0.05 -c 60 -W 1 192.168.1.2 >"$TMP/ping.log" 2>&1
PING_PID=$BG_PID
replies() { [ "$(grep -c 'bytes from' "$TMP/ping.log")" -ge "$1" ]; }
check "background ping is answered" wait_until 5 replies 5

cp "$TMP/bad.yaml" "$CFG"
ctl h1 reload >"$TMP/reload.out" 2>&1
rc=$?
assert "reload of an invalid topology exits non-zero (exit $rc)" "$rc" -ne 0
assert "reload of an invalid topology is not a crash or usage error (exit $rc)" "$rc" -ne 2 -a "$rc" -lt 128
has_line() { grep -Eq "(:|line |line: )$1([^0-9]|$)" "$TMP/reload.out"; }
if has_line "$L1" && grep -q nosuchnet "$TMP/reload.out"; then
	pass "reload reports the unknown network with its line ($L1)"
else
	fail "reload should report the unknown network 'nosuchnet' at line $L1"
	show_out "$TMP/reload.out"
fi
if has_line "$L2" && grep -Eqi 'duplicate|02:00:00:00:01:01' "$TMP/reload.out"; then
	pass "reload reports the duplicate MAC with its line ($L2)"
else
	fail "reload should report the duplicate MAC at line $L2"
	show_out "$TMP/reload.out"
fi
check "detourd still answers after the rejected reload" ctl h1 show ports

wait "$PING_PID"
if grep -q ' 60 received, 0% packet loss' "$TMP/ping.log"; then
	pass "no ping lost across the rejected reload"
else
	fail "pings were lost across the rejected reload"
	show_out "$TMP/ping.log" 4
fi
snapshot R2 mon1
d=$(delta R1 R2 mon1)
assert "the pings kept going through mon1 (+$d, want >= 120)" "$d" -ge 120

# A valid change: a new rule sending vm1's TCP through c1 too.
cp "$TMP/orig.yaml" "$CFG"
cat >>"$CFG" <<'YAML'
  - name: tcp-out
    applied_to: [vm1]
    direction: egress
    priority: 50
    match: { proto: tcp, dst_port: "80-90" }
    action: redirect
    chain: c1
YAML
check "reload of a valid change exits 0" ctl h1 reload
check "show rules lists the new rule" bash -c "'$CTL' --socket /run/detour/$PREFIX-h1.sock show rules | grep -q tcp-out"
check "ping vm1 -> vm2 after the valid reload" ping_ok vm1 192.168.1.2 3

# Valid reloads under traffic: `ping -i 0.01` through c1 runs across five
# reloads that change the rules (the new configuration is published to the
# workers with RCU while they forward); not one ping may be lost.
cp "$CFG" "$TMP/with-rule.yaml"
sed 's/priority: 50/priority: 60/' "$TMP/with-rule.yaml" >"$TMP/with-rule2.yaml"
reloads() { ctl h1 --json show stats | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["reloads"])'; }
r0=$(reloads)
snapshot R3 mon1
bg vm1 ping -n -i 0.01 -c 600 -W 1 192.168.1.2 >"$TMP/ping2.log" 2>&1
PING_PID=$BG_PID
replies2() { [ "$(grep -c 'bytes from' "$TMP/ping2.log")" -ge "$1" ]; }
check "fast background ping is answered" wait_until 5 replies2 20
ok=0
for i in 1 2 3 4 5; do
	if [ $((i % 2)) = 1 ]; then cp "$TMP/with-rule2.yaml" "$CFG"; else cp "$TMP/with-rule.yaml" "$CFG"; fi
	ctl h1 reload >/dev/null 2>&1 && ok=$((ok + 1))
	wait_until 5 replies2 $((20 + 100 * i)) # the ping moves on between reloads
done
assert "five valid reloads under traffic exit 0 ($ok)" "$ok" -eq 5
r1=$(reloads)
assert "the daemon counted them ($r0 -> $r1)" "$r1" -eq $((r0 + 5))
wait "$PING_PID"
if grep -q ' 600 received, 0% packet loss' "$TMP/ping2.log"; then
	pass "no ping of 600 at 10 ms intervals lost across five reloads"
else
	fail "pings were lost across valid reloads"
	show_out "$TMP/ping2.log" 4
fi
snapshot R4 mon1
d=$(delta R3 R4 mon1)
assert "the pings went through mon1 all along (+$d, want >= 1200)" "$d" -ge 1200
finish

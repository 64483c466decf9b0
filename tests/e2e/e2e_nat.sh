#!/usr/bin/env bash
# e2e_nat: an l3 node that rewrites addresses. nat1 DNATs tcp 8080 to 80;
# vm1's TCP to port 8080 goes through it (egress rule), so a curl of
# vm2:8080 reaches the server on vm2:80 and the replies come back through
# the node (un-NATed), byte for byte. Then a direct connection from the
# source port a NAT'd one used: after the node it had the same tuple, so
# the NAT'd connection's alias must not capture the direct one's replies
# (it did, rarely, in e2e_workers when the kernel picked the same port).
source "$(dirname "$0")/lib.sh"
e2e_init
lab_up "$TOPO/nat.yaml"

check "DNAT 8080 -> 80 rule added in nat1" \
	lab_exec nat1 nft add rule inet detour prerouting tcp dport 8080 counter dnat ip to ip daddr:80
mkdir -p "$TMP/www"
make_blob "$TMP/www/blob"
if http_serve vm2 192.168.1.2 80 "$TMP/www"; then
	check "direct HTTP vm1 -> vm2:80 (no rule)" http_fetch_same vm1 http://192.168.1.2/blob "$TMP/direct" "$TMP/www/blob"
	snapshot N0 nat1
	check "1 MiB over HTTP vm1 -> vm2:8080 through the NAT node, byte for byte" \
		http_fetch_same vm1 http://192.168.1.2:8080/blob "$TMP/natted" "$TMP/www/blob"
	snapshot N1 nat1
	d=$(delta N0 N1 nat1)
	assert "nat1 forwarded the connection both ways (+$d, want >= 20)" "$d" -ge 20
	c=$(nft_packets nat1 inet detour prerouting)
	assert "nat1's DNAT rule matched ($c)" "$c" -ge 1
	check "a second connection through the NAT node" \
		http_fetch_same vm1 http://192.168.1.2:8080/blob "$TMP/natted2" "$TMP/www/blob"
	P=47123
	s0=$(stat_counter h1 nat_aliases_stale)
	check "HTTP vm1:$P -> vm2:8080 through the NAT node" \
		lab_exec vm1 curl -sS --fail --max-time 10 --local-port "$P" -o "$TMP/p1" http://192.168.1.2:8080/blob
	check "then HTTP vm1:$P -> vm2:80 directly (after the node the NAT'd one had this tuple), byte for byte" \
		lab_exec vm1 curl -sS --fail --max-time 10 --local-port "$P" -o "$TMP/p2" http://192.168.1.2/blob
	assert "the direct one is the whole blob" "$(same_file "$TMP/p2" "$TMP/www/blob" && echo y)" = y
	s1=$(stat_counter h1 nat_aliases_stale)
	assert "h1 dropped the NAT'd connection's stale alias ($s0 -> $s1)" "$s1" -gt "$s0"
fi
finish

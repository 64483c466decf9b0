/* test_datapath.c - the packet walk of SPEC section 3 on one host, in
 * memory: guest plane switching, chains of nsh/l2/l3 nodes, both
 * directions through the same nodes, copy, failure policy, forged frames. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

#include "conntrack.h"
#include "memhost.h"
#include "sn_emul.h"
#include "steer.h"
#include "nsh.h"
#include "wire.h"

static const char *TOPO =
	"service_plane: { vni: 4000 }\n"
	"hosts: [ { name: h1, vtep: 10.0.0.1 } ]\n"
	"networks: [ { name: blue, vni: 100 } ]\n"
	"guests:\n"
	"  - { name: vm1, host: h1, network: blue, port: vm1p, mac: \"02:00:00:00:01:01\", ip: 192.168.1.1 }\n"
	"  - { name: vm2, host: h1, network: blue, port: vm2p, mac: \"02:00:00:00:01:02\", ip: 192.168.1.2 }\n"
	"  - { name: vm3, host: h1, network: blue, port: vm3p, mac: \"02:00:00:00:01:03\", ip: 192.168.1.3 }\n"
	"services:\n"
	"  - { name: fw, mode: l2, failure: block, nodes: [ { name: fw1, host: h1, ports: [fw1i, fw1o] },\n"
	"                                                 { name: fw2, host: h1, ports: [fw2i, fw2o] } ] }\n"
	"  - { name: ids, mode: nsh, failure: allow, nodes: [ { name: ids1, host: h1, ports: [ids1p], mac: \"02:00:00:00:aa:01\" },\n"
	"                                                   { name: ids2, host: h1, ports: [ids2p], mac: \"02:00:00:00:aa:02\" } ] }\n"
	"  - { name: nat, mode: l3, nodes: [ { name: r1, host: h1, ports: [r1p], mac: \"02:00:00:00:bb:01\" },\n"
	"                                   { name: r2, host: h1, ports: [r2p], mac: \"02:00:00:00:bb:02\" } ] }\n"
	"chains: [ { name: inspect, services: [fw, ids, nat] }, { name: tap, services: [ids] } ]\n"
	"rules:\n"
	"  - { name: web, applied_to: [vm1], direction: egress, priority: 100, match: { proto: tcp, dst_port: 80 }, action: redirect, chain: inspect }\n"
	"  - { name: mirror, applied_to: [vm3], direction: ingress, priority: 10, match: { proto: udp }, action: copy, chain: tap }\n"
	"  - { name: nossh, applied_to: [blue], direction: both, priority: 200, match: { proto: tcp, dst_port: 22 }, action: skip }\n";

static const uint8_t MAC1[6] = {2, 0, 0, 0, 1, 1}, MAC2[6] = {2, 0, 0, 0, 1, 2}, MAC3[6] = {2, 0, 0, 0, 1, 3};

/* The L4 checksum of frame f[0..len), filled in. */
static void fill_l4_csum(uint8_t *f, uint32_t len)
{
	struct pkt p;
	memset(&p, 0, sizeof(p));
	pkt_reset(&p);
	memcpy(p.data, f, len);
	p.len = len;
	assert_int_equal(wire_parse(&p), DROP_NONE);
	assert_true(wire_l4_csum_fill(&p));
	memcpy(f, p.data, len);
}

/* Ethernet + IPv4 + TCP/UDP with valid checksums and a payload. */
static uint32_t build(uint8_t *f, const uint8_t *dmac, const uint8_t *smac, uint8_t sip, uint8_t dip, uint8_t proto,
		      uint16_t sport, uint16_t dport, uint8_t tcp_flags, size_t payload)
{
	memcpy(f, dmac, 6);
	memcpy(f + 6, smac, 6);
	wr16(f + 12, ETH_P_IPV4);
	uint8_t *ip = f + 14;
	size_t l4len = (proto == IPPROTO_TCP ? 20 : 8) + payload;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	wr16(ip + 2, (uint16_t)(20 + l4len));
	ip[8] = 64;
	ip[9] = proto;
	uint8_t src[4] = {192, 168, 1, sip}, dst[4] = {192, 168, 1, dip};
	memcpy(ip + 12, src, 4);
	memcpy(ip + 16, dst, 4);
	ipv4_set_csum(ip);
	uint8_t *l4 = ip + 20;
	memset(l4, 0, l4len);
	wr16(l4, sport);
	wr16(l4 + 2, dport);
	if (proto == IPPROTO_TCP) {
		l4[12] = 5 << 4;
		l4[13] = tcp_flags;
		wr16(l4 + 14, 65535);
	} else {
		wr16(l4 + 4, (uint16_t)l4len);
	}
	for (size_t i = 0; i < payload; i++)
		l4[l4len - payload + i] = (uint8_t)(i * 7 + sport);
	uint32_t len = (uint32_t)(14 + 20 + l4len);
	fill_l4_csum(f, len);
	return len;
}

static struct memhost *mh;
static uint16_t P1, P2, P3;

static int setup(void **state)
{
	(void)state;
	mh = memhost_create(TOPO, "h1", 4096);
	if (!mh)
		return -1;
	P1 = hostcfg_port_by_ifname(memhost_cfg(mh), "vm1p");
	P2 = hostcfg_port_by_ifname(memhost_cfg(mh), "vm2p");
	P3 = hostcfg_port_by_ifname(memhost_cfg(mh), "vm3p");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	memhost_destroy(mh);
	return 0;
}

static void send1(uint16_t port, const uint8_t *f, uint32_t len)
{
	const uint8_t *fr[1] = {f};
	assert_true(memhost_rx(mh, port, fr, &len, 1));
}

static uint16_t node(const char *name)
{
	uint16_t n = topology_node_index(memhost_cfg(mh)->topo, name);
	assert_int_not_equal(n, TOPO_NO_INDEX);
	return n;
}

static void drain(uint16_t port)
{
	uint8_t buf[PKT_DATA_ROOM];
	while (memhost_take(mh, port, buf, sizeof(buf)))
		;
}

static void test_switching_no_rule(void **state)
{
	(void)state;
	uint8_t f[1600], out[PKT_DATA_ROOM];
	uint32_t len = build(f, MAC2, MAC1, 1, 2, IPPROTO_TCP, 1000, 8080, 0x02, 100);
	uint64_t before = memhost_delivered(mh, P2);
	send1(P1, f, len);
	assert_int_equal(memhost_delivered(mh, P2), before + 1);
	assert_int_equal(memhost_take(mh, P2, out, sizeof(out)), len);
	assert_memory_equal(out, f, len);
	/* nothing reached another guest or a node */
	assert_int_equal(memhost_delivered(mh, P3), 0);
}

/* Which frames of f[0..n) a guest port received (each compared whole):
 * a bit per frame. */
static unsigned received(uint16_t port, uint8_t (*f)[128], const uint32_t *len, int n)
{
	uint8_t out[PKT_DATA_ROOM];
	unsigned got = 0;
	size_t l;
	while ((l = memhost_take(mh, port, out, sizeof(out))) != 0) {
		int i = rd16(out + 34) - 3000; /* the TCP source port numbers the frames */
		assert_true(i >= 0 && i < n);
		assert_int_equal(l, len[i]);
		assert_memory_equal(out, f[i], l);
		assert_false(got & (1u << i)); /* once */
		got |= 1u << i;
	}
	return got;
}

/* One burst to alternating destinations (the guest plane remembers the
 * last lookup of a vector): each frame goes where its own MAC says. */
static void test_switching_burst(void **state)
{
	(void)state;
	static const uint8_t UNKNOWN[6] = {2, 0, 0, 0, 9, 9}, BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	const uint8_t *to[9] = {MAC2, MAC3, MAC2, MAC2, UNKNOWN, MAC3, BCAST, BCAST, MAC2};
	uint8_t f[9][128];
	const uint8_t *fr[9];
	uint32_t len[9];
	for (int i = 0; i < 9; i++) {
		len[i] = build(f[i], to[i], MAC1, 1, 2, IPPROTO_TCP, (uint16_t)(3000 + i), 8080, 0x10, 10);
		fr[i] = f[i];
	}
	drain(P1);
	drain(P2);
	drain(P3);
	assert_true(memhost_rx(mh, P1, fr, len, 9));
	/* vm2: the four to it, the unknown and the two broadcasts flooded;
	 * vm3: its two and the same three; nothing back to vm1 */
	assert_int_equal(received(P2, f, len, 9), 1u << 0 | 1u << 2 | 1u << 3 | 1u << 4 | 1u << 6 | 1u << 7 | 1u << 8);
	assert_int_equal(received(P3, f, len, 9), 1u << 1 | 1u << 4 | 1u << 5 | 1u << 6 | 1u << 7);
	assert_int_equal(received(P1, f, len, 9), 0);
}

static void test_broadcast_floods(void **state)
{
	(void)state;
	uint8_t f[64] = {0};
	memset(f, 0xff, 6);
	memcpy(f + 6, MAC1, 6);
	wr16(f + 12, ETH_P_ARP);
	uint8_t *a = f + 14; /* a who-has */
	wr16(a, 1), wr16(a + 2, 0x0800), a[4] = 6, a[5] = 4, wr16(a + 6, 1);
	uint64_t b2 = memhost_delivered(mh, P2), b3 = memhost_delivered(mh, P3), b1 = memhost_delivered(mh, P1);
	send1(P1, f, 60);
	assert_int_equal(memhost_delivered(mh, P2), b2 + 1);
	assert_int_equal(memhost_delivered(mh, P3), b3 + 1);
	assert_int_equal(memhost_delivered(mh, P1), b1);
	drain(P2);
	drain(P3);
}

/* A flooded IP frame (broadcast here) meets each receiving guest's ingress
 * rules like a unicast one: vm3's `mirror` (udp in, copy) sends a copy
 * through the tap chain; vm2 (no such rule) just gets it. */
static void test_flood_classified_at_ingress(void **state)
{
	(void)state;
	static const uint8_t BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	uint8_t f[128];
	uint32_t len = build(f, BCAST, MAC1, 1, 255, IPPROTO_UDP, 5000, 5353, 0, 20);
	drain(P2);
	drain(P3);
	uint16_t ids1 = node("ids1"), ids2 = node("ids2");
	uint64_t s1 = memhost_node_seen(mh, ids1), s2 = memhost_node_seen(mh, ids2);
	uint64_t b2 = memhost_delivered(mh, P2), b3 = memhost_delivered(mh, P3);
	send1(P1, f, len);
	assert_int_equal(memhost_delivered(mh, P2), b2 + 1);
	assert_int_equal(memhost_delivered(mh, P3), b3 + 1);
	assert_int_equal(memhost_node_seen(mh, ids1) - s1 + memhost_node_seen(mh, ids2) - s2, 1);
	uint8_t out[PKT_DATA_ROOM];
	assert_int_equal(memhost_take(mh, P3, out, sizeof(out)), len);
	assert_memory_equal(out, f, len);
	drain(P2);
}

/* Which node of a service saw traffic since a snapshot. */
static int seen_delta(const char *a, const char *b, uint64_t sa, uint64_t sb, uint64_t *da, uint64_t *db)
{
	*da = memhost_node_seen(mh, node(a)) - sa;
	*db = memhost_node_seen(mh, node(b)) - sb;
	return (*da > 0) + (*db > 0);
}

static void test_chain_both_directions(void **state)
{
	(void)state;
	const char *svc[3][2] = {{"fw1", "fw2"}, {"ids1", "ids2"}, {"r1", "r2"}};
	for (int flow = 0; flow < 16; flow++) {
		uint64_t snap[3][2];
		for (int s = 0; s < 3; s++)
			for (int k = 0; k < 2; k++)
				snap[s][k] = memhost_node_seen(mh, node(svc[s][k]));
		uint8_t f[1600], r[1600], out[PKT_DATA_ROOM];
		uint16_t sport = (uint16_t)(40000 + flow);
		uint32_t len = build(f, MAC2, MAC1, 1, 2, IPPROTO_TCP, sport, 80, 0x02, 1000);
		send1(P1, f, len);
		assert_int_equal(memhost_take(mh, P2, out, sizeof(out)), len);
		assert_memory_equal(out, f, len); /* MACs restored, payload intact */
		int chosen[3];
		for (int s = 0; s < 3; s++) {
			uint64_t da, db;
			assert_int_equal(seen_delta(svc[s][0], svc[s][1], snap[s][0], snap[s][1], &da, &db), 1);
			chosen[s] = da ? 0 : 1;
			snap[s][0] += da;
			snap[s][1] += db;
		}
		/* the reply takes the reverse path through the same node instances */
		uint32_t rlen = build(r, MAC1, MAC2, 2, 1, IPPROTO_TCP, 80, sport, 0x12, 500);
		send1(P2, r, rlen);
		assert_int_equal(memhost_take(mh, P1, out, sizeof(out)), rlen);
		assert_memory_equal(out, r, rlen);
		for (int s = 0; s < 3; s++) {
			uint64_t da, db;
			assert_int_equal(seen_delta(svc[s][0], svc[s][1], snap[s][0], snap[s][1], &da, &db), 1);
			assert_int_equal(da ? 0 : 1, chosen[s]);
		}
	}
	/* 16 flows over 8 paths: more than one path was used */
	const struct datapath *dp = memhost_dp(mh);
	int used = 0;
	for (uint16_t i = 0; i < memhost_cfg(mh)->ps->n_paths; i++)
		used += dp->path_stats[i].fwd_pkts > 0;
	assert_true(used > 1);
}

/* Rewrite byte `at` of an IPv4 frame's header (15: the last of the source
 * address, 19: of the destination) to v, checksums made good. */
static void rewrite_ip(uint8_t *f, uint32_t len, size_t at, uint8_t v)
{
	f[14 + at] = v;
	ipv4_set_csum(f + 14);
	fill_l4_csum(f, len);
}

/* With node emulation off: hand every frame waiting at a node port back
 * as the node would, the routed (l3) node rewriting IPv4 header byte `at`
 * from `from` to `to` (a NAT), until none waits. Returns the frames the l3
 * node saw. */
static int walk_nodes(size_t at, uint8_t from, uint8_t to)
{
	const struct hostcfg *hc = memhost_cfg(mh);
	int routed = 0;
	for (bool more = true; more;) {
		more = false;
		for (uint16_t port = 0; port < hc->n_ports; port++) {
			if (hc->ports[port].kind == PORT_GUEST)
				continue;
			uint8_t f[PKT_DATA_ROOM];
			uint32_t len = (uint32_t)memhost_take(mh, port, f, sizeof(f));
			if (!len)
				continue;
			more = true;
			uint16_t n = hc->ports[port].ref;
			if (hc->topo->services[hc->topo->nodes[n].service].mode == SVC_MODE_L3) {
				routed++;
				assert_int_equal(f[14 + at], from);
				rewrite_ip(f, len, at, to);
			}
			uint16_t back = sn_emul_reflect(hc, port, f, len);
			assert_int_not_equal(back, PORT_NONE);
			send1(back, f, len);
		}
	}
	return routed;
}

/* The routed node source-NATs vm1's .1 to .9: a frame of vm1 to vm2 takes
 * it on the way out, a frame of vm2 to .9 on the way back. Each comes out at
 * the other guest's port (into out, PKT_DATA_ROOM bytes) after exactly one
 * pass through the node. */
static void snat_out(const uint8_t *f, uint32_t len, uint8_t *out)
{
	send1(P1, f, len);
	assert_int_equal(walk_nodes(12 + 3, 1, 9), 1);
	assert_int_equal(memhost_take(mh, P2, out, PKT_DATA_ROOM), len);
}

static void snat_back(const uint8_t *r, uint32_t len, uint8_t *out)
{
	send1(P2, r, len);
	assert_int_equal(walk_nodes(16 + 3, 9, 1), 1);
	assert_int_equal(memhost_take(mh, P1, out, PKT_DATA_ROOM), len);
}

/* A routed node that source-NATs (vm1's .1 to .9): vm2 gets the packet from
 * .9, the port proxy at home learns the rewrite (the tuple's tag differs
 * from the one it sent), and vm2's reply to .9 finds the connection under
 * that alias: it takes the reverse path, where the node undoes its NAT,
 * and reaches vm1. */
static void test_snat_learned_at_home(void **state)
{
	(void)state;
	memhost_emulate_nodes(mh, false);
	const struct datapath *dp = memhost_dp(mh);
	uint64_t aliases = dp->nat_aliases;
	uint8_t f[1600], r[1600], out[PKT_DATA_ROOM];
	uint32_t len = build(f, MAC2, MAC1, 1, 2, IPPROTO_TCP, 41000, 80, 0x02, 100);
	snat_out(f, len, out);
	assert_int_equal(out[14 + 15], 9);
	assert_int_equal(dp->nat_aliases, aliases + 1);
	/* the reply, to the address vm2 saw */
	uint32_t rlen = build(r, MAC1, MAC2, 2, 9, IPPROTO_TCP, 80, 41000, 0x12, 50);
	snat_back(r, rlen, out);
	assert_int_equal(out[14 + 19], 1);
	memhost_emulate_nodes(mh, true);
}

/* After a connection the node source-NATted (.1 to .9) has ended, its alias
 * under .9 must not capture a new connection with the same tuple that took
 * no path: a SYN-ACK under the alias answers a SYN the alias never saw (the
 * node returned none), so it goes straight to vm1 and the alias goes. While
 * the aliased connection's own handshake runs, its SYN-ACKs (also a
 * retransmitted one) take the reverse path, also when the client opens it
 * again with the same port after a reset. */
static void test_stale_nat_alias(void **state)
{
	(void)state;
	memhost_emulate_nodes(mh, false);
	const struct datapath *dp = memhost_dp(mh);
	uint64_t stale = dp->nat_aliases_stale;
	uint8_t f[1600], r[1600], x[1600], out[PKT_DATA_ROOM];
	uint32_t len = build(f, MAC2, MAC1, 1, 2, IPPROTO_TCP, 41002, 80, 0x02, 100);
	snat_out(f, len, out);
	uint32_t rlen = build(r, MAC1, MAC2, 2, 9, IPPROTO_TCP, 80, 41002, 0x12, 50);
	snat_back(r, rlen, out);
	snat_back(r, rlen, out); /* retransmitted */
	/* the connection ends (vm2 resets it, through the node) */
	uint32_t xlen = build(x, MAC1, MAC2, 2, 9, IPPROTO_TCP, 80, 41002, 0x04, 0);
	snat_back(x, xlen, out);
	assert_int_equal(dp->nat_aliases_stale, stale);
	/* a SYN-ACK of a new connection under the same tuple: no node */
	send1(P2, r, rlen);
	assert_int_equal(walk_nodes(16 + 3, 9, 1), 0);
	assert_int_equal(memhost_take(mh, P1, out, sizeof(out)), rlen);
	assert_memory_equal(out + 14, r + 14, rlen - 14);
	assert_int_equal(dp->nat_aliases_stale, stale + 1);
	/* the same connection again through the node (the client reuses its
	 * port): the alias left by the first one follows the new SYN */
	snat_out(f, len, out);
	snat_back(x, xlen, out);
	snat_out(f, len, out);
	snat_back(r, rlen, out);
	assert_int_equal(dp->nat_aliases_stale, stale + 1);
	memhost_emulate_nodes(mh, true);
}

static void test_skip_rule_wins(void **state)
{
	(void)state;
	uint64_t seen = memhost_node_seen(mh, node("fw1")) + memhost_node_seen(mh, node("fw2"));
	uint8_t f[1600];
	/* port 22 matches the higher-priority skip rule only */
	uint32_t len = build(f, MAC2, MAC1, 1, 2, IPPROTO_TCP, 5555, 22, 0x02, 10);
	send1(P1, f, len);
	assert_int_equal(memhost_node_seen(mh, node("fw1")) + memhost_node_seen(mh, node("fw2")), seen);
	drain(P2);
}

static void test_copy(void **state)
{
	(void)state;
	uint64_t ids = memhost_node_seen(mh, node("ids1")) + memhost_node_seen(mh, node("ids2"));
	uint64_t d3 = memhost_delivered(mh, P3);
	uint64_t copy_end = memhost_dp(mh)->drops[DROP_COPY_END];
	uint8_t f[1600];
	uint32_t len = build(f, MAC3, MAC1, 1, 3, IPPROTO_UDP, 999, 53, 0, 40);
	send1(P1, f, len);
	/* the original is delivered once; the copy walked the chain and ended */
	assert_int_equal(memhost_delivered(mh, P3), d3 + 1);
	assert_int_equal(memhost_node_seen(mh, node("ids1")) + memhost_node_seen(mh, node("ids2")), ids + 1);
	assert_int_equal(memhost_dp(mh)->drops[DROP_COPY_END], copy_end + 1);
	drain(P3);
}

static void test_guest_cannot_reach_service_plane(void **state)
{
	(void)state;
	const struct hostcfg *hc = memhost_cfg(mh);
	uint64_t seen = 0;
	for (uint16_t n = 0; n < hc->topo->n_nodes; n++)
		seen += memhost_node_seen(mh, n);
	uint8_t f[256];
	/* NSH frame with a live SPI addressed to a service proxy's spmac */
	memcpy(f, hc->ps->node_spmac[node("ids1")].b, 6);
	memcpy(f + 6, MAC1, 6);
	wr16(f + 12, ETH_P_NSH);
	struct sp_meta md;
	memset(&md, 0, sizeof(md));
	size_t n = nsh_encode(f + 14, sizeof(f) - 14, hc->ps->paths[0].spi_fwd, 255, hc->topo->md_class, &md, NSH_TLV_ALL);
	assert_true(n > 0);
	uint32_t len = build(f + 14 + n, MAC2, MAC1, 1, 2, IPPROTO_TCP, 1, 80, 2, 0) + 14 + (uint32_t)n;
	uint64_t drops = memhost_dp(mh)->drops[DROP_GUEST_SERVICE_PLANE];
	send1(P1, f, len);
	/* the same frame, as plain Ethernet to a port proxy's spmac */
	memcpy(f, hc->pp_spmac.b, 6);
	wr16(f + 12, ETH_P_IPV4);
	send1(P1, f, len);
	assert_int_equal(memhost_dp(mh)->drops[DROP_GUEST_SERVICE_PLANE], drops + 2);
	uint64_t after = 0;
	for (uint16_t k = 0; k < hc->topo->n_nodes; k++)
		after += memhost_node_seen(mh, k);
	assert_int_equal(after, seen);
}

static void test_failure_policy(void **state)
{
	(void)state;
	struct hostcfg *hc = memhost_cfg(mh);
	uint8_t f[1600], out[PKT_DATA_ROOM];
	/* ids (allow) all down: bypassed, traffic flows, ids sees nothing */
	hostcfg_set_node(hc, node("ids1"), false);
	hostcfg_set_node(hc, node("ids2"), false);
	uint64_t ids = memhost_node_seen(mh, node("ids1")) + memhost_node_seen(mh, node("ids2"));
	uint32_t len = build(f, MAC2, MAC1, 1, 2, IPPROTO_TCP, 30001, 80, 0x02, 10);
	send1(P1, f, len);
	assert_int_equal(memhost_take(mh, P2, out, sizeof(out)), len);
	assert_int_equal(memhost_node_seen(mh, node("ids1")) + memhost_node_seen(mh, node("ids2")), ids);
	/* fw (block) all down: new flows dropped */
	hostcfg_set_node(hc, node("fw1"), false);
	hostcfg_set_node(hc, node("fw2"), false);
	uint64_t d2 = memhost_delivered(mh, P2), blocked = memhost_dp(mh)->drops[DROP_RULE_BLOCK];
	len = build(f, MAC2, MAC1, 1, 2, IPPROTO_TCP, 30002, 80, 0x02, 10);
	send1(P1, f, len);
	assert_int_equal(memhost_delivered(mh, P2), d2);
	assert_int_equal(memhost_dp(mh)->drops[DROP_RULE_BLOCK], blocked + 1);
	/* one fw back: flows pass again, through it */
	hostcfg_set_node(hc, node("fw2"), true);
	uint64_t fw2 = memhost_node_seen(mh, node("fw2"));
	send1(P1, f, len);
	assert_int_equal(memhost_delivered(mh, P2), d2 + 1);
	assert_int_equal(memhost_node_seen(mh, node("fw2")), fw2 + 1);
	for (uint16_t n = 0; n < hc->topo->n_nodes; n++)
		hostcfg_set_node(hc, n, true);
	drain(P2);
}

static void test_malformed_counted(void **state)
{
	(void)state;
	uint8_t f[1600];
	uint32_t len = build(f, MAC2, MAC1, 1, 2, IPPROTO_TCP, 1, 80, 2, 0);
	const struct datapath *dp = memhost_dp(mh);
	uint64_t total = 0;
	for (int r = 0; r < DROP__MAX; r++)
		total += dp->drops[r];
	send1(P1, f, 20);        /* truncated IPv4 */
	send1(P1, f, len - 10); /* truncated TCP */
	uint64_t after = 0;
	for (int r = 0; r < DROP__MAX; r++)
		after += dp->drops[r];
	assert_int_equal(after, total + 2);
}

/* A reload that adds a node keeps established flows on their paths; new
 * flows use the new node too. A reload that removes a node moves only its
 * flows: the others keep their nodes although their paths are numbered
 * anew (the connections hold path indexes, which the reload remaps). */
static void test_reload_keeps_paths(void **state)
{
	(void)state;
	static const char *base =
		"service_plane: { vni: 4000 }\n"
		"hosts: [ { name: h1, vtep: 10.0.0.1 } ]\n"
		"networks: [ { name: blue, vni: 100 } ]\n"
		"guests:\n"
		"  - { name: vm1, host: h1, network: blue, port: vm1p, mac: \"02:00:00:00:01:01\", ip: 192.168.1.1 }\n"
		"  - { name: vm2, host: h1, network: blue, port: vm2p, mac: \"02:00:00:00:01:02\", ip: 192.168.1.2 }\n"
		"services:\n"
		"  - name: ids\n"
		"    mode: nsh\n"
		"    nodes:\n"
		"%s"
		"      - { name: ids2, host: h1, ports: [ids2p], mac: \"02:00:00:00:aa:02\" }\n"
		"%s"
		"chains: [ { name: tap, services: [ids] } ]\n"
		"rules:\n"
		"  - { name: web, applied_to: [vm1], direction: egress, match: { proto: tcp }, action: redirect, chain: tap }\n";
	static const char *ids1 = "      - { name: ids1, host: h1, ports: [ids1p], mac: \"02:00:00:00:aa:01\" }\n";
	static const char *ids3 = "      - { name: ids3, host: h1, ports: [ids3p], mac: \"02:00:00:00:aa:03\" }\n";
	char y1[4096], y2[4096], y3[4096];
	snprintf(y1, sizeof(y1), base, ids1, "");
	snprintf(y2, sizeof(y2), base, ids1, ids3);
	snprintf(y3, sizeof(y3), base, "", ids3);
	struct memhost *m = memhost_create(y1, "h1", 4096);
	assert_non_null(m);
	uint16_t p1 = hostcfg_port_by_ifname(memhost_cfg(m), "vm1p");
	enum { FLOWS = 64 };
	char before[2][FLOWS][8]; /* the node of each flow of pass 0 and of pass 2 */
	uint8_t f[1600];
	const uint8_t *fr[1] = {f};
	int kept[4] = {0}; /* by the node's digit */
	for (int pass = 0; pass < 5; pass++) {
		if (pass == 1)
			assert_true(memhost_reload(m, y2));
		if (pass == 3)
			assert_true(memhost_reload(m, y3));
		const struct hostcfg *hc = memhost_cfg(m);
		p1 = hostcfg_port_by_ifname(hc, "vm1p");
		int on_new = 0;
		int later = pass == 2 || pass == 4; /* the flows begun after the first reload (other ports) */
		for (int i = 0; i < FLOWS; i++) {
			uint16_t sport = (uint16_t)(later ? 20000 + i : 10000 + i);
			uint32_t len = build(f, MAC2, MAC1, 1, 2, IPPROTO_TCP, sport, 80, 0x10, 10);
			uint64_t seen[3];
			const char *names[3] = {"ids1", "ids2", "ids3"};
			for (int k = 0; k < 3; k++) {
				uint16_t n = topology_node_index(hc->topo, names[k]);
				seen[k] = n == TOPO_NO_INDEX ? 0 : memhost_node_seen(m, n);
			}
			assert_true(memhost_rx(m, p1, fr, &len, 1));
			const char *who = NULL;
			for (int k = 0; k < 3; k++) {
				uint16_t n = topology_node_index(hc->topo, names[k]);
				if (n != TOPO_NO_INDEX && memhost_node_seen(m, n) > seen[k])
					who = names[k];
			}
			assert_non_null(who);
			char *was = before[later][i];
			if (pass == 0 || pass == 2)
				snprintf(was, sizeof(before[0][0]), "%s", who);
			if (pass == 1)
				assert_string_equal(who, was); /* pinned flows kept their node */
			if (pass == 2)
				on_new += !strcmp(who, "ids3");
			if (pass >= 3 && strcmp(was, "ids1")) { /* ids1 is gone: its flows moved */
				assert_string_equal(who, was);
				kept[who[3] - '0']++;
			}
		}
		if (pass == 2)
			assert_true(on_new > 0); /* new flows do use the new node */
	}
	assert_true(kept[2] > 0 && kept[3] > 0); /* both renumbered paths had flows to keep */
	memhost_destroy(m);
}

/* Connection aging is paced by time, not by calls: a first tick visits
 * DP_SWEEP_MAX entries (a second's share of the table is due, more than
 * that), a thousand ticks within a millisecond then visit a millisecond's
 * share (one chunk of DP_SWEEP_MIN), and a tick a second later the rest.
 * (Visiting a fixed number per tick, the thousand ticks swept the table
 * many times: a worker woken for every packet spent a tenth of its time
 * there.) */
static void test_sweep_paced_by_time(void **state)
{
	(void)state;
	enum { CAP = 65536, N = 40000, BURST = 64 };
	const uint64_t S = 1000000000ull, US = 1000;
	struct memhost *m = memhost_create(TOPO, "h1", CAP);
	assert_non_null(m);
	struct datapath *dp = memhost_dp(m);
	uint16_t p1 = hostcfg_port_by_ifname(memhost_cfg(m), "vm1p");
	static uint8_t f[BURST][128];
	const uint8_t *fr[BURST];
	uint32_t len[BURST];
	dp->now_ns = 1 * S;
	for (int base = 0; base < N; base += BURST) {
		for (int i = 0; i < BURST; i++) { /* SYNs of N flows: entries 0..N-1, idle for 120 s */
			int k = base + i;
			len[i] = build(f[i], MAC2, MAC1, (uint8_t)(10 + k / 30000), 2, IPPROTO_TCP,
				       (uint16_t)(1024 + k % 30000), 80, 0x02, 0);
			fr[i] = f[i];
		}
		assert_true(memhost_rx(m, p1, fr, len, BURST));
	}
	struct conntrack_stats st = {0};
	conntrack_get_stats(dp->ct, &st);
	assert_int_equal(st.entries, N);
	const uint64_t t = 200 * S; /* all of them past their timeout */
	dp_tick(dp, t);
	conntrack_get_stats(dp->ct, &st);
	assert_int_equal(st.expired, DP_SWEEP_MAX);
	for (int i = 0; i < 1000; i++)
		dp_tick(dp, t + (uint64_t)i * US);
	conntrack_get_stats(dp->ct, &st);
	assert_int_equal(st.expired, DP_SWEEP_MAX + DP_SWEEP_MIN);
	dp_tick(dp, t + S);
	conntrack_get_stats(dp->ct, &st);
	assert_int_equal(st.expired, N);
	assert_int_equal(st.entries, 0);
	memhost_destroy(m);
}

/* Rules at both ends: a reply leaving the other guest is a new flow at its
 * own egress point and, arriving, the reverse of the first flow; it walks
 * both chains and still arrives, through l2 and nsh nodes alike. */
static void test_rules_at_both_ends(void **state)
{
	(void)state;
	static const char *y =
		"service_plane: { vni: 4000 }\n"
		"hosts: [ { name: h1, vtep: 10.0.0.1 } ]\n"
		"networks: [ { name: blue, vni: 100 } ]\n"
		"guests:\n"
		"  - { name: vm1, host: h1, network: blue, port: vm1p, mac: \"02:00:00:00:01:01\", ip: 192.168.1.1 }\n"
		"  - { name: vm2, host: h1, network: blue, port: vm2p, mac: \"02:00:00:00:01:02\", ip: 192.168.1.2 }\n"
		"services:\n"
		"  - { name: fw, mode: l2, nodes: [ { name: fw1, host: h1, ports: [fw1i, fw1o] } ] }\n"
		"  - { name: ids, mode: nsh, nodes: [ { name: ids1, host: h1, ports: [ids1p], mac: \"02:00:00:00:aa:01\" } ] }\n"
		"chains: [ { name: c, services: [fw, ids] } ]\n"
		"rules:\n"
		"  - { name: out, applied_to: [vm1, vm2], direction: egress, match: { proto: tcp }, action: redirect, chain: c }\n";
	struct memhost *m = memhost_create(y, "h1", 4096);
	assert_non_null(m);
	const struct hostcfg *hc = memhost_cfg(m);
	uint16_t p1 = hostcfg_port_by_ifname(hc, "vm1p"), p2 = hostcfg_port_by_ifname(hc, "vm2p");
	uint8_t f[1600], out[PKT_DATA_ROOM];
	const uint8_t *fr[1] = {f};
	for (int i = 0; i < 4; i++) {
		uint32_t len = build(f, MAC2, MAC1, 1, 2, IPPROTO_TCP, (uint16_t)(5000 + i), 80, i ? 0x10 : 0x02, 100);
		assert_true(memhost_rx(m, p1, fr, &len, 1));
		assert_int_equal(memhost_take(m, p2, out, sizeof(out)), len);
		assert_memory_equal(out, f, len);
		len = build(f, MAC1, MAC2, 2, 1, IPPROTO_TCP, 80, (uint16_t)(5000 + i), i ? 0x10 : 0x12, 100);
		assert_true(memhost_rx(m, p2, fr, &len, 1));
		assert_int_equal(memhost_take(m, p1, out, sizeof(out)), len);
		assert_memory_equal(out, f, len);
	}
	assert_int_equal(memhost_dp(m)->drops[DROP_SN_NO_FLOW], 0);
	memhost_destroy(m);
}

/* Established flows are found in the flow cache in front of the rules and
 * the table; a reload that removes their rule leaves no stale decision
 * behind. */
static void flow_cache_case(int extra)
{
	enum { FLOWS = 16 };
	char *y = malloc(64 * 1024), *y2 = malloc(64 * 1024);
	assert_non_null(y);
	assert_non_null(y2);
	size_t off = (size_t)snprintf(y, 64 * 1024, "%s", TOPO);
	for (int i = 0; i < extra; i++)
		off += (size_t)snprintf(y + off, 64 * 1024 - off,
					"  - { name: x%d, applied_to: [vm1], direction: egress, priority: 300, "
					"match: { proto: tcp, dst: 10.9.%d.0/24, dst_port: %d }, action: redirect, chain: inspect }\n",
					i, i, 1000 + i);
	/* the same without `web`: port 80 from vm1 matches nothing any more */
	const char *web = strstr(y, "  - { name: web,");
	const char *web_end = strchr(web, '\n') + 1;
	snprintf(y2, 64 * 1024, "%.*s%s", (int)(web - y), y, web_end);
	struct memhost *m = memhost_create(y, "h1", 4096);
	assert_non_null(m);
	uint16_t p1 = hostcfg_port_by_ifname(memhost_cfg(m), "vm1p");
	uint16_t fw1 = topology_node_index(memhost_cfg(m)->topo, "fw1"), fw2 = topology_node_index(memhost_cfg(m)->topo, "fw2");
	uint8_t f[1600];
	const uint8_t *fr[1] = {f};
	for (int round = 0; round < 4; round++)
		for (int i = 0; i < FLOWS; i++) {
			uint32_t len = build(f, MAC2, MAC1, 1, 2, IPPROTO_TCP, (uint16_t)(30000 + i), 80, round ? 0x10 : 0x02, 10);
			uint64_t seen = memhost_node_seen(m, fw1) + memhost_node_seen(m, fw2);
			assert_true(memhost_rx(m, p1, fr, &len, 1));
			assert_int_equal(memhost_node_seen(m, fw1) + memhost_node_seen(m, fw2), seen + 1); /* through the chain */
		}
	const struct flowcache *fc = &memhost_dp(m)->fc;
	/* round 0 creates the connections, round 1 finds them in the table
	 * and caches them, rounds 2 and 3 hit the cache */
	assert_true(fc->hits >= 2 * FLOWS);
	assert_true(memhost_reload(m, y2));
	fw1 = topology_node_index(memhost_cfg(m)->topo, "fw1");
	fw2 = topology_node_index(memhost_cfg(m)->topo, "fw2");
	uint16_t p2 = hostcfg_port_by_ifname(memhost_cfg(m), "vm2p");
	p1 = hostcfg_port_by_ifname(memhost_cfg(m), "vm1p");
	for (int i = 0; i < FLOWS; i++) {
		uint32_t len = build(f, MAC2, MAC1, 1, 2, IPPROTO_TCP, (uint16_t)(30000 + i), 80, 0x10, 10);
		uint64_t seen = memhost_node_seen(m, fw1) + memhost_node_seen(m, fw2), got = memhost_delivered(m, p2);
		assert_true(memhost_rx(m, p1, fr, &len, 1));
		assert_int_equal(memhost_node_seen(m, fw1) + memhost_node_seen(m, fw2), seen); /* not any more */
		assert_int_equal(memhost_delivered(m, p2), got + 1);
	}
	memhost_destroy(m);
	free(y);
	free(y2);
}

/* with more rules than a short scan (a tuple space search), and with one */
static void test_flow_cache(void **state)
{
	(void)state;
	flow_cache_case(40);
	flow_cache_case(0);
}

/* Two workers (as detourd runs them, steer.h): frames arrive at either
 * one, whatever the flow, and each flow is handled by its owner, both
 * directions, through the chain; the other worker keeps no state of it. */
static void poll_both(struct memhost *w[2])
{
	while (memhost_poll(w[0]) + memhost_poll(w[1]))
		;
}

static void test_two_workers(void **state)
{
	(void)state;
	struct steer *s = steer_create(2, 64);
	struct memhost *w[2] = {memhost_create(TOPO, "h1", 1024), memhost_create(TOPO, "h1", 1024)};
	assert_non_null(s);
	assert_non_null(w[0]);
	assert_non_null(w[1]);
	for (int i = 0; i < 2; i++)
		memhost_set_worker(w[i], s, (uint16_t)i);
	unsigned owned[2] = {0, 0};
	for (int flow = 0; flow < 32; flow++) {
		uint8_t f[1600], r[1600], out[PKT_DATA_ROOM];
		uint16_t sport = (uint16_t)(41000 + flow);
		uint32_t len = build(f, MAC2, MAC1, 1, 2, IPPROTO_TCP, sport, 80, 0x02, 200);
		uint16_t owner = steer_owner(s, steer_hash(f, len, false));
		assert_true(owner < 2);
		owned[owner]++;
		/* the forward frame reaches worker flow % 2, the reply the other one */
		const uint8_t *fr[1] = {f};
		assert_true(memhost_rx(w[flow % 2], P1, fr, &len, 1));
		poll_both(w);
		assert_int_equal(memhost_take(w[owner], P2, out, sizeof(out)), len);
		assert_memory_equal(out, f, len);
		assert_int_equal(memhost_take(w[!owner], P2, out, sizeof(out)), 0);
		uint32_t rlen = build(r, MAC1, MAC2, 2, 1, IPPROTO_TCP, 80, sport, 0x12, 100);
		fr[0] = r;
		assert_true(memhost_rx(w[(flow + 1) % 2], P2, fr, &rlen, 1));
		poll_both(w);
		assert_int_equal(memhost_take(w[owner], P1, out, sizeof(out)), rlen);
		assert_memory_equal(out, r, rlen);
	}
	/* both workers own flows; each holds exactly its own connections */
	assert_true(owned[0] > 0 && owned[1] > 0);
	for (int i = 0; i < 2; i++) {
		struct conntrack_stats st = {0};
		conntrack_get_stats(memhost_dp(w[i])->ct, &st);
		assert_int_equal(st.entries, owned[i]);
		assert_int_equal(memhost_dp(w[i])->drops[DROP_STEER_FULL], 0);
	}
	memhost_destroy(w[0]);
	memhost_destroy(w[1]);
	steer_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_workers),
		cmocka_unit_test(test_flow_cache),
		cmocka_unit_test(test_switching_no_rule),
		cmocka_unit_test(test_switching_burst),
		cmocka_unit_test(test_broadcast_floods),
		cmocka_unit_test(test_flood_classified_at_ingress),
		cmocka_unit_test(test_chain_both_directions),
		cmocka_unit_test(test_snat_learned_at_home),
		cmocka_unit_test(test_stale_nat_alias),
		cmocka_unit_test(test_skip_rule_wins),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_guest_cannot_reach_service_plane),
		cmocka_unit_test(test_failure_policy),
		cmocka_unit_test(test_malformed_counted),
		cmocka_unit_test(test_reload_keeps_paths),
		cmocka_unit_test(test_sweep_paced_by_time),
		cmocka_unit_test(test_rules_at_both_ends),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

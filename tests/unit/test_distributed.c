/* test_distributed.c - hosts joined by Geneve, in memory: three memhosts
 * whose Geneve payloads are handed to the host owning the destination
 * VTEP. Checks the walk of SPEC section 3 hop by hop (SPI, SI, which host),
 * ingress rules on the destination's host, replies on the reverse path. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

#include "memhost.h"
#include "nsh.h"
#include "tunnel.h"
#include "wire.h"

/* A on h1, B on h3; fw (l2) on h2, ids (nsh) on h3. %s: the rule. */
static const char *TOPO =
	"service_plane: { vni: 4000 }\n"
	"hosts: [ { name: h1, vtep: 10.0.0.1 }, { name: h2, vtep: 10.0.0.2 }, { name: h3, vtep: 10.0.0.3 } ]\n"
	"networks: [ { name: blue, vni: 100 } ]\n"
	"guests:\n"
	"  - { name: A, host: h1, network: blue, port: ap, mac: \"02:00:00:00:01:01\", ip: 192.168.1.1 }\n"
	"  - { name: B, host: h3, network: blue, port: bp, mac: \"02:00:00:00:01:02\", ip: 192.168.1.2 }\n"
	"services:\n"
	"  - { name: fw, mode: l2, nodes: [ { name: fw1, host: h2, ports: [fw1i, fw1o] } ] }\n"
	"  - { name: ids, mode: nsh, nodes: [ { name: ids1, host: h3, ports: [ids1p], mac: \"02:00:00:00:aa:01\" } ] }\n"
	"chains: [ { name: inspect, services: [fw, ids] } ]\n"
	"rules:\n"
	"  - %s\n";

static const uint8_t MA[6] = {2, 0, 0, 0, 1, 1}, MB[6] = {2, 0, 0, 0, 1, 2};

static uint32_t build_tcp(uint8_t *f, const uint8_t *dmac, const uint8_t *smac, uint8_t sip, uint8_t dip,
			  uint16_t sport, uint16_t dport, uint8_t flags)
{
	memset(f, 0, 64);
	memcpy(f, dmac, 6);
	memcpy(f + 6, smac, 6);
	wr16(f + 12, ETH_P_IPV4);
	uint8_t *ip = f + 14;
	ip[0] = 0x45;
	wr16(ip + 2, 40);
	ip[8] = 64;
	ip[9] = IPPROTO_TCP;
	ip[12] = 192, ip[13] = 168, ip[14] = 1, ip[15] = sip;
	ip[16] = 192, ip[17] = 168, ip[18] = 1, ip[19] = dip;
	ipv4_set_csum(ip);
	wr16(ip + 20, sport);
	wr16(ip + 22, dport);
	ip[32] = 5 << 4;
	ip[33] = flags;
	wr16(ip + 34, 1000);
	struct pkt p;
	memset(&p, 0, sizeof(p));
	pkt_reset(&p);
	memcpy(p.data, f, 54);
	p.len = 54;
	assert_int_equal(wire_parse(&p), DROP_NONE);
	assert_true(wire_l4_csum_fill(&p));
	memcpy(f, p.data, 54);
	return 54;
}

struct hop {
	int from, to;
	uint32_t vni, spi;
	int si; /* -1: guest plane */
};

struct net {
	struct memhost *h[3];
	struct hop walk[16];
	int n_walk;
};

static int host_of(struct net *n, const struct ipaddr *vtep)
{
	for (int i = 0; i < 3; i++)
		if (ipaddr_eq(&memhost_cfg(n->h[i])->vtep, vtep))
			return i;
	return -1;
}

/* Deliver Geneve payloads until none is left, recording each datagram. */
static void pump(struct net *n)
{
	for (int round = 0; round < 16; round++) {
		bool moved = false;
		for (int s = 0; s < 3; s++) {
			const uint8_t *pl[BATCH_MAX];
			uint32_t len[BATCH_MAX];
			struct ipaddr dst[BATCH_MAX];
			uint32_t k = memhost_outbox(n->h[s], pl, len, dst, BATCH_MAX);
			for (uint32_t i = 0; i < k; i++) {
				int to = host_of(n, &dst[i]);
				assert_true(to >= 0);
				struct geneve_info g;
				assert_int_equal(geneve_decode(pl[i], len[i], &g), DROP_NONE);
				struct hop *h = &n->walk[n->n_walk < 16 ? n->n_walk++ : 15];
				h->from = s, h->to = to, h->vni = g.vni, h->si = -1, h->spi = 0;
				if (g.proto == ETH_P_NSH) {
					struct nsh_info ni;
					assert_int_equal(nsh_decode(pl[i] + g.hdr_len, len[i] - g.hdr_len, 0xfff6, &ni, NULL),
							 DROP_NONE);
					h->spi = ni.spi, h->si = ni.si;
				}
				assert_true(memhost_rx_tunnel(n->h[to], &pl[i], &len[i], 1));
				moved = true;
			}
		}
		if (!moved)
			return;
	}
	fail_msg("payloads kept moving");
}

static void net_up(struct net *n, const char *rule)
{
	char y[4096];
	snprintf(y, sizeof(y), TOPO, rule);
	const char *names[3] = {"h1", "h2", "h3"};
	memset(n, 0, sizeof(*n));
	for (int i = 0; i < 3; i++) {
		n->h[i] = memhost_create(y, names[i], 4096);
		assert_non_null(n->h[i]);
	}
}

static void net_down(struct net *n)
{
	for (int i = 0; i < 3; i++)
		memhost_destroy(n->h[i]);
}

static void send_from(struct net *n, int host, const char *port, const uint8_t *f, uint32_t len)
{
	const uint8_t *fr[1] = {f};
	n->n_walk = 0;
	assert_true(memhost_rx(n->h[host], hostcfg_port_by_ifname(memhost_cfg(n->h[host]), port), fr, &len, 1));
	pump(n);
}

static void expect_hop(const struct net *n, int i, int from, int to, uint32_t vni, int si)
{
	assert_true(i < n->n_walk);
	assert_int_equal(n->walk[i].from, from);
	assert_int_equal(n->walk[i].to, to);
	assert_int_equal(n->walk[i].vni, vni);
	assert_int_equal(n->walk[i].si, si);
}

static void expect_delivered(struct net *n, int host, const char *port, const uint8_t *f, uint32_t len)
{
	uint8_t out[PKT_DATA_ROOM];
	assert_int_equal(memhost_take(n->h[host], hostcfg_port_by_ifname(memhost_cfg(n->h[host]), port), out, sizeof(out)),
			 len);
	assert_memory_equal(out, f, len);
}

/* SPEC 3: egress rule at A; the walk h1 -> h2 (255) -> h3 (254) -> h1 (253)
 * -> h3 on the guest VNI; the reply enters h1 and takes the reverse path. */
static void test_egress_walk(void **state)
{
	(void)state;
	struct net n;
	net_up(&n, "{ name: a-out, applied_to: [A], direction: egress, match: { proto: tcp }, action: redirect, chain: inspect }");
	uint8_t f[64];
	uint32_t len = build_tcp(f, MB, MA, 1, 2, 40000, 80, 0x02);
	send_from(&n, 0, "ap", f, len);
	assert_int_equal(n.n_walk, 4);
	expect_hop(&n, 0, 0, 1, 4000, 255);
	expect_hop(&n, 1, 1, 2, 4000, 254);
	expect_hop(&n, 2, 2, 0, 4000, 253);
	expect_hop(&n, 3, 0, 2, 100, -1);
	uint32_t spi = n.walk[0].spi;
	assert_int_equal(n.walk[1].spi, spi);
	assert_int_equal(n.walk[2].spi, spi);
	expect_delivered(&n, 2, "bp", f, len);

	len = build_tcp(f, MA, MB, 2, 1, 80, 40000, 0x12);
	send_from(&n, 2, "bp", f, len);
	assert_int_equal(n.n_walk, 4);
	expect_hop(&n, 0, 2, 0, 100, -1); /* to A's host on the guest plane */
	expect_hop(&n, 1, 0, 2, 4000, 255); /* reverse path: ids first */
	expect_hop(&n, 2, 2, 1, 4000, 254); /* then fw */
	expect_hop(&n, 3, 1, 0, 4000, 253); /* home */
	assert_int_equal(n.walk[1].spi, spi + 1);
	expect_delivered(&n, 0, "ap", f, len);
	net_down(&n);
}

/* An ingress rule at B runs on B's host: A's packet crosses on the guest
 * plane first, the chain starts at h3 and comes home to h3; B's reply takes
 * the reverse path from h3 and then the guest plane to A. */
static void test_ingress_rule_on_destination_host(void **state)
{
	(void)state;
	struct net n;
	net_up(&n, "{ name: b-in, applied_to: [B], direction: ingress, match: { proto: tcp, dst_port: 80 }, action: redirect, chain: inspect }");
	uint8_t f[64];
	uint32_t len = build_tcp(f, MB, MA, 1, 2, 40001, 80, 0x02);
	send_from(&n, 0, "ap", f, len);
	assert_int_equal(n.n_walk, 3);
	expect_hop(&n, 0, 0, 2, 100, -1);   /* guest plane to B's host */
	expect_hop(&n, 1, 2, 1, 4000, 255); /* classified there: fw on h2 */
	expect_hop(&n, 2, 1, 2, 4000, 254); /* ids on h3; home is h3 itself */
	expect_delivered(&n, 2, "bp", f, len);

	len = build_tcp(f, MA, MB, 2, 1, 80, 40001, 0x12);
	send_from(&n, 2, "bp", f, len);
	assert_int_equal(n.n_walk, 3);
	expect_hop(&n, 0, 2, 1, 4000, 254); /* reverse: ids on h3 (local), then fw on h2 */
	expect_hop(&n, 1, 1, 2, 4000, 253); /* home to h3 */
	expect_hop(&n, 2, 2, 0, 100, -1);   /* then the guest plane to A */
	expect_delivered(&n, 0, "ap", f, len);
	net_down(&n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_egress_walk),
		cmocka_unit_test(test_ingress_rule_on_destination_host),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_hostcfg.c - one host's view of a topology: the local ports derived
 * from guests and service nodes, and liveness with the failure policy
 * (`block` empties the chain, `allow` bypasses the service) as seen through
 * path picking and next hops, also across a rebuild.
 * Owns nothing but these tests; must not touch src/. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "hostcfg.h"

#define TOPO_HEAD                                                                                                     \
	"service_plane: { vni: 4000 }\n"                                                                               \
	"hosts: [ { name: h1, vtep: 10.0.0.1 }, { name: h2, vtep: 10.0.0.2 } ]\n"                                      \
	"networks: [ { name: blue, vni: 100 }, { name: red, vni: 200 } ]\n"                                            \
	"guests:\n"                                                                                                    \
	"  - { name: vm1, host: h1, network: blue, port: vm1p, mac: \"02:00:00:00:01:01\", ip: 192.168.1.1 }\n"        \
	"  - { name: vm2, host: h1, network: red, port: vm2p, mac: \"02:00:00:00:01:02\", ip: 192.168.2.2 }\n"         \
	"  - { name: vm3, host: h2, network: blue, port: vm3p, mac: \"02:00:00:00:01:03\", ip: 192.168.1.3 }\n"

#define TOPO_TAIL                                                                                                     \
	"  - { name: ids, mode: nsh, failure: allow, nodes: [ { name: ids1, host: h1, ports: [ids1p], mac: \"02:00:00:00:aa:01\" },\n" \
	"                                                   { name: ids2, host: h2, ports: [ids2p], mac: \"02:00:00:00:aa:02\" } ] }\n" \
	"  - { name: nat, mode: l3, failure: block, nodes: [ { name: r1, host: h1, ports: [r1p], mac: \"02:00:00:00:bb:01\" } ] }\n" \
	"chains: [ { name: inspect, services: [fw, ids] }, { name: full, services: [fw, ids, nat] }, { name: natc, services: [nat] } ]\n" \
	"rules:\n"                                                                                                     \
	"  - { name: web, applied_to: [vm1], direction: egress, priority: 100, match: { proto: tcp, dst_port: 80 }, action: redirect, chain: inspect }\n" \
	"  - { name: in, applied_to: [red], direction: ingress, priority: 10, match: { proto: udp }, action: redirect, chain: natc }\n"

static const char *TOPO = TOPO_HEAD
	"services:\n"
	"  - { name: fw, mode: l2, failure: block, nodes: [ { name: fw1, host: h1, ports: [fw1i, fw1o] },\n"
	"                                                 { name: fw2, host: h1, ports: [fw2i, fw2o] } ] }\n"
	TOPO_TAIL;

/* The same with one more fw node first: every node index shifts. */
static const char *TOPO2 = TOPO_HEAD
	"services:\n"
	"  - { name: fw, mode: l2, failure: block, nodes: [ { name: fw0, host: h1, ports: [fw0i, fw0o] },\n"
	"                                                 { name: fw1, host: h1, ports: [fw1i, fw1o] },\n"
	"                                                 { name: fw2, host: h1, ports: [fw2i, fw2o] } ] }\n"
	TOPO_TAIL;

#define HASHES 10000

static struct hostcfg *build(const char *yaml, const char *host)
{
	struct topo_errors errs;
	memset(&errs, 0, sizeof(errs));
	struct topology *t = topology_load_buffer(yaml, strlen(yaml), &errs);
	if (!t)
		fail_msg("topology: line %d: %s", errs.e[0].line, errs.e[0].msg);
	char err[200] = "";
	struct hostcfg *hc = hostcfg_build(t, host, err, sizeof(err));
	if (!hc)
		fail_msg("hostcfg_build: %s", err);
	return hc;
}

static uint16_t node(const struct hostcfg *hc, const char *name)
{
	uint16_t n = topology_node_index(hc->topo, name);
	assert_int_not_equal(n, TOPO_NO_INDEX);
	return n;
}

static uint16_t chain(const struct hostcfg *hc, const char *name)
{
	uint16_t c = topology_chain_index(hc->topo, name);
	assert_int_not_equal(c, TOPO_NO_INDEX);
	return c;
}

static bool path_has(const struct hostcfg *hc, uint16_t path, uint16_t n)
{
	const struct path *p = &hc->ps->paths[path];
	for (int i = 0; i < p->n_hops; i++)
		if (p->nodes[i] == n)
			return true;
	return false;
}

static void check_port(const struct hostcfg *hc, const char *ifname, enum port_kind kind, uint16_t ref, uint32_t vni)
{
	uint16_t p = hostcfg_port_by_ifname(hc, ifname);
	if (p == PORT_NONE)
		fail_msg("no port %s", ifname);
	assert_string_equal(hc->ports[p].ifname, ifname);
	assert_int_equal(hc->ports[p].kind, kind);
	assert_int_equal(hc->ports[p].ref, ref);
	assert_int_equal(hc->ports[p].vni, vni);
}

static void test_ports_h1(void **state)
{
	(void)state;
	struct hostcfg *hc = build(TOPO, "h1");
	const struct topology *t = hc->topo;
	assert_int_equal(hc->self, topology_host_index(t, "h1"));
	struct ipaddr vtep;
	assert_true(ipaddr_parse("10.0.0.1", &vtep));
	assert_true(ipaddr_eq(&hc->vtep, &vtep));
	assert_memory_equal(&hc->pp_spmac, &hc->ps->host_spmac[hc->self], sizeof(struct mac));

	/* 2 local guests, 2 l2 nodes x 2, 1 nsh node, 1 l3 node; vm3 and ids2 are on h2 */
	assert_int_equal(hc->n_ports, 8);
	uint16_t vm1 = topology_guest_index(t, "vm1"), vm2 = topology_guest_index(t, "vm2"),
		 vm3 = topology_guest_index(t, "vm3");
	check_port(hc, "vm1p", PORT_GUEST, vm1, 100);
	check_port(hc, "vm2p", PORT_GUEST, vm2, 200);
	check_port(hc, "fw1i", PORT_SN_IN, node(hc, "fw1"), 0);
	check_port(hc, "fw1o", PORT_SN_OUT, node(hc, "fw1"), 0);
	check_port(hc, "fw2i", PORT_SN_IN, node(hc, "fw2"), 0);
	check_port(hc, "fw2o", PORT_SN_OUT, node(hc, "fw2"), 0);
	check_port(hc, "ids1p", PORT_SN, node(hc, "ids1"), 0);
	check_port(hc, "r1p", PORT_SN, node(hc, "r1"), 0);
	assert_int_equal(hostcfg_port_by_ifname(hc, "vm3p"), PORT_NONE);
	assert_int_equal(hostcfg_port_by_ifname(hc, "ids2p"), PORT_NONE);
	assert_int_equal(hostcfg_port_by_ifname(hc, "eth0"), PORT_NONE);
	assert_int_equal(hostcfg_port_by_ifname(hc, ""), PORT_NONE);

	/* the reverse maps agree with the port list */
	assert_int_equal(hc->guest_port[vm1], hostcfg_port_by_ifname(hc, "vm1p"));
	assert_int_equal(hc->guest_port[vm2], hostcfg_port_by_ifname(hc, "vm2p"));
	assert_int_equal(hc->guest_port[vm3], PORT_NONE);
	assert_int_equal(hc->node_port[node(hc, "fw1")][0], hostcfg_port_by_ifname(hc, "fw1i"));
	assert_int_equal(hc->node_port[node(hc, "fw1")][1], hostcfg_port_by_ifname(hc, "fw1o"));
	assert_int_equal(hc->node_port[node(hc, "ids1")][0], hostcfg_port_by_ifname(hc, "ids1p"));
	assert_int_equal(hc->node_port[node(hc, "ids1")][1], hostcfg_port_by_ifname(hc, "ids1p"));
	assert_int_equal(hc->node_port[node(hc, "r1")][0], hostcfg_port_by_ifname(hc, "r1p"));
	assert_int_equal(hc->node_port[node(hc, "r1")][1], hostcfg_port_by_ifname(hc, "r1p"));
	assert_int_equal(hc->node_port[node(hc, "ids2")][0], PORT_NONE);
	assert_int_equal(hc->node_port[node(hc, "ids2")][1], PORT_NONE);

	/* rules: vm1 egress (bit 0), red = vm2 ingress (bit 1), vm3 none */
	assert_int_equal(hc->guest_rules[vm1], 1);
	assert_int_equal(hc->guest_rules[vm2], 2);
	assert_int_equal(hc->guest_rules[vm3], 0);

	/* every node starts live, nothing blocked or bypassed */
	for (uint16_t n = 0; n < t->n_nodes; n++)
		assert_int_equal(hostcfg_live(hc)->node_up[n], 1);
	for (uint16_t c = 0; c < t->n_chains; c++) {
		assert_int_equal(hostcfg_live(hc)->blocked[c], 0);
		assert_int_equal(hostcfg_live(hc)->bypass[c], 0);
	}
	hostcfg_free(hc);
}

static void test_ports_h2(void **state)
{
	(void)state;
	struct hostcfg *hc = build(TOPO, "h2");
	assert_int_equal(hc->n_ports, 2);
	check_port(hc, "vm3p", PORT_GUEST, topology_guest_index(hc->topo, "vm3"), 100);
	check_port(hc, "ids2p", PORT_SN, node(hc, "ids2"), 0);
	assert_int_equal(hostcfg_port_by_ifname(hc, "vm1p"), PORT_NONE);
	assert_int_equal(hostcfg_port_by_ifname(hc, "fw1i"), PORT_NONE);
	assert_int_equal(hc->node_port[node(hc, "fw1")][0], PORT_NONE);
	/* another host, another port proxy spmac */
	assert_memory_equal(&hc->pp_spmac, &hc->ps->host_spmac[topology_host_index(hc->topo, "h2")], 6);
	assert_memory_not_equal(&hc->pp_spmac, &hc->ps->host_spmac[topology_host_index(hc->topo, "h1")], 6);
	hostcfg_free(hc);
}

static void test_unknown_host(void **state)
{
	(void)state;
	struct topo_errors errs;
	memset(&errs, 0, sizeof(errs));
	struct topology *t = topology_load_buffer(TOPO, strlen(TOPO), &errs);
	assert_non_null(t);
	char err[200] = "";
	/* t is taken over and freed (the sanitizer run checks for a leak) */
	assert_null(hostcfg_build(t, "h9", err, sizeof(err)));
	assert_non_null(strstr(err, "'h9'"));
	assert_non_null(strstr(err, "not in the topology"));
	hostcfg_free(NULL);
}

/* Over many flow hashes: how often each path of chain c is picked. Fails
 * on any pick outside the chain. Returns the number of PATH_NONE. */
static unsigned pick_all(const struct hostcfg *hc, uint16_t c, unsigned *count)
{
	uint16_t first = hc->ps->chain_first[c], n = hc->ps->chain_n[c];
	unsigned none = 0;
	memset(count, 0, sizeof(unsigned) * n);
	for (uint64_t i = 0; i < HASHES; i++) {
		uint16_t p = hostcfg_pick_path(hc, c, hash_mix64(i + 1));
		if (p == PATH_NONE) {
			none++;
			continue;
		}
		assert_in_range(p, first, first + n - 1);
		count[p - first]++;
	}
	return none;
}

static void test_all_live(void **state)
{
	(void)state;
	struct hostcfg *hc = build(TOPO, "h1");
	uint16_t c = chain(hc, "inspect");
	assert_int_equal(hc->ps->chain_n[c], 4);
	unsigned count[PATH_MAX_PER_CHAIN];
	assert_int_equal(pick_all(hc, c, count), 0);
	for (uint16_t i = 0; i < 4; i++) {
		assert_true(hostcfg_path_live(hc, hc->ps->chain_first[c] + i));
		assert_true(count[i] > HASHES / 8); /* all four used, roughly evenly */
	}
	/* the same hash picks the same path */
	for (uint64_t h = 0; h < 100; h++)
		assert_int_equal(hostcfg_pick_path(hc, c, h * 7919), hostcfg_pick_path(hc, c, h * 7919));
	/* out-of-range chain */
	assert_int_equal(hostcfg_pick_path(hc, hc->topo->n_chains, 1), PATH_NONE);
	hostcfg_free(hc);
}

static void test_one_fw_down(void **state)
{
	(void)state;
	struct hostcfg *hc = build(TOPO, "h1");
	uint16_t c = chain(hc, "inspect"), fw1 = node(hc, "fw1"), fw2 = node(hc, "fw2");
	uint64_t gen = hostcfg_live(hc)->generation;
	hostcfg_set_node(hc, fw1, false);
	assert_true(hostcfg_live(hc)->generation > gen);
	assert_int_equal(hostcfg_live(hc)->node_up[fw1], 0);
	assert_int_equal(hostcfg_live(hc)->blocked[c], 0);
	assert_int_equal(hostcfg_live(hc)->bypass[c], 0);
	unsigned count[PATH_MAX_PER_CHAIN];
	assert_int_equal(pick_all(hc, c, count), 0);
	uint16_t first = hc->ps->chain_first[c];
	unsigned via_fw2 = 0;
	for (uint16_t i = 0; i < hc->ps->chain_n[c]; i++) {
		bool dead = path_has(hc, first + i, fw1);
		assert_int_equal(hostcfg_path_live(hc, first + i), !dead);
		if (dead)
			assert_int_equal(count[i], 0);
		else {
			assert_true(path_has(hc, first + i, fw2));
			assert_true(count[i] > 0);
			via_fw2 += count[i];
		}
	}
	assert_int_equal(via_fw2, HASHES);
	/* setting the same state again changes nothing */
	gen = hostcfg_live(hc)->generation;
	hostcfg_set_node(hc, fw1, false);
	assert_int_equal(hostcfg_live(hc)->generation, gen);
	/* back up: all four paths again */
	hostcfg_set_node(hc, fw1, true);
	assert_int_equal(pick_all(hc, c, count), 0);
	for (uint16_t i = 0; i < 4; i++)
		assert_true(count[i] > 0);
	hostcfg_free(hc);
}

static void test_one_ids_down_avoided(void **state)
{
	(void)state;
	/* ids is `allow`, but with one node live the dead one is simply avoided */
	struct hostcfg *hc = build(TOPO, "h1");
	uint16_t c = chain(hc, "inspect"), ids1 = node(hc, "ids1");
	hostcfg_set_node(hc, ids1, false);
	assert_int_equal(hostcfg_live(hc)->bypass[c], 0);
	unsigned count[PATH_MAX_PER_CHAIN];
	assert_int_equal(pick_all(hc, c, count), 0);
	for (uint16_t i = 0; i < 4; i++)
		if (path_has(hc, hc->ps->chain_first[c] + i, ids1))
			assert_int_equal(count[i], 0);
	hostcfg_free(hc);
}

static void test_both_fw_down_blocks(void **state)
{
	(void)state;
	struct hostcfg *hc = build(TOPO, "h1");
	uint16_t c = chain(hc, "inspect"), full = chain(hc, "full"), natc = chain(hc, "natc");
	hostcfg_set_node(hc, node(hc, "fw1"), false);
	hostcfg_set_node(hc, node(hc, "fw2"), false);
	assert_int_equal(hostcfg_live(hc)->blocked[c], 1);
	assert_int_equal(hostcfg_live(hc)->blocked[full], 1);
	assert_int_equal(hostcfg_live(hc)->blocked[natc], 0);
	unsigned count[PATH_MAX_PER_CHAIN];
	assert_int_equal(pick_all(hc, c, count), HASHES);
	assert_int_equal(pick_all(hc, full, count), HASHES);
	assert_int_equal(pick_all(hc, natc, count), 0);
	/* one back: unblocked, through it only */
	hostcfg_set_node(hc, node(hc, "fw2"), true);
	assert_int_equal(hostcfg_live(hc)->blocked[c], 0);
	assert_int_equal(pick_all(hc, c, count), 0);
	for (uint16_t i = 0; i < 4; i++)
		if (path_has(hc, hc->ps->chain_first[c] + i, node(hc, "fw1")))
			assert_int_equal(count[i], 0);
	/* the single l3 node of natc (block) down: natc blocked, inspect not */
	hostcfg_set_node(hc, node(hc, "r1"), false);
	assert_int_equal(hostcfg_live(hc)->blocked[natc], 1);
	assert_int_equal(pick_all(hc, natc, count), HASHES);
	assert_int_equal(pick_all(hc, c, count), 0);
	hostcfg_free(hc);
}

/* Walk a path as the service plane does: next_hop(si), node at *si_out,
 * then on from *si_out - 1. Returns hops visited into nodes[]/sis[]. */
static int walk(const struct hostcfg *hc, const struct path *p, bool reverse, uint16_t *nodes, uint8_t *sis)
{
	int n = 0;
	uint8_t si = 255;
	for (;;) {
		uint8_t out = 0xaa;
		uint16_t nd = hostcfg_next_hop(hc, p, reverse, si, &out);
		if (nd == TOPO_NO_INDEX)
			return n;
		assert_true(n < PATH_MAX_HOPS);
		assert_true(out <= si);
		nodes[n] = nd;
		sis[n++] = out;
		if (out == 0)
			return n;
		si = (uint8_t)(out - 1);
	}
}

static void test_both_ids_down_bypassed(void **state)
{
	(void)state;
	struct hostcfg *hc = build(TOPO, "h1");
	uint16_t c = chain(hc, "inspect"), full = chain(hc, "full");
	uint16_t ids1 = node(hc, "ids1"), ids2 = node(hc, "ids2"), r1 = node(hc, "r1");
	uint16_t nodes[PATH_MAX_HOPS];
	uint8_t sis[PATH_MAX_HOPS];
	/* all live: both hops, forward fw then ids, reverse ids then fw */
	const struct path *p0 = &hc->ps->paths[hc->ps->chain_first[c]];
	assert_int_equal(walk(hc, p0, false, nodes, sis), 2);
	assert_int_equal(nodes[0], p0->nodes[0]);
	assert_int_equal(sis[0], 255);
	assert_int_equal(nodes[1], p0->nodes[1]);
	assert_int_equal(sis[1], 254);
	assert_int_equal(walk(hc, p0, true, nodes, sis), 2);
	assert_int_equal(nodes[0], p0->nodes[1]);
	assert_int_equal(sis[0], 255);
	assert_int_equal(nodes[1], p0->nodes[0]);
	assert_int_equal(sis[1], 254);

	hostcfg_set_node(hc, ids1, false);
	hostcfg_set_node(hc, ids2, false);
	assert_int_equal(hostcfg_live(hc)->blocked[c], 0);
	assert_int_equal(hostcfg_live(hc)->bypass[c], 1u << 1);
	assert_int_equal(hostcfg_live(hc)->bypass[full], 1u << 1);
	unsigned count[PATH_MAX_PER_CHAIN];
	assert_int_equal(pick_all(hc, c, count), 0);
	for (uint16_t i = 0; i < hc->ps->chain_n[c]; i++) {
		uint16_t pi = hc->ps->chain_first[c] + i;
		const struct path *p = &hc->ps->paths[pi];
		assert_true(hostcfg_path_live(hc, pi));
		/* forward: 255 -> fw, then the end */
		assert_int_equal(walk(hc, p, false, nodes, sis), 1);
		assert_int_equal(nodes[0], p->nodes[0]);
		assert_int_equal(sis[0], 255);
		/* reverse: the ids hop (first in reverse) is skipped, fw, then the end */
		assert_int_equal(walk(hc, p, true, nodes, sis), 1);
		assert_int_equal(nodes[0], p->nodes[0]);
		uint8_t si;
		assert_int_equal(hostcfg_next_hop(hc, p, false, 254, &si), TOPO_NO_INDEX);
		assert_int_equal(hostcfg_next_hop(hc, p, true, 255, &si), p->nodes[0]);
	}
	/* a bypassed service in the middle: fw, nat forward; nat, fw reverse */
	assert_int_equal(pick_all(hc, full, count), 0);
	for (uint16_t i = 0; i < hc->ps->chain_n[full]; i++) {
		const struct path *p = &hc->ps->paths[hc->ps->chain_first[full] + i];
		assert_int_equal(walk(hc, p, false, nodes, sis), 2);
		assert_int_equal(nodes[0], p->nodes[0]);
		assert_int_equal(nodes[1], r1);
		assert_int_equal(sis[0], 255);
		assert_int_equal(sis[1], 253);
		assert_int_equal(walk(hc, p, true, nodes, sis), 2);
		assert_int_equal(nodes[0], r1);
		assert_int_equal(nodes[1], p->nodes[0]);
		assert_int_equal(sis[0], 255);
		assert_int_equal(sis[1], 253);
	}
	/* one ids back: no bypass any more, paths through the dead one avoided */
	hostcfg_set_node(hc, ids2, true);
	assert_int_equal(hostcfg_live(hc)->bypass[c], 0);
	assert_int_equal(pick_all(hc, c, count), 0);
	for (uint16_t i = 0; i < 4; i++) {
		uint16_t pi = hc->ps->chain_first[c] + i;
		if (path_has(hc, pi, ids1))
			assert_int_equal(count[i], 0);
		else
			assert_true(count[i] > 0);
	}
	hostcfg_free(hc);
}

static void test_inherit_liveness(void **state)
{
	(void)state;
	struct hostcfg *old = build(TOPO, "h1");
	hostcfg_set_node(old, node(old, "fw1"), false);
	hostcfg_set_node(old, node(old, "ids1"), false);
	hostcfg_set_node(old, node(old, "ids2"), false);
	struct hostcfg *hc = build(TOPO2, "h1");
	/* the indexes moved: fw0 now sits where fw1 was */
	assert_int_equal(node(hc, "fw0"), node(old, "fw1"));
	hostcfg_inherit_liveness(hc, old);
	assert_int_equal(hostcfg_live(hc)->node_up[node(hc, "fw0")], 1); /* new node: live */
	assert_int_equal(hostcfg_live(hc)->node_up[node(hc, "fw1")], 0);
	assert_int_equal(hostcfg_live(hc)->node_up[node(hc, "fw2")], 1);
	assert_int_equal(hostcfg_live(hc)->node_up[node(hc, "ids1")], 0);
	assert_int_equal(hostcfg_live(hc)->node_up[node(hc, "ids2")], 0);
	assert_int_equal(hostcfg_live(hc)->node_up[node(hc, "r1")], 1);
	uint16_t c = chain(hc, "inspect");
	assert_int_equal(hostcfg_live(hc)->bypass[c], 1u << 1);
	assert_int_equal(hostcfg_live(hc)->blocked[c], 0);
	/* selectors follow: no pick goes through fw1 */
	unsigned count[PATH_MAX_PER_CHAIN];
	assert_int_equal(pick_all(hc, c, count), 0);
	unsigned live = 0;
	for (uint16_t i = 0; i < hc->ps->chain_n[c]; i++) {
		uint16_t pi = hc->ps->chain_first[c] + i;
		if (path_has(hc, pi, node(hc, "fw1")))
			assert_int_equal(count[i], 0);
		else
			live += count[i] > 0;
	}
	assert_int_equal(live, 4); /* fw0 and fw2, each with ids1 and ids2 (bypassed) */
	hostcfg_free(old);

	/* and back the other way: fw0 does not exist in the older file */
	old = hc;
	hostcfg_set_node(old, node(old, "fw0"), false);
	hc = build(TOPO, "h1");
	hostcfg_inherit_liveness(hc, old);
	assert_int_equal(hostcfg_live(hc)->node_up[node(hc, "fw1")], 0);
	assert_int_equal(hostcfg_live(hc)->node_up[node(hc, "fw2")], 1);
	assert_int_equal(hostcfg_live(hc)->blocked[chain(hc, "inspect")], 0);
	hostcfg_free(old);
	hostcfg_free(hc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ports_h1),
		cmocka_unit_test(test_ports_h2),
		cmocka_unit_test(test_unknown_host),
		cmocka_unit_test(test_all_live),
		cmocka_unit_test(test_one_fw_down),
		cmocka_unit_test(test_one_ids_down_avoided),
		cmocka_unit_test(test_both_fw_down_blocks),
		cmocka_unit_test(test_both_ids_down_bypassed),
		cmocka_unit_test(test_inherit_liveness),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

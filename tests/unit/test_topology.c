/* test_topology.c - unit tests of the topology loader (src/topology.c):
 * values of the SPEC example and of the files in examples/, every validation error
 * with its message and line, error collection, limits, YAML syntax errors.
 * Touches nothing but the loader. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topology.h"

static const char spec_example[] =
	"service_plane: { vni: 4000 }          # per tenant when `tenants:` is used\n"
	"hosts:    [ { name: h1, vtep: 10.0.0.1 }, { name: h2, vtep: 10.0.0.2 } ]\n"
	"networks: [ { name: blue, vni: 100 } ]\n"
	"guests:\n"
	"  - { name: vm1, host: h1, network: blue, port: vm1p, mac: \"02:00:00:00:01:01\", ip: 192.168.1.1 }\n"
	"  - { name: vm2, host: h2, network: blue, port: vm2p, mac: \"02:00:00:00:01:02\", ip: 192.168.1.2 }\n"
	"services:\n"
	"  - name: fw\n"
	"    mode: l2                          # l2 | l3 | nsh\n"
	"    failure: block                    # block (drop when no live path) | allow (bypass)\n"
	"    nodes:\n"
	"      - { name: fw1, host: h1, ports: [fw1in, fw1out] }\n"
	"      - { name: fw2, host: h2, ports: [fw2in, fw2out] }\n"
	"  - name: ids\n"
	"    mode: nsh\n"
	"    nodes: [ { name: ids1, host: h2, ports: [ids1p], mac: \"02:00:00:00:aa:01\" } ]\n"
	"chains:   [ { name: inspect, services: [fw, ids] } ]\n"
	"rules:\n"
	"  - name: web\n"
	"    applied_to: [vm2]                 # guests or networks\n"
	"    direction: ingress                # ingress | egress | both\n"
	"    priority: 100\n"
	"    match: { proto: tcp, dst_port: 80, src: 192.168.1.0/24 }   # also dst, src_port, ranges, ipv6\n"
	"    action: redirect                  # redirect | copy | skip\n"
	"    chain: inspect\n";

/* A valid base: lines 1-9; test cases append lines from 10 on. */
#define BASE                                                                   \
	"service_plane: { vni: 4000 }\n"                                       \
	"hosts:\n"                                                             \
	"  - { name: h1, vtep: 10.0.0.1 }\n"                                   \
	"  - { name: h2, vtep: 10.0.0.2 }\n"                                   \
	"networks:\n"                                                          \
	"  - { name: blue, vni: 100 }\n"                                       \
	"guests:\n"                                                            \
	"  - { name: vm1, host: h1, network: blue, port: vm1p, mac: \"02:00:00:00:01:01\" }\n" \
	"  - { name: vm2, host: h2, network: blue, port: vm2p, mac: \"02:00:00:00:01:02\" }\n"

/* Services on lines 10-16, chain "inspect" on 18. */
#define SVCS                                                                   \
	"services:\n"                                                          \
	"  - name: fw\n"                                                       \
	"    mode: l2\n"                                                       \
	"    nodes: [ { name: fw1, host: h1, ports: [fw1in, fw1out] } ]\n"     \
	"  - name: ids\n"                                                      \
	"    mode: nsh\n"                                                      \
	"    nodes: [ { name: ids1, host: h2, ports: [ids1p], mac: \"02:00:00:00:aa:01\" } ]\n" \
	"chains:\n"                                                            \
	"  - { name: inspect, services: [fw, ids] }\n"

static struct topology *load(const char *text, struct topo_errors *e)
{
	return topology_load_buffer(text, strlen(text), e);
}

static void dump(const struct topo_errors *e)
{
	for (unsigned i = 0; i < e->n; i++)
		fprintf(stderr, "  line %d: %s\n", e->e[i].line, e->e[i].msg);
}

/* Is there an error at this line whose message contains sub? */
static bool has_err(const struct topo_errors *e, int line, const char *sub)
{
	for (unsigned i = 0; i < e->n; i++)
		if (e->e[i].line == line && strstr(e->e[i].msg, sub))
			return true;
	return false;
}

/* Loads text, which must fail with (at least) this error. */
static void expect_err(const char *text, int line, const char *sub)
{
	struct topo_errors e;
	struct topology *t = load(text, &e);
	if (t || !has_err(&e, line, sub)) {
		fprintf(stderr, "expected line %d: '%s'; got:\n", line, sub);
		dump(&e);
	}
	assert_null(t);
	assert_true(e.n >= 1);
	assert_true(has_err(&e, line, sub));
	topology_free(t);
}

static struct topology *must_load(const char *text)
{
	struct topo_errors e;
	struct topology *t = load(text, &e);
	if (!t)
		dump(&e);
	assert_non_null(t);
	assert_int_equal(e.n, 0);
	return t;
}

static void ip_is(const struct ipaddr *a, const char *s)
{
	char buf[IPADDR_STRLEN];
	ipaddr_format(a, buf);
	assert_string_equal(buf, s);
}

static void mac_is(const struct mac *m, const char *s)
{
	char buf[MAC_STRLEN];
	mac_format(m, buf);
	assert_string_equal(buf, s);
}

static void test_spec_example(void **state)
{
	(void)state;
	struct topology *t = must_load(spec_example);
	assert_int_equal(t->sp_vni, 4000);
	assert_int_equal(t->md_class, 0xFFF6);

	assert_int_equal(t->n_hosts, 2);
	assert_string_equal(t->hosts[1].name, "h2");
	ip_is(&t->hosts[0].vtep, "10.0.0.1");
	ip_is(&t->hosts[1].vtep, "10.0.0.2");
	assert_int_equal(t->hosts[0].mtu, 1500);
	assert_int_equal(t->hosts[1].line, 2);

	assert_int_equal(t->n_networks, 1);
	assert_string_equal(t->networks[0].name, "blue");
	assert_int_equal(t->networks[0].vni, 100);

	assert_int_equal(t->n_guests, 2);
	const struct topo_guest *g = &t->guests[1];
	assert_string_equal(g->name, "vm2");
	assert_int_equal(g->host, 1);
	assert_int_equal(g->network, 0);
	assert_string_equal(g->port, "vm2p");
	mac_is(&g->mac, "02:00:00:00:01:02");
	assert_true(g->has_ip);
	ip_is(&g->ip, "192.168.1.2");
	assert_int_equal(g->plen, 96 + 24);
	assert_int_equal(g->line, 6);

	assert_int_equal(t->n_services, 2);
	assert_string_equal(t->services[0].name, "fw");
	assert_int_equal(t->services[0].mode, SVC_MODE_L2);
	assert_int_equal(t->services[0].failure, SVC_FAIL_BLOCK);
	assert_int_equal(t->services[0].first_node, 0);
	assert_int_equal(t->services[0].n_nodes, 2);
	assert_int_equal(t->services[1].mode, SVC_MODE_NSH);
	assert_int_equal(t->services[1].failure, SVC_FAIL_BLOCK);
	assert_int_equal(t->services[1].first_node, 2);
	assert_int_equal(t->services[1].n_nodes, 1);
	assert_int_equal(t->services[1].line, 14);

	assert_int_equal(t->n_nodes, 3);
	const struct topo_node *n = &t->nodes[1];
	assert_string_equal(n->name, "fw2");
	assert_int_equal(n->service, 0);
	assert_int_equal(n->host, 1);
	assert_int_equal(n->n_ports, 2);
	assert_string_equal(n->ports[0], "fw2in");
	assert_string_equal(n->ports[1], "fw2out");
	assert_false(n->has_mac);
	n = &t->nodes[2];
	assert_string_equal(n->name, "ids1");
	assert_int_equal(n->service, 1);
	assert_int_equal(n->n_ports, 1);
	assert_true(n->has_mac);
	mac_is(&n->mac, "02:00:00:00:aa:01");

	assert_int_equal(t->n_chains, 1);
	assert_string_equal(t->chains[0].name, "inspect");
	assert_int_equal(t->chains[0].n_services, 2);
	assert_int_equal(t->chains[0].services[0], 0);
	assert_int_equal(t->chains[0].services[1], 1);

	assert_int_equal(t->n_rules, 1);
	const struct topo_rule *r = &t->rules[0];
	assert_string_equal(r->name, "web");
	assert_int_equal(r->n_applied, 1);
	assert_false(r->applied_to[0].is_network);
	assert_int_equal(r->applied_to[0].index, 1);
	assert_int_equal(r->dir, RULE_DIR_INGRESS);
	assert_int_equal(r->priority, 100);
	assert_int_equal(r->match.proto, 6);
	assert_int_equal(r->match.dport.lo, 80);
	assert_int_equal(r->match.dport.hi, 80);
	assert_int_equal(r->match.sport.lo, 0);
	assert_int_equal(r->match.sport.hi, 65535);
	assert_true(r->match.has_src);
	assert_false(r->match.has_dst);
	ip_is(&r->match.src, "192.168.1.0");
	assert_int_equal(r->match.src_plen, 96 + 24);
	assert_int_equal(r->action, RULE_REDIRECT);
	assert_int_equal(r->chain, 0);
	assert_int_equal(r->line, 19);

	assert_int_equal(topology_host_index(t, "h2"), 1);
	assert_int_equal(topology_host_index(t, "h3"), TOPO_NO_INDEX);
	assert_int_equal(topology_guest_index(t, "vm1"), 0);
	assert_int_equal(topology_node_index(t, "ids1"), 2);
	assert_int_equal(topology_node_index(t, "nope"), TOPO_NO_INDEX);
	assert_int_equal(topology_chain_index(t, "inspect"), 0);
	assert_int_equal(topology_service_index(t, "ids"), 1);
	assert_int_equal(topology_service_index(t, "fw2"), TOPO_NO_INDEX);
	topology_free(t);
}

/* The same topology in block style gives the same values. */
static void test_block_style(void **state)
{
	(void)state;
	struct topology *t = must_load("service_plane:\n"
				       "  vni: 4000\n"
				       "  md_class: \"0xFFF7\"\n"
				       "hosts:\n"
				       "  - name: h1\n"
				       "    vtep: \"fd00::1\"\n"
				       "    mtu: 9000\n"
				       "networks:\n"
				       "  - name: blue\n"
				       "    vni: 0x64\n"
				       "guests:\n"
				       "  - name: vm1\n"
				       "    host: h1\n"
				       "    network: blue\n"
				       "    port: vm1p\n"
				       "    mac: 02:00:00:00:01:01\n"
				       "    ip: fd01::5\n"
				       "  - name: vm2\n"
				       "    host: h1\n"
				       "    network: blue\n"
				       "    port: vm2p\n"
				       "    mac: 02:00:00:00:01:02\n"
				       "    ip: 10.1.2.3/16\n");
	assert_int_equal(t->md_class, 0xFFF7);
	ip_is(&t->hosts[0].vtep, "fd00::1");
	assert_int_equal(t->hosts[0].mtu, 9000);
	assert_int_equal(t->networks[0].vni, 100);
	ip_is(&t->guests[0].ip, "fd01::5");
	assert_int_equal(t->guests[0].plen, 64);
	assert_int_equal(t->guests[0].line, 12);
	ip_is(&t->guests[1].ip, "10.1.2.3"); /* host bits kept */
	assert_int_equal(t->guests[1].plen, 96 + 16);
	assert_int_equal(t->n_services, 0);
	topology_free(t);

	t = must_load("service_plane: { vni: 5, md_class: 65526 }\n");
	assert_int_equal(t->md_class, 0xFFF6);
	assert_int_equal(t->sp_vni, 5);
	topology_free(t);
}

static void test_rule_forms(void **state)
{
	(void)state;
	struct topology *t = must_load(
		BASE SVCS
		"rules:\n"
		"  - { name: a, applied_to: [blue, vm1], direction: both, action: copy, chain: inspect,\n"
		"      priority: -5, match: { proto: udp, src_port: \"1000-2000\", dst_port: \"53\",\n"
		"      src: \"fd00::/8\", dst: \"fd01::1\" } }\n"
		"  - { name: b, applied_to: [vm2], direction: egress, action: skip }\n"
		"  - { name: c, applied_to: [vm2], direction: ingress, action: skip, chain: inspect,\n"
		"      match: { proto: 47 } }\n"
		"  - { name: d, applied_to: [vm1], direction: egress, action: redirect, chain: inspect,\n"
		"      match: { proto: icmpv6, dst: \"::/0\" } }\n");
	assert_int_equal(t->n_rules, 4);
	const struct topo_rule *r = &t->rules[0];
	assert_int_equal(r->n_applied, 2);
	assert_true(r->applied_to[0].is_network);
	assert_int_equal(r->applied_to[0].index, 0);
	assert_false(r->applied_to[1].is_network);
	assert_int_equal(r->applied_to[1].index, 0);
	assert_int_equal(r->dir, RULE_DIR_BOTH);
	assert_int_equal(r->action, RULE_COPY);
	assert_int_equal(r->priority, -5);
	assert_int_equal(r->match.proto, 17);
	assert_int_equal(r->match.sport.lo, 1000);
	assert_int_equal(r->match.sport.hi, 2000);
	assert_int_equal(r->match.dport.lo, 53);
	assert_int_equal(r->match.dport.hi, 53);
	ip_is(&r->match.src, "fd00::");
	assert_int_equal(r->match.src_plen, 8);
	ip_is(&r->match.dst, "fd01::1");
	assert_int_equal(r->match.dst_plen, 128);
	r = &t->rules[1];
	assert_int_equal(r->action, RULE_SKIP);
	assert_int_equal(r->chain, TOPO_NO_INDEX);
	assert_int_equal(r->priority, 0);
	assert_int_equal(r->match.proto, 0);
	assert_false(r->match.has_src);
	assert_int_equal(t->rules[2].chain, 0);
	assert_int_equal(t->rules[2].match.proto, 47);
	assert_int_equal(t->rules[3].match.proto, 58);
	assert_int_equal(t->rules[3].match.dst_plen, 0);
	topology_free(t);
}

static const char *example_path(char *buf, size_t len, const char *name)
{
	/* Tests run from the repository root; fall back to the source path. */
	snprintf(buf, len, "examples/%s", name);
	FILE *f = fopen(buf, "r");
	if (f) {
		fclose(f);
		return buf;
	}
	const char *src = __FILE__;
	const char *tail = strstr(src, "tests/unit/");
	int plen = tail ? (int)(tail - src) : 0;
	snprintf(buf, len, "%.*sexamples/%s", plen, src, name);
	return buf;
}

static void test_example_one_host(void **state)
{
	(void)state;
	char path[512];
	struct topo_errors e;
	struct topology *t = topology_load_file(example_path(path, sizeof(path), "one-host.yaml"), &e);
	if (!t)
		dump(&e);
	assert_non_null(t);
	assert_int_equal(t->n_hosts, 1);
	assert_int_equal(t->n_guests, 2);
	assert_int_equal(t->n_services, 3);
	assert_int_equal(t->n_nodes, 6);
	/* nodes grouped by service, in file order */
	static const char *const names[] = {"fw1", "fw2", "ids1", "ids2", "r1", "r2"};
	for (unsigned i = 0; i < 6; i++) {
		assert_string_equal(t->nodes[i].name, names[i]);
		assert_int_equal(t->nodes[i].service, i / 2);
		assert_int_equal(t->nodes[i].host, 0);
	}
	for (unsigned s = 0; s < 3; s++) {
		assert_int_equal(t->services[s].first_node, 2 * s);
		assert_int_equal(t->services[s].n_nodes, 2);
	}
	assert_int_equal(t->services[2].mode, SVC_MODE_L3);
	assert_int_equal(t->services[1].failure, SVC_FAIL_ALLOW);
	assert_string_equal(svc_mode_name(t->services[1].mode), "nsh");
	assert_int_equal(t->chains[0].n_services, 3);
	assert_int_equal(t->n_rules, 2);
	assert_int_equal(t->rules[0].match.proto, 6);
	assert_int_equal(t->rules[0].match.dport.lo, 80);
	assert_int_equal(t->rules[0].dir, RULE_DIR_EGRESS);
	assert_int_equal(t->rules[1].match.proto, 1);
	topology_free(t);
}

static void test_example_three_hosts(void **state)
{
	(void)state;
	char path[512];
	struct topo_errors e;
	struct topology *t =
		topology_load_file(example_path(path, sizeof(path), "three-hosts.yaml"), &e);
	if (!t)
		dump(&e);
	assert_non_null(t);
	assert_int_equal(t->n_hosts, 3);
	for (uint16_t h = 0; h < 3; h++)
		assert_string_equal(t->hosts[h].uplink, "ul0");
	uint16_t a = topology_guest_index(t, "A"), b = topology_guest_index(t, "B");
	assert_int_equal(t->guests[a].host, topology_host_index(t, "h1"));
	assert_int_equal(t->guests[b].host, topology_host_index(t, "h3"));
	uint16_t fw1 = topology_node_index(t, "fw1"), ids1 = topology_node_index(t, "ids1");
	assert_int_equal(t->nodes[fw1].host, topology_host_index(t, "h2"));
	assert_int_equal(t->nodes[ids1].host, topology_host_index(t, "h3"));
	assert_int_equal(t->rules[0].dir, RULE_DIR_EGRESS);
	assert_int_equal(t->rules[0].applied_to[0].index, a);
	topology_free(t);
}

static void test_svc_mode_name(void **state)
{
	(void)state;
	assert_string_equal(svc_mode_name(SVC_MODE_L2), "l2");
	assert_string_equal(svc_mode_name(SVC_MODE_L3), "l3");
	assert_string_equal(svc_mode_name(SVC_MODE_NSH), "nsh");
}

/* ---- one error each, with its line ---- */

static void test_err_hosts(void **state)
{
	(void)state;
	expect_err(BASE "  - { name: vm3, host: h1, network: blue, port: p3, mac: \"02:00:00:00:01:03\", foo: 1 }\n",
		   10, "unknown key 'foo' in guest 'vm3'");
	expect_err("hosts:\n  - { name: h1, vtep: 10.0.0.1 }\n  - { name: h1, vtep: 10.0.0.2 }\n", 3,
		   "duplicate host name 'h1' (also at line 2)");
	expect_err("hosts:\n  - { name: h1, vtep: 10.0.0.1 }\n  - { name: h2, vtep: 10.0.0.1 }\n", 3,
		   "duplicate VTEP 10.0.0.1 (also host 'h1' at line 2)");
	expect_err("hosts:\n  - { name: h1, vtep: 10.0.0.300 }\n", 2, "vtep '10.0.0.300'");
	expect_err("hosts:\n  - { name: h1, vtep: 10.0.0.1, mtu: 575 }\n", 2, "mtu 575 is out of range");
	expect_err("hosts:\n  - { name: h1, vtep: 10.0.0.1, mtu: 9001 }\n", 2, "mtu 9001");
	expect_err("hosts:\n  - { name: h1, vtep: 10.0.0.1, mtu: big }\n", 2, "mtu 'big'");
	expect_err("hosts:\n  - { name: h1 }\n", 2, "host 'h1': missing 'vtep'");
	expect_err("hosts:\n  - { vtep: 10.0.0.1 }\n", 2, "host #1: missing 'name'");
	expect_err("hosts:\n  - name: [a, b]\n    vtep: 10.0.0.1\n", 2, "'name' must be a string");
	expect_err("hosts:\n  - name: h1\n    vtep: 0.0.0.0\n", 3, "unspecified");
	expect_err("hosts:\n  - { name: abcdefghijabcdefghijabcdefghijab, vtep: 10.0.0.1 }\n", 2,
		   "too long");
	expect_err("hosts: { name: h1 }\n", 1, "hosts must be a list");
	expect_err("hosts: [ h1 ]\n", 1, "host #1 must be a mapping");
	expect_err("hosts:\n  - { name: h1, vtep: 10.0.0.1, name: h2 }\n", 2, "duplicate key 'name'");
	expect_err("tenants: []\n", 1, "unknown key 'tenants' in topology");
	/* the uplink: an interface name, not also a port of the host */
	expect_err("hosts:\n  - { name: h1, vtep: 10.0.0.1, uplink: \"a b\" }\n", 2, "interface name 'a b' contains");
	expect_err("hosts:\n  - { name: h1, vtep: 10.0.0.1, uplink: [ul0] }\n", 2, "'uplink' must be a string");
	expect_err("hosts:\n  - { name: h1, vtep: 10.0.0.1, uplink: vm1p }\n  - { name: h2, vtep: 10.0.0.2 }\n"
		   "networks:\n  - { name: blue, vni: 100 }\nguests:\n"
		   "  - { name: vm1, host: h1, network: blue, port: vm1p, mac: \"02:00:00:00:01:01\" }\n",
		   7, "host 'h1': interface 'vm1p' of guest 'vm1' is already used by uplink of host 'h1' (line 2)");
	struct topology *t = must_load(BASE);
	assert_string_equal(t->hosts[0].uplink, "");
	topology_free(t);
	t = must_load("hosts:\n  - { name: h1, vtep: 10.0.0.1, uplink: ul0 }\n  - { name: h2, vtep: 10.0.0.2 }\n"
		      "networks:\n  - { name: blue, vni: 100 }\nguests:\n"
		      "  - { name: vm1, host: h2, network: blue, port: ul0, mac: \"02:00:00:00:01:01\" }\n");
	assert_string_equal(t->hosts[0].uplink, "ul0");
	assert_string_equal(t->hosts[1].uplink, "");
	topology_free(t);
}

static void test_err_networks(void **state)
{
	(void)state;
	expect_err("networks:\n  - { name: a, vni: 0 }\n", 2, "vni 0 is out of range 1..16777215");
	expect_err("networks:\n  - { name: a, vni: 16777216 }\n", 2, "out of range");
	expect_err("networks:\n  - { name: a, vni: 7 }\n  - { name: b, vni: 7 }\n", 3,
		   "duplicate VNI 7 (also network 'a' at line 2)");
	expect_err("service_plane: { vni: 7 }\nnetworks:\n  - { name: a, vni: 7 }\n", 3,
		   "duplicate VNI 7 (also service_plane at line 1)");
	expect_err("networks:\n  - { name: a, vni: 7 }\n  - { name: a, vni: 8 }\n", 3,
		   "duplicate network name 'a'");
	expect_err("service_plane: { vni: 4000, md_class: 0x10000 }\n", 1, "md_class");
	expect_err("service_plane: { md_class: 1 }\n", 1, "service_plane: missing 'vni'");
	expect_err("service_plane: 4000\n", 1, "service_plane must be a mapping");
}

static void test_err_guests(void **state)
{
	(void)state;
	expect_err(BASE "  - { name: vm3, host: h1, network: red, port: p3, mac: \"02:00:00:00:01:03\" }\n",
		   10, "guest 'vm3': unknown network 'red'");
	expect_err(BASE "  - { name: vm3, host: h7, network: blue, port: p3, mac: \"02:00:00:00:01:03\" }\n",
		   10, "guest 'vm3': unknown host 'h7'");
	expect_err(BASE "  - { name: vm3, host: h1, network: blue, port: p3, mac: \"02:00:00:00:01:01\" }\n",
		   10, "duplicate MAC 02:00:00:00:01:01 (also guest 'vm1' at line 8)");
	expect_err(BASE "  - { name: vm1, host: h1, network: blue, port: p3, mac: \"02:00:00:00:01:03\" }\n",
		   10, "duplicate guest name 'vm1' (also at line 8)");
	expect_err(BASE "  - { name: vm3, host: h1, network: blue, port: p3, mac: \"02:00:00:00:01\" }\n",
		   10, "bad MAC '02:00:00:00:01'");
	expect_err(BASE "  - { name: vm3, host: h1, network: blue, port: p3, mac: \"03:00:00:00:01:03\" }\n",
		   10, "not a unicast address");
	expect_err(BASE "  - { name: vm3, host: h1, network: blue, port: p3, mac: \"02:00:00:00:01:03\", ip: 1.2.3.4/33 }\n",
		   10, "ip '1.2.3.4/33'");
	expect_err(BASE "  - { name: vm3, host: h1, network: blue, port: p3, mac: \"02:00:00:00:01:03\", ip: \"fd00::1/\" }\n",
		   10, "ip 'fd00::1/'");
	expect_err(BASE "  - { name: vm3, host: h1, network: blue, port: abcdefghijklmnop, mac: \"02:00:00:00:01:03\" }\n",
		   10, "interface name 'abcdefghijklmnop' is too long");
	expect_err(BASE "  - { name: vm3, host: h1, network: blue, port: a/b, mac: \"02:00:00:00:01:03\" }\n",
		   10, "interface name 'a/b' contains");
	expect_err(BASE "  - { name: vm3, host: h1, network: blue, port: \"a b\", mac: \"02:00:00:00:01:03\" }\n",
		   10, "interface name 'a b' contains");
	/* the same port name on another host is fine; on the same host it is not */
	struct topology *t = must_load(
		BASE "  - { name: vm3, host: h2, network: blue, port: vm1p, mac: \"02:00:00:00:01:03\" }\n");
	topology_free(t);
	expect_err(BASE "  - { name: vm3, host: h1, network: blue, port: vm1p, mac: \"02:00:00:00:01:03\" }\n",
		   10, "host 'h1': interface 'vm1p' of guest 'vm3' is already used by guest 'vm1' (line 8)");
	expect_err(BASE "  - { name: vm3, host: h1, network: blue, mac: \"02:00:00:00:01:03\" }\n", 10,
		   "guest 'vm3': missing 'port'");
	/* block style: the error is on the line of the offending value */
	expect_err(BASE "  - name: vm3\n    host: h1\n    network: red\n    port: p3\n    mac: 02:00:00:00:01:03\n",
		   12, "guest 'vm3': unknown network 'red'");
}

static void test_err_services(void **state)
{
	(void)state;
	expect_err(BASE "services:\n  - { name: fw, mode: l2, nodes: [ { name: n1, host: h1, ports: [a] } ] }\n",
		   11, "node 'n1': mode l2 needs exactly 2 ports [in, out], got 1");
	expect_err(BASE "services:\n  - { name: fw, mode: l3, nodes: [ { name: n1, host: h1, ports: [a, b] } ] }\n",
		   11, "node 'n1': mode l3 needs exactly 1 port, got 2");
	expect_err(BASE "services:\n  - { name: fw, mode: nsh, nodes: [ { name: n1, host: h1, ports: [a, b, c] } ] }\n",
		   11, "mode nsh needs exactly 1 port, got 3");
	expect_err(BASE "services:\n  - { name: fw, mode: nsh, nodes: [ { name: n1, host: h1, ports: [a] } ] }\n",
		   11, "node 'n1': mode nsh needs a 'mac'");
	expect_err(BASE "services:\n  - { name: fw, mode: nsh, nodes: [] }\n", 11, "service 'fw': no nodes");
	expect_err(BASE "services:\n  - { name: fw, mode: nsh }\n", 11, "service 'fw': missing 'nodes'");
	expect_err(BASE "services:\n  - { name: fw, mode: l7, nodes: [ { name: n1, host: h1, ports: [a] } ] }\n",
		   11, "unknown mode 'l7'");
	expect_err(BASE "services:\n  - { name: fw, mode: l3, failure: maybe, nodes: [ { name: n1, host: h1, ports: [a] } ] }\n",
		   11, "unknown failure policy 'maybe'");
	expect_err(BASE "services:\n  - { name: fw, mode: l3, nodes: [ { name: n1, host: h9, ports: [a] } ] }\n",
		   11, "node 'n1': unknown host 'h9'");
	expect_err(BASE "services:\n  - { name: fw, mode: l3, nodes: [ { name: n1, host: h1, ports: a } ] }\n",
		   11, "ports must be a list");
	expect_err(BASE "services:\n"
			"  - { name: fw, mode: l3, nodes: [ { name: n1, host: h1, ports: [a] } ] }\n"
			"  - { name: fw, mode: l3, nodes: [ { name: n2, host: h1, ports: [b] } ] }\n",
		   12, "duplicate service name 'fw' (also at line 11)");
	expect_err(BASE "services:\n"
			"  - { name: fw, mode: l3, nodes: [ { name: n1, host: h1, ports: [a] } ] }\n"
			"  - { name: ip, mode: l3, nodes: [ { name: n1, host: h1, ports: [b] } ] }\n",
		   12, "duplicate node name 'n1' (also at line 11)");
	/* node MAC against a guest MAC, node port against a guest port */
	expect_err(BASE "services:\n  - { name: fw, mode: nsh, nodes: [ { name: n1, host: h2, ports: [a], mac: \"02:00:00:00:01:01\" } ] }\n",
		   11, "duplicate MAC 02:00:00:00:01:01 (also guest 'vm1' at line 8)");
	expect_err(BASE "services:\n  - { name: fw, mode: l2, nodes: [ { name: n1, host: h2, ports: [x, vm2p] } ] }\n",
		   11, "host 'h2': interface 'vm2p' of node 'n1' is already used by guest 'vm2' (line 9)");
	expect_err(BASE "services:\n  - { name: fw, mode: l2, nodes: [ { name: n1, host: h2, ports: [x, x] } ] }\n",
		   11, "interface 'x' of node 'n1' is already used by node 'n1'");
	/* services without a service_plane */
	expect_err("hosts: [ { name: h1, vtep: 10.0.0.1 } ]\n"
		   "services:\n  - { name: fw, mode: l3, nodes: [ { name: n1, host: h1, ports: [a] } ] }\n",
		   3, "services need a service_plane");
}

static void test_err_chains(void **state)
{
	(void)state;
	expect_err(BASE SVCS "  - { name: c2, services: [fw, nope] }\n", 19,
		   "chain 'c2': unknown service 'nope'");
	expect_err(BASE SVCS "  - { name: c2, services: [] }\n", 19, "chain 'c2': empty chain");
	expect_err(BASE SVCS "  - { name: c2 }\n", 19, "chain 'c2': missing 'services'");
	expect_err(BASE SVCS "  - { name: c2, services: [fw, ids, fw] }\n", 19,
		   "chain 'c2': service 'fw' appears twice");
	expect_err(BASE SVCS "  - { name: inspect, services: [fw] }\n", 19,
		   "duplicate chain name 'inspect' (also at line 18)");
	expect_err(BASE SVCS "  - { name: c2, services: [fw, ids, fw, ids, fw, ids, fw, ids, fw, ids, fw, ids, fw, ids, fw, ids, fw] }\n",
		   19, "chain 'c2': has 17 services (at most 16)");
	/* block-style list: the line of the bad item */
	expect_err(BASE SVCS "  - name: c2\n    services:\n      - fw\n      - nope\n", 22,
		   "unknown service 'nope'");
}

static void test_err_rules(void **state)
{
	(void)state;
#define RULE(x) BASE SVCS "rules:\n  - " x "\n"
	/* the rule is on line 20 */
	expect_err(RULE("{ name: r, applied_to: [vm9], direction: egress, action: redirect, chain: inspect }"),
		   20, "rule 'r': applied_to names unknown guest or network 'vm9'");
	expect_err(RULE("{ name: r, applied_to: [vm1], direction: egress, action: redirect }"), 20,
		   "rule 'r': action redirect needs a 'chain'");
	expect_err(RULE("{ name: r, applied_to: [vm1], direction: egress, action: copy }"), 20,
		   "rule 'r': action copy needs a 'chain'");
	expect_err(RULE("{ name: r, applied_to: [vm1], direction: egress, action: redirect, chain: x }"),
		   20, "rule 'r': unknown chain 'x'");
	expect_err(RULE("{ name: r, applied_to: [vm1], direction: up, action: skip }"), 20,
		   "unknown direction 'up'");
	expect_err(RULE("{ name: r, applied_to: [vm1], action: skip }"), 20, "rule 'r': missing 'direction'");
	expect_err(RULE("{ name: r, applied_to: [vm1], direction: egress, action: drop }"), 20,
		   "unknown action 'drop'");
	expect_err(RULE("{ name: r, applied_to: [vm1], direction: egress }"), 20, "missing 'action'");
	expect_err(RULE("{ name: r, applied_to: [], direction: egress, action: skip }"), 20,
		   "applied_to is empty");
	expect_err(RULE("{ name: r, applied_to: [vm1, vm1], direction: egress, action: skip }"), 20,
		   "applied_to lists 'vm1' twice");
	expect_err(RULE("{ name: r, applied_to: [vm1], direction: egress, action: skip, priority: x }"),
		   20, "priority 'x'");
	expect_err(RULE("{ name: r, applied_to: [vm1], direction: egress, action: skip, priority: 3000000000 }"),
		   20, "priority 3000000000 is out of range");
	expect_err(RULE("{ name: r, applied_to: [vm1], direction: egress, action: skip, match: { proto: gre } }"),
		   20, "unknown proto 'gre'");
	expect_err(RULE("{ name: r, applied_to: [vm1], direction: egress, action: skip, match: { proto: 256 } }"),
		   20, "unknown proto '256'");
	expect_err(RULE("{ name: r, applied_to: [vm1], direction: egress, action: skip, match: { proto: tcp, dst_port: 70000 } }"),
		   20, "dst_port '70000' is not a port");
	expect_err(RULE("{ name: r, applied_to: [vm1], direction: egress, action: skip, match: { proto: tcp, dst_port: \"90-80\" } }"),
		   20, "dst_port range 90-80 has low > high");
	expect_err(RULE("{ name: r, applied_to: [vm1], direction: egress, action: skip, match: { proto: tcp, src_port: \"1-\" } }"),
		   20, "src_port '1-'");
	expect_err(RULE("{ name: r, applied_to: [vm1], direction: egress, action: skip, match: { proto: icmp, dst_port: 80 } }"),
		   20, "dst_port needs proto tcp or udp");
	expect_err(RULE("{ name: r, applied_to: [vm1], direction: egress, action: skip, match: { src: 10.0.0.0/33 } }"),
		   20, "src '10.0.0.0/33' is not an IPv4 or IPv6 address or prefix");
	expect_err(RULE("{ name: r, applied_to: [vm1], direction: egress, action: skip, match: { dst: \"fd00::/129\" } }"),
		   20, "dst 'fd00::/129'");
	expect_err(RULE("{ name: r, applied_to: [vm1], direction: egress, action: skip, match: { src: 10.0.0.0/8, dst: \"fd00::/8\" } }"),
		   20, "different address families");
	expect_err(RULE("{ name: r, applied_to: [vm1], direction: egress, action: skip, match: { bar: 1 } }"),
		   20, "unknown key 'bar' in match of rule 'r'");
	expect_err(RULE("{ name: r, applied_to: [vm1], direction: egress, action: skip }\n"
			"  - { name: r, applied_to: [vm2], direction: egress, action: skip }"),
		   21, "duplicate rule name 'r' (also at line 20)");
	expect_err(RULE("{ name: blue, applied_to: [vm1], direction: egress, action: skip }\n"
			"  - { name: r2, applied_to: vm1, direction: egress, action: skip }"),
		   21, "applied_to must be a list");
	/* a name both a guest and a network is ambiguous in applied_to */
	expect_err("service_plane: { vni: 4000 }\n"
		   "hosts: [ { name: h1, vtep: 10.0.0.1 } ]\n"
		   "networks: [ { name: x, vni: 100 } ]\n"
		   "guests: [ { name: x, host: h1, network: x, port: p, mac: \"02:00:00:00:01:01\" } ]\n"
		   "rules: [ { name: r, applied_to: [x], direction: egress, action: skip } ]\n",
		   5, "ambiguous");
	/* block style: the error line is that of the applied_to item */
	expect_err(BASE SVCS "rules:\n"
			"  - name: r\n"
			"    applied_to:\n"
			"      - vm1\n"
			"      - nobody\n"
			"    direction: egress\n"
			"    action: skip\n",
		   23, "unknown guest or network 'nobody'");
#undef RULE
}

/* Every error is reported, not only the first, sorted by line. */
static void test_multiple_errors(void **state)
{
	(void)state;
	const char *text = "service_plane: { vni: 100 }\n"                              /* 1 */
			   "hosts:\n"                                                  /* 2 */
			   "  - { name: h1, vtep: 10.0.0.1 }\n"                        /* 3 */
			   "networks: [ { name: blue, vni: 100 } ]\n"                  /* 4 */
			   "guests:\n"                                                 /* 5 */
			   "  - { name: vm1, host: h2, network: blue, port: p1, mac: \"02:00:00:00:01:01\" }\n" /* 6 */
			   "  - { name: vm2, host: h1, network: red, port: p1, mac: \"02:00:00:00:01:01\" }\n"  /* 7 */
			   "services:\n"                                               /* 8 */
			   "  - { name: fw, mode: nsh, nodes: [ { name: n1, host: h1, ports: [a] } ] }\n" /* 9 */
			   "chains: [ { name: c, services: [fw, ids] } ]\n"            /* 10 */
			   "rules: [ { name: r, applied_to: [vm3], direction: egress, action: redirect } ]\n"; /* 11 */
	struct topo_errors e;
	struct topology *t = load(text, &e);
	assert_null(t);
	assert_true(has_err(&e, 4, "duplicate VNI 100 (also service_plane at line 1)"));
	assert_true(has_err(&e, 6, "guest 'vm1': unknown host 'h2'"));
	assert_true(has_err(&e, 7, "guest 'vm2': unknown network 'red'"));
	assert_true(has_err(&e, 7, "duplicate MAC 02:00:00:00:01:01 (also guest 'vm1' at line 6)"));
	assert_true(has_err(&e, 9, "node 'n1': mode nsh needs a 'mac'"));
	assert_true(has_err(&e, 10, "chain 'c': unknown service 'ids'"));
	assert_true(has_err(&e, 11, "unknown guest or network 'vm3'"));
	assert_true(has_err(&e, 11, "action redirect needs a 'chain'"));
	assert_int_equal(e.n, 8);
	assert_int_equal(e.n_dropped, 0);
	for (unsigned i = 1; i < e.n; i++)
		assert_true(e.e[i - 1].line <= e.e[i].line);
}

static void test_yaml_syntax(void **state)
{
	(void)state;
	struct topo_errors e;
	const char *text = "hosts:\n  - { name: h1, vtep: 10.0.0.1 }\n  - { name: h2, vtep: [10.0.0.2 }\n";
	assert_null(load(text, &e));
	assert_int_equal(e.n, 1);
	assert_int_equal(e.e[0].line, 3);
	assert_non_null(strstr(e.e[0].msg, "YAML syntax error"));

	text = "hosts:\n  - a\n - b\n";
	assert_null(load(text, &e));
	assert_int_equal(e.n, 1);
	assert_int_equal(e.e[0].line, 3);
	assert_non_null(strstr(e.e[0].msg, "YAML syntax error"));

	/* invalid UTF-8 on line 2 */
	text = "hosts: []\nnetworks: [ \xff ]\n";
	assert_null(load(text, &e));
	assert_int_equal(e.n, 1);
	assert_int_equal(e.e[0].line, 2);

	/* an undefined alias */
	text = "hosts: *nothing\n";
	assert_null(load(text, &e));
	assert_int_equal(e.n, 1);
	assert_int_equal(e.e[0].line, 1);

	/* deep nesting is refused before libyaml's slow path (quadratic in depth) */
	size_t deep = 100000;
	char *big = malloc(2 * deep + 16);
	assert_non_null(big);
	memcpy(big, "hosts:\n  ", 9);
	memset(big + 9, '[', deep);
	memset(big + 9 + deep, ']', deep);
	assert_null(topology_load_buffer(big, 9 + 2 * deep, &e));
	assert_int_equal(e.n, 1);
	assert_int_equal(e.e[0].line, 2);
	assert_non_null(strstr(e.e[0].msg, "nested deeper than 64"));
	free(big);

	/* two documents */
	text = "hosts: []\n---\nhosts: []\n";
	assert_null(load(text, &e));
	assert_true(has_err(&e, 2, "more than one YAML document"));
}

static void test_empty(void **state)
{
	(void)state;
	struct topo_errors e;
	assert_null(topology_load_buffer("", 0, &e));
	assert_int_equal(e.n, 1);
	assert_int_equal(e.e[0].line, 1);
	assert_non_null(strstr(e.e[0].msg, "empty topology file"));
	assert_null(load("# only a comment\n\n", &e));
	assert_true(has_err(&e, 1, "empty topology file"));
	assert_null(load("- a\n- b\n", &e));
	assert_true(has_err(&e, 1, "must be a mapping"));
	assert_null(load("just a string\n", &e));
	assert_int_equal(e.n, 1);
	/* an empty mapping is a valid (empty) topology */
	struct topology *t = must_load("{}\n");
	assert_int_equal(t->n_hosts, 0);
	assert_int_equal(t->md_class, 0xFFF6);
	topology_free(t);
}

static void test_load_file_missing(void **state)
{
	(void)state;
	struct topo_errors e;
	assert_null(topology_load_file("/nonexistent/topology.yaml", &e));
	assert_int_equal(e.n, 1);
	assert_non_null(strstr(e.e[0].msg, "cannot open"));
}

/* Growing buffer for generated documents. */
struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		assert_true(n >= 0);
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		b->cap = (b->cap + (size_t)n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
}

static void test_limits(void **state)
{
	(void)state;
	struct sbuf b = {0};
	struct topo_errors e;

	/* 1024 hosts are fine, 1025 are not */
	sb_printf(&b, "hosts:\n");
	for (int i = 0; i < 1024; i++)
		sb_printf(&b, "  - { name: h%d, vtep: 10.0.%d.%d }\n", i, i / 256, i % 256);
	struct topology *t = topology_load_buffer(b.p, b.len, &e);
	assert_non_null(t);
	assert_int_equal(t->n_hosts, 1024);
	assert_int_equal(topology_host_index(t, "h1023"), 1023);
	topology_free(t);
	sb_printf(&b, "  - { name: hx, vtep: 10.9.9.9 }\n");
	assert_null(topology_load_buffer(b.p, b.len, &e));
	assert_true(has_err(&e, 2, "too many hosts (1025, at most 1024)"));

	/* 33 applied_to entries */
	b.len = 0;
	sb_printf(&b, "service_plane: { vni: 1 }\nhosts: [ { name: h, vtep: 1.1.1.1 } ]\n"
		      "networks: [ { name: n, vni: 2 } ]\nguests:\n");
	for (int i = 0; i < 33; i++)
		sb_printf(&b, "  - { name: g%d, host: h, network: n, port: p%d, mac: \"02:00:00:00:00:%02x\" }\n",
			  i, i, i + 1);
	sb_printf(&b, "rules:\n  - name: r\n    direction: egress\n    action: skip\n    applied_to: [g0");
	for (int i = 1; i < 32; i++)
		sb_printf(&b, ", g%d", i);
	sb_printf(&b, "]\n");
	t = topology_load_buffer(b.p, b.len, &e);
	if (!t)
		dump(&e);
	assert_non_null(t);
	assert_int_equal(t->rules[0].n_applied, 32);
	assert_int_equal(t->rules[0].applied_to[31].index, 31);
	topology_free(t);
	b.len -= 2;
	sb_printf(&b, ", g32]\n");
	assert_null(topology_load_buffer(b.p, b.len, &e));
	assert_true(has_err(&e, 42, "applied_to has 33 entries (at most 32)"));

	/* more than 64 errors: the rest are counted */
	b.len = 0;
	sb_printf(&b, "hosts:\n");
	for (int i = 0; i < 100; i++)
		sb_printf(&b, "  - { name: h%d, vtep: bad }\n", i);
	assert_null(topology_load_buffer(b.p, b.len, &e));
	assert_int_equal(e.n, 64);
	assert_int_equal(e.n_dropped, 36);
	assert_true(has_err(&e, 2, "host 'h0': vtep 'bad'"));
	free(b.p);
}

/* Aliases may share nodes; self-reference must not loop. */
static void test_aliases(void **state)
{
	(void)state;
	struct topo_errors e;
	struct topology *t = must_load("networks:\n  - &n { name: a, vni: 5 }\n"
				       "hosts:\n  - { name: h1, vtep: 10.0.0.1 }\n");
	topology_free(t);
	assert_null(load("networks:\n  - &n { name: a, vni: 5 }\n  - *n\n", &e));
	assert_true(has_err(&e, 2, "duplicate network name 'a'"));
	assert_null(load("hosts: &x [ *x ]\n", &e));
	assert_true(e.n >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_example),
		cmocka_unit_test(test_block_style),
		cmocka_unit_test(test_rule_forms),
		cmocka_unit_test(test_example_one_host),
		cmocka_unit_test(test_example_three_hosts),
		cmocka_unit_test(test_svc_mode_name),
		cmocka_unit_test(test_err_hosts),
		cmocka_unit_test(test_err_networks),
		cmocka_unit_test(test_err_guests),
		cmocka_unit_test(test_err_services),
		cmocka_unit_test(test_err_chains),
		cmocka_unit_test(test_err_rules),
		cmocka_unit_test(test_multiple_errors),
		cmocka_unit_test(test_yaml_syntax),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_load_file_missing),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_aliases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_path.c - unit tests of path.c: path enumeration and order, SPI
 * stability, spmac uniqueness, hop lookup in both directions, caps.
 * Topologies are built by hand (no YAML loader). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "path.h"

#define CAP 512

static struct topology *topo_new(void)
{
	struct topology *t = calloc(1, sizeof(*t));
	t->hosts = calloc(CAP, sizeof(*t->hosts));
	t->networks = calloc(CAP, sizeof(*t->networks));
	t->guests = calloc(CAP, sizeof(*t->guests));
	t->services = calloc(CAP, sizeof(*t->services));
	t->nodes = calloc(CAP, sizeof(*t->nodes));
	t->chains = calloc(CAP, sizeof(*t->chains));
	t->rules = calloc(CAP, sizeof(*t->rules));
	t->sp_vni = 4000;
	t->md_class = 0xfff6;
	return t;
}

static void topo_del(struct topology *t)
{
	free(t->hosts);
	free(t->networks);
	free(t->guests);
	free(t->services);
	free(t->nodes);
	free(t->chains);
	free(t->rules);
	free(t);
}

static uint16_t add_host(struct topology *t, const char *name)
{
	uint16_t i = t->n_hosts++;
	snprintf(t->hosts[i].name, TOPO_NAME_MAX, "%s", name);
	uint8_t v4[4] = {10, 0, 0, (uint8_t)(i + 1)};
	ipaddr_from_v4(&t->hosts[i].vtep, v4);
	return i;
}

static uint16_t add_service(struct topology *t, const char *name)
{
	uint16_t i = t->n_services++;
	snprintf(t->services[i].name, TOPO_NAME_MAX, "%s", name);
	t->services[i].first_node = t->n_nodes;
	return i;
}

/* adds a node to the last service (nodes are grouped by service) */
static uint16_t add_node(struct topology *t, const char *name, uint16_t host)
{
	uint16_t i = t->n_nodes++;
	snprintf(t->nodes[i].name, TOPO_NAME_MAX, "%s", name);
	t->nodes[i].service = (uint16_t)(t->n_services - 1);
	t->nodes[i].host = host;
	t->nodes[i].n_ports = 1;
	t->services[t->n_services - 1].n_nodes++;
	return i;
}

static uint16_t add_chain(struct topology *t, const char *name, int n, const uint16_t *svcs)
{
	uint16_t i = t->n_chains++;
	snprintf(t->chains[i].name, TOPO_NAME_MAX, "%s", name);
	t->chains[i].n_services = (uint16_t)n;
	for (int j = 0; j < n; j++)
		t->chains[i].services[j] = svcs[j];
	return i;
}

static uint16_t add_guest(struct topology *t, const char *name, uint16_t host, const char *mac)
{
	uint16_t i = t->n_guests++;
	snprintf(t->guests[i].name, TOPO_NAME_MAX, "%s", name);
	t->guests[i].host = host;
	assert_true(mac_parse(mac, &t->guests[i].mac));
	return i;
}

/* fw = {fw1@h1, fw2@h2}, ids = {ids1@h1, ids2@h2}, chain inspect = fw, ids */
static struct topology *topo_basic(void)
{
	struct topology *t = topo_new();
	uint16_t h1 = add_host(t, "h1"), h2 = add_host(t, "h2");
	uint16_t fw = add_service(t, "fw");
	add_node(t, "fw1", h1);
	add_node(t, "fw2", h2);
	uint16_t ids = add_service(t, "ids");
	add_node(t, "ids1", h1);
	add_node(t, "ids2", h2);
	add_chain(t, "inspect", 2, (uint16_t[]){fw, ids});
	add_guest(t, "vm1", h1, "02:00:00:00:01:01");
	add_guest(t, "vm2", h2, "02:00:00:00:01:02");
	return t;
}

static uint16_t nidx(const struct topology *t, const char *name)
{
	for (uint16_t i = 0; i < t->n_nodes; i++)
		if (strcmp(t->nodes[i].name, name) == 0)
			return i;
	fail_msg("no node %s", name);
	return 0;
}

static void assert_path(const struct topology *t, const struct path *p, const char *a, const char *b,
			uint16_t crossings)
{
	assert_int_equal(p->n_hops, 2);
	assert_string_equal(t->nodes[p->nodes[0]].name, a);
	assert_string_equal(t->nodes[p->nodes[1]].name, b);
	assert_int_equal(p->host_crossings, crossings);
}

/* SPI of the path of chain c over the named nodes, 0 if absent */
static uint32_t spi_of(const struct topology *t, const struct path_set *ps, uint16_t c, const char *a, const char *b)
{
	for (uint16_t i = ps->chain_first[c]; i < ps->chain_first[c] + ps->chain_n[c]; i++) {
		const struct path *p = &ps->paths[i];
		if (strcmp(t->nodes[p->nodes[0]].name, a) == 0 && strcmp(t->nodes[p->nodes[1]].name, b) == 0)
			return p->spi_fwd;
	}
	return 0;
}

static void test_enumeration_order(void **state)
{
	(void)state;
	struct topology *t = topo_basic();
	struct path_set *ps = path_set_build(t);
	assert_non_null(ps);
	assert_int_equal(ps->n_paths, 4);
	assert_int_equal(ps->chain_first[0], 0);
	assert_int_equal(ps->chain_n[0], 4);
	assert_path(t, &ps->paths[0], "fw1", "ids1", 0);
	assert_path(t, &ps->paths[1], "fw2", "ids2", 0);
	assert_path(t, &ps->paths[2], "fw1", "ids2", 1);
	assert_path(t, &ps->paths[3], "fw2", "ids1", 1);
	for (int i = 0; i < 4; i++) {
		const struct path *p = &ps->paths[i];
		assert_int_equal(p->chain, 0);
		assert_int_not_equal(p->spi_fwd, 0);
		assert_true(p->spi_fwd <= 0xffffff && p->spi_rev <= 0xffffff);
		assert_int_equal(p->spi_fwd % 2, 0);
		assert_int_equal(p->spi_rev, p->spi_fwd + 1);
		for (int j = 0; j < i; j++)
			assert_int_not_equal(p->spi_fwd, ps->paths[j].spi_fwd);
	}
	path_set_free(ps);
	topo_del(t);
}

static void test_spi_stable(void **state)
{
	(void)state;
	struct topology *t = topo_basic();
	struct path_set *a = path_set_build(t);
	struct path_set *b = path_set_build(t);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a->n_paths, b->n_paths);
	for (int i = 0; i < a->n_paths; i++) {
		assert_int_equal(a->paths[i].spi_fwd, b->paths[i].spi_fwd);
		assert_int_equal(a->paths[i].spi_rev, b->paths[i].spi_rev);
	}
	for (int i = 0; i < t->n_nodes; i++)
		assert_true(mac_eq(&a->node_spmac[i], &b->node_spmac[i]));
	for (int i = 0; i < t->n_hosts; i++)
		assert_true(mac_eq(&a->host_spmac[i], &b->host_spmac[i]));
	path_set_free(b);

	/* a different topology: a new chain first, a new node, a new host */
	struct topology *u = topo_new();
	uint16_t h0 = add_host(u, "h0");
	uint16_t h1 = add_host(u, "h1");
	uint16_t h2 = add_host(u, "h2");
	uint16_t lb = add_service(u, "lb");
	add_node(u, "lb1", h0);
	uint16_t fw = add_service(u, "fw");
	add_node(u, "fw0", h0);
	add_node(u, "fw1", h1);
	add_node(u, "fw2", h2);
	uint16_t ids = add_service(u, "ids");
	add_node(u, "ids1", h1);
	add_node(u, "ids2", h2);
	add_chain(u, "other", 2, (uint16_t[]){lb, fw});
	uint16_t c = add_chain(u, "inspect", 2, (uint16_t[]){fw, ids});
	b = path_set_build(u);
	assert_non_null(b);
	assert_int_equal(b->chain_n[c], 6);
	const char *pairs[4][2] = {{"fw1", "ids1"}, {"fw2", "ids2"}, {"fw1", "ids2"}, {"fw2", "ids1"}};
	for (int i = 0; i < 4; i++) {
		uint32_t s1 = spi_of(t, a, 0, pairs[i][0], pairs[i][1]);
		uint32_t s2 = spi_of(u, b, c, pairs[i][0], pairs[i][1]);
		assert_int_not_equal(s1, 0);
		assert_int_equal(s1, s2);
	}
	/* spmacs follow the name, not the index */
	assert_true(mac_eq(&a->node_spmac[nidx(t, "fw2")], &b->node_spmac[nidx(u, "fw2")]));
	assert_true(mac_eq(&a->host_spmac[0], &b->host_spmac[1]));
	/* a different chain name over the same nodes gets other SPIs */
	assert_int_not_equal(spi_of(u, b, c, "fw1", "ids1"), 0);
	path_set_free(a);
	path_set_free(b);
	topo_del(t);
	topo_del(u);
}

static void test_spmac(void **state)
{
	(void)state;
	struct topology *t = topo_basic();
	struct path_set *ps = path_set_build(t);
	assert_non_null(ps);
	struct mac all[8];
	int n = 0;
	for (uint16_t i = 0; i < t->n_nodes; i++) {
		struct mac *m = &ps->node_spmac[i];
		assert_int_equal(m->b[0], 0x02);
		assert_int_equal(m->b[1], 0xd7);
		struct spmac_owner o = {0};
		assert_true(path_spmac_lookup(ps, t, m, &o));
		assert_true(o.is_node);
		assert_int_equal(o.index, i);
		all[n++] = *m;
	}
	for (uint16_t i = 0; i < t->n_hosts; i++) {
		struct mac *m = &ps->host_spmac[i];
		assert_int_equal(m->b[0], 0x02);
		assert_int_equal(m->b[1], 0xd8);
		struct spmac_owner o = {0};
		assert_true(path_spmac_lookup(ps, t, m, &o));
		assert_false(o.is_node);
		assert_int_equal(o.index, i);
		all[n++] = *m;
	}
	for (int i = 0; i < n; i++)
		for (int j = 0; j < i; j++)
			assert_false(mac_eq(&all[i], &all[j]));
	struct spmac_owner o = {0};
	assert_false(path_spmac_lookup(ps, t, &t->guests[0].mac, &o));
	struct mac other = {{0x02, 0xd7, 0, 0, 0, 0}};
	if (!mac_eq(&other, &all[0]))
		assert_false(path_spmac_lookup(ps, t, &other, &o));

	/* a guest that owns fw1's would-be spmac pushes fw1 to another one;
	 * a node with an explicit MAC equal to h1's does the same for h1 */
	struct mac fw1_mac = ps->node_spmac[0];
	struct mac h1_mac = ps->host_spmac[0];
	t->guests[1].mac = fw1_mac;
	t->nodes[2].has_mac = true;
	t->nodes[2].mac = h1_mac;
	struct path_set *ps2 = path_set_build(t);
	assert_non_null(ps2);
	assert_false(mac_eq(&ps2->node_spmac[0], &fw1_mac));
	assert_false(mac_eq(&ps2->host_spmac[0], &h1_mac));
	assert_int_equal(ps2->node_spmac[0].b[1], 0xd7);
	assert_true(mac_eq(&ps2->node_spmac[1], &ps->node_spmac[1]));
	assert_false(path_spmac_lookup(ps2, t, &fw1_mac, &o));
	path_set_free(ps2);
	path_set_free(ps);
	topo_del(t);
}

static void test_spi_lookup_and_hops(void **state)
{
	(void)state;
	struct topology *t = topo_basic();
	struct path_set *ps = path_set_build(t);
	assert_non_null(ps);
	for (int i = 0; i < ps->n_paths; i++) {
		const struct path *p = &ps->paths[i];
		bool rev = true;
		assert_ptr_equal(path_by_spi(ps, p->spi_fwd, &rev), p);
		assert_false(rev);
		assert_ptr_equal(path_by_spi(ps, p->spi_rev, &rev), p);
		assert_true(rev);
	}
	bool rev;
	assert_null(path_by_spi(ps, 0, &rev));
	assert_null(path_by_spi(ps, 0x1000000, &rev));
	/* an SPI not assigned */
	uint32_t unk = 2;
	for (;; unk += 2) {
		bool used = false;
		for (int i = 0; i < ps->n_paths; i++)
			used |= ps->paths[i].spi_fwd == unk;
		if (!used)
			break;
	}
	assert_null(path_by_spi(ps, unk, &rev));
	assert_null(path_by_spi(ps, unk + 1, &rev));

	const struct path *p = &ps->paths[2]; /* fw1, ids2 */
	assert_int_equal(path_node_at(p, false, 255), nidx(t, "fw1"));
	assert_int_equal(path_node_at(p, false, 254), nidx(t, "ids2"));
	assert_int_equal(path_node_at(p, false, 253), TOPO_NO_INDEX);
	assert_int_equal(path_node_at(p, false, 0), TOPO_NO_INDEX);
	assert_int_equal(path_node_at(p, true, 255), nidx(t, "ids2"));
	assert_int_equal(path_node_at(p, true, 254), nidx(t, "fw1"));
	assert_int_equal(path_node_at(p, true, 253), TOPO_NO_INDEX);
	assert_int_equal(path_node_at(NULL, true, 255), TOPO_NO_INDEX);
	path_set_free(ps);
	topo_del(t);
}

static void test_cap(void **state)
{
	(void)state;
	struct topology *t = topo_new();
	uint16_t h1 = add_host(t, "h1"), h2 = add_host(t, "h2");
	uint16_t a = add_service(t, "a");
	char name[32];
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "a%02d", i);
		add_node(t, name, i % 2 ? h2 : h1);
	}
	uint16_t b = add_service(t, "b");
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "b%02d", i);
		add_node(t, name, i % 2 ? h2 : h1);
	}
	add_chain(t, "ab", 2, (uint16_t[]){a, b});
	struct path_set *ps = path_set_build(t);
	assert_non_null(ps);
	assert_int_equal(ps->n_paths, PATH_MAX_PER_CHAIN);
	int zero = 0;
	for (int i = 0; i < ps->n_paths; i++) {
		const struct path *p = &ps->paths[i];
		uint16_t x = p->nodes[0], y = p->nodes[1];
		assert_int_equal(p->host_crossings, t->nodes[x].host != t->nodes[y].host);
		zero += p->host_crossings == 0;
		if (i > 0) {
			const struct path *q = &ps->paths[i - 1];
			assert_true(q->host_crossings <= p->host_crossings);
			if (q->host_crossings == p->host_crossings) {
				int c = strcmp(t->nodes[q->nodes[0]].name, t->nodes[x].name);
				if (c == 0)
					c = strcmp(t->nodes[q->nodes[1]].name, t->nodes[y].name);
				assert_true(c < 0);
			}
		}
	}
	assert_int_equal(zero, 50); /* all 5*5 + 5*5 local combinations kept */
	/* the 14 one-crossing paths kept are the lexicographically first */
	assert_string_equal(t->nodes[ps->paths[50].nodes[0]].name, "a00");
	assert_string_equal(t->nodes[ps->paths[50].nodes[1]].name, "b01");
	path_set_free(ps);
	topo_del(t);
}

static void test_explosion_guard(void **state)
{
	(void)state;
	/* 16 services x 8 nodes: 8^16 combinations */
	struct topology *t = topo_new();
	uint16_t h[4];
	for (unsigned i = 0; i < 4; i++) {
		char n[32];
		snprintf(n, sizeof(n), "h%d", i);
		h[i] = add_host(t, n);
	}
	uint16_t svcs[16];
	for (int s = 0; s < 16; s++) {
		char n[32];
		snprintf(n, sizeof(n), "s%02d", s);
		svcs[s] = add_service(t, n);
		for (int j = 0; j < 8; j++) {
			snprintf(n, sizeof(n), "s%02dn%d", s, j);
			add_node(t, n, h[(j + s) % 4]);
		}
	}
	add_chain(t, "long", 16, svcs);
	add_chain(t, "empty", 0, svcs);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct path_set *ps = path_set_build(t);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_non_null(ps);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	assert_true(ms < 2000);
	assert_int_equal(ps->chain_n[0], PATH_MAX_PER_CHAIN);
	assert_int_equal(ps->chain_n[1], 0);
	/* a zero-crossing path exists (all on one host) and must be first */
	assert_int_equal(ps->paths[0].host_crossings, 0);
	assert_int_equal(ps->paths[0].n_hops, 16);
	for (int i = 1; i < ps->n_paths; i++)
		assert_true(ps->paths[i - 1].host_crossings <= ps->paths[i].host_crossings);
	path_set_free(ps);
	topo_del(t);
}

static void test_empty_and_missing(void **state)
{
	(void)state;
	struct topology *t = topo_new();
	struct path_set *ps = path_set_build(t);
	assert_non_null(ps);
	assert_int_equal(ps->n_paths, 0);
	bool rev;
	assert_null(path_by_spi(ps, 2, &rev));
	path_set_free(ps);
	/* a service without nodes gives its chain no paths */
	add_host(t, "h1");
	uint16_t s = add_service(t, "lonely");
	add_chain(t, "c", 1, &s);
	ps = path_set_build(t);
	assert_non_null(ps);
	assert_int_equal(ps->chain_n[0], 0);
	path_set_free(ps);
	assert_null(path_set_build(NULL));
	path_set_free(NULL);
	topo_del(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_enumeration_order),
		cmocka_unit_test(test_spi_stable),
		cmocka_unit_test(test_spmac),
		cmocka_unit_test(test_spi_lookup_and_hops),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_explosion_guard),
		cmocka_unit_test(test_empty_and_missing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

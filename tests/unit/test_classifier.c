/* test_classifier.c - unit tests of classifier.c: priorities and ties,
 * IPv4/IPv6 prefixes, port ranges, networks vs guests, directions, and a
 * randomized comparison with a brute-force reference up to 10k rules
 * (exercising both the linear and the tuple-space lookup). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "classifier.h"

#define MAXR 12000

static struct topology *topo_new(void)
{
	struct topology *t = calloc(1, sizeof(*t));
	t->hosts = calloc(4, sizeof(*t->hosts));
	t->networks = calloc(8, sizeof(*t->networks));
	t->guests = calloc(16, sizeof(*t->guests));
	t->rules = calloc(MAXR, sizeof(*t->rules));
	t->n_hosts = 1;
	snprintf(t->hosts[0].name, TOPO_NAME_MAX, "h1");
	/* networks blue (vm0, vm1) and red (vm2) */
	t->n_networks = 2;
	snprintf(t->networks[0].name, TOPO_NAME_MAX, "blue");
	t->networks[0].vni = 100;
	snprintf(t->networks[1].name, TOPO_NAME_MAX, "red");
	t->networks[1].vni = 200;
	t->n_guests = 3;
	for (int i = 0; i < 3; i++) {
		snprintf(t->guests[i].name, TOPO_NAME_MAX, "vm%d", i);
		t->guests[i].network = i < 2 ? 0 : 1;
	}
	return t;
}

static void topo_del(struct topology *t)
{
	free(t->hosts);
	free(t->networks);
	free(t->guests);
	free(t->rules);
	free(t);
}

static struct topo_rule *add_rule(struct topology *t, int32_t prio, enum rule_dir dir, bool is_net, uint16_t idx)
{
	struct topo_rule *r = &t->rules[t->n_rules];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, TOPO_NAME_MAX, "r%u", t->n_rules);
	t->n_rules++;
	r->priority = prio;
	r->dir = dir;
	r->n_applied = 1;
	r->applied_to[0].is_network = is_net;
	r->applied_to[0].index = idx;
	r->match.sport = (struct port_range){0, 0xffff};
	r->match.dport = (struct port_range){0, 0xffff};
	r->chain = 0;
	return r;
}

static void set_src(struct topo_rule *r, const char *pfx)
{
	assert_true(prefix_parse(pfx, &r->match.src, &r->match.src_plen));
	r->match.has_src = true;
}

static void set_dst(struct topo_rule *r, const char *pfx)
{
	assert_true(prefix_parse(pfx, &r->match.dst, &r->match.dst_plen));
	r->match.has_dst = true;
}

static struct flow_key key(const char *src, const char *dst, uint8_t proto, uint16_t sport, uint16_t dport)
{
	struct flow_key k;
	memset(&k, 0, sizeof(k));
	assert_true(ipaddr_parse(src, &k.src));
	assert_true(ipaddr_parse(dst, &k.dst));
	k.proto = proto;
	k.sport = sport;
	k.dport = dport;
	k.is_ip = 1;
	return k;
}

static void test_priority_and_ties(void **state)
{
	(void)state;
	struct topology *t = topo_new();
	struct topo_rule *r;
	r = add_rule(t, 10, RULE_DIR_INGRESS, false, 0); /* 0: tcp/80 */
	r->match.proto = 6;
	r->match.dport = (struct port_range){80, 80};
	r = add_rule(t, 20, RULE_DIR_INGRESS, false, 0); /* 1: tcp any, higher */
	r->match.proto = 6;
	r = add_rule(t, 5, RULE_DIR_INGRESS, false, 0); /* 2: anything, lowest */
	r = add_rule(t, 5, RULE_DIR_INGRESS, false, 0); /* 3: tie with 2, later */
	r = add_rule(t, 30, RULE_DIR_INGRESS, false, 1); /* 4: udp on vm1 */
	r->match.proto = 17;
	r = add_rule(t, 30, RULE_DIR_INGRESS, false, 1); /* 5: tie with 4, later */
	r->match.proto = 17;
	struct classifier *c = classifier_build(t);
	assert_non_null(c);
	struct flow_key k = key("10.0.0.1", "10.0.0.2", 6, 1234, 80);
	assert_int_equal(classifier_lookup(c, 0, true, &k), 1);
	k = key("10.0.0.1", "10.0.0.2", 17, 1234, 53);
	assert_int_equal(classifier_lookup(c, 0, true, &k), 2);
	assert_int_equal(classifier_lookup(c, 1, true, &k), 4);
	k = key("10.0.0.1", "10.0.0.2", 6, 1234, 53);
	assert_int_equal(classifier_lookup(c, 1, true, &k), CLS_NO_RULE);
	/* non-IP keys and bad guests never match */
	k.is_ip = 0;
	assert_int_equal(classifier_lookup(c, 0, true, &k), CLS_NO_RULE);
	k.is_ip = 1;
	assert_int_equal(classifier_lookup(c, 7, true, &k), CLS_NO_RULE);
	assert_int_equal(classifier_lookup(NULL, 0, true, &k), CLS_NO_RULE);
	classifier_free(c);
	topo_del(t);
}

static void test_prefixes(void **state)
{
	(void)state;
	struct topology *t = topo_new();
	struct topo_rule *r;
	r = add_rule(t, 50, RULE_DIR_EGRESS, false, 0); /* 0 */
	set_src(r, "192.168.1.0/24");
	r = add_rule(t, 40, RULE_DIR_EGRESS, false, 0); /* 1 */
	set_dst(r, "2001:db8::/32");
	r = add_rule(t, 30, RULE_DIR_EGRESS, false, 0); /* 2: every IPv4 dst */
	set_dst(r, "0.0.0.0/0");
	r = add_rule(t, 60, RULE_DIR_EGRESS, false, 0); /* 3: host route */
	set_dst(r, "2001:db8::7/128");
	r = add_rule(t, 70, RULE_DIR_EGRESS, false, 0); /* 4: v4 src + dst */
	set_src(r, "10.1.0.0/16");
	set_dst(r, "10.2.3.0/25");
	struct classifier *c = classifier_build(t);
	assert_non_null(c);
	struct flow_key k;
	k = key("192.168.1.77", "8.8.8.8", 17, 5, 53);
	assert_int_equal(classifier_lookup(c, 0, false, &k), 0);
	k = key("192.168.2.77", "8.8.8.8", 17, 5, 53);
	assert_int_equal(classifier_lookup(c, 0, false, &k), 2);
	k = key("2001:db8::1", "2001:db8:1::5", 6, 5, 80);
	assert_int_equal(classifier_lookup(c, 0, false, &k), 1);
	k = key("2001:db8::1", "2001:db8::7", 6, 5, 80);
	assert_int_equal(classifier_lookup(c, 0, false, &k), 3);
	k = key("2001:db8::1", "2001:db9::7", 6, 5, 80);
	assert_int_equal(classifier_lookup(c, 0, false, &k), CLS_NO_RULE); /* v4 /0 is not v6 */
	k = key("::ffff:192.168.1.3", "2001:db9::7", 6, 5, 80);
	assert_int_equal(classifier_lookup(c, 0, false, &k), 0);
	k = key("10.1.200.1", "10.2.3.127", 6, 5, 80);
	assert_int_equal(classifier_lookup(c, 0, false, &k), 4);
	k = key("10.1.200.1", "10.2.3.128", 6, 5, 80);
	assert_int_equal(classifier_lookup(c, 0, false, &k), 2);
	k = key("10.3.200.1", "10.2.3.1", 6, 5, 80);
	assert_int_equal(classifier_lookup(c, 0, false, &k), 2);
	classifier_free(c);
	topo_del(t);
}

static void test_ports(void **state)
{
	(void)state;
	struct topology *t = topo_new();
	struct topo_rule *r;
	r = add_rule(t, 10, RULE_DIR_INGRESS, false, 0); /* 0: dport 1000-2000 */
	r->match.dport = (struct port_range){1000, 2000};
	r = add_rule(t, 20, RULE_DIR_INGRESS, false, 0); /* 1: udp sport 53 */
	r->match.proto = 17;
	r->match.sport = (struct port_range){53, 53};
	r = add_rule(t, 5, RULE_DIR_INGRESS, false, 0); /* 2: icmp */
	r->match.proto = 1;
	struct classifier *c = classifier_build(t);
	assert_non_null(c);
	struct flow_key k;
	uint16_t want[][2] = {{999, CLS_NO_RULE}, {1000, 0}, {1500, 0}, {2000, 0}, {2001, CLS_NO_RULE}};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		k = key("10.0.0.1", "10.0.0.2", 6, 7, want[i][0]);
		assert_int_equal(classifier_lookup(c, 0, true, &k), want[i][1]);
	}
	k = key("10.0.0.1", "10.0.0.2", 17, 53, 1500);
	assert_int_equal(classifier_lookup(c, 0, true, &k), 1);
	k = key("10.0.0.1", "10.0.0.2", 17, 54, 1500);
	assert_int_equal(classifier_lookup(c, 0, true, &k), 0);
	k = key("10.0.0.1", "10.0.0.2", 6, 53, 1);
	assert_int_equal(classifier_lookup(c, 0, true, &k), CLS_NO_RULE);
	/* ICMP "ports" (type/code) never match a proto-any port rule */
	k = key("10.0.0.1", "10.0.0.2", 1, 1500, 1500);
	assert_int_equal(classifier_lookup(c, 0, true, &k), 2);
	classifier_free(c);
	topo_del(t);
}

static void test_networks_and_directions(void **state)
{
	(void)state;
	struct topology *t = topo_new();
	struct topo_rule *r;
	r = add_rule(t, 10, RULE_DIR_INGRESS, true, 0); /* 0: blue, ingress */
	r = add_rule(t, 10, RULE_DIR_EGRESS, false, 2); /* 1: vm2, egress */
	r = add_rule(t, 5, RULE_DIR_BOTH, true, 1);     /* 2: red, both */
	r = add_rule(t, 1, RULE_DIR_BOTH, false, 0);    /* 3: vm0 + blue again */
	r->n_applied = 2;
	r->applied_to[1].is_network = true;
	r->applied_to[1].index = 0;
	struct classifier *c = classifier_build(t);
	assert_non_null(c);
	struct flow_key k = key("10.0.0.1", "10.0.0.2", 6, 7, 8);
	assert_int_equal(classifier_lookup(c, 0, true, &k), 0);
	assert_int_equal(classifier_lookup(c, 1, true, &k), 0);
	assert_int_equal(classifier_lookup(c, 2, true, &k), 2);
	assert_int_equal(classifier_lookup(c, 0, false, &k), 3);
	assert_int_equal(classifier_lookup(c, 1, false, &k), 3);
	assert_int_equal(classifier_lookup(c, 2, false, &k), 1);
	classifier_free(c);

	/* a rule applied nowhere / out-of-range indexes are ignored */
	r = add_rule(t, 99, RULE_DIR_BOTH, true, 7);
	r = add_rule(t, 99, RULE_DIR_BOTH, false, 9);
	c = classifier_build(t);
	assert_non_null(c);
	assert_int_equal(classifier_lookup(c, 0, true, &k), 0);
	classifier_free(c);
	classifier_free(NULL);
	topo_del(t);
}

/* ---- randomized comparison with a brute-force reference ---- */

static uint64_t rng = 88172645463325252ULL;
static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static void rand_addr(struct ipaddr *a)
{
	if (rnd(4) == 0) {
		uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, (uint8_t)rnd(3)};
		v6[15] = (uint8_t)rnd(4);
		memcpy(a->b, v6, 16);
	} else {
		uint8_t v4[4] = {10, (uint8_t)rnd(3), (uint8_t)rnd(4), (uint8_t)rnd(4)};
		ipaddr_from_v4(a, v4);
	}
}

static void rand_prefix(struct ipaddr *a, int *plen)
{
	rand_addr(a);
	static const int v4l[] = {0, 8, 16, 24, 30, 32};
	static const int v6l[] = {0, 32, 48, 64, 126, 128};
	*plen = ipaddr_is_v4(a) ? 96 + v4l[rnd(6)] : v6l[rnd(6)];
}

static const uint16_t port_pool[] = {53, 80, 443, 1000, 1001, 1002, 1003, 1004, 1005};

static struct port_range rand_ports(void)
{
	switch (rnd(5)) {
	case 4: /* wide, unaligned: many blocks; two of them exceed the expansion cap */
		return (struct port_range){(uint16_t)rnd(500), (uint16_t)(1000 + rnd(2000))};
	case 0: {
		uint16_t lo = (uint16_t)(1000 + rnd(4));
		return (struct port_range){lo, (uint16_t)(lo + rnd(3))};
	}
	case 1: {
		uint16_t p = port_pool[rnd(ARRAY_SIZE(port_pool))];
		return (struct port_range){p, p};
	}
	default:
		return (struct port_range){0, 0xffff};
	}
}

static bool pfx_match(const struct ipaddr *a, const struct ipaddr *p, int plen)
{
	for (int i = 0; i < plen; i++) {
		int byte = i / 8, bit = 7 - i % 8;
		if (((a->b[byte] >> bit) & 1) != ((p->b[byte] >> bit) & 1))
			return false;
	}
	return true;
}

static bool ref_match(const struct topo_match *m, const struct flow_key *k)
{
	if (m->proto && m->proto != k->proto)
		return false;
	bool ports_any = m->sport.lo == 0 && m->sport.hi == 0xffff && m->dport.lo == 0 && m->dport.hi == 0xffff;
	if (!m->proto && !ports_any && k->proto != 6 && k->proto != 17 && k->proto != 132 && k->proto != 136)
		return false;
	if (m->has_src && !pfx_match(&k->src, &m->src, m->src_plen))
		return false;
	if (m->has_dst && !pfx_match(&k->dst, &m->dst, m->dst_plen))
		return false;
	return k->sport >= m->sport.lo && k->sport <= m->sport.hi && k->dport >= m->dport.lo &&
	       k->dport <= m->dport.hi;
}

static uint16_t ref_lookup(const struct topology *t, uint16_t guest, bool ingress, const struct flow_key *k)
{
	uint16_t best = CLS_NO_RULE;
	for (uint16_t i = 0; i < t->n_rules; i++) {
		const struct topo_rule *r = &t->rules[i];
		if (!(r->dir & (ingress ? RULE_DIR_INGRESS : RULE_DIR_EGRESS)))
			continue;
		bool applies = false;
		for (uint16_t a = 0; a < r->n_applied; a++)
			applies |= r->applied_to[a].is_network ? t->guests[guest].network == r->applied_to[a].index
							       : guest == r->applied_to[a].index;
		if (!applies || !ref_match(&r->match, k))
			continue;
		if (best == CLS_NO_RULE || r->priority > t->rules[best].priority)
			best = i;
	}
	return best;
}

static uint32_t random_compare(uint32_t n_rules, uint32_t n_lookups)
{
	struct topology *t = topo_new();
	static const uint8_t protos[] = {0, 0, 6, 17, 1};
	for (uint32_t i = 0; i < n_rules; i++) {
		struct topo_rule *r = add_rule(t, (int32_t)rnd(50) - 10, (enum rule_dir)(1 + rnd(3)), rnd(3) == 0,
					       (uint16_t)rnd(2));
		r->match.proto = protos[rnd(ARRAY_SIZE(protos))];
		if (rnd(3)) {
			rand_prefix(&r->match.src, &r->match.src_plen);
			r->match.has_src = true;
		}
		if (rnd(3)) {
			rand_prefix(&r->match.dst, &r->match.dst_plen);
			r->match.has_dst = true;
		}
		if (rnd(2))
			r->match.dport = rand_ports();
		if (rnd(4) == 0)
			r->match.sport = rand_ports();
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct classifier *c = classifier_build(t);
	assert_non_null(c);
	uint32_t hits = 0;
	for (uint32_t i = 0; i < n_lookups; i++) {
		struct flow_key k;
		memset(&k, 0, sizeof(k));
		k.is_ip = 1;
		rand_addr(&k.src);
		rand_addr(&k.dst);
		if (ipaddr_is_v4(&k.src) != ipaddr_is_v4(&k.dst))
			k.dst = k.src;
		k.proto = protos[1 + rnd(ARRAY_SIZE(protos) - 1)];
		k.sport = rnd(3) ? port_pool[rnd(ARRAY_SIZE(port_pool))] : (uint16_t)rnd(65536);
		k.dport = rnd(3) ? port_pool[rnd(ARRAY_SIZE(port_pool))] : (uint16_t)rnd(65536);
		uint16_t g = (uint16_t)rnd(3);
		bool ing = rnd(2);
		uint16_t got = classifier_lookup(c, g, ing, &k);
		/* the reference is O(rules): sample it for big sets */
		if (n_rules <= 200 || i % 40 == 0) {
			uint16_t want = ref_lookup(t, g, ing, &k);
			if (got != want)
				fail_msg("rules %u lookup %u: got %u want %u", n_rules, i, got, want);
		}
		hits += got != CLS_NO_RULE;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(s < 20);
	classifier_free(c);
	topo_del(t);
	return hits;
}

static void test_random_small(void **state)
{
	(void)state;
	uint32_t hits = 0;
	for (int round = 0; round < 50; round++)
		hits += random_compare(1 + rnd(20), 2000);
	assert_true(hits > 50 * 2000 / 10); /* the test exercises matches */
}

static void test_random_medium(void **state)
{
	(void)state;
	assert_true(random_compare(60, 50000) > 5000);
	assert_true(random_compare(200, 50000) > 5000);
}

static void test_random_10k(void **state)
{
	(void)state;
	assert_true(random_compare(10000, 100000) > 10000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_priority_and_ties),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_networks_and_directions),
		cmocka_unit_test(test_random_small),
		cmocka_unit_test(test_random_medium),
		cmocka_unit_test(test_random_10k),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

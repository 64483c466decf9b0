/* test_conntrack.c - unit tests of conntrack.c: both-direction lookup,
 * full table, TCP and idle aging (driven by now_ns), delete, walk, batched
 * lookup, incremental expiry, memory per entry. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>

#include "conntrack.h"

#define S 1000000000ULL
#define MS 1000000ULL /* idle times count in whole milliseconds */

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_ACK 0x10

static struct flow_key mk(uint32_t i, uint8_t proto)
{
	struct flow_key k;
	memset(&k, 0, sizeof(k));
	uint8_t a[4] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
	uint8_t b[4] = {192, 168, 0, 1};
	ipaddr_from_v4(&k.src, a);
	ipaddr_from_v4(&k.dst, b);
	k.sport = (uint16_t)(1024 + (i % 50000));
	k.dport = 80;
	k.proto = proto;
	k.is_ip = 1;
	k.zone = 4;
	k.vni = 100;
	return k;
}

static void test_insert_lookup(void **state)
{
	(void)state;
	struct conntrack *ct = conntrack_create(64);
	assert_non_null(ct);
	struct flow_key k = mk(1, 6), r;
	struct conn *c = conntrack_insert(ct, &k, 5, 1000);
	assert_non_null(c);
	c->path = 10;
	c->rule = 11;
	assert_true(conn_key_eq(c, 0, &k));
	flow_key_reverse(&k, &r);
	r.zone = 5;
	assert_true(conn_key_eq(c, 1, &r));
	int dir = -1;
	assert_ptr_equal(conntrack_lookup(ct, &k, &dir), c);
	assert_int_equal(dir, 0);
	assert_ptr_equal(conntrack_lookup(ct, &r, &dir), c);
	assert_int_equal(dir, 1);
	r.zone = 4; /* reverse key in the wrong zone */
	assert_null(conntrack_lookup(ct, &r, &dir));
	struct flow_key other = mk(2, 6);
	assert_null(conntrack_lookup(ct, &other, &dir));
	/* inserting a tracked flow (either key) gives the existing record */
	assert_ptr_equal(conntrack_insert(ct, &k, 5, 2000), c);
	r.zone = 5;
	assert_ptr_equal(conntrack_insert(ct, &r, 4, 2000), c);
	assert_int_equal(c->path, 10);
	assert_int_equal(c->rule, 11);
	struct conntrack_stats st = {0};
	conntrack_get_stats(ct, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.inserts, 1);
	assert_int_equal(st.capacity, 64);
	assert_int_equal(st.lookups, 4);
	assert_int_equal(st.hits, 2);
	/* a flow that is its own reverse */
	struct flow_key self = mk(3, 17);
	self.dst = self.src;
	self.dport = self.sport;
	struct conn *cs = conntrack_insert(ct, &self, 4, 0);
	assert_non_null(cs);
	assert_ptr_equal(conntrack_lookup(ct, &self, &dir), cs);
	conntrack_delete(ct, cs);
	assert_null(conntrack_lookup(ct, &self, &dir));
	conntrack_destroy(ct);
	assert_null(conntrack_create(0));
	conntrack_destroy(NULL);
}

static void test_full(void **state)
{
	(void)state;
	struct conntrack *ct = conntrack_create(8);
	struct conn *cs[8];
	for (uint32_t i = 0; i < 8; i++) {
		struct flow_key k = mk(i, 17);
		cs[i] = conntrack_insert(ct, &k, 4, 0);
		assert_non_null(cs[i]);
	}
	struct flow_key k9 = mk(100, 17);
	assert_null(conntrack_insert(ct, &k9, 4, 0));
	assert_null(conntrack_insert(ct, &k9, 4, 0));
	struct conntrack_stats st = {0};
	conntrack_get_stats(ct, &st);
	assert_int_equal(st.insert_full, 2);
	assert_int_equal(st.entries, 8);
	for (uint32_t i = 0; i < 8; i++) {
		struct flow_key k = mk(i, 17);
		int d;
		assert_ptr_equal(conntrack_lookup(ct, &k, &d), cs[i]);
	}
	conntrack_delete(ct, cs[3]);
	assert_non_null(conntrack_insert(ct, &k9, 4, 0));
	conntrack_destroy(ct);
}

static void test_fill_large(void **state)
{
	(void)state;
	/* every entry of a big table is usable (index load <= 50%) */
	const uint32_t cap = 200001;
	struct conntrack *ct = conntrack_create(cap);
	for (uint32_t i = 0; i < cap; i++) {
		struct flow_key k = mk(i, 6);
		k.dport = (uint16_t)(i >> 16);
		assert_non_null(conntrack_insert(ct, &k, 5, 0));
	}
	struct conntrack_stats st = {0};
	conntrack_get_stats(ct, &st);
	assert_int_equal(st.insert_full, 0);
	assert_int_equal(st.entries, cap);
	for (uint32_t i = 0; i < cap; i += 7) {
		struct flow_key k = mk(i, 6), r;
		k.dport = (uint16_t)(i >> 16);
		flow_key_reverse(&k, &r);
		r.zone = 5;
		int d;
		struct conn *c = conntrack_lookup(ct, &r, &d);
		assert_non_null(c);
		assert_int_equal(d, 1);
		assert_true(conn_key_eq(c, 0, &k));
	}
	conntrack_destroy(ct);
}

static void tcp(struct conntrack *ct, struct conn *c, int dir, uint8_t flags, uint64_t now)
{
	conntrack_update(ct, c, dir, flags, now);
}

static bool alive(struct conntrack *ct, uint32_t id)
{
	struct flow_key k = mk(id, 0);
	for (uint8_t p = 0; p < 255; p++) {
		k.proto = p;
		int d;
		if (conntrack_lookup(ct, &k, &d))
			return true;
	}
	return false;
}

static void test_tcp_aging(void **state)
{
	(void)state;
	struct conntrack *ct = conntrack_create(64);
	struct flow_key k1 = mk(1, 6), k2 = mk(2, 6), k3 = mk(3, 6), k4 = mk(4, 6), k5 = mk(5, 6);
	/* 1: full handshake -> established */
	struct conn *c1 = conntrack_insert(ct, &k1, 5, 0);
	tcp(ct, c1, 0, TH_SYN, 0);
	tcp(ct, c1, 1, TH_SYN | TH_ACK, 1);
	tcp(ct, c1, 0, TH_ACK, 2);
	/* 2: SYN only */
	struct conn *c2 = conntrack_insert(ct, &k2, 5, 0);
	tcp(ct, c2, 0, TH_SYN, 2);
	/* 3: established then FIN both ways */
	struct conn *c3 = conntrack_insert(ct, &k3, 5, 0);
	tcp(ct, c3, 0, TH_SYN, 0);
	tcp(ct, c3, 1, TH_SYN | TH_ACK, 1);
	tcp(ct, c3, 0, TH_ACK, 2);
	tcp(ct, c3, 0, TH_FIN | TH_ACK, 2);
	tcp(ct, c3, 1, TH_FIN | TH_ACK, 2);
	/* 4: RST */
	struct conn *c4 = conntrack_insert(ct, &k4, 5, 0);
	tcp(ct, c4, 0, TH_SYN, 0);
	tcp(ct, c4, 1, TH_RST, 2);
	/* 5: mid-stream pickup, then FIN one way only */
	struct conn *c5 = conntrack_insert(ct, &k5, 5, 0);
	tcp(ct, c5, 0, TH_ACK, 2);
	tcp(ct, c5, 1, TH_FIN | TH_ACK, 2);
	assert_int_equal(conntrack_pkts(ct, c5, 0), 1);
	assert_int_equal(conntrack_pkts(ct, c5, 1), 1);

	assert_int_equal(conntrack_expire(ct, 2 + 10 * S - 1, 64), 0);
	assert_int_equal(conntrack_expire(ct, 2 + 10 * S + MS, 64), 2); /* closing, reset */
	assert_true(alive(ct, 1) && alive(ct, 2) && !alive(ct, 3) && !alive(ct, 4) && alive(ct, 5));
	assert_int_equal(conntrack_expire(ct, 2 + 120 * S - 1, 64), 0);
	assert_int_equal(conntrack_expire(ct, 2 + 120 * S + MS, 64), 2); /* syn-sent, fin one way */
	assert_true(alive(ct, 1) && !alive(ct, 2) && !alive(ct, 5));
	/* established: refreshed by traffic, then idle for an hour */
	tcp(ct, c1, 1, TH_ACK, 3000 * S);
	assert_int_equal(conntrack_expire(ct, 6600 * S - 1, 64), 0);
	assert_int_equal(conntrack_expire(ct, 6600 * S + MS, 64), 1);
	assert_false(alive(ct, 1));
	struct conntrack_stats st = {0};
	conntrack_get_stats(ct, &st);
	assert_int_equal(st.expired, 5);
	assert_int_equal(st.entries, 0);
	conntrack_destroy(ct);
}

static void test_udp_other_aging(void **state)
{
	(void)state;
	struct conntrack *ct = conntrack_create(16);
	struct flow_key ku = mk(1, 17), ki = mk(2, 1);
	struct conn *cu = conntrack_insert(ct, &ku, 5, 0);
	assert_non_null(conntrack_insert(ct, &ki, 5, 0));
	conntrack_update(ct, cu, 1, 0, 30 * S);
	assert_int_equal(conntrack_expire(ct, 30 * S + MS, 16), 1); /* icmp after 30 s */
	assert_false(alive(ct, 2));
	assert_int_equal(conntrack_expire(ct, 90 * S - 1, 16), 0);
	assert_true(alive(ct, 1));
	assert_int_equal(conntrack_expire(ct, 90 * S + MS, 16), 1);
	assert_false(alive(ct, 1));
	/* configurable timeouts; time going backwards never expires */
	conntrack_set_timeouts(ct, 100 * S, 20 * S, 5 * S, 2 * S);
	cu = conntrack_insert(ct, &ku, 5, 1000 * S);
	assert_non_null(cu);
	assert_int_equal(conntrack_expire(ct, 10 * S, 16), 0);
	assert_int_equal(conntrack_expire(ct, 1004 * S, 16), 0);
	assert_int_equal(conntrack_expire(ct, 1005 * S + MS, 16), 1);
	/* milliseconds wrap at 2^32 (49.7 days): idle times still count */
	const uint64_t wrap = (1ULL << 32) * MS;
	cu = conntrack_insert(ct, &ku, 5, wrap - 2 * S);
	assert_non_null(cu);
	assert_int_equal(conntrack_idle_ns(cu, wrap + 2 * S), 4 * S);
	assert_int_equal(conntrack_expire(ct, wrap + 3 * S - MS, 16), 0);
	conntrack_update(ct, cu, 0, 0, wrap + 1 * S);
	assert_int_equal(conntrack_idle_ns(cu, wrap + 2 * S), 1 * S);
	assert_int_equal(conntrack_expire(ct, wrap + 6 * S, 16), 0);
	assert_int_equal(conntrack_expire(ct, wrap + 6 * S + MS, 16), 1);
	conntrack_destroy(ct);
}

/* Packet counts are 64-bit: the record keeps their lower halves (one cache
 * line), the table carries into the upper ones; a reused entry starts at 0. */
static void test_counts_carry(void **state)
{
	(void)state;
	struct conntrack *ct = conntrack_create(16);
	struct flow_key k = mk(1, 17), k2 = mk(2, 17);
	struct conn *c = conntrack_insert(ct, &k, 5, 0);
	assert_non_null(c);
	c->pkts[1] = UINT32_MAX - 1; /* as if 2^32 - 2 packets had come back */
	conntrack_update(ct, c, 1, 0, S);
	assert_int_equal(conntrack_pkts(ct, c, 1), UINT32_MAX);
	conntrack_update(ct, c, 1, 0, S);
	assert_int_equal(conntrack_pkts(ct, c, 1), 1ULL << 32);
	conntrack_update(ct, c, 1, 0, S);
	assert_int_equal(conntrack_pkts(ct, c, 1), (1ULL << 32) + 1);
	assert_int_equal(conntrack_pkts(ct, c, 0), 0);
	conntrack_delete(ct, c);
	struct conn *c2 = conntrack_insert(ct, &k2, 5, 2 * S);
	assert_ptr_equal(c2, c); /* the freed entry, reused */
	assert_int_equal(conntrack_pkts(ct, c2, 1), 0);
	conntrack_destroy(ct);
}

static void test_expire_budget(void **state)
{
	(void)state;
	struct conntrack *ct = conntrack_create(100);
	for (uint32_t i = 0; i < 100; i++) {
		struct flow_key k = mk(i, 17);
		assert_non_null(conntrack_insert(ct, &k, 5, 0));
	}
	uint32_t total = 0, calls = 0;
	while (total < 100) {
		uint32_t n = conntrack_expire(ct, 1000 * S, 7);
		assert_true(n <= 7);
		total += n;
		calls++;
		assert_true(calls <= 15);
	}
	assert_int_equal(calls, 15); /* 100 slots / 7 per call */
	assert_int_equal(conntrack_expire(ct, 1000 * S, 1000), 0);
	conntrack_destroy(ct);
}

static void test_delete_reuse(void **state)
{
	(void)state;
	struct conntrack *ct = conntrack_create(16);
	for (uint32_t round = 0; round < 2000; round++) {
		struct flow_key k = mk(round, 6), r;
		struct conn *c = conntrack_insert(ct, &k, 5, 0);
		assert_non_null(c);
		conntrack_delete(ct, c);
		int d;
		assert_null(conntrack_lookup(ct, &k, &d));
		flow_key_reverse(&k, &r);
		r.zone = 5;
		assert_null(conntrack_lookup(ct, &r, &d));
	}
	struct conntrack_stats st = {0};
	conntrack_get_stats(ct, &st);
	assert_int_equal(st.deleted, 2000);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.insert_full, 0);
	/* deleting garbage or twice is harmless */
	struct flow_key k = mk(1, 6);
	struct conn *c = conntrack_insert(ct, &k, 5, 0);
	conntrack_delete(ct, c);
	conntrack_delete(ct, c);
	struct conn fake;
	memset(&fake, 0, sizeof(fake));
	conntrack_delete(ct, &fake);
	conntrack_get_stats(ct, &st);
	assert_int_equal(st.deleted, 2001);
	conntrack_destroy(ct);
}

struct walk_arg {
	uint32_t seen, stop_at;
	uint64_t id_sum;
};

static bool walker(struct conn *c, void *arg)
{
	struct walk_arg *w = arg;
	w->seen++;
	w->id_sum += c->rule;
	return w->seen != w->stop_at;
}

static void test_walk(void **state)
{
	(void)state;
	struct conntrack *ct = conntrack_create(50);
	uint64_t sum = 0;
	for (uint32_t i = 0; i < 30; i++) {
		struct flow_key k = mk(i, 17);
		struct conn *c = conntrack_insert(ct, &k, 5, 0);
		c->rule = (uint16_t)(i * 2 + 2);
		sum += c->rule;
	}
	struct walk_arg w = {0, 0, 0};
	conntrack_walk(ct, walker, &w);
	assert_int_equal(w.seen, 30);
	assert_int_equal(w.id_sum, sum);
	w = (struct walk_arg){0, 5, 0};
	conntrack_walk(ct, walker, &w);
	assert_int_equal(w.seen, 5);
	conntrack_destroy(ct);
}

static void test_batch(void **state)
{
	(void)state;
	struct conntrack *ct = conntrack_create(2000);
	for (uint32_t i = 0; i < 1000; i++) {
		struct flow_key k = mk(i, 6);
		assert_non_null(conntrack_insert(ct, &k, 5, 0));
	}
	enum { N = 3001 };
	struct flow_key *keys = calloc(N, sizeof(*keys));
	const struct flow_key **kp = calloc(N, sizeof(*kp));
	struct conn **out = calloc(N, sizeof(*out));
	int *dirs = calloc(N, sizeof(*dirs));
	for (uint32_t i = 0; i < N; i++) {
		struct flow_key k = mk(i % 1500, 6);
		if (i % 3 == 1) {
			flow_key_reverse(&k, &keys[i]);
			keys[i].zone = 5;
		} else {
			keys[i] = k;
		}
		kp[i] = &keys[i];
	}
	conntrack_lookup_batch(ct, kp, NULL, N, out, dirs);
	uint32_t hits = 0;
	for (uint32_t i = 0; i < N; i++) {
		int d = -1;
		struct conn *c = conntrack_lookup(ct, kp[i], &d);
		assert_ptr_equal(out[i], c);
		if (c) {
			hits++;
			assert_int_equal(dirs[i], d);
			assert_int_equal(d, i % 3 == 1);
		}
	}
	assert_true(hits > N / 2 && hits < N);
	/* the same with the caller's hashes */
	uint64_t *h = calloc(N, sizeof(*h));
	struct conn **out2 = calloc(N, sizeof(*out2));
	int *dirs2 = calloc(N, sizeof(*dirs2));
	for (uint32_t i = 0; i < N; i++)
		h[i] = flow_key_hash(kp[i]);
	conntrack_lookup_batch(ct, kp, h, N, out2, dirs2);
	for (uint32_t i = 0; i < N; i++) {
		assert_ptr_equal(out2[i], out[i]);
		if (out[i])
			assert_int_equal(dirs2[i], dirs[i]);
	}
	free(h);
	free(out2);
	free(dirs2);
	conntrack_lookup_batch(ct, kp, NULL, 0, out, dirs);
	free(keys);
	free(kp);
	free(out);
	free(dirs);
	conntrack_destroy(ct);
}

/* Resident memory of this process, bytes. */
static size_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, res = 0;
	if (f) {
		if (fscanf(f, "%lu %lu", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static void test_memory(void **state)
{
	(void)state;
	size_t per = conntrack_entry_bytes();
	assert_true(per <= 256);
	assert_true(per >= sizeof(struct conn));
	const uint32_t cap = 1u << 20;
	/* the table is preallocated and touched at creation: resident memory
	 * grows by capacity * bytes-per-entry (plus 2 MiB rounding per table) */
	size_t before = rss_bytes();
	struct conntrack *ct = conntrack_create(cap);
	size_t used = rss_bytes() - before;
	assert_non_null(ct);
	size_t want = (size_t)cap * per;
	assert_true(used >= want);
#if defined(__SANITIZE_ADDRESS__)
#define CT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CT_ASAN 1
#endif
#endif
#ifndef CT_ASAN /* the sanitizer adds shadow memory */
	assert_true(used <= want + 8u * 1024 * 1024);
#endif
	conntrack_destroy(ct);
}

/* The reverse key's hash computed in place (inserts, deletes) is the hash a
 * lookup of the reply computes from the reply's own key. */
static void test_reverse_hash(void **state)
{
	(void)state;
	for (uint32_t i = 0; i < 1000; i++) {
		struct flow_key k = mk(i * 7919u, i % 3 ? 6 : 17), r;
		k.sport = (uint16_t)(i * 31u);
		k.dport = (uint16_t)(65535u - i);
		k.vni = i * 2654435761u;
		flow_key_reverse(&k, &r);
		r.zone = (uint16_t)(i * 3u + 1u);
		assert_true(flow_key_hash_reverse(&k, r.zone) == flow_key_hash(&r));
		assert_true(flow_key_hash(&r) != flow_key_hash(&k)); /* a different key */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_lookup),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_fill_large),
		cmocka_unit_test(test_tcp_aging),
		cmocka_unit_test(test_udp_other_aging),
		cmocka_unit_test(test_counts_carry),
		cmocka_unit_test(test_expire_budget),
		cmocka_unit_test(test_delete_reuse),
		cmocka_unit_test(test_walk),
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_reverse_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

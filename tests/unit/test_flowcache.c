/* test_flowcache.c - unit tests of flowcache.h: a hit needs a live record
 * whose key (in the cached direction) is the packet's; the cache steps
 * aside after a window that mostly missed, and comes back after its rest. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "flowcache.h"

static struct flow_key key(uint32_t i)
{
	struct flow_key k;
	memset(&k, 0, sizeof(k));
	uint8_t a[4] = {10, 1, (uint8_t)(i >> 8), (uint8_t)i}, b[4] = {10, 2, 0, 1};
	ipaddr_from_v4(&k.src, a);
	ipaddr_from_v4(&k.dst, b);
	k.sport = (uint16_t)(1000 + i);
	k.dport = 80;
	k.proto = 6;
	k.is_ip = 1;
	k.zone = 2;
	k.vni = 100;
	return k;
}

static void test_hit_needs_live_record_and_key(void **state)
{
	(void)state;
	struct conntrack *ct = conntrack_create(64);
	struct flowcache fc;
	assert_non_null(ct);
	assert_true(flowcache_init(&fc, 64));
	struct flow_key k = key(1), r, other = key(2);
	struct conn *c = conntrack_insert(ct, &k, 3, 0);
	assert_non_null(c);
	uint64_t h = flow_key_hash(&k);
	int dir = -1;
	assert_null(flowcache_lookup(&fc, &k, h, &dir)); /* empty */
	flowcache_insert(&fc, h, c, 0);
	assert_ptr_equal(flowcache_lookup(&fc, &k, h, &dir), c);
	assert_int_equal(dir, 0);
	/* another key under the same hash (a collision) is no hit */
	assert_null(flowcache_lookup(&fc, &other, h, &dir));
	/* the reverse direction, cached as such */
	flow_key_reverse(&k, &r);
	r.zone = 3;
	uint64_t rh = flow_key_hash(&r);
	flowcache_insert(&fc, rh, c, 1);
	assert_ptr_equal(flowcache_lookup(&fc, &r, rh, &dir), c);
	assert_int_equal(dir, 1);
	/* a deleted record is a miss, though the entry still points at it */
	conntrack_delete(ct, c);
	assert_null(flowcache_lookup(&fc, &k, h, &dir));
	assert_int_equal(fc.hits, 2);
	assert_int_equal(fc.misses, 3);
	flowcache_fini(&fc);
	conntrack_destroy(ct);
}

/* Batches of `batch` packets, each probing once, hitting when `hit`:
 * how many of `batches` batches found the cache in use. */
static uint32_t run(struct flowcache *fc, struct conn *c, const struct flow_key *k, bool hit, uint32_t batches,
		    uint32_t batch)
{
	struct flow_key miss = key(7);
	uint64_t h = flow_key_hash(k);
	uint32_t on = 0;
	for (uint32_t b = 0; b < batches; b++) {
		if (!flowcache_active(fc, batch))
			continue;
		on++;
		for (uint32_t i = 0; i < batch; i++) {
			int dir;
			struct conn *got = flowcache_lookup(fc, hit ? k : &miss, hit ? h : flow_key_hash(&miss), &dir);
			assert_true(hit ? got == c : got == NULL);
		}
	}
	return on;
}

static void test_steps_aside_when_it_misses(void **state)
{
	(void)state;
	enum { B = 64 };
	struct conntrack *ct = conntrack_create(64);
	struct flowcache fc;
	assert_non_null(ct);
	assert_true(flowcache_init(&fc, 64));
	struct flow_key k = key(1);
	struct conn *c = conntrack_insert(ct, &k, 3, 0);
	assert_non_null(c);
	flowcache_insert(&fc, flow_key_hash(&k), c, 0);
	/* hits: in use all along */
	assert_int_equal(run(&fc, c, &k, true, 4 * FC_WINDOW / B, B), 4 * FC_WINDOW / B);
	assert_int_equal(fc.rests, 0);
	/* a window of misses: then aside for FC_REST packets */
	assert_int_equal(run(&fc, c, &k, false, FC_WINDOW / B, B), FC_WINDOW / B);
	assert_false(flowcache_active(&fc, B)); /* judged at the next batch */
	assert_int_equal(fc.rests, 1);
	assert_int_equal(run(&fc, c, &k, false, FC_REST / B, B), 0);
	/* back, for another window */
	assert_true(flowcache_active(&fc, B));
	assert_int_equal(run(&fc, c, &k, true, FC_WINDOW / B, B), FC_WINDOW / B);
	assert_true(flowcache_active(&fc, B));
	/* half hits is enough to stay */
	for (int w = 0; w < 4; w++) {
		assert_int_equal(run(&fc, c, &k, true, FC_WINDOW / B / 2, B), FC_WINDOW / B / 2);
		assert_int_equal(run(&fc, c, &k, false, FC_WINDOW / B / 2, B), FC_WINDOW / B / 2);
	}
	assert_int_equal(fc.rests, 1);
	flowcache_fini(&fc);
	conntrack_destroy(ct);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_needs_live_record_and_key),
		cmocka_unit_test(test_steps_aside_when_it_misses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

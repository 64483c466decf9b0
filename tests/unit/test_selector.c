/* test_selector.c - unit tests of selector.c (weighted Maglev): spread,
 * weights, consistency on removal and addition, no live candidate, order
 * independence, build cost. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <time.h>

#include "flow.h"
#include "selector.h"

#define FLOWS 400000

static uint64_t flow_hash(uint32_t i)
{
	return hash_mix64((uint64_t)i * 0x9e3779b97f4a7c15ULL + 12345);
}

static void counts(const struct selector *s, uint32_t *cnt, uint16_t n)
{
	memset(cnt, 0, n * sizeof(*cnt));
	for (uint32_t i = 0; i < FLOWS; i++) {
		uint16_t c = selector_pick(s, flow_hash(i));
		assert_true(c < n);
		cnt[c]++;
	}
}

static void test_even_spread(void **state)
{
	(void)state;
	struct selector *s = selector_create();
	assert_non_null(s);
	uint32_t key[8], w[8], cnt[8];
	for (int i = 0; i < 8; i++) {
		key[i] = 1000 + (uint32_t)i * 2;
		w[i] = 1;
	}
	assert_true(selector_build(s, 8, key, w));
	counts(s, cnt, 8);
	for (int i = 0; i < 8; i++) {
		double share = (double)cnt[i] / FLOWS;
		assert_true(share > 0.125 * 0.97 && share < 0.125 * 1.03);
	}
	selector_free(s);
}

static void test_weights(void **state)
{
	(void)state;
	struct selector *s = selector_create();
	uint32_t key[2] = {42, 84}, w[2] = {1, 3}, cnt[2];
	assert_true(selector_build(s, 2, key, w));
	counts(s, cnt, 2);
	double share0 = (double)cnt[0] / FLOWS;
	assert_true(share0 > 0.23 && share0 < 0.27);

	/* 5 candidates, weights 1..5: share of i ~ (i+1)/15 */
	uint32_t k5[5] = {2, 4, 6, 8, 10}, w5[5] = {10, 20, 30, 40, 50}, c5[5];
	assert_true(selector_build(s, 5, k5, w5));
	counts(s, c5, 5);
	for (int i = 0; i < 5; i++) {
		double want = (double)(i + 1) / 15.0, got = (double)c5[i] / FLOWS;
		assert_true(got > want - 0.02 && got < want + 0.02);
	}
	selector_free(s);
}

static void test_consistency(void **state)
{
	(void)state;
	enum { N = 10 };
	struct selector *s = selector_create();
	uint32_t key[N + 1], w[N + 1];
	for (int i = 0; i <= N; i++) {
		key[i] = 0x10000 + (uint32_t)i * 7919;
		w[i] = 1;
	}
	assert_true(selector_build(s, N, key, w));
	uint16_t *before = malloc(FLOWS * sizeof(*before));
	for (uint32_t i = 0; i < FLOWS; i++)
		before[i] = selector_pick(s, flow_hash(i));

	/* remove candidate 3 */
	w[3] = 0;
	assert_true(selector_build(s, N, key, w));
	uint32_t others = 0, others_moved = 0;
	for (uint32_t i = 0; i < FLOWS; i++) {
		uint16_t now = selector_pick(s, flow_hash(i));
		assert_int_not_equal(now, 3);
		assert_true(now < N);
		if (before[i] != 3) {
			others++;
			others_moved += now != before[i];
		}
	}
	assert_true((double)others_moved / others < 0.02);

	/* back to N, then add an (N+1)th */
	w[3] = 1;
	assert_true(selector_build(s, N, key, w));
	for (uint32_t i = 0; i < FLOWS; i++)
		assert_int_equal(selector_pick(s, flow_hash(i)), before[i]); /* deterministic */
	assert_true(selector_build(s, N + 1, key, w));
	uint32_t moved = 0, moved_to_new = 0;
	for (uint32_t i = 0; i < FLOWS; i++) {
		uint16_t now = selector_pick(s, flow_hash(i));
		if (now != before[i]) {
			moved++;
			moved_to_new += now == N;
		}
	}
	double frac = (double)moved / FLOWS;
	assert_true(frac > 1.0 / (N + 1) * 0.85 && frac < 1.0 / (N + 1) * 1.25);
	assert_true((double)(moved - moved_to_new) / FLOWS < 0.02);
	free(before);
	selector_free(s);
}

static void test_none_live(void **state)
{
	(void)state;
	struct selector *s = selector_create();
	assert_int_equal(selector_pick(s, 123), SELECTOR_NONE); /* never built */
	uint32_t key[3] = {1, 2, 3}, w[3] = {0, 0, 0};
	assert_true(selector_build(s, 3, key, w));
	for (uint32_t i = 0; i < 1000; i++)
		assert_int_equal(selector_pick(s, flow_hash(i)), SELECTOR_NONE);
	w[1] = 5;
	assert_true(selector_build(s, 3, key, w));
	for (uint32_t i = 0; i < 1000; i++)
		assert_int_equal(selector_pick(s, flow_hash(i)), 1);
	assert_true(selector_build(s, 0, NULL, NULL));
	assert_int_equal(selector_pick(s, 77), SELECTOR_NONE);
	/* bad arguments keep the old table */
	assert_true(selector_build(s, 3, key, w));
	assert_false(selector_build(s, 3, NULL, w));
	assert_false(selector_build(s, 3, key, NULL));
	assert_false(selector_build(NULL, 3, key, w));
	assert_int_equal(selector_pick(s, 77), 1);
	assert_int_equal(selector_pick(NULL, 77), SELECTOR_NONE);
	selector_free(s);
	selector_free(NULL);
}

static void test_order_independent(void **state)
{
	(void)state;
	struct selector *a = selector_create(), *b = selector_create();
	uint32_t ka[4] = {11, 22, 33, 44}, wa[4] = {1, 2, 1, 3};
	uint32_t kb[4] = {44, 33, 22, 11}, wb[4] = {3, 1, 2, 1};
	assert_true(selector_build(a, 4, ka, wa));
	assert_true(selector_build(b, 4, kb, wb));
	for (uint32_t i = 0; i < 100000; i++) {
		uint64_t h = flow_hash(i);
		assert_int_equal(ka[selector_pick(a, h)], kb[selector_pick(b, h)]);
	}
	selector_free(a);
	selector_free(b);
}

static void test_build_cost(void **state)
{
	(void)state;
	struct selector *s = selector_create();
	uint32_t key[64], w[64];
	for (int i = 0; i < 64; i++) {
		key[i] = (uint32_t)i * 2 + 2;
		w[i] = i == 0 ? 1000000 : 1; /* extreme weight ratio */
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int r = 0; r < 10; r++)
		assert_true(selector_build(s, 64, key, w));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	assert_true(ms / 10 < 200);
	/* candidate 0 dominates; every live candidate still gets some flows
	 * only if its share rounds to at least one slot: 65537/1000063 < 1 */
	uint32_t c0 = 0;
	for (uint32_t i = 0; i < 100000; i++)
		c0 += selector_pick(s, flow_hash(i)) == 0;
	assert_true(c0 > 99000);
	selector_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_even_spread),
		cmocka_unit_test(test_weights),
		cmocka_unit_test(test_consistency),
		cmocka_unit_test(test_none_live),
		cmocka_unit_test(test_order_independent),
		cmocka_unit_test(test_build_cost),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

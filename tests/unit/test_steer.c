/* test_steer.c - unit tests of src/steer.c (which worker owns a frame, the
 * hand-off rings, the NAT steering table) and of the pool's return of
 * buffers freed by another thread (src/pkt.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>

#include "nsh.h"
#include "steer.h"
#include "tunnel.h"
#include "wire.h"

/* Ethernet + IPv4 + TCP (or UDP), no payload; checksums are not looked at. */
static size_t mk_v4(uint8_t *f, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t proto)
{
	memset(f, 0, 64);
	const uint8_t macs[12] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1};
	memcpy(f, macs, 12);
	wr16(f + 12, 0x0800);
	uint8_t *ip = f + 14;
	ip[0] = 0x45;
	size_t l4len = proto == 6 ? 20 : 8;
	wr16(ip + 2, (uint16_t)(20 + l4len));
	ip[8] = 64;
	ip[9] = proto;
	for (int i = 0; i < 4; i++) {
		ip[12 + i] = (uint8_t)(src >> (24 - 8 * i));
		ip[16 + i] = (uint8_t)(dst >> (24 - 8 * i));
	}
	ipv4_set_csum(ip);
	uint8_t *l4 = ip + 20;
	wr16(l4, sport);
	wr16(l4 + 2, dport);
	if (proto == 6)
		l4[12] = 0x50, l4[13] = 0x02;
	else
		wr16(l4 + 4, 8);
	return 14 + 20 + l4len;
}

static void test_hash_symmetric(void **state)
{
	(void)state;
	uint8_t a[64], b[64], c[64];
	size_t na = mk_v4(a, 0x0a000001, 0x0a000002, 40000, 80, 6);
	size_t nb = mk_v4(b, 0x0a000002, 0x0a000001, 80, 40000, 6);
	size_t nc = mk_v4(c, 0x0a000001, 0x0a000002, 40001, 80, 6);
	uint64_t ha = steer_hash(a, na, false), hb = steer_hash(b, nb, false), hc = steer_hash(c, nc, false);
	assert_true(ha != 0);
	assert_int_equal(ha, hb);
	assert_true(ha != hc);
	/* the same as the hash of the parsed key, whatever its network and zone */
	struct pkt_layout lay;
	struct flow_key k;
	assert_int_equal(wire_parse_buf(a, na, &lay, &k), DROP_NONE);
	k.vni = 77;
	k.zone = 5;
	assert_int_equal(steer_key_hash(&k), ha);
	/* no flow: ARP, truncated, empty */
	uint8_t arp[42] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06};
	assert_int_equal(steer_hash(arp, sizeof(arp), false), 0);
	assert_int_equal(steer_hash(a, 20, false), 0);
	assert_int_equal(steer_hash(a, 0, false), 0);
	assert_int_equal(steer_hash(a, 0, true), 0);
}

/* A frame inside NSH (as a service node returns it) and inside Geneve (as
 * another host sends it, guest plane and service plane) hashes as the
 * frame itself. */
static void test_hash_encapsulated(void **state)
{
	(void)state;
	struct pkt_pool *pool = pkt_pool_create(8);
	assert_non_null(pool);
	uint8_t inner[64];
	size_t n = mk_v4(inner, 0xc0a80001, 0xc0a80102, 5353, 53, 17);
	uint64_t h = steer_hash(inner, n, false);
	assert_true(h != 0);

	struct sp_meta md;
	memset(&md, 0, sizeof(md));
	md.spi = 42;
	md.si = 255;
	md.chain = 3;
	uint8_t f[256];
	const uint8_t macs[12] = {2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 8};
	memcpy(f, macs, 12);
	wr16(f + 12, TUNNEL_PROTO_NSH);
	size_t nl = nsh_encode(f + 14, sizeof(f) - 14, 42, 255, DETOUR_MD_CLASS_DEFAULT, &md, NSH_TLV_CHAIN);
	assert_true(nl > 0);
	memcpy(f + 14 + nl, inner, n);
	assert_int_equal(steer_hash(f, 14 + nl + n, false), h);
	/* cut short inside the inner frame: no flow */
	assert_int_equal(steer_hash(f, 14 + nl + 20, false), 0);

	struct pkt *p = pkt_alloc(pool);
	memcpy(p->data, inner, n);
	p->len = (uint32_t)n;
	assert_int_equal(tunnel_encap_guest(p, 100), DROP_NONE);
	assert_int_equal(steer_hash(p->data, p->len, true), h);
	/* the same bytes read as Ethernet are no flow of ours */
	assert_true(steer_hash(p->data, p->len, false) != h);

	struct pkt *q = pkt_alloc(pool);
	memcpy(q->data, inner, n);
	q->len = (uint32_t)n;
	q->md = md;
	assert_int_equal(tunnel_encap_sp(q, 0xabcdef, DETOUR_MD_CLASS_DEFAULT, 0), DROP_NONE);
	assert_int_equal(steer_hash(q->data, q->len, true), h);
	for (uint32_t cut = 0; cut < q->len; cut += 7)
		(void)steer_hash(q->data, cut, true); /* never reads past cut (ASan) */
	pkt_free(pool, p);
	pkt_free(pool, q);
	pkt_pool_destroy(pool);
}

static void test_owner_spread(void **state)
{
	(void)state;
	struct steer *s = steer_create(2, 1024);
	assert_non_null(s);
	assert_int_equal(steer_owner(s, 0), STEER_ANY);
	unsigned per[2] = {0, 0};
	for (uint16_t port = 1; port <= 2000; port++) {
		uint8_t f[64];
		size_t n = mk_v4(f, 0x0a000001, 0x0a000002, port, 80, 17);
		uint16_t w = steer_owner(s, steer_hash(f, n, false));
		assert_true(w < 2);
		per[w]++;
	}
	/* 2000 flows over two workers: each gets 40-60% */
	assert_in_range(per[0], 800, 1200);
	assert_in_range(per[1], 800, 1200);
	assert_null(steer_create(0, 16));
	assert_null(steer_create(STEER_MAX_WORKERS + 1, 16));
	steer_destroy(s);
}

static void test_nat_table(void **state)
{
	(void)state;
	struct steer *s = steer_create(3, 4); /* one set of four */
	assert_non_null(s);
	struct flow_key k[6];
	memset(k, 0, sizeof(k));
	for (int i = 0; i < 6; i++) {
		k[i].is_ip = 1;
		k[i].proto = 6;
		k[i].sport = (uint16_t)(1000 + i);
		k[i].dport = 80;
		k[i].src.b[15] = 1;
		k[i].dst.b[15] = 2;
	}
	/* a learned tuple goes to its owner in both directions */
	uint16_t natural = steer_owner(s, steer_key_hash(&k[0]));
	uint16_t other = (uint16_t)((natural + 1) % 3);
	steer_nat_learn(s, &k[0], other);
	struct flow_key r;
	flow_key_reverse(&k[0], &r);
	assert_int_equal(steer_owner(s, steer_key_hash(&k[0])), other);
	assert_int_equal(steer_owner(s, steer_key_hash(&r)), other);
	/* learning again moves it */
	steer_nat_learn(s, &r, natural);
	assert_int_equal(steer_owner(s, steer_key_hash(&k[0])), natural);
	struct steer_stats st;
	steer_get_stats(s, &st);
	assert_int_equal(st.nat_entries, 1);
	/* a full set evicts and counts it */
	for (int i = 1; i < 6; i++)
		steer_nat_learn(s, &k[i], 2);
	steer_get_stats(s, &st);
	assert_int_equal(st.nat_entries, 4);
	assert_int_equal(st.nat_evicted, 2);
	assert_int_equal(steer_owner(s, steer_key_hash(&k[5])), 2);
	steer_destroy(s);
}

static void test_ring_order_and_full(void **state)
{
	(void)state;
	struct steer *s = steer_create(2, 16);
	struct pkt *in[BATCH_MAX], *out[BATCH_MAX];
	for (uintptr_t i = 0; i < BATCH_MAX; i++)
		in[i] = (struct pkt *)(i + 1);
	assert_false(steer_pending(s, 1));
	assert_int_equal(steer_push(s, 0, 1, in, 10), 10);
	assert_true(steer_pending(s, 1));
	assert_false(steer_pending(s, 0));
	assert_int_equal(steer_pop(s, 1, out, 4), 4);
	assert_ptr_equal(out[0], in[0]);
	assert_ptr_equal(out[3], in[3]);
	assert_int_equal(steer_pop(s, 1, out, BATCH_MAX), 6);
	assert_ptr_equal(out[5], in[9]);
	assert_false(steer_pending(s, 1));
	/* fill it: the ring takes STEER_RING and no more */
	uint32_t took = 0;
	for (int i = 0; i < STEER_RING / BATCH_MAX + 2; i++)
		took += steer_push(s, 0, 1, in, BATCH_MAX);
	assert_int_equal(took, STEER_RING);
	uint32_t got = 0, k;
	while ((k = steer_pop(s, 1, out, BATCH_MAX)) > 0)
		got += k;
	assert_int_equal(got, STEER_RING);
	steer_destroy(s);
}

/* Two threads: every frame handed over arrives once, in order; buffers
 * freed by the receiving thread go back to the sender's pool. */
#define XFER 200000u
struct xfer {
	struct steer *s;
	struct pkt_pool *pool;
	uint32_t seen, bad, left;
};

static void *consumer(void *arg)
{
	struct xfer *x = arg;
	struct pkt_pool *mine = pkt_pool_create(4);
	struct pkt *b[BATCH_MAX];
	while (x->seen < XFER) {
		uint32_t n = steer_pop(x->s, 1, b, BATCH_MAX);
		for (uint32_t i = 0; i < n; i++) {
			if (b[i]->hash != x->seen)
				x->bad++;
			x->seen++;
		}
		pkt_free_bulk(mine, b, n); /* not mine: they go home */
	}
	x->left = pkt_pool_avail(mine);
	pkt_pool_destroy(mine);
	return NULL;
}

static void test_ring_threads(void **state)
{
	(void)state;
	struct xfer x = {.s = steer_create(2, 16), .pool = pkt_pool_create(512)};
	assert_non_null(x.s);
	assert_non_null(x.pool);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, consumer, &x), 0);
	uint32_t sent = 0;
	while (sent < XFER) {
		struct pkt *p = pkt_alloc(x.pool); /* takes back what the consumer freed */
		if (!p)
			continue;
		p->hash = sent;
		while (steer_push(x.s, 0, 1, &p, 1) != 1)
			;
		sent++;
	}
	pthread_join(t, NULL);
	assert_int_equal(x.seen, XFER);
	assert_int_equal(x.bad, 0);
	assert_int_equal(x.left, 4); /* the consumer's own pool was not touched */
	/* everything came back */
	struct pkt *all[512];
	assert_int_equal(pkt_alloc_bulk(x.pool, all, 512), 512);
	pkt_free_bulk(x.pool, all, 512);
	pkt_pool_destroy(x.pool);
	steer_destroy(x.s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_symmetric),   cmocka_unit_test(test_hash_encapsulated),
		cmocka_unit_test(test_owner_spread),     cmocka_unit_test(test_nat_table),
		cmocka_unit_test(test_ring_order_and_full), cmocka_unit_test(test_ring_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

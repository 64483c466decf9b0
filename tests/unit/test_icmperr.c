/* test_icmperr.c - unit tests of src/icmperr.c: the MTU decision, every
 * field and checksum of the ICMP "fragmentation needed" and ICMPv6 "packet
 * too big" replies, the cases where no reply may be sent, and IPv4
 * fragmentation (offsets, flags, copied options, checksums, reassembly). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "icmperr.h"
#include "wire.h"

static struct pkt_pool *pool;

static int setup(void **state)
{
	(void)state;
	pool = pkt_pool_create(256);
	return pool ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	pkt_pool_destroy(pool);
	return 0;
}

static const uint8_t MAC_G[6] = {2, 0, 0, 0, 0, 1}; /* the guest (sender) */
static const uint8_t MAC_R[6] = {2, 0, 0, 0, 0, 2}; /* its gateway / peer */

static size_t put_eth(uint8_t *f, uint16_t type, bool vlan)
{
	memcpy(f, MAC_R, 6);
	memcpy(f + 6, MAC_G, 6);
	if (vlan) {
		wr16(f + 12, ETH_P_VLAN);
		wr16(f + 14, 0x0064);
		wr16(f + 16, type);
		return 18;
	}
	wr16(f + 12, type);
	return 14;
}

static bool csum_ok(const uint8_t *b, size_t n, uint32_t s) { return csum_fold(csum_partial(b, n, s)) == 0; }

/* An IPv4 frame: options opt[0..olen) (multiple of 4), protocol proto,
 * payload of plen bytes (a UDP header first when proto is UDP). */
static size_t ip4_frame(uint8_t *f, bool vlan, uint16_t flags_off, const uint8_t *src, const uint8_t *dst,
			uint8_t proto, const uint8_t *opt, size_t olen, size_t plen)
{
	size_t l3 = put_eth(f, ETH_P_IPV4, vlan);
	uint8_t *h = f + l3;
	size_t ihl = 20 + olen;
	h[0] = (uint8_t)(0x40 | ihl / 4);
	h[1] = 0x10;
	wr16(h + 2, (uint16_t)(ihl + plen));
	wr16(h + 4, 0x1234);
	wr16(h + 6, flags_off);
	h[8] = 64;
	h[9] = proto;
	memcpy(h + 12, src, 4);
	memcpy(h + 16, dst, 4);
	if (olen)
		memcpy(h + 20, opt, olen);
	uint8_t *l4 = h + ihl;
	for (size_t i = 0; i < plen; i++)
		l4[i] = (uint8_t)(i * 13 + 1);
	if (proto == 17 && plen >= 8) {
		wr16(l4, 5000);
		wr16(l4 + 2, 6000);
		wr16(l4 + 4, (uint16_t)plen);
		wr16(l4 + 6, 0);
	}
	if (proto == 1 && plen >= 8) {
		l4[0] = 8; /* echo request */
		l4[1] = 0;
	}
	ipv4_set_csum(h);
	return l3 + ihl + plen;
}

static size_t ip6_frame(uint8_t *f, const char *src, const char *dst, uint8_t nh, size_t plen)
{
	size_t l3 = put_eth(f, ETH_P_IPV6, false);
	uint8_t *h = f + l3;
	struct ipaddr s, d;
	assert_true(ipaddr_parse(src, &s));
	assert_true(ipaddr_parse(dst, &d));
	wr32(h, 6u << 28 | 0x12345);
	wr16(h + 4, (uint16_t)plen);
	h[6] = nh;
	h[7] = 64;
	memcpy(h + 8, s.b, 16);
	memcpy(h + 24, d.b, 16);
	uint8_t *l4 = h + 40;
	for (size_t i = 0; i < plen; i++)
		l4[i] = (uint8_t)(i * 11 + 3);
	if (nh == 17) {
		wr16(l4, 5000);
		wr16(l4 + 2, 6000);
		wr16(l4 + 4, (uint16_t)plen);
	}
	if (nh == 58)
		l4[0] = 128; /* echo request */
	return l3 + 40 + plen;
}

static const uint8_t A4[4] = {10, 0, 0, 1}, B4[4] = {10, 0, 0, 2};
static uint8_t frame[4096];

static void test_mtu_check(void **state)
{
	(void)state;
	size_t n = ip4_frame(frame, false, 0x4000, A4, B4, 17, NULL, 0, 1480);
	assert_int_equal(n, 1514);
	assert_int_equal(mtu_check(frame, n, 1500), MTU_FITS);
	assert_int_equal(mtu_check(frame, n, 1499), MTU_TOO_BIG);
	n = ip4_frame(frame, false, 0, A4, B4, 17, NULL, 0, 1480);
	assert_int_equal(mtu_check(frame, n, 1450), MTU_FRAGMENT);
	n = ip4_frame(frame, true, 0, A4, B4, 17, NULL, 0, 1480);
	assert_int_equal(mtu_check(frame, n, 1500), MTU_FITS); /* the tag is not IP */
	n = ip6_frame(frame, "fd00::1", "fd00::2", 17, 1460);
	assert_int_equal(mtu_check(frame, n, 1500), MTU_FITS);
	assert_int_equal(mtu_check(frame, n, 1430), MTU_TOO_BIG);
	/* not IP */
	memset(frame, 0, 1514);
	put_eth(frame, 0x88b5, false);
	assert_int_equal(mtu_check(frame, 1514, 1500), MTU_FITS);
	assert_int_equal(mtu_check(frame, 1514, 1400), MTU_DROP);
	assert_int_equal(mtu_check(frame, 5, 1400), MTU_FITS);
}

static void check_reply4(const struct pkt *o, size_t l3, const uint8_t *orig_ip, size_t orig_len, uint16_t mtu)
{
	const uint8_t *f = o->data;
	assert_memory_equal(f, MAC_G, 6);
	assert_memory_equal(f + 6, MAC_R, 6);
	if (l3 == 18) {
		assert_int_equal(rd16(f + 12), ETH_P_VLAN);
		assert_int_equal(rd16(f + 14), 0x0064);
	}
	assert_int_equal(rd16(f + l3 - 2), ETH_P_IPV4);
	const uint8_t *ip = f + l3;
	size_t quote = MIN(orig_len, (size_t)548);
	assert_int_equal(o->len, l3 + 28 + quote);
	assert_int_equal(ip[0], 0x45);
	assert_int_equal(ip[1], 0xd0); /* precedence 6 + original TOS 0x10 */
	assert_int_equal(rd16(ip + 2), 28 + quote);
	assert_int_equal(rd16(ip + 6), 0); /* no DF, not a fragment */
	assert_int_equal(ip[8], 64);
	assert_int_equal(ip[9], 1);
	assert_memory_equal(ip + 12, orig_ip + 16, 4); /* from the original destination */
	assert_memory_equal(ip + 16, orig_ip + 12, 4); /* to the guest */
	assert_true(csum_ok(ip, 20, 0));
	const uint8_t *ic = ip + 20;
	assert_int_equal(ic[0], 3);
	assert_int_equal(ic[1], 4);
	assert_int_equal(rd16(ic + 4), 0);
	assert_int_equal(rd16(ic + 6), mtu);
	assert_true(csum_ok(ic, 8 + quote, 0));
	assert_memory_equal(ic + 8, orig_ip, quote);
	assert_true(o->flags & PKT_F_PARSED);
	assert_int_equal(o->lay.l4proto, 1);
	/* the kernel's parser agrees */
	struct pkt_layout lay;
	struct flow_key key = {0};
	assert_int_equal(wire_parse_buf(o->data, o->len, &lay, &key), DROP_NONE);
}

static void test_frag_needed_v4(void **state)
{
	(void)state;
	size_t n = ip4_frame(frame, false, 0x4000, A4, B4, 17, NULL, 0, 1480);
	struct pkt *o = pkt_alloc(pool);
	size_t r = icmperr_build_too_big(frame, n, 1450, o);
	assert_int_equal(r, 14 + 576);
	check_reply4(o, 14, frame + 14, 1500, 1450);
	/* small packet: quoted whole; VLAN tag kept; echo requests get one */
	n = ip4_frame(frame, true, 0x4000, A4, B4, 1, NULL, 0, 100);
	r = icmperr_build_too_big(frame, n, 100, o);
	assert_int_equal(r, 18 + 28 + 120);
	check_reply4(o, 18, frame + 18, 120, 100);
	/* MTU below the IPv4 minimum is reported as 68 */
	n = ip4_frame(frame, false, 0x4000, A4, B4, 17, NULL, 0, 200);
	assert_true(icmperr_build_too_big(frame, n, 40, o) > 0);
	check_reply4(o, 14, frame + 14, 220, 68);
	/* Ethernet padding after the IP packet is not quoted */
	n = ip4_frame(frame, false, 0x4000, A4, B4, 17, NULL, 0, 20);
	assert_true(icmperr_build_too_big(frame, n + 6, 30, o) > 0);
	check_reply4(o, 14, frame + 14, 40, 68);
	pkt_free(pool, o);
}

static void expect_no_reply(size_t n)
{
	struct pkt *o = pkt_alloc(pool);
	assert_int_equal(icmperr_build_too_big(frame, n, 1000, o), 0);
	pkt_free(pool, o);
}

static void test_no_reply_v4(void **state)
{
	(void)state;
	const uint8_t zero[4] = {0}, mc[4] = {224, 0, 0, 1}, bc[4] = {255, 255, 255, 255};
	/* about an ICMP error */
	size_t n = ip4_frame(frame, false, 0x4000, A4, B4, 1, NULL, 0, 1400);
	frame[14 + 20] = 3;
	expect_no_reply(n);
	frame[14 + 20] = 11;
	expect_no_reply(n);
	/* a non-first fragment */
	n = ip4_frame(frame, false, 0x4000 | 10, A4, B4, 17, NULL, 0, 1400);
	expect_no_reply(n);
	/* addresses */
	expect_no_reply(ip4_frame(frame, false, 0x4000, zero, B4, 17, NULL, 0, 1400));
	expect_no_reply(ip4_frame(frame, false, 0x4000, mc, B4, 17, NULL, 0, 1400));
	expect_no_reply(ip4_frame(frame, false, 0x4000, A4, mc, 17, NULL, 0, 1400));
	expect_no_reply(ip4_frame(frame, false, 0x4000, A4, bc, 17, NULL, 0, 1400));
	/* multicast source MAC */
	n = ip4_frame(frame, false, 0x4000, A4, B4, 17, NULL, 0, 1400);
	frame[6] |= 1;
	expect_no_reply(n);
	/* malformed / truncated */
	n = ip4_frame(frame, false, 0x4000, A4, B4, 17, NULL, 0, 1400);
	expect_no_reply(n - 100);
	for (size_t k = 0; k < 34; k++)
		expect_no_reply(k);
}

static void test_packet_too_big_v6(void **state)
{
	(void)state;
	size_t n = ip6_frame(frame, "fd00::1", "fd00::2", 17, 1460);
	struct pkt *o = pkt_alloc(pool);
	for (int round = 0; round < 2; round++) {
		uint32_t mtu = round ? 1000 : 1430;
		size_t r = icmperr_build_too_big(frame, n, mtu, o);
		assert_int_equal(r, 14 + 1280);
		const uint8_t *f = o->data, *ip = f + 14, *oip = frame + 14;
		assert_memory_equal(f, MAC_G, 6);
		assert_memory_equal(f + 6, MAC_R, 6);
		assert_int_equal(rd16(f + 12), ETH_P_IPV6);
		assert_int_equal(rd32(ip), 6u << 28);
		assert_int_equal(rd16(ip + 4), 1240);
		assert_int_equal(ip[6], 58);
		assert_int_equal(ip[7], 64);
		assert_memory_equal(ip + 8, oip + 24, 16);
		assert_memory_equal(ip + 24, oip + 8, 16);
		const uint8_t *ic = ip + 40;
		assert_int_equal(ic[0], 2);
		assert_int_equal(ic[1], 0);
		assert_int_equal(rd32(ic + 4), round ? 1280 : 1430);
		uint32_t ps = csum_partial(ip + 8, 32, 0) + 1240 + 58;
		assert_true(csum_ok(ic, 1240, ps));
		assert_memory_equal(ic + 8, oip, 1232);
		assert_int_equal(o->lay.l4proto, 58);
	}
	/* a small one is quoted whole; echo requests get one */
	n = ip6_frame(frame, "fd00::1", "fd00::2", 58, 64);
	assert_int_equal(icmperr_build_too_big(frame, n, 1300, o), 14 + 48 + 104);
	assert_memory_equal(o->data + 14 + 48, frame + 14, 104);
	pkt_free(pool, o);
	/* no reply */
	n = ip6_frame(frame, "fd00::1", "fd00::2", 58, 1400);
	frame[14 + 40] = 1; /* destination unreachable: an error */
	expect_no_reply(n);
	expect_no_reply(ip6_frame(frame, "fd00::1", "ff02::1", 17, 1400));
	expect_no_reply(ip6_frame(frame, "::", "fd00::2", 17, 1400));
	expect_no_reply(ip6_frame(frame, "ff02::1", "fd00::2", 17, 1400));
	n = ip6_frame(frame, "fd00::1", "fd00::2", 17, 1400);
	expect_no_reply(n - 1);
}

/* ---- fragmentation ---- */

/* Options: NOP, a copied option (0x83, 7 bytes), a non-copied timestamp
 * (0x44, 4 bytes): 12 bytes. After the first fragment only 0x83 + EOL. */
static const uint8_t OPTS[12] = {1, 0x83, 7, 4, 10, 9, 8, 7, 0x44, 4, 5, 0};

struct reasm {
	uint8_t data[65536];
	uint8_t have[65536];
	size_t end;
};

static struct reasm ra;

static void check_frags(struct pkt **fr, int nf, const uint8_t *orig, size_t l3, uint32_t mtu, bool orig_mf,
			size_t base)
{
	const uint8_t *oh = orig + l3;
	size_t oihl = (size_t)(oh[0] & 15) * 4, otot = rd16(oh + 2);
	memset(ra.have, 0, sizeof(ra.have));
	ra.end = 0;
	size_t total = 0;
	for (int i = 0; i < nf; i++) {
		const uint8_t *f = fr[i]->data, *h = f + l3;
		assert_memory_equal(f, orig, l3);
		size_t ihl = (size_t)(h[0] & 15) * 4, tot = rd16(h + 2);
		assert_int_equal(h[0] >> 4, 4);
		assert_true(tot <= mtu);
		assert_int_equal(fr[i]->len, l3 + tot);
		assert_true(csum_ok(h, ihl, 0));
		assert_int_equal(rd16(h + 4), rd16(oh + 4));
		assert_int_equal(h[1], oh[1]);
		assert_int_equal(h[8], oh[8]);
		assert_int_equal(h[9], oh[9]);
		assert_memory_equal(h + 12, oh + 12, 8);
		uint16_t fo = rd16(h + 6);
		assert_false(fo & 0x4000);
		bool mf = fo & 0x2000;
		size_t off = (size_t)(fo & 0x1fff) * 8;
		if (i == 0) {
			assert_int_equal(ihl, oihl);
			assert_memory_equal(h + 20, oh + 20, oihl - 20);
			assert_int_equal(off, base);
		} else if (oihl > 20) {
			const uint8_t want[8] = {0x83, 7, 4, 10, 9, 8, 7, 0};
			assert_int_equal(ihl, 28);
			assert_memory_equal(h + 20, want, 8);
		}
		if (i + 1 < nf) {
			assert_true(mf);
			assert_int_equal((tot - ihl) % 8, 0);
		} else {
			assert_int_equal(mf, orig_mf);
		}
		assert_true(off + tot - ihl <= sizeof(ra.data));
		for (size_t k = 0; k < tot - ihl; k++) {
			assert_false(ra.have[off + k]); /* no overlap */
			ra.have[off + k] = 1;
			ra.data[off + k] = h[ihl + k];
		}
		ra.end = MAX(ra.end, off + tot - ihl);
		total += tot - ihl;
		assert_true(fr[i]->flags & PKT_F_PARSED);
		assert_int_equal(fr[i]->in_port, 7);
		assert_int_equal(fr[i]->md.spi, 0x4242);
	}
	/* reassembly gives back the original payload, no holes */
	assert_int_equal(total, otot - oihl);
	assert_int_equal(ra.end, base + otot - oihl);
	for (size_t k = base; k < ra.end; k++)
		assert_true(ra.have[k]);
	assert_memory_equal(ra.data + base, oh + oihl, otot - oihl);
}

static struct pkt *orig_pkt(size_t n)
{
	struct pkt *p = pkt_alloc(pool);
	memcpy(p->data, frame, n);
	p->len = (uint32_t)n;
	p->in_port = 7;
	p->md.spi = 0x4242;
	p->flags = PKT_F_HAS_MD;
	return p;
}

static void fragment_case(bool vlan, const uint8_t *opt, size_t olen, size_t plen, uint32_t mtu, uint16_t fo,
			  int want_n)
{
	size_t n = ip4_frame(frame, vlan, fo, A4, B4, 17, opt, olen, plen);
	struct pkt *p = orig_pkt(n);
	struct pkt *fr[200];
	uint32_t avail = pkt_pool_avail(pool);
	int nf = ipv4_fragment(p, mtu, pool, fr, 200);
	assert_int_equal(nf, want_n);
	assert_int_equal(pkt_pool_avail(pool), avail - (uint32_t)nf);
	check_frags(fr, nf, frame, vlan ? 18 : 14, mtu, fo & 0x2000, (size_t)(fo & 0x1fff) * 8);
	assert_memory_equal(p->data, frame, n); /* original untouched */
	pkt_free_bulk(pool, fr, (uint32_t)nf);
	pkt_free(pool, p);
}

static void test_fragment(void **state)
{
	(void)state;
	/* 1480 bytes of data, no options, MTU 1000: 976 + 504 (like Linux) */
	fragment_case(false, NULL, 0, 1480, 1000, 0, 2);
	/* with options: first 568 (600-32), then 568 (600-28 rounded), 344 */
	fragment_case(false, OPTS, 12, 1480, 600, 0, 3);
	/* the smallest MTU, with a VLAN tag */
	fragment_case(true, OPTS, 12, 1480, 68, 0, 38); /* 32, then 37 x 40 */
	/* refragmenting a middle fragment keeps its offset and MF */
	fragment_case(false, NULL, 0, 800, 300, 0x2000 | 100, 3);
	fragment_case(false, OPTS, 12, 801, 300, 100, 3); /* 264, 272, 265 */
	/* fits: one copy */
	fragment_case(false, OPTS, 12, 100, 1500, 0, 1);
	/* exactly one 8-byte multiple over */
	fragment_case(false, NULL, 0, 1480, 1496, 0, 2);
}

static void test_fragment_errors(void **state)
{
	(void)state;
	struct pkt *fr[64];
	uint32_t avail = pkt_pool_avail(pool);
	size_t n = ip4_frame(frame, false, 0x4000, A4, B4, 17, NULL, 0, 1480);
	struct pkt *p = orig_pkt(n);
	assert_int_equal(ipv4_fragment(p, 1000, pool, fr, 64), -(int)DROP_TOO_BIG); /* DF */
	pkt_free(pool, p);
	n = ip4_frame(frame, false, 0, A4, B4, 17, NULL, 0, 1480);
	p = orig_pkt(n);
	assert_int_equal(ipv4_fragment(p, 67, pool, fr, 64), -(int)DROP_TOO_BIG);
	assert_int_equal(ipv4_fragment(p, 600, pool, fr, 2), -(int)DROP_TOO_BIG); /* needs 3 */
	pkt_free(pool, p);
	/* malformed options */
	const uint8_t bad[4] = {0x83, 0, 0, 0}, bad2[4] = {1, 1, 1, 0x44};
	n = ip4_frame(frame, false, 0, A4, B4, 17, bad, 4, 1480);
	p = orig_pkt(n);
	assert_int_equal(ipv4_fragment(p, 600, pool, fr, 64), -(int)DROP_IP4_BAD_IHL);
	pkt_free(pool, p);
	n = ip4_frame(frame, false, 0, A4, B4, 17, bad2, 4, 1480);
	p = orig_pkt(n);
	assert_int_equal(ipv4_fragment(p, 600, pool, fr, 64), -(int)DROP_IP4_BAD_IHL);
	pkt_free(pool, p);
	/* offset + length beyond 65535 */
	n = ip4_frame(frame, false, 0x1fff, A4, B4, 17, NULL, 0, 1480);
	p = orig_pkt(n);
	assert_int_equal(ipv4_fragment(p, 600, pool, fr, 64), -(int)DROP_IP4_BAD_LEN);
	pkt_free(pool, p);
	/* not IPv4 / truncated */
	n = ip6_frame(frame, "fd00::1", "fd00::2", 17, 1460);
	p = orig_pkt(n);
	assert_int_equal(ipv4_fragment(p, 600, pool, fr, 64), -(int)DROP_TOO_BIG);
	p->len = 30;
	assert_true(ipv4_fragment(p, 600, pool, fr, 64) < 0);
	pkt_free(pool, p);
	assert_int_equal(pkt_pool_avail(pool), avail);
}

static void test_fragment_pool_empty(void **state)
{
	(void)state;
	struct pkt_pool *small = pkt_pool_create(3);
	assert_non_null(small);
	struct pkt *p = pkt_alloc(small);
	size_t n = ip4_frame(frame, false, 0, A4, B4, 17, NULL, 0, 1480);
	memcpy(p->data, frame, n);
	p->len = (uint32_t)n;
	struct pkt *fr[64];
	assert_int_equal(ipv4_fragment(p, 500, small, fr, 64), -(int)DROP_POOL_EMPTY);
	assert_int_equal(pkt_pool_avail(small), 2);
	pkt_free(small, p);
	pkt_pool_destroy(small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mtu_check),
		cmocka_unit_test(test_frag_needed_v4),
		cmocka_unit_test(test_no_reply_v4),
		cmocka_unit_test(test_packet_too_big_v6),
		cmocka_unit_test(test_fragment),
		cmocka_unit_test(test_fragment_errors),
		cmocka_unit_test(test_fragment_pool_empty),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

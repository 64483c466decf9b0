/* test_tunnel.c - unit tests of src/tunnel.c (Geneve/NSH encapsulation
 * between hosts: round trips, every malformed and truncated payload) and of
 * src/underlay.c (UDP sockets of a VTEP), the latter inside a fresh network
 * namespace (skipped when not root). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tunnel.h"
#include "underlay.h"
#include "steer.h"
#include "wire.h"

#define CLS DETOUR_MD_CLASS_DEFAULT
#define SP_VNI 0x00abcdef

static struct pkt_pool *pool;

static int setup(void **state)
{
	(void)state;
	pool = pkt_pool_create(1024);
	return pool ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	pkt_pool_destroy(pool);
	return 0;
}

static void fill_frame(struct pkt *p, size_t len, uint8_t seed)
{
	p->len = (uint32_t)len;
	for (size_t i = 0; i < len; i++)
		p->data[i] = (uint8_t)(seed + i * 7);
	/* service-plane pair of MACs and an IPv4 ethertype */
	const uint8_t hdr[14] = {2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 1, 0x08, 0x00};
	memcpy(p->data, hdr, MIN(len, sizeof(hdr)));
}

static void full_md(struct sp_meta *md, bool v6)
{
	memset(md, 0, sizeof(*md));
	md->spi = 0x123456;
	md->si = 254;
	md->dir = SP_DIR_REVERSE;
	md->fp_action = FP_ALLOW;
	md->fp_service = 3;
	md->is_copy = 1;
	md->ingress = 1;
	md->chain = 0x0102;
	md->guest_port = 0x0304;
	md->vni = 0x00fedcba;
	const struct mac d = {{2, 1, 2, 3, 4, 5}}, s = {{2, 6, 7, 8, 9, 10}}, r = {{2, 0xaa, 0, 0, 0, 1}};
	md->orig_dst = d;
	md->orig_src = s;
	md->ret_spmac = r;
	assert_true(ipaddr_parse(v6 ? "2001:db8::77" : "192.0.2.77", &md->ret_vtep));
}

static struct pkt *copy_payload(const struct pkt *p, size_t n)
{
	struct pkt *q = pkt_alloc(pool);
	assert_non_null(q);
	memcpy(q->data, p->data, n);
	q->len = (uint32_t)n;
	return q;
}

static void check_md_eq(const struct sp_meta *a, const struct sp_meta *b)
{
	assert_int_equal(a->spi, b->spi);
	assert_int_equal(a->si, b->si);
	assert_int_equal(a->dir, b->dir);
	assert_int_equal(a->fp_action, b->fp_action);
	assert_int_equal(a->fp_service, b->fp_service);
	assert_int_equal(a->is_copy, b->is_copy);
	assert_int_equal(a->ingress, b->ingress);
	assert_int_equal(a->chain, b->chain);
	assert_int_equal(a->guest_port, b->guest_port);
	assert_int_equal(a->vni, b->vni);
	assert_true(mac_eq(&a->orig_dst, &b->orig_dst));
	assert_true(mac_eq(&a->orig_src, &b->orig_src));
	assert_true(mac_eq(&a->ret_spmac, &b->ret_spmac));
	assert_true(ipaddr_eq(&a->ret_vtep, &b->ret_vtep));
	assert_int_equal(a->n_unknown, b->n_unknown);
	assert_memory_equal(a->unknown, b->unknown, a->n_unknown);
}

static void sp_round_trip(bool v6, bool unknown)
{
	struct pkt *p = pkt_alloc(pool);
	assert_non_null(p);
	fill_frame(p, 300, 1);
	uint8_t frame[300];
	memcpy(frame, p->data, 300);
	full_md(&p->md, v6);
	if (unknown) {
		/* a foreign non-critical TLV: class 0x0100, type 5, 4 bytes */
		const uint8_t t[8] = {0x01, 0x00, 0x05, 0x04, 0xde, 0xad, 0xbe, 0xef};
		memcpy(p->md.unknown, t, 8);
		p->md.n_unknown = 8;
	}
	struct sp_meta want = p->md;
	uint8_t *before = p->data;
	size_t elen = tunnel_sp_encap_len(&p->md);
	assert_int_equal(tunnel_encap_sp(p, SP_VNI, CLS, 0), DROP_NONE);
	assert_ptr_equal(p->data, before - elen); /* pushed in place */
	assert_int_equal(p->len, 300 + elen);
	const uint8_t *g = p->data;
	/* Geneve: ver 0, no options, O/C clear, protocol NSH, VNI */
	assert_int_equal(g[0], 0);
	assert_int_equal(g[1], 0);
	assert_int_equal(rd16(g + 2), 0x894f);
	assert_int_equal(rd24(g + 4), SP_VNI);
	assert_int_equal(g[7], 0);
	const uint8_t *n = g + 8;
	assert_int_equal(n[0] >> 6, 0);                                /* version */
	assert_int_equal((n[0] & 0x0f) << 2 | n[1] >> 6, 63);           /* TTL */
	assert_int_equal((size_t)(n[1] & 0x3f) * 4, elen - 8);         /* length */
	assert_int_equal(n[2] & 0x0f, 2);                               /* MD type */
	assert_int_equal(n[3], 3);                                      /* next proto */
	assert_int_equal(rd24(n + 4), 0x123456);
	assert_int_equal(n[7], 254);
	assert_memory_equal(p->data + elen, frame, 300);

	struct pkt *q = copy_payload(p, p->len);
	q->flags = PKT_F_PARSED;
	struct tunnel_rx rx = tunnel_decap(q, CLS);
	assert_int_equal(rx.kind, TUN_SERVICE);
	assert_int_equal(rx.why, DROP_NONE);
	assert_int_equal(rx.vni, SP_VNI);
	assert_int_equal(rx.ttl, 62);
	assert_true(q->flags & PKT_F_HAS_MD);
	assert_false(q->flags & PKT_F_PARSED);
	assert_int_equal(q->len, 300);
	assert_ptr_equal(q->data, q->buf + PKT_HEADROOM + elen); /* a pull */
	assert_memory_equal(q->data, frame, 300);
	check_md_eq(&q->md, &want);
	pkt_free(pool, p);
	pkt_free(pool, q);
}

static void test_sp_round_trip_v4(void **state)
{
	(void)state;
	sp_round_trip(false, false);
}

static void test_sp_round_trip_v6(void **state)
{
	(void)state;
	sp_round_trip(true, false);
}

static void test_sp_round_trip_unknown_tlv(void **state)
{
	(void)state;
	sp_round_trip(true, true);
	sp_round_trip(false, true);
}

static void test_sp_ttl(void **state)
{
	(void)state;
	const uint8_t ttls[] = {63, 40, 2, 5};
	for (size_t i = 0; i < ARRAY_SIZE(ttls); i++) {
		struct pkt *p = pkt_alloc(pool);
		fill_frame(p, 64, 3);
		full_md(&p->md, false);
		assert_int_equal(tunnel_encap_sp(p, SP_VNI, CLS, ttls[i]), DROP_NONE);
		struct tunnel_rx rx = tunnel_decap(p, CLS);
		assert_int_equal(rx.kind, TUN_SERVICE);
		assert_int_equal(rx.ttl, ttls[i] - 1);
		pkt_free(pool, p);
	}
	/* TTL 1 arrives: 0 after this hop's decrement, not forwarded */
	struct pkt *p = pkt_alloc(pool);
	fill_frame(p, 64, 3);
	full_md(&p->md, false);
	assert_int_equal(tunnel_encap_sp(p, SP_VNI, CLS, 1), DROP_NONE);
	uint8_t *d = p->data;
	uint32_t len = p->len;
	struct tunnel_rx rx = tunnel_decap(p, CLS);
	assert_int_equal(rx.kind, TUN_DROP);
	assert_int_equal(rx.why, DROP_NSH_TTL);
	assert_ptr_equal(p->data, d);
	assert_int_equal(p->len, len);
	assert_false(p->flags & PKT_F_HAS_MD);
	/* a chain of hops: TTL runs out after 62 re-encapsulations */
	fill_frame(p, 64, 3);
	p->data = p->buf + PKT_HEADROOM;
	fill_frame(p, 64, 3);
	full_md(&p->md, false);
	uint8_t ttl = 0;
	int hops = 0;
	for (;;) {
		assert_int_equal(tunnel_encap_sp(p, SP_VNI, CLS, ttl), DROP_NONE);
		rx = tunnel_decap(p, CLS);
		if (rx.kind == TUN_DROP)
			break;
		ttl = rx.ttl;
		hops++;
		assert_true(hops < 100);
	}
	assert_int_equal(rx.why, DROP_NSH_TTL);
	assert_int_equal(hops, 62);
	pkt_free(pool, p);
}

static void test_guest_round_trip(void **state)
{
	(void)state;
	struct pkt *p = pkt_alloc(pool);
	fill_frame(p, 1514, 9);
	uint8_t frame[1514];
	memcpy(frame, p->data, 1514);
	uint8_t *before = p->data;
	assert_int_equal(tunnel_encap_guest(p, 0x000a0b0c), DROP_NONE);
	assert_ptr_equal(p->data, before - 8);
	const uint8_t hdr[8] = {0, 0, 0x65, 0x58, 0x0a, 0x0b, 0x0c, 0};
	assert_memory_equal(p->data, hdr, 8);
	p->flags = PKT_F_HAS_MD | PKT_F_PARSED;
	struct tunnel_rx rx = tunnel_decap(p, CLS);
	assert_int_equal(rx.kind, TUN_GUEST);
	assert_int_equal(rx.vni, 0x000a0b0c);
	assert_int_equal(p->flags & (PKT_F_HAS_MD | PKT_F_PARSED), 0);
	assert_ptr_equal(p->data, before);
	assert_int_equal(p->len, 1514);
	assert_memory_equal(p->data, frame, 1514);
	pkt_free(pool, p);
}

/* Non-critical Geneve options are skipped. */
static void test_geneve_options_skipped(void **state)
{
	(void)state;
	struct pkt *p = pkt_alloc(pool);
	const uint8_t g[16] = {0x02, 0x00, 0x65, 0x58, 0, 0, 7, 0, /* opt len 2 words */
			       0x01, 0x02, 0x03, 0x01, 1, 2, 3, 4}; /* class 0x0102 type 3, 1 word */
	memcpy(p->data, g, 16);
	memset(p->data + 16, 0x11, 60);
	p->len = 76;
	struct tunnel_rx rx = tunnel_decap(p, CLS);
	assert_int_equal(rx.kind, TUN_GUEST);
	assert_int_equal(rx.vni, 7);
	assert_int_equal(p->len, 60);
	assert_int_equal(p->data[0], 0x11);
	pkt_free(pool, p);
}

/* Encapsulate a service-plane frame, apply `mutate` to the payload, expect
 * the decap to drop for `why` and leave the packet untouched. */
static void expect_drop(void (*mutate)(uint8_t *g, uint32_t *len), enum drop_reason why, bool guest)
{
	struct pkt *p = pkt_alloc(pool);
	fill_frame(p, 80, 5);
	full_md(&p->md, false);
	if (guest)
		assert_int_equal(tunnel_encap_guest(p, 42), DROP_NONE);
	else
		assert_int_equal(tunnel_encap_sp(p, SP_VNI, CLS, 0), DROP_NONE);
	mutate(p->data, &p->len);
	uint8_t *d = p->data;
	uint32_t len = p->len;
	p->flags = PKT_F_HAS_MD;
	struct tunnel_rx rx = tunnel_decap(p, CLS);
	assert_int_equal(rx.kind, TUN_DROP);
	assert_int_equal(rx.why, why);
	assert_ptr_equal(p->data, d);
	assert_int_equal(p->len, len);
	assert_false(p->flags & PKT_F_HAS_MD);
	pkt_free(pool, p);
}

static void m_gen_ver(uint8_t *g, uint32_t *len) { (void)len; g[0] |= 0x40; }
static void m_gen_proto(uint8_t *g, uint32_t *len) { (void)len; wr16(g + 2, 0x0800); }
static void m_gen_crit_bit(uint8_t *g, uint32_t *len) { (void)len; g[1] |= 0x40; }
static void m_gen_oam(uint8_t *g, uint32_t *len) { (void)len; g[1] |= 0x80; }
static void m_gen_optlen(uint8_t *g, uint32_t *len) { g[0] = 0x3f; *len = 100; }
static void m_gen_crit_opt(uint8_t *g, uint32_t *len)
{
	(void)len;
	/* turn the first NSH word into a critical option of length 1 word */
	g[0] = 0x02;
	g[8] = 0x01;
	g[9] = 0x02;
	g[10] = 0x80;
	g[11] = 0x01;
}
static void m_nsh_ver(uint8_t *g, uint32_t *len) { (void)len; g[8] |= 0x40; }
static void m_nsh_md1(uint8_t *g, uint32_t *len) { (void)len; g[8 + 1] = (uint8_t)((g[9] & 0xc0) | 6); g[10] = 1; }
static void m_nsh_mdx(uint8_t *g, uint32_t *len) { (void)len; g[10] = 0x0f; }
static void m_nsh_np(uint8_t *g, uint32_t *len) { (void)len; g[11] = NSH_NP_IPV4; }
static void m_nsh_oam(uint8_t *g, uint32_t *len) { (void)len; g[8] |= 0x20; }
static void m_nsh_ttl0(uint8_t *g, uint32_t *len) { (void)len; g[8] &= 0xf0; g[9] &= 0x3f; }
static void m_nsh_len_small(uint8_t *g, uint32_t *len) { (void)len; g[9] = (uint8_t)((g[9] & 0xc0) | 1); }
static void m_nsh_len_big(uint8_t *g, uint32_t *len) { g[9] |= 0x3f; *len = 8 + 100; }
static void m_nsh_crit_tlv(uint8_t *g, uint32_t *len)
{
	(void)len;
	/* first TLV (chain/dir) becomes an unknown critical class */
	wr16(g + 16, 0x0200);
	g[18] |= 0x80;
}
static void m_nsh_bad_tlv(uint8_t *g, uint32_t *len) { (void)len; g[19] = 0x7f; }
static void m_sp_short_frame(uint8_t *g, uint32_t *len)
{
	size_t hdr = 8 + (size_t)(g[9] & 0x3f) * 4;
	*len = (uint32_t)(hdr + 13);
}
static void m_guest_short_frame(uint8_t *g, uint32_t *len) { (void)g; *len = 8 + 13; }

static void test_malformed(void **state)
{
	(void)state;
	expect_drop(m_gen_ver, DROP_GENEVE_BAD_VER, false);
	expect_drop(m_gen_proto, DROP_GENEVE_BAD_PROTO, false);
	expect_drop(m_gen_crit_bit, DROP_GENEVE_CRIT_OPT, true);
	expect_drop(m_gen_oam, TUNNEL_DROP_OAM, true);
	expect_drop(m_gen_optlen, DROP_GENEVE_TRUNC, true);
	expect_drop(m_gen_crit_opt, DROP_GENEVE_CRIT_OPT, false);
	expect_drop(m_nsh_ver, DROP_NSH_BAD_VER, false);
	expect_drop(m_nsh_md1, DROP_NSH_BAD_MDTYPE, false);
	expect_drop(m_nsh_mdx, DROP_NSH_BAD_MDTYPE, false);
	expect_drop(m_nsh_np, TUNNEL_DROP_NSH_NP, false);
	expect_drop(m_nsh_oam, TUNNEL_DROP_OAM, false);
	expect_drop(m_nsh_ttl0, DROP_NSH_TTL, false);
	expect_drop(m_nsh_len_small, DROP_NSH_BAD_LEN, false);
	expect_drop(m_nsh_len_big, DROP_NSH_TRUNC, false);
	expect_drop(m_nsh_crit_tlv, DROP_NSH_CRIT_TLV, false);
	expect_drop(m_nsh_bad_tlv, DROP_NSH_BAD_TLV, false);
	expect_drop(m_sp_short_frame, DROP_ETH_TRUNC, false);
	expect_drop(m_guest_short_frame, DROP_ETH_TRUNC, true);
}

/* Every prefix of a valid payload: dropped (never read past its end) until
 * it holds the headers and an Ethernet header. */
static void truncations(bool guest, bool v6)
{
	struct pkt *p = pkt_alloc(pool);
	fill_frame(p, 60, 8);
	full_md(&p->md, v6);
	size_t hdr = guest ? 8 : tunnel_sp_encap_len(&p->md);
	if (guest)
		assert_int_equal(tunnel_encap_guest(p, 42), DROP_NONE);
	else
		assert_int_equal(tunnel_encap_sp(p, SP_VNI, CLS, 0), DROP_NONE);
	for (size_t k = 0; k <= p->len; k++) {
		struct pkt *q = copy_payload(p, k);
		struct tunnel_rx rx = tunnel_decap(q, CLS);
		if (k < hdr + 14) {
			assert_int_equal(rx.kind, TUN_DROP);
			assert_int_not_equal(rx.why, DROP_NONE);
			assert_int_equal(q->len, k);
		} else {
			assert_int_equal(rx.kind, guest ? TUN_GUEST : TUN_SERVICE);
			assert_int_equal(q->len, k - hdr);
		}
		pkt_free(pool, q);
	}
	pkt_free(pool, p);
}

static void test_truncated(void **state)
{
	(void)state;
	truncations(true, false);
	truncations(false, false);
	truncations(false, true);
}

static void test_encap_headroom(void **state)
{
	(void)state;
	/* headroom short: the frame is moved, content intact */
	struct pkt *p = pkt_alloc(pool);
	p->data = p->buf + 10;
	fill_frame(p, 500, 2);
	uint8_t frame[500];
	memcpy(frame, p->data, 500);
	full_md(&p->md, true);
	size_t elen = tunnel_sp_encap_len(&p->md);
	assert_int_equal(tunnel_encap_sp(p, SP_VNI, CLS, 0), DROP_NONE);
	assert_true(p->data >= p->buf);
	assert_int_equal(p->len, 500 + elen);
	assert_memory_equal(p->data + elen, frame, 500);
	struct tunnel_rx rx = tunnel_decap(p, CLS);
	assert_int_equal(rx.kind, TUN_SERVICE);
	assert_memory_equal(p->data, frame, 500);
	/* buffer full: refused, packet unchanged */
	p->data = p->buf;
	p->len = (uint32_t)sizeof(p->buf) - 4;
	assert_int_equal(tunnel_encap_guest(p, 1), DROP_TOO_BIG);
	assert_ptr_equal(p->data, p->buf);
	assert_int_equal(p->len, sizeof(p->buf) - 4);
	assert_int_equal(tunnel_encap_sp(p, SP_VNI, CLS, 0), DROP_TOO_BIG);
	assert_ptr_equal(p->data, p->buf);
	/* just enough room */
	p->data = p->buf;
	p->len = (uint32_t)sizeof(p->buf) - 8;
	assert_int_equal(tunnel_encap_guest(p, 1), DROP_NONE);
	assert_ptr_equal(p->data, p->buf);
	pkt_free(pool, p);
}

static void test_src_port(void **state)
{
	(void)state;
	static uint8_t seen[16384];
	memset(seen, 0, sizeof(seen));
	unsigned distinct = 0;
	for (uint64_t i = 0; i < 20000; i++) {
		uint16_t sp = tunnel_src_port(hash_mix64(i));
		assert_true(sp >= 49152);
		if (!seen[sp - 49152]++)
			distinct++;
	}
	/* 20000 draws over 16384 ports: ~11000 distinct expected */
	assert_true(distinct > 9000);
	assert_int_equal(tunnel_src_port(0x1234), tunnel_src_port(0x1234));
	assert_true(tunnel_src_port(UINT64_MAX) >= 49152);
}

static void test_inner_mtu(void **state)
{
	(void)state;
	assert_int_equal(tunnel_inner_mtu(1500, false, TUNNEL_GUEST_ENCAP, 14), 1450);
	assert_int_equal(tunnel_inner_mtu(1500, true, TUNNEL_GUEST_ENCAP, 14), 1430);
	struct sp_meta md;
	full_md(&md, false);
	size_t e = tunnel_sp_encap_len(&md);
	assert_int_equal(e, 8 + 8 + 8 + 16 + 16 + 12 + 8);
	assert_int_equal(tunnel_inner_mtu(1500, false, e, 14), 1500 - 28 - e - 14);
	assert_int_equal(tunnel_inner_mtu(60, true, e, 14), 0);
}

/* ---- underlay, in a network namespace of our own ---- */

static int netns_state; /* 0 untried, 1 ready, -1 unavailable */

static bool netns_ready(void)
{
	if (netns_state)
		return netns_state > 0;
	netns_state = -1;
	if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0)
		return false;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return false;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return false;
	close(fd);
	if (system("ip -6 addr add fd00::1/128 dev lo nodad && ip -6 addr add fd00::2/128 dev lo nodad "
		   "&& ip -6 addr add fd00::9/128 dev lo nodad") != 0)
		return false;
	netns_state = 1;
	return true;
}

#define NEED_NETNS()                                                                  \
	do {                                                                          \
		if (!netns_ready()) {                                                 \
			print_message("underlay tests need root and netns: skipped\n"); \
			skip();                                                       \
		}                                                                     \
	} while (0)

static struct ipaddr A(const char *s)
{
	struct ipaddr a;
	assert_true(ipaddr_parse(s, &a));
	return a;
}

static struct underlay *open_u(const char *addr)
{
	char err[200] = "";
	struct ipaddr a = A(addr);
	struct underlay *u = underlay_open(&a, GENEVE_PORT, err, sizeof(err));
	if (!u)
		fail_msg("underlay_open %s: %s", addr, err);
	return u;
}

static void wait_readable(int fd)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	assert_int_equal(poll(&pf, 1, 2000), 1);
}

/* Receive exactly `want` datagrams (they are already queued on loopback). */
static uint32_t rx_all(struct underlay *u, struct pkt **pk, struct ipaddr *from, uint32_t want)
{
	uint32_t got = 0;
	while (got < want) {
		wait_readable(underlay_fd(u));
		uint32_t n = underlay_rx_burst(u, pool, pk + got, from + got, MIN(want - got, 64u));
		assert_true(n > 0);
		got += n;
	}
	return got;
}

/* n packets of 8 flows, payload = flow, sequence, filler. */
static void make_burst(struct pkt **pk, uint64_t *hash, uint32_t n, size_t size)
{
	for (uint32_t i = 0; i < n; i++) {
		pk[i] = pkt_alloc(pool);
		assert_non_null(pk[i]);
		pk[i]->len = (uint32_t)size;
		memset(pk[i]->data, 0x5a, size);
		pk[i]->data[0] = (uint8_t)(i % 8);
		pk[i]->data[1] = (uint8_t)i;
		hash[i] = hash_mix64(i % 8 + 1000);
	}
}

static void exchange(const char *a1, const char *a2)
{
	struct underlay *u1 = open_u(a1), *u2 = open_u(a2);
	struct ipaddr ip1 = A(a1), ip2 = A(a2);
	assert_true(underlay_set_peers(u1, &ip2, 1, NULL, NULL, 0));
	assert_true(underlay_set_peers(u2, &ip1, 1, NULL, NULL, 0));
	assert_true(underlay_known_vtep(u2, &ip1));
	assert_false(underlay_known_vtep(u2, &ip2));

	struct pkt *pk[64], *rx[64];
	uint64_t hash[64];
	struct ipaddr dst[64], from[64];
	enum drop_reason res[64];
	make_burst(pk, hash, 64, 200);
	for (int i = 0; i < 64; i++)
		dst[i] = ip2;
	assert_int_equal(underlay_tx_burst(u1, pk, dst, hash, 64, res), 64);
	for (int i = 0; i < 64; i++)
		assert_int_equal(res[i], DROP_NONE);
	assert_int_equal(rx_all(u2, rx, from, 64), 64);
	int last_seq[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
	uint64_t seen = 0;
	for (int i = 0; i < 64; i++) {
		assert_true(ipaddr_eq(&from[i], &ip1));
		assert_int_equal(rx[i]->len, 200);
		assert_ptr_equal(rx[i]->data, rx[i]->buf + PKT_HEADROOM);
		uint8_t f = rx[i]->data[0], s = rx[i]->data[1];
		assert_true(f < 8 && s < 64);
		assert_true(s > last_seq[f]); /* in order within a flow */
		last_seq[f] = s;
		seen |= 1ull << s;
		assert_int_equal(rx[i]->data[199], 0x5a);
	}
	assert_true(seen == UINT64_MAX);
	pkt_free_bulk(pool, rx, 64);

	struct underlay_stats st;
	struct underlay_peer_stats ps;
	underlay_get_stats(u1, &st);
	assert_int_equal(st.tx_pkts, 64);
	assert_int_equal(st.tx_bytes, 64 * 200);
	uint64_t sum = 0;
	for (int s = 0; s < UNDERLAY_TX_SOCKS; s++)
		sum += st.tx_sock_pkts[s];
	assert_int_equal(sum, 64);
	assert_int_equal(underlay_n_peers(u1), 1);
	assert_true(underlay_peer_stats(u1, 0, &ps));
	assert_true(ipaddr_eq(&ps.vtep, &ip2));
	assert_int_equal(ps.tx_pkts, 64);
	assert_int_equal(ps.tx_bytes, 64 * 200);
	assert_false(underlay_peer_stats(u1, 1, &ps));
	underlay_get_stats(u2, &st);
	assert_int_equal(st.rx_pkts, 64);
	assert_int_equal(st.rx_unknown_vtep, 0);
	assert_true(underlay_peer_stats(u2, 0, &ps));
	assert_int_equal(ps.rx_pkts, 64);
	assert_int_equal(ps.rx_bytes, 64 * 200);
	underlay_peer_rx_drop(u2, &ip1);
	underlay_peer_rx_drop(u2, &ip2); /* not a peer: ignored */
	assert_true(underlay_peer_stats(u2, 0, &ps));
	assert_int_equal(ps.rx_drops, 1);

	/* wrong address family: refused per packet */
	struct ipaddr other = A(ipaddr_is_v4(&ip1) ? "fd00::2" : "127.0.0.2");
	assert_int_equal(underlay_tx_burst(u1, pk, &other, NULL, 1, res), 0);
	assert_int_equal(res[0], DROP_TX_ERROR);
	underlay_get_stats(u1, &st);
	assert_int_equal(st.tx_error, 1);

	/* an empty burst, and nothing waiting */
	assert_int_equal(underlay_tx_burst(u1, pk, dst, NULL, 0, NULL), 0);
	assert_int_equal(underlay_rx_burst(u2, pool, rx, from, 64), 0);
	pkt_free_bulk(pool, pk, 64);
	underlay_close(u1);
	underlay_close(u2);
}

static void test_underlay_v4(void **state)
{
	(void)state;
	NEED_NETNS();
	exchange("127.0.0.1", "127.0.0.2");
}

static void test_underlay_v6(void **state)
{
	(void)state;
	NEED_NETNS();
	exchange("fd00::1", "fd00::2");
}

static int plain_sock(const char *addr, uint16_t port)
{
	struct ipaddr a = A(addr);
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	socklen_t sl;
	int fd;
	if (ipaddr_is_v4(&a)) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, a.b + 12, 4);
		sl = sizeof(*s4);
		fd = socket(AF_INET, SOCK_DGRAM, 0);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, a.b, 16);
		sl = sizeof(*s6);
		fd = socket(AF_INET6, SOCK_DGRAM, 0);
	}
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, sl), 0);
	return fd;
}

static void send_to(int fd, const char *addr, uint16_t port, const void *buf, size_t len)
{
	struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(port)};
	assert_int_equal(inet_pton(AF_INET, addr, &s4.sin_addr), 1);
	assert_int_equal(sendto(fd, buf, len, 0, (struct sockaddr *)&s4, sizeof(s4)), (ssize_t)len);
}

/* Source ports: one per flow hash, spread over the sockets. */
static void test_underlay_spreading(void **state)
{
	(void)state;
	NEED_NETNS();
	struct underlay *u1 = open_u("127.0.0.1");
	int sink = plain_sock("127.0.0.3", GENEVE_PORT);
	struct ipaddr dst = A("127.0.0.3");
	for (uint64_t s = 0; s < 4096; s++) {
		uint16_t sp = underlay_tx_port(u1, s);
		assert_true(sp != 0 && sp != GENEVE_PORT);
	}
	struct pkt *pk[64];
	uint64_t hash[64];
	struct ipaddr dsts[64];
	unsigned distinct = 0;
	uint16_t seen[64];
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 64; i++) {
			pk[i] = pkt_alloc(pool);
			pk[i]->len = 8;
			memset(pk[i]->data, 0, 8);
			wr16(pk[i]->data, (uint16_t)(round * 64 + i));
			pk[i]->hash = (uint32_t)hash_mix64((uint64_t)(round * 64 + i));
			hash[i] = pk[i]->hash;
			dsts[i] = dst;
		}
		/* flow_hash NULL: taken from pkt->hash */
		assert_int_equal(underlay_tx_burst(u1, pk, dsts, NULL, 64, NULL), 64);
		for (int i = 0; i < 64; i++) {
			uint8_t buf[64];
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			ssize_t n = recvfrom(sink, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
			assert_int_equal(n, 8);
			assert_int_equal(ntohl(from.sin_addr.s_addr), 0x7f000001);
			uint16_t id = rd16(buf);
			assert_true(id / 64 == round);
			uint16_t sp = ntohs(from.sin_port);
			assert_int_equal(sp, underlay_tx_port(u1, hash[id % 64]));
			bool dup = false;
			for (unsigned k = 0; k < distinct; k++)
				dup |= seen[k] == sp;
			if (!dup && distinct < 64)
				seen[distinct++] = sp;
		}
		pkt_free_bulk(pool, pk, 64);
	}
	/* 256 flows over 16 sockets: all of them used */
	assert_int_equal(distinct, UNDERLAY_TX_SOCKS);
	close(sink);
	underlay_close(u1);
}

/* Two workers' underlays on one VTEP (a SO_REUSEPORT group): the eBPF
 * program gives every datagram, guest plane or service plane, to the
 * worker steer.h names as the owner of its inner flow. */
static void test_underlay_workers(void **state)
{
	(void)state;
	NEED_NETNS();
	char err[200] = "";
	struct ipaddr here = A("127.0.0.3"), peer = A("127.0.0.1");
	struct underlay *w[2];
	for (int i = 0; i < 2; i++) {
		w[i] = underlay_open_shared(&here, GENEVE_PORT, 2, err, sizeof(err));
		if (!w[i])
			fail_msg("underlay_open_shared: %s", err);
		assert_true(underlay_set_peers(w[i], &peer, 1, NULL, NULL, 0));
	}
	assert_true(underlay_steered(w[0]));
	struct underlay *tx = open_u("127.0.0.1");
	struct steer *s = steer_create(2, 16);
	enum { N = 64 };
	struct pkt *pk[N];
	struct ipaddr dst[N];
	for (uint32_t i = 0; i < N; i++) {
		struct pkt *p = pk[i] = pkt_alloc(pool);
		fill_frame(p, 60, (uint8_t)i);
		uint8_t *ip = p->data + 14;
		memset(ip, 0, 28);
		ip[0] = 0x45;
		wr16(ip + 2, 46);
		ip[8] = 64;
		ip[9] = 17;
		ip[12] = 10, ip[15] = 1, ip[16] = 10, ip[19] = 2;
		ipv4_set_csum(ip);
		wr16(ip + 20, (uint16_t)(30000 + i * 13));
		wr16(ip + 22, 53);
		wr16(ip + 24, 26);
		if (i % 2) {
			assert_int_equal(tunnel_encap_guest(p, 100), DROP_NONE);
		} else {
			full_md(&p->md, false);
			assert_int_equal(tunnel_encap_sp(p, SP_VNI, CLS, 0), DROP_NONE);
		}
		p->hash = (uint32_t)hash_mix64(i);
		dst[i] = here;
	}
	assert_int_equal(underlay_tx_burst(tx, pk, dst, NULL, N, NULL), N);
	pkt_free_bulk(pool, pk, N);
	uint32_t got = 0, right = 0, per[2] = {0, 0};
	for (int tries = 0; got < N && tries < 30; tries++) {
		struct pollfd pf[2] = {{.fd = underlay_fd(w[0]), .events = POLLIN}, {.fd = underlay_fd(w[1]), .events = POLLIN}};
		(void)poll(pf, 2, 100);
		for (int k = 0; k < 2; k++) {
			struct pkt *rx[N];
			struct ipaddr from[N];
			uint32_t n = underlay_rx_burst(w[k], pool, rx, from, N);
			for (uint32_t i = 0; i < n; i++) {
				right += steer_owner(s, steer_hash(rx[i]->data, rx[i]->len, true)) == k;
				per[k]++;
			}
			got += n;
			pkt_free_bulk(pool, rx, n);
		}
	}
	assert_int_equal(got, N);
	assert_int_equal(right, N); /* each on its owner's socket */
	assert_true(per[0] > 0 && per[1] > 0);
	steer_destroy(s);
	underlay_close(tx);
	underlay_close(w[1]);
	underlay_close(w[0]);
}

/* Geneve from an address that is not a known VTEP is dropped and counted;
 * the same datagram from a VTEP is accepted. */
static void test_underlay_unknown_vtep(void **state)
{
	(void)state;
	NEED_NETNS();
	struct underlay *u2 = open_u("127.0.0.2");
	struct ipaddr peers[3] = {A("127.0.0.1"), A("127.0.0.1"), A("127.0.0.5")};
	assert_true(underlay_set_peers(u2, peers, 3, NULL, NULL, 0));
	assert_int_equal(underlay_n_peers(u2), 2); /* duplicate merged */
	int intruder = plain_sock("127.0.0.9", 0);
	int friend = plain_sock("127.0.0.1", 0);
	const uint8_t payload[22] = {0, 0, 0x65, 0x58, 0, 0, 1, 0};
	struct pkt *rx[64];
	struct ipaddr from[64];
	struct underlay_stats st;

	send_to(friend, "127.0.0.2", GENEVE_PORT, payload, sizeof(payload));
	assert_int_equal(rx_all(u2, rx, from, 1), 1);
	pkt_free(pool, rx[0]);

	uint32_t avail = pkt_pool_avail(pool);
	send_to(intruder, "127.0.0.2", GENEVE_PORT, payload, sizeof(payload));
	wait_readable(underlay_fd(u2));
	assert_int_equal(underlay_rx_burst(u2, pool, rx, from, 64), 0);
	assert_int_equal(pkt_pool_avail(pool), avail); /* buffers returned */
	underlay_get_stats(u2, &st);
	assert_int_equal(st.rx_unknown_vtep, 1);
	assert_int_equal(st.rx_pkts, 1);
	struct ipaddr intr = A("127.0.0.9");
	assert_true(ipaddr_eq(&st.last_unknown, &intr));

	/* now the intruder becomes a VTEP: the same datagram passes; the
	 * counters of the remaining peer are kept */
	struct ipaddr np[2] = {A("127.0.0.9"), A("127.0.0.1")};
	assert_true(underlay_set_peers(u2, np, 2, NULL, NULL, 0));
	send_to(intruder, "127.0.0.2", GENEVE_PORT, payload, sizeof(payload));
	assert_int_equal(rx_all(u2, rx, from, 1), 1);
	assert_true(ipaddr_eq(&from[0], &np[0]));
	assert_int_equal(rx[0]->len, sizeof(payload));
	assert_memory_equal(rx[0]->data, payload, sizeof(payload));
	pkt_free(pool, rx[0]);
	struct underlay_peer_stats ps;
	assert_true(underlay_peer_stats(u2, 1, &ps));
	assert_true(ipaddr_eq(&ps.vtep, &np[1]));
	assert_int_equal(ps.rx_pkts, 1);
	assert_true(underlay_peer_stats(u2, 0, &ps));
	assert_int_equal(ps.rx_pkts, 1);

	/* a datagram longer than a buffer is dropped, not cut */
	static uint8_t big[PKT_DATA_ROOM + 100];
	send_to(friend, "127.0.0.2", GENEVE_PORT, big, sizeof(big));
	wait_readable(underlay_fd(u2));
	assert_int_equal(underlay_rx_burst(u2, pool, rx, from, 64), 0);
	underlay_get_stats(u2, &st);
	assert_int_equal(st.rx_trunc, 1);

	/* no peers at all: everything is unknown */
	assert_true(underlay_set_peers(u2, NULL, 0, NULL, NULL, 0));
	send_to(friend, "127.0.0.2", GENEVE_PORT, payload, sizeof(payload));
	wait_readable(underlay_fd(u2));
	assert_int_equal(underlay_rx_burst(u2, pool, rx, from, 64), 0);
	underlay_get_stats(u2, &st);
	assert_int_equal(st.rx_unknown_vtep, 2);
	close(intruder);
	close(friend);
	underlay_close(u2);
}

/* Outer packets are never fragmented: a payload over the MTU fails with
 * DROP_TOO_BIG instead of leaving as IP fragments. */
static void test_underlay_dont_fragment(void **state)
{
	(void)state;
	NEED_NETNS();
	assert_int_equal(system("ip link set lo mtu 1280"), 0);
	struct underlay *u1 = open_u("127.0.0.1"), *u6 = open_u("fd00::1");
	struct pkt *pk[2];
	uint64_t hash[2];
	make_burst(pk, hash, 2, 1200);
	pk[1]->len = 1300;
	struct ipaddr d4[2] = {A("127.0.0.2"), A("127.0.0.2")}, d6[2] = {A("fd00::2"), A("fd00::2")};
	enum drop_reason res[2];
	assert_int_equal(underlay_tx_burst(u1, pk, d4, hash, 2, res), 1);
	assert_int_equal(res[0], DROP_NONE);
	assert_int_equal(res[1], DROP_TOO_BIG);
	assert_int_equal(underlay_tx_burst(u6, pk, d6, hash, 2, res), 1);
	assert_int_equal(res[0], DROP_NONE);
	assert_int_equal(res[1], DROP_TOO_BIG);
	struct underlay_stats st;
	underlay_get_stats(u6, &st);
	assert_int_equal(st.tx_too_big, 1);
	pkt_free_bulk(pool, pk, 2);
	underlay_close(u1);
	underlay_close(u6);
	assert_int_equal(system("ip link set lo mtu 65536"), 0);
}

static void test_underlay_open_errors(void **state)
{
	(void)state;
	NEED_NETNS();
	char err[200] = "";
	struct ipaddr a = A("192.0.2.1"); /* not an address of this namespace */
	assert_null(underlay_open(&a, GENEVE_PORT, err, sizeof(err)));
	assert_non_null(strstr(err, "192.0.2.1"));
	struct underlay *u = open_u("127.0.0.1");
	struct ipaddr lo = A("127.0.0.1");
	err[0] = 0;
	assert_null(underlay_open(&lo, GENEVE_PORT, err, sizeof(err))); /* port taken */
	assert_non_null(strstr(err, "in use"));
	underlay_close(u);
}

/* Poll the uplink until `want` datagrams came in (2 s at most). */
static uint32_t rx_uplink(struct underlay *u, struct pkt **pk, struct ipaddr *from, uint32_t want)
{
	uint32_t got = 0;
	for (int tries = 0; got < want && tries < 200; tries++) {
		struct pollfd pf = {.fd = underlay_uplink_fd(u), .events = POLLIN};
		(void)poll(&pf, 1, 10);
		got += underlay_rx_burst(u, pool, pk + got, from + got, MIN(want - got, 64u));
	}
	return got;
}

/* Geneve through an AF_XDP uplink: the sockets until the next hop is
 * known, then the uplink with outer headers written by the underlay, in
 * both directions, flows in order; too big refused. */
static void test_underlay_uplink(void **state)
{
	(void)state;
	NEED_NETNS();
	assert_int_equal(system("ip link add ula type veth peer name ulb && ip link set ula address 02:00:00:00:08:01 "
				"&& ip link set ulb address 02:00:00:00:08:02 && ip addr add 10.8.0.1/24 dev ula "
				"&& ip addr add 10.8.0.2/24 dev ulb && ip link set ula up && ip link set ulb up"),
			 0);
	struct underlay *u1 = open_u("10.8.0.1"), *u2 = open_u("10.8.0.2");
	struct ipaddr ip1 = A("10.8.0.1"), ip2 = A("10.8.0.2");
	char err[256] = "";
	if (!underlay_attach_uplink(u1, "ula", 0, 0, err, sizeof(err))) {
		underlay_close(u1);
		underlay_close(u2);
		assert_int_equal(system("ip link del ula"), 0);
		print_message("no AF_XDP (%s): skipped\n", err);
		skip();
	}
	assert_true(underlay_attach_uplink(u2, "ulb", 0, 0, err, sizeof(err)));
	assert_string_equal(underlay_uplink_name(u1), "ula");
	assert_true(underlay_uplink_fd(u1) >= 0);
	_Atomic uint64_t nh1[1] = {0}, nh2[1] = {0};
	assert_true(underlay_set_peers(u1, &ip2, 1, nh1, err, sizeof(err)));
	assert_true(underlay_set_peers(u2, &ip1, 1, nh2, err, sizeof(err)));

	struct pkt *pk[64], *rx[64];
	uint64_t hash[64];
	struct ipaddr dst[64], from[64];
	enum drop_reason res[64];
	for (int i = 0; i < 64; i++)
		dst[i] = ip2;
	/* next hop unknown: the sockets */
	make_burst(pk, hash, 16, 200);
	assert_int_equal(underlay_tx_burst(u1, pk, dst, hash, 16, res), 16);
	pkt_free_bulk(pool, pk, 16);
	assert_int_equal(rx_all(u2, rx, from, 16), 16);
	pkt_free_bulk(pool, rx, 16);
	struct underlay_stats st;
	underlay_get_stats(u1, &st);
	assert_int_equal(st.up_tx_no_nh, 16);
	assert_int_equal(st.up_tx_pkts, 0);

	/* known: the uplink */
	const uint8_t m1[6] = {2, 0, 0, 0, 8, 1}, m2[6] = {2, 0, 0, 0, 8, 2};
	atomic_store(&nh1[0], underlay_nh_word(m2));
	atomic_store(&nh2[0], underlay_nh_word(m1));
	make_burst(pk, hash, 64, 200);
	assert_int_equal(underlay_tx_burst(u1, pk, dst, hash, 64, res), 64);
	for (int i = 0; i < 64; i++)
		assert_int_equal(res[i], DROP_NONE);
	pkt_free_bulk(pool, pk, 64);
	assert_int_equal(rx_uplink(u2, rx, from, 64), 64);
	int last_seq[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
	for (int i = 0; i < 64; i++) {
		assert_true(ipaddr_eq(&from[i], &ip1));
		assert_int_equal(rx[i]->len, 200);
		assert_int_equal(rx[i]->data[100], 0x5a);
		int f = rx[i]->data[0] % 8, seq = rx[i]->data[1];
		assert_true(seq > last_seq[f]);
		last_seq[f] = seq;
	}
	pkt_free_bulk(pool, rx, 64);
	underlay_get_stats(u1, &st);
	assert_int_equal(st.up_tx_pkts, 64);
	assert_int_equal(st.tx_pkts, 80);
	underlay_get_stats(u2, &st);
	assert_int_equal(st.up_rx_pkts, 64);
	assert_int_equal(st.rx_pkts, 80);
	assert_int_equal(st.up_rx_bad, 0);
	struct underlay_peer_stats ps = {0};
	assert_true(underlay_peer_stats(u2, 0, &ps));
	assert_int_equal(ps.up_rx_pkts, 64);

	/* the other way */
	make_burst(pk, hash, 8, 100);
	for (int i = 0; i < 8; i++)
		dst[i] = ip1;
	assert_int_equal(underlay_tx_burst(u2, pk, dst, hash, 8, res), 8);
	pkt_free_bulk(pool, pk, 8);
	assert_int_equal(rx_uplink(u1, rx, from, 8), 8);
	assert_true(ipaddr_eq(&from[0], &ip2));
	pkt_free_bulk(pool, rx, 8);

	/* an outer packet over the uplink's MTU (1500) is refused */
	make_burst(pk, hash, 1, 1500 - 28 + 1);
	assert_int_equal(underlay_tx_burst(u1, pk, &ip1 + 0, hash, 1, res), 1); /* own VTEP: no peer, sockets */
	pkt_free_bulk(pool, pk, 1);
	make_burst(pk, hash, 1, 1500 - 28 + 1);
	assert_int_equal(underlay_tx_burst(u1, pk, &ip2, hash, 1, res), 0);
	assert_int_equal(res[0], DROP_TOO_BIG);
	pkt_free_bulk(pool, pk, 1);
	make_burst(pk, hash, 1, 1500 - 28);
	assert_int_equal(underlay_tx_burst(u1, pk, &ip2, hash, 1, res), 1);
	pkt_free_bulk(pool, pk, 1);
	assert_int_equal(rx_uplink(u2, rx, from, 1), 1);
	assert_int_equal(rx[0]->len, 1500 - 28);
	pkt_free_bulk(pool, rx, 1);

	underlay_close(u1);
	underlay_close(u2);
	assert_int_equal(system("ip link del ula"), 0);
}

/* ---- outer headers (AF_XDP uplink) ---- */

static void outer_of(struct tunnel_outer *o, bool v6)
{
	memset(o, 0, sizeof(*o));
	const uint8_t dm[6] = {2, 0, 0, 0, 0xf, 2}, sm[6] = {2, 0, 0, 0, 0xf, 1};
	memcpy(o->dst_mac, dm, 6);
	memcpy(o->src_mac, sm, 6);
	assert_true(ipaddr_parse(v6 ? "fd00::1" : "10.0.0.1", &o->src));
	assert_true(ipaddr_parse(v6 ? "fd00::2" : "10.0.0.2", &o->dst));
}

/* A Geneve guest payload of len bytes wrapped in outer headers. */
static struct pkt *outer_frame(const struct tunnel_outer *o, size_t len, uint16_t sport)
{
	struct pkt *p = pkt_alloc(pool);
	assert_non_null(p);
	fill_frame(p, len, 3);
	assert_int_equal(tunnel_encap_guest(p, 100), DROP_NONE);
	assert_int_equal(tunnel_outer_push(p, o, sport, GENEVE_PORT), DROP_NONE);
	return p;
}

static void outer_round_trip(bool v6)
{
	struct tunnel_outer o;
	outer_of(&o, v6);
	struct pkt *p = outer_frame(&o, 60, 50000);
	size_t hdr = v6 ? TUNNEL_ETH_OUTER_V6 : TUNNEL_ETH_OUTER_V4;
	assert_int_equal(p->len, hdr + GENEVE_BASE_LEN + 60);
	assert_memory_equal(p->data, o.dst_mac, 6);
	assert_memory_equal(p->data + 6, o.src_mac, 6);
	assert_int_equal(rd16(p->data + 12), v6 ? ETH_P_IPV6 : ETH_P_IPV4);
	const uint8_t *udp = p->data + hdr - 8;
	assert_int_equal(rd16(udp), 50000);
	assert_int_equal(rd16(udp + 2), GENEVE_PORT);
	assert_int_equal(rd16(udp + 4), 8 + GENEVE_BASE_LEN + 60);
	if (v6) {
		assert_int_not_equal(rd16(udp + 6), 0);
	} else {
		assert_int_equal(rd16(udp + 6), 0);
		assert_int_equal(csum_fold(csum_partial(p->data + 14, 20, 0)), 0);
		assert_int_equal(rd16(p->data + 14 + 6), 0x4000); /* DF */
	}
	/* the peer receives it with Ethernet padding after the IP packet */
	memset(p->data + p->len, 0, 6);
	p->len += 6;
	struct ipaddr from;
	assert_int_equal(tunnel_outer_pull(p, &o.dst, GENEVE_PORT, &from), DROP_NONE);
	assert_true(ipaddr_eq(&from, &o.src));
	assert_int_equal(p->len, GENEVE_BASE_LEN + 60);
	struct tunnel_rx rx = tunnel_decap(p, CLS);
	assert_int_equal(rx.kind, TUN_GUEST);
	assert_int_equal(rx.vni, 100);
	assert_int_equal(p->len, 60);
	pkt_free(pool, p);
}

static void test_outer_round_trip_v4(void **state)
{
	(void)state;
	outer_round_trip(false);
}

static void test_outer_round_trip_v6(void **state)
{
	(void)state;
	outer_round_trip(true);
}

/* Expect drop reason why for p after f changed a copy of it; p unchanged. */
static void expect_outer_drop(const struct pkt *orig, const struct ipaddr *vtep, void (*f)(uint8_t *d, size_t *len),
			      enum drop_reason why)
{
	struct pkt *p = pkt_alloc(pool);
	assert_non_null(p);
	size_t len = orig->len;
	memcpy(p->data, orig->data, len);
	f(p->data, &len);
	p->len = (uint32_t)len;
	uint8_t *d0 = p->data;
	struct ipaddr from;
	assert_int_equal(tunnel_outer_pull(p, vtep, GENEVE_PORT, &from), why);
	assert_ptr_equal(p->data, d0);
	assert_int_equal(p->len, len);
	pkt_free(pool, p);
}

static void v4_csum(uint8_t *d)
{
	wr16(d + 14 + 10, 0);
	ipv4_set_csum(d + 14);
}
static void m_vlan(uint8_t *d, size_t *len) { (void)len; wr16(d + 12, ETH_P_VLAN); }
static void m_ver(uint8_t *d, size_t *len) { (void)len; d[14] = 0x55; v4_csum(d); }
static void m_ihl(uint8_t *d, size_t *len) { (void)len; d[14] = 0x44; }
static void m_totlen(uint8_t *d, size_t *len) { wr16(d + 16, (uint16_t)(*len - 14 + 1)); v4_csum(d); }
static void m_ipcsum(uint8_t *d, size_t *len) { (void)len; d[14 + 10] ^= 1; }
static void m_frag(uint8_t *d, size_t *len) { (void)len; wr16(d + 14 + 6, 0x2000); v4_csum(d); }
static void m_offset(uint8_t *d, size_t *len) { (void)len; wr16(d + 14 + 6, 0x0001); v4_csum(d); }
static void m_dst(uint8_t *d, size_t *len) { (void)len; d[14 + 19] ^= 1; v4_csum(d); }
static void m_proto(uint8_t *d, size_t *len) { (void)len; d[14 + 9] = 6; v4_csum(d); }
static void m_port(uint8_t *d, size_t *len) { (void)len; wr16(d + 34 + 2, 4789); }
static void m_udplen(uint8_t *d, size_t *len) { wr16(d + 34 + 4, (uint16_t)(*len - 34 + 1)); }
static void m_udpshort(uint8_t *d, size_t *len) { (void)len; wr16(d + 34 + 4, 7); }
static void m_udpcsum(uint8_t *d, size_t *len) { (void)len; wr16(d + 34 + 6, 0x1234); }
static void m_v6zero(uint8_t *d, size_t *len) { (void)len; wr16(d + 54 + 6, 0); }
static void m_v6csum(uint8_t *d, size_t *len) { (void)len; d[*len - 1] ^= 0x40; }
static void m_v6next(uint8_t *d, size_t *len) { (void)len; d[14 + 6] = 0; }
static void m_v6plen(uint8_t *d, size_t *len) { wr16(d + 14 + 4, (uint16_t)(*len - 54 + 1)); }
static void m_v6dst(uint8_t *d, size_t *len) { (void)len; d[14 + 39] ^= 1; }
static void m_arp(uint8_t *d, size_t *len) { (void)len; wr16(d + 12, ETH_P_ARP); }

static void test_outer_malformed(void **state)
{
	(void)state;
	struct tunnel_outer o4, o6;
	outer_of(&o4, false);
	outer_of(&o6, true);
	struct pkt *p4 = outer_frame(&o4, 60, 50001), *p6 = outer_frame(&o6, 60, 50001);
	expect_outer_drop(p4, &o4.dst, m_vlan, DROP_UL_NOT_GENEVE);
	expect_outer_drop(p4, &o4.dst, m_arp, DROP_UL_NOT_GENEVE);
	expect_outer_drop(p4, &o4.dst, m_ver, DROP_IP4_BAD_VER);
	expect_outer_drop(p4, &o4.dst, m_ihl, DROP_IP4_BAD_IHL);
	expect_outer_drop(p4, &o4.dst, m_totlen, DROP_IP4_BAD_LEN);
	expect_outer_drop(p4, &o4.dst, m_ipcsum, DROP_IP4_BAD_CSUM);
	expect_outer_drop(p4, &o4.dst, m_frag, DROP_UL_NOT_GENEVE);
	expect_outer_drop(p4, &o4.dst, m_offset, DROP_UL_NOT_GENEVE);
	expect_outer_drop(p4, &o4.dst, m_dst, DROP_UL_NOT_GENEVE);
	expect_outer_drop(p4, &o4.dst, m_proto, DROP_UL_NOT_GENEVE);
	expect_outer_drop(p4, &o4.dst, m_port, DROP_UL_NOT_GENEVE);
	expect_outer_drop(p4, &o4.dst, m_udplen, DROP_UDP_BAD_LEN);
	expect_outer_drop(p4, &o4.dst, m_udpshort, DROP_UDP_BAD_LEN);
	expect_outer_drop(p4, &o4.dst, m_udpcsum, DROP_UDP_BAD_CSUM);
	expect_outer_drop(p4, &o6.dst, m_port, DROP_UL_NOT_GENEVE); /* an IPv4 frame to an IPv6 VTEP */
	expect_outer_drop(p6, &o6.dst, m_v6zero, DROP_UDP_BAD_CSUM);
	expect_outer_drop(p6, &o6.dst, m_v6csum, DROP_UDP_BAD_CSUM);
	expect_outer_drop(p6, &o6.dst, m_v6next, DROP_UL_NOT_GENEVE);
	expect_outer_drop(p6, &o6.dst, m_v6plen, DROP_IP6_BAD_LEN);
	expect_outer_drop(p6, &o6.dst, m_v6dst, DROP_UL_NOT_GENEVE);
	/* a correct non-zero UDP checksum over IPv4 is accepted */
	struct pkt *q = pkt_alloc(pool);
	assert_non_null(q);
	memcpy(q->data, p4->data, p4->len);
	q->len = p4->len;
	uint8_t *udp = q->data + 34;
	size_t ul = rd16(udp + 4);
	uint16_t c = csum_fold(csum_partial(udp, ul, csum_pseudo(q->data, 14, false, 17, ul)));
	wr16(udp + 6, c ? c : 0xffff);
	struct ipaddr from;
	assert_int_equal(tunnel_outer_pull(q, &o4.dst, GENEVE_PORT, &from), DROP_NONE);
	pkt_free(pool, q);
	/* every truncation is refused, never read past */
	for (int v = 0; v < 2; v++) {
		struct pkt *src = v ? p6 : p4;
		for (uint32_t len = 0; len < src->len; len++) {
			struct pkt *t = pkt_alloc(pool);
			assert_non_null(t);
			memcpy(t->data, src->data, len);
			t->len = len;
			assert_int_not_equal(tunnel_outer_pull(t, v ? &o6.dst : &o4.dst, GENEVE_PORT, &from), DROP_NONE);
			pkt_free(pool, t);
		}
	}
	pkt_free(pool, p4);
	pkt_free(pool, p6);
}

static void test_outer_too_big(void **state)
{
	(void)state;
	struct tunnel_outer o;
	outer_of(&o, false);
	struct pkt *p = pkt_alloc(pool);
	assert_non_null(p);
	/* a frame filling the whole buffer has no room for the headers */
	p->data = p->buf;
	fill_frame(p, sizeof(p->buf) - 10, 1);
	uint8_t *d0 = p->data;
	assert_int_equal(tunnel_outer_push(p, &o, 50000, GENEVE_PORT), DROP_TOO_BIG);
	assert_ptr_equal(p->data, d0);
	assert_int_equal(p->len, sizeof(p->buf) - 10);
	pkt_free(pool, p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sp_round_trip_v4),
		cmocka_unit_test(test_sp_round_trip_v6),
		cmocka_unit_test(test_sp_round_trip_unknown_tlv),
		cmocka_unit_test(test_sp_ttl),
		cmocka_unit_test(test_guest_round_trip),
		cmocka_unit_test(test_geneve_options_skipped),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_encap_headroom),
		cmocka_unit_test(test_src_port),
		cmocka_unit_test(test_inner_mtu),
		cmocka_unit_test(test_outer_round_trip_v4),
		cmocka_unit_test(test_outer_round_trip_v6),
		cmocka_unit_test(test_outer_malformed),
		cmocka_unit_test(test_outer_too_big),
		cmocka_unit_test(test_underlay_v4),
		cmocka_unit_test(test_underlay_v6),
		cmocka_unit_test(test_underlay_spreading),
		cmocka_unit_test(test_underlay_workers),
		cmocka_unit_test(test_underlay_unknown_vtep),
		cmocka_unit_test(test_underlay_dont_fragment),
		cmocka_unit_test(test_underlay_open_errors),
		cmocka_unit_test(test_underlay_uplink),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

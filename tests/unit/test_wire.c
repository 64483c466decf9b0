/* test_wire.c - unit tests of src/wire.c: every parser layer valid and
 * truncated at every length, checksums checked by an independent reference
 * sum, software TCP segmentation, ARP/ND builders. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "wire.h"

/* ---- frame construction helpers (independent of wire.c) ---- */

static const uint8_t MAC_A[6] = {0x02, 0, 0, 0, 0, 0x0a};
static const uint8_t MAC_B[6] = {0x02, 0, 0, 0, 0, 0x0b};
static const uint8_t IP4_A[4] = {10, 0, 0, 1};
static const uint8_t IP4_B[4] = {10, 0, 0, 2};
static const uint8_t IP6_A[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t IP6_B[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};

static uint32_t ref_add(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i < n; i += 2)
		s += (uint32_t)p[i] << 8 | (i + 1 < n ? p[i + 1] : 0);
	return s;
}
static uint16_t ref_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}
static bool ip4_hdr_ok(const uint8_t *ip)
{
	return ref_fold(ref_add(ip, (size_t)(ip[0] & 15) * 4, 0)) == 0xffff;
}
/* Verifies the L4 checksum of the IPv4 packet at ip. */
static bool l4_ok_v4(const uint8_t *ip)
{
	size_t ihl = (size_t)(ip[0] & 15) * 4, tot = (size_t)ip[2] << 8 | ip[3];
	uint32_t s = 0;
	if (ip[9] != 1)
		s = ref_add(ip + 12, 8, 0) + ip[9] + (uint32_t)(tot - ihl);
	return ref_fold(ref_add(ip + ihl, tot - ihl, s)) == 0xffff;
}
/* Verifies the L4 checksum of the IPv6 packet at ip whose L4 header is l4
 * bytes after ip. */
static bool l4_ok_v6(const uint8_t *ip, size_t l4, uint8_t proto)
{
	size_t end = 40 + ((size_t)ip[4] << 8 | ip[5]);
	uint32_t s = ref_add(ip + 8, 32, 0) + proto + (uint32_t)(end - l4);
	return ref_fold(ref_add(ip + l4, end - l4, s)) == 0xffff;
}

static size_t mk_eth(uint8_t *f, uint16_t type, int ntags)
{
	memcpy(f, MAC_B, 6);
	memcpy(f + 6, MAC_A, 6);
	size_t o = 12;
	for (int i = 0; i < ntags; i++) {
		wr16(f + o, i == 0 && ntags == 2 ? ETH_P_QINQ : ETH_P_VLAN);
		wr16(f + o + 2, (uint16_t)(100 + i));
		o += 4;
	}
	wr16(f + o, type);
	return o + 2;
}

static size_t mk_tcp(uint8_t *t, uint32_t seq, uint8_t flags, int optwords, size_t paylen)
{
	size_t hl = 20 + (size_t)optwords * 4;
	memset(t, 0, hl);
	wr16(t, 40000);
	wr16(t + 2, 80);
	wr32(t + 4, seq);
	wr32(t + 8, 777);
	t[12] = (uint8_t)((hl / 4) << 4);
	t[13] = flags;
	wr16(t + 14, 65535);
	for (int i = 0; i < optwords * 4; i++)
		t[20 + i] = 1; /* NOPs */
	for (size_t i = 0; i < paylen; i++)
		t[hl + i] = (uint8_t)(i * 7 + 3);
	return hl + paylen;
}
static size_t mk_udp(uint8_t *u, size_t paylen)
{
	wr16(u, 5353);
	wr16(u + 2, 53);
	wr16(u + 4, (uint16_t)(8 + paylen));
	wr16(u + 6, 0);
	for (size_t i = 0; i < paylen; i++)
		u[8 + i] = (uint8_t)i;
	return 8 + paylen;
}
static size_t mk_icmp(uint8_t *c, uint8_t type, uint8_t code, uint16_t id, size_t paylen)
{
	c[0] = type;
	c[1] = code;
	wr16(c + 2, 0);
	wr16(c + 4, id);
	wr16(c + 6, 1);
	memset(c + 8, 0xab, paylen);
	return 8 + paylen;
}

/* Ethernet + IPv4 (optwords of options) around l4 bytes already at the L4
 * position; returns the frame length. l4 is built by the caller at
 * f + ip4_l4_off(ntags, optwords). */
static size_t ip4_l4_off(int ntags, int optwords) { return 14 + (size_t)ntags * 4 + 20 + (size_t)optwords * 4; }
static size_t mk_ip4(uint8_t *f, int ntags, int optwords, uint8_t proto, size_t l4len)
{
	size_t l3 = mk_eth(f, ETH_P_IPV4, ntags);
	size_t ihl = 20 + (size_t)optwords * 4;
	uint8_t *h = f + l3;
	h[0] = (uint8_t)(0x40 | ihl / 4);
	h[1] = 0;
	wr16(h + 2, (uint16_t)(ihl + l4len));
	wr16(h + 4, 0x1234);
	wr16(h + 6, 0x4000);
	h[8] = 64;
	h[9] = proto;
	wr16(h + 10, 0);
	memcpy(h + 12, IP4_A, 4);
	memcpy(h + 16, IP4_B, 4);
	for (int i = 0; i < optwords * 4; i++)
		h[20 + i] = 1;
	wr16(h + 10, (uint16_t)~ref_fold(ref_add(h, ihl, 0)));
	return l3 + ihl + l4len;
}
static size_t ip6_l4_off(int ntags, size_t extlen) { return 14 + (size_t)ntags * 4 + 40 + extlen; }
/* ext: extension headers already in place after the IPv6 header. */
static size_t mk_ip6(uint8_t *f, int ntags, uint8_t first_nh, size_t extlen, size_t l4len)
{
	size_t l3 = mk_eth(f, ETH_P_IPV6, ntags);
	uint8_t *h = f + l3;
	memset(h, 0, 8);
	h[0] = 0x60;
	wr16(h + 4, (uint16_t)(extlen + l4len));
	h[6] = first_nh;
	h[7] = 64;
	memcpy(h + 8, IP6_A, 16);
	memcpy(h + 24, IP6_B, 16);
	return l3 + 40 + extlen + l4len;
}

static uint8_t frame[20000];

static enum drop_reason parse(const uint8_t *f, size_t len, struct pkt_layout *lay, struct flow_key *key)
{
	memset(key, 0, sizeof(*key));
	return wire_parse_buf(f, len, lay, key);
}

/* Every length below full must fail, and never crash; the copy is on the
 * heap at exactly n bytes so ASan catches any over-read. */
static void assert_all_truncations_fail(const uint8_t *f, size_t full)
{
	for (size_t n = 0; n < full; n++) {
		uint8_t *c = malloc(n ? n : 1);
		assert_non_null(c);
		memcpy(c, f, n);
		struct pkt_layout lay;
		struct flow_key key;
		enum drop_reason r = parse(c, n, &lay, &key);
		if (r == DROP_NONE)
			fail_msg("length %zu of %zu parsed as valid", n, full);
		free(c);
	}
}

/* ---- tests ---- */

static void test_eth_short_and_nonip(void **s)
{
	(void)s;
	struct pkt_layout lay;
	struct flow_key key;
	size_t n = mk_eth(frame, 0x88cc, 0);
	assert_int_equal(parse(frame, n, &lay, &key), DROP_NONE);
	assert_int_equal(key.is_ip, 0);
	assert_int_equal(lay.ethertype, 0x88cc);
	assert_int_equal(lay.l3, PKT_OFF_NONE);
	for (size_t i = 0; i < ETH_HLEN; i++)
		assert_int_equal(parse(frame, i, &lay, &key), DROP_ETH_TRUNC);
}

static void test_vlan(void **s)
{
	(void)s;
	struct pkt_layout lay;
	struct flow_key key;
	for (int tags = 1; tags <= 2; tags++) {
		size_t l4 = ip4_l4_off(tags, 0);
		size_t n = mk_ip4(frame, tags, 0, 17, mk_udp(frame + l4, 10));
		assert_int_equal(parse(frame, n, &lay, &key), DROP_NONE);
		assert_int_equal(lay.vlan_tci, 100);
		assert_int_equal(lay.ethertype, ETH_P_IPV4);
		assert_int_equal(lay.l3, 14 + 4 * tags);
		assert_int_equal(lay.l4, l4);
		assert_int_equal(key.dport, 53);
		for (size_t i = ETH_HLEN; i < (size_t)14 + 4 * tags; i++)
			assert_int_equal(parse(frame, i, &lay, &key), DROP_VLAN_TRUNC);
		assert_all_truncations_fail(frame, n);
	}
}

static void test_arp(void **s)
{
	(void)s;
	struct pkt_layout lay;
	struct flow_key key;
	size_t l3 = mk_eth(frame, ETH_P_ARP, 0);
	uint8_t *a = frame + l3;
	wr16(a, 1);
	wr16(a + 2, ETH_P_IPV4);
	a[4] = 6;
	a[5] = 4;
	wr16(a + 6, 1);
	memcpy(a + 8, MAC_A, 6);
	memcpy(a + 14, IP4_A, 4);
	memset(a + 18, 0, 6);
	memcpy(a + 24, IP4_B, 4);
	size_t n = l3 + 28;
	assert_int_equal(parse(frame, n, &lay, &key), DROP_NONE);
	assert_int_equal(key.is_ip, 0);
	assert_int_equal(lay.l3, 14);
	assert_true(wire_is_arp_request(frame, n));
	for (size_t i = ETH_HLEN; i < n; i++)
		assert_int_equal(parse(frame, i, &lay, &key), DROP_ARP_TRUNC);

	struct mac m = {{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}};
	uint8_t out[128];
	assert_int_equal(arp_build_reply(out, 41, frame, n, &m), 0);
	size_t rn = arp_build_reply(out, sizeof(out), frame, n, &m);
	assert_int_equal(rn, 42);
	assert_memory_equal(out, MAC_A, 6);         /* to the requester */
	assert_memory_equal(out + 6, m.b, 6);
	assert_int_equal(rd16(out + 12), ETH_P_ARP);
	const uint8_t *r = out + 14;
	assert_int_equal(rd16(r + 6), 2);           /* reply */
	assert_memory_equal(r + 8, m.b, 6);         /* sender MAC = ours */
	assert_memory_equal(r + 14, IP4_B, 4);      /* sender IP = asked */
	assert_memory_equal(r + 18, MAC_A, 6);      /* target = requester */
	assert_memory_equal(r + 24, IP4_A, 4);
	assert_false(wire_is_arp_request(out, rn));  /* a reply is no request */
	assert_int_equal(arp_build_reply(out, sizeof(out), out, rn, &m), 0);
	assert_false(wire_is_arp_request(frame, n - 1));
}

static void test_ip4_tcp(void **s)
{
	(void)s;
	struct pkt_layout lay;
	struct flow_key key;
	size_t l4 = ip4_l4_off(0, 2);
	size_t n = mk_ip4(frame, 0, 2, 6, mk_tcp(frame + l4, 1000, 0x18, 3, 100));
	memset(&key, 0, sizeof(key));
	key.vni = 4242;
	key.zone = 7;
	assert_int_equal(wire_parse_buf(frame, n, &lay, &key), DROP_NONE);
	assert_int_equal(key.vni, 4242);
	assert_int_equal(key.zone, 7);
	assert_int_equal(key.is_ip, 1);
	assert_int_equal(key.proto, 6);
	assert_int_equal(lay.l4proto, 6);
	assert_int_equal(key.sport, 40000);
	assert_int_equal(key.dport, 80);
	assert_int_equal(lay.tcp_flags, 0x18);
	assert_int_equal(lay.l3, 14);
	assert_int_equal(lay.l4, l4);
	assert_int_equal(lay.payload, l4 + 32);
	assert_int_equal(lay.is_frag, 0);
	assert_true(ipaddr_is_v4(&key.src));
	assert_memory_equal(key.src.b + 12, IP4_A, 4);
	assert_memory_equal(key.dst.b + 12, IP4_B, 4);

	/* Ethernet padding after the IP packet is fine. */
	assert_int_equal(parse(frame, n + 20, &lay, &key), DROP_NONE);

	/* Cut frames: total length beyond the frame. */
	assert_all_truncations_fail(frame, n);
	for (size_t i = 14; i < 14 + 28; i++)
		assert_int_equal(parse(frame, i, &lay, &key), DROP_IP4_TRUNC);
	for (size_t i = 14 + 28; i < n; i++)
		assert_int_equal(parse(frame, i, &lay, &key), DROP_IP4_BAD_LEN);

	/* Consistent IP length but a cut TCP header. */
	static uint8_t cut[256];
	for (size_t i = l4; i < l4 + 32; i++) {
		memcpy(cut, frame, i);
		wr16(cut + 16, (uint16_t)(i - 14));
		assert_int_equal(parse(cut, i, &lay, &key), DROP_TCP_TRUNC);
	}

	/* Bad data offset, version, IHL, total length below IHL. */
	memcpy(cut, frame, n);
	cut[l4 + 12] = 0x40;
	assert_int_equal(parse(cut, n, &lay, &key), DROP_TCP_BAD_OFF);
	memcpy(cut, frame, n);
	cut[14] = 0x67;
	assert_int_equal(parse(cut, n, &lay, &key), DROP_IP4_BAD_VER);
	memcpy(cut, frame, n);
	cut[14] = 0x44;
	assert_int_equal(parse(cut, n, &lay, &key), DROP_IP4_BAD_IHL);
	memcpy(cut, frame, n);
	wr16(cut + 16, 20);
	assert_int_equal(parse(cut, n, &lay, &key), DROP_IP4_BAD_LEN);
	/* A wrong IPv4 header checksum is not checked by the parser. */
	memcpy(cut, frame, n);
	cut[24] ^= 0xff;
	assert_int_equal(parse(cut, n, &lay, &key), DROP_NONE);

	/* wire_parse on a struct pkt sets PKT_F_PARSED. */
	static struct pkt p;
	pkt_reset(&p);
	memcpy(p.data, frame, n);
	p.len = (uint32_t)n;
	assert_int_equal(wire_parse(&p), DROP_NONE);
	assert_true(p.flags & PKT_F_PARSED);
	assert_int_equal(p.key.dport, 80);
}

static void test_ip4_udp(void **s)
{
	(void)s;
	struct pkt_layout lay;
	struct flow_key key;
	size_t l4 = ip4_l4_off(0, 0);
	size_t n = mk_ip4(frame, 0, 0, 17, mk_udp(frame + l4, 30));
	assert_int_equal(parse(frame, n, &lay, &key), DROP_NONE);
	assert_int_equal(key.sport, 5353);
	assert_int_equal(key.dport, 53);
	assert_int_equal(lay.payload, l4 + 8);
	assert_all_truncations_fail(frame, n);
	static uint8_t cut[256];
	for (size_t i = l4; i < l4 + 8; i++) {
		memcpy(cut, frame, i);
		wr16(cut + 16, (uint16_t)(i - 14));
		assert_int_equal(parse(cut, i, &lay, &key), DROP_UDP_TRUNC);
	}
	memcpy(cut, frame, n);
	wr16(cut + l4 + 4, 7);
	assert_int_equal(parse(cut, n, &lay, &key), DROP_UDP_BAD_LEN);
	wr16(cut + l4 + 4, 39);
	assert_int_equal(parse(cut, n, &lay, &key), DROP_UDP_BAD_LEN);
	wr16(cut + l4 + 4, 20); /* shorter than the IP payload: allowed */
	assert_int_equal(parse(cut, n, &lay, &key), DROP_NONE);
}

static void test_ip4_frag(void **s)
{
	(void)s;
	struct pkt_layout lay;
	struct flow_key key;
	size_t l4 = ip4_l4_off(0, 0);
	size_t n = mk_ip4(frame, 0, 0, 17, mk_udp(frame + l4, 30));
	/* First fragment: UDP length covers the whole datagram. */
	wr16(frame + 14 + 6, 0x2000);
	wr16(frame + l4 + 4, 3000);
	assert_int_equal(parse(frame, n, &lay, &key), DROP_NONE);
	assert_int_equal(lay.is_frag, 0);
	assert_int_equal(key.dport, 53);
	/* Later fragment: no L4, ports 0. */
	wr16(frame + 14 + 6, 0x0010);
	assert_int_equal(parse(frame, n, &lay, &key), DROP_NONE);
	assert_int_equal(lay.is_frag, 1);
	assert_int_equal(key.proto, 17);
	assert_int_equal(key.sport, 0);
	assert_int_equal(key.dport, 0);
	assert_int_equal(lay.l4, PKT_OFF_NONE);
}

static void test_icmp(void **s)
{
	(void)s;
	struct pkt_layout lay;
	struct flow_key key;
	size_t l4 = ip4_l4_off(0, 0);
	size_t n = mk_ip4(frame, 0, 0, 1, mk_icmp(frame + l4, 8, 0, 0x4321, 16));
	assert_int_equal(parse(frame, n, &lay, &key), DROP_NONE);
	assert_int_equal(key.proto, 1);
	assert_int_equal(key.sport, 0x4321);
	assert_int_equal(key.dport, 0x4321);
	assert_all_truncations_fail(frame, n);
	static uint8_t cut[256];
	for (size_t i = l4; i < l4 + 8; i++) {
		memcpy(cut, frame, i);
		wr16(cut + 16, (uint16_t)(i - 14));
		assert_int_equal(parse(cut, i, &lay, &key), DROP_ICMP_TRUNC);
	}
	n = mk_ip4(frame, 0, 0, 1, mk_icmp(frame + l4, 3, 1, 0, 28));
	assert_int_equal(parse(frame, n, &lay, &key), DROP_NONE);
	assert_int_equal(key.sport, 3);
	assert_int_equal(key.dport, 1);

	/* ICMPv6 echo reply and a non-echo type. */
	l4 = ip6_l4_off(0, 0);
	n = mk_ip6(frame, 0, 58, 0, mk_icmp(frame + l4, 129, 0, 0x99, 8));
	assert_int_equal(parse(frame, n, &lay, &key), DROP_NONE);
	assert_int_equal(key.proto, 58);
	assert_int_equal(key.sport, 0x99);
	assert_int_equal(key.dport, 0x99);
	assert_memory_equal(key.src.b, IP6_A, 16);
	assert_memory_equal(key.dst.b, IP6_B, 16);
	assert_all_truncations_fail(frame, n);
	n = mk_ip6(frame, 0, 58, 0, mk_icmp(frame + l4, 1, 4, 0, 8));
	assert_int_equal(parse(frame, n, &lay, &key), DROP_NONE);
	assert_int_equal(key.sport, 1);
	assert_int_equal(key.dport, 4);
}

/* IPv6 with hop-by-hop, routing, AH and destination options before TCP. */
static size_t mk_ip6_ext_tcp(uint8_t *f, size_t *l4out)
{
	size_t l3 = 14, p = l3 + 40;
	uint8_t *e = f + p;
	memset(e, 0, 8);    /* hop-by-hop, 8 bytes, next routing */
	e[0] = 43;
	e[1] = 0;
	e[2] = 1; /* PadN */
	e[3] = 4;
	e += 8;
	memset(e, 0, 24);   /* routing, 24 bytes, next AH */
	e[0] = 51;
	e[1] = 2;
	e += 24;
	memset(e, 0, 16);   /* AH, (2+2)*4 = 16 bytes, next dest options */
	e[0] = 60;
	e[1] = 2;
	e += 16;
	memset(e, 0, 16);   /* destination options, 16 bytes, next TCP */
	e[0] = 6;
	e[1] = 1;
	e[2] = 1;
	e[3] = 12;
	size_t ext = 8 + 24 + 16 + 16;
	size_t l4 = ip6_l4_off(0, ext);
	*l4out = l4;
	return mk_ip6(f, 0, 0, ext, mk_tcp(f + l4, 5, 0x02, 0, 10));
}

static void test_ip6_ext(void **s)
{
	(void)s;
	struct pkt_layout lay;
	struct flow_key key;
	size_t l4, n = mk_ip6_ext_tcp(frame, &l4);
	assert_int_equal(parse(frame, n, &lay, &key), DROP_NONE);
	assert_int_equal(lay.ethertype, ETH_P_IPV6);
	assert_int_equal(lay.l4, l4);
	assert_int_equal(key.proto, 6);
	assert_int_equal(lay.l4proto, 6);
	assert_int_equal(lay.tcp_flags, 0x02);
	assert_int_equal(key.dport, 80);
	assert_int_equal(lay.payload, l4 + 20);
	assert_all_truncations_fail(frame, n);
	for (size_t i = 14; i < 54; i++)
		assert_int_equal(parse(frame, i, &lay, &key), DROP_IP6_TRUNC);
	for (size_t i = 54; i < n; i++)
		assert_int_equal(parse(frame, i, &lay, &key), DROP_IP6_BAD_LEN);
	/* Consistent payload length, cut inside the chain or TCP header. */
	static uint8_t cut[512];
	for (size_t i = 54; i < l4 + 20; i++) {
		memcpy(cut, frame, i);
		wr16(cut + 18, (uint16_t)(i - 54));
		enum drop_reason r = parse(cut, i, &lay, &key);
		assert_int_equal(r, i < l4 ? DROP_IP6_EXT_TRUNC : DROP_TCP_TRUNC);
	}
	memcpy(cut, frame, n);
	cut[14] = 0x40;
	assert_int_equal(parse(cut, n, &lay, &key), DROP_IP6_BAD_VER);
}

static void test_ip6_chain_and_frag(void **s)
{
	(void)s;
	struct pkt_layout lay;
	struct flow_key key;
	/* Nine destination-option headers: too long a chain. */
	uint8_t *e = frame + 54;
	for (int i = 0; i < 9; i++) {
		memset(e + i * 8, 0, 8);
		e[i * 8] = i == 8 ? 17 : 60;
	}
	size_t l4 = ip6_l4_off(0, 72);
	size_t n = mk_ip6(frame, 0, 60, 72, mk_udp(frame + l4, 4));
	assert_int_equal(parse(frame, n, &lay, &key), DROP_IP6_EXT_CHAIN);
	/* Eight are fine. */
	e[7 * 8] = 17;
	l4 = ip6_l4_off(0, 64);
	n = mk_ip6(frame, 0, 60, 64, mk_udp(frame + l4, 4));
	assert_int_equal(parse(frame, n, &lay, &key), DROP_NONE);
	assert_int_equal(key.dport, 53);

	/* Fragment header: first fragment parses L4, later ones do not. */
	memset(e, 0, 8);
	e[0] = 17;
	wr16(e + 2, 0x0001); /* offset 0, M */
	l4 = ip6_l4_off(0, 8);
	n = mk_ip6(frame, 0, 44, 8, mk_udp(frame + l4, 4));
	wr16(frame + l4 + 4, 2000);
	assert_int_equal(parse(frame, n, &lay, &key), DROP_NONE);
	assert_int_equal(lay.is_frag, 0);
	assert_int_equal(key.dport, 53);
	wr16(e + 2, 0x00a8); /* offset 21 */
	assert_int_equal(parse(frame, n, &lay, &key), DROP_NONE);
	assert_int_equal(lay.is_frag, 1);
	assert_int_equal(key.proto, 17);
	assert_int_equal(key.dport, 0);
	assert_all_truncations_fail(frame, n);
}

static void test_csum_fill(void **s)
{
	(void)s;
	static struct pkt p;
	/* TCP over IPv4, odd payload length. */
	pkt_reset(&p);
	size_t l4 = ip4_l4_off(1, 0);
	size_t n = mk_ip4(p.data, 1, 0, 6, mk_tcp(p.data + l4, 9, 0x10, 1, 101));
	p.len = (uint32_t)n;
	wr16(p.data + l4 + 16, 0xdead);
	assert_false(l4_ok_v4(p.data + 18));
	assert_true(wire_l4_csum_fill(&p));
	assert_true(l4_ok_v4(p.data + 18));
	assert_true(ip4_hdr_ok(p.data + 18));
	/* UDP over IPv4. */
	pkt_reset(&p);
	l4 = ip4_l4_off(0, 0);
	n = mk_ip4(p.data, 0, 0, 17, mk_udp(p.data + l4, 33));
	p.len = (uint32_t)n;
	assert_true(wire_l4_csum_fill(&p));
	assert_int_not_equal(rd16(p.data + l4 + 6), 0);
	assert_true(l4_ok_v4(p.data + 14));
	/* ICMPv4: no pseudo-header. */
	pkt_reset(&p);
	n = mk_ip4(p.data, 0, 0, 1, mk_icmp(p.data + l4, 8, 0, 5, 21));
	p.len = (uint32_t)n;
	assert_true(wire_l4_csum_fill(&p));
	assert_true(l4_ok_v4(p.data + 14));
	/* UDP over IPv6, and ICMPv6 (with pseudo-header), and TCP behind
	 * extension headers. */
	pkt_reset(&p);
	l4 = ip6_l4_off(0, 0);
	n = mk_ip6(p.data, 0, 17, 0, mk_udp(p.data + l4, 17));
	p.len = (uint32_t)n;
	assert_true(wire_l4_csum_fill(&p));
	assert_true(l4_ok_v6(p.data + 14, 40, 17));
	pkt_reset(&p);
	n = mk_ip6(p.data, 0, 58, 0, mk_icmp(p.data + l4, 128, 0, 5, 13));
	p.len = (uint32_t)n;
	assert_true(wire_l4_csum_fill(&p));
	assert_true(l4_ok_v6(p.data + 14, 40, 58));
	pkt_reset(&p);
	n = mk_ip6_ext_tcp(p.data, &l4);
	p.len = (uint32_t)n;
	assert_true(wire_l4_csum_fill(&p));
	assert_true(l4_ok_v6(p.data + 14, l4 - 14, 6));
	/* Nothing to fill: ARP-less non-IP and a later fragment. */
	pkt_reset(&p);
	p.len = (uint32_t)mk_eth(p.data, 0x88cc, 0);
	assert_false(wire_l4_csum_fill(&p));
	pkt_reset(&p);
	l4 = ip4_l4_off(0, 0);
	n = mk_ip4(p.data, 0, 0, 17, mk_udp(p.data + l4, 8));
	wr16(p.data + 20, 0x0020);
	p.len = (uint32_t)n;
	assert_false(wire_l4_csum_fill(&p));

	/* ipv4_set_csum and csum_fold conventions. */
	memcpy(frame, p.data, n);
	wr16(frame + 24, 0x1111);
	ipv4_set_csum(frame + 14);
	assert_true(ip4_hdr_ok(frame + 14));
	assert_int_equal(csum_fold(csum_partial(frame + 14, 20, 0)), 0);
}

static void check_segments(struct pkt **seg, int nseg, const uint8_t *orig, size_t l3, bool v6,
			   size_t data_len, size_t mss, uint32_t seq0, uint8_t flags)
{
	size_t hdr = l3 + (v6 ? 40 : 20) + 20, total = 0;
	for (int i = 0; i < nseg; i++) {
		const uint8_t *d = seg[i]->data;
		size_t want = (size_t)i + 1 < (size_t)nseg ? mss : data_len - mss * (size_t)(nseg - 1);
		assert_int_equal(seg[i]->len, hdr + want);
		assert_memory_equal(d, orig, l3);
		const uint8_t *ip = d + l3, *t = d + l3 + (v6 ? 40 : 20);
		if (v6) {
			assert_int_equal(rd16(ip + 4), 20 + want);
			assert_true(l4_ok_v6(ip, 40, 6));
		} else {
			assert_true(20 + 20 + want <= 1500);
			assert_int_equal(rd16(ip + 2), 40 + want);
			assert_int_equal(rd16(ip + 4), 0x1234 + i);
			assert_true(ip4_hdr_ok(ip));
			assert_true(l4_ok_v4(ip));
		}
		assert_int_equal(rd32(t + 4), seq0 + (uint32_t)(mss * (size_t)i));
		uint8_t f = t[13];
		bool last = i == nseg - 1;
		assert_int_equal(f & 0x01, last ? (flags & 0x01) : 0);
		assert_int_equal(f & 0x08, last ? (flags & 0x08) : 0);
		assert_int_equal(f & 0x80, i == 0 ? (flags & 0x80) : 0);
		assert_int_equal(f & 0x10, flags & 0x10);
		assert_memory_equal(d + hdr, orig + hdr + mss * (size_t)i, want);
		assert_true(seg[i]->flags & PKT_F_PARSED);
		total += want;
	}
	assert_int_equal(total, data_len);
}

static void test_tcp_segment(void **s)
{
	(void)s;
	struct pkt_pool *pool = pkt_pool_create(32);
	assert_non_null(pool);
	struct pkt *seg[16];
	/* IPv4, 10000 bytes of payload, mtu 1500: mss 1460, 7 segments. */
	size_t l4 = ip4_l4_off(0, 0);
	uint32_t seq0 = 0xfffff000u; /* wraps during the run */
	size_t n = mk_ip4(frame, 0, 0, 6, mk_tcp(frame + l4, seq0, 0x80 | 0x10 | 0x08 | 0x01, 0, 10000));
	int k = wire_tcp_segment(frame, n, 1500, pool, seg, 16);
	assert_int_equal(k, 7);
	check_segments(seg, k, frame, 14, false, 10000, 1460, seq0, 0x99);
	assert_int_equal(pkt_pool_avail(pool), 32 - 7);
	pkt_free_bulk(pool, seg, (uint32_t)k);

	/* Not enough room in out[]: nothing is leaked. */
	assert_true(wire_tcp_segment(frame, n, 1500, pool, seg, 3) < 0);
	assert_int_equal(pkt_pool_avail(pool), 32);

	/* IPv6 behind a VLAN tag. */
	l4 = ip6_l4_off(1, 0);
	n = mk_ip6(frame, 1, 6, 0, mk_tcp(frame + l4, 1, 0x18, 0, 5000));
	k = wire_tcp_segment(frame, n, 1500, pool, seg, 16);
	assert_int_equal(k, 4);
	check_segments(seg, k, frame, 18, true, 5000, 1440, 1, 0x18);
	pkt_free_bulk(pool, seg, (uint32_t)k);

	/* Non-TCP, malformed, and too small an mtu are refused. */
	l4 = ip4_l4_off(0, 0);
	n = mk_ip4(frame, 0, 0, 17, mk_udp(frame + l4, 3000));
	assert_int_equal(wire_tcp_segment(frame, n, 1500, pool, seg, 16), -(int)DROP_GSO_UNSUPPORTED);
	assert_int_equal(wire_tcp_segment(frame, 10, 1500, pool, seg, 16), -(int)DROP_ETH_TRUNC);
	n = mk_ip4(frame, 0, 0, 6, mk_tcp(frame + l4, 1, 0x10, 0, 3000));
	assert_int_equal(wire_tcp_segment(frame, n, 40, pool, seg, 16), -(int)DROP_GSO_UNSUPPORTED);
	/* Empty pool. */
	struct pkt_pool *tiny = pkt_pool_create(2);
	assert_int_equal(wire_tcp_segment(frame, n, 1500, tiny, seg, 16), -(int)DROP_POOL_EMPTY);
	assert_int_equal(pkt_pool_avail(tiny), 2);
	pkt_pool_destroy(tiny);
	assert_int_equal(pkt_pool_avail(pool), 32);
	pkt_pool_destroy(pool);
}

static size_t mk_ns(uint8_t *f, const uint8_t *src_ip, bool with_opt)
{
	size_t l4 = ip6_l4_off(0, 0);
	uint8_t *c = f + l4;
	memset(c, 0, 32);
	c[0] = 135;
	memcpy(c + 8, IP6_B, 16);
	size_t ln = 24;
	if (with_opt) {
		c[24] = 1;
		c[25] = 1;
		memcpy(c + 26, MAC_A, 6);
		ln = 32;
	}
	size_t n = mk_ip6(f, 0, 58, 0, ln);
	f[14 + 7] = 255;
	memcpy(f + 14 + 8, src_ip, 16);
	static const uint8_t sn[16] = {0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 2};
	memcpy(f + 14 + 24, sn, 16);
	return n;
}

static void test_nd_advert(void **s)
{
	(void)s;
	struct mac m = {{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}};
	size_t n = mk_ns(frame, IP6_A, true);
	assert_true(wire_is_neigh_solicit(frame, n));
	uint8_t out[256];
	assert_int_equal(nd_build_advert(out, 50, frame, n, &m), 0);
	size_t an = nd_build_advert(out, sizeof(out), frame, n, &m);
	assert_int_equal(an, 14 + 40 + 32);
	assert_memory_equal(out, MAC_A, 6);
	assert_memory_equal(out + 6, m.b, 6);
	assert_int_equal(rd16(out + 12), ETH_P_IPV6);
	const uint8_t *ip = out + 14, *c = out + 54;
	assert_int_equal(ip[0] >> 4, 6);
	assert_int_equal(rd16(ip + 4), 32);
	assert_int_equal(ip[6], 58);
	assert_int_equal(ip[7], 255);
	assert_memory_equal(ip + 8, IP6_B, 16);  /* from the target */
	assert_memory_equal(ip + 24, IP6_A, 16); /* to the solicitor */
	assert_int_equal(c[0], 136);
	assert_int_equal(c[1], 0);
	assert_int_equal(c[4], 0x60);             /* S and O, not R */
	assert_memory_equal(c + 8, IP6_B, 16);
	assert_int_equal(c[24], 2);
	assert_int_equal(c[25], 1);
	assert_memory_equal(c + 26, m.b, 6);
	assert_true(l4_ok_v6(ip, 40, 58));
	assert_false(wire_is_neigh_solicit(out, an));
	struct pkt_layout lay;
	struct flow_key key;
	assert_int_equal(parse(out, an, &lay, &key), DROP_NONE);

	/* Without the source link-layer option also works. */
	n = mk_ns(frame, IP6_A, false);
	assert_true(wire_is_neigh_solicit(frame, n));
	assert_int_equal(nd_build_advert(out, sizeof(out), frame, n, &m), 86);
	/* Hop limit other than 255 is not a valid solicitation. */
	frame[21] = 64;
	assert_false(wire_is_neigh_solicit(frame, n));
	assert_int_equal(nd_build_advert(out, sizeof(out), frame, n, &m), 0);
	/* Truncated solicitations are refused. */
	n = mk_ns(frame, IP6_A, true);
	for (size_t i = 0; i < n; i++)
		assert_false(wire_is_neigh_solicit(frame, i));
	/* An echo request is no solicitation. */
	size_t l4 = ip6_l4_off(0, 0);
	n = mk_ip6(frame, 0, 58, 0, mk_icmp(frame + l4, 128, 0, 1, 24));
	assert_false(wire_is_neigh_solicit(frame, n));
}

static void test_eth_build(void **s)
{
	(void)s;
	struct mac a, b;
	memcpy(a.b, MAC_A, 6);
	memcpy(b.b, MAC_B, 6);
	uint8_t out[14];
	assert_int_equal(eth_build(out, 13, &a, &b, ETH_P_NSH), 0);
	assert_int_equal(eth_build(out, 14, &a, &b, ETH_P_NSH), 14);
	assert_memory_equal(out, MAC_A, 6);
	assert_memory_equal(out + 6, MAC_B, 6);
	assert_int_equal(rd16(out + 12), 0x894f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eth_short_and_nonip),
		cmocka_unit_test(test_vlan),
		cmocka_unit_test(test_arp),
		cmocka_unit_test(test_ip4_tcp),
		cmocka_unit_test(test_ip4_udp),
		cmocka_unit_test(test_ip4_frag),
		cmocka_unit_test(test_icmp),
		cmocka_unit_test(test_ip6_ext),
		cmocka_unit_test(test_ip6_chain_and_frag),
		cmocka_unit_test(test_csum_fill),
		cmocka_unit_test(test_tcp_segment),
		cmocka_unit_test(test_nd_advert),
		cmocka_unit_test(test_eth_build),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

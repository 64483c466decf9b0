/* test_nsh.c - unit tests of src/nsh.c: NSH base header layout, MD type 1
 * and 2, every Detour TLV round-trip, unknown TLVs carried through, every
 * malformed case; Geneve decode/encode and its malformed cases. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "nsh.h"

#define CLS DETOUR_MD_CLASS_DEFAULT

/* The wire bytes of NSH MD2, TTL 63, SPI 0x123456, SI 254, one
 * chain/direction TLV (chain 7, reverse, ingress + copy), written by hand
 * from RFC 8300 figures 2 and 5. */
static const uint8_t hand_md2[] = {
	0x0f, 0xc4, 0x02, 0x03, 0x12, 0x34, 0x56, 0xfe,
	0xff, 0xf6, 0x01, 0x04, 0x00, 0x07, 0x01, 0x03,
};

static void full_md(struct sp_meta *md)
{
	memset(md, 0, sizeof(*md));
	md->spi = 0xabcdef;
	md->si = 200;
	md->dir = SP_DIR_REVERSE;
	md->fp_action = FP_DROP;
	md->is_copy = 1;
	md->ingress = 1;
	md->chain = 0x1234;
	md->guest_port = 0x4321;
	md->vni = 0x00fedcba;
	const struct mac d = {{2, 1, 2, 3, 4, 5}}, s = {{2, 6, 7, 8, 9, 10}}, r = {{2, 0xaa, 0, 0, 0, 1}};
	md->orig_dst = d;
	md->orig_src = s;
	md->ret_spmac = r;
	assert_true(ipaddr_parse("2001:db8::77", &md->ret_vtep));
	md->fp_service = 3;
}

static void assert_md_equal(const struct sp_meta *a, const struct sp_meta *b)
{
	assert_int_equal(a->spi, b->spi);
	assert_int_equal(a->si, b->si);
	assert_int_equal(a->dir, b->dir);
	assert_int_equal(a->fp_action, b->fp_action);
	assert_int_equal(a->is_copy, b->is_copy);
	assert_int_equal(a->chain, b->chain);
	assert_int_equal(a->guest_port, b->guest_port);
	assert_int_equal(a->vni, b->vni);
	assert_memory_equal(&a->orig_dst, &b->orig_dst, 6);
	assert_memory_equal(&a->orig_src, &b->orig_src, 6);
	assert_memory_equal(&a->ret_vtep, &b->ret_vtep, 16);
	assert_memory_equal(&a->ret_spmac, &b->ret_spmac, 6);
	assert_int_equal(a->fp_service, b->fp_service);
	assert_int_equal(a->ingress, b->ingress);
	assert_int_equal(a->n_unknown, b->n_unknown);
	assert_memory_equal(a->unknown, b->unknown, a->n_unknown);
}

static void test_hand_bytes(void **s)
{
	(void)s;
	struct nsh_info info;
	struct sp_meta md;
	assert_int_equal(nsh_decode(hand_md2, sizeof(hand_md2), CLS, &info, &md), DROP_NONE);
	assert_int_equal(info.ver, 0);
	assert_int_equal(info.oam, 0);
	assert_int_equal(info.ttl, 63);
	assert_int_equal(info.md_type, 2);
	assert_int_equal(info.next_proto, NSH_NP_ETHERNET);
	assert_int_equal(info.spi, 0x123456);
	assert_int_equal(info.si, 254);
	assert_int_equal(info.hdr_len, 16);
	assert_int_equal(md.spi, 0x123456);
	assert_int_equal(md.si, 254);
	assert_int_equal(md.chain, 7);
	assert_int_equal(md.dir, 1);
	assert_int_equal(md.ingress, 1);
	assert_int_equal(md.is_copy, 1);
	assert_int_equal(md.n_unknown, 0);

	/* The encoder writes the same bytes. */
	uint8_t out[64];
	assert_int_equal(nsh_encoded_len(&md, NSH_TLV_CHAIN), 16);
	assert_int_equal(nsh_encode(out, sizeof(out), 0x123456, 254, CLS, &md, NSH_TLV_CHAIN), 16);
	assert_memory_equal(out, hand_md2, 16);
	assert_int_equal(nsh_encode(out, 15, 0x123456, 254, CLS, &md, NSH_TLV_CHAIN), 0);

	/* O bit and another TTL. */
	uint8_t b[16];
	memcpy(b, hand_md2, 16);
	b[0] = 0x20;
	b[1] = 0x44; /* TTL 1 */
	assert_int_equal(nsh_decode(b, 16, CLS, &info, NULL), DROP_NONE);
	assert_int_equal(info.oam, 1);
	assert_int_equal(info.ttl, 1);
	/* md NULL and info NULL are allowed. */
	assert_int_equal(nsh_decode(hand_md2, 16, CLS, NULL, NULL), DROP_NONE);
	/* Under another class, our TLV is an unknown non-critical one. */
	assert_int_equal(nsh_decode(hand_md2, 16, 0xfff7, &info, &md), DROP_NONE);
	assert_int_equal(md.chain, 0);
	assert_int_equal(md.n_unknown, 8);
	assert_memory_equal(md.unknown, hand_md2 + 8, 8);
}

static void test_roundtrip_all(void **s)
{
	(void)s;
	struct sp_meta md, got;
	struct nsh_info info;
	full_md(&md);
	/* An unknown TLV of another class: class 0x0100, type 0x42, 3 bytes
	 * padded to 4. */
	const uint8_t unk[] = {0x01, 0x00, 0x42, 0x03, 0xde, 0xad, 0xbe, 0x00};
	memcpy(md.unknown, unk, sizeof(unk));
	md.n_unknown = sizeof(unk);
	uint8_t out[256];
	size_t n = nsh_encode(out, sizeof(out), md.spi, md.si, CLS, &md, NSH_TLV_ALL);
	assert_int_equal(n, nsh_encoded_len(&md, NSH_TLV_ALL));
	/* 8 + chain 8 + macs 16 + return6 28 + guest 12 + flowprog 8 + 8 */
	assert_int_equal(n, 88);
	assert_int_equal(out[1] & 0x3f, 88 / 4);
	assert_int_equal(nsh_decode(out, n, CLS, &info, &got), DROP_NONE);
	assert_int_equal(info.hdr_len, n);
	assert_int_equal(info.ttl, NSH_DEFAULT_TTL);
	assert_int_equal(info.spi, 0xabcdef);
	assert_int_equal(info.si, 200);
	assert_md_equal(&md, &got);

	/* IPv4 return address uses the 12-byte TLV. */
	assert_true(ipaddr_parse("192.0.2.9", &md.ret_vtep));
	n = nsh_encode(out, sizeof(out), md.spi, md.si, CLS, &md, NSH_TLV_ALL);
	assert_int_equal(n, 88 - 12);
	assert_int_equal(nsh_decode(out, n, CLS, &info, &got), DROP_NONE);
	assert_md_equal(&md, &got);

	/* No flow-programming action: that TLV is left out. */
	md.fp_action = FP_NONE;
	md.fp_service = 0;
	n = nsh_encode(out, sizeof(out), md.spi, md.si, CLS, &md, NSH_TLV_ALL);
	assert_int_equal(n, 88 - 12 - 8);
	assert_int_equal(nsh_decode(out, n, CLS, &info, &got), DROP_NONE);
	assert_md_equal(&md, &got);

	/* Only chain/direction: no unknown TLVs either. */
	n = nsh_encode(out, sizeof(out), md.spi, md.si, CLS, &md, NSH_TLV_CHAIN);
	assert_int_equal(n, 16);
	assert_int_equal(nsh_decode(out, n, CLS, &info, &got), DROP_NONE);
	assert_int_equal(got.chain, md.chain);
	assert_int_equal(got.n_unknown, 0);
	assert_true(mac_is_zero(&got.orig_dst));

	/* Every truncation of a valid header fails. */
	full_md(&md);
	n = nsh_encode(out, sizeof(out), md.spi, md.si, CLS, &md, NSH_TLV_ALL);
	for (size_t i = 0; i < n; i++) {
		uint8_t *c = malloc(i ? i : 1);
		memcpy(c, out, i);
		assert_int_not_equal(nsh_decode(c, i, CLS, &info, &got), DROP_NONE);
		free(c);
	}
	/* A payload after the header is not part of it. */
	memset(out + n, 0xee, 20);
	assert_int_equal(nsh_decode(out, n + 20, CLS, &info, &got), DROP_NONE);
	assert_int_equal(info.hdr_len, n);
}

/* nsh_decode, checked against nsh_decode_hop: the same verdict and, on
 * success, the same SPI, SI, chain and direction, with the rest of the
 * hop decoder's md untouched. */
static enum drop_reason both(const uint8_t *b, size_t n, uint16_t cls, struct nsh_info *info, struct sp_meta *md)
{
	enum drop_reason r = nsh_decode(b, n, cls, info, md);
	struct sp_meta hop, before;
	struct nsh_info hi = {0};
	memset(&hop, 0x5a, sizeof(hop));
	before = hop;
	assert_int_equal(nsh_decode_hop(b, n, cls, &hi, &hop), r);
	if (r != DROP_NONE)
		return r;
	assert_int_equal(hi.hdr_len, info->hdr_len);
	assert_int_equal(hi.next_proto, info->next_proto);
	assert_int_equal(hop.spi, md->spi);
	assert_int_equal(hop.si, md->si);
	assert_int_equal(hop.chain, md->chain);
	assert_int_equal(hop.dir, md->dir);
	hop.spi = before.spi, hop.si = before.si, hop.chain = before.chain, hop.dir = before.dir;
	assert_memory_equal(&hop, &before, sizeof(hop));
	return r;
}

static void test_md1(void **s)
{
	(void)s;
	uint8_t b[32] = {0x0f, 0xc6, 0x01, 0x03, 0, 0, 0x2a, 9};
	memset(b + 8, 0xff, 16); /* fixed context: opaque */
	struct nsh_info info;
	struct sp_meta md;
	assert_int_equal(both(b, 24, CLS, &info, &md), DROP_NONE);
	assert_int_equal(info.md_type, 1);
	assert_int_equal(info.hdr_len, 24);
	assert_int_equal(md.spi, 42);
	assert_int_equal(md.si, 9);
	assert_int_equal(md.chain, 0);
	assert_int_equal(both(b, 23, CLS, &info, &md), DROP_NSH_TRUNC);
	b[1] = 0xc5; /* MD1 must be 6 words */
	assert_int_equal(both(b, 24, CLS, &info, &md), DROP_NSH_BAD_LEN);
	b[1] = 0xc7;
	assert_int_equal(both(b, 32, CLS, &info, &md), DROP_NSH_BAD_LEN);
}

static void test_malformed(void **s)
{
	(void)s;
	struct nsh_info info;
	struct sp_meta md;
	uint8_t b[128];
	for (size_t i = 0; i < NSH_BASE_LEN; i++)
		assert_int_equal(both(hand_md2, i, CLS, &info, &md), DROP_NSH_TRUNC);
#define RESET() memcpy(b, hand_md2, sizeof(hand_md2))
	RESET();
	b[0] |= 0x40; /* version 1 */
	assert_int_equal(both(b, 16, CLS, &info, &md), DROP_NSH_BAD_VER);
	RESET();
	b[2] = 0x00;
	assert_int_equal(both(b, 16, CLS, &info, &md), DROP_NSH_BAD_MDTYPE);
	b[2] = 0x03;
	assert_int_equal(both(b, 16, CLS, &info, &md), DROP_NSH_BAD_MDTYPE);
	RESET();
	b[1] = 0xc1; /* 1 word: shorter than the base header */
	assert_int_equal(both(b, 16, CLS, &info, &md), DROP_NSH_BAD_LEN);
	RESET();
	b[1] = 0xc5; /* beyond the buffer */
	assert_int_equal(both(b, 16, CLS, &info, &md), DROP_NSH_TRUNC);
	RESET();
	b[0] = 0;
	b[1] = 0x04; /* TTL 0 */
	assert_int_equal(both(b, 16, CLS, &info, &md), DROP_NSH_TTL);
	RESET();
	b[1] = 0xc3; /* 12 bytes: a TLV header but its value is cut */
	assert_int_equal(both(b, 16, CLS, &info, &md), DROP_NSH_BAD_TLV);
	RESET();
	b[11] = 0x05; /* value length 5 (8 padded) runs past the header */
	assert_int_equal(both(b, 16, CLS, &info, &md), DROP_NSH_BAD_TLV);
	/* Known Detour TLV with the wrong length. */
	RESET();
	b[1] = 0xc5;
	b[11] = 0x08;
	memset(b + 16, 0, 4);
	assert_int_equal(both(b, 20, CLS, &info, &md), DROP_NSH_BAD_TLV);
	/* A direction other than forward (0) or reverse (1). */
	RESET();
	b[14] = 2;
	assert_int_equal(both(b, 16, CLS, &info, &md), DROP_NSH_BAD_TLV);
	b[14] = 0;
	assert_int_equal(both(b, 16, CLS, &info, &md), DROP_NONE);
	assert_int_equal(md.dir, SP_DIR_FORWARD);
	/* Unknown critical type of the Detour class. */
	RESET();
	b[10] = 0x80 | 0x33;
	assert_int_equal(both(b, 16, CLS, &info, &md), DROP_NSH_CRIT_TLV);
	/* Unknown non-critical type of the Detour class is kept. */
	b[10] = 0x33;
	assert_int_equal(both(b, 16, CLS, &info, &md), DROP_NONE);
	assert_int_equal(md.n_unknown, 8);
	/* A known type with the critical bit set is understood. */
	b[10] = 0x80 | DTLV_CHAIN_DIR;
	assert_int_equal(both(b, 16, CLS, &info, &md), DROP_NONE);
	assert_int_equal(md.chain, 7);
	/* Any critical TLV of another class. */
	RESET();
	b[8] = 0x00;
	b[9] = 0x01;
	b[10] = 0x81;
	assert_int_equal(both(b, 16, CLS, &info, &md), DROP_NSH_CRIT_TLV);
	/* Zero-length TLVs are valid. */
	RESET();
	b[1] = 0xc5;
	uint8_t z[4] = {0x12, 0x34, 0x01, 0x00};
	memcpy(b + 16, z, 4);
	assert_int_equal(both(b, 20, CLS, &info, &md), DROP_NONE);
	assert_int_equal(md.n_unknown, 4);
	assert_int_equal(md.chain, 7);
#undef RESET
}

/* Unknown TLVs beyond 64 bytes are dropped silently; the rest survives. */
static void test_unknown_overflow(void **s)
{
	(void)s;
	uint8_t b[252];
	memcpy(b, hand_md2, 8);
	size_t off = 8;
	for (int i = 0; i < 3; i++) { /* 3 x 28 bytes = 84 > 64 */
		wr16(b + off, 0x0200);
		b[off + 2] = (uint8_t)(0x10 + i);
		b[off + 3] = 24;
		memset(b + off + 4, i, 24);
		off += 28;
	}
	memcpy(b + off, hand_md2 + 8, 8); /* chain TLV after them */
	off += 8;
	b[1] = (uint8_t)(0xc0 | off / 4);
	struct nsh_info info;
	struct sp_meta md, again;
	assert_int_equal(nsh_decode(b, off, CLS, &info, &md), DROP_NONE);
	assert_int_equal(md.n_unknown, 56);
	assert_int_equal(md.unknown[2], 0x10);
	assert_int_equal(md.unknown[30], 0x11);
	assert_int_equal(md.chain, 7);
	uint8_t out[252];
	size_t n = nsh_encode(out, sizeof(out), md.spi, md.si, CLS, &md, NSH_TLV_ALL);
	assert_true(n > 0);
	assert_int_equal(nsh_decode(out, n, CLS, &info, &again), DROP_NONE);
	assert_md_equal(&md, &again);
}

static void test_geneve(void **s)
{
	(void)s;
	struct geneve_info gi;
	uint8_t b[64];
	assert_int_equal(geneve_encode(b, 7, 5, 0x6558), 0);
	assert_int_equal(geneve_encode(b, sizeof(b), 0x123456, 0x894f), 8);
	const uint8_t want[8] = {0, 0, 0x89, 0x4f, 0x12, 0x34, 0x56, 0};
	assert_memory_equal(b, want, 8);
	assert_int_equal(geneve_decode(b, 8, &gi), DROP_NONE);
	assert_int_equal(gi.vni, 0x123456);
	assert_int_equal(gi.proto, 0x894f);
	assert_int_equal(gi.hdr_len, 8);
	assert_int_equal(gi.opt_len, 0);
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(geneve_decode(b, i, &gi), DROP_GENEVE_TRUNC);
	geneve_encode(b, sizeof(b), 77, 0x6558);
	assert_int_equal(geneve_decode(b, 8, &gi), DROP_NONE);
	assert_int_equal(gi.proto, 0x6558);

	/* Two non-critical options: 4+4 and 4+8 bytes. */
	b[0] = 5;
	const uint8_t opts[20] = {0x01, 0x02, 0x03, 0x01, 1, 2, 3, 4,
				  0xff, 0xff, 0x7f, 0x02, 1, 2, 3, 4, 5, 6, 7, 8};
	memcpy(b + 8, opts, 20);
	assert_int_equal(geneve_decode(b, 28, &gi), DROP_NONE);
	assert_int_equal(gi.hdr_len, 28);
	assert_int_equal(gi.opt_len, 5);
	for (size_t i = 8; i < 28; i++)
		assert_int_equal(geneve_decode(b, i, &gi), DROP_GENEVE_TRUNC);
	/* A critical option. */
	b[8 + 10] = 0x80;
	assert_int_equal(geneve_decode(b, 28, &gi), DROP_GENEVE_CRIT_OPT);
	b[8 + 10] = 0x7f;
	/* The C bit alone. */
	b[1] = 0x40;
	assert_int_equal(geneve_decode(b, 28, &gi), DROP_GENEVE_CRIT_OPT);
	assert_true(gi.critical);
	b[1] = 0x80; /* O bit: fine */
	assert_int_equal(geneve_decode(b, 28, &gi), DROP_NONE);
	assert_true(gi.oam);
	b[1] = 0;
	/* Option length beyond the option area. */
	b[8 + 11] = 0x03;
	assert_int_equal(geneve_decode(b, 28, &gi), DROP_GENEVE_BAD_OPT);
	b[8 + 11] = 0x02;
	/* Option area ends inside an option header. */
	b[0] = 6;
	memset(b + 28, 0, 4);
	b[28] = 0; /* 4 more bytes: a zero-length option, fine */
	assert_int_equal(geneve_decode(b, 32, &gi), DROP_NONE);
	b[31] = 0x01; /* claims 4 more bytes: beyond */
	assert_int_equal(geneve_decode(b, 32, &gi), DROP_GENEVE_BAD_OPT);
	b[0] = 5;
	/* Version, protocol. */
	b[0] |= 0x40;
	assert_int_equal(geneve_decode(b, 28, &gi), DROP_GENEVE_BAD_VER);
	b[0] = 5;
	wr16(b + 2, 0x0800);
	assert_int_equal(geneve_decode(b, 28, &gi), DROP_GENEVE_BAD_PROTO);
	assert_int_equal(geneve_decode(b, 28, NULL), DROP_GENEVE_BAD_PROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hand_bytes),
		cmocka_unit_test(test_roundtrip_all),
		cmocka_unit_test(test_md1),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_unknown_overflow),
		cmocka_unit_test(test_geneve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* nsh.h - NSH (RFC 8300) with the Detour context TLVs of SPEC section 4,
 * MD type 1 and 2, and Geneve (RFC 8926).
 *
 * Owns: the byte layout of NSH, of the Detour metadata class and of Geneve.
 * Decoders check every length against the buffer and return a drop reason.
 * Must not: keep state. */
#ifndef DETOUR_NSH_H
#define DETOUR_NSH_H

#include "drop.h"
#include "pkt.h"

#define NSH_BASE_LEN 8      /* base header + service path header */
#define NSH_DEFAULT_TTL 63
#define NSH_MD_TYPE1 1
#define NSH_MD_TYPE2 2
#define NSH_NP_IPV4 1
#define NSH_NP_IPV6 2
#define NSH_NP_ETHERNET 3
#define DETOUR_MD_CLASS_DEFAULT 0xFFF6

/* Detour TLV types (within the metadata class). Bit 0x80 = critical. */
enum detour_tlv {
	DTLV_CHAIN_DIR = 1,   /* 4 bytes: chain id (16), direction (8), flags (8: bit0 ingress, bit1 copy) */
	DTLV_ORIG_MACS = 2,   /* 12 bytes: original dst MAC, src MAC */
	DTLV_RETURN4 = 3,     /* 12 bytes: VTEP IPv4 (4), port proxy spmac (6), pad (2) */
	DTLV_RETURN6 = 4,     /* 24 bytes: VTEP IPv6 (16), spmac (6), pad (2) */
	DTLV_GUEST = 5,       /* 8 bytes: guest VNI (24) + pad (8), guest port id (16), flow tag (16) */
	DTLV_FLOWPROG = 6,    /* 4 bytes: action (8), pad (8), service position (16) */
};

/* Which TLVs to write: the full set for the service plane between hosts, or
 * only chain/direction for a service node (mode nsh). */
#define NSH_TLV_CHAIN (1u << 0)
#define NSH_TLV_ALL 0xffffu

struct nsh_info {
	uint8_t ver, oam, ttl, md_type, next_proto;
	uint32_t spi;
	uint8_t si;
	size_t hdr_len; /* bytes of NSH including metadata */
};

/* Decode NSH at p[0..len). Fills info and, for MD type 2 with the Detour
 * class `md_class`, md (unknown non-critical TLVs are kept in md->unknown;
 * unknown critical ones give DROP_NSH_CRIT_TLV). md may be NULL. */
enum drop_reason nsh_decode(const uint8_t *p, size_t len, uint16_t md_class, struct nsh_info *info,
			    struct sp_meta *md);
/* The same checks for a frame a service node returns, whose metadata the
 * service proxy recovers from its own state: of md, only spi, si, chain and
 * dir are written (chain and dir 0 without the chain TLV); info is filled
 * as far as the checks got. */
enum drop_reason nsh_decode_hop(const uint8_t *p, size_t len, uint16_t md_class, struct nsh_info *info,
				struct sp_meta *md);
/* Encode NSH MD type 2, next protocol Ethernet, TTL 63, with the TLVs in
 * `which` from md (plus md->unknown when which == NSH_TLV_ALL). Returns bytes
 * written, 0 if room is too small. */
size_t nsh_encode(uint8_t *out, size_t room, uint32_t spi, uint8_t si, uint16_t md_class,
		  const struct sp_meta *md, unsigned which);
/* Encoded length nsh_encode would produce. */
size_t nsh_encoded_len(const struct sp_meta *md, unsigned which);

#define GENEVE_PORT 6081
#define GENEVE_BASE_LEN 8

struct geneve_info {
	uint8_t ver;
	uint8_t opt_len;   /* in 4-byte words */
	bool oam, critical;
	uint16_t proto;
	uint32_t vni;
	size_t hdr_len;
};

enum drop_reason geneve_decode(const uint8_t *p, size_t len, struct geneve_info *info);
size_t geneve_encode(uint8_t *out, size_t room, uint32_t vni, uint16_t proto);

#endif

/* icmperr.h - what happens to a guest packet too big for the path once
 * encapsulated (issue 3, item 2): an ICMP "fragmentation needed" (IPv4 with
 * DF) or ICMPv6 "packet too big" back to the guest so that path MTU
 * discovery works, or IPv4 fragmentation (RFC 791) without DF.
 *
 * Owns: the decision and the byte layout of those replies and fragments.
 * Must not: keep state, count (the caller counts DROP_TOO_BIG / replies /
 * fragments), or know where the guest is (the caller delivers the reply to
 * the port the frame came from). */
#ifndef DETOUR_ICMPERR_H
#define DETOUR_ICMPERR_H

#include "drop.h"
#include "pkt.h"

#define ICMPERR_V4_MAX 576   /* total length of an ICMP error (RFC 1812 4.3.2.3) */
#define ICMPERR_V6_MAX 1280  /* total length of an ICMPv6 error (RFC 4443 2.4(c)) */
#define IPV4_MIN_MTU 68
#define IPV6_MIN_MTU 1280

enum mtu_action {
	MTU_FITS = 0,     /* the IP packet is within ip_mtu: send it */
	MTU_TOO_BIG = 1,  /* IPv4 with DF, or IPv6: reply with icmperr_build_too_big(), drop it */
	MTU_FRAGMENT = 2, /* IPv4 without DF: send ipv4_fragment()'s fragments instead */
	MTU_DROP = 3,     /* too big and not IP (or malformed): drop (DROP_TOO_BIG) */
};

/* Decide for the frame frame[0..len) given the largest IP packet (bytes
 * from the IP header on) the path carries. Frames whose IP packet fits, and
 * non-IP frames whose length minus their L2 header fits, give MTU_FITS. */
enum mtu_action mtu_check(const uint8_t *frame, size_t len, uint32_t ip_mtu);

/* Build in out (an empty pool buffer) the reply to the guest that sent
 * frame[0..len): Ethernet (dst = frame's src MAC, src = frame's dst MAC,
 * same VLAN tags), IP from the original destination to the original
 * source, ICMP type 3 code 4 with the next-hop MTU / ICMPv6 type 2 with the
 * MTU (ip_mtu clamped to 68..65535 / 1280..), then as much of the original
 * IP packet as fits in 576 / 1280 bytes, checksums complete; out is parsed
 * (wire_parse). Returns the frame length, or 0 when no error may be sent
 * (RFC 1122 3.2.2 / RFC 4443 2.4(e): about an ICMP error, a non-first
 * fragment, a multicast/broadcast or unspecified address, malformed). */
size_t icmperr_build_too_big(const uint8_t *frame, size_t len, uint32_t ip_mtu, struct pkt *out);

/* Split the IPv4 packet of p (without DF) into fragments of at most ip_mtu
 * bytes of IP packet: same L2 header, identification, offsets in 8-byte
 * units added to p's own offset, MF on all but the last (which keeps p's
 * MF), options only those with the copy bit after the first, header
 * checksums. Each fragment is a buffer from pool with p's port, hash,
 * flags and md (and is parsed); they are stored in out[0..]. Returns the
 * number of fragments, or -reason: DROP_TOO_BIG (DF set, ip_mtu < 68, more
 * than out_room fragments), DROP_POOL_EMPTY, or the parse drop reason. p is
 * not modified or freed. */
int ipv4_fragment(const struct pkt *p, uint32_t ip_mtu, struct pkt_pool *pool, struct pkt **out,
		  uint32_t out_room);

#endif

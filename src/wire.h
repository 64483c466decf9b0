/* wire.h - parsers and builders for the headers of SPEC section 4 below the
 * service plane: Ethernet, 802.1Q, ARP, IPv4, IPv6 (+ extension headers),
 * TCP, UDP, ICMP, ICMPv6; Internet checksums; software segmentation and
 * checksum completion for frames that arrive with offloads (GSO/partial
 * checksum).
 *
 * Owns: byte layouts. Every parser is bounds-checked against the length it
 * is given and returns a drop reason instead of reading past it.
 * Must not: keep state or know about ports, rules or paths. */
#ifndef DETOUR_WIRE_H
#define DETOUR_WIRE_H

#include "drop.h"
#include "flow.h"
#include "pkt.h"

#define ETH_HLEN 14
#define ETH_P_IPV4 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_VLAN 0x8100
#define ETH_P_QINQ 0x88a8
#define ETH_P_IPV6 0x86dd
#define ETH_P_TEB 0x6558  /* transparent Ethernet bridging (Geneve guest plane) */
#define ETH_P_NSH 0x894f

/* Parse the frame p->data[0..p->len): fills p->lay and p->key (vni/zone
 * left as they are) and sets PKT_F_PARSED. Returns DROP_NONE or why the
 * frame is malformed. Non-IP frames (ARP, ...) are valid with key.is_ip = 0.
 * Frames with IP fragments: non-first fragments have lay.is_frag = 1 and
 * ports 0. */
enum drop_reason wire_parse(struct pkt *p);

/* Lower-level parse on a raw buffer, for code that holds no struct pkt;
 * like wire_parse, it keeps key->zone and key->vni (initialise them). */
enum drop_reason wire_parse_buf(const uint8_t *frame, size_t len, struct pkt_layout *lay,
				struct flow_key *key);

/* Internet checksum helpers (RFC 1071). */
uint32_t csum_partial(const void *data, size_t len, uint32_t sum);
uint16_t csum_fold(uint32_t sum);
/* Sum of the pseudo-header of an L4 segment of l4len bytes with protocol
 * proto, the IP header at f + l3 (IPv6 when v6). */
uint32_t csum_pseudo(const uint8_t *f, size_t l3, bool v6, uint8_t proto, size_t l4len);
/* Recompute IPv4 header checksum in place (hdr points at the IPv4 header). */
void ipv4_set_csum(uint8_t *hdr);
/* Compute and store the full TCP/UDP/ICMP/ICMPv6 checksum of a parsed
 * packet (used for frames received with a partial checksum). Returns false
 * if the packet has no L4 checksum to complete. */
bool wire_l4_csum_fill(struct pkt *p);

/* Software segmentation of an oversized TCP frame (received through GSO):
 * splits frame[0..len) into segments of at most `mtu` bytes of IP packet,
 * each with correct IP lengths/ids, TCP seq/flags and full checksums,
 * written into buffers taken from pool and appended to out (up to
 * out_room). Returns segments produced, or -reason on malformed input or
 * non-TCP. */
int wire_tcp_segment(const uint8_t *frame, size_t len, uint16_t mtu, struct pkt_pool *pool,
		     struct pkt **out, uint32_t out_room);

/* Builders (return bytes written, 0 if no room). */
size_t eth_build(uint8_t *out, size_t room, const struct mac *dst, const struct mac *src, uint16_t type);
/* ARP reply to `req` (a parsed ARP request frame) announcing `mac` for the
 * asked address; written as a full Ethernet frame. */
size_t arp_build_reply(uint8_t *out, size_t room, const uint8_t *req, size_t req_len, const struct mac *mac);
/* Neighbour advertisement answering an IPv6 neighbour solicitation frame. */
size_t nd_build_advert(uint8_t *out, size_t room, const uint8_t *ns, size_t ns_len, const struct mac *mac);
/* Is this frame an ARP request / an ICMPv6 neighbour solicitation? */
bool wire_is_arp_request(const uint8_t *frame, size_t len);
bool wire_is_neigh_solicit(const uint8_t *frame, size_t len);

#endif

/* tunnel.h - the Geneve tunnel between hosts (SPEC section 4): the UDP
 * payload of the guest plane (Geneve 0x6558 + Ethernet frame) and of the
 * service plane (Geneve 0x894F + NSH MD2 with the Detour TLVs + frame).
 *
 * Owns: building that payload in the headroom of a struct pkt (no copy of
 * the frame) and validating/stripping it on receive; the choice of the
 * outer UDP source port from a flow hash.
 * Also the outer Ethernet/IP/UDP headers, for an underlay that sends and
 * receives on an AF_XDP uplink itself (underlay.h); over its UDP sockets
 * they are the kernel's.
 * Must not: do I/O, allocate, or know the topology (VNIs and the metadata
 * class are given by the caller). */
#ifndef DETOUR_TUNNEL_H
#define DETOUR_TUNNEL_H

#include "drop.h"
#include "nsh.h"
#include "pkt.h"

#define TUNNEL_PROTO_ETH 0x6558 /* Geneve protocol type: guest plane */
#define TUNNEL_PROTO_NSH 0x894f /* Geneve protocol type: service plane */

/* Bytes the kernel adds outside the Geneve payload (outer IP + UDP). */
#define TUNNEL_OUTER_V4 (20 + 8)
#define TUNNEL_OUTER_V6 (40 + 8)
/* Geneve payload bytes added in front of a guest-plane frame. */
#define TUNNEL_GUEST_ENCAP GENEVE_BASE_LEN

/* Drop reasons used for cases drop.h has no own reason for yet (see the
 * report): a Geneve or NSH OAM/control packet (we implement none, RFC 8926
 * says its payload must not be forwarded), and an NSH next protocol other
 * than Ethernet. */
#define TUNNEL_DROP_OAM DROP_GENEVE_BAD_PROTO
#define TUNNEL_DROP_NSH_NP DROP_NSH_BAD_MDTYPE

enum tunnel_kind {
	TUN_DROP = 0,    /* malformed: see why */
	TUN_GUEST = 1,   /* guest-plane Ethernet frame of network vni */
	TUN_SERVICE = 2, /* service-plane frame, p->md filled, of service-plane vni */
};

struct tunnel_rx {
	enum tunnel_kind kind;
	enum drop_reason why; /* DROP_NONE unless kind == TUN_DROP */
	uint32_t vni;         /* Geneve VNI */
	uint8_t ttl;          /* service plane: NSH TTL after this hop's decrement (>= 1) */
};

/* Bytes tunnel_encap_sp() puts in front of the frame for this metadata. */
size_t tunnel_sp_encap_len(const struct sp_meta *md);

/* Service plane: p->data..len is the service-plane Ethernet frame (dst =
 * next spmac), p->md its metadata. Pushes Geneve(sp_vni, 0x894F) + NSH MD2
 * (SPI md.spi, SI md.si, all Detour TLVs of class md_class, TTL ttl; ttl 0
 * means the default 63) in front of it, so that p->data..len becomes the UDP
 * payload. If the headroom is short the frame is moved back within the
 * buffer (rare). Returns DROP_NONE, or DROP_TOO_BIG when the buffer cannot
 * hold it (p unchanged). */
enum drop_reason tunnel_encap_sp(struct pkt *p, uint32_t sp_vni, uint16_t md_class, uint8_t ttl);

/* Guest plane: pushes Geneve(vni, 0x6558) in front of the frame. */
enum drop_reason tunnel_encap_guest(struct pkt *p, uint32_t vni);

/* Receive: p->data..len is a UDP payload from port 6081. Validates Geneve
 * (version 0, options well formed, no critical option, no OAM) and, for
 * 0x894F, NSH (MD type 2, next protocol Ethernet, Detour TLVs of md_class,
 * TTL: decremented here, dropped with DROP_NSH_TTL when it reaches 0),
 * fills p->md and sets PKT_F_HAS_MD, then pulls so that p->data points at
 * the inner Ethernet frame (at least 14 bytes, else DROP_ETH_TRUNC).
 * Clears PKT_F_PARSED. On TUN_DROP, p->data/len are unchanged and
 * PKT_F_HAS_MD is clear. The caller checks the VNI (service-plane VNI for
 * TUN_SERVICE, a known network for TUN_GUEST). */
struct tunnel_rx tunnel_decap(struct pkt *p, uint16_t md_class);

/* ---- outer headers (AF_XDP uplink) ---- */

#define TUNNEL_ETH_OUTER_V4 (14 + TUNNEL_OUTER_V4)
#define TUNNEL_ETH_OUTER_V6 (14 + TUNNEL_OUTER_V6)

/* What a host puts around every Geneve payload it sends to one peer. */
struct tunnel_outer {
	uint8_t dst_mac[6], src_mac[6]; /* next hop, uplink */
	struct ipaddr src, dst;         /* this VTEP, the peer's (same family) */
};

/* Push Ethernet + IPv4 or IPv6 + UDP (sport -> dport) in front of
 * p->data..len, the Geneve payload. IPv4: DF, TTL 64, header checksum,
 * UDP checksum 0 (RFC 8926 section 3.3); IPv6: hop limit 64, UDP checksum
 * computed (a zero one is not allowed). DROP_TOO_BIG when the buffer cannot
 * hold it or the IP packet would exceed 65535 bytes (p unchanged). */
enum drop_reason tunnel_outer_push(struct pkt *p, const struct tunnel_outer *o, uint16_t sport, uint16_t dport);

/* Receive: p->data..len is a frame from the uplink. It must be untagged
 * Ethernet carrying IPv4 (version 4, IHL >= 5, header checksum right,
 * total length within the frame, not a fragment) or IPv6 (payload length
 * within the frame, next header UDP), addressed to vtep, with UDP to port
 * (length within the IP packet, checksum right when not zero; zero is
 * refused over IPv6). Ethernet padding after the IP packet is cut off. On
 * DROP_NONE p->data..len is the UDP payload and *from the sender's
 * address; on a drop reason p is unchanged. */
enum drop_reason tunnel_outer_pull(struct pkt *p, const struct ipaddr *vtep, uint16_t port, struct ipaddr *from);

/* UDP source port for a flow hash, in the ephemeral range 49152..65535
 * (RFC 8926 section 3.3: entropy for underlay ECMP). */
uint16_t tunnel_src_port(uint64_t flow_hash);

/* Largest inner IP packet (without the inner Ethernet header of l2_len
 * bytes) that fits an underlay of `mtu` once encapsulated with `encap_len`
 * Geneve payload bytes in front of the frame; 0 if none fits. */
uint32_t tunnel_inner_mtu(uint32_t mtu, bool underlay_v6, size_t encap_len, size_t l2_len);

#endif

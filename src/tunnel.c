/* tunnel.c - Geneve (+ NSH) encapsulation and decapsulation of the payload
 * carried between hosts over UDP 6081.
 *
 * Owns: the Geneve payload layout produced/consumed in a struct pkt.
 * Must not: do I/O, allocate, keep state, or read outside p->data..len. */
#include "tunnel.h"

#include "wire.h"

/* The NSH TTL is 6 bits across bytes 0 and 1 of the base header. */
static void nsh_set_ttl(uint8_t *h, uint8_t ttl)
{
	h[0] = (uint8_t)((h[0] & 0xf0) | ((ttl >> 2) & 0x0f));
	h[1] = (uint8_t)((h[1] & 0x3f) | (ttl & 3) << 6);
}

/* Make sure n bytes can be pushed: move the frame towards the end of the
 * buffer if the headroom is short but the buffer is big enough. */
static bool make_headroom(struct pkt *p, size_t n)
{
	if (pkt_headroom(p) >= n)
		return true;
	if (p->len > sizeof(p->buf) || n > sizeof(p->buf) - p->len)
		return false;
	size_t want = MIN((size_t)PKT_HEADROOM, sizeof(p->buf) - p->len);
	if (want < n)
		want = n;
	uint8_t *dst = p->buf + want;
	memmove(dst, p->data, p->len);
	p->data = dst;
	return true;
}

size_t tunnel_sp_encap_len(const struct sp_meta *md)
{
	return GENEVE_BASE_LEN + nsh_encoded_len(md, NSH_TLV_ALL);
}

enum drop_reason tunnel_encap_sp(struct pkt *p, uint32_t sp_vni, uint16_t md_class, uint8_t ttl)
{
	size_t nlen = nsh_encoded_len(&p->md, NSH_TLV_ALL);
	size_t total = GENEVE_BASE_LEN + nlen;
	if (!make_headroom(p, total))
		return DROP_TOO_BIG;
	uint8_t *h = pkt_push(p, total);
	if (!h)
		return DROP_TOO_BIG;
	geneve_encode(h, GENEVE_BASE_LEN, sp_vni, TUNNEL_PROTO_NSH);
	if (nsh_encode(h + GENEVE_BASE_LEN, nlen, p->md.spi, p->md.si, md_class, &p->md, NSH_TLV_ALL) != nlen) {
		pkt_pull(p, total);
		return DROP_TOO_BIG;
	}
	if (ttl)
		nsh_set_ttl(h + GENEVE_BASE_LEN, ttl > 63 ? 63 : ttl);
	return DROP_NONE;
}

enum drop_reason tunnel_encap_guest(struct pkt *p, uint32_t vni)
{
	if (!make_headroom(p, GENEVE_BASE_LEN))
		return DROP_TOO_BIG;
	uint8_t *h = pkt_push(p, GENEVE_BASE_LEN);
	if (!h)
		return DROP_TOO_BIG;
	geneve_encode(h, GENEVE_BASE_LEN, vni, TUNNEL_PROTO_ETH);
	return DROP_NONE;
}

static struct tunnel_rx rx_drop(struct pkt *p, enum drop_reason why)
{
	p->flags &= ~PKT_F_HAS_MD;
	return (struct tunnel_rx){.kind = TUN_DROP, .why = why};
}

struct tunnel_rx tunnel_decap(struct pkt *p, uint16_t md_class)
{
	struct geneve_info gi;
	enum drop_reason r = geneve_decode(p->data, p->len, &gi);
	if (r != DROP_NONE)
		return rx_drop(p, r);
	if (gi.oam)
		return rx_drop(p, TUNNEL_DROP_OAM);
	size_t off = gi.hdr_len;
	struct tunnel_rx rx = {.vni = gi.vni};
	if (gi.proto == TUNNEL_PROTO_ETH) {
		if (p->len - off < ETH_HLEN)
			return rx_drop(p, DROP_ETH_TRUNC);
		rx.kind = TUN_GUEST;
		p->flags &= ~(PKT_F_HAS_MD | PKT_F_PARSED);
		pkt_pull(p, off);
		return rx;
	}
	if (gi.proto != TUNNEL_PROTO_NSH)
		return rx_drop(p, DROP_GENEVE_BAD_PROTO);
	struct nsh_info ni;
	r = nsh_decode(p->data + off, p->len - off, md_class, &ni, &p->md);
	if (r != DROP_NONE)
		return rx_drop(p, r);
	if (ni.md_type != NSH_MD_TYPE2)
		return rx_drop(p, DROP_NSH_BAD_MDTYPE);
	if (ni.oam)
		return rx_drop(p, TUNNEL_DROP_OAM);
	if (ni.next_proto != NSH_NP_ETHERNET)
		return rx_drop(p, TUNNEL_DROP_NSH_NP);
	/* RFC 8300 section 2.2: decrement before forwarding, never forward at 0
	 * (nsh_decode has refused an incoming 0). */
	if (ni.ttl <= 1)
		return rx_drop(p, DROP_NSH_TTL);
	off += ni.hdr_len;
	if (p->len - off < ETH_HLEN)
		return rx_drop(p, DROP_ETH_TRUNC);
	rx.kind = TUN_SERVICE;
	rx.ttl = (uint8_t)(ni.ttl - 1);
	p->flags = (p->flags & ~PKT_F_PARSED) | PKT_F_HAS_MD;
	pkt_pull(p, off);
	return rx;
}

uint16_t tunnel_src_port(uint64_t flow_hash)
{
	uint64_t h = flow_hash ^ flow_hash >> 32;
	h ^= h >> 16;
	return (uint16_t)(49152u + (h & 0x3fffu));
}

uint32_t tunnel_inner_mtu(uint32_t mtu, bool underlay_v6, size_t encap_len, size_t l2_len)
{
	uint64_t over = (uint64_t)(underlay_v6 ? TUNNEL_OUTER_V6 : TUNNEL_OUTER_V4) + encap_len + l2_len;
	return mtu > over ? (uint32_t)(mtu - over) : 0;
}

/* ---- outer headers (AF_XDP uplink) ---- */

enum drop_reason tunnel_outer_push(struct pkt *p, const struct tunnel_outer *o, uint16_t sport, uint16_t dport)
{
	bool v4 = ipaddr_is_v4(&o->dst);
	size_t ip_len = v4 ? 20 : 40, hdr = ETH_HLEN + ip_len + 8;
	size_t udp_len = (size_t)p->len + 8;
	if (udp_len + (v4 ? ip_len : 0) > 0xffff || !make_headroom(p, hdr))
		return DROP_TOO_BIG;
	uint8_t *h = pkt_push(p, hdr);
	if (!h)
		return DROP_TOO_BIG;
	memcpy(h, o->dst_mac, 6);
	memcpy(h + 6, o->src_mac, 6);
	wr16(h + 12, v4 ? ETH_P_IPV4 : ETH_P_IPV6);
	uint8_t *ip = h + ETH_HLEN, *udp = ip + ip_len;
	wr16(udp, sport);
	wr16(udp + 2, dport);
	wr16(udp + 4, (uint16_t)udp_len);
	wr16(udp + 6, 0);
	if (v4) {
		ip[0] = 0x45;
		ip[1] = 0;
		wr16(ip + 2, (uint16_t)(ip_len + udp_len));
		wr32(ip + 4, 0x4000); /* id 0, DF: never fragmented (RFC 6864) */
		ip[8] = 64;
		ip[9] = 17;
		memcpy(ip + 12, o->src.b + 12, 4);
		memcpy(ip + 16, o->dst.b + 12, 4);
		ipv4_set_csum(ip);
	} else {
		wr32(ip, 0x60000000);
		wr16(ip + 4, (uint16_t)udp_len);
		ip[6] = 17;
		ip[7] = 64;
		memcpy(ip + 8, o->src.b, 16);
		memcpy(ip + 24, o->dst.b, 16);
		uint16_t c = csum_fold(csum_partial(udp, udp_len, csum_pseudo(h, ETH_HLEN, true, 17, udp_len)));
		wr16(udp + 6, c ? c : 0xffff);
	}
	return DROP_NONE;
}

enum drop_reason tunnel_outer_pull(struct pkt *p, const struct ipaddr *vtep, uint16_t port, struct ipaddr *from)
{
	const uint8_t *f = p->data;
	size_t len = p->len;
	if (len < ETH_HLEN)
		return DROP_ETH_TRUNC;
	uint16_t type = rd16(f + 12);
	const uint8_t *ip = f + ETH_HLEN;
	size_t room = len - ETH_HLEN, ip_hl, ip_total;
	struct ipaddr src;
	if (type == ETH_P_IPV4) {
		if (room < 20)
			return DROP_IP4_TRUNC;
		if (ip[0] >> 4 != 4)
			return DROP_IP4_BAD_VER;
		ip_hl = (size_t)(ip[0] & 0x0f) * 4;
		if (ip_hl < 20 || ip_hl > room)
			return DROP_IP4_BAD_IHL;
		ip_total = rd16(ip + 2);
		if (ip_total < ip_hl || ip_total > room)
			return DROP_IP4_BAD_LEN;
		if (csum_fold(csum_partial(ip, ip_hl, 0)) != 0)
			return DROP_IP4_BAD_CSUM;
		if (!ipaddr_is_v4(vtep) || memcmp(ip + 16, vtep->b + 12, 4) != 0 || ip[9] != 17 ||
		    (rd16(ip + 6) & 0x3fff) != 0)
			return DROP_UL_NOT_GENEVE;
		ipaddr_from_v4(&src, ip + 12);
	} else if (type == ETH_P_IPV6) {
		if (room < 40)
			return DROP_IP6_TRUNC;
		if (ip[0] >> 4 != 6)
			return DROP_IP6_BAD_VER;
		ip_hl = 40;
		ip_total = 40 + (size_t)rd16(ip + 4);
		if (ip_total > room)
			return DROP_IP6_BAD_LEN;
		if (ipaddr_is_v4(vtep) || memcmp(ip + 24, vtep->b, 16) != 0 || ip[6] != 17)
			return DROP_UL_NOT_GENEVE;
		memcpy(src.b, ip + 8, 16);
	} else {
		return DROP_UL_NOT_GENEVE;
	}
	const uint8_t *udp = ip + ip_hl;
	size_t udp_room = ip_total - ip_hl;
	if (udp_room < 8)
		return DROP_UDP_TRUNC;
	size_t udp_len = rd16(udp + 4);
	if (udp_len < 8 || udp_len > udp_room)
		return DROP_UDP_BAD_LEN;
	if (rd16(udp + 2) != port)
		return DROP_UL_NOT_GENEVE;
	uint16_t c = rd16(udp + 6);
	bool v6 = type == ETH_P_IPV6;
	if ((c || v6) &&
	    (!c || csum_fold(csum_partial(udp, udp_len, csum_pseudo(f, ETH_HLEN, v6, 17, udp_len))) != 0))
		return DROP_UDP_BAD_CSUM;
	size_t off = (size_t)(udp - f) + 8;
	pkt_pull(p, off);
	p->len = (uint32_t)(udp_len - 8);
	*from = src;
	return DROP_NONE;
}

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

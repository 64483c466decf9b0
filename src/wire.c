/* wire.c - Ethernet/802.1Q/ARP/IPv4/IPv6/TCP/UDP/ICMP parsing, Internet
 * checksums, software TCP segmentation and the ARP/ND reply builders.
 *
 * Owns: byte layouts below the service plane. Every read is checked against
 * the length given; malformed input yields a drop reason, never a read past
 * the end.
 * Must not: keep state, or know about ports, rules, paths or NSH. */
#include "wire.h"

#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_ICMP_ 1
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_AH_ 51
#define IPPROTO_ICMPV6_ 58
#define IPPROTO_DSTOPTS_ 60

#define IP6_HLEN 40
#define IP6_MAX_EXT 8
#define ARP_LEN 28
#define TCP_F_FIN 0x01
#define TCP_F_PSH 0x08
#define TCP_F_CWR 0x80

/* What the parser learns beyond struct pkt_layout. */
struct parse_more {
	size_t ip_end;   /* end of the IP packet (frame may carry padding after) */
	bool fragmented; /* first fragment of a fragmented datagram */
	bool v6;
};

static enum drop_reason parse_l4(const uint8_t *f, size_t off, size_t end, uint8_t proto, bool frag,
				 struct pkt_layout *lay, struct flow_key *key)
{
	lay->l4 = (uint16_t)off;
	size_t room = end - off;
	switch (proto) {
	case IPPROTO_TCP_: {
		if (room < 20)
			return DROP_TCP_TRUNC;
		size_t doff = (size_t)(f[off + 12] >> 4) * 4;
		if (doff < 20)
			return DROP_TCP_BAD_OFF;
		if (doff > room)
			return DROP_TCP_TRUNC;
		key->sport = rd16(f + off);
		key->dport = rd16(f + off + 2);
		lay->tcp_flags = f[off + 13];
		lay->payload = (uint16_t)(off + doff);
		return DROP_NONE;
	}
	case IPPROTO_UDP_: {
		if (room < 8)
			return DROP_UDP_TRUNC;
		size_t ulen = rd16(f + off + 4);
		/* A first fragment carries only part of the datagram. */
		if (!frag && (ulen < 8 || ulen > room))
			return DROP_UDP_BAD_LEN;
		key->sport = rd16(f + off);
		key->dport = rd16(f + off + 2);
		lay->payload = (uint16_t)(off + 8);
		return DROP_NONE;
	}
	case IPPROTO_ICMP_:
	case IPPROTO_ICMPV6_: {
		if (room < 8)
			return DROP_ICMP_TRUNC;
		uint8_t type = f[off], code = f[off + 1];
		bool echo = proto == IPPROTO_ICMP_ ? (type == 8 || type == 0) : (type == 128 || type == 129);
		if (echo) {
			key->sport = key->dport = rd16(f + off + 4);
		} else {
			key->sport = type;
			key->dport = code;
		}
		lay->payload = (uint16_t)(off + 8);
		return DROP_NONE;
	}
	default:
		return DROP_NONE;
	}
}

static enum drop_reason parse_ip4(const uint8_t *f, size_t off, size_t len, struct pkt_layout *lay,
				  struct flow_key *key, struct parse_more *m)
{
	if (len - off < 20)
		return DROP_IP4_TRUNC;
	const uint8_t *h = f + off;
	if (h[0] >> 4 != 4)
		return DROP_IP4_BAD_VER;
	size_t ihl = (size_t)(h[0] & 0x0f) * 4;
	if (ihl < 20)
		return DROP_IP4_BAD_IHL;
	if (ihl > len - off)
		return DROP_IP4_TRUNC;
	size_t tot = rd16(h + 2);
	if (tot < ihl || tot > len - off)
		return DROP_IP4_BAD_LEN;
	m->ip_end = off + tot;
	key->is_ip = 1;
	ipaddr_from_v4(&key->src, h + 12);
	ipaddr_from_v4(&key->dst, h + 16);
	key->proto = h[9];
	lay->l4proto = h[9];
	uint16_t frag = rd16(h + 6);
	if (frag & 0x1fff) {
		lay->is_frag = 1;
		return DROP_NONE;
	}
	m->fragmented = frag & 0x2000;
	return parse_l4(f, off + ihl, m->ip_end, h[9], m->fragmented, lay, key);
}

static enum drop_reason parse_ip6(const uint8_t *f, size_t off, size_t len, struct pkt_layout *lay,
				  struct flow_key *key, struct parse_more *m)
{
	if (len - off < IP6_HLEN)
		return DROP_IP6_TRUNC;
	const uint8_t *h = f + off;
	if (h[0] >> 4 != 6)
		return DROP_IP6_BAD_VER;
	size_t plen = rd16(h + 4);
	if (plen > len - off - IP6_HLEN)
		return DROP_IP6_BAD_LEN;
	size_t end = off + IP6_HLEN + plen;
	m->ip_end = end;
	m->v6 = true;
	key->is_ip = 1;
	memcpy(key->src.b, h + 8, 16);
	memcpy(key->dst.b, h + 24, 16);
	uint8_t nh = h[6];
	size_t p = off + IP6_HLEN;
	for (int n = 0;; n++) {
		size_t elen;
		if (nh != IPPROTO_HOPOPTS_ && nh != IPPROTO_ROUTING_ && nh != IPPROTO_FRAGMENT_ &&
		    nh != IPPROTO_DSTOPTS_ && nh != IPPROTO_AH_)
			break;
		if (n == IP6_MAX_EXT)
			return DROP_IP6_EXT_CHAIN;
		if (end - p < 8) /* every extension header is at least 8 bytes */
			return DROP_IP6_EXT_TRUNC;
		if (nh == IPPROTO_FRAGMENT_)
			elen = 8;
		else if (nh == IPPROTO_AH_)
			elen = ((size_t)f[p + 1] + 2) * 4;
		else
			elen = ((size_t)f[p + 1] + 1) * 8;
		if (elen > end - p)
			return DROP_IP6_EXT_TRUNC;
		uint8_t next = f[p];
		if (nh == IPPROTO_FRAGMENT_) {
			uint16_t fo = rd16(f + p + 2);
			if (fo & 0xfff8) {
				key->proto = next;
				lay->l4proto = next;
				lay->is_frag = 1;
				return DROP_NONE;
			}
			if (fo & 1)
				m->fragmented = true;
		}
		nh = next;
		p += elen;
	}
	key->proto = nh;
	lay->l4proto = nh;
	return parse_l4(f, p, end, nh, m->fragmented, lay, key);
}

static enum drop_reason parse(const uint8_t *f, size_t len, struct pkt_layout *lay, struct flow_key *key,
			      struct parse_more *m)
{
	uint16_t zone = key->zone;
	uint32_t vni = key->vni;
	memset(key, 0, sizeof(*key));
	key->zone = zone;
	key->vni = vni;
	memset(lay, 0, sizeof(*lay));
	lay->l3 = lay->l4 = lay->payload = PKT_OFF_NONE;
	memset(m, 0, sizeof(*m));
	if (len < ETH_HLEN)
		return DROP_ETH_TRUNC;
	uint16_t type = rd16(f + 12);
	size_t off = ETH_HLEN;
	for (int tags = 0; tags < 2 && (type == ETH_P_VLAN || type == ETH_P_QINQ); tags++) {
		if (len - off < 4)
			return DROP_VLAN_TRUNC;
		if (tags == 0)
			lay->vlan_tci = rd16(f + off);
		type = rd16(f + off + 2);
		off += 4;
	}
	lay->ethertype = type;
	switch (type) {
	case ETH_P_ARP:
		lay->l3 = (uint16_t)off;
		if (len - off < 8)
			return DROP_ARP_TRUNC;
		if (len - off < 8 + 2 * ((size_t)f[off + 4] + f[off + 5]))
			return DROP_ARP_TRUNC;
		return DROP_NONE;
	case ETH_P_IPV4:
		lay->l3 = (uint16_t)off;
		return parse_ip4(f, off, len, lay, key, m);
	case ETH_P_IPV6:
		lay->l3 = (uint16_t)off;
		return parse_ip6(f, off, len, lay, key, m);
	default:
		return DROP_NONE;
	}
}

enum drop_reason wire_parse_buf(const uint8_t *frame, size_t len, struct pkt_layout *lay,
				struct flow_key *key)
{
	struct parse_more m;
	return parse(frame, len, lay, key, &m);
}

/* The common case in a few instructions: untagged IPv4 without options or
 * fragmentation, carrying TCP or UDP. Gives exactly what parse() gives
 * (fuzz_wire compares them); false hands the frame to parse(). */
_Static_assert(sizeof(struct flow_key) == 44, "parse_fast writes every byte of a flow key but zone and vni");

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "parse_fast reads the type and IP version as one word");

static bool parse_fast(const uint8_t *f, size_t len, struct pkt_layout *lay, struct flow_key *key)
{
	uint32_t w;
	if (len < ETH_HLEN + 28)
		return false;
	memcpy(&w, f + 12, sizeof(w));
	if ((w & 0xffffff) != 0x450008) /* type 0x0800, IPv4 with a 20-byte header */
		return false;
	const uint8_t *ip = f + ETH_HLEN;
	size_t tot = rd16(ip + 2);
	uint8_t proto = ip[9];
	/* 28 <= tot <= len - ETH_HLEN (len >= ETH_HLEN + 28), not a fragment */
	if (tot - 28 > len - ETH_HLEN - 28 || (rd16(ip + 6) & 0x3fff))
		return false;
	const uint8_t *l4 = ip + 20;
	size_t payload;
	uint8_t flags = 0;
	if (proto == IPPROTO_TCP_) {
		size_t doff = (size_t)(l4[12] >> 4) * 4;
		/* 20 <= doff <= tot - 20 */
		if (tot < 40 || doff - 20 > tot - 40)
			return false;
		payload = ETH_HLEN + 20 + doff;
		flags = l4[13];
	} else if (proto == IPPROTO_UDP_) {
		size_t ulen = rd16(l4 + 4);
		if (ulen < 8 || ulen > tot - 20)
			return false;
		payload = ETH_HLEN + 28;
	} else {
		return false;
	}
	/* every field but zone and vni (kept) written: no memset */
	key->is_ip = 1;
	ipaddr_from_v4(&key->src, ip + 12);
	ipaddr_from_v4(&key->dst, ip + 16);
	key->proto = proto;
	key->sport = rd16(l4);
	key->dport = rd16(l4 + 2);
	memset(lay, 0, sizeof(*lay));
	lay->l3 = ETH_HLEN;
	lay->l4 = ETH_HLEN + 20;
	lay->payload = (uint16_t)payload;
	lay->ethertype = ETH_P_IPV4;
	lay->l4proto = proto;
	lay->tcp_flags = flags;
	return true;
}

HOT_INLINE enum drop_reason wire_parse(struct pkt *p)
{
	p->flags &= ~PKT_F_TUPLE_HASH; /* the key is written anew */
	if (parse_fast(p->data, p->len, &p->lay, &p->key)) {
		p->flags |= PKT_F_PARSED;
		return DROP_NONE;
	}
	enum drop_reason r = wire_parse_buf(p->data, p->len, &p->lay, &p->key);
	if (r == DROP_NONE)
		p->flags |= PKT_F_PARSED;
	return r;
}

/* ---- checksums ---- */

uint32_t csum_partial(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *b = data;
	uint64_t s = sum;
	while (len >= 2) {
		s += (uint32_t)(b[0] << 8 | b[1]);
		b += 2;
		len -= 2;
	}
	if (len)
		s += (uint32_t)b[0] << 8;
	while (s >> 32)
		s = (s & 0xffffffffu) + (s >> 32);
	return (uint32_t)s;
}

/* Folds to 16 bits and complements: the value to store in a checksum
 * field; over data that includes a correct checksum it yields 0. */
uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

void ipv4_set_csum(uint8_t *hdr)
{
	size_t ihl = (size_t)(hdr[0] & 0x0f) * 4;
	wr16(hdr + 10, 0);
	wr16(hdr + 10, csum_fold(csum_partial(hdr, ihl, 0)));
}

uint32_t csum_pseudo(const uint8_t *f, size_t l3, bool v6, uint8_t proto, size_t l4len)
{
	uint32_t s;
	if (v6) {
		s = csum_partial(f + l3 + 8, 32, 0);
		s += (uint32_t)(l4len >> 16) + (uint32_t)(l4len & 0xffff);
	} else {
		s = csum_partial(f + l3 + 12, 8, 0);
		s += (uint32_t)l4len;
	}
	return s + proto;
}

/* Writes the full L4 checksum of the packet f whose L4 header is at l4 and
 * whose IP packet ends at ip_end. */
static bool l4_csum(uint8_t *f, size_t l3, size_t l4, size_t ip_end, bool v6, uint8_t proto)
{
	size_t l4len = ip_end - l4, at;
	bool pseudo = true;
	switch (proto) {
	case IPPROTO_TCP_:
		at = 16;
		break;
	case IPPROTO_UDP_:
		at = 6;
		break;
	case IPPROTO_ICMP_:
		at = 2;
		pseudo = false;
		break;
	case IPPROTO_ICMPV6_:
		at = 2;
		break;
	default:
		return false;
	}
	if (l4len < at + 2)
		return false;
	wr16(f + l4 + at, 0);
	uint32_t s = pseudo ? csum_pseudo(f, l3, v6, proto, l4len) : 0;
	uint16_t c = csum_fold(csum_partial(f + l4, l4len, s));
	if (proto == IPPROTO_UDP_ && c == 0)
		c = 0xffff;
	wr16(f + l4 + at, c);
	return true;
}

bool wire_l4_csum_fill(struct pkt *p)
{
	struct parse_more m;
	p->flags &= ~PKT_F_TUPLE_HASH;
	if (parse(p->data, p->len, &p->lay, &p->key, &m) != DROP_NONE)
		return false;
	p->flags |= PKT_F_PARSED;
	if (!p->key.is_ip || p->lay.is_frag || m.fragmented || p->lay.l4 == PKT_OFF_NONE)
		return false;
	return l4_csum(p->data, p->lay.l3, p->lay.l4, m.ip_end, m.v6, p->lay.l4proto);
}

/* ---- software TCP segmentation ---- */

int wire_tcp_segment(const uint8_t *frame, size_t len, uint16_t mtu, struct pkt_pool *pool,
		     struct pkt **out, uint32_t out_room)
{
	struct pkt_layout lay;
	struct flow_key key = {0};
	struct parse_more m;
	enum drop_reason r = parse(frame, len, &lay, &key, &m);
	if (r != DROP_NONE)
		return -(int)r;
	if (!key.is_ip || lay.l4proto != IPPROTO_TCP_ || lay.is_frag || m.fragmented ||
	    lay.payload == PKT_OFF_NONE)
		return -(int)DROP_GSO_UNSUPPORTED;
	size_t l3 = lay.l3, l4 = lay.l4, hdr = lay.payload;
	size_t ip_hl = l4 - l3, tcp_hl = hdr - l4;
	size_t data = m.ip_end - hdr;
	if ((size_t)mtu <= ip_hl + tcp_hl)
		return -(int)DROP_GSO_UNSUPPORTED;
	size_t mss = mtu - ip_hl - tcp_hl;
	if (mss > data)
		mss = data ? data : 1;
	size_t nseg = data ? (data + mss - 1) / mss : 1;
	if (hdr + mss > PKT_DATA_ROOM)
		return -(int)DROP_TOO_BIG;
	if (nseg > out_room)
		return -(int)DROP_TOO_BIG;
	uint32_t seq = rd32(frame + l4 + 4);
	uint16_t ip_id = m.v6 ? 0 : rd16(frame + l3 + 4);
	uint8_t flags = frame[l4 + 13];
	for (size_t i = 0; i < nseg; i++) {
		struct pkt *s = pkt_alloc(pool);
		if (!s) {
			pkt_free_bulk(pool, out, (uint32_t)i);
			return -(int)DROP_POOL_EMPTY;
		}
		size_t off = i * mss, n = MIN(mss, data - off);
		if (!data)
			n = 0;
		uint8_t *d = s->data;
		memcpy(d, frame, hdr);
		memcpy(d + hdr, frame + hdr + off, n);
		s->len = (uint32_t)(hdr + n);
		if (m.v6) {
			wr16(d + l3 + 4, (uint16_t)(ip_hl - IP6_HLEN + tcp_hl + n));
		} else {
			wr16(d + l3 + 2, (uint16_t)(ip_hl + tcp_hl + n));
			wr16(d + l3 + 4, (uint16_t)(ip_id + i));
			ipv4_set_csum(d + l3);
		}
		wr32(d + l4 + 4, seq + (uint32_t)off);
		uint8_t fl = flags;
		if (i + 1 < nseg)
			fl &= (uint8_t)~(TCP_F_FIN | TCP_F_PSH);
		if (i > 0)
			fl &= (uint8_t)~TCP_F_CWR;
		d[l4 + 13] = fl;
		l4_csum(d, l3, l4, hdr + n, m.v6, IPPROTO_TCP_);
		s->key.vni = 0;
		s->key.zone = 0;
		wire_parse(s);
		out[i] = s;
	}
	return (int)nseg;
}

/* ---- builders ---- */

size_t eth_build(uint8_t *out, size_t room, const struct mac *dst, const struct mac *src, uint16_t type)
{
	if (room < ETH_HLEN)
		return 0;
	memcpy(out, dst->b, 6);
	memcpy(out + 6, src->b, 6);
	wr16(out + 12, type);
	return ETH_HLEN;
}

/* Offset of the ARP body of an Ethernet/IPv4 ARP request, or 0. */
static size_t arp_request_at(const uint8_t *f, size_t len)
{
	struct pkt_layout lay;
	struct flow_key key = {0};
	if (wire_parse_buf(f, len, &lay, &key) != DROP_NONE || lay.ethertype != ETH_P_ARP)
		return 0;
	const uint8_t *a = f + lay.l3;
	if (len - lay.l3 < ARP_LEN || rd16(a) != 1 || rd16(a + 2) != ETH_P_IPV4 || a[4] != 6 ||
	    a[5] != 4 || rd16(a + 6) != 1)
		return 0;
	return lay.l3;
}

bool wire_is_arp_request(const uint8_t *frame, size_t len)
{
	return arp_request_at(frame, len) != 0;
}

size_t arp_build_reply(uint8_t *out, size_t room, const uint8_t *req, size_t req_len, const struct mac *mac)
{
	size_t l3 = arp_request_at(req, req_len);
	if (!l3 || room < l3 + ARP_LEN)
		return 0;
	const uint8_t *q = req + l3;
	memcpy(out, req + 6, 6);          /* to the requester */
	memcpy(out + 6, mac->b, 6);
	memcpy(out + 12, req + 12, l3 - 12); /* same tags and type */
	uint8_t *a = out + l3;
	wr16(a, 1);
	wr16(a + 2, ETH_P_IPV4);
	a[4] = 6;
	a[5] = 4;
	wr16(a + 6, 2);
	memcpy(a + 8, mac->b, 6);  /* sender: the asked address is at `mac` */
	memcpy(a + 14, q + 24, 4);
	memcpy(a + 18, q + 8, 6);  /* target: the requester */
	memcpy(a + 24, q + 14, 4);
	return l3 + ARP_LEN;
}

/* Offset of the ICMPv6 header of a neighbour solicitation, or 0. */
static size_t ns_at(const uint8_t *f, size_t len, size_t *l3)
{
	struct pkt_layout lay;
	struct flow_key key = {0};
	if (wire_parse_buf(f, len, &lay, &key) != DROP_NONE || lay.ethertype != ETH_P_IPV6 ||
	    lay.l4proto != IPPROTO_ICMPV6_ || lay.is_frag || lay.l4 == PKT_OFF_NONE)
		return 0;
	const uint8_t *h = f + lay.l3;
	size_t end = lay.l3 + IP6_HLEN + rd16(h + 4);
	const uint8_t *ic = f + lay.l4;
	if (end - lay.l4 < 24 || ic[0] != 135 || ic[1] != 0 || h[7] != 255)
		return 0;
	*l3 = lay.l3;
	return lay.l4;
}

bool wire_is_neigh_solicit(const uint8_t *frame, size_t len)
{
	size_t l3;
	return ns_at(frame, len, &l3) != 0;
}

size_t nd_build_advert(uint8_t *out, size_t room, const uint8_t *ns, size_t ns_len, const struct mac *mac)
{
	size_t l3, l4 = ns_at(ns, ns_len, &l3);
	if (!l4)
		return 0;
	size_t total = l3 + IP6_HLEN + 32;
	if (room < total)
		return 0;
	static const uint8_t unspec[16];
	static const uint8_t all_nodes[16] = {0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	bool dad = memcmp(ns + l3 + 8, unspec, 16) == 0;
	/* L2: to the solicitor (all-nodes multicast for DAD), same tags. */
	if (dad) {
		static const uint8_t mc[6] = {0x33, 0x33, 0, 0, 0, 1};
		memcpy(out, mc, 6);
	} else {
		memcpy(out, ns + 6, 6);
	}
	memcpy(out + 6, mac->b, 6);
	memcpy(out + 12, ns + 12, l3 - 12);
	uint8_t *h = out + l3;
	memset(h, 0, IP6_HLEN + 32);
	h[0] = 0x60;
	wr16(h + 4, 32);
	h[6] = IPPROTO_ICMPV6_;
	h[7] = 255;
	memcpy(h + 8, ns + l4 + 8, 16); /* from the target address */
	memcpy(h + 24, dad ? all_nodes : ns + l3 + 8, 16);
	uint8_t *ic = h + IP6_HLEN;
	ic[0] = 136;
	ic[4] = dad ? 0x20 : 0x60; /* S (not for DAD) and O */
	memcpy(ic + 8, ns + l4 + 8, 16);
	ic[24] = 2; /* target link-layer address option, 1 unit of 8 bytes */
	ic[25] = 1;
	memcpy(ic + 26, mac->b, 6);
	l4_csum(out, l3, l3 + IP6_HLEN, total, true, IPPROTO_ICMPV6_);
	return total;
}

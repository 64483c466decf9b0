/* icmperr.c - path MTU handling for guest packets: the ICMP/ICMPv6
 * "too big" reply to the guest and IPv4 fragmentation.
 *
 * Owns: the layout of those replies and fragments.
 * Must not: keep state or read outside the frame it is given. */
#include "icmperr.h"

#include "wire.h"

#define IP4_HLEN 20
#define IP6_HDR 40
#define ICMP_HLEN 8
#define PROTO_ICMP 1
#define PROTO_ICMPV6 58
#define IP4_DF 0x4000
#define IP4_MF 0x2000
#define IP4_OFF_MASK 0x1fff
#define OPT_EOL 0
#define OPT_NOP 1
#define OPT_COPY 0x80

enum mtu_action mtu_check(const uint8_t *frame, size_t len, uint32_t ip_mtu)
{
	struct pkt_layout lay;
	struct flow_key key = {0};
	enum drop_reason r = wire_parse_buf(frame, len, &lay, &key);
	size_t l2 = lay.l3 != PKT_OFF_NONE ? lay.l3 : MIN(len, (size_t)ETH_HLEN);
	if (len - l2 <= ip_mtu)
		return MTU_FITS;
	if (r != DROP_NONE || !key.is_ip)
		return MTU_DROP;
	if (lay.ethertype == ETH_P_IPV6)
		return MTU_TOO_BIG;
	return rd16(frame + l2 + 6) & IP4_DF ? MTU_TOO_BIG : MTU_FRAGMENT;
}

static bool v4_unicast(const uint8_t *a)
{
	/* not 0.0.0.0/8, not multicast, class E or broadcast */
	return a[0] != 0 && a[0] < 224;
}

static bool v6_unicast(const uint8_t *a)
{
	static const uint8_t zero[16];
	return a[0] != 0xff && memcmp(a, zero, 16) != 0;
}

static bool icmp4_is_error(uint8_t type)
{
	return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

size_t icmperr_build_too_big(const uint8_t *frame, size_t len, uint32_t ip_mtu, struct pkt *out)
{
	struct pkt_layout lay;
	struct flow_key key = {0};
	if (wire_parse_buf(frame, len, &lay, &key) != DROP_NONE || !key.is_ip)
		return 0;
	struct mac fsrc, fdst;
	memcpy(fdst.b, frame, 6);
	memcpy(fsrc.b, frame + 6, 6);
	if (mac_is_multicast(&fsrc) || mac_is_zero(&fsrc))
		return 0;
	size_t l3 = lay.l3;
	const uint8_t *h = frame + l3;
	bool v6 = lay.ethertype == ETH_P_IPV6;
	size_t ip_len, quote, hlen;
	if (v6) {
		if (!v6_unicast(h + 8) || !v6_unicast(h + 24))
			return 0;
		if (lay.l4proto == PROTO_ICMPV6 && (lay.is_frag || lay.l4 == PKT_OFF_NONE || frame[lay.l4] < 128))
			return 0;
		ip_len = IP6_HDR + (size_t)rd16(h + 4);
		hlen = IP6_HDR;
		quote = MIN(ip_len, (size_t)ICMPERR_V6_MAX - IP6_HDR - ICMP_HLEN);
	} else {
		if (!v4_unicast(h + 12) || !v4_unicast(h + 16))
			return 0;
		if (rd16(h + 6) & IP4_OFF_MASK)
			return 0; /* only about the first fragment */
		if (h[9] == PROTO_ICMP && (lay.l4 == PKT_OFF_NONE || icmp4_is_error(frame[lay.l4])))
			return 0;
		ip_len = rd16(h + 2);
		hlen = IP4_HLEN;
		quote = MIN(ip_len, (size_t)ICMPERR_V4_MAX - IP4_HLEN - ICMP_HLEN);
	}
	size_t total = l3 + hlen + ICMP_HLEN + quote;
	out->data = out->buf + PKT_HEADROOM;
	out->len = 0;
	if (total > pkt_tailroom(out))
		return 0;
	uint8_t *o = out->data;
	/* L2: the frame's header (VLAN tags too) with the MACs swapped */
	memcpy(o, frame, l3);
	memcpy(o, fsrc.b, 6);
	memcpy(o + 6, fdst.b, 6);
	uint8_t *ip = o + l3, *ic = ip + hlen;
	memcpy(ic + ICMP_HLEN, h, quote);
	uint32_t mtu;
	if (v6) {
		mtu = ip_mtu < IPV6_MIN_MTU ? IPV6_MIN_MTU : ip_mtu;
		size_t plen = ICMP_HLEN + quote;
		wr32(ip, 6u << 28);
		wr16(ip + 4, (uint16_t)plen);
		ip[6] = PROTO_ICMPV6;
		ip[7] = 64;
		memcpy(ip + 8, h + 24, 16);  /* from the original destination */
		memcpy(ip + 24, h + 8, 16);  /* to the guest */
		ic[0] = 2;                   /* packet too big */
		ic[1] = 0;
		wr16(ic + 2, 0);
		wr32(ic + 4, mtu);
		uint32_t s = csum_partial(ip + 8, 32, 0);
		s += (uint32_t)plen + PROTO_ICMPV6;
		wr16(ic + 2, csum_fold(csum_partial(ic, plen, s)));
	} else {
		mtu = ip_mtu < IPV4_MIN_MTU ? IPV4_MIN_MTU : MIN(ip_mtu, 65535u);
		ip[0] = 0x45;
		ip[1] = (uint8_t)((h[1] & 0x1e) | 0xc0); /* original TOS, precedence internetwork control */
		wr16(ip + 2, (uint16_t)(IP4_HLEN + ICMP_HLEN + quote));
		wr16(ip + 4, rd16(h + 4));
		wr16(ip + 6, 0);
		ip[8] = 64;
		ip[9] = PROTO_ICMP;
		memcpy(ip + 12, h + 16, 4);
		memcpy(ip + 16, h + 12, 4);
		ipv4_set_csum(ip);
		ic[0] = 3; /* destination unreachable */
		ic[1] = 4; /* fragmentation needed and DF set */
		wr16(ic + 2, 0);
		wr16(ic + 4, 0);
		wr16(ic + 6, (uint16_t)mtu);
		wr16(ic + 2, csum_fold(csum_partial(ic, ICMP_HLEN + quote, 0)));
	}
	out->len = (uint32_t)total;
	out->flags = 0;
	out->key.vni = 0;
	out->key.zone = 0;
	wire_parse(out);
	return total;
}

/* The options of an IPv4 header that later fragments carry (copy bit set),
 * written to o (room for 40 bytes) padded with EOL to a 4-byte multiple.
 * Returns their length, or -1 if the options are malformed. */
static int copied_options(const uint8_t *opt, size_t n, uint8_t *o)
{
	size_t i = 0, w = 0;
	while (i < n) {
		uint8_t t = opt[i];
		if (t == OPT_EOL)
			break;
		if (t == OPT_NOP) {
			i++;
			continue;
		}
		if (n - i < 2)
			return -1;
		size_t l = opt[i + 1];
		if (l < 2 || l > n - i)
			return -1;
		if (t & OPT_COPY) {
			memcpy(o + w, opt + i, l);
			w += l;
		}
		i += l;
	}
	while (w & 3)
		o[w++] = OPT_EOL;
	return (int)w;
}

int ipv4_fragment(const struct pkt *p, uint32_t ip_mtu, struct pkt_pool *pool, struct pkt **out,
		  uint32_t out_room)
{
	struct pkt_layout lay;
	struct flow_key key = {0};
	enum drop_reason r = wire_parse_buf(p->data, p->len, &lay, &key);
	if (r != DROP_NONE)
		return -(int)r;
	if (!key.is_ip || lay.ethertype != ETH_P_IPV4)
		return -(int)DROP_TOO_BIG;
	const uint8_t *f = p->data;
	size_t l3 = lay.l3;
	const uint8_t *h = f + l3;
	size_t ihl = (size_t)(h[0] & 0x0f) * 4, tot = rd16(h + 2);
	uint16_t fo = rd16(h + 6);
	if ((fo & IP4_DF) || ip_mtu < IPV4_MIN_MTU)
		return -(int)DROP_TOO_BIG;
	uint8_t opts[40];
	int ol = copied_options(h + IP4_HLEN, ihl - IP4_HLEN, opts);
	if (ol < 0)
		return -(int)DROP_IP4_BAD_IHL;
	size_t ihl_n = IP4_HLEN + (size_t)ol;
	size_t mtu = MIN(ip_mtu, 65535u);
	size_t data = tot - ihl;
	size_t first = tot <= mtu ? data : ((mtu - ihl) & ~(size_t)7);
	size_t later = (mtu - ihl_n) & ~(size_t)7;
	if (!first || !later)
		return -(int)DROP_TOO_BIG;
	size_t nfrag = data <= first ? 1 : 1 + (data - first + later - 1) / later;
	if (nfrag > out_room)
		return -(int)DROP_TOO_BIG;
	size_t base = (size_t)(fo & IP4_OFF_MASK) * 8;
	if (base + data > 65535)
		return -(int)DROP_IP4_BAD_LEN; /* would not fit the offset field */
	uint16_t keep = fo & 0x8000; /* reserved bit: carried as is */
	bool last_mf = fo & IP4_MF;
	size_t pos = 0;
	for (size_t i = 0; i < nfrag; i++) {
		struct pkt *s = pkt_alloc(pool);
		if (!s) {
			pkt_free_bulk(pool, out, (uint32_t)i);
			return -(int)DROP_POOL_EMPTY;
		}
		size_t hl = i == 0 ? ihl : ihl_n;
		size_t n = MIN(i == 0 ? first : later, data - pos);
		if (l3 + hl + n > pkt_tailroom(s)) {
			pkt_free(pool, s);
			pkt_free_bulk(pool, out, (uint32_t)i);
			return -(int)DROP_TOO_BIG;
		}
		uint8_t *d = s->data;
		memcpy(d, f, l3);
		uint8_t *ip = d + l3;
		memcpy(ip, h, IP4_HLEN);
		if (i == 0)
			memcpy(ip + IP4_HLEN, h + IP4_HLEN, ihl - IP4_HLEN);
		else
			memcpy(ip + IP4_HLEN, opts, (size_t)ol);
		ip[0] = (uint8_t)(0x40 | hl / 4);
		memcpy(ip + hl, h + ihl + pos, n);
		wr16(ip + 2, (uint16_t)(hl + n));
		bool mf = pos + n < data ? true : last_mf;
		wr16(ip + 6, (uint16_t)(keep | (mf ? IP4_MF : 0) | ((base + pos) / 8)));
		ipv4_set_csum(ip);
		s->len = (uint32_t)(l3 + hl + n);
		s->in_port = p->in_port;
		s->out_port = p->out_port;
		s->hash = p->hash;
		s->flags = p->flags & ~PKT_F_PARSED;
		s->key = p->key;
		s->md = p->md;
		wire_parse(s);
		out[i] = s;
		pos += n;
	}
	return (int)nfrag;
}

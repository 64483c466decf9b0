/* nsh.c - NSH (RFC 8300) MD type 1/2 decode and MD type 2 encode with the
 * Detour context TLVs, and Geneve (RFC 8926) decode/encode.
 *
 * Owns: the byte layout of the NSH base/service path headers, of the Detour
 * metadata class TLVs and of the Geneve header and its options.
 * Must not: keep state, allocate, or read a byte outside the buffer given. */
#include "nsh.h"

/* NSH base header: Ver(2) O(1) U(1) TTL(6) Length(6) U(4) MDType(4) NP(8),
 * then SPI(24) SI(8). Length counts 4-byte words of the whole NSH. */
#define NSH_MD1_WORDS 6
#define NSH_MAX_WORDS 63

/* MD type 2 context header: Class(16) Type(8) U(1) Length(7); Length is
 * the value length in bytes, the value is padded to a 4-byte multiple. */
#define TLV_HDR_LEN 4
#define TLV_CRIT 0x80
#define TLV_TYPE_MASK 0x7f
#define TLV_LEN_MASK 0x7f

#define GENEVE_OPT_CRIT 0x80
#define GENEVE_P_TEB 0x6558 /* Ethernet (guest plane) */
#define GENEVE_P_NSH 0x894f /* NSH (service plane) */

static size_t pad4(size_t n) { return (n + 3) & ~(size_t)3; }

/* Value lengths of the Detour TLVs, indexed by type. */
static const uint8_t dtlv_len[] = {
	[DTLV_CHAIN_DIR] = 4, [DTLV_ORIG_MACS] = 12, [DTLV_RETURN4] = 12,
	[DTLV_RETURN6] = 24,  [DTLV_GUEST] = 8,      [DTLV_FLOWPROG] = 4,
};

static void keep_unknown(struct sp_meta *md, const uint8_t *tlv, size_t n)
{
	if (n > sizeof(md->unknown) || md->n_unknown > sizeof(md->unknown) - n)
		return; /* no room: dropped silently, still a valid packet */
	memcpy(md->unknown + md->n_unknown, tlv, n);
	md->n_unknown = (uint8_t)(md->n_unknown + n);
}

static void decode_detour(struct sp_meta *md, uint8_t type, const uint8_t *v)
{
	switch (type) {
	case DTLV_CHAIN_DIR:
		md->chain = rd16(v);
		md->dir = v[2];
		md->ingress = v[3] & 1;
		md->is_copy = (v[3] >> 1) & 1;
		break;
	case DTLV_ORIG_MACS:
		memcpy(md->orig_dst.b, v, 6);
		memcpy(md->orig_src.b, v + 6, 6);
		break;
	case DTLV_RETURN4:
		ipaddr_from_v4(&md->ret_vtep, v);
		memcpy(md->ret_spmac.b, v + 4, 6);
		break;
	case DTLV_RETURN6:
		memcpy(md->ret_vtep.b, v, 16);
		memcpy(md->ret_spmac.b, v + 16, 6);
		break;
	case DTLV_GUEST:
		md->vni = rd24(v);
		md->guest_port = rd16(v + 4);
		md->flow_tag = rd16(v + 6);
		break;
	case DTLV_FLOWPROG:
		/* Action 0 means "no message": the TLV is as good as absent. */
		if (v[0] != FP_NONE) {
			md->fp_action = v[0];
			md->fp_service = rd16(v + 2);
		}
		break;
	default:
		break;
	}
}

/* The MD type 2 context headers: each checked; md (if any) gets the
 * Detour TLVs and keeps unknown non-critical ones, or with hop_only only
 * the chain and direction. */
static enum drop_reason decode_md2(const uint8_t *p, size_t hdr_len, uint16_t md_class, struct sp_meta *md,
				   bool hop_only)
{
	size_t off = NSH_BASE_LEN;
	while (off < hdr_len) {
		if (hdr_len - off < TLV_HDR_LEN)
			return DROP_NSH_BAD_TLV;
		uint16_t cls = rd16(p + off);
		uint8_t type = p[off + 2];
		size_t vlen = p[off + 3] & TLV_LEN_MASK;
		size_t tlen = TLV_HDR_LEN + pad4(vlen);
		if (tlen > hdr_len - off)
			return DROP_NSH_BAD_TLV;
		const uint8_t *v = p + off + TLV_HDR_LEN;
		uint8_t t = type & TLV_TYPE_MASK;
		if (cls == md_class && t < ARRAY_SIZE(dtlv_len) && dtlv_len[t]) {
			if (vlen != dtlv_len[t])
				return DROP_NSH_BAD_TLV;
			if (t == DTLV_CHAIN_DIR && v[2] > SP_DIR_REVERSE)
				return DROP_NSH_BAD_TLV; /* a direction is forward or reverse */
			if (md && !hop_only) {
				decode_detour(md, t, v);
			} else if (md && t == DTLV_CHAIN_DIR) {
				md->chain = rd16(v);
				md->dir = v[2];
			}
		} else if (type & TLV_CRIT) {
			return DROP_NSH_CRIT_TLV;
		} else if (md && !hop_only) {
			keep_unknown(md, p + off, tlen);
		}
		off += tlen;
	}
	return DROP_NONE;
}

/* The base header and service path header into info, checked. */
static enum drop_reason decode_base(const uint8_t *p, size_t len, struct nsh_info *info)
{
	if (len < NSH_BASE_LEN)
		return DROP_NSH_TRUNC;
	info->ver = p[0] >> 6;
	info->oam = (p[0] >> 5) & 1;
	info->ttl = (uint8_t)((p[0] & 0x0f) << 2 | p[1] >> 6);
	size_t words = p[1] & 0x3f;
	info->md_type = p[2] & 0x0f;
	info->next_proto = p[3];
	info->spi = rd24(p + 4);
	info->si = p[7];
	info->hdr_len = words * 4;
	if (info->ver != 0)
		return DROP_NSH_BAD_VER;
	if (info->md_type != NSH_MD_TYPE1 && info->md_type != NSH_MD_TYPE2)
		return DROP_NSH_BAD_MDTYPE;
	if (words < NSH_BASE_LEN / 4)
		return DROP_NSH_BAD_LEN;
	if (info->md_type == NSH_MD_TYPE1 && words != NSH_MD1_WORDS)
		return DROP_NSH_BAD_LEN;
	if (info->hdr_len > len)
		return DROP_NSH_TRUNC;
	if (info->ttl == 0)
		return DROP_NSH_TTL;
	return DROP_NONE;
}

enum drop_reason nsh_decode(const uint8_t *p, size_t len, uint16_t md_class, struct nsh_info *info,
			    struct sp_meta *md)
{
	struct nsh_info tmp;
	if (!info)
		info = &tmp;
	memset(info, 0, sizeof(*info));
	enum drop_reason r = decode_base(p, len, info);
	if (r != DROP_NONE)
		return r;
	if (md) {
		/* unknown[] is read only up to n_unknown: not cleared (128
		 * bytes are cleared with a slow-starting rep stos, 61 with a
		 * few vector stores) */
		memset(md, 0, offsetof(struct sp_meta, unknown));
		md->spi = info->spi;
		md->si = info->si;
	}
	if (info->md_type == NSH_MD_TYPE1)
		return DROP_NONE; /* fixed context: not ours, skipped */
	r = decode_md2(p, info->hdr_len, md_class, md, false);
	if (r != DROP_NONE && md)
		md->n_unknown = 0;
	return r;
}

enum drop_reason nsh_decode_hop(const uint8_t *p, size_t len, uint16_t md_class, struct nsh_info *info,
				struct sp_meta *md)
{
	enum drop_reason r = decode_base(p, len, info);
	if (r != DROP_NONE)
		return r;
	md->spi = info->spi;
	md->si = info->si;
	if (info->hdr_len == NSH_BASE_LEN + TLV_HDR_LEN + 4 && info->md_type == NSH_MD_TYPE2 &&
	    rd32(p + NSH_BASE_LEN) == ((uint32_t)md_class << 16 | DTLV_CHAIN_DIR << 8 | 4)) {
		/* what the proxy sent: the chain TLV alone */
		const uint8_t *v = p + NSH_BASE_LEN + TLV_HDR_LEN;
		if (v[2] > SP_DIR_REVERSE)
			return DROP_NSH_BAD_TLV;
		md->chain = rd16(v);
		md->dir = v[2];
		return DROP_NONE;
	}
	md->chain = 0;
	md->dir = 0;
	return info->md_type == NSH_MD_TYPE1 ? DROP_NONE : decode_md2(p, info->hdr_len, md_class, md, true);
}

static bool want(unsigned which, enum detour_tlv t) { return which & (1u << (t - 1)); }

static size_t unknown_len(const struct sp_meta *md)
{
	return MIN((size_t)md->n_unknown, sizeof(md->unknown));
}

/* The return-address TLV is selected by the DTLV_RETURN4 or DTLV_RETURN6
 * bit and written as RETURN4 or RETURN6 according to the address family;
 * the flow-programming TLV is written only when md->fp_action is set. */
static bool want_return(unsigned which)
{
	return want(which, DTLV_RETURN4) || want(which, DTLV_RETURN6);
}

size_t nsh_encoded_len(const struct sp_meta *md, unsigned which)
{
	size_t n = NSH_BASE_LEN;
	if (want(which, DTLV_CHAIN_DIR))
		n += TLV_HDR_LEN + dtlv_len[DTLV_CHAIN_DIR];
	if (want(which, DTLV_ORIG_MACS))
		n += TLV_HDR_LEN + dtlv_len[DTLV_ORIG_MACS];
	if (want_return(which))
		n += TLV_HDR_LEN + dtlv_len[ipaddr_is_v4(&md->ret_vtep) ? DTLV_RETURN4 : DTLV_RETURN6];
	if (want(which, DTLV_GUEST))
		n += TLV_HDR_LEN + dtlv_len[DTLV_GUEST];
	if (want(which, DTLV_FLOWPROG) && md->fp_action != FP_NONE)
		n += TLV_HDR_LEN + dtlv_len[DTLV_FLOWPROG];
	if (which == NSH_TLV_ALL)
		n += unknown_len(md);
	return n;
}

static uint8_t *put_tlv(uint8_t *o, uint16_t cls, uint8_t type)
{
	wr16(o, cls);
	o[2] = type;
	o[3] = dtlv_len[type];
	memset(o + TLV_HDR_LEN, 0, dtlv_len[type]);
	return o + TLV_HDR_LEN;
}

size_t nsh_encode(uint8_t *out, size_t room, uint32_t spi, uint8_t si, uint16_t md_class,
		  const struct sp_meta *md, unsigned which)
{
	size_t n = nsh_encoded_len(md, which);
	if (n > room || n > NSH_MAX_WORDS * 4)
		return 0;
	size_t words = n / 4;
	out[0] = (uint8_t)(NSH_DEFAULT_TTL >> 2); /* ver 0, O 0 */
	out[1] = (uint8_t)((NSH_DEFAULT_TTL & 3) << 6 | words);
	out[2] = NSH_MD_TYPE2;
	out[3] = NSH_NP_ETHERNET;
	wr24(out + 4, spi & 0xffffff);
	out[7] = si;
	uint8_t *o = out + NSH_BASE_LEN, *v;
	if (want(which, DTLV_CHAIN_DIR)) {
		v = put_tlv(o, md_class, DTLV_CHAIN_DIR);
		wr16(v, md->chain);
		v[2] = md->dir;
		v[3] = (uint8_t)((md->ingress ? 1 : 0) | (md->is_copy ? 2 : 0));
		o = v + 4;
	}
	if (want(which, DTLV_ORIG_MACS)) {
		v = put_tlv(o, md_class, DTLV_ORIG_MACS);
		memcpy(v, md->orig_dst.b, 6);
		memcpy(v + 6, md->orig_src.b, 6);
		o = v + 12;
	}
	if (want_return(which) && ipaddr_is_v4(&md->ret_vtep)) {
		v = put_tlv(o, md_class, DTLV_RETURN4);
		memcpy(v, md->ret_vtep.b + 12, 4);
		memcpy(v + 4, md->ret_spmac.b, 6);
		o = v + 12;
	} else if (want_return(which)) {
		v = put_tlv(o, md_class, DTLV_RETURN6);
		memcpy(v, md->ret_vtep.b, 16);
		memcpy(v + 16, md->ret_spmac.b, 6);
		o = v + 24;
	}
	if (want(which, DTLV_GUEST)) {
		v = put_tlv(o, md_class, DTLV_GUEST);
		wr24(v, md->vni & 0xffffff);
		v[3] = 0;
		wr16(v + 4, md->guest_port);
		wr16(v + 6, md->flow_tag);
		o = v + 8;
	}
	if (want(which, DTLV_FLOWPROG) && md->fp_action != FP_NONE) {
		v = put_tlv(o, md_class, DTLV_FLOWPROG);
		v[0] = md->fp_action;
		wr16(v + 2, md->fp_service);
		o = v + 4;
	}
	if (which == NSH_TLV_ALL) {
		size_t u = unknown_len(md);
		memcpy(o, md->unknown, u);
		o += u;
	}
	return (size_t)(o - out);
}

/* Geneve: Ver(2) OptLen(6) O(1) C(1) Rsvd(6) Protocol(16) VNI(24) Rsvd(8),
 * then options: Class(16) Type(8, 0x80 = critical) R(3) Length(5 words). */
enum drop_reason geneve_decode(const uint8_t *p, size_t len, struct geneve_info *info)
{
	struct geneve_info tmp;
	if (!info)
		info = &tmp;
	memset(info, 0, sizeof(*info));
	if (len < GENEVE_BASE_LEN)
		return DROP_GENEVE_TRUNC;
	info->ver = p[0] >> 6;
	info->opt_len = p[0] & 0x3f;
	info->oam = (p[1] >> 7) & 1;
	info->critical = (p[1] >> 6) & 1;
	info->proto = rd16(p + 2);
	info->vni = rd24(p + 4);
	info->hdr_len = GENEVE_BASE_LEN + (size_t)info->opt_len * 4;
	if (info->ver != 0)
		return DROP_GENEVE_BAD_VER;
	if (info->hdr_len > len)
		return DROP_GENEVE_TRUNC;
	size_t off = GENEVE_BASE_LEN;
	while (off < info->hdr_len) {
		if (info->hdr_len - off < 4)
			return DROP_GENEVE_BAD_OPT;
		size_t olen = 4 + (size_t)(p[off + 3] & 0x1f) * 4;
		if (olen > info->hdr_len - off)
			return DROP_GENEVE_BAD_OPT;
		if (p[off + 2] & GENEVE_OPT_CRIT)
			return DROP_GENEVE_CRIT_OPT;
		off += olen;
	}
	/* We understand no option, so a set C bit means one we must not skip. */
	if (info->critical)
		return DROP_GENEVE_CRIT_OPT;
	if (info->proto != GENEVE_P_TEB && info->proto != GENEVE_P_NSH)
		return DROP_GENEVE_BAD_PROTO;
	return DROP_NONE;
}

size_t geneve_encode(uint8_t *out, size_t room, uint32_t vni, uint16_t proto)
{
	if (room < GENEVE_BASE_LEN)
		return 0;
	out[0] = 0;
	out[1] = 0;
	wr16(out + 2, proto);
	wr24(out + 4, vni & 0xffffff);
	out[7] = 0;
	return GENEVE_BASE_LEN;
}

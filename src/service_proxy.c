/* service_proxy.c - per-node formatting, return checks and metadata recovery. */
#include "service_proxy.h"

#include <netinet/in.h>
#include <stdlib.h>

#include "hugemem.h"
#include "nsh.h"
#include "wire.h"

#define SPX_WAYS 4
#define SPX_SEED 0x5b7
#define SPX_STALE_S 300

enum spx_kind { SPX_EXACT = 1, SPX_SRC_EP = 2, SPX_DST_EP = 3 };

/* The metadata a node cannot carry: struct sp_meta up to its unknown TLVs
 * (those travel between hosts, not through SFC-unaware nodes). */
#define SPX_MD_BYTES offsetof(struct sp_meta, n_unknown)
#define SPX_FLAGS 63        /* byte of a slot after the metadata */
#define SPX_AMBIGUOUS 0x01  /* two tenants or guests share this key: recover nothing */
_Static_assert(SPX_MD_BYTES < SPX_FLAGS, "a flow-state entry is one cache line");

/* A set: the 64-bit hashes of its keys (a false match needs two keys of
 * one set to collide on 64 bits) and their last-use times, one cache line;
 * the metadata of each way is one more line. */
struct spx_set {
	uint64_t khash[SPX_WAYS]; /* 0 = empty */
	uint32_t used_s[SPX_WAYS];
} __attribute__((aligned(64)));

struct spx_md {
	uint8_t b[64];
} __attribute__((aligned(64)));

struct spx_table {
	uint32_t set_mask;
	struct spx_set *sets;
	struct spx_md *md;      /* [sets * WAYS] */
	uint64_t entries, evicted, misses;
};

struct spx_table *spx_table_create(uint32_t cap)
{
	if (cap < 64 || (cap & (cap - 1)))
		return NULL;
	struct spx_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	uint32_t nsets = cap / SPX_WAYS;
	t->set_mask = nsets - 1;
	t->sets = hugemem_alloc((size_t)nsets * sizeof(*t->sets));
	t->md = hugemem_alloc((size_t)cap * sizeof(*t->md));
	if (!t->sets || !t->md) {
		spx_table_destroy(t);
		return NULL;
	}
	return t;
}

void spx_table_destroy(struct spx_table *t)
{
	if (t) {
		hugemem_free(t->sets, (size_t)(t->set_mask + 1) * sizeof(*t->sets));
		hugemem_free(t->md, (size_t)(t->set_mask + 1) * SPX_WAYS * sizeof(*t->md));
		free(t);
	}
}

void spx_table_stats(const struct spx_table *t, uint64_t *entries, uint64_t *evicted, uint64_t *misses)
{
	*entries = t->entries;
	*evicted = t->evicted;
	*misses = t->misses;
}

/* The hash of a key: (EXACT) source, destination, ports; (SRC_EP) source
 * address and port; (DST_EP) destination address and port; with protocol,
 * kind, node and context. */
static uint64_t key_hash(enum spx_kind kind, uint16_t node, uint32_t ctx, const struct flow_key *f)
{
	uint64_t w[6];
	const struct ipaddr *a = kind == SPX_DST_EP ? &f->dst : &f->src;
	memcpy(&w[0], a->b, 16);
	if (kind == SPX_EXACT)
		memcpy(&w[2], f->dst.b, 16);
	else
		w[2] = w[3] = 0;
	uint64_t pa = kind == SPX_DST_EP ? f->dport : f->sport, pb = kind == SPX_EXACT ? f->dport : 0;
	w[4] = pa | pb << 16 | (uint64_t)f->proto << 32 | (uint64_t)kind << 40 | (uint64_t)node << 48;
	w[5] = ctx;
	uint64_t h = hash_bytes(w, sizeof(w), SPX_SEED);
	return h ? h : 1;
}

/* The set that holds hash h. */
static inline uint32_t set_of(const struct spx_table *t, uint64_t h) { return (uint32_t)(h >> 40) & t->set_mask; }

static inline uint32_t now_s(uint64_t now_ns) { return (uint32_t)(now_ns / 1000000000ull) + 1; }

/* The way a miss in set s takes: stale or empty, else the least recently
 * used. */
static int victim_of(const struct spx_set *s, uint32_t ts)
{
	int victim = 0;
	uint32_t best = UINT32_MAX;
	for (int w = 0; w < SPX_WAYS; w++) {
		uint32_t u = !s->khash[w] || ts - s->used_s[w] >= SPX_STALE_S ? 0 : s->used_s[w];
		if (u < best) {
			best = u;
			victim = w;
		}
	}
	return victim;
}

/* Find the entry of hash h; with insert, make room for it when absent (its
 * md is then the caller's to fill). A live entry is found in one pass over
 * the set's hashes; only a miss looks for a victim. */
static uint8_t *lookup(struct spx_table *t, uint64_t h, uint64_t now, bool insert, bool *hit)
{
	uint32_t set = set_of(t, h);
	struct spx_set *s = &t->sets[set];
	uint32_t ts = now_s(now);
	for (int w = 0; w < SPX_WAYS; w++) {
		if (s->khash[w] == h && ts - s->used_s[w] < SPX_STALE_S) {
			s->used_s[w] = ts;
			if (hit)
				*hit = true;
			return t->md[set * SPX_WAYS + (uint32_t)w].b;
		}
	}
	if (hit)
		*hit = false;
	if (!insert)
		return NULL;
	int victim = victim_of(s, ts);
	if (s->khash[victim] && ts - s->used_s[victim] < SPX_STALE_S)
		t->evicted++; /* a live flow's state goes */
	else
		t->entries++;
	s->khash[victim] = h;
	s->used_s[victim] = ts;
	uint8_t *e = t->md[set * SPX_WAYS + (uint32_t)victim].b;
	e[SPX_FLAGS] = 0;
	return e;
}

/* Does the metadata in a slot belong to another guest or tenant? */
static bool other_owner(const uint8_t *slot, const struct sp_meta *md)
{
	struct sp_meta old;
	memcpy(&old, slot, SPX_MD_BYTES);
	return old.vni != md->vni || old.guest_port != md->guest_port || !ipaddr_eq(&old.ret_vtep, &md->ret_vtep);
}

/* Write md under hash h; a live key of another owner is marked ambiguous
 * (fail closed: a packet is never handed to the wrong guest or tenant).
 * False when the entry already held exactly md (a known flow, refreshed). */
static bool store(struct spx_table *t, uint64_t h, const struct sp_meta *md, uint64_t now)
{
	bool hit;
	uint8_t *e = lookup(t, h, now, true, &hit);
	if (hit) {
		if (memcmp(e, md, SPX_MD_BYTES) == 0)
			return false;
		if (other_owner(e, md))
			e[SPX_FLAGS] |= SPX_AMBIGUOUS;
	}
	memcpy(e, md, SPX_MD_BYTES);
	return true;
}

/* What a returned packet tells besides its 5-tuple, and so keys its state:
 * an nsh node returns the chain and direction; an l2 node returns the
 * direction by the side it comes out of. (A packet and the reply of
 * another flow can share a 5-tuple when both ends have rules.) */
static uint32_t key_ctx(enum svc_mode mode, const struct sp_meta *md)
{
	switch (mode) {
	case SVC_MODE_NSH:
		return (uint32_t)md->chain << 8 | md->dir | 0x80000000u;
	case SVC_MODE_L2:
		return md->dir | 0x40000000u;
	case SVC_MODE_L3:
		break;
	}
	return 0;
}

static void record(struct spx_table *t, uint16_t node, enum svc_mode mode, const struct pkt *p, uint64_t now)
{
	uint32_t ctx = key_ctx(mode, &p->md);
	uint64_t h = p->sp_hash ? p->sp_hash : key_hash(SPX_EXACT, node, ctx, &p->key);
	if (!store(t, h, &p->md, now))
		return; /* known flow: the lookup refreshed it */
	if (mode == SVC_MODE_L2)
		return; /* a bridge does not rewrite addresses */
	store(t, key_hash(SPX_SRC_EP, node, ctx, &p->key), &p->md, now);
	store(t, key_hash(SPX_DST_EP, node, ctx, &p->key), &p->md, now);
}

/* Find the metadata of a returned packet; learns NAT-rewritten tuples. */
static bool recover(struct spx_table *t, uint16_t node, enum svc_mode mode, const struct pkt *p, uint64_t now,
		    struct sp_meta *md)
{
	uint32_t ctx = key_ctx(mode, &p->md);
	uint64_t exact = p->sp_hash ? p->sp_hash : key_hash(SPX_EXACT, node, ctx, &p->key);
	uint8_t *e = lookup(t, exact, now, false, NULL);
	if (!e && mode != SVC_MODE_L2) {
		e = lookup(t, key_hash(SPX_SRC_EP, node, ctx, &p->key), now, false, NULL);
		if (!e)
			e = lookup(t, key_hash(SPX_DST_EP, node, ctx, &p->key), now, false, NULL);
		if (e && !(e[SPX_FLAGS] & SPX_AMBIGUOUS)) {
			struct sp_meta m;
			memcpy(&m, e, SPX_MD_BYTES);
			store(t, exact, &m, now);
			e = lookup(t, exact, now, false, NULL);
		}
	}
	if (!e || (e[SPX_FLAGS] & SPX_AMBIGUOUS)) {
		t->misses++;
		return false;
	}
	memcpy(md, e, SPX_MD_BYTES);
	md->n_unknown = 0;
	return true;
}

static void key_for_node(struct pkt *p)
{
	p->key.vni = 0;
	p->key.zone = 0;
}

uint16_t service_proxy_to_node(const struct hostcfg *hc, struct spx_table *t, uint16_t node, struct pkt *p,
			       uint64_t now_ns, enum drop_reason *why)
{
	const struct topology *topo = hc->topo;
	const struct topo_node *nd = &topo->nodes[node];
	const struct mac *proxy_mac = &hc->ps->node_spmac[node];
	enum svc_mode mode = (enum svc_mode)hc->node_mode[node];
	record(t, node, mode, p, now_ns);
	uint8_t *eth = p->data;
	switch (mode) {
	case SVC_MODE_L2:
		memcpy(eth, p->md.orig_dst.b, 6);
		memcpy(eth + 6, p->md.orig_src.b, 6);
		return hc->node_port[node][p->md.dir == SP_DIR_FORWARD ? 0 : 1];
	case SVC_MODE_L3:
		memcpy(eth, nd->mac.b, 6);
		memcpy(eth + 6, proxy_mac->b, 6);
		return hc->node_port[node][0];
	case SVC_MODE_NSH: {
		memcpy(eth, p->md.orig_dst.b, 6);
		memcpy(eth + 6, p->md.orig_src.b, 6);
		/* the template of this (path, hop, direction), SI and flags patched */
		uint16_t pi = (uint16_t)(p->md.path_plus1 - 1);
		if (p->md.path_plus1 && pi < hc->ps->n_paths && 255u - p->md.si < hc->ps->paths[pi].n_hops) {
			const struct path *path = &hc->ps->paths[pi];
			bool rev = p->md.dir == SP_DIR_REVERSE;
			unsigned hop = 255u - p->md.si, pos = rev ? path->n_hops - 1u - hop : hop;
			const uint8_t *t = hostcfg_nsh_tmpl(hc, pi, pos, rev);
			if (t && path->nodes[pos] == node && (rev ? path->spi_rev : path->spi_fwd) == p->md.spi) {
				uint8_t *h = pkt_push(p, HC_NSH_TMPL_LEN);
				if (!h) {
					*why = DROP_TOO_BIG;
					return PORT_NONE;
				}
				memcpy(h, t, HC_NSH_TMPL_LEN);
				h[HC_NSH_TMPL_SI] = p->md.si;
				h[HC_NSH_TMPL_FLAGS] = (uint8_t)((p->md.ingress ? 1 : 0) | (p->md.is_copy ? 2 : 0));
				return hc->node_port[node][0];
			}
		}
		size_t nlen = nsh_encoded_len(&p->md, NSH_TLV_CHAIN);
		uint8_t *h = pkt_push(p, ETH_HLEN + nlen);
		if (!h) {
			*why = DROP_TOO_BIG;
			return PORT_NONE;
		}
		eth_build(h, ETH_HLEN, &nd->mac, proxy_mac, ETH_P_NSH);
		if (nsh_encode(h + ETH_HLEN, nlen, p->md.spi, p->md.si, topo->md_class, &p->md, NSH_TLV_CHAIN) != nlen) {
			*why = DROP_TOO_BIG;
			return PORT_NONE;
		}
		return hc->node_port[node][0];
	}
	}
	*why = DROP_SN_NOT_NSH;
	return PORT_NONE;
}

static enum spx_result answer_neighbour(const struct hostcfg *hc, uint16_t node, struct pkt *p)
{
	uint8_t out[128];
	size_t n = 0;
	const struct mac *m = &hc->ps->node_spmac[node];
	if (wire_is_arp_request(p->data, p->len))
		n = arp_build_reply(out, sizeof(out), p->data, p->len, m);
	else if (wire_is_neigh_solicit(p->data, p->len))
		n = nd_build_advert(out, sizeof(out), p->data, p->len, m);
	if (n == 0 || n > PKT_DATA_ROOM)
		return SPX_DROP;
	p->data = p->buf + PKT_HEADROOM;
	memcpy(p->data, out, n);
	p->len = (uint32_t)n;
	return SPX_REPLY;
}

enum spx_result service_proxy_rx_parse(const struct hostcfg *hc, uint16_t node, struct pkt *p, enum drop_reason *why)
{
	const struct topology *topo = hc->topo;
	enum svc_mode mode = (enum svc_mode)hc->node_mode[node];
	p->sp_hash = 0;
	if (mode == SVC_MODE_NSH) {
		struct nsh_info info;
		if (p->len < ETH_HLEN || rd16(p->data + 12) != ETH_P_NSH) {
			*why = DROP_SN_NOT_NSH;
			return SPX_DROP;
		}
		/* p->md receives what the node returned: SPI, SI, chain and direction */
		*why = nsh_decode(p->data + ETH_HLEN, p->len - ETH_HLEN, topo->md_class, &info, &p->md);
		if (*why != DROP_NONE)
			return SPX_DROP;
		if (info.next_proto != NSH_NP_ETHERNET) {
			*why = DROP_SN_NOT_NSH;
			return SPX_DROP;
		}
		pkt_pull(p, ETH_HLEN + info.hdr_len);
	} else if (mode == SVC_MODE_L2) {
		/* forward traffic enters at `in` and leaves at `out` */
		p->md.dir = p->in_port == hc->node_port[node][1] ? SP_DIR_FORWARD : SP_DIR_REVERSE;
	} else if (mode == SVC_MODE_L3) {
		if (wire_is_arp_request(p->data, p->len) || wire_is_neigh_solicit(p->data, p->len)) {
			*why = DROP_SN_NO_FLOW;
			return answer_neighbour(hc, node, p);
		}
	}
	*why = wire_parse(p);
	if (*why != DROP_NONE)
		return SPX_DROP;
	if (!p->key.is_ip) {
		*why = DROP_SN_NO_FLOW;
		return SPX_DROP;
	}
	key_for_node(p);
	return SPX_OK;
}

uint64_t service_proxy_prefetch(const struct hostcfg *hc, const struct spx_table *t, uint16_t node,
				const struct pkt *p)
{
	enum svc_mode mode = (enum svc_mode)hc->node_mode[node];
	uint64_t h = key_hash(SPX_EXACT, node, key_ctx(mode, &p->md), &p->key);
	uint32_t set = set_of(t, h);
	__builtin_prefetch(&t->sets[set]);
	for (uint32_t w = 0; w < SPX_WAYS; w++)
		__builtin_prefetch(&t->md[set * SPX_WAYS + w]);
	return h;
}

void service_proxy_prefetch_new(const struct hostcfg *hc, const struct spx_table *t, uint16_t node,
				const struct pkt *p)
{
	enum svc_mode mode = (enum svc_mode)hc->node_mode[node];
	if (mode == SVC_MODE_L2)
		return; /* a bridge does not rewrite addresses: no endpoint keys */
	const struct spx_set *s = &t->sets[set_of(t, p->sp_hash)];
	for (int w = 0; w < SPX_WAYS; w++)
		if (s->khash[w] == p->sp_hash)
			return; /* known: record() only refreshes it */
	uint32_t ctx = key_ctx(mode, &p->md);
	for (enum spx_kind k = SPX_SRC_EP; k <= SPX_DST_EP; k++) {
		uint32_t es = set_of(t, key_hash(k, node, ctx, &p->key));
		__builtin_prefetch(&t->sets[es], 1);
		for (int w = 0; w < SPX_WAYS; w++)
			__builtin_prefetch(&t->md[es * SPX_WAYS + (uint32_t)w], 1);
	}
}

enum spx_result service_proxy_rx_finish(const struct hostcfg *hc, struct spx_table *t, uint16_t node, struct pkt *p,
					uint64_t now_ns, enum drop_reason *why)
{
	enum svc_mode mode = (enum svc_mode)hc->node_mode[node];
	uint32_t ret_spi = p->md.spi;
	uint8_t ret_si = p->md.si;
	if (!recover(t, node, mode, p, now_ns, &p->md)) {
		*why = DROP_SN_NO_FLOW;
		return SPX_DROP;
	}
	if (mode == SVC_MODE_NSH) {
		if (ret_spi != p->md.spi) {
			*why = DROP_SN_BAD_SPI;
			return SPX_DROP;
		}
		if (ret_si != p->md.si && ret_si + 1 != p->md.si) {
			*why = DROP_SN_BAD_SI;
			return SPX_DROP;
		}
	} else if (mode == SVC_MODE_L2) {
		/* forward traffic enters at `in` and must leave at `out` */
		uint16_t expect = hc->node_port[node][p->md.dir == SP_DIR_FORWARD ? 1 : 0];
		if (p->in_port != expect) {
			*why = DROP_SN_NO_FLOW;
			return SPX_DROP;
		}
	}
	p->key.vni = p->md.vni;
	p->flags |= PKT_F_HAS_MD;
	return SPX_OK;
}

enum spx_result service_proxy_from_node(const struct hostcfg *hc, struct spx_table *t, uint16_t node,
					struct pkt *p, uint64_t now_ns, enum drop_reason *why)
{
	enum spx_result r = service_proxy_rx_parse(hc, node, p, why);
	if (r != SPX_OK)
		return r;
	return service_proxy_rx_finish(hc, t, node, p, now_ns, why);
}

/* service_proxy.c - per-node formatting, return checks and metadata recovery. */
#include "service_proxy.h"

#include <netinet/in.h>
#include <stdlib.h>

#include "nsh.h"
#include "wire.h"

#define SPX_PROBE 16
#define SPX_STALE_NS (300ull * 1000000000ull)

enum spx_kind { SPX_EXACT = 1, SPX_SRC_EP = 2, SPX_DST_EP = 3 };

struct spx_key {
	struct ipaddr a, b;     /* EXACT: src, dst. SRC_EP: a = src. DST_EP: a = dst */
	uint16_t pa, pb;
	uint8_t proto, kind;
	uint16_t node;
};

struct spx_entry {
	struct spx_key key;
	uint8_t used;
	uint64_t ts;
	struct sp_meta md;
};

struct spx_table {
	uint32_t mask;
	struct spx_entry *e;
	uint64_t entries, evicted, misses;
};

struct spx_table *spx_table_create(uint32_t cap)
{
	if (cap < 64 || (cap & (cap - 1)))
		return NULL;
	struct spx_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->e = calloc(cap, sizeof(*t->e));
	if (!t->e) {
		free(t);
		return NULL;
	}
	t->mask = cap - 1;
	return t;
}

void spx_table_destroy(struct spx_table *t)
{
	if (t) {
		free(t->e);
		free(t);
	}
}

void spx_table_stats(const struct spx_table *t, uint64_t *entries, uint64_t *evicted, uint64_t *misses)
{
	*entries = t->entries;
	*evicted = t->evicted;
	*misses = t->misses;
}

static void make_key(struct spx_key *k, enum spx_kind kind, uint16_t node, const struct flow_key *f)
{
	memset(k, 0, sizeof(*k));
	k->kind = (uint8_t)kind;
	k->node = node;
	k->proto = f->proto;
	switch (kind) {
	case SPX_EXACT:
		k->a = f->src, k->b = f->dst, k->pa = f->sport, k->pb = f->dport;
		break;
	case SPX_SRC_EP:
		k->a = f->src, k->pa = f->sport;
		break;
	case SPX_DST_EP:
		k->a = f->dst, k->pa = f->dport;
		break;
	}
}

static struct spx_entry *lookup(struct spx_table *t, const struct spx_key *k, uint64_t now, bool insert)
{
	uint32_t s = (uint32_t)hash_bytes(k, sizeof(*k), 0x5b7) & t->mask;
	struct spx_entry *victim = NULL;
	for (int i = 0; i < SPX_PROBE; i++, s = (s + 1) & t->mask) {
		struct spx_entry *e = &t->e[s];
		if (!e->used) {
			/* entries are never removed: an unused slot ends the probe */
			if (!insert)
				return NULL;
			if (!victim || victim->used)
				victim = e;
			break;
		}
		bool live = e->used && now - e->ts < SPX_STALE_NS;
		if (live && memcmp(&e->key, k, sizeof(*k)) == 0)
			return e;
		if (!insert)
			continue;
		if (!live) {
			if (!victim || victim->used)
				victim = e;
		} else if (!victim || (victim->used && e->ts < victim->ts)) {
			victim = e;
		}
	}
	if (!insert)
		return NULL;
	if (victim->used)
		t->evicted++;
	else
		t->entries++;
	victim->used = 1;
	victim->key = *k;
	return victim;
}

static bool md_same(const struct sp_meta *a, const struct sp_meta *b)
{
	return memcmp(a, b, offsetof(struct sp_meta, unknown)) == 0 &&
	       memcmp(a->unknown, b->unknown, a->n_unknown) == 0;
}

static void record(struct spx_table *t, uint16_t node, const struct pkt *p, uint64_t now)
{
	struct spx_key k;
	make_key(&k, SPX_EXACT, node, &p->key);
	struct spx_entry *e = lookup(t, &k, now, false);
	if (e && md_same(&e->md, &p->md) && now - e->ts < 1000000000ull) {
		e->ts = now;
		return;
	}
	static const enum spx_kind kinds[3] = {SPX_EXACT, SPX_SRC_EP, SPX_DST_EP};
	for (int i = 0; i < 3; i++) {
		make_key(&k, kinds[i], node, &p->key);
		e = lookup(t, &k, now, true);
		e->ts = now;
		e->md = p->md;
	}
}

/* Find the metadata of a returned packet; learns NAT-rewritten tuples. */
static bool recover(struct spx_table *t, uint16_t node, const struct flow_key *f, uint64_t now, struct sp_meta *md,
		    bool *nat)
{
	struct spx_key k;
	make_key(&k, SPX_EXACT, node, f);
	struct spx_entry *e = lookup(t, &k, now, false);
	*nat = false;
	if (!e) {
		make_key(&k, SPX_SRC_EP, node, f);
		e = lookup(t, &k, now, false);
		if (!e) {
			make_key(&k, SPX_DST_EP, node, f);
			e = lookup(t, &k, now, false);
		}
		if (!e) {
			t->misses++;
			return false;
		}
		*nat = true;
		struct sp_meta m = e->md;
		make_key(&k, SPX_EXACT, node, f);
		e = lookup(t, &k, now, true);
		e->md = m;
	}
	e->ts = now;
	*md = e->md;
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
	struct flow_key saved = p->key;
	key_for_node(p);
	record(t, node, p, now_ns);
	p->key = saved;
	uint8_t *eth = p->data;
	switch (topo->services[nd->service].mode) {
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

enum spx_result service_proxy_from_node(const struct hostcfg *hc, struct spx_table *t, uint16_t node,
					struct pkt *p, uint64_t now_ns, enum drop_reason *why)
{
	const struct topology *topo = hc->topo;
	enum svc_mode mode = topo->services[topo->nodes[node].service].mode;
	struct nsh_info info = {0};
	if (mode == SVC_MODE_NSH) {
		if (p->len < ETH_HLEN || rd16(p->data + 12) != ETH_P_NSH) {
			*why = DROP_SN_NOT_NSH;
			return SPX_DROP;
		}
		struct sp_meta tmp;
		memset(&tmp, 0, sizeof(tmp));
		*why = nsh_decode(p->data + ETH_HLEN, p->len - ETH_HLEN, topo->md_class, &info, &tmp);
		if (*why != DROP_NONE)
			return SPX_DROP;
		if (info.next_proto != NSH_NP_ETHERNET) {
			*why = DROP_SN_NOT_NSH;
			return SPX_DROP;
		}
		pkt_pull(p, ETH_HLEN + info.hdr_len);
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
	bool nat;
	if (!recover(t, node, &p->key, now_ns, &p->md, &nat)) {
		*why = DROP_SN_NO_FLOW;
		return SPX_DROP;
	}
	if (mode == SVC_MODE_NSH) {
		if (info.spi != p->md.spi) {
			*why = DROP_SN_BAD_SPI;
			return SPX_DROP;
		}
		if (info.si != p->md.si && info.si + 1 != p->md.si) {
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

/* classifier.c - rule matching for classification points (guest, direction).
 *
 * Owns: the compiled rule index built from a topology (immutable after
 * build; lookups are read-only and thread-safe).
 * Must not: touch connection state, paths or packets.
 *
 * Compilation: every rule is expanded onto the points it applies to (a
 * network means every guest of that network; direction both means both
 * points). Each point's list is sorted by (priority desc, file order asc);
 * the position in that order is the rule's rank (lower wins). Points with
 * identical lists share one compiled set.
 *
 * Match semantics: proto 0 = any; src/dst are IPv6 prefixes (IPv4 ones are
 * ::ffff:a.b.c.d/(96+len), so an IPv4 rule never matches IPv6 traffic);
 * ports are inclusive ranges, 0-65535 = any. A rule with proto any and a
 * port condition only matches port-bearing protocols (TCP, UDP, SCTP,
 * UDP-Lite): ICMP type/code in the key's port fields must not match a
 * "dst_port: 80" rule.
 *
 * Lookup algorithm:
 *  - sets of at most CLS_LINEAR_MAX rules: linear scan in rank order with
 *    precomputed 64-bit masks; the first hit is the answer. Cost O(n).
 *  - larger sets: tuple space search. A port range is cut into aligned
 *    blocks (value, prefix mask): [1000, 1010] is 1000/13 bits + 1008/15
 *    + 1010/16, at most 30 blocks; a rule becomes one entry per (source
 *    block, destination block). Entries are grouped by tuple (src plen,
 *    dst plen, proto wildcarded?, sport mask, dport mask); each tuple is
 *    an open-addressing hash table keyed by the masked fields, keeping the
 *    best rank per key. Tuples are ordered by their best rank; a lookup
 *    probes them in that order and stops as soon as a tuple's best rank
 *    cannot beat the hit found so far. A rule whose two ranges would make
 *    more than CLS_EXPAND_MAX entries stays in a rank-ordered list scanned
 *    alongside (also with early stop). Prefix filters skip tuples before
 *    probing them: for each distinct source (destination) prefix length
 *    of the tuples, a hash set of the prefixes of that length in use; one
 *    probe per length gives the lengths at which the packet's address has
 *    any rule, and a tuple of another length cannot match (used where the
 *    lengths are fewer than the tuples). Cost: O(L + T') hash probes (L =
 *    distinct prefix lengths, T' = tuples left: prefix-length and port-mask
 *    combinations in use that the filters let through); build O(n log n),
 *    memory O(n x blocks) per set. */
#include "classifier.h"

#include <stdlib.h>

struct crule {
	uint64_t src[2], smask[2], dst[2], dmask[2]; /* src/dst pre-masked */
	uint16_t sp_lo, sp_hi, dp_lo, dp_hi;
	uint8_t proto;
	uint8_t need_l4;  /* proto any + port condition: port-bearing protos only */
	uint16_t rule;    /* rule index */
	uint32_t rank;
};

struct tss_ent {
	uint64_t s[2], d[2];
	uint16_t sport, dport;
	uint8_t proto;
	uint8_t used;
	uint16_t rule;
	uint32_t rank;
};

#define CLS_EXPAND_MAX 64

struct tuple {
	uint64_t smask[2], dmask[2];
	uint16_t sport_mask, dport_mask; /* 0xffff exact ... 0 any */
	uint8_t proto_wild, need_l4;
	uint8_t splen, dplen;    /* prefix lengths of smask, dmask */
	uint32_t best_rank;
	uint32_t n, mask;        /* entries, table size - 1 */
	struct tss_ent *tab;
};

/* The prefixes of one address field in use, per length (see the top). */
struct pfx_ent {
	uint64_t a[2];
	uint8_t len, used;
};

struct pfx_filter {
	bool on;
	uint8_t n_lens;
	uint8_t lens[129];       /* distinct nonzero lengths */
	uint64_t (*masks)[2];    /* [n_lens] */
	struct pfx_ent *tab;
	uint32_t mask;
};

struct cset {
	uint32_t n;              /* rules */
	uint16_t *ids;           /* rule ids in rank order (for sharing) */
	uint64_t ids_hash;
	struct crule *lin;       /* linear: all rules; TSS: range rules only */
	uint32_t n_lin;
	struct tuple *tuples;    /* TSS only, ordered by best_rank */
	uint32_t n_tuples;
	struct pfx_filter pf[2]; /* TSS only: source, destination */
};

struct classifier {
	uint16_t n_guests, n_rules;
	uint32_t *point_set;     /* [n_guests * 2]: index into sets, UINT32_MAX = none */
	struct cset *sets;
	uint32_t n_sets;
};

static bool port_bearing(uint8_t proto)
{
	return proto == 6 || proto == 17 || proto == 132 || proto == 136;
}

static void make_mask(int plen, uint64_t m[2])
{
	uint8_t b[16] = {0};
	if (plen < 0)
		plen = 0;
	if (plen > 128)
		plen = 128;
	for (int i = 0; i < 16; i++) {
		int bits = plen - i * 8;
		if (bits >= 8)
			b[i] = 0xff;
		else if (bits > 0)
			b[i] = (uint8_t)(0xff << (8 - bits));
	}
	memcpy(&m[0], b, 8);
	memcpy(&m[1], b + 8, 8);
}

static void load_addr(const struct ipaddr *a, uint64_t v[2])
{
	memcpy(&v[0], a->b, 8);
	memcpy(&v[1], a->b + 8, 8);
}

static void compile_rule(const struct topology *t, uint16_t id, uint32_t rank, struct crule *cr)
{
	const struct topo_match *m = &t->rules[id].match;
	memset(cr, 0, sizeof(*cr));
	cr->rule = id;
	cr->rank = rank;
	cr->proto = m->proto;
	make_mask(m->has_src ? m->src_plen : 0, cr->smask);
	make_mask(m->has_dst ? m->dst_plen : 0, cr->dmask);
	load_addr(&m->src, cr->src);
	load_addr(&m->dst, cr->dst);
	for (int i = 0; i < 2; i++) {
		cr->src[i] &= cr->smask[i];
		cr->dst[i] &= cr->dmask[i];
	}
	cr->sp_lo = m->sport.lo;
	cr->sp_hi = m->sport.hi;
	cr->dp_lo = m->dport.lo;
	cr->dp_hi = m->dport.hi;
	bool sport_any = cr->sp_lo == 0 && cr->sp_hi == 0xffff;
	bool dport_any = cr->dp_lo == 0 && cr->dp_hi == 0xffff;
	cr->need_l4 = cr->proto == 0 && !(sport_any && dport_any);
}

static bool crule_match(const struct crule *r, const struct flow_key *k, const uint64_t ks[2], const uint64_t kd[2])
{
	if (r->proto && r->proto != k->proto)
		return false;
	if (r->need_l4 && !port_bearing(k->proto))
		return false;
	if ((ks[0] & r->smask[0]) != r->src[0] || (ks[1] & r->smask[1]) != r->src[1])
		return false;
	if ((kd[0] & r->dmask[0]) != r->dst[0] || (kd[1] & r->dmask[1]) != r->dst[1])
		return false;
	if (k->sport < r->sp_lo || k->sport > r->sp_hi)
		return false;
	if (k->dport < r->dp_lo || k->dport > r->dp_hi)
		return false;
	return true;
}

/* ---- tuple space ---- */

static uint64_t tss_hash(const uint64_t s[2], const uint64_t d[2], uint8_t proto, uint16_t sport, uint16_t dport)
{
	uint64_t w[5] = {s[0], s[1], d[0], d[1], (uint64_t)proto << 32 | (uint64_t)sport << 16 | dport};
	return hash_bytes(w, sizeof(w), 0x7553);
}

static uint64_t pfx_hash(const uint64_t a[2], uint8_t len)
{
	uint64_t w[2] = {a[0], a[1] ^ len};
	return hash_bytes(w, sizeof(w), 0x9f11);
}

static int plen_of(const uint64_t m[2])
{
	return __builtin_popcountll(m[0]) + __builtin_popcountll(m[1]);
}

/* The slot of (len, a) in f's table: where it is, or the empty slot where
 * it would go. */
static uint32_t pfx_slot(const struct pfx_filter *f, const uint64_t a[2], uint8_t len)
{
	for (uint32_t i = (uint32_t)pfx_hash(a, len) & f->mask;; i = (i + 1) & f->mask) {
		const struct pfx_ent *e = &f->tab[i];
		if (!e->used || (e->len == len && e->a[0] == a[0] && e->a[1] == a[1]))
			return i;
	}
}

/* bits[l / 64] bit l % 64: some rule prefix of length l contains k. */
static void pfx_bits(const struct pfx_filter *f, const uint64_t k[2], uint64_t bits[3])
{
	if (!f->on) {
		bits[0] = bits[1] = bits[2] = ~0ull;
		return;
	}
	bits[0] = 1; /* length 0: everything */
	bits[1] = bits[2] = 0;
	for (uint32_t i = 0; i < f->n_lens; i++) {
		uint8_t l = f->lens[i];
		uint64_t a[2] = {k[0] & f->masks[i][0], k[1] & f->masks[i][1]};
		if (f->tab[pfx_slot(f, a, l)].used)
			bits[l / 64] |= 1ull << (l % 64);
	}
}

static bool pfx_bit(const uint64_t bits[3], uint8_t l) { return bits[l / 64] >> (l % 64) & 1; }

/* A port range as aligned blocks: out[i] = value, masks[i] = prefix mask.
 * Returns the number of blocks (1 for any or a single port). */
struct pblock {
	uint16_t value, mask;
};

static uint32_t port_blocks(uint16_t lo, uint16_t hi, struct pblock *out)
{
	uint32_t n = 0, v = lo;
	while (v <= hi) {
		/* the largest aligned block starting at v that ends within hi */
		uint32_t size = 1;
		while (size < 65536 && (v & (size * 2 - 1)) == 0 && v + size * 2 - 1 <= hi)
			size *= 2;
		out[n].value = (uint16_t)v;
		out[n].mask = (uint16_t)(0xffffu & ~(size - 1));
		n++;
		v += size;
	}
	return n;
}

/* One TSS entry of a rule: the rule with one source and one destination
 * port block. */
struct xrule {
	const struct crule *r;
	struct pblock sp, dp;
};

static bool tuple_same(const struct tuple *t, const struct xrule *x)
{
	const struct crule *r = x->r;
	return t->smask[0] == r->smask[0] && t->smask[1] == r->smask[1] && t->dmask[0] == r->dmask[0] &&
	       t->dmask[1] == r->dmask[1] && t->proto_wild == (r->proto == 0) && t->sport_mask == x->sp.mask &&
	       t->dport_mask == x->dp.mask;
}

static void tuple_put(struct tuple *t, const struct xrule *xr)
{
	const struct crule *r = xr->r;
	struct tss_ent e = {0};
	e.s[0] = r->src[0];
	e.s[1] = r->src[1];
	e.d[0] = r->dst[0];
	e.d[1] = r->dst[1];
	e.proto = r->proto;
	e.sport = xr->sp.value;
	e.dport = xr->dp.value;
	e.used = 1;
	e.rule = r->rule;
	e.rank = r->rank;
	for (uint32_t i = (uint32_t)tss_hash(e.s, e.d, e.proto, e.sport, e.dport) & t->mask;; i = (i + 1) & t->mask) {
		struct tss_ent *x = &t->tab[i];
		if (!x->used) {
			*x = e;
			return;
		}
		if (x->s[0] == e.s[0] && x->s[1] == e.s[1] && x->d[0] == e.d[0] && x->d[1] == e.d[1] &&
		    x->proto == e.proto && x->sport == e.sport && x->dport == e.dport) {
			if (e.rank < x->rank)
				*x = e; /* the best rank per key */
			return;
		}
	}
}

static const struct tss_ent *tuple_find(const struct tuple *t, const struct flow_key *k, const uint64_t ks[2],
					const uint64_t kd[2])
{
	if (t->need_l4 && !port_bearing(k->proto))
		return NULL;
	uint64_t s[2] = {ks[0] & t->smask[0], ks[1] & t->smask[1]};
	uint64_t d[2] = {kd[0] & t->dmask[0], kd[1] & t->dmask[1]};
	uint8_t proto = t->proto_wild ? 0 : k->proto;
	uint16_t sport = k->sport & t->sport_mask;
	uint16_t dport = k->dport & t->dport_mask;
	for (uint32_t i = (uint32_t)tss_hash(s, d, proto, sport, dport) & t->mask;; i = (i + 1) & t->mask) {
		const struct tss_ent *x = &t->tab[i];
		if (!x->used)
			return NULL;
		if (x->s[0] == s[0] && x->s[1] == s[1] && x->d[0] == d[0] && x->d[1] == d[1] && x->proto == proto &&
		    x->sport == sport && x->dport == dport)
			return x;
	}
}

static int tuple_rank_cmp(const void *a, const void *b)
{
	const struct tuple *x = a, *y = b;
	return x->best_rank < y->best_rank ? -1 : x->best_rank > y->best_rank;
}

static void cset_free(struct cset *s)
{
	free(s->ids);
	free(s->lin);
	for (uint32_t i = 0; i < s->n_tuples; i++)
		free(s->tuples[i].tab);
	free(s->tuples);
	for (int i = 0; i < 2; i++) {
		free(s->pf[i].masks);
		free(s->pf[i].tab);
	}
}

/* Fills filter f from the n_x entries' addresses (src or dst) at their
 * tuples' lengths; turns it on when it has fewer lengths than tuples. */
static bool pfx_build(struct pfx_filter *f, bool dst, const struct tuple *tuples, uint32_t n_tuples,
		      const struct xrule *xs, const uint32_t *tup_of, uint32_t n_x)
{
	bool seen[129] = {false};
	for (uint32_t j = 0; j < n_tuples; j++) {
		uint8_t l = dst ? tuples[j].dplen : tuples[j].splen;
		if (l && !seen[l]) {
			seen[l] = true;
			f->lens[f->n_lens++] = l;
		}
	}
	if (f->n_lens == 0 || f->n_lens >= n_tuples)
		return true; /* off: probing the lengths would cost as much as the tuples */
	uint32_t cap = 8;
	while (cap < n_x * 2)
		cap <<= 1;
	f->masks = calloc(f->n_lens, sizeof(*f->masks));
	f->tab = calloc(cap, sizeof(*f->tab));
	if (!f->masks || !f->tab)
		return false;
	f->mask = cap - 1;
	for (uint32_t i = 0; i < f->n_lens; i++)
		make_mask(f->lens[i], f->masks[i]);
	for (uint32_t i = 0; i < n_x; i++) {
		const struct tuple *tp = &tuples[tup_of[i]];
		uint8_t l = dst ? tp->dplen : tp->splen;
		if (!l)
			continue;
		const uint64_t *a = dst ? xs[i].r->dst : xs[i].r->src;
		f->tab[pfx_slot(f, a, l)] = (struct pfx_ent){{a[0], a[1]}, l, 1};
	}
	f->on = true;
	return true;
}

/* Compiles the rank-ordered rule list ids[0..n) into s (takes ids). */
static bool cset_build(struct cset *s, const struct topology *t, uint16_t *ids, uint32_t n, uint64_t ids_hash)
{
	memset(s, 0, sizeof(*s));
	s->ids = ids;
	s->n = n;
	s->ids_hash = ids_hash;
	struct crule *all = calloc(n ? n : 1, sizeof(*all));
	if (!all)
		return false;
	for (uint32_t i = 0; i < n; i++)
		compile_rule(t, ids[i], i, &all[i]);
	if (n <= CLS_LINEAR_MAX) {
		s->lin = all;
		s->n_lin = n;
		return true;
	}
	/* TSS: every rule cut into its port blocks (or kept in the list when
	 * that would make too many); pass 1 assigns tuples and counts, pass 2
	 * fills the tables */
	struct xrule *xs = NULL;
	uint32_t n_x = 0, cap_x = 0;
	s->tuples = NULL;
	s->lin = calloc(n, sizeof(*s->lin));
	if (!s->lin) {
		free(all);
		return false;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct crule *r = &all[i];
		struct pblock sb[32], db[32];
		uint32_t ns = port_blocks(r->sp_lo, r->sp_hi, sb), nd = port_blocks(r->dp_lo, r->dp_hi, db);
		if (ns * nd > CLS_EXPAND_MAX) {
			s->lin[s->n_lin++] = *r;
			continue;
		}
		if (n_x + ns * nd > cap_x) {
			uint32_t nc = cap_x ? cap_x * 2 : 1024;
			while (nc < n_x + ns * nd)
				nc *= 2;
			struct xrule *g = realloc(xs, nc * sizeof(*xs));
			if (!g) {
				free(xs);
				free(all);
				return false;
			}
			xs = g;
			cap_x = nc;
		}
		for (uint32_t a = 0; a < ns; a++)
			for (uint32_t b = 0; b < nd; b++)
				xs[n_x++] = (struct xrule){r, sb[a], db[b]};
	}
	uint32_t *tup_of = calloc(n_x + 1u, sizeof(*tup_of));
	s->tuples = calloc(n_x + 1u, sizeof(*s->tuples));
	if (!tup_of || !s->tuples) {
		free(tup_of);
		free(xs);
		free(all);
		return false;
	}
	for (uint32_t i = 0; i < n_x; i++) {
		const struct xrule *x = &xs[i];
		uint32_t j;
		/* tuples are few in practice; a linear search keeps build simple */
		for (j = 0; j < s->n_tuples; j++)
			if (tuple_same(&s->tuples[j], x))
				break;
		if (j == s->n_tuples) {
			struct tuple *tp = &s->tuples[s->n_tuples++];
			memcpy(tp->smask, x->r->smask, sizeof(tp->smask));
			memcpy(tp->dmask, x->r->dmask, sizeof(tp->dmask));
			tp->proto_wild = x->r->proto == 0;
			tp->sport_mask = x->sp.mask;
			tp->dport_mask = x->dp.mask;
			tp->need_l4 = x->r->need_l4;
			tp->splen = (uint8_t)plen_of(tp->smask);
			tp->dplen = (uint8_t)plen_of(tp->dmask);
			tp->best_rank = x->r->rank; /* entries come in rank order */
		}
		s->tuples[j].n++;
		tup_of[i] = j;
	}
	for (uint32_t j = 0; j < s->n_tuples; j++) {
		struct tuple *tp = &s->tuples[j];
		uint32_t cap = 8;
		while (cap < tp->n * 2)
			cap <<= 1;
		tp->tab = calloc(cap, sizeof(*tp->tab));
		tp->mask = cap - 1;
		if (!tp->tab) {
			free(tup_of);
			free(xs);
			free(all);
			return false;
		}
	}
	for (uint32_t i = 0; i < n_x; i++)
		tuple_put(&s->tuples[tup_of[i]], &xs[i]);
	if (!pfx_build(&s->pf[0], false, s->tuples, s->n_tuples, xs, tup_of, n_x) ||
	    !pfx_build(&s->pf[1], true, s->tuples, s->n_tuples, xs, tup_of, n_x)) {
		free(tup_of);
		free(xs);
		free(all);
		return false;
	}
	free(tup_of);
	free(xs);
	free(all);
	if (s->n_tuples > 1)
		qsort(s->tuples, s->n_tuples, sizeof(*s->tuples), tuple_rank_cmp);
	return true;
}

static uint16_t cset_lookup(const struct cset *s, const struct flow_key *k)
{
	uint64_t ks[2], kd[2];
	load_addr(&k->src, ks);
	load_addr(&k->dst, kd);
	uint32_t best = UINT32_MAX;
	uint16_t rule = CLS_NO_RULE;
	for (uint32_t i = 0; i < s->n_lin; i++) {
		const struct crule *r = &s->lin[i];
		if (crule_match(r, k, ks, kd)) {
			best = r->rank;
			rule = r->rule;
			break; /* rank order */
		}
	}
	if (!s->n_tuples)
		return rule;
	uint64_t sb[3], db[3];
	pfx_bits(&s->pf[0], ks, sb);
	pfx_bits(&s->pf[1], kd, db);
	for (uint32_t j = 0; j < s->n_tuples; j++) {
		const struct tuple *tp = &s->tuples[j];
		if (tp->best_rank >= best)
			break;
		if (!pfx_bit(sb, tp->splen) || !pfx_bit(db, tp->dplen))
			continue; /* no rule prefix of its lengths contains the packet's addresses */
		const struct tss_ent *e = tuple_find(tp, k, ks, kd);
		if (e && e->rank < best) {
			best = e->rank;
			rule = e->rule;
		}
	}
	return rule;
}

/* ---- build ---- */

struct plist {
	uint16_t *ids;
	uint32_t n, cap;
};

static bool plist_add(struct plist *l, uint16_t id)
{
	if (l->n && l->ids[l->n - 1] == id)
		return true; /* same rule via a guest and its network */
	if (l->n == l->cap) {
		uint32_t nc = l->cap ? l->cap * 2 : 4;
		uint16_t *p = realloc(l->ids, nc * sizeof(*p));
		if (!p)
			return false;
		l->ids = p;
		l->cap = nc;
	}
	l->ids[l->n++] = id;
	return true;
}

/* Stable merge sort by (priority desc, index asc); no global state so
 * builds may run concurrently. */
static void sort_ids(const struct topology *t, uint16_t *v, uint16_t *tmp, uint32_t n)
{
	if (n < 2)
		return;
	uint32_t h = n / 2;
	sort_ids(t, v, tmp, h);
	sort_ids(t, v + h, tmp, n - h);
	uint32_t i = 0, j = h, o = 0;
	while (i < h && j < n) {
		uint16_t x = v[i], y = v[j];
		int32_t px = t->rules[x].priority, py = t->rules[y].priority;
		bool take_y = py > px || (py == px && y < x);
		tmp[o++] = take_y ? v[j++] : v[i++];
	}
	while (i < h)
		tmp[o++] = v[i++];
	while (j < n)
		tmp[o++] = v[j++];
	memcpy(v, tmp, n * sizeof(*v));
}

void classifier_free(struct classifier *c)
{
	if (!c)
		return;
	for (uint32_t i = 0; i < c->n_sets; i++)
		cset_free(&c->sets[i]);
	free(c->sets);
	free(c->point_set);
	free(c);
}

struct classifier *classifier_build(const struct topology *t)
{
	if (!t)
		return NULL;
	struct classifier *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->n_guests = t->n_guests;
	c->n_rules = t->n_rules;
	uint32_t n_points = (uint32_t)t->n_guests * 2;
	c->point_set = malloc((n_points ? n_points : 1) * sizeof(*c->point_set));
	c->sets = calloc(n_points ? n_points : 1, sizeof(*c->sets));
	struct plist *pl = calloc(n_points ? n_points : 1, sizeof(*pl));
	uint16_t *tmp = malloc(((size_t)t->n_rules + 1) * sizeof(uint16_t));
	uint32_t *net_first = NULL;
	uint16_t *net_guests = NULL;
	if (!c->point_set || !c->sets || !pl || !tmp)
		goto fail;

	/* guests per network, so a rule on a network expands in O(its guests) */
	net_first = calloc((size_t)t->n_networks + 1, sizeof(*net_first));
	net_guests = malloc(((size_t)t->n_guests + 1) * sizeof(*net_guests));
	if (!net_first || !net_guests)
		goto fail;
	for (uint16_t g = 0; g < t->n_guests; g++)
		if (t->guests[g].network < t->n_networks)
			net_first[t->guests[g].network + 1]++;
	for (uint32_t i = 0; i < t->n_networks; i++)
		net_first[i + 1] += net_first[i];
	{
		uint32_t *fill = calloc((size_t)t->n_networks + 1, sizeof(*fill));
		if (!fill)
			goto fail;
		for (uint16_t g = 0; g < t->n_guests; g++) {
			uint16_t nw = t->guests[g].network;
			if (nw < t->n_networks)
				net_guests[net_first[nw] + fill[nw]++] = g;
		}
		free(fill);
	}

	/* expand rules onto points (file order: each list starts in file order) */
	for (uint16_t r = 0; r < t->n_rules; r++) {
		const struct topo_rule *rl = &t->rules[r];
		uint16_t n_app = MIN(rl->n_applied, (uint16_t)ARRAY_SIZE(rl->applied_to));
		for (uint16_t a = 0; a < n_app; a++) {
			uint16_t idx = rl->applied_to[a].index;
			const uint16_t *gs;
			uint32_t ng;
			if (rl->applied_to[a].is_network) {
				if (idx >= t->n_networks)
					continue;
				gs = net_guests + net_first[idx];
				ng = net_first[idx + 1] - net_first[idx];
			} else {
				if (idx >= t->n_guests)
					continue;
				gs = &rl->applied_to[a].index;
				ng = 1;
			}
			for (uint32_t i = 0; i < ng; i++) {
				uint32_t g = gs[i];
				if ((rl->dir & RULE_DIR_INGRESS) && !plist_add(&pl[g * 2 + 1], r))
					goto fail;
				if ((rl->dir & RULE_DIR_EGRESS) && !plist_add(&pl[g * 2], r))
					goto fail;
			}
		}
	}

	/* sort, dedupe identical lists into shared sets, compile */
	for (uint32_t p = 0; p < n_points; p++) {
		struct plist *l = &pl[p];
		c->point_set[p] = UINT32_MAX;
		if (l->n == 0)
			continue;
		sort_ids(t, l->ids, tmp, l->n);
		uint64_t h = hash_bytes(l->ids, l->n * sizeof(uint16_t), 0xc1a55);
		uint32_t s;
		for (s = 0; s < c->n_sets; s++)
			if (c->sets[s].ids_hash == h && c->sets[s].n == l->n &&
			    memcmp(c->sets[s].ids, l->ids, l->n * sizeof(uint16_t)) == 0)
				break;
		if (s == c->n_sets) {
			if (!cset_build(&c->sets[s], t, l->ids, l->n, h)) {
				l->ids = NULL; /* owned by the set now */
				c->n_sets++;
				goto fail;
			}
			l->ids = NULL;
			c->n_sets++;
		}
		c->point_set[p] = s;
	}
	for (uint32_t p = 0; p < n_points; p++)
		free(pl[p].ids);
	free(pl);
	free(tmp);
	free(net_first);
	free(net_guests);
	return c;
fail:
	if (pl)
		for (uint32_t p = 0; p < n_points; p++)
			free(pl[p].ids);
	free(pl);
	free(tmp);
	free(net_first);
	free(net_guests);
	classifier_free(c);
	return NULL;
}

uint16_t classifier_lookup(const struct classifier *c, uint16_t guest, bool ingress, const struct flow_key *k)
{
	if (!c || !k || !k->is_ip || guest >= c->n_guests)
		return CLS_NO_RULE;
	uint32_t s = c->point_set[(uint32_t)guest * 2 + (ingress ? 1 : 0)];
	if (s == UINT32_MAX)
		return CLS_NO_RULE;
	return cset_lookup(&c->sets[s], k);
}

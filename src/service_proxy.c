/* service_proxy.c - per-node formatting, return checks and metadata recovery. */
#include "service_proxy.h"

#include <netinet/in.h>
#include <stdlib.h>

#include "hugemem.h"
#include "nsh.h"
#include "wire.h"

#define SPX_WAYS 4
#define SPX_SEED 0x5b7
#define SPX_CTX_SEED 0xc7c
#define SPX_STALE_S 300
#define SPX_CTX_WAYS 4
#define SPX_INFLIGHT_S 10 /* how long a key pushed out is remembered: a packet of its flow may be at the node */

enum spx_kind { SPX_SRC_EP = 2, SPX_DST_EP = 3 };

/* sp_meta in three parts: what varies per flow and hop (HOP_LEN bytes
 * from its start, kept in each entry as they are), then a flow's context,
 * what all flows between two guests share (guest port and VNI, original
 * MACs, return address: CTX_LEN bytes, kept once per table), then what
 * belongs to a packet alone (not kept). */
#define HOP_LEN offsetof(struct sp_meta, vni)
#define CTX_OFF HOP_LEN
#define CTX_LEN (offsetof(struct sp_meta, ret_spmac) + sizeof(struct mac) - CTX_OFF)
_Static_assert(HOP_LEN == 16, "the per-hop part is 16 bytes");
_Static_assert(CTX_LEN == sizeof(uint16_t) + sizeof(uint32_t) + 3 * sizeof(struct mac) + sizeof(struct ipaddr),
	       "the context fields of sp_meta are contiguous");
_Static_assert(offsetof(struct sp_meta, fp_action) == CTX_OFF + CTX_LEN, "the packet's own part follows");

#define EF_AMBIGUOUS 0x80000000u /* in ctx: two tenants or guests share this key: recover nothing */
#define EF_ENDPOINT 0x40000000u  /* in ctx: an endpoint key (for NAT), which gives way to exact keys */
#define EF_SLOT 0x3fffffffu

/* A flow's state at a node under one key: its 64-bit key hash (a false
 * match needs two keys of one set to collide on 64 bits), last use (whole
 * seconds, modulo 2^16: an entry is live for SPX_STALE_S after it; one
 * unused for a multiple of 18 hours looks live again, but recovers only
 * through a live context), its context (slot and a check of the slot's
 * hash: a slot since given to another context recovers nothing) and the
 * per-hop metadata. */
struct spx_entry {
	uint64_t khash; /* 0 = empty */
	uint16_t used_s;
	uint16_t ctx_check;
	uint32_t ctx; /* slot | EF_AMBIGUOUS | EF_ENDPOINT */
	uint8_t hop[HOP_LEN];
};
_Static_assert(sizeof(struct spx_entry) == 32, "an entry is half a cache line");

/* A set: SPX_WAYS entries, two cache lines side by side. */
struct spx_set {
	struct spx_entry e[SPX_WAYS];
} __attribute__((aligned(128)));

struct spx_ctx {
	uint64_t hash; /* of b, never 0; 0 = empty */
	uint32_t used_s;
	uint8_t b[CTX_LEN];
} __attribute__((aligned(64)));

/* A live key pushed out of the table, remembered for SPX_INFLIGHT_S: a
 * packet of its flow may still be at the node, and must not come back to
 * the state another owner writes under the same key meanwhile. */
struct spx_tomb {
	uint32_t tag;     /* the key hash's upper half, | 1 (0 = none) */
	uint32_t owner;   /* owner_of() its context; TOMB_ANY for a key two owners shared */
	uint32_t until_s; /* whole seconds, like now_s() */
};
#define TOMB_ANY 0

struct spx_table {
	uint32_t n_sets, ctx_mask; /* ctx_mask: of the context buckets */
	struct spx_set *sets;
	struct spx_ctx *ctxs;    /* [(ctx_mask + 1) * SPX_CTX_WAYS] */
	struct spx_tomb *tombs;  /* [n_sets], direct-mapped by key hash */
	uint32_t buried_until;   /* no tomb is live from this second on (0: none ever) */
	uint64_t entries, evicted, misses;
};

static size_t ctx_bytes(uint32_t ctx_mask) { return ((size_t)ctx_mask + 1) * SPX_CTX_WAYS * sizeof(struct spx_ctx); }

struct spx_table *spx_table_create(uint32_t cap)
{
	if (cap < 64 || cap % 64)
		return NULL;
	struct spx_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	uint32_t nsets = cap / SPX_WAYS;
	t->n_sets = nsets;
	/* a context per 32 entries or more: the flows between two guests
	 * share one */
	uint32_t buckets = 1;
	while (buckets * 2 <= cap / 32 / SPX_CTX_WAYS)
		buckets *= 2;
	t->ctx_mask = buckets - 1;
	t->sets = hugemem_alloc((size_t)nsets * sizeof(*t->sets));
	t->ctxs = hugemem_alloc(ctx_bytes(t->ctx_mask));
	t->tombs = hugemem_alloc((size_t)nsets * sizeof(*t->tombs));
	if (!t->sets || !t->ctxs || !t->tombs) {
		spx_table_destroy(t);
		return NULL;
	}
	return t;
}

void spx_table_destroy(struct spx_table *t)
{
	if (t) {
		hugemem_free(t->sets, (size_t)t->n_sets * sizeof(*t->sets));
		hugemem_free(t->ctxs, ctx_bytes(t->ctx_mask));
		hugemem_free(t->tombs, (size_t)t->n_sets * sizeof(*t->tombs));
		free(t);
	}
}

size_t spx_table_bytes(const struct spx_table *t)
{
	return (size_t)t->n_sets * (sizeof(*t->sets) + sizeof(*t->tombs)) + ctx_bytes(t->ctx_mask);
}

void spx_table_stats(const struct spx_table *t, uint64_t *entries, uint64_t *evicted, uint64_t *misses)
{
	*entries = t->entries;
	*evicted = t->evicted;
	*misses = t->misses;
}

/* A key: (EXACT) the 5-tuple, flow_tuple_hash; (SRC_EP) source address
 * and port; (DST_EP) destination address and port; with protocol, kind
 * (never 0: apart from every tuple's hash), node and context. Its place
 * picks its set and hashes all but the node and context, so that a flow's
 * exact keys at all the nodes of this host share a set: the second hop of
 * a local chain finds it in cache. Its identity h is that 64-bit hash with
 * node and context folded in (two keys of one place differ in h). */
struct spx_key {
	uint64_t h;
	uint32_t place;
};

static struct spx_key key_at(uint64_t th, uint16_t node, uint32_t ctx)
{
	uint64_t h = th ^ ((uint64_t)node << 32 | ctx);
	return (struct spx_key){.h = h ? h : 1, .place = (uint32_t)(th >> 32)};
}

static struct spx_key endpoint_key(enum spx_kind kind, uint16_t node, uint32_t ctx, const struct flow_key *f)
{
	uint64_t w[5];
	const struct ipaddr *a = kind == SPX_DST_EP ? &f->dst : &f->src;
	memcpy(&w[0], a->b, 16);
	w[2] = w[3] = 0;
	uint64_t port = kind == SPX_DST_EP ? f->dport : f->sport;
	w[4] = port | (uint64_t)f->proto << 32 | (uint64_t)kind << 40;
	return key_at(hash_bytes(w, sizeof(w), SPX_SEED), node, ctx);
}

/* The set of a place. */
static inline uint32_t set_of(const struct spx_table *t, uint32_t place)
{
	return (uint32_t)((uint64_t)place * t->n_sets >> 32); /* fast range: any number of sets */
}

static inline uint32_t now_s(uint64_t now_ns) { return (uint32_t)(now_ns / 1000000000ull) + 1; }

static inline bool is_live(uint64_t hash, uint32_t used_s, uint32_t ts)
{
	return hash && ts - used_s < SPX_STALE_S;
}

/* How long ago (seconds) entry e was used; UINT32_MAX when empty. */
static inline uint32_t age(const struct spx_entry *e, uint32_t ts)
{
	return e->khash ? (uint16_t)(ts - e->used_s) : UINT32_MAX;
}

/* Write once a second at most: a line read by every packet stays clean. */
static inline void touch(uint32_t *used_s, uint32_t ts)
{
	if (*used_s != ts)
		*used_s = ts;
}

/* The live entry of hash h in set s, refreshed; NULL if none (*had_empty:
 * the set has a way never used). */
static inline struct spx_entry *find(struct spx_set *s, uint64_t h, uint32_t ts, bool *had_empty)
{
	for (int w = 0; w < SPX_WAYS; w++) {
		struct spx_entry *e = &s->e[w];
		if (e->khash == h && (uint16_t)(ts - e->used_s) < SPX_STALE_S) { /* h != 0: not empty */
			if (e->used_s != (uint16_t)ts)
				e->used_s = (uint16_t)ts;
			return e;
		}
	}
	bool empty = false;
	for (int w = 0; w < SPX_WAYS; w++)
		empty |= !s->e[w].khash;
	*had_empty = empty;
	return NULL;
}

/* The live entry of hash h in the pair of set s, refreshed: in s, or in
 * its partner when s was ever full; NULL if none (*had_empty: the last set
 * read has a way never used, so no key went past it). */
static inline struct spx_entry *find_pair(struct spx_table *t, uint32_t s, uint64_t h, uint32_t ts, bool *had_empty)
{
	struct spx_entry *e = find(&t->sets[s], h, ts, had_empty);
	return e || *had_empty ? e : find(&t->sets[s ^ 1], h, ts, had_empty);
}

/* The first set of a place's other pair (never its own pair): from the
 * place's bits mixed, so that the places of one pair spill into different
 * pairs. */
static inline uint32_t alt_of(const struct spx_table *t, uint32_t place, uint32_t s)
{
	uint32_t m = place * 0x9e3779b1u;
	uint32_t a = (uint32_t)((uint64_t)(m ^ m >> 15) * t->n_sets >> 32) & ~1u;
	return (a ^ s) > 1 ? a : a ^ 2; /* n_sets is a multiple of four */
}

/* Rare: k in its place's other pair (its own pair was full). */
static __attribute__((noinline)) struct spx_entry *lookup_alt(struct spx_table *t, struct spx_key k, uint32_t s,
							     uint32_t ts)
{
	bool empty;
	return find_pair(t, alt_of(t, k.place, s), k.h, ts, &empty);
}

void spx_table_pairs(const struct spx_table *t, uint64_t tuple_hash, uint32_t *pair, uint32_t *spill)
{
	uint32_t place = (uint32_t)(tuple_hash >> 32), s = set_of(t, place);
	*pair = s & ~1u;
	*spill = alt_of(t, place, s);
}

/* The live entry of key k, refreshed; NULL if none. A key lives in the
 * set of its place or, when that was full, in its partner (the other set
 * of the 256-byte pair): a flow's state at up to eight local nodes fits.
 * When the pair was full, in the place's other pair: a fixed pair holding
 * more than eight live keys would have its flows take turns at its ways,
 * each packet writing state anew. (Entries are written over, never
 * cleared: a set with a way never used was never full, and no key went
 * past it.) */
static HOT_INLINE struct spx_entry *lookup(struct spx_table *t, struct spx_key k, uint32_t ts)
{
	uint32_t s = set_of(t, k.place);
	bool empty;
	struct spx_entry *e = find_pair(t, s, k.h, ts, &empty);
	return e || empty ? e : lookup_alt(t, k, s, ts);
}

/* What taking way e for a new key costs least: a free way (empty or
 * stale), then an endpoint key (needed only until a node's rewrite of the
 * tuple is learnt), then the exact key used longest ago. */
static inline uint32_t give_way(const struct spx_entry *e, uint32_t ts)
{
	uint32_t a = age(e, ts);
	if (a >= SPX_STALE_S)
		return UINT32_MAX;
	return (e->ctx & EF_ENDPOINT) ? SPX_STALE_S + a : a;
}

/* The way of set s to take first, and its give_way(). */
static struct spx_entry *victim_of(struct spx_set *s, uint32_t ts, uint32_t *best)
{
	struct spx_entry *victim = &s->e[0];
	*best = 0;
	for (int w = 0; w < SPX_WAYS; w++) {
		uint32_t g = give_way(&s->e[w], ts);
		if (g > *best) {
			*best = g;
			victim = &s->e[w];
		}
	}
	return victim;
}

/* Who state belongs to (what other_owner compares: guest network, guest
 * port, return address), never TOMB_ANY. */
static uint32_t owner_of(const struct sp_meta *md)
{
	uint64_t w[3];
	memcpy(w, md->ret_vtep.b, 16);
	w[2] = md->vni | (uint64_t)md->guest_port << 32;
	uint32_t o = (uint32_t)hash_bytes(w, sizeof(w), SPX_CTX_SEED);
	return o == TOMB_ANY ? 1 : o;
}

static inline struct spx_tomb *tomb_of(const struct spx_table *t, uint64_t h)
{
	return &t->tombs[(uint64_t)(uint32_t)h * t->n_sets >> 32];
}

static inline uint32_t tomb_tag(uint64_t h) { return (uint32_t)(h >> 32) | 1; }

/* The live context of e, or NULL (its slot went stale or to another). */
static struct spx_ctx *ctx_of(const struct spx_table *t, const struct spx_entry *e, uint32_t ts)
{
	struct spx_ctx *c = &t->ctxs[e->ctx & EF_SLOT];
	return (uint16_t)c->hash == e->ctx_check && is_live(c->hash, c->used_s, ts) ? c : NULL;
}

/* The context fields of md from context c. */
static void ctx_to_md(const struct spx_ctx *c, struct sp_meta *md)
{
	memcpy((uint8_t *)md + CTX_OFF, c->b, CTX_LEN);
}

/* Remember live entry e, about to be written over (see struct spx_tomb). */
static __attribute__((noinline)) void bury(struct spx_table *t, const struct spx_entry *e, uint32_t ts)
{
	const struct spx_ctx *c = ctx_of(t, e, ts);
	if (!c)
		return; /* it recovers nothing already */
	struct spx_tomb *b = tomb_of(t, e->khash);
	b->tag = tomb_tag(e->khash);
	b->until_s = ts + SPX_INFLIGHT_S;
	if (!t->buried_until || (int32_t)(b->until_s - t->buried_until) > 0)
		t->buried_until = b->until_s;
	if (e->ctx & EF_AMBIGUOUS) {
		b->owner = TOMB_ANY;
	} else {
		struct sp_meta m;
		ctx_to_md(c, &m);
		b->owner = owner_of(&m);
	}
}

/* Was key k pushed out moments ago from another owner than md's (its
 * packets may still come back from the node)? */
static __attribute__((noinline)) bool buried_other(const struct spx_table *t, struct spx_key k, const struct sp_meta *md,
						 uint32_t ts)
{
	if ((int32_t)(t->buried_until - ts) <= 0)
		return false; /* the common case: nothing pushed out lately */
	const struct spx_tomb *b = tomb_of(t, k.h);
	return b->tag == tomb_tag(k.h) && (int32_t)(b->until_s - ts) > 0 &&
	       (b->owner == TOMB_ANY || b->owner != owner_of(md));
}

/* Make room for key k (absent): a way of its set, or of the partner if
 * that gives way more easily (see give_way), or, when the pair holds only
 * live exact keys (for an endpoint key: has no free way), of the place's
 * other pair if that gives way more easily; its metadata is then the
 * caller's to fill. An endpoint key never pushes out a live exact key:
 * NULL then; an exact key moves an endpoint key to a free way of the
 * partner rather than leave its set, and takes an endpoint key's way in
 * its pair rather than spill. */
static struct spx_entry *claim(struct spx_table *t, struct spx_key k, uint32_t ts, bool endpoint)
{
	uint32_t s = set_of(t, k.place), best, other;
	struct spx_entry *victim = victim_of(&t->sets[s], ts, &best);
	if (best != UINT32_MAX) {
		struct spx_entry *v2 = victim_of(&t->sets[s ^ 1], ts, &other);
		if (!endpoint && best >= SPX_STALE_S) {
			/* an exact key stays in its own set, which its lookups
			 * read first: the endpoint key there moves to a free
			 * way of the partner, or goes */
			if (other == UINT32_MAX) {
				*v2 = *victim;
				best = UINT32_MAX;
			}
		} else if (other > best) {
			victim = v2;
			best = other;
		}
	}
	/* the pair holds only live exact keys (an endpoint key: no free way
	 * either): the place's other pair, if it gives way more easily */
	if (best < SPX_STALE_S || (endpoint && best != UINT32_MAX)) {
		uint32_t a = alt_of(t, k.place, s);
		for (uint32_t i = 0; i < 2; i++) {
			struct spx_entry *v3 = victim_of(&t->sets[a ^ i], ts, &other);
			if (other > best) {
				victim = v3;
				best = other;
			}
		}
	}
	if (endpoint && best < SPX_STALE_S)
		return NULL;
	if (best != UINT32_MAX) {
		bury(t, victim, ts);
		t->evicted++; /* a live flow's state goes */
	} else {
		t->entries++;
	}
	victim->khash = k.h;
	victim->used_s = (uint16_t)ts;
	return victim;
}

/* The slot of md's context, added if new. A live context is never written
 * over (its flows would lose their state, and with it the check that keeps
 * a key shared by two tenants from recovering either): when its bucket
 * holds only live ones, UINT32_MAX. */
static uint32_t intern(struct spx_table *t, const struct sp_meta *md, uint32_t ts, uint64_t *hash)
{
	const uint8_t *b = (const uint8_t *)md + CTX_OFF;
	uint64_t h = hash_bytes(b, CTX_LEN, SPX_CTX_SEED) | 1;
	uint32_t first = ((uint32_t)h & t->ctx_mask) * SPX_CTX_WAYS, free_slot = UINT32_MAX;
	for (uint32_t i = first; i < first + SPX_CTX_WAYS; i++) {
		struct spx_ctx *c = &t->ctxs[i];
		if (c->hash == h && memcmp(c->b, b, CTX_LEN) == 0) {
			touch(&c->used_s, ts);
			*hash = h;
			return i;
		}
		if (free_slot == UINT32_MAX && !is_live(c->hash, c->used_s, ts))
			free_slot = i;
	}
	if (free_slot != UINT32_MAX) {
		struct spx_ctx *c = &t->ctxs[free_slot];
		c->hash = h;
		c->used_s = ts;
		memcpy(c->b, b, CTX_LEN);
		*hash = h;
	}
	return free_slot;
}

/* Does e hold exactly md? Then its context is refreshed with it. */
static bool holds(const struct spx_table *t, const struct spx_entry *e, const struct sp_meta *md, uint32_t ts)
{
	if (memcmp(e->hop, md, HOP_LEN) != 0)
		return false;
	struct spx_ctx *c = ctx_of(t, e, ts);
	if (!c || memcmp(c->b, (const uint8_t *)md + CTX_OFF, CTX_LEN) != 0)
		return false;
	touch(&c->used_s, ts);
	return true;
}

/* Does e belong to another guest or tenant than md? (An entry whose
 * context is gone was unused for the table's lifetime: nobody's.) */
static bool other_owner(const struct spx_table *t, const struct spx_entry *e, const struct sp_meta *md, uint32_t ts)
{
	const struct spx_ctx *c = ctx_of(t, e, ts);
	if (!c)
		return false;
	struct sp_meta old;
	ctx_to_md(c, &old);
	return old.vni != md->vni || old.guest_port != md->guest_port || !ipaddr_eq(&old.ret_vtep, &md->ret_vtep);
}

/* md from e and its context (refreshed); false when the context is gone. */
static bool unpack(const struct spx_table *t, const struct spx_entry *e, struct sp_meta *md, uint32_t ts)
{
	struct spx_ctx *c = ctx_of(t, e, ts);
	if (!c)
		return false;
	touch(&c->used_s, ts);
	memcpy(md, e->hop, HOP_LEN);
	ctx_to_md(c, md);
	md->fp_action = FP_NONE; /* a node's message is about the packet, not the flow */
	md->fp_service = 0;
	md->n_unknown = 0;
	return true;
}

enum store_result { STORE_KNOWN, STORE_WRITTEN, STORE_FULL, STORE_CONFLICT };

/* store() past its lookup and the check for md already there (the slow
 * path, out of line): e is k's live entry (not holding md) or NULL. */
static __attribute__((noinline)) enum store_result store_at(struct spx_table *t, struct spx_key k,
							     struct spx_entry *e, const struct sp_meta *md,
							     uint32_t ts, bool endpoint)
{
	if (!e && buried_other(t, k, md, ts))
		return STORE_CONFLICT;
	uint64_t ch = 0;
	uint32_t ctx = intern(t, md, ts, &ch);
	if (ctx == UINT32_MAX)
		return STORE_FULL;
	if (!e)
		e = claim(t, k, ts, endpoint);
	else if ((e->ctx & EF_AMBIGUOUS) || other_owner(t, e, md, ts))
		ctx |= EF_AMBIGUOUS;
	if (!e)
		return STORE_FULL;
	e->ctx = ctx | (endpoint ? EF_ENDPOINT : 0);
	e->ctx_check = (uint16_t)ch;
	memcpy(e->hop, md, HOP_LEN);
	return STORE_WRITTEN;
}

/* Write md under key k (an endpoint key or an exact one); a live key of
 * another owner is marked ambiguous (fail closed: a packet is never handed
 * to the wrong guest or tenant). STORE_KNOWN when the entry already held
 * exactly md (a known flow, refreshed); STORE_FULL when md's context, or
 * an endpoint key, finds no room; STORE_CONFLICT (nothing written) when
 * another owner's state under k was pushed out moments ago. */
static HOT_INLINE enum store_result store(struct spx_table *t, struct spx_key k, const struct sp_meta *md,
					  uint64_t now, bool endpoint)
{
	uint32_t ts = now_s(now);
	struct spx_entry *e = lookup(t, k, ts);
	if (e && holds(t, e, md, ts))
		return STORE_KNOWN;
	return store_at(t, k, e, md, ts, endpoint);
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

/* p's exact key at node: the one its prefetch computed, if any. */
static struct spx_key exact_key(uint16_t node, enum svc_mode mode, const struct pkt *p)
{
	if (p->sp_hash)
		return (struct spx_key){p->sp_hash, p->sp_place};
	return key_at(flow_tuple_hash(&p->key), node, key_ctx(mode, &p->md));
}

/* Record p's metadata before it goes to the node: DROP_NONE, or why p
 * cannot go (no room for its context; its key held by another owner
 * moments ago). */
static enum drop_reason record(struct spx_table *t, uint16_t node, enum svc_mode mode, const struct pkt *p,
			       uint64_t now)
{
	switch (store(t, exact_key(node, mode, p), &p->md, now, false)) {
	case STORE_KNOWN:
		return DROP_NONE; /* known flow: the lookup refreshed it */
	case STORE_FULL:
		return DROP_SN_STATE_FULL;
	case STORE_CONFLICT:
		return DROP_SN_KEY_CONFLICT;
	case STORE_WRITTEN:
		break;
	}
	if (mode == SVC_MODE_L2)
		return DROP_NONE; /* a bridge does not rewrite addresses */
	/* the context is in the table now: these find it */
	uint32_t ctx = key_ctx(mode, &p->md);
	store(t, endpoint_key(SPX_SRC_EP, node, ctx, &p->key), &p->md, now, true);
	store(t, endpoint_key(SPX_DST_EP, node, ctx, &p->key), &p->md, now, true);
	return DROP_NONE;
}

/* Find the metadata of a returned packet; learns NAT-rewritten tuples. */
static bool recover(struct spx_table *t, uint16_t node, enum svc_mode mode, const struct pkt *p, uint64_t now,
		    struct sp_meta *md)
{
	uint32_t ts = now_s(now);
	struct spx_key exact = exact_key(node, mode, p);
	struct spx_entry *e = lookup(t, exact, ts);
	if (!e && mode != SVC_MODE_L2) {
		uint32_t ctx = key_ctx(mode, &p->md); /* md as returned: before unpack */
		e = lookup(t, endpoint_key(SPX_SRC_EP, node, ctx, &p->key), ts);
		if (!e)
			e = lookup(t, endpoint_key(SPX_DST_EP, node, ctx, &p->key), ts);
		struct sp_meta m;
		if (e && !(e->ctx & EF_AMBIGUOUS) && unpack(t, e, &m, ts)) {
			store(t, exact, &m, now, false);
			e = lookup(t, exact, ts);
		}
	}
	if (!e || (e->ctx & EF_AMBIGUOUS) || !unpack(t, e, md, ts)) {
		t->misses++;
		return false;
	}
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
	enum svc_mode mode = (enum svc_mode)hc->node_mode[node];
	enum drop_reason r = record(t, node, mode, p, now_ns);
	if (unlikely(r != DROP_NONE)) {
		*why = r;
		return PORT_NONE;
	}
	uint8_t *eth = p->data;
	switch (mode) {
	case SVC_MODE_L2:
		memcpy(eth, p->md.orig_dst.b, 6);
		memcpy(eth + 6, p->md.orig_src.b, 6);
		return hc->node_port[node][p->md.dir == SP_DIR_FORWARD ? 0 : 1];
	case SVC_MODE_L3:
		memcpy(eth, topo->nodes[node].mac.b, 6);
		memcpy(eth + 6, hc->ps->node_spmac[node].b, 6);
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
		eth_build(h, ETH_HLEN, &topo->nodes[node].mac, &hc->ps->node_spmac[node], ETH_P_NSH);
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
		/* p->md receives what the node returned: SPI, SI, chain and
		 * direction (the rest comes from the flow state) */
		*why = nsh_decode_hop(p->data + ETH_HLEN, p->len - ETH_HLEN, topo->md_class, &info, &p->md);
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

/* Fetch the set of a place: its two lines (for writing: a new flow's). */
static inline void prefetch_set(const struct spx_table *t, uint32_t place, bool write)
{
	const struct spx_set *s = &t->sets[set_of(t, place)];
	if (write) {
		__builtin_prefetch(&s->e[0], 1);
		__builtin_prefetch(&s->e[SPX_WAYS / 2], 1);
	} else {
		__builtin_prefetch(&s->e[0]);
		__builtin_prefetch(&s->e[SPX_WAYS / 2]);
	}
}

/* p's exact key at node (a node of this mode), kept in p for the calls
 * that follow. */
static inline struct spx_key keep_key(uint16_t node, enum svc_mode mode, struct pkt *p)
{
	struct spx_key k = key_at(pkt_tuple_hash(p), node, key_ctx(mode, &p->md));
	p->sp_hash = k.h;
	p->sp_place = k.place;
	return k;
}

/* A call on purpose: inlined into the datapath (at either call site) it
 * saved 67 instructions per chain packet and made the 1M-flow chain 10-30%
 * slower in interleaved runs. */
void service_proxy_prefetch(const struct hostcfg *hc, const struct spx_table *t, uint16_t node, struct pkt *p)
{
	prefetch_set(t, keep_key(node, (enum svc_mode)hc->node_mode[node], p).place, false);
}

void service_proxy_prefetch_new(const struct hostcfg *hc, const struct spx_table *t, uint16_t node, struct pkt *p)
{
	enum svc_mode mode = (enum svc_mode)hc->node_mode[node];
	if (!p->sp_hash) /* its set is in cache (see the header): the key alone */
		keep_key(node, mode, p);
	if (mode == SVC_MODE_L2)
		return; /* a bridge does not rewrite addresses: no endpoint keys */
	const struct spx_set *s = &t->sets[set_of(t, p->sp_place)];
	for (int w = 0; w < SPX_WAYS; w++)
		if (s->e[w].khash == p->sp_hash)
			return; /* known: record() only refreshes it */
	if (t->buried_until)
		__builtin_prefetch(tomb_of(t, p->sp_hash));
	uint32_t ctx = key_ctx(mode, &p->md);
	for (enum spx_kind k = SPX_SRC_EP; k <= SPX_DST_EP; k++) {
		struct spx_key ek = endpoint_key(k, node, ctx, &p->key);
		prefetch_set(t, ek.place, true);
		if (t->buried_until)
			__builtin_prefetch(tomb_of(t, ek.h));
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

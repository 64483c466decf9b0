/* conntrack.c - the bounded connection table of SPEC section 6.
 *
 * Owns: all table memory, allocated once in conntrack_create (no
 * allocation per flow), and entry lifetimes (TCP state, idle timeouts).
 * Must not: select paths, look at packets beyond the key and TCP flags, or
 * lock (one table per worker).
 *
 * Layout: `entries` holds capacity struct conn (a cache line each); free
 * entries form a LIFO list threaded through their last_seen_ms field. The
 * packet counts' upper halves are apart (`pkts_hi`, written once per 2^32
 * packets of a direction), out of the line packets touch. The index is a
 * bucketized cuckoo hash: capacity/2 buckets (rounded up) of 8 slots, one
 * 64-byte cache line each (8 x 32-bit signature, 8 x 32-bit reference), so
 * 4 slots per entry for its 2 keys: load <= 50%. A key hashes to two buckets
 * (fast-range of the low and high halves of flow_key_hash); insertion uses
 * a free slot of either, else moves one occupant of the pair to its own
 * alternate bucket (one level of displacement, which at 50% load of 8-way
 * buckets practically never fails; if it does, insert reports full).
 * Memory per entry: sizeof(struct conn) + 32 bytes of index + 8 of counts
 * (conntrack_entry_bytes).
 *
 * Aging: conntrack_expire walks a cursor over `entries`, visiting at most
 * `budget` slots per call, and frees entries idle longer than their
 * state's timeout. */
#include "conntrack.h"

#include "hugemem.h"

#include <stdlib.h>

#define SLOTS 8
#define NS 1000000000ULL
#define MS 1000000ULL

enum {
	TCP_NONE = 0,     /* non-TCP */
	TCP_NEW,          /* created from a non-SYN packet, nothing seen yet */
	TCP_SYN_SENT,
	TCP_SYN_RECV,     /* SYN-ACK seen */
	TCP_ESTABLISHED,
	TCP_FIN_WAIT,     /* FIN seen in one direction */
	TCP_CLOSING,      /* FIN seen both ways */
	TCP_CLOSED,       /* RST */
};

#define CF_USED CONN_F_USED
#define CF_FIN0 0x02
#define CF_FIN1 0x04
#define CF_SELF 0x08  /* forward key == reverse key: one index slot */

struct bucket {
	uint32_t sig[SLOTS];
	uint32_t ref[SLOTS];   /* entry * 2 + dir + 1; 0 = empty */
};

struct conntrack {
	struct conn *entries;
	uint32_t *pkts_hi;     /* [capacity * 2]: entry * 2 + direction */
	struct bucket *buckets;
	uint32_t capacity, n_buckets;
	uint32_t free_head;    /* UINT32_MAX: none */
	uint32_t cursor;
	uint32_t to_est, to_tcp, to_closing, to_udp, to_other; /* ms */
	struct conntrack_stats st;
};

_Static_assert(sizeof(struct bucket) == 64, "bucket is one cache line");

size_t conntrack_entry_bytes(void)
{
	/* capacity/2 buckets per entry = 32 bytes of index */
	return sizeof(struct conn) + sizeof(struct bucket) / 2 + 2 * sizeof(uint32_t);
}

_Static_assert(sizeof(struct conn) == 64, "an entry is one cache line");

struct conntrack *conntrack_create(uint32_t capacity)
{
	if (capacity == 0 || capacity > (1u << 30))
		return NULL;
	struct conntrack *ct = calloc(1, sizeof(*ct));
	if (!ct)
		return NULL;
	ct->capacity = capacity;
	ct->n_buckets = (capacity + 1) / 2;
	if (ct->n_buckets < 2)
		ct->n_buckets = 2;
	/* capacity 1 rounds up to 2 buckets: a few bytes over the budget */
	ct->entries = hugemem_alloc((size_t)capacity * sizeof(struct conn));
	ct->pkts_hi = hugemem_alloc((size_t)capacity * 2 * sizeof(uint32_t));
	ct->buckets = hugemem_alloc((size_t)ct->n_buckets * sizeof(struct bucket));
	if (!ct->entries || !ct->pkts_hi || !ct->buckets) {
		conntrack_destroy(ct);
		return NULL;
	}
	memset(ct->buckets, 0, (size_t)ct->n_buckets * sizeof(struct bucket));
	for (uint32_t i = 0; i < capacity; i++)
		ct->entries[i].last_seen_ms = i + 1 < capacity ? i + 1 : UINT32_MAX;
	ct->free_head = 0;
	conntrack_set_timeouts(ct, 3600 * NS, 120 * NS, 60 * NS, 30 * NS);
	ct->st.capacity = capacity;
	return ct;
}

void conntrack_destroy(struct conntrack *ct)
{
	if (!ct)
		return;
	hugemem_free(ct->entries, (size_t)ct->capacity * sizeof(struct conn));
	hugemem_free(ct->pkts_hi, (size_t)ct->capacity * 2 * sizeof(uint32_t));
	hugemem_free(ct->buckets, (size_t)ct->n_buckets * sizeof(struct bucket));
	free(ct);
}

static uint32_t timeout_ms(uint64_t ns) { return (uint32_t)(MIN(ns, CONNTRACK_TIMEOUT_MAX) / MS); }

/* Milliseconds of a time in ns, modulo 2^32 (wraps every 49 days: idle
 * times are differences, read as signed, and timeouts stay below 2^31 ms). */
static inline uint32_t ms_of(uint64_t now_ns) { return (uint32_t)(now_ns / MS); }

/* How long c has been idle at ms (0 if it was used later: callers' clocks
 * may be a little apart). */
static inline uint32_t idle_ms(const struct conn *c, uint32_t ms)
{
	int32_t d = (int32_t)(ms - c->last_seen_ms);
	return d > 0 ? (uint32_t)d : 0;
}

void conntrack_set_timeouts(struct conntrack *ct, uint64_t tcp_established, uint64_t tcp_other, uint64_t udp,
			    uint64_t other)
{
	if (!ct)
		return;
	ct->to_est = timeout_ms(tcp_established);
	ct->to_tcp = timeout_ms(tcp_other);
	ct->to_udp = timeout_ms(udp);
	ct->to_other = timeout_ms(other);
	/* closing stays at its default, or shorter when tcp_other is */
	ct->to_closing = timeout_ms(MIN(10 * NS, tcp_other));
}

/* ---- index ---- */

static inline uint32_t fastrange(uint32_t x, uint32_t n)
{
	return (uint32_t)(((uint64_t)x * n) >> 32);
}

static inline void key_buckets(const struct conntrack *ct, uint64_t h, uint32_t *b1, uint32_t *b2, uint32_t *sig)
{
	*b1 = fastrange((uint32_t)h, ct->n_buckets);
	uint32_t x = fastrange((uint32_t)(h >> 32), ct->n_buckets);
	if (x == *b1)
		x = x + 1 < ct->n_buckets ? x + 1 : 0;
	*b2 = x;
	*sig = (uint32_t)(h >> 16) ^ (uint32_t)(h >> 48);
}

/* The slots of a bucket in use whose signature is sig, as a bit mask (bit
 * i = slot i): the line compared at once, for searches that mostly miss
 * (an insert makes sure its keys are new). */
#if defined(__SSE2__)
#include <emmintrin.h>
static inline unsigned sig_match(const struct bucket *bk, uint32_t sig)
{
	__m128i want = _mm_set1_epi32((int)sig), zero = _mm_setzero_si128();
	__m128i s0 = _mm_loadu_si128((const __m128i *)bk->sig), s1 = _mm_loadu_si128((const __m128i *)(bk->sig + 4));
	__m128i r0 = _mm_loadu_si128((const __m128i *)bk->ref), r1 = _mm_loadu_si128((const __m128i *)(bk->ref + 4));
	__m128i m0 = _mm_andnot_si128(_mm_cmpeq_epi32(r0, zero), _mm_cmpeq_epi32(s0, want));
	__m128i m1 = _mm_andnot_si128(_mm_cmpeq_epi32(r1, zero), _mm_cmpeq_epi32(s1, want));
	return (unsigned)_mm_movemask_ps(_mm_castsi128_ps(m0)) | (unsigned)_mm_movemask_ps(_mm_castsi128_ps(m1)) << 4;
}
#else
static inline unsigned sig_match(const struct bucket *bk, uint32_t sig)
{
	unsigned m = 0;
	for (int i = 0; i < SLOTS; i++)
		if (bk->sig[i] == sig && bk->ref[i])
			m |= 1u << i;
	return m;
}
#endif

static inline struct conn *ref_conn(struct conntrack *ct, uint32_t ref, int *dir)
{
	*dir = (int)((ref - 1) & 1);
	return &ct->entries[(ref - 1) >> 1];
}

static struct conn *bucket_find(struct conntrack *ct, uint32_t b, uint32_t sig, const struct flow_key *k, int *dir)
{
	const struct bucket *bk = &ct->buckets[b];
	for (unsigned m = sig_match(bk, sig); m; m &= m - 1) {
		int i = __builtin_ctz(m);
		int d;
		struct conn *c = ref_conn(ct, bk->ref[i], &d);
		if (conn_key_eq(c, d, k)) {
			*dir = d;
			return c;
		}
	}
	return NULL;
}

static struct conn *find_hashed(struct conntrack *ct, const struct flow_key *k, uint64_t h, int *dir)
{
	uint32_t b1, b2, sig;
	key_buckets(ct, h, &b1, &b2, &sig);
	struct conn *c = bucket_find(ct, b1, sig, k, dir);
	if (!c)
		c = bucket_find(ct, b2, sig, k, dir);
	return c;
}

static int bucket_free_slot(const struct bucket *bk)
{
	for (int i = 0; i < SLOTS; i++)
		if (bk->ref[i] == 0)
			return i;
	return -1;
}

/* Moves one occupant of bucket b to its alternate bucket; returns the slot
 * freed in b, or -1. */
static int bucket_make_room(struct conntrack *ct, uint32_t b)
{
	struct bucket *bk = &ct->buckets[b];
	for (int i = 0; i < SLOTS; i++) {
		int d;
		struct conn *c = ref_conn(ct, bk->ref[i], &d);
		uint32_t o1, o2, sig;
		key_buckets(ct, d ? flow_key_hash_reverse(&c->key, c->rzone) : flow_key_hash(&c->key), &o1, &o2, &sig);
		uint32_t alt = o1 == b ? o2 : o1;
		int j = bucket_free_slot(&ct->buckets[alt]);
		if (j < 0)
			continue;
		ct->buckets[alt].sig[j] = bk->sig[i];
		ct->buckets[alt].ref[j] = bk->ref[i];
		bk->ref[i] = 0;
		bk->sig[i] = 0;
		return i;
	}
	return -1;
}

static bool index_add(struct conntrack *ct, uint64_t h, uint32_t ref)
{
	uint32_t b1, b2, sig;
	key_buckets(ct, h, &b1, &b2, &sig);
	uint32_t b = b1;
	int s = bucket_free_slot(&ct->buckets[b1]);
	if (s < 0) {
		b = b2;
		s = bucket_free_slot(&ct->buckets[b2]);
	}
	if (s < 0) {
		b = b1;
		s = bucket_make_room(ct, b1);
	}
	if (s < 0) {
		b = b2;
		s = bucket_make_room(ct, b2);
	}
	if (s < 0)
		return false;
	ct->buckets[b].sig[s] = sig;
	ct->buckets[b].ref[s] = ref;
	return true;
}

static void index_del(struct conntrack *ct, uint64_t h, uint32_t ref)
{
	uint32_t b[2], sig;
	key_buckets(ct, h, &b[0], &b[1], &sig);
	for (int x = 0; x < 2; x++) {
		struct bucket *bk = &ct->buckets[b[x]];
		for (int i = 0; i < SLOTS; i++) {
			if (bk->ref[i] == ref) {
				bk->ref[i] = 0;
				bk->sig[i] = 0;
				return;
			}
		}
	}
}

/* ---- public ---- */

struct conn *conntrack_lookup(struct conntrack *ct, const struct flow_key *k, int *dir)
{
	int d = 0;
	ct->st.lookups++;
	struct conn *c = find_hashed(ct, k, flow_key_hash(k), &d);
	if (c)
		ct->st.hits++;
	if (dir)
		*dir = d;
	return c;
}

#define BATCH_CHUNK 64

/* An entry, for writing: its key and what the caller updates. */
static void prefetch_conn(const struct conn *e) { __builtin_prefetch(e, 1, 3); }

/* The first live slot of bucket bk with signature sig, as its ref (0:
 * none). A plain scan: the batch's buckets mostly hold the key, and the
 * SIMD mask of sig_match cost more there. */
static uint32_t bucket_first_ref(const struct bucket *bk, uint32_t sig)
{
	for (int j = 0; j < SLOTS; j++)
		if (bk->sig[j] == sig && bk->ref[j])
			return bk->ref[j];
	return 0;
}

void conntrack_lookup_batch(struct conntrack *ct, const struct flow_key *const *keys, const uint64_t *hashes,
			    uint32_t n, struct conn **out, int *dirs)
{
	uint64_t h[BATCH_CHUNK];
	uint32_t cand[BATCH_CHUNK];
	for (uint32_t base = 0; base < n; base += BATCH_CHUNK) {
		uint32_t m = MIN(n - base, (uint32_t)BATCH_CHUNK);
		/* 1: hash everything, prefetch each key's first bucket (at the
		 * load the table is sized for, nearly every key is there) */
		uint32_t b2s[BATCH_CHUNK], n2 = 0;
		for (uint32_t i = 0; i < m; i++) {
			h[i] = hashes && hashes[base + i] ? hashes[base + i] : flow_key_hash(keys[base + i]);
			uint32_t b1, b2, sig;
			key_buckets(ct, h[i], &b1, &b2, &sig);
			__builtin_prefetch(&ct->buckets[b1], 0, 3);
		}
		/* 2: first signature match per key, prefetch its entry; the keys
		 * not in their first bucket (new flows, mostly) fetch the second */
		for (uint32_t i = 0; i < m; i++) {
			uint32_t b1, b2, sig;
			key_buckets(ct, h[i], &b1, &b2, &sig);
			cand[i] = bucket_first_ref(&ct->buckets[b1], sig);
			if (cand[i])
				prefetch_conn(&ct->entries[(cand[i] - 1) >> 1]);
			else {
				__builtin_prefetch(&ct->buckets[b2], 0, 3);
				b2s[n2++] = i;
			}
		}
		for (uint32_t j = 0; j < n2; j++) {
			uint32_t i = b2s[j], b1, b2, sig;
			key_buckets(ct, h[i], &b1, &b2, &sig);
			cand[i] = bucket_first_ref(&ct->buckets[b2], sig);
			if (cand[i])
				prefetch_conn(&ct->entries[(cand[i] - 1) >> 1]);
		}
		/* 3: verify; a signature collision falls back to the full search */
		for (uint32_t i = 0; i < m; i++) {
			int d = 0;
			struct conn *c = NULL;
			if (cand[i]) {
				c = ref_conn(ct, cand[i], &d);
				if (!conn_key_eq(c, d, keys[base + i]))
					c = find_hashed(ct, keys[base + i], h[i], &d);
			}
			ct->st.lookups++;
			if (c)
				ct->st.hits++;
			else
				d = 0;
			out[base + i] = c;
			if (dirs)
				dirs[base + i] = d;
		}
	}
}

static void free_entry(struct conntrack *ct, struct conn *c)
{
	uint32_t idx = (uint32_t)(c - ct->entries);
	memset(c, 0, sizeof(*c));
	ct->pkts_hi[idx * 2] = ct->pkts_hi[idx * 2 + 1] = 0;
	c->last_seen_ms = ct->free_head;
	ct->free_head = idx;
	ct->st.entries--;
}

void conntrack_prefetch_insert(const struct conntrack *ct, const struct flow_key *k, uint16_t reverse_zone)
{
	uint32_t b1, b2, sig;
	key_buckets(ct, flow_key_hash_reverse(k, reverse_zone), &b1, &b2, &sig);
	__builtin_prefetch(&ct->buckets[b1], 1, 3);
	__builtin_prefetch(&ct->buckets[b2], 1, 3);
	if (ct->free_head != UINT32_MAX)
		prefetch_conn(&ct->entries[ct->free_head]);
}

struct conn *conntrack_insert(struct conntrack *ct, const struct flow_key *k, uint16_t reverse_zone,
			      uint64_t now_ns)
{
	struct flow_key rk;
	flow_key_reverse(k, &rk);
	rk.zone = reverse_zone;
	int d;
	uint64_t hk = flow_key_hash(k), hr = flow_key_hash_reverse(k, reverse_zone);
	struct conn *c = find_hashed(ct, k, hk, &d);
	if (!c)
		c = find_hashed(ct, &rk, hr, &d);
	if (c)
		return c; /* already tracked (e.g. a race between workers' slow paths) */
	if (ct->free_head == UINT32_MAX) {
		ct->st.insert_full++;
		return NULL;
	}
	uint32_t idx = ct->free_head;
	c = &ct->entries[idx];
	uint32_t next = c->last_seen_ms;
	memset(c, 0, sizeof(*c));
	c->key = *k;
	c->rzone = reverse_zone;
	bool self = flow_key_eq(k, &rk);
	if (!index_add(ct, hk, idx * 2 + 1)) {
		c->last_seen_ms = next;
		ct->st.insert_full++;
		return NULL;
	}
	if (!self && !index_add(ct, hr, idx * 2 + 2)) {
		index_del(ct, hk, idx * 2 + 1);
		c->last_seen_ms = next;
		ct->st.insert_full++;
		return NULL;
	}
	ct->free_head = next;
	c->flags = CF_USED | (self ? CF_SELF : 0);
	c->tcp_state = k->proto == 6 ? TCP_NEW : TCP_NONE;
	c->last_seen_ms = ms_of(now_ns);
	c->path = 0xffff;
	c->rule = 0xffff;
	ct->st.inserts++;
	ct->st.entries++;
	return c;
}

static bool conn_valid(const struct conntrack *ct, const struct conn *c)
{
	/* integer compares: c may point anywhere (relational compares of
	 * pointers into different objects are undefined) */
	uintptr_t p = (uintptr_t)c, base = (uintptr_t)ct->entries;
	if (!c || p < base || p - base >= (uintptr_t)ct->capacity * sizeof(*c))
		return false;
	return (p - base) % sizeof(*c) == 0 && (c->flags & CF_USED);
}

/* The upper half of a count whose lower half wrapped. */
static __attribute__((noinline)) void carry(struct conntrack *ct, const struct conn *c, int dir)
{
	ct->pkts_hi[(size_t)(c - ct->entries) * 2 + (unsigned)dir]++;
}

HOT_INLINE void conntrack_update(struct conntrack *ct, struct conn *c, int dir, uint8_t tcp_flags, uint64_t now_ns)
{
	if (!c || !(c->flags & CF_USED)) /* c comes from this table's lookup or insert */
		return;
	dir = dir ? 1 : 0;
	uint32_t ms = ms_of(now_ns);
	if ((int32_t)(ms - c->last_seen_ms) > 0)
		c->last_seen_ms = ms;
	if (__builtin_expect(++c->pkts[dir] == 0, 0))
		carry(ct, c, dir);
	if (c->tcp_state == TCP_NONE)
		return;

	uint8_t f = tcp_flags;
	if (f & TH_RST) {
		c->tcp_state = TCP_CLOSED;
		return;
	}
	if ((f & TH_SYN) && !(f & TH_ACK)) {
		/* a new SYN (also: port reuse after close) */
		if (c->tcp_state == TCP_NEW || c->tcp_state == TCP_CLOSED || c->tcp_state == TCP_CLOSING) {
			c->tcp_state = TCP_SYN_SENT;
			c->flags &= (uint8_t)~(CF_FIN0 | CF_FIN1);
		}
		return;
	}
	if ((f & TH_SYN) && (f & TH_ACK)) {
		if (c->tcp_state == TCP_SYN_SENT || c->tcp_state == TCP_NEW)
			c->tcp_state = TCP_SYN_RECV;
		return;
	}
	if (f & TH_FIN) {
		c->flags |= dir ? CF_FIN1 : CF_FIN0;
		if ((c->flags & (CF_FIN0 | CF_FIN1)) == (CF_FIN0 | CF_FIN1))
			c->tcp_state = TCP_CLOSING;
		else if (c->tcp_state != TCP_CLOSED && c->tcp_state != TCP_CLOSING)
			c->tcp_state = TCP_FIN_WAIT;
		return;
	}
	if (f & TH_ACK) {
		/* handshake completion, or mid-stream pickup of a flow whose
		 * handshake was not seen (restart, table was full) */
		if (c->tcp_state == TCP_SYN_RECV || c->tcp_state == TCP_NEW)
			c->tcp_state = TCP_ESTABLISHED;
	}
}

bool conntrack_expects_synack(const struct conn *c)
{
	return c->tcp_state == TCP_NONE || c->tcp_state == TCP_NEW || c->tcp_state == TCP_SYN_SENT ||
	       c->tcp_state == TCP_SYN_RECV;
}

static uint32_t conn_timeout(const struct conntrack *ct, const struct conn *c)
{
	switch (c->key.proto) {
	case 6:
		switch (c->tcp_state) {
		case TCP_ESTABLISHED:
			return ct->to_est;
		case TCP_CLOSING:
		case TCP_CLOSED:
			return ct->to_closing;
		default:
			return ct->to_tcp;
		}
	case 17:
	case 136:
		return ct->to_udp;
	default:
		return ct->to_other;
	}
}

static void delete_entry(struct conntrack *ct, struct conn *c)
{
	uint32_t idx = (uint32_t)(c - ct->entries);
	index_del(ct, flow_key_hash(&c->key), idx * 2 + 1);
	if (!(c->flags & CF_SELF))
		index_del(ct, flow_key_hash_reverse(&c->key, c->rzone), idx * 2 + 2);
	free_entry(ct, c);
}

void conntrack_delete(struct conntrack *ct, struct conn *c)
{
	if (!ct || !conn_valid(ct, c))
		return;
	delete_entry(ct, c);
	ct->st.deleted++;
}

uint32_t conntrack_expire(struct conntrack *ct, uint64_t now_ns, uint32_t budget)
{
	uint32_t n = 0;
	if (!ct)
		return 0;
	budget = MIN(budget, ct->capacity);
	uint32_t ms = ms_of(now_ns);
	for (uint32_t i = 0; i < budget; i++) {
		struct conn *c = &ct->entries[ct->cursor];
		ct->cursor = ct->cursor + 1 < ct->capacity ? ct->cursor + 1 : 0;
		if (!(c->flags & CF_USED))
			continue;
		if (idle_ms(c, ms) > conn_timeout(ct, c)) {
			delete_entry(ct, c);
			ct->st.expired++;
			n++;
		}
	}
	return n;
}

void conntrack_walk(struct conntrack *ct, bool (*fn)(struct conn *c, void *arg), void *arg)
{
	if (!ct || !fn)
		return;
	for (uint32_t i = 0; i < ct->capacity; i++) {
		struct conn *c = &ct->entries[i];
		if ((c->flags & CF_USED) && !fn(c, arg))
			return;
	}
}

uint64_t conntrack_pkts(const struct conntrack *ct, const struct conn *c, int dir)
{
	dir = dir ? 1 : 0;
	return (uint64_t)ct->pkts_hi[(size_t)(c - ct->entries) * 2 + (unsigned)dir] << 32 | c->pkts[dir];
}

uint64_t conntrack_idle_ns(const struct conn *c, uint64_t now_ns)
{
	return (uint64_t)idle_ms(c, ms_of(now_ns)) * MS;
}

uint32_t conntrack_capacity(const struct conntrack *ct) { return ct ? ct->capacity : 0; }

void conntrack_get_stats(const struct conntrack *ct, struct conntrack_stats *st)
{
	if (!ct || !st)
		return;
	*st = ct->st;
}

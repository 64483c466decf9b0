/* path.c - derivation of the service-plane state of SPEC section 6 from a
 * topology: the paths of every chain (one service node per service), their
 * forward/reverse SPIs, and the spmacs of node proxies and host port proxies.
 *
 * Owns: struct path_set and its private lookup indexes (SPI -> path,
 * spmac -> owner). Everything is a pure function of the topology: the same
 * file gives the same SPIs and spmacs on every host (no time, no addresses,
 * no host identity enters any hash).
 * Must not: know about liveness, selection or packets.
 *
 * Enumeration: per chain, a depth-first search over the services in chain
 * order, visiting each service's nodes sorted by name, so complete paths
 * are produced in lexicographic order of their node-name tuples. The best
 * PATH_MAX_PER_CHAIN paths by (host crossings, names) are kept in a sorted
 * array; a branch is pruned once the array is full and its partial crossing
 * count already reaches the worst kept one (a later path with equal
 * crossings is lexicographically greater, so it could not enter). The DFS
 * is also bounded by PATH_DFS_BUDGET visited tree nodes per chain, so a
 * pathological chain (16 services x many co-located nodes) stays cheap;
 * the result is still deterministic.
 *
 * SPIs: FNV-1a 64 of "chain\0node1\0node2\0..." folded to 23 bits h
 * (never 0); spi_fwd = 2h, spi_rev = 2h + 1. Collisions probe h+1, h+2...
 * in a fixed global order (chains in file order, paths in sorted order).
 *
 * spmacs: 02:d7:xx:xx:xx:xx for node "NAME" (hash of "node:NAME") and
 * 02:d8:xx:xx:xx:xx for host port proxies ("host:NAME"); collisions with
 * each other or with any guest or node MAC of the topology probe the next
 * 32-bit value. Nodes are assigned first (index order), then hosts. */
#include "path.h"

#include "flow.h"

#include <stdlib.h>
#include <string.h>

#define PATH_DFS_BUDGET (1u << 16)
#define SPI_HASH_BITS 23
#define SPI_HASH_MASK ((1u << SPI_HASH_BITS) - 1)

/* Private container: the public path_set followed by the lookup indexes. */
struct spi_ent {
	uint32_t h;      /* 23-bit SPI hash (spi >> 1) */
	uint32_t path;   /* index into paths */
};

struct mac_ent {
	uint64_t mac;    /* 48-bit value */
	uint16_t index;
	bool is_node;
};

struct path_set_priv {
	struct path_set pub;
	struct spi_ent *by_spi;   /* sorted by h */
	struct mac_ent *by_mac;   /* sorted by mac */
	uint32_t n_mac;
};

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define FNV_OFFSET 0xcbf29ce484222325ULL

static size_t name_len(const char *s)
{
	return strnlen(s, TOPO_NAME_MAX);
}

static uint64_t mac_to_u64(const struct mac *m)
{
	uint64_t v = 0;
	for (int i = 0; i < 6; i++)
		v = v << 8 | m->b[i];
	return v;
}

static void u64_to_mac(uint64_t v, struct mac *m)
{
	for (int i = 5; i >= 0; i--) {
		m->b[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* ---- small open-addressing set of 64-bit values (MAC collision check) ---- */

struct u64set {
	uint64_t *v;     /* value + 1, 0 = empty */
	size_t mask;
};

static bool u64set_init(struct u64set *s, size_t n)
{
	size_t cap = 16;
	while (cap < n * 2 + 16)
		cap <<= 1;
	s->v = calloc(cap, sizeof(*s->v));
	s->mask = cap - 1;
	return s->v != NULL;
}

static bool u64set_has(const struct u64set *s, uint64_t x)
{
	for (size_t i = hash_mix64(x) & s->mask;; i = (i + 1) & s->mask) {
		if (s->v[i] == 0)
			return false;
		if (s->v[i] == x + 1)
			return true;
	}
}

static void u64set_add(struct u64set *s, uint64_t x)
{
	for (size_t i = hash_mix64(x) & s->mask;; i = (i + 1) & s->mask) {
		if (s->v[i] == 0) {
			s->v[i] = x + 1;
			return;
		}
		if (s->v[i] == x + 1)
			return;
	}
}

/* ---- enumeration ---- */

struct enum_ctx {
	const struct topology *t;
	const struct topo_chain *ch;
	uint16_t chain;
	uint16_t *sorted_nodes[PATH_MAX_HOPS]; /* per hop: node indexes sorted by name */
	uint16_t cur[PATH_MAX_HOPS];
	struct path best[PATH_MAX_PER_CHAIN];
	uint16_t n_best;
	uint32_t budget;
};

static int path_cmp(const struct topology *t, const struct path *a, const struct path *b)
{
	if (a->host_crossings != b->host_crossings)
		return a->host_crossings < b->host_crossings ? -1 : 1;
	for (uint16_t i = 0; i < a->n_hops && i < b->n_hops; i++) {
		int c = strncmp(t->nodes[a->nodes[i]].name, t->nodes[b->nodes[i]].name, TOPO_NAME_MAX);
		if (c)
			return c;
		/* equal names cannot happen in a validated topology; keep it total */
		if (a->nodes[i] != b->nodes[i])
			return a->nodes[i] < b->nodes[i] ? -1 : 1;
	}
	return 0;
}

static void offer(struct enum_ctx *e, uint16_t crossings)
{
	struct path p;
	memset(&p, 0, sizeof(p));
	p.chain = e->chain;
	p.n_hops = e->ch->n_services;
	memcpy(p.nodes, e->cur, sizeof(uint16_t) * p.n_hops);
	p.host_crossings = crossings;

	uint16_t n = e->n_best;
	if (n == PATH_MAX_PER_CHAIN) {
		if (path_cmp(e->t, &p, &e->best[n - 1]) >= 0)
			return;
		n--; /* drop the worst */
	}
	uint16_t pos = n;
	while (pos > 0 && path_cmp(e->t, &p, &e->best[pos - 1]) < 0) {
		e->best[pos] = e->best[pos - 1];
		pos--;
	}
	e->best[pos] = p;
	e->n_best = n + 1;
}

static void dfs(struct enum_ctx *e, uint16_t hop, uint16_t crossings)
{
	const struct topology *t = e->t;
	const struct topo_service *svc = &t->services[e->ch->services[hop]];
	for (uint16_t j = 0; j < svc->n_nodes; j++) {
		if (e->budget == 0)
			return;
		e->budget--;
		uint16_t node = e->sorted_nodes[hop][j];
		uint16_t c = crossings;
		if (hop > 0 && t->nodes[e->cur[hop - 1]].host != t->nodes[node].host)
			c++;
		if (e->n_best == PATH_MAX_PER_CHAIN && c >= e->best[PATH_MAX_PER_CHAIN - 1].host_crossings)
			continue;
		e->cur[hop] = node;
		if (hop + 1 == e->ch->n_services)
			offer(e, c);
		else
			dfs(e, (uint16_t)(hop + 1), c);
	}
}

/* Sort a small array of node indexes by name (insertion sort: thread-safe,
 * no global state; services have few nodes). */
static void sort_nodes(const struct topology *t, uint16_t *v, uint16_t n)
{
	for (uint16_t i = 1; i < n; i++) {
		uint16_t x = v[i];
		uint16_t j = i;
		while (j > 0) {
			uint16_t y = v[j - 1];
			int c = strncmp(t->nodes[y].name, t->nodes[x].name, TOPO_NAME_MAX);
			if (c < 0 || (c == 0 && y < x))
				break;
			v[j] = y;
			j--;
		}
		v[j] = x;
	}
}

static bool chain_valid(const struct topology *t, const struct topo_chain *ch)
{
	if (ch->n_services == 0 || ch->n_services > PATH_MAX_HOPS || ch->n_services > ARRAY_SIZE(ch->services))
		return false;
	for (uint16_t i = 0; i < ch->n_services; i++) {
		if (ch->services[i] >= t->n_services)
			return false;
		const struct topo_service *s = &t->services[ch->services[i]];
		if (s->n_nodes == 0 || (uint32_t)s->first_node + s->n_nodes > t->n_nodes)
			return false;
	}
	return true;
}

/* ---- SPI and spmac assignment ---- */

static uint32_t spi_hash(const struct topology *t, const struct path *p)
{
	uint64_t h = FNV_OFFSET;
	const char *cn = t->chains[p->chain].name;
	h = fnv1a(h, cn, name_len(cn));
	h = fnv1a(h, "", 1);
	for (uint16_t i = 0; i < p->n_hops; i++) {
		const char *nn = t->nodes[p->nodes[i]].name;
		h = fnv1a(h, nn, name_len(nn));
		h = fnv1a(h, "", 1);
	}
	uint32_t v = (uint32_t)((h ^ (h >> 23) ^ (h >> 46)) & SPI_HASH_MASK);
	return v ? v : 1;
}

static uint64_t spmac_value(const char *prefix, const char *name, uint8_t kind, uint32_t bump)
{
	uint64_t h = FNV_OFFSET;
	h = fnv1a(h, prefix, strlen(prefix));
	h = fnv1a(h, name, name_len(name));
	uint32_t v = (uint32_t)(h ^ (h >> 32)) + bump;
	return (uint64_t)0x02 << 40 | (uint64_t)kind << 32 | v;
}

static int spi_ent_cmp(const void *a, const void *b)
{
	const struct spi_ent *x = a, *y = b;
	return x->h < y->h ? -1 : x->h > y->h;
}

static int mac_ent_cmp(const void *a, const void *b)
{
	const struct mac_ent *x = a, *y = b;
	return x->mac < y->mac ? -1 : x->mac > y->mac;
}

static bool assign_spmacs(struct path_set_priv *pp, const struct topology *t)
{
	struct path_set *ps = &pp->pub;
	struct u64set used;
	if (!u64set_init(&used, (size_t)t->n_guests + 2u * t->n_nodes + t->n_hosts))
		return false;
	for (uint16_t i = 0; i < t->n_guests; i++)
		u64set_add(&used, mac_to_u64(&t->guests[i].mac));
	for (uint16_t i = 0; i < t->n_nodes; i++)
		if (t->nodes[i].has_mac)
			u64set_add(&used, mac_to_u64(&t->nodes[i].mac));

	pp->n_mac = 0;
	for (uint16_t i = 0; i < t->n_nodes; i++) {
		uint64_t m;
		uint32_t bump = 0;
		do
			m = spmac_value("node:", t->nodes[i].name, 0xd7, bump++);
		while (u64set_has(&used, m));
		u64set_add(&used, m);
		u64_to_mac(m, &ps->node_spmac[i]);
		pp->by_mac[pp->n_mac++] = (struct mac_ent){.mac = m, .index = i, .is_node = true};
	}
	for (uint16_t i = 0; i < t->n_hosts; i++) {
		uint64_t m;
		uint32_t bump = 0;
		do
			m = spmac_value("host:", t->hosts[i].name, 0xd8, bump++);
		while (u64set_has(&used, m));
		u64set_add(&used, m);
		u64_to_mac(m, &ps->host_spmac[i]);
		pp->by_mac[pp->n_mac++] = (struct mac_ent){.mac = m, .index = i, .is_node = false};
	}
	free(used.v);
	if (pp->n_mac > 1)
		qsort(pp->by_mac, pp->n_mac, sizeof(*pp->by_mac), mac_ent_cmp);
	return true;
}

static bool assign_spis(struct path_set_priv *pp, const struct topology *t)
{
	struct path_set *ps = &pp->pub;
	uint8_t *used = calloc((SPI_HASH_MASK + 1) / 8, 1);
	if (!used)
		return false;
	used[0] |= 1; /* h = 0 is never used (SPI 0) */
	for (uint32_t i = 0; i < ps->n_paths; i++) {
		struct path *p = &ps->paths[i];
		uint32_t h = spi_hash(t, p);
		while (used[h >> 3] & (1u << (h & 7)))
			h = (h + 1) & SPI_HASH_MASK; /* n_paths << 2^23: terminates */
		used[h >> 3] |= (uint8_t)(1u << (h & 7));
		p->spi_fwd = h << 1;
		p->spi_rev = h << 1 | 1;
		pp->by_spi[i] = (struct spi_ent){.h = h, .path = i};
	}
	free(used);
	if (ps->n_paths > 1)
		qsort(pp->by_spi, ps->n_paths, sizeof(*pp->by_spi), spi_ent_cmp);
	return true;
}

/* ---- public API ---- */

void path_set_free(struct path_set *ps)
{
	if (!ps)
		return;
	struct path_set_priv *pp = (struct path_set_priv *)ps;
	free(ps->paths);
	free(ps->chain_first);
	free(ps->chain_n);
	free(ps->node_spmac);
	free(ps->host_spmac);
	free(pp->by_spi);
	free(pp->by_mac);
	free(pp);
}

struct path_set *path_set_build(const struct topology *t)
{
	if (!t)
		return NULL;
	struct path_set_priv *pp = calloc(1, sizeof(*pp));
	if (!pp)
		return NULL;
	struct path_set *ps = &pp->pub;
	size_t max_paths = (size_t)t->n_chains * PATH_MAX_PER_CHAIN;
	ps->paths = calloc(max_paths ? max_paths : 1, sizeof(*ps->paths));
	ps->chain_first = calloc(t->n_chains ? t->n_chains : 1, sizeof(uint16_t));
	ps->chain_n = calloc(t->n_chains ? t->n_chains : 1, sizeof(uint16_t));
	ps->node_spmac = calloc(t->n_nodes ? t->n_nodes : 1, sizeof(struct mac));
	ps->host_spmac = calloc(t->n_hosts ? t->n_hosts : 1, sizeof(struct mac));
	pp->by_mac = calloc((size_t)t->n_nodes + t->n_hosts + 1, sizeof(*pp->by_mac));
	uint16_t *scratch = calloc((size_t)t->n_nodes + 1, sizeof(uint16_t) * PATH_MAX_HOPS);
	struct enum_ctx *e = calloc(1, sizeof(*e));
	if (!ps->paths || !ps->chain_first || !ps->chain_n || !ps->node_spmac || !ps->host_spmac ||
	    !pp->by_mac || !scratch || !e)
		goto fail;

	uint32_t n_paths = 0;
	for (uint16_t c = 0; c < t->n_chains; c++) {
		const struct topo_chain *ch = &t->chains[c];
		ps->chain_first[c] = (uint16_t)MIN(n_paths, 0xffffu);
		ps->chain_n[c] = 0;
		if (!chain_valid(t, ch))
			continue;
		memset(e, 0, sizeof(*e));
		e->t = t;
		e->ch = ch;
		e->chain = c;
		e->budget = PATH_DFS_BUDGET;
		for (uint16_t h = 0; h < ch->n_services; h++) {
			const struct topo_service *s = &t->services[ch->services[h]];
			uint16_t *v = scratch + (size_t)h * (t->n_nodes + 1);
			for (uint16_t j = 0; j < s->n_nodes; j++)
				v[j] = (uint16_t)(s->first_node + j);
			sort_nodes(t, v, s->n_nodes);
			e->sorted_nodes[h] = v;
		}
		dfs(e, 0, 0);
		if (n_paths + e->n_best > 0xffffu)
			break; /* n_paths is 16-bit in the contract */
		memcpy(&ps->paths[n_paths], e->best, sizeof(struct path) * e->n_best);
		ps->chain_n[c] = e->n_best;
		n_paths += e->n_best;
	}
	ps->n_paths = (uint16_t)n_paths;
	free(scratch);
	scratch = NULL;
	free(e);
	e = NULL;

	pp->by_spi = calloc(n_paths ? n_paths : 1, sizeof(*pp->by_spi));
	if (!pp->by_spi)
		goto fail;
	if (!assign_spis(pp, t) || !assign_spmacs(pp, t))
		goto fail;
	return ps;
fail:
	free(scratch);
	free(e);
	path_set_free(ps);
	return NULL;
}

const struct path *path_by_spi(const struct path_set *ps, uint32_t spi, bool *reverse)
{
	if (!ps || spi == 0 || spi > 0xffffff)
		return NULL;
	const struct path_set_priv *pp = (const struct path_set_priv *)ps;
	uint32_t h = spi >> 1;
	uint32_t lo = 0, hi = ps->n_paths;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (pp->by_spi[mid].h < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= ps->n_paths || pp->by_spi[lo].h != h)
		return NULL;
	if (reverse)
		*reverse = spi & 1;
	return &ps->paths[pp->by_spi[lo].path];
}

uint16_t path_node_at(const struct path *p, bool reverse, uint8_t si)
{
	if (!p)
		return TOPO_NO_INDEX;
	unsigned hop = 255u - si;
	if (hop >= p->n_hops || hop >= PATH_MAX_HOPS)
		return TOPO_NO_INDEX;
	return reverse ? p->nodes[p->n_hops - 1 - hop] : p->nodes[hop];
}

bool path_spmac_lookup(const struct path_set *ps, const struct topology *t, const struct mac *m,
		       struct spmac_owner *out)
{
	(void)t;
	if (!ps || !m)
		return false;
	const struct path_set_priv *pp = (const struct path_set_priv *)ps;
	uint64_t v = mac_to_u64(m);
	uint32_t lo = 0, hi = pp->n_mac;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (pp->by_mac[mid].mac < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= pp->n_mac || pp->by_mac[lo].mac != v)
		return false;
	if (out) {
		out->is_node = pp->by_mac[lo].is_node;
		out->index = pp->by_mac[lo].index;
	}
	return true;
}

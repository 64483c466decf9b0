/* pkt.c - preallocated packet pool: a LIFO stack of free buffers (hot
 * buffers are reused first, which keeps them in cache), plus a lock-free
 * return stack for buffers freed by other workers (many producers, one
 * consumer that takes the whole stack at once, so no ABA problem). */
#include "pkt.h"

#include "hugemem.h"

#include <stdatomic.h>
#include <stdlib.h>

struct pkt_pool {
	struct pkt *mem;
	uint32_t size;
	uint32_t top; /* number of free entries in stack[] */
	struct pkt **stack;
	_Atomic(struct pkt *) returned; /* freed by other workers, linked through ->next_free */
};

/* The return stack links buffers through the first bytes of their (unused
 * while free) frame buffer. */
static struct pkt *next_free(const struct pkt *p)
{
	struct pkt *n;
	memcpy(&n, p->buf, sizeof(n));
	return n;
}

static void set_next_free(struct pkt *p, struct pkt *n)
{
	memcpy(p->buf, &n, sizeof(n));
}

void pkt_reset(struct pkt *p)
{
	p->data = p->buf + PKT_HEADROOM;
	p->len = 0;
	p->in_port = p->out_port = 0xffff;
	p->hash = 0;
	p->sp_hash = 0;
	p->flags = 0;
	p->next = 0;
	p->hops = 0;
	p->md.n_unknown = 0;
}

struct pkt_pool *pkt_pool_create(uint32_t n)
{
	if (n == 0 || n > (1u << 22))
		return NULL;
	struct pkt_pool *pool = calloc(1, sizeof(*pool));
	if (!pool)
		return NULL;
	size_t bytes = (size_t)n * sizeof(struct pkt);
	pool->mem = hugemem_alloc(bytes);
	pool->stack = calloc(n, sizeof(*pool->stack));
	if (!pool->mem || !pool->stack) {
		hugemem_free(pool->mem, bytes);
		free(pool->stack);
		free(pool);
		return NULL;
	}
	pool->size = n;
	atomic_init(&pool->returned, NULL);
	for (uint32_t i = 0; i < n; i++) {
		struct pkt *p = &pool->mem[n - 1 - i];
		p->pool = pool;
		pool->stack[i] = p;
	}
	pool->top = n;
	return pool;
}

void pkt_pool_destroy(struct pkt_pool *pool)
{
	if (!pool)
		return;
	hugemem_free(pool->mem, (size_t)pool->size * sizeof(struct pkt));
	free(pool->stack);
	free(pool);
}

/* Take back what other workers freed. */
static uint32_t take_returned(struct pkt_pool *pool)
{
	if (!atomic_load_explicit(&pool->returned, memory_order_relaxed))
		return 0;
	struct pkt *p = atomic_exchange_explicit(&pool->returned, NULL, memory_order_acquire);
	uint32_t n = 0;
	while (p) {
		struct pkt *next = next_free(p);
		pool->stack[pool->top++] = p;
		p = next;
		n++;
	}
	return n;
}

static void give_back(struct pkt *p)
{
	struct pkt_pool *owner = p->pool;
	struct pkt *head = atomic_load_explicit(&owner->returned, memory_order_relaxed);
	do
		set_next_free(p, head);
	while (!atomic_compare_exchange_weak_explicit(&owner->returned, &head, p, memory_order_release,
						      memory_order_relaxed));
}

struct pkt *pkt_alloc(struct pkt_pool *pool)
{
	if (unlikely(pool->top == 0) && !take_returned(pool))
		return NULL;
	struct pkt *p = pool->stack[--pool->top];
	pkt_reset(p);
	return p;
}

uint32_t pkt_alloc_bulk(struct pkt_pool *pool, struct pkt **out, uint32_t n)
{
	if (n > pool->top)
		take_returned(pool);
	if (n > pool->top)
		n = pool->top;
	for (uint32_t i = 0; i < n; i++) {
		out[i] = pool->stack[--pool->top];
		pkt_reset(out[i]);
	}
	return n;
}

void pkt_free(struct pkt_pool *pool, struct pkt *p)
{
	if (likely(p->pool == pool))
		pool->stack[pool->top++] = p;
	else
		give_back(p);
}

void pkt_free_bulk(struct pkt_pool *pool, struct pkt **p, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		pkt_free(pool, p[i]);
}

uint32_t pkt_pool_avail(const struct pkt_pool *pool) { return pool->top; }
uint32_t pkt_pool_size(const struct pkt_pool *pool) { return pool->size; }

struct pkt *pkt_clone(struct pkt_pool *pool, const struct pkt *p)
{
	struct pkt *c = pkt_alloc(pool);
	if (!c)
		return NULL;
	size_t off = pkt_headroom(p);
	c->data = c->buf + off;
	memcpy(c->data, p->data, p->len);
	c->len = p->len;
	c->in_port = p->in_port;
	c->out_port = p->out_port;
	c->hash = p->hash;
	c->tuple_hash = p->tuple_hash;
	c->flags = p->flags;
	c->lay = p->lay;
	c->key = p->key;
	c->md = p->md;
	return c;
}

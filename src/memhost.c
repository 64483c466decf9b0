/* memhost.c - in-memory host for tests and benchmarks. */
#include "memhost.h"
#include "steer.h"

#include <stdio.h>
#include <stdlib.h>

#include "sn_emul.h"

#define REFLECT_MAX 1024

struct frame {
	uint16_t port;
	uint32_t len;
	struct ipaddr dst; /* outbox: the VTEP */
	uint8_t data[PKT_DATA_ROOM];
};

struct reflected {
	struct pkt *p;  /* owned by the queue until received again */
	uint16_t port;  /* the node port it comes back on */
};

struct kept {
	uint32_t head, n;
	uint32_t len[MEMHOST_KEEP];
	uint8_t data[MEMHOST_KEEP][PKT_DATA_ROOM];
};

struct memhost {
	struct hostcfg *hc;
	struct datapath *dp;
	bool emulate, keep;
	uint64_t *delivered; /* [n_ports] */
	uint64_t *node_seen; /* [n_nodes] */
	struct kept *kept;   /* [n_ports] */
	struct reflected *q; /* reflected frames waiting to be received */
	uint32_t q_head, q_n;
	struct frame *outbox; /* Geneve payloads sent to other hosts */
	uint32_t out_head, out_n;
	uint64_t tunnel_lost;
	struct steer *steer;  /* one of several workers */
	uint16_t worker;
};

/* The emulated NIC's copies (into a buffer, into the underlay's outbox):
 * frames of up to 256 bytes in fixed-size overlapping moves (a
 * variable-length copy compiles to rep movs, whose start costs more than
 * such a frame takes to move). */
static inline void copy_frame(uint8_t *dst, const uint8_t *src, uint32_t len)
{
	if (len >= 32 && len <= 64) {
		memcpy(dst, src, 32);
		memcpy(dst + len - 32, src + len - 32, 32);
	} else if (len > 64 && len <= 128) {
		memcpy(dst, src, 64);
		memcpy(dst + len - 64, src + len - 64, 64);
	} else if (len > 128 && len <= 256) {
		memcpy(dst, src, 128);
		memcpy(dst + len - 128, src + len - 128, 128);
	} else {
		memcpy(dst, src, len);
	}
}

static void tunnel_tx(void *ctx, struct pkt **pkts, const struct ipaddr *dst, uint32_t n)
{
	struct memhost *m = ctx;
	for (uint32_t i = 0; i < n; i++) {
		if (m->out_n == REFLECT_MAX || pkts[i]->len > PKT_DATA_ROOM) {
			m->tunnel_lost++;
			continue;
		}
		struct frame *f = &m->outbox[(m->out_head + m->out_n++) % REFLECT_MAX];
		copy_frame(f->data, pkts[i]->data, pkts[i]->len);
		f->len = pkts[i]->len;
		f->dst = dst[i];
	}
}

static void tx(void *ctx, uint16_t port, struct pkt **pkts, uint32_t n)
{
	struct memhost *m = ctx;
	const struct hc_port *hp = &m->hc->ports[port];
	if (hp->kind != PORT_GUEST)
		m->node_seen[hp->ref] += n;
	for (uint32_t i = 0; i < n; i++) {
		struct pkt *p = pkts[i];
		if (hp->kind != PORT_GUEST && m->emulate) {
			/* the node works on the buffer itself and hands it back */
			if (m->q_n == REFLECT_MAX)
				continue;
			uint16_t back = sn_emul_reflect(m->hc, port, p->data, p->len);
			if (back == PORT_NONE)
				continue;
			struct reflected *r = &m->q[(m->q_head + m->q_n++) % REFLECT_MAX];
			r->p = p;
			r->port = back;
			pkts[i] = NULL;
			continue;
		}
		m->delivered[port]++;
		if (!m->keep)
			continue;
		struct kept *k = &m->kept[port];
		uint32_t slot = (k->head + k->n) % MEMHOST_KEEP;
		if (k->n == MEMHOST_KEEP)
			k->head = (k->head + 1) % MEMHOST_KEEP;
		else
			k->n++;
		k->len[slot] = MIN(p->len, (uint32_t)PKT_DATA_ROOM);
		memcpy(k->data[slot], p->data, k->len[slot]);
	}
}

struct memhost *memhost_create(const char *yaml, const char *host, uint32_t ct_capacity)
{
	struct topo_errors errs;
	memset(&errs, 0, sizeof(errs));
	struct topology *t = topology_load_buffer(yaml, strlen(yaml), &errs);
	if (!t) {
		for (unsigned i = 0; i < errs.n && i < ARRAY_SIZE(errs.e); i++)
			fprintf(stderr, "memhost: line %d: %s\n", errs.e[i].line, errs.e[i].msg);
		return NULL;
	}
	char err[200];
	struct memhost *m = calloc(1, sizeof(*m));
	if (!m) {
		topology_free(t);
		return NULL;
	}
	m->hc = hostcfg_build(t, host, err, sizeof(err));
	if (!m->hc) {
		fprintf(stderr, "memhost: %s\n", err);
		free(m);
		return NULL;
	}
	m->emulate = m->keep = true;
	m->delivered = calloc(m->hc->n_ports + 1u, sizeof(*m->delivered));
	m->node_seen = calloc(m->hc->topo->n_nodes + 1u, sizeof(*m->node_seen));
	m->kept = calloc(m->hc->n_ports + 1u, sizeof(*m->kept));
	m->q = calloc(REFLECT_MAX, sizeof(*m->q));
	m->outbox = calloc(REFLECT_MAX, sizeof(*m->outbox));
	m->dp = dp_create(m->hc, 4096, ct_capacity, tx, m);
	if (!m->delivered || !m->node_seen || !m->kept || !m->q || !m->outbox || !m->dp) {
		memhost_destroy(m);
		return NULL;
	}
	dp_set_tunnel(m->dp, tunnel_tx, m);
	return m;
}

void memhost_destroy(struct memhost *m)
{
	if (!m)
		return;
	dp_destroy(m->dp);
	hostcfg_free(m->hc);
	free(m->delivered);
	free(m->node_seen);
	free(m->kept);
	free(m->q);
	free(m->outbox);
	free(m);
}

struct datapath *memhost_dp(struct memhost *m) { return m->dp; }
struct hostcfg *memhost_cfg(struct memhost *m) { return m->hc; }
void memhost_emulate_nodes(struct memhost *m, bool on) { m->emulate = on; }
void memhost_keep_frames(struct memhost *m, bool on) { m->keep = on; }
uint64_t memhost_delivered(const struct memhost *m, uint16_t port) { return m->delivered[port]; }
uint64_t memhost_node_seen(const struct memhost *m, uint16_t node) { return m->node_seen[node]; }

size_t memhost_take(struct memhost *m, uint16_t port, uint8_t *buf, size_t room)
{
	struct kept *k = &m->kept[port];
	if (!k->n)
		return 0;
	uint32_t len = k->len[k->head];
	memcpy(buf, k->data[k->head], MIN((size_t)len, room));
	k->head = (k->head + 1) % MEMHOST_KEEP;
	k->n--;
	return len;
}

/* Frames of flows other workers own go to them; returns how many of b
 * (compacted to the front) stay. */
static uint32_t hand_over(struct memhost *m, uint16_t port, struct pkt **b, uint32_t n)
{
	uint16_t nw = steer_workers(m->steer);
	struct pkt *out[STEER_MAX_WORKERS][BATCH_MAX];
	uint32_t n_out[STEER_MAX_WORKERS], mine = 0;
	for (uint16_t o = 0; o < nw; o++) /* not all 64: a rep stos per batch */
		n_out[o] = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint16_t o = steer_owner(m->steer, steer_hash(b[i]->data, b[i]->len, port == PORT_TUNNEL));
		if (o == STEER_ANY || o == m->worker) {
			b[mine++] = b[i];
		} else {
			b[i]->in_port = port;
			out[o][n_out[o]++] = b[i];
		}
	}
	for (uint16_t o = 0; o < nw; o++) {
		/* in memory there is no kernel queue to overflow: wait for room,
		 * running what others handed here meanwhile (they may be waiting
		 * for room too); after a while, drop as detourd does */
		uint32_t took = 0;
		for (int tries = 0; took < n_out[o] && tries < 50000000; tries++) {
			took += steer_push(m->steer, m->worker, o, out[o] + took, n_out[o] - took);
			if (took < n_out[o])
				memhost_poll(m);
		}
		m->dp->drops[DROP_STEER_FULL] += n_out[o] - took;
		pkt_free_bulk(m->dp->pool, out[o] + took, n_out[o] - took);
	}
	return mine;
}

/* Receive frames of one port (PORT_TUNNEL: Geneve payloads) as batches. */
static bool rx_batch(struct memhost *m, uint16_t port, const uint8_t *const *frames, const uint32_t *lens, uint32_t n)
{
	struct pkt *b[BATCH_MAX];
	while (n) {
		uint32_t k = pkt_alloc_bulk(m->dp->pool, b, MIN(n, (uint32_t)BATCH_MAX));
		if (!k)
			return false;
		/* a NIC's DMA leaves received frames in the cache; a benchmark's
		 * million frames are not: fetch the burst's frames together */
		for (uint32_t i = 0; i < k; i++)
			__builtin_prefetch(frames[i]);
		for (uint32_t i = 0; i < k; i++) {
			uint32_t len = MIN(lens[i], (uint32_t)PKT_DATA_ROOM);
			copy_frame(b[i]->data, frames[i], len);
			b[i]->len = len;
		}
		uint32_t mine = m->steer ? hand_over(m, port, b, k) : k;
		dp_input(m->dp, port, b, mine);
		frames += k;
		lens += k;
		n -= k;
	}
	return true;
}

/* Node reflections, run to completion, batched by port. */
static bool drain_reflections(struct memhost *m);

bool memhost_rx(struct memhost *m, uint16_t port, const uint8_t *const *frames, const uint32_t *lens, uint32_t n)
{
	bool ok = rx_batch(m, port, frames, lens, n);
	dp_flush(m->dp);
	return drain_reflections(m) && ok;
}

void memhost_set_worker(struct memhost *m, struct steer *s, uint16_t id)
{
	m->steer = s;
	m->worker = id;
	dp_set_worker(m->dp, s, id, NULL, NULL);
}

uint32_t memhost_poll(struct memhost *m)
{
	struct pkt *b[BATCH_MAX];
	uint32_t n = m->steer ? steer_pop(m->steer, m->worker, b, BATCH_MAX) : 0;
	if (n) {
		dp_input_handed(m->dp, b, n);
		dp_flush(m->dp);
		drain_reflections(m);
	}
	return n;
}

bool memhost_rx_tunnel(struct memhost *m, const uint8_t *const *payloads, const uint32_t *lens, uint32_t n)
{
	return memhost_rx(m, PORT_TUNNEL, payloads, lens, n);
}

uint32_t memhost_outbox(struct memhost *m, const uint8_t **payloads, uint32_t *lens, struct ipaddr *dst, uint32_t max)
{
	uint32_t n = MIN(m->out_n, max);
	for (uint32_t i = 0; i < n; i++) {
		const struct frame *f = &m->outbox[(m->out_head + i) % REFLECT_MAX];
		payloads[i] = f->data;
		lens[i] = f->len;
		dst[i] = f->dst;
	}
	m->out_head = (m->out_head + n) % REFLECT_MAX;
	m->out_n -= n;
	return n;
}

static bool drain_reflections(struct memhost *m)
{
	/* node reflections, run to completion, batched by port */
	while (m->q_n) {
		struct pkt *b[BATCH_MAX];
		uint32_t k = 0;
		uint16_t qport = m->q[m->q_head].port;
		while (m->q_n && k < BATCH_MAX && m->q[m->q_head].port == qport) {
			struct pkt *p = m->q[m->q_head].p;
			/* as if received: no engine state left on it */
			p->flags = 0;
			p->hash = 0;
			b[k++] = p;
			m->q_head = (m->q_head + 1) % REFLECT_MAX;
			m->q_n--;
		}
		dp_input(m->dp, qport, b, k);
		dp_flush(m->dp);
	}
	return true;
}

bool memhost_reload(struct memhost *m, const char *yaml)
{
	struct topo_errors errs;
	memset(&errs, 0, sizeof(errs));
	struct topology *t = topology_load_buffer(yaml, strlen(yaml), &errs);
	if (!t)
		return false;
	char err[200];
	struct hostcfg *hc = hostcfg_build(t, m->hc->topo->hosts[m->hc->self].name, err, sizeof(err));
	if (!hc)
		return false;
	/* the counters are per port and node: keep them only while the sizes hold */
	if (hc->n_ports != m->hc->n_ports || hc->topo->n_nodes != m->hc->topo->n_nodes) {
		uint64_t *d = calloc(hc->n_ports + 1u, sizeof(*d));
		uint64_t *s = calloc(hc->topo->n_nodes + 1u, sizeof(*s));
		struct kept *k = calloc(hc->n_ports + 1u, sizeof(*k));
		if (!d || !s || !k) {
			free(d), free(s), free(k);
			hostcfg_free(hc);
			return false;
		}
		free(m->delivered), free(m->node_seen), free(m->kept);
		m->delivered = d, m->node_seen = s, m->kept = k;
	}
	hostcfg_inherit_liveness(hc, m->hc);
	if (!dp_set_config(m->dp, hc)) {
		hostcfg_free(hc);
		return false;
	}
	hostcfg_free(m->hc);
	m->hc = hc;
	return true;
}

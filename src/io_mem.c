/* io_mem.c - in-memory port backend for tests and benchmarks: an inject
 * ring feeding io_rx_burst (with the same offload repair as a real port),
 * a collect ring filled by io_tx_burst, and a replay mode that serves a
 * preloaded frame set forever with no syscall.
 *
 * Owns: its rings and an eventfd that is readable while RX work is queued.
 * Must not: be used from two threads at once (single-threaded, like every
 * port). */
#include "io_int.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MEM_FRAME_MAX (256u * 1024u)
#define MEM_RING_MAX (1u << 20)

struct mem_slot {
	uint8_t *buf;
	uint32_t cap, len;
	uint32_t flags;
	uint16_t vlan_tci;
};

struct mem_ring {
	struct mem_slot *s;
	uint32_t mask;
	uint32_t head, tail; /* free-running; head - tail = used */
};

struct mem_port {
	struct io_port port;
	struct mem_ring rx, tx;
	bool tx_discard;
	bool fd_armed; /* eventfd counter is non-zero */
	const uint8_t *const *rp_frames;
	const uint32_t *rp_lens;
	uint32_t rp_n, rp_next;
};

static struct mem_port *mem_of(struct io_port *p)
{
	return p && p->kind == IO_KIND_MEM ? (struct mem_port *)p : NULL;
}

static const struct mem_port *mem_of_c(const struct io_port *p)
{
	return p && p->kind == IO_KIND_MEM ? (const struct mem_port *)p : NULL;
}

static bool ring_init(struct mem_ring *r, uint32_t size)
{
	r->s = calloc(size, sizeof(*r->s));
	r->mask = size - 1;
	r->head = r->tail = 0;
	return r->s != NULL;
}

static void ring_free(struct mem_ring *r)
{
	if (!r->s)
		return;
	for (uint32_t i = 0; i <= r->mask; i++)
		free(r->s[i].buf);
	free(r->s);
	r->s = NULL;
}

static uint32_t ring_used(const struct mem_ring *r) { return r->head - r->tail; }

/* Copy a frame into the next free slot; false if full or out of memory. */
static bool ring_put(struct mem_ring *r, const uint8_t *data, uint32_t len, uint32_t flags, uint16_t tci)
{
	if (ring_used(r) > r->mask)
		return false;
	struct mem_slot *s = &r->s[r->head & r->mask];
	if (s->cap < len) {
		uint32_t cap = len < 2048 ? 2048 : len;
		uint8_t *nb = realloc(s->buf, cap);
		if (!nb)
			return false;
		s->buf = nb;
		s->cap = cap;
	}
	if (len)
		memcpy(s->buf, data, len);
	s->len = len;
	s->flags = flags;
	s->vlan_tci = tci;
	r->head++;
	return true;
}

static void fd_arm(struct mem_port *m)
{
	if (m->fd_armed || m->port.fd < 0)
		return;
	uint64_t one = 1;
	if (write(m->port.fd, &one, sizeof(one)) == (ssize_t)sizeof(one))
		m->fd_armed = true;
}

static void fd_disarm(struct mem_port *m)
{
	if (!m->fd_armed || m->port.fd < 0)
		return;
	uint64_t v;
	if (read(m->port.fd, &v, sizeof(v)) == (ssize_t)sizeof(v) || errno == EAGAIN)
		m->fd_armed = false;
}

static uint32_t mem_rx_burst(struct io_port *p, struct pkt_pool *pool, struct pkt **out, uint32_t max)
{
	struct mem_port *m = (struct mem_port *)p;
	uint32_t n = 0;
	if (p->pend_n)
		io_pend_drain(p, out, &n, max);
	while (n < max && p->pend_n == 0 && ring_used(&m->rx)) {
		struct mem_slot *s = &m->rx.s[m->rx.tail & m->rx.mask];
		struct io_rxinfo ri = {0};
		if (s->flags & IO_MEM_CSUM_PARTIAL)
			ri.flags |= IO_RX_CSUM_PARTIAL;
		if (s->flags & IO_MEM_VLAN) {
			ri.flags |= IO_RX_VLAN;
			ri.vlan_tci = s->vlan_tci;
			ri.vlan_tpid = 0x8100;
		}
		if (io_rx_frame(p, pool, s->buf, s->len, &ri, out, &n, max) == IO_RX_AGAIN)
			break;
		m->rx.tail++;
	}
	if (m->rp_n) {
		/* Replay: copy frames round-robin, no syscall, no repair step. */
		uint32_t k = pkt_alloc_bulk(pool, out + n, max - n);
		uint64_t bytes = 0;
		for (uint32_t i = 0; i < k; i++) {
			struct pkt *pkt = out[n + i];
			uint32_t len = m->rp_lens[m->rp_next];
			memcpy(pkt->data, m->rp_frames[m->rp_next], len);
			pkt->len = len;
			bytes += len;
			if (++m->rp_next == m->rp_n)
				m->rp_next = 0;
		}
		if (k < max - n)
			IO_STAT_ADD(p, rx_nobuf, 1);
		n += k;
		IO_STAT_ADD(p, rx_pkts, k);
		IO_STAT_ADD(p, rx_bytes, bytes);
	} else if (ring_used(&m->rx) == 0 && p->pend_n == 0) {
		fd_disarm(m);
	}
	return n;
}

static uint32_t mem_tx_burst(struct io_port *p, struct pkt **pkts, uint32_t n)
{
	struct mem_port *m = (struct mem_port *)p;
	uint32_t sent = 0;
	uint64_t bytes = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct pkt *pkt = pkts[i];
		if (pkt->flags & PKT_F_CSUM_PARTIAL)
			io_tx_fix(p, pkt);
		if (pkt->len == 0 || pkt->len > IO_TX_FRAME_MAX)
			continue;
		if (!m->tx_discard && !ring_put(&m->tx, pkt->data, pkt->len, 0, 0))
			continue;
		sent++;
		bytes += pkt->len;
	}
	IO_STAT_ADD(p, tx_pkts, sent);
	IO_STAT_ADD(p, tx_bytes, bytes);
	if (sent < n)
		IO_STAT_ADD(p, tx_errors, n - sent);
	return sent;
}

static void mem_close(struct io_port *p)
{
	struct mem_port *m = (struct mem_port *)p;
	ring_free(&m->rx);
	ring_free(&m->tx);
	if (p->fd >= 0)
		close(p->fd);
	free(m);
}

static const struct io_ops mem_ops = {
	.rx_burst = mem_rx_burst,
	.tx_burst = mem_tx_burst,
	.stats = NULL,
	.close = mem_close,
};

struct io_port *io_open_mem(const char *name, uint32_t ring_size)
{
	if (ring_size == 0 || ring_size > MEM_RING_MAX)
		return NULL;
	uint32_t size = 1;
	while (size < ring_size)
		size <<= 1;
	struct mem_port *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	io_port_init(&m->port, &mem_ops, IO_KIND_MEM, name);
	if (!ring_init(&m->rx, size) || !ring_init(&m->tx, size)) {
		ring_free(&m->rx);
		ring_free(&m->tx);
		free(m);
		return NULL;
	}
	m->port.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (m->port.fd < 0) {
		mem_close(&m->port);
		return NULL;
	}
	uint64_t h = hash_bytes(m->port.name, strlen(m->port.name), 0x10);
	m->port.mac.b[0] = 0x02;
	m->port.mac.b[1] = 0x00;
	for (int i = 0; i < 4; i++)
		m->port.mac.b[2 + i] = (uint8_t)(h >> (8 * i));
	return &m->port;
}

bool io_mem_inject_ex(struct io_port *p, const uint8_t *frame, size_t len, uint32_t flags, uint16_t vlan_tci)
{
	struct mem_port *m = mem_of(p);
	if (!m || len > MEM_FRAME_MAX || (len && !frame))
		return false;
	if (!ring_put(&m->rx, frame, (uint32_t)len, flags, vlan_tci))
		return false;
	fd_arm(m);
	return true;
}

bool io_mem_inject(struct io_port *p, const uint8_t *frame, size_t len)
{
	return io_mem_inject_ex(p, frame, len, 0, 0);
}

uint32_t io_mem_rx_pending(const struct io_port *p)
{
	const struct mem_port *m = mem_of_c(p);
	return m ? ring_used(&m->rx) : 0;
}

uint32_t io_mem_tx_pending(const struct io_port *p)
{
	const struct mem_port *m = mem_of_c(p);
	return m ? ring_used(&m->tx) : 0;
}

size_t io_mem_take(struct io_port *p, uint8_t *buf, size_t room)
{
	struct mem_port *m = mem_of(p);
	if (!m || ring_used(&m->tx) == 0)
		return 0;
	struct mem_slot *s = &m->tx.s[m->tx.tail & m->tx.mask];
	size_t len = s->len;
	if (buf && room)
		memcpy(buf, s->buf, MIN(len, room));
	m->tx.tail++;
	return len;
}

bool io_mem_set_replay(struct io_port *p, const uint8_t *const *frames, const uint32_t *lens, uint32_t n)
{
	struct mem_port *m = mem_of(p);
	if (!m)
		return false;
	if (n == 0) {
		m->rp_n = 0;
		m->rp_frames = NULL;
		m->rp_lens = NULL;
		if (ring_used(&m->rx) == 0)
			fd_disarm(m);
		return true;
	}
	if (!frames || !lens)
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (!frames[i] || lens[i] == 0 || lens[i] > PKT_DATA_ROOM)
			return false;
	m->rp_frames = frames;
	m->rp_lens = lens;
	m->rp_n = n;
	m->rp_next = 0;
	fd_arm(m);
	return true;
}

bool io_mem_set_tx_discard(struct io_port *p, bool discard)
{
	struct mem_port *m = mem_of(p);
	if (!m)
		return false;
	m->tx_discard = discard;
	return true;
}

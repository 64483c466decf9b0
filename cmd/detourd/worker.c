/* worker.c - a detourd worker thread: polls its own sockets (one per port,
 * the kernel spreading frames over workers with PACKET_FANOUT or RX
 * queues), hands frames of flows another worker owns to that worker
 * (steer.h), runs its datapath, and follows the configuration the control
 * thread publishes (daemon.h). Nothing on the per-packet path takes a
 * lock or makes a system call other than the port I/O itself. */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <urcu/urcu-qsbr.h>

#include "daemon.h"
#include "log.h"
#include "worker.h"

static void wake(int efd)
{
	uint64_t one = 1;
	ssize_t r = write(efd, &one, sizeof(one));
	(void)r; /* a full counter still wakes */
}

void worker_wake(struct worker *w)
{
	wake(w->efd);
}

static void tx_cb(void *ctx, uint16_t port, struct pkt **pkts, uint32_t n)
{
	struct worker *w = ctx;
	const struct dconf *c = w->conf;
	struct io_port *io = port < c->n_ports ? c->io[(size_t)w->id * c->n_ports + port] : NULL;
	if (io)
		io_tx_burst(io, pkts, n);
}

static void tunnel_cb(void *ctx, struct pkt **pkts, const struct ipaddr *dst, uint32_t n)
{
	struct worker *w = ctx;
	struct underlay *ul = w->conf->ul[w->id];
	if (ul)
		underlay_tx_burst(ul, pkts, dst, NULL, n, NULL); /* failures counted per peer */
	else
		w->dp->drops[DROP_NO_UNDERLAY] += n;
}

/* Push what this worker collected for the others, waking those asleep. */
static void hand_flush(struct worker *w)
{
	struct daemon *d = w->d;
	for (uint16_t o = 0; o < d->n_workers; o++) {
		uint32_t n = w->n_hand[o];
		if (!n)
			continue;
		w->n_hand[o] = 0;
		uint32_t took = steer_push(d->steer, w->id, o, w->hand[o], n);
		w->handed_out += took;
		if (took < n) {
			w->dp->drops[DROP_STEER_FULL] += n - took;
			pkt_free_bulk(w->dp->pool, w->hand[o] + took, n - took);
		}
		atomic_thread_fence(memory_order_seq_cst);
		if (took && atomic_load_explicit(&d->w[o].sleeping, memory_order_relaxed))
			wake(d->w[o].efd);
	}
}

static void hand(struct worker *w, uint16_t to, struct pkt *p)
{
	p->port_gen = w->conf->port_gen;
	w->hand[to][w->n_hand[to]++] = p;
	if (w->n_hand[to] == BATCH_MAX)
		hand_flush(w);
}

/* A frame a node returned that matches no flow here (NAT): the next worker. */
static bool pass_cb(void *ctx, struct pkt *p)
{
	struct worker *w = ctx;
	uint16_t to = (uint16_t)((w->id + 1u) % w->d->n_workers);
	if (w->n_hand[to] == BATCH_MAX)
		hand_flush(w);
	hand(w, to, p);
	return true;
}

/* Frames received on port (or PORT_TUNNEL): ours go to the datapath, the
 * others to their owners. */
static void deliver(struct worker *w, uint16_t port, struct pkt **b, uint32_t n)
{
	struct daemon *d = w->d;
	if (d->n_workers == 1) {
		dp_input(w->dp, port, b, n);
		return;
	}
	struct pkt *mine[BATCH_MAX];
	uint32_t m = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct pkt *p = b[i];
		uint16_t o = steer_owner(d->steer, steer_hash(p->data, p->len, port == PORT_TUNNEL));
		if (o == STEER_ANY || o == w->id) {
			mine[m++] = p;
		} else {
			p->in_port = port;
			hand(w, o, p);
		}
	}
	if (m)
		dp_input(w->dp, port, mine, m);
}

/* Frames other workers handed over: up to four bursts a round, more than
 * any one port gets, since their producers cannot wait on a full ring (a
 * NAT node sends most of its returns through here). */
static uint32_t take_handed(struct worker *w)
{
	if (!w->d->steer)
		return 0;
	uint32_t total = 0;
	for (int burst = 0; burst < 4; burst++) {
		struct pkt *b[BATCH_MAX];
		uint32_t got = steer_pop(w->d->steer, w->id, b, BATCH_MAX), n = 0;
		/* a port index means what it meant to the worker that handed it over */
		for (uint32_t i = 0; i < got; i++) {
			if (b[i]->in_port != PORT_TUNNEL && b[i]->port_gen != w->conf->port_gen) {
				w->dp->drops[DROP_STEER_STALE]++;
				pkt_free(w->dp->pool, b[i]);
			} else {
				b[n++] = b[i];
			}
		}
		if (n)
			dp_input_handed(w->dp, b, n);
		total += got;
		if (got < BATCH_MAX)
			break;
	}
	return total;
}

/* Pick up a new dconf and a pending call from the control thread. */
static void sync_conf(struct worker *w)
{
	const struct dconf *c = rcu_dereference(w->d->conf);
	if (c != w->conf) {
		const struct dconf *old = w->conf;
		if (c->hc != old->hc && !dp_set_config(w->dp, c->hc)) {
			log_err("worker %u: out of memory applying the new configuration", w->id);
			abort();
		}
		if (c->ul[w->id] && (c->ul[w->id] != old->ul[w->id] || c->hc != old->hc || c->nh != old->nh)) {
			char err[256];
			if (!underlay_set_peers(c->ul[w->id], c->hc->peers, c->hc->n_peers, c->nh, err, sizeof(err)))
				log_err("underlay peers: %s", err);
		}
		uint8_t *m = calloc(c->n_ports + 1u, 1);
		if (m) {
			free(w->muted);
			w->muted = m;
		}
		w->conf = c;
	}
	if (atomic_load_explicit(&w->call_state, memory_order_acquire) == 1) {
		w->call(w, w->call_arg);
		atomic_store_explicit(&w->call_state, 2, memory_order_release);
		wake(w->done_efd);
	}
}

static void drain(struct worker *w)
{
	const struct dconf *c = w->conf;
	struct datapath *dp = w->dp;
	for (int round = 0; round < 64; round++) {
		uint32_t got = take_handed(w);
		for (uint16_t i = 0; i < c->n_ports; i++) {
			struct io_port *io = c->io[(size_t)w->id * c->n_ports + i];
			if (!io || w->muted[i])
				continue;
			struct pkt *b[BATCH_MAX];
			uint32_t k = io_rx_burst(io, dp->pool, b, BATCH_MAX);
			if (k) {
				deliver(w, i, b, k);
				got += k;
			}
		}
		struct underlay *ul = c->ul[w->id];
		if (ul) {
			struct pkt *b[BATCH_MAX];
			struct ipaddr from[BATCH_MAX];
			uint32_t k = underlay_rx_burst(ul, dp->pool, b, from, BATCH_MAX);
			if (k) {
				deliver(w, PORT_TUNNEL, b, k);
				got += k;
			}
		}
		dp_flush(dp);
		if (w->d->steer)
			hand_flush(w);
		if (!got)
			break;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct daemon *d = w->d;
	char name[16];
	snprintf(name, sizeof(name), "detour-w%u", w->id);
	pthread_setname_np(pthread_self(), name);
	if (w->cpu >= 0) {
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(w->cpu, &one);
		if (pthread_setaffinity_np(pthread_self(), sizeof(one), &one) != 0)
			log_warn("worker %u: cannot pin to CPU %d", w->id, w->cpu);
	}
	urcu_qsbr_register_thread();
	struct pollfd *pfd = NULL;
	size_t cap = 0;
	while (!atomic_load(&d->stop)) {
		sync_conf(w);
		const struct dconf *c = w->conf;
		size_t n = c->n_ports + 3u;
		if (n > cap) {
			struct pollfd *np = realloc(pfd, n * sizeof(*pfd));
			if (!np) {
				log_err("worker %u: out of memory", w->id);
				abort();
			}
			pfd = np;
			cap = n;
		}
		pfd[0] = (struct pollfd){.fd = w->efd, .events = POLLIN};
		struct underlay *ul = c->ul[w->id];
		pfd[1] = (struct pollfd){.fd = ul ? underlay_fd(ul) : -1, .events = POLLIN};
		pfd[2] = (struct pollfd){.fd = ul ? underlay_uplink_fd(ul) : -1, .events = POLLIN};
		for (uint16_t i = 0; i < c->n_ports; i++) {
			struct io_port *io = c->io[(size_t)w->id * c->n_ports + i];
			pfd[3 + i] = (struct pollfd){.fd = io && !w->muted[i] ? io_fd(io) : -1, .events = POLLIN};
		}
		/* sleep unless something was handed over meanwhile (producers
		 * look at `sleeping` after they push) */
		atomic_store(&w->sleeping, 1);
		atomic_thread_fence(memory_order_seq_cst);
		int timeout = d->steer && steer_pending(d->steer, w->id) ? 0 : 100;
		int r = poll(pfd, n, timeout);
		atomic_store(&w->sleeping, 0);
		if (r < 0 && errno != EINTR) {
			log_err("worker %u: poll: %s", w->id, strerror(errno));
			break;
		}
		if (pfd[0].revents & POLLIN) {
			uint64_t v;
			ssize_t k = read(w->efd, &v, sizeof(v));
			(void)k;
		}
		dp_tick(w->dp, now_ns());
		drain(w);
		/* a port whose interface went away polls with an error forever:
		 * stop polling it and let the control thread close it */
		for (uint16_t i = 0; i < c->n_ports; i++)
			if (pfd[3 + i].fd >= 0 && (pfd[3 + i].revents & (POLLERR | POLLHUP | POLLNVAL))) {
				w->muted[i] = 1;
				wake(d->main_efd);
			}
		urcu_qsbr_quiescent_state();
	}
	free(pfd);
	urcu_qsbr_unregister_thread();
	return NULL;
}

bool worker_init(struct worker *w, struct daemon *d, uint16_t id, const struct dconf *c, uint32_t pool_size,
		 uint32_t ct_capacity)
{
	memset(w, 0, sizeof(*w));
	w->d = d;
	w->id = id;
	w->cpu = -1;
	w->conf = c;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->done_efd = eventfd(0, EFD_CLOEXEC);
	w->muted = calloc(c->n_ports + 1u, 1);
	w->hand = calloc(d->n_workers, sizeof(*w->hand));
	w->dp = dp_create(c->hc, pool_size, ct_capacity, tx_cb, w);
	if (w->efd < 0 || w->done_efd < 0 || !w->muted || !w->hand || !w->dp)
		return false;
	w->dp->now_ns = now_ns();
	dp_set_tunnel(w->dp, tunnel_cb, w);
	if (d->steer)
		dp_set_worker(w->dp, d->steer, id, pass_cb, w);
	if (c->ul[id]) {
		char err[256];
		if (!underlay_set_peers(c->ul[id], c->hc->peers, c->hc->n_peers, c->nh, err, sizeof(err)))
			log_err("underlay peers: %s", err);
	}
	return true;
}

bool worker_start(struct worker *w)
{
	return pthread_create(&w->thread, NULL, worker_main, w) == 0;
}

void worker_drop_handed(struct worker *w)
{
	if (!w->dp || !w->d->steer)
		return;
	struct pkt *b[BATCH_MAX];
	uint32_t n;
	while ((n = steer_pop(w->d->steer, w->id, b, BATCH_MAX)) > 0)
		pkt_free_bulk(w->dp->pool, b, n);
}

void worker_fini(struct worker *w)
{
	dp_destroy(w->dp);
	if (w->efd >= 0)
		close(w->efd);
	if (w->done_efd >= 0)
		close(w->done_efd);
	free(w->muted);
	free(w->hand);
}

void worker_call(struct worker *w, void (*fn)(struct worker *w, void *arg), void *arg)
{
	w->call = fn;
	w->call_arg = arg;
	atomic_store_explicit(&w->call_state, 1, memory_order_release);
	wake(w->efd);
	uint64_t waited_ms = 0;
	for (;;) {
		struct pollfd p = {.fd = w->done_efd, .events = POLLIN};
		if (poll(&p, 1, 100) > 0 && atomic_load_explicit(&w->call_state, memory_order_acquire) == 2) {
			uint64_t v;
			ssize_t k = read(w->done_efd, &v, sizeof(v));
			(void)k;
			break;
		}
		waited_ms += 100;
		if (waited_ms == 2000)
			log_warn("worker %u has not answered for 2 s", w->id);
	}
	atomic_store_explicit(&w->call_state, 0, memory_order_relaxed);
}

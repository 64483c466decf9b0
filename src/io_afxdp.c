/* io_afxdp.c - AF_XDP port backend for a Linux interface in the current
 * network namespace (copy mode: the only mode veth offers).
 *
 * A port binds a set of RX queues of its interface: every queue (the
 * default), one queue (xdp_one_queue), or, for worker w of N
 * (xdp_workers = N), the queues q with q % N == w. One UMEM per port
 * (xdp_frames x 2048 B, preallocated) is shared by one AF_XDP socket per
 * bound queue: each socket has its own fill and RX rings and owns a fixed
 * share of the frames (a received frame goes back into the fill ring of
 * its queue once copied into a pool buffer). The remaining frames form the
 * TX free list of the port's first socket, the only one with a TX ring;
 * its completion ring returns them. Ports share nothing on the packet
 * path: no lock, no shared ring or counter.
 *
 * The XDP program (bpf/xsk_redirect.c, compiled and embedded at build
 * time; with xdp_geneve, the underlay uplink's variant xsk_geneve, which
 * takes only Geneve to the VTEP) redirects each queue to its socket through
 * an XSKMAP sized to every queue of the interface. A process-wide registry (mutex, taken on
 * open and close only) keeps one loaded program, XSKMAP and BPF link per
 * interface (network namespace + ifindex) with a count of the ports using
 * it: the first port loads and attaches it (native mode, else generic),
 * further worker ports insert their sockets into the same map, a closing
 * port deletes its entries, the last one closes the link (the program is
 * detached; also when the process dies). A port opened without
 * xdp_workers owns its interface alone. It never replaces a program
 * someone else attached. libxdp is used for the socket and ring set-up
 * only: its multi-program dispatcher is not used (it fails on the test
 * machine).
 *
 * RX repair: frames go through io_rx_frame(). AF_XDP carries no offload
 * metadata, so a TCP/UDP frame whose checksum field holds just the
 * pseudo-header sum (what a sender with checksum offload leaves) and
 * does not verify is flagged partial and completed there. A native XDP
 * program on a veth makes the kernel turn GSO off on the peer, so frames
 * arrive at most MTU-sized; larger ones (generic mode) are dropped by the
 * kernel and counted in rx_drops.
 *
 * Owns: the UMEM, the sockets and rings, the registry of BPF objects and
 * links, an AF_PACKET control socket per port that holds promiscuous
 * membership (it dies with the socket). Must not: change interface
 * settings other than IFF_UP and promiscuous membership, or touch XDP
 * programs it did not attach. */
#include "io_int.h"
#include "wire.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/if_xdp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xdp/xsk.h>

#if __has_include("../build/bpf/xsk_redirect.h")
#include "../build/bpf/xsk_redirect.h"
#define HAVE_XSK_PROG 1
#else
#define HAVE_XSK_PROG 0
#endif

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif

/* io_int.h has no kind for this backend yet; nothing dispatches on it. */

#define XFRAME 2048u        /* UMEM chunk; the kernel keeps 256 B of it as headroom on RX */
#define XQ_MAX 64u          /* queues bound at most */
#define XFRAMES_DEF 4096u
#define XRXQ_MIN 32u        /* frames per RX queue at least */
#define XRXQ_MAX 2048u
#define XTX_MAX 4096u

struct xq {
	struct xsk_socket *xsk;
	struct xsk_ring_cons rx;
	struct xsk_ring_prod fill;
	struct xsk_ring_cons comp;
	int fd;
	uint32_t qid;
	bool mapped;             /* in the XSKMAP */
};

/* The XDP program of one interface and the ports of this process on it. */
struct xdp_iface {
	struct xdp_iface *next;  /* registry list */
	uint64_t ns_dev, ns_ino; /* network namespace of the interface */
	int ifindex;
	struct bpf_object *obj;
	int map_fd;              /* XSKMAP "xsks" (owned by obj) */
	int link_fd;
	uint32_t map_size;
	uint32_t refs;           /* ports holding it */
	uint16_t workers;        /* 0: one port owns the interface */
	bool generic;
	bool geneve;             /* xsk_geneve with geneve_to/geneve_port, else xsk_redirect */
	uint16_t geneve_port;
	struct ipaddr geneve_to;
	bool listed;             /* in the registry (false once its interface is gone) */
	uint8_t *taken;          /* [workers]: worker ports open */
};

struct xdp_port {
	struct io_port port;
	uint8_t *area;
	size_t area_len;
	struct xsk_umem *umem;
	struct xsk_ring_prod tx; /* TX ring of q[0] */
	uint32_t nq, rr;
	uint64_t *tx_free;       /* free TX frame addresses (stack) */
	uint32_t tx_free_n, tx_frames, tx_out; /* tx_out: submitted, not completed */
	struct xdp_iface *ifc;   /* held (registry reference) when set */
	uint16_t worker;
	int ctl_fd;              /* AF_PACKET, receives nothing: ioctls and promiscuous membership */
	int ep_fd;
	bool generic;
	struct xq q[XQ_MAX];
};

/* ---- RX ---- */

/* Folded one's complement sum, not complemented. */
static uint16_t fold16(uint32_t s) { return (uint16_t)~csum_fold(s); }

/* Checksum of a TCP/UDP packet left partial by a sender with checksum
 * offload: the field holds the folded pseudo-header sum and the packet
 * does not verify. Only the headers are summed unless the field matches. */
static bool rx_csum_partial(const uint8_t *f, uint32_t len)
{
	uint32_t off = 12;
	uint16_t et = 0;
	for (int i = 0; i < 3; i++) {
		if (off + 2 > len)
			return false;
		et = rd16(f + off);
		if (et != ETH_P_8021Q && et != ETH_P_8021AD)
			break;
		off += 4;
	}
	off += 2;
	uint32_t sum = 0;
	uint32_t l4, l4len;
	uint8_t proto;
	if (et == 0x0800) {
		if (off + 20 > len)
			return false;
		const uint8_t *ip = f + off;
		uint32_t ihl = (uint32_t)(ip[0] & 15) * 4, tot = rd16(ip + 2);
		if ((ip[0] >> 4) != 4 || ihl < 20 || tot < ihl || off + tot > len)
			return false;
		if (rd16(ip + 6) & 0x3fff) /* fragment */
			return false;
		proto = ip[9];
		l4 = off + ihl;
		l4len = tot - ihl;
		sum = csum_partial(ip + 12, 8, 0);
	} else if (et == 0x86dd) {
		if (off + 40 > len)
			return false;
		const uint8_t *ip = f + off;
		uint32_t plen = rd16(ip + 4);
		proto = ip[6];
		l4 = off + 40;
		l4len = plen;
		if (l4 + l4len > len)
			return false;
		sum = csum_partial(ip + 8, 32, 0);
	} else {
		return false;
	}
	uint32_t coff;
	if (proto == IPPROTO_TCP && l4len >= 20)
		coff = 16;
	else if (proto == IPPROTO_UDP && l4len >= 8)
		coff = 6;
	else
		return false;
	sum += proto + (l4len >> 16) + (l4len & 0xffff);
	uint16_t field = rd16(f + l4 + coff);
	if (field != fold16(sum))
		return false;
	/* matches the pseudo-header sum: partial unless it verifies */
	return fold16(csum_partial(f + l4, l4len, sum)) != 0xffff;
}

static inline void fill_put(struct xq *q, const uint64_t *addrs, uint32_t k)
{
	uint32_t idx;
	uint32_t r = xsk_ring_prod__reserve(&q->fill, k, &idx);
	for (uint32_t i = 0; i < r; i++)
		*xsk_ring_prod__fill_addr(&q->fill, idx + i) = addrs[i];
	xsk_ring_prod__submit(&q->fill, r);
}

static uint32_t xq_rx(struct xdp_port *x, struct xq *q, struct pkt_pool *pool, struct pkt **out, uint32_t *n,
		      uint32_t max)
{
	struct io_port *p = &x->port;
	uint32_t idx;
	uint32_t got = xsk_ring_cons__peek(&q->rx, max - *n, &idx);
	if (!got) {
		if (xsk_ring_prod__needs_wakeup(&q->fill))
			(void)recvfrom(q->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
		return 0;
	}
	uint64_t addrs[BATCH_MAX * 4];
	uint32_t done = 0;
	if (got > sizeof(addrs) / sizeof(addrs[0])) {
		xsk_ring_cons__cancel(&q->rx, got - (uint32_t)(sizeof(addrs) / sizeof(addrs[0])));
		got = sizeof(addrs) / sizeof(addrs[0]);
	}
	while (done < got && *n < max && p->pend_n == 0) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&q->rx, idx + done);
		uint64_t a = d->addr;
		uint32_t len = d->len;
		uint64_t base = a & ~(uint64_t)(XFRAME - 1);
		if (a >= x->area_len || (a - base) + len > XFRAME) {
			IO_STAT_ADD(p, rx_too_big, 1);
		} else {
			const uint8_t *f = x->area + a;
			struct io_rxinfo ri = {0};
			if (rx_csum_partial(f, len))
				ri.flags |= IO_RX_CSUM_PARTIAL;
			if (io_rx_frame(p, pool, f, len, &ri, out, n, max) == IO_RX_AGAIN)
				break;
		}
		addrs[done++] = base < x->area_len ? base : 0;
	}
	if (done) {
		fill_put(q, addrs, done);
		xsk_ring_cons__release(&q->rx, done);
	}
	if (done < got)
		xsk_ring_cons__cancel(&q->rx, got - done);
	return done;
}

static uint32_t xdp_rx_burst(struct io_port *p, struct pkt_pool *pool, struct pkt **out, uint32_t max)
{
	struct xdp_port *x = (struct xdp_port *)p;
	uint32_t n = 0;
	if (p->pend_n)
		io_pend_drain(p, out, &n, max);
	if (p->pend_n)
		return n;
	uint32_t start = x->rr;
	for (uint32_t k = 0; k < x->nq && n < max && p->pend_n == 0; k++) {
		uint32_t qi = start + k;
		if (qi >= x->nq)
			qi -= x->nq;
		xq_rx(x, &x->q[qi], pool, out, &n, max);
	}
	x->rr = start + 1 >= x->nq ? 0 : start + 1;
	return n;
}

/* ---- TX ---- */

static void tx_reap(struct xdp_port *x)
{
	struct xsk_ring_cons *c = &x->q[0].comp;
	uint32_t idx;
	uint32_t k = xsk_ring_cons__peek(c, x->tx_frames, &idx);
	for (uint32_t i = 0; i < k; i++) {
		uint64_t a = *xsk_ring_cons__comp_addr(c, idx + i) & ~(uint64_t)(XFRAME - 1);
		if (x->tx_free_n < x->tx_frames && a < x->area_len)
			x->tx_free[x->tx_free_n++] = a;
	}
	if (k) {
		xsk_ring_cons__release(c, k);
		x->tx_out = x->tx_out >= k ? x->tx_out - k : 0;
	}
}

/* Copy mode sends a limited batch (32 frames) per syscall and says EAGAIN
 * while more wait in the ring: kick again, a bounded number of times. */
static void tx_kick(struct xdp_port *x, uint32_t queued)
{
	if (!xsk_ring_prod__needs_wakeup(&x->tx))
		return;
	uint32_t tries = queued / 16 + 2;
	while (tries--) {
		if (sendto(x->q[0].fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0)
			break;
		if (errno != EAGAIN && errno != EINTR)
			break; /* EBUSY, ENOBUFS, ENETDOWN: frames stay queued */
	}
}

static uint32_t xdp_tx_burst(struct io_port *p, struct pkt **pkts, uint32_t n)
{
	struct xdp_port *x = (struct xdp_port *)p;
	tx_reap(x);
	if (x->tx_free_n < n && x->tx_out) {
		tx_kick(x, x->tx_out);
		tx_reap(x);
	}
	uint32_t room = MIN(n, x->tx_free_n), idx = 0;
	if (room)
		room = xsk_ring_prod__reserve(&x->tx, room, &idx);
	uint32_t used = 0;
	uint64_t bytes = 0;
	for (uint32_t i = 0; i < n && used < room; i++) {
		struct pkt *pkt = pkts[i];
		if (unlikely(pkt->len < ETH_HLEN || pkt->len > XFRAME))
			continue;
		if (pkt->flags & PKT_F_CSUM_PARTIAL)
			io_tx_fix(p, pkt);
		uint64_t a = x->tx_free[--x->tx_free_n];
		memcpy(x->area + a, pkt->data, pkt->len);
		struct xdp_desc *d = xsk_ring_prod__tx_desc(&x->tx, idx + used);
		d->addr = a;
		d->len = pkt->len;
		d->options = 0;
		used++;
		bytes += pkt->len;
	}
	if (used < room)
		x->tx.cached_prod -= room - used; /* give back unused slots */
	if (used) {
		xsk_ring_prod__submit(&x->tx, used);
		x->tx_out += used;
	}
	if (x->tx_out)
		tx_kick(x, x->tx_out);
	IO_STAT_ADD(p, tx_pkts, used);
	IO_STAT_ADD(p, tx_bytes, bytes);
	if (used < n)
		IO_STAT_ADD(p, tx_errors, n - used);
	return used;
}

/* ---- stats ---- */

static void xdp_stats(struct io_port *p, struct io_stats *st)
{
	struct xdp_port *x = (struct xdp_port *)p;
	for (uint32_t i = 0; i < x->nq; i++) {
		struct xdp_statistics xs;
		socklen_t l = sizeof(xs);
		memset(&xs, 0, sizeof(xs));
		if (getsockopt(x->q[i].fd, SOL_XDP, XDP_STATISTICS, &xs, &l) == 0) {
			st->rx_drops += xs.rx_dropped + xs.rx_ring_full;
			st->tx_errors += xs.tx_invalid_descs;
		}
	}
}

/* ---- the per-interface registry: program, XSKMAP and link ---- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct xdp_iface *reg_head; /* under reg_lock, like every xdp_iface field */

static int libbpf_quiet(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	(void)lvl;
	(void)fmt;
	(void)ap;
	return 0;
}

/* Identity of the calling thread's network namespace (0/0 if unknown). */
static void netns_id(uint64_t *dev, uint64_t *ino)
{
	struct stat st;
	if (stat("/proc/thread-self/ns/net", &st) == 0 || stat("/proc/self/ns/net", &st) == 0) {
		*dev = (uint64_t)st.st_dev;
		*ino = (uint64_t)st.st_ino;
	} else {
		*dev = *ino = 0;
	}
}

/* Whether f's link is still attached to its interface: the kernel detaches
 * it when the interface goes away (and its index may come back later). */
static bool iface_attached(const struct xdp_iface *f)
{
	struct bpf_link_info li;
	__u32 len = sizeof(li);
	memset(&li, 0, sizeof(li));
	if (bpf_obj_get_info_by_fd(f->link_fd, &li, &len) != 0)
		return true; /* cannot tell */
	return li.type != BPF_LINK_TYPE_XDP || (int)li.xdp.ifindex == f->ifindex;
}

static void iface_free(struct xdp_iface *f)
{
	if (f->link_fd >= 0)
		close(f->link_fd); /* detaches the program */
	if (f->obj)
		bpf_object__close(f->obj);
	free(f->taken);
	free(f);
}

static int prog_load(struct xdp_iface *f, const char *ifname, char *err, size_t errlen)
{
#if HAVE_XSK_PROG
	static bool quiet; /* under reg_lock */
	if (!quiet) {
		quiet = true;
		libbpf_set_print(libbpf_quiet);
	}
	LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "xsk_redirect");
	f->obj = bpf_object__open_mem(xsk_redirect_bpf_o, xsk_redirect_bpf_o_len, &oo);
	if (!f->obj) {
		set_err(err, errlen, "%s: XDP program: %s", ifname, strerror(errno));
		return -1;
	}
	struct bpf_map *m = bpf_object__find_map_by_name(f->obj, "xsks");
	if (!m || bpf_map__set_max_entries(m, f->map_size) != 0) {
		set_err(err, errlen, "%s: XDP program has no XSKMAP", ifname);
		return -1;
	}
	int r = bpf_object__load(f->obj);
	if (r) {
		set_err(err, errlen, "%s: loading the XDP program: %s%s", ifname, strerror(-r),
		       r == -EPERM ? " (needs CAP_BPF/CAP_SYS_ADMIN)" : "");
		return -1;
	}
	f->map_fd = bpf_map__fd(m);
	if (f->map_fd < 0) {
		set_err(err, errlen, "%s: XDP program has no XSKMAP", ifname);
		return -1;
	}
	if (f->geneve) {
		/* struct geneve_to of the program: address, port (network order), v4 */
		uint8_t v[20];
		uint32_t key = 0;
		uint16_t port = htons(f->geneve_port), v4 = ipaddr_is_v4(&f->geneve_to);
		memcpy(v, f->geneve_to.b, 16);
		memcpy(v + 16, &port, 2);
		memcpy(v + 18, &v4, 2);
		struct bpf_map *g = bpf_object__find_map_by_name(f->obj, "geneve_to");
		if (!g || bpf_map__value_size(g) != sizeof(v) ||
		    bpf_map_update_elem(bpf_map__fd(g), &key, v, 0) != 0) {
			set_err(err, errlen, "%s: XDP program: cannot set the Geneve address", ifname);
			return -1;
		}
	}
	return 0;
#else
	(void)f;
	set_err(err, errlen, "%s: built without the XDP program (build/bpf/xsk_redirect.h)", ifname);
	return -1;
#endif
}

static int prog_attach(struct xdp_iface *f, const char *ifname, uint8_t mode, char *err, size_t errlen)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(f->obj, f->geneve ? "xsk_geneve" : "xsk_redirect");
	int pfd = prog ? bpf_program__fd(prog) : -1;
	if (pfd < 0) {
		set_err(err, errlen, "%s: XDP program not found in the object", ifname);
		return -1;
	}
	int e = 0;
	if (mode != IO_XDP_MODE_GENERIC) {
		LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = XDP_FLAGS_DRV_MODE);
		f->link_fd = bpf_link_create(pfd, f->ifindex, BPF_XDP, &lo);
		if (f->link_fd >= 0)
			return 0;
		e = errno;
		if (mode == IO_XDP_MODE_NATIVE || e == EBUSY || e == EEXIST)
			goto fail;
	}
	LIBBPF_OPTS(bpf_link_create_opts, lg, .flags = XDP_FLAGS_SKB_MODE);
	f->link_fd = bpf_link_create(pfd, f->ifindex, BPF_XDP, &lg);
	if (f->link_fd >= 0) {
		f->generic = true;
		return 0;
	}
	e = errno;
fail:
	set_err(err, errlen, "%s: attaching the XDP program: %s%s", ifname, strerror(e),
	       e == EBUSY || e == EEXIST ? " (another XDP program is attached)" : "");
	return -1;
}

/* Take a reference on the program of x's interface for the port of worker
 * o->xdp_worker of o->xdp_workers (0/0: the only port): the one attached by
 * an earlier port of this process (with the same Geneve filter), else a new
 * one (XSKMAP of map_size entries) attached in o->xdp_mode. 0, or -1 with
 * err set. */
static int iface_get(struct xdp_port *x, const struct io_opts *o, uint32_t map_size, char *err, size_t errlen)
{
	uint16_t worker = o->xdp_worker, workers = o->xdp_workers;
	const char *ifname = x->port.name;
	uint64_t nd, ni;
	netns_id(&nd, &ni);
	pthread_mutex_lock(&reg_lock);
	struct xdp_iface *f = NULL;
	for (struct xdp_iface **pp = &reg_head; *pp;) {
		struct xdp_iface *c = *pp;
		if (c->ifindex == x->port.ifindex && c->ns_dev == nd && c->ns_ino == ni) {
			if (iface_attached(c)) {
				f = c;
				break;
			}
			*pp = c->next; /* its interface is gone: its ports close it */
			c->listed = false;
			continue;
		}
		pp = &c->next;
	}
	if (f) {
		if (!f->workers || !workers) {
			set_err(err, errlen, "%s: an AF_XDP port of this process already uses the interface%s", ifname,
			       f->workers ? " (opened per worker)" : "");
			goto fail;
		}
		if (f->workers != workers) {
			set_err(err, errlen, "%s: AF_XDP ports are open for %u workers, not %u", ifname, f->workers,
			       workers);
			goto fail;
		}
		if (f->geneve != o->xdp_geneve || (o->xdp_geneve && (f->geneve_port != o->xdp_geneve_port ||
								       !ipaddr_eq(&f->geneve_to, &o->xdp_geneve_to)))) {
			set_err(err, errlen, "%s: the AF_XDP ports of the workers filter differently", ifname);
			goto fail;
		}
		if (f->taken[worker]) {
			set_err(err, errlen, "%s: the AF_XDP port of worker %u is already open", ifname, worker);
			goto fail;
		}
	} else {
		f = calloc(1, sizeof(*f));
		if (!f || !(f->taken = calloc(workers ? workers : 1, 1))) {
			free(f);
			set_err(err, errlen, "out of memory");
			goto fail;
		}
		f->ns_dev = nd;
		f->ns_ino = ni;
		f->ifindex = x->port.ifindex;
		f->map_size = map_size;
		f->workers = workers;
		f->map_fd = f->link_fd = -1;
		f->geneve = o->xdp_geneve;
		f->geneve_port = o->xdp_geneve_port;
		f->geneve_to = o->xdp_geneve_to;
		if (prog_load(f, ifname, err, errlen) < 0 || prog_attach(f, ifname, o->xdp_mode, err, errlen) < 0) {
			iface_free(f);
			goto fail;
		}
		f->listed = true;
		f->next = reg_head;
		reg_head = f;
	}
	f->refs++;
	if (workers)
		f->taken[worker] = 1;
	x->ifc = f;
	x->worker = worker;
	x->generic = f->generic;
	pthread_mutex_unlock(&reg_lock);
	return 0;
fail:
	pthread_mutex_unlock(&reg_lock);
	return -1;
}

/* Put x's sockets into the XSKMAP of its interface. */
static int iface_map(struct xdp_port *x, char *err, size_t errlen)
{
	pthread_mutex_lock(&reg_lock);
	int rc = 0;
	for (uint32_t i = 0; i < x->nq; i++) {
		uint32_t key = x->q[i].qid;
		int v = x->q[i].fd;
		if (bpf_map_update_elem(x->ifc->map_fd, &key, &v, 0) != 0) {
			set_err(err, errlen, "%s: XSKMAP update for queue %u: %s%s", x->port.name, key, strerror(errno),
			       key >= x->ifc->map_size ? " (the map was sized for fewer queues)" : "");
			rc = -1;
			break;
		}
		x->q[i].mapped = true;
	}
	pthread_mutex_unlock(&reg_lock);
	return rc;
}

/* Take x's sockets out of the map (before they close). */
static void iface_unmap(struct xdp_port *x)
{
	pthread_mutex_lock(&reg_lock);
	for (uint32_t i = 0; i < XQ_MAX; i++) {
		if (!x->q[i].mapped)
			continue;
		uint32_t key = x->q[i].qid;
		(void)bpf_map_delete_elem(x->ifc->map_fd, &key);
		x->q[i].mapped = false;
	}
	pthread_mutex_unlock(&reg_lock);
}

/* Drop x's reference; the last one detaches the program. */
static void iface_put(struct xdp_port *x)
{
	struct xdp_iface *f = x->ifc;
	pthread_mutex_lock(&reg_lock);
	if (f->workers)
		f->taken[x->worker] = 0;
	if (--f->refs == 0) {
		if (f->listed) {
			struct xdp_iface **pp = &reg_head;
			while (*pp != f)
				pp = &(*pp)->next;
			*pp = f->next;
		}
		iface_free(f);
	}
	pthread_mutex_unlock(&reg_lock);
	x->ifc = NULL;
}

/* ---- close ---- */

static void xdp_close(struct io_port *p)
{
	struct xdp_port *x = (struct xdp_port *)p;
	if (x->ifc)
		iface_unmap(x);
	for (uint32_t i = XQ_MAX; i-- > 0;) {
		if (x->q[i].xsk)
			xsk_socket__delete(x->q[i].xsk);
	}
	if (x->umem)
		xsk_umem__delete(x->umem);
	if (x->area)
		munmap(x->area, x->area_len);
	if (x->ifc)
		iface_put(x);
	if (x->ctl_fd >= 0)
		close(x->ctl_fd);
	if (x->ep_fd >= 0)
		close(x->ep_fd);
	free(x->tx_free);
	free(x);
}

static const struct io_ops xdp_ops = {
	.rx_burst = xdp_rx_burst,
	.tx_burst = xdp_tx_burst,
	.stats = xdp_stats,
	.close = xdp_close,
};

/* ---- open ---- */

static uint32_t pow2_floor(uint32_t v)
{
	uint32_t r = 1;
	while (r <= v / 2)
		r <<= 1;
	return r;
}

/* RX queues of the interface (ETHTOOL_GCHANNELS); 1 if unknown. */
static uint32_t if_queues(struct xdp_port *x, const char *ifname)
{
	struct ethtool_channels ch;
	struct ifreq ifr;
	memset(&ch, 0, sizeof(ch));
	memset(&ifr, 0, sizeof(ifr));
	ch.cmd = ETHTOOL_GCHANNELS;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (char *)&ch;
	if (ioctl(x->ctl_fd, SIOCETHTOOL, &ifr) < 0)
		return 1;
	uint32_t n = ch.rx_count + ch.combined_count;
	return n ? n : 1;
}

/* UMEM and one socket per queue qids[0..nq). */
static int xsk_setup(struct xdp_port *x, const char *ifname, uint32_t frames, const uint32_t *qids, uint32_t nq,
		     char *err, size_t errlen)
{
	uint32_t rxq = pow2_floor(frames / 2 / nq);
	if (rxq > XRXQ_MAX)
		rxq = XRXQ_MAX;
	if (frames / 2 / nq < XRXQ_MIN) {
		set_err(err, errlen, "%s: %u UMEM frames are too few for %u queues", ifname, frames, nq);
		return -1;
	}
	uint32_t txf = pow2_floor(MIN(frames - nq * rxq, XTX_MAX));
	x->area_len = (size_t)frames * XFRAME;
	void *a = mmap(NULL, x->area_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		       -1, 0);
	if (a == MAP_FAILED) {
		set_err(err, errlen, "%s: UMEM of %zu bytes: %s", ifname, x->area_len, strerror(errno));
		return -1;
	}
	x->area = a;
	x->tx_free = calloc(txf, sizeof(*x->tx_free));
	if (!x->tx_free) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	struct xsk_umem_config uc = {
		.fill_size = rxq,
		.comp_size = txf,
		.frame_size = XFRAME,
		.frame_headroom = 0,
		.flags = 0,
	};
	int r = xsk_umem__create(&x->umem, x->area, x->area_len, &x->q[0].fill, &x->q[0].comp, &uc);
	if (r) {
		x->umem = NULL;
		set_err(err, errlen, "%s: AF_XDP UMEM: %s%s", ifname, strerror(-r),
		       r == -ENOMEM || r == -EPERM ? " (locked memory limit: needs CAP_IPC_LOCK)"
		       : r == -EAFNOSUPPORT ? " (no AF_XDP in this kernel)" : "");
		return -1;
	}
	struct xsk_socket_config sc = {
		.rx_size = rxq,
		.tx_size = txf,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.xdp_flags = 0,
		.bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP,
	};
	for (uint32_t i = 0; i < nq; i++) {
		struct xq *q = &x->q[i];
		q->qid = qids[i];
		/* a socket closed just before on this queue is released by the
		 * kernel asynchronously: EBUSY for a short while */
		for (int tries = 0;; tries++) {
			r = xsk_socket__create_shared(&q->xsk, ifname, q->qid, x->umem, &q->rx,
						      i == 0 ? &x->tx : NULL, &q->fill, &q->comp, &sc);
			if (r != -EBUSY || tries == 100)
				break;
			usleep(10000);
		}
		if (r) {
			q->xsk = NULL;
			if (i > 0 && r == -EINVAL)
				break; /* the interface has fewer queues than it said */
			set_err(err, errlen, "%s: AF_XDP socket on queue %u: %s%s", ifname, q->qid, strerror(-r),
			       r == -EBUSY ? " (another AF_XDP socket uses the queue)" : "");
			return -1;
		}
		q->fd = xsk_socket__fd(q->xsk);
		x->nq = i + 1;
	}
	/* every queue's share of frames into its fill ring */
	uint64_t next = 0;
	for (uint32_t i = 0; i < x->nq; i++) {
		uint32_t idx;
		if (xsk_ring_prod__reserve(&x->q[i].fill, rxq, &idx) != rxq) {
			set_err(err, errlen, "%s: fill ring too small", ifname);
			return -1;
		}
		for (uint32_t k = 0; k < rxq; k++, next += XFRAME)
			*xsk_ring_prod__fill_addr(&x->q[i].fill, idx + k) = next;
		xsk_ring_prod__submit(&x->q[i].fill, rxq);
	}
	x->tx_frames = txf;
	for (uint32_t k = 0; k < txf; k++, next += XFRAME)
		x->tx_free[x->tx_free_n++] = next;
	return 0;
}

struct io_port *io_open_afxdp(const char *ifname, const struct io_opts *o, char *err, size_t errlen)
{
	struct io_opts def;
	if (!(o = io_open_check(ifname, o, &def, err, errlen)))
		return NULL;
	uint32_t frames = o->xdp_frames ? o->xdp_frames : XFRAMES_DEF;
	if (frames < 2 * XRXQ_MIN || frames > (1u << 20) || o->xdp_mode > IO_XDP_MODE_GENERIC) {
		set_err(err, errlen, "%s: bad AF_XDP options (frames %u, mode %u)", ifname, frames, o->xdp_mode);
		return NULL;
	}
	uint16_t workers = o->xdp_workers;
	if ((workers && o->xdp_worker >= workers) || (!workers && o->xdp_worker) ||
	    (workers && o->xdp_one_queue)) {
		set_err(err, errlen, "%s: bad AF_XDP options (worker %u of %u%s)", ifname, o->xdp_worker, workers,
		       o->xdp_one_queue ? ", one queue" : "");
		return NULL;
	}
	struct xdp_port *x = calloc(1, sizeof(*x));
	if (!x) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	io_port_init(&x->port, &xdp_ops, IO_KIND_AFXDP, ifname);
	x->port.mtu = o->mtu;
	x->ctl_fd = x->ep_fd = -1;
	for (uint32_t i = 0; i < XQ_MAX; i++)
		x->q[i].fd = -1;
	x->ctl_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (x->ctl_fd < 0) {
		set_err(err, errlen, "%s: AF_PACKET control socket: %s", ifname, strerror(errno));
		goto fail;
	}
	if (io_if_setup(&x->port, x->ctl_fd, ifname, !o->no_ifup, err, errlen) < 0)
		goto fail;
	/* the queues to bind (at most XQ_MAX: frames on further queues go to
	 * the kernel stack); the XSKMAP covers every queue */
	uint32_t ifq = if_queues(x, ifname);
	uint32_t qids[XQ_MAX], nq = 0;
	if (o->xdp_one_queue) {
		qids[nq++] = o->xdp_queue;
	} else if (workers) {
		if (ifq < workers) {
			set_err(err, errlen, "%s: %u RX queue%s for %u workers", ifname, ifq, ifq == 1 ? "" : "s",
			       workers);
			goto fail;
		}
		for (uint32_t q = o->xdp_worker; q < ifq && nq < XQ_MAX; q += workers)
			qids[nq++] = q;
	} else {
		for (uint32_t q = 0; q < ifq && nq < XQ_MAX; q++)
			qids[nq++] = q;
	}
	uint32_t map_size = MAX(ifq, qids[nq - 1] + 1);
	if (iface_get(x, o, map_size, err, errlen) < 0 ||
	    xsk_setup(x, ifname, frames, qids, nq, err, errlen) < 0 || iface_map(x, err, errlen) < 0)
		goto fail;
	if (!o->no_promisc) {
		struct packet_mreq mr;
		memset(&mr, 0, sizeof(mr));
		mr.mr_ifindex = x->port.ifindex;
		mr.mr_type = PACKET_MR_PROMISC;
		if (setsockopt(x->ctl_fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
			set_err(err, errlen, "%s: promiscuous mode: %s", ifname, strerror(errno));
			goto fail;
		}
	}
	if (x->nq == 1) {
		x->port.fd = x->q[0].fd;
	} else {
		x->ep_fd = epoll_create1(EPOLL_CLOEXEC);
		if (x->ep_fd < 0) {
			set_err(err, errlen, "%s: epoll: %s", ifname, strerror(errno));
			goto fail;
		}
		for (uint32_t i = 0; i < x->nq; i++) {
			struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
			if (epoll_ctl(x->ep_fd, EPOLL_CTL_ADD, x->q[i].fd, &ev) < 0) {
				set_err(err, errlen, "%s: epoll: %s", ifname, strerror(errno));
				goto fail;
			}
		}
		x->port.fd = x->ep_fd;
	}
	return &x->port;
fail:
	xdp_close(&x->port);
	return NULL;
}

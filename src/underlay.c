/* underlay.c - UDP sockets of a host's VTEP, and optionally an AF_XDP
 * uplink: batched receive into pool buffers, batched send (spread over
 * source ports by flow hash), the VTEP allow-list and per-VTEP counters.
 *
 * Owns: its sockets, uplink port, peer table and counters.
 * Must not: parse the Geneve payload (tunnel.h does, and the outer headers
 * on the uplink), resolve next hops (the caller publishes them), or
 * allocate on the packet path (the peer table is allocated by
 * underlay_set_peers only). */
#include "underlay.h"
#include "steer_bpf.h"

#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "flow.h"
#include "io.h"
#include "tunnel.h"

struct peer_slot {
	uint32_t idx; /* index into peers + 1; 0 = empty */
};

struct underlay {
	int rx_fd;
	int tx_fd[UNDERLAY_TX_SOCKS];
	uint16_t tx_port[UNDERLAY_TX_SOCKS];
	bool v6;
	bool steered;       /* SO_REUSEPORT group with the steering program */
	uint16_t port;
	struct ipaddr vtep;
	struct underlay_stats st;
	uint32_t n_peers;
	struct underlay_peer_stats *peers;
	uint32_t slot_mask; /* table size - 1; table NULL when no peers */
	struct peer_slot *slots;
	const _Atomic uint64_t *nh; /* next-hop words (underlay_set_peers), or NULL */
	uint32_t *nh_idx;   /* [n_peers]: index into nh of peers[i] */
	struct io_port *up; /* the AF_XDP uplink, or NULL */
	uint8_t up_mac[6];
	uint16_t up_mtu;    /* largest IP packet the uplink carries */
};

static socklen_t to_sockaddr(const struct ipaddr *a, uint16_t port, bool v6, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (!v6) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, a->b + 12, 4);
		return sizeof(*s4);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	memcpy(&s6->sin6_addr, a->b, 16);
	return sizeof(*s6);
}

static bool from_sockaddr(const struct sockaddr_storage *ss, socklen_t len, struct ipaddr *a)
{
	if (ss->ss_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		uint8_t b[4];
		memcpy(b, &s4->sin_addr, 4);
		ipaddr_from_v4(a, b);
		return true;
	}
	if (ss->ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		memcpy(a->b, &s6->sin6_addr, 16);
		return true;
	}
	return false;
}

/* A socket bound to (vtep, port) that never fragments. */
static int open_sock(const struct ipaddr *vtep, uint16_t port, bool v6, bool reuse, int bufsz, char *err,
		     size_t errlen)
{
	int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		set_err(err, errlen, "underlay: %s: %s", "socket", strerror(errno));
		return -1;
	}
	int one = 1;
	if (v6) {
		int pmtu = IPV6_PMTUDISC_DO;
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0 ||
		    setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu, sizeof(pmtu)) < 0 ||
		    setsockopt(fd, IPPROTO_IPV6, IPV6_DONTFRAG, &one, sizeof(one)) < 0) {
			set_err(err, errlen, "underlay: %s: %s", "setsockopt IPv6", strerror(errno));
			close(fd);
			return -1;
		}
#ifdef IPV6_FREEBIND
		/* an address still in duplicate address detection can be bound */
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
#endif
	} else {
		int pmtu = IP_PMTUDISC_DO;
		if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu)) < 0) {
			set_err(err, errlen, "underlay: %s: %s", "setsockopt IP_MTU_DISCOVER", strerror(errno));
			close(fd);
			return -1;
		}
	}
	if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
		set_err(err, errlen, "underlay: %s: %s", "setsockopt SO_REUSEPORT", strerror(errno));
		close(fd);
		return -1;
	}
	/* best effort: the kernel caps these at [rw]mem_max */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	struct sockaddr_storage ss;
	socklen_t sl = to_sockaddr(vtep, port, v6, &ss);
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
		char a[IPADDR_STRLEN], what[IPADDR_STRLEN + 32];
		ipaddr_format(vtep, a);
		snprintf(what, sizeof(what), "bind %s%s%s port %u", v6 ? "[" : "", a, v6 ? "]" : "", port);
		set_err(err, errlen, "underlay: %s: %s", what, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static uint16_t bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

struct underlay *underlay_open(const struct ipaddr *vtep, uint16_t port, char *err, size_t errlen)
{
	return underlay_open_shared(vtep, port, 0, err, errlen);
}

struct underlay *underlay_open_shared(const struct ipaddr *vtep, uint16_t port, uint16_t workers, char *err,
				      size_t errlen)
{
	bool shared = workers > 1;
	if (!vtep || !port) {
		set_err(err, errlen, "underlay: %s", "no VTEP address or port");
		return NULL;
	}
	struct underlay *u = calloc(1, sizeof(*u));
	if (!u) {
		set_err(err, errlen, "underlay: %s", "out of memory");
		return NULL;
	}
	u->rx_fd = -1;
	for (int i = 0; i < UNDERLAY_TX_SOCKS; i++)
		u->tx_fd[i] = -1;
	u->v6 = !ipaddr_is_v4(vtep);
	u->port = port;
	u->vtep = *vtep;
	u->rx_fd = open_sock(vtep, port, u->v6, shared, 4 << 20, err, errlen);
	if (u->rx_fd < 0)
		goto fail;
	if (shared) {
		/* the group's sockets in worker order: the program names the owner */
		int prog = steer_bpf_prog(STEER_BPF_REUSEPORT, workers);
		u->steered = prog >= 0 &&
			     setsockopt(u->rx_fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog, sizeof(prog)) == 0;
	}
	for (int i = 0; i < UNDERLAY_TX_SOCKS; i++) {
		/* small receive buffer: nothing is expected on these ports */
		u->tx_fd[i] = open_sock(vtep, 0, u->v6, false, 1 << 20, err, errlen);
		if (u->tx_fd[i] < 0)
			goto fail;
		int small = 1;
		(void)setsockopt(u->tx_fd[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
		u->tx_port[i] = bound_port(u->tx_fd[i]);
	}
	return u;
fail:
	underlay_close(u);
	return NULL;
}

void underlay_close(struct underlay *u)
{
	if (!u)
		return;
	if (u->rx_fd >= 0)
		close(u->rx_fd);
	for (int i = 0; i < UNDERLAY_TX_SOCKS; i++)
		if (u->tx_fd[i] >= 0)
			close(u->tx_fd[i]);
	io_close(u->up);
	free(u->peers);
	free(u->nh_idx);
	free(u->slots);
	free(u);
}

int underlay_fd(const struct underlay *u) { return u->rx_fd; }
const struct ipaddr *underlay_vtep(const struct underlay *u) { return &u->vtep; }
uint16_t underlay_port(const struct underlay *u) { return u->port; }

/* ---- peers ---- */

static uint32_t addr_hash(const struct ipaddr *a) { return (uint32_t)hash_bytes(a->b, 16, 0x7e9); }

static struct underlay_peer_stats *find_peer(const struct underlay *u, const struct ipaddr *a)
{
	if (!u->slots)
		return NULL;
	for (uint32_t h = addr_hash(a) & u->slot_mask;; h = (h + 1) & u->slot_mask) {
		uint32_t idx = u->slots[h].idx;
		if (!idx)
			return NULL;
		if (ipaddr_eq(&u->peers[idx - 1].vtep, a))
			return &u->peers[idx - 1];
	}
}

bool underlay_set_peers(struct underlay *u, const struct ipaddr *vteps, uint32_t n, const _Atomic uint64_t *nh,
			char *err, size_t errlen)
{
	if (n > 65535) {
		set_err(err, errlen, "underlay: %s", "too many VTEPs");
		return false;
	}
	uint32_t size = 16;
	while (size < 2 * n)
		size <<= 1;
	struct underlay_peer_stats *peers = n ? calloc(n, sizeof(*peers)) : NULL;
	uint32_t *nh_idx = n ? calloc(n, sizeof(*nh_idx)) : NULL;
	struct peer_slot *slots = calloc(size, sizeof(*slots));
	if ((n && (!peers || !nh_idx)) || !slots) {
		free(peers);
		free(nh_idx);
		free(slots);
		set_err(err, errlen, "underlay: %s", "out of memory");
		return false;
	}
	struct underlay nu = {.peers = peers, .slots = slots, .slot_mask = size - 1};
	for (uint32_t i = 0; i < n; i++) {
		if (find_peer(&nu, &vteps[i]))
			continue;
		const struct underlay_peer_stats *old = find_peer(u, &vteps[i]);
		struct underlay_peer_stats *ps = &peers[nu.n_peers++];
		if (old)
			*ps = *old;
		ps->vtep = vteps[i];
		nh_idx[nu.n_peers - 1] = i;
		uint32_t h = addr_hash(&vteps[i]) & nu.slot_mask;
		while (slots[h].idx)
			h = (h + 1) & nu.slot_mask;
		slots[h].idx = nu.n_peers;
	}
	free(u->peers);
	free(u->nh_idx);
	free(u->slots);
	u->peers = peers;
	u->nh_idx = nh_idx;
	u->nh = nh;
	u->slots = slots;
	u->slot_mask = nu.slot_mask;
	u->n_peers = nu.n_peers;
	return true;
}

bool underlay_known_vtep(const struct underlay *u, const struct ipaddr *a) { return find_peer(u, a) != NULL; }

void underlay_peer_rx_drop(struct underlay *u, const struct ipaddr *vtep)
{
	struct underlay_peer_stats *ps = find_peer(u, vtep);
	if (ps)
		ps->rx_drops++;
}

/* ---- receive ---- */

/* The peer a datagram came from; NULL (counted as unknown) if none. */
static struct underlay_peer_stats *rx_peer(struct underlay *u, const struct ipaddr *a)
{
	struct underlay_peer_stats *ps = find_peer(u, a);
	if (!ps) {
		u->st.rx_unknown_vtep++;
		u->st.last_unknown = *a;
	}
	return ps;
}

static void rx_count(struct underlay *u, struct underlay_peer_stats *ps, uint32_t len)
{
	ps->rx_pkts++;
	ps->rx_bytes += len;
	u->st.rx_pkts++;
	u->st.rx_bytes += len;
}

static uint32_t sock_rx(struct underlay *u, struct pkt_pool *pool, struct pkt **pkts, struct ipaddr *from,
			uint32_t max)
{
	struct mmsghdr msg[UNDERLAY_BURST];
	struct iovec iov[UNDERLAY_BURST];
	struct sockaddr_storage ss[UNDERLAY_BURST];
	struct pkt *b[UNDERLAY_BURST];
	if (max > UNDERLAY_BURST)
		max = UNDERLAY_BURST;
	if (!max)
		return 0;
	uint32_t k = pkt_alloc_bulk(pool, b, max);
	if (k < max)
		u->st.rx_no_buf++;
	if (!k)
		return 0;
	for (uint32_t i = 0; i < k; i++) {
		iov[i].iov_base = b[i]->data;
		iov[i].iov_len = PKT_DATA_ROOM;
		memset(&msg[i], 0, sizeof(msg[i]));
		msg[i].msg_hdr.msg_name = &ss[i];
		msg[i].msg_hdr.msg_namelen = sizeof(ss[i]);
		msg[i].msg_hdr.msg_iov = &iov[i];
		msg[i].msg_hdr.msg_iovlen = 1;
	}
	int r;
	do
		r = recvmmsg(u->rx_fd, msg, k, MSG_DONTWAIT, NULL);
	while (r < 0 && errno == EINTR);
	uint32_t got = r > 0 ? (uint32_t)r : 0, out = 0;
	for (uint32_t i = 0; i < got; i++) {
		struct pkt *p = b[i];
		struct ipaddr a;
		if (!from_sockaddr(&ss[i], msg[i].msg_hdr.msg_namelen, &a)) {
			u->st.rx_unknown_vtep++;
			pkt_free(pool, p);
			continue;
		}
		struct underlay_peer_stats *ps = rx_peer(u, &a);
		if (!ps) {
			pkt_free(pool, p);
			continue;
		}
		if ((msg[i].msg_hdr.msg_flags & MSG_TRUNC) || msg[i].msg_len > PKT_DATA_ROOM) {
			u->st.rx_trunc++;
			ps->rx_drops++;
			pkt_free(pool, p);
			continue;
		}
		p->len = msg[i].msg_len;
		rx_count(u, ps, p->len);
		pkts[out] = p;
		from[out] = a;
		out++;
	}
	if (got < k)
		pkt_free_bulk(pool, b + got, k - got);
	return out;
}

/* Geneve the uplink's XDP program handed over: outer headers checked and
 * pulled. */
static uint32_t up_rx(struct underlay *u, struct pkt_pool *pool, struct pkt **pkts, struct ipaddr *from,
		      uint32_t max)
{
	struct pkt *b[UNDERLAY_BURST];
	uint32_t k = io_rx_burst(u->up, pool, b, max), out = 0;
	for (uint32_t i = 0; i < k; i++) {
		struct pkt *p = b[i];
		if (tunnel_outer_pull(p, &u->vtep, u->port, &from[out]) != DROP_NONE) {
			u->st.up_rx_bad++;
			pkt_free(pool, p);
			continue;
		}
		struct underlay_peer_stats *ps = rx_peer(u, &from[out]);
		if (!ps) {
			pkt_free(pool, p);
			continue;
		}
		rx_count(u, ps, p->len);
		ps->up_rx_pkts++;
		u->st.up_rx_pkts++;
		pkts[out++] = p;
	}
	return out;
}

uint32_t underlay_rx_burst(struct underlay *u, struct pkt_pool *pool, struct pkt **pkts, struct ipaddr *from,
			   uint32_t max)
{
	if (max > UNDERLAY_BURST)
		max = UNDERLAY_BURST;
	uint32_t out = u->up ? up_rx(u, pool, pkts, from, max) : 0;
	if (out < max)
		out += sock_rx(u, pool, pkts + out, from + out, max - out);
	return out;
}

/* ---- send ---- */

static uint32_t sock_of(uint64_t h)
{
	h = hash_mix64(h ^ 0x6081);
	return (uint32_t)(h % UNDERLAY_TX_SOCKS);
}

uint16_t underlay_tx_port(const struct underlay *u, uint64_t flow_hash) { return u->tx_port[sock_of(flow_hash)]; }

static enum drop_reason errno_reason(int e)
{
	switch (e) {
	case EAGAIN:
#if EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
	case ENOBUFS:
		return DROP_TX_FULL;
	case EMSGSIZE:
		return DROP_TOO_BIG;
	default:
		return DROP_TX_ERROR;
	}
}

static void count_tx_drop(struct underlay *u, const struct ipaddr *dst, enum drop_reason r)
{
	if (r == DROP_TX_FULL)
		u->st.tx_full++;
	else if (r == DROP_TOO_BIG)
		u->st.tx_too_big++;
	else
		u->st.tx_error++;
	struct underlay_peer_stats *ps = find_peer(u, dst);
	if (ps)
		ps->tx_drops++;
}

static uint32_t sock_tx(struct underlay *u, struct pkt *const *pkts, const struct ipaddr *dst,
			const uint64_t *flow_hash, uint32_t n, enum drop_reason *res)
{
	struct mmsghdr msg[UNDERLAY_BURST];
	struct iovec iov[UNDERLAY_BURST];
	struct sockaddr_storage ss[UNDERLAY_BURST];
	uint8_t sock[UNDERLAY_BURST];
	uint16_t at[UNDERLAY_BURST]; /* msg slot -> packet index */
	uint32_t cnt[UNDERLAY_TX_SOCKS + 1] = {0};
	uint32_t sent = 0, done = 0;
	while (done < n) {
		uint32_t m = MIN(n - done, (uint32_t)UNDERLAY_BURST);
		struct pkt *const *pp = pkts + done;
		const struct ipaddr *dd = dst + done;
		enum drop_reason *rr = res ? res + done : NULL;
		memset(cnt, 0, sizeof(cnt));
		/* bucket by socket, keeping order within a bucket */
		for (uint32_t i = 0; i < m; i++) {
			if (ipaddr_is_v4(&dd[i]) == u->v6) {
				sock[i] = UNDERLAY_TX_SOCKS; /* wrong family */
				cnt[UNDERLAY_TX_SOCKS]++;
				continue;
			}
			uint64_t h = flow_hash ? flow_hash[done + i] : pp[i]->hash;
			sock[i] = (uint8_t)sock_of(h);
			cnt[sock[i]]++;
		}
		uint32_t start[UNDERLAY_TX_SOCKS + 2], pos[UNDERLAY_TX_SOCKS + 1];
		start[0] = 0;
		for (int s = 0; s <= UNDERLAY_TX_SOCKS; s++)
			start[s + 1] = start[s] + cnt[s];
		memcpy(pos, start, sizeof(pos));
		for (uint32_t i = 0; i < m; i++) {
			uint32_t j = pos[sock[i]]++;
			at[j] = (uint16_t)i;
			if (sock[i] == UNDERLAY_TX_SOCKS)
				continue;
			iov[j].iov_base = pp[i]->data;
			iov[j].iov_len = pp[i]->len;
			memset(&msg[j], 0, sizeof(msg[j]));
			msg[j].msg_hdr.msg_name = &ss[j];
			msg[j].msg_hdr.msg_namelen = to_sockaddr(&dd[i], u->port, u->v6, &ss[j]);
			msg[j].msg_hdr.msg_iov = &iov[j];
			msg[j].msg_hdr.msg_iovlen = 1;
		}
		for (uint32_t j = start[UNDERLAY_TX_SOCKS]; j < start[UNDERLAY_TX_SOCKS + 1]; j++) {
			uint32_t i = at[j];
			if (rr)
				rr[i] = DROP_TX_ERROR;
			count_tx_drop(u, &dd[i], DROP_TX_ERROR);
		}
		for (int s = 0; s < UNDERLAY_TX_SOCKS; s++) {
			uint32_t off = start[s], end = start[s + 1];
			while (off < end) {
				int r = sendmmsg(u->tx_fd[s], msg + off, end - off, MSG_DONTWAIT);
				if (r > 0) {
					for (uint32_t j = off; j < off + (uint32_t)r; j++) {
						uint32_t i = at[j];
						if (rr)
							rr[i] = DROP_NONE;
						struct underlay_peer_stats *ps = find_peer(u, &dd[i]);
						if (ps) {
							ps->tx_pkts++;
							ps->tx_bytes += pp[i]->len;
						}
						u->st.tx_bytes += pp[i]->len;
					}
					u->st.tx_pkts += (uint32_t)r;
					u->st.tx_sock_pkts[s] += (uint32_t)r;
					sent += (uint32_t)r;
					off += (uint32_t)r;
					continue;
				}
				if (r < 0 && errno == EINTR)
					continue;
				enum drop_reason why = r < 0 ? errno_reason(errno) : DROP_TX_ERROR;
				/* a full queue fails the rest of this socket's burst;
				 * any other error only the message it is about */
				uint32_t last = why == DROP_TX_FULL ? end : off + 1;
				for (; off < last; off++) {
					uint32_t i = at[off];
					if (rr)
						rr[i] = why;
					count_tx_drop(u, &dd[i], why);
				}
			}
		}
		done += m;
	}
	return sent;
}

uint64_t underlay_nh_word(const uint8_t mac[6])
{
	uint64_t w = UNDERLAY_NH_VALID;
	for (int i = 0; i < 6; i++)
		w |= (uint64_t)mac[i] << (40 - 8 * i);
	return w;
}

bool underlay_nh_mac(uint64_t w, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)(w >> (40 - 8 * i));
	return (w & UNDERLAY_NH_VALID) != 0;
}

/* The next hop of peer ps through the uplink into o; false if not known. */
static bool up_next_hop(const struct underlay *u, const struct underlay_peer_stats *ps, struct tunnel_outer *o)
{
	if (!ps || !u->nh ||
	    !underlay_nh_mac(atomic_load_explicit(&u->nh[u->nh_idx[ps - u->peers]], memory_order_relaxed),
			     o->dst_mac))
		return false;
	memcpy(o->src_mac, u->up_mac, 6);
	o->src = u->vtep;
	o->dst = ps->vtep;
	return true;
}

/* Packets whose peer has a known next hop leave through the uplink with
 * outer headers written here; the others through the sockets. */
uint32_t underlay_tx_burst(struct underlay *u, struct pkt *const *pkts, const struct ipaddr *dst,
			   const uint64_t *flow_hash, uint32_t n, enum drop_reason *res)
{
	if (!u->up)
		return sock_tx(u, pkts, dst, flow_hash, n, res);
	uint32_t sent = 0;
	for (uint32_t done = 0; done < n;) {
		uint32_t m = MIN(n - done, (uint32_t)UNDERLAY_BURST), nu = 0, ns = 0;
		struct pkt *up[UNDERLAY_BURST], *sp[UNDERLAY_BURST];
		struct ipaddr sd[UNDERLAY_BURST];
		uint64_t sh[UNDERLAY_BURST];
		uint32_t up_len[UNDERLAY_BURST];
		uint16_t up_at[UNDERLAY_BURST], sp_at[UNDERLAY_BURST];
		struct underlay_peer_stats *up_ps[UNDERLAY_BURST];
		enum drop_reason sr[UNDERLAY_BURST];
		size_t outer = u->v6 ? TUNNEL_OUTER_V6 : TUNNEL_OUTER_V4;
		for (uint32_t i = done; i < done + m; i++) {
			struct pkt *p = pkts[i];
			uint64_t h = flow_hash ? flow_hash[i] : p->hash;
			struct underlay_peer_stats *ps = ipaddr_is_v4(&dst[i]) == u->v6 ? NULL : find_peer(u, &dst[i]);
			struct tunnel_outer o;
			if (!up_next_hop(u, ps, &o)) {
				if (ps)
					u->st.up_tx_no_nh++;
				sp[ns] = p;
				sd[ns] = dst[i];
				sh[ns] = h;
				sp_at[ns++] = (uint16_t)(i - done);
				continue;
			}
			uint32_t len = p->len;
			enum drop_reason why = len + outer > u->up_mtu ? DROP_TOO_BIG
					       : tunnel_outer_push(p, &o, tunnel_src_port(h), u->port);
			if (why != DROP_NONE) {
				if (res)
					res[i] = why;
				count_tx_drop(u, &dst[i], why);
				continue;
			}
			up[nu] = p;
			up_len[nu] = len;
			up_ps[nu] = ps;
			up_at[nu++] = (uint16_t)(i - done);
		}
		uint32_t k = nu ? io_tx_burst(u->up, up, nu) : 0;
		for (uint32_t j = 0; j < nu; j++) {
			uint32_t i = done + up_at[j];
			if (j < k) {
				up_ps[j]->tx_pkts++;
				up_ps[j]->up_tx_pkts++;
				up_ps[j]->tx_bytes += up_len[j];
				u->st.tx_bytes += up_len[j];
			} else {
				count_tx_drop(u, &dst[i], DROP_TX_FULL);
			}
			if (res)
				res[i] = j < k ? DROP_NONE : DROP_TX_FULL;
		}
		u->st.tx_pkts += k;
		u->st.up_tx_pkts += k;
		sent += k;
		if (ns) {
			sent += sock_tx(u, sp, sd, sh, ns, res ? sr : NULL);
			for (uint32_t j = 0; res && j < ns; j++)
				res[done + sp_at[j]] = sr[j];
		}
		done += m;
	}
	return sent;
}

bool underlay_attach_uplink(struct underlay *u, const char *ifname, uint16_t worker, uint16_t workers, char *err,
			    size_t errlen)
{
	if (u->up) {
		set_err(err, errlen, "underlay: %s", "an uplink is attached already");
		return false;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(u->rx_fd, SIOCGIFMTU, &ifr) < 0) {
		set_err(err, errlen, "underlay: uplink %s: %s", ifname, strerror(errno));
		return false;
	}
	struct io_opts o;
	io_opts_init(&o);
	o.mtu = (uint16_t)MIN(MAX(ifr.ifr_mtu, IO_MTU_MIN), IO_MTU_MAX);
	o.no_promisc = true; /* the kernel's own MAC is the only one it needs */
	o.xdp_geneve = true;
	o.xdp_geneve_to = u->vtep;
	o.xdp_geneve_port = u->port;
	if (workers > 1) {
		o.xdp_workers = workers;
		o.xdp_worker = worker;
	}
	struct io_port *p = io_open_afxdp(ifname, &o, err, errlen);
	if (!p)
		return false;
	struct mac m;
	io_mac(p, &m);
	memcpy(u->up_mac, m.b, 6);
	u->up_mtu = o.mtu;
	u->up = p;
	return true;
}

int underlay_uplink_fd(const struct underlay *u) { return u->up ? io_fd(u->up) : -1; }
const char *underlay_uplink_name(const struct underlay *u) { return u->up ? io_name(u->up) : NULL; }
int underlay_uplink_ifindex(const struct underlay *u) { return u->up ? io_ifindex(u->up) : 0; }

void underlay_get_stats(const struct underlay *u, struct underlay_stats *out) { *out = u->st; }

uint32_t underlay_n_peers(const struct underlay *u) { return u->n_peers; }

bool underlay_peer_stats(const struct underlay *u, uint32_t i, struct underlay_peer_stats *out)
{
	if (i >= u->n_peers)
		return false;
	*out = u->peers[i];
	return true;
}

bool underlay_steered(const struct underlay *u)
{
	return u && u->steered;
}

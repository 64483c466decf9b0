/* neigh.c - the next hop's Ethernet address for an underlay peer, over
 * rtnetlink: RTM_GETROUTE (one lookup, like `ip route get`), RTM_GETNEIGH
 * for one entry (kernel >= 5.0: needs ndm_ifindex and NDA_DST, and
 * ndm_state, ndm_type and the pads zero), and RTM_NEWNEIGH with NTF_USE to
 * make the kernel resolve a missing or unresolved entry (neigh_add: the
 * state given is not applied, the kernel runs neigh_event_send; it needs
 * NLM_F_CREATE to create a missing entry).
 *
 * Owns: one NETLINK_ROUTE socket and an 8 KiB receive buffer, both made
 * by neigh_open; nothing is allocated per call.
 * Must not: send packets, change routes, set neighbour entries (NTF_USE
 * is the only write: it creates at most an unresolved entry that the
 * kernel then resolves and ages like any other), or run on the packet
 * path. Replies are parsed from the caller's bytes through memcpy into
 * local structs (no casts of possibly misaligned buffers). */
#include "neigh.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#define NEIGH_RX_BUF 8192
#define NEIGH_TIMEOUT_MS 1000

struct neigh {
	int fd;
	uint32_t seq; /* last sequence number sent */
	uint8_t rx[NEIGH_RX_BUF];
};

/* The states in which the kernel has a link-layer address it would use. */
#define NUD_USABLE (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP)

const char *neigh_state_name(enum neigh_state s)
{
	switch (s) {
	case NEIGH_OK:
		return "ok";
	case NEIGH_PENDING:
		return "pending";
	case NEIGH_NO_ROUTE:
		return "no route";
	case NEIGH_OTHER_DEV:
		return "other device";
	case NEIGH_FAILED:
		return "failed";
	case NEIGH_ERROR:
		return "error";
	}
	return "?";
}

/* ---- parsing ---- */

static size_t align4(size_t n) { return (n + 3) & ~(size_t)3; }

static void addr_from(struct ipaddr *a, const uint8_t *p, size_t alen)
{
	if (alen == 4)
		ipaddr_from_v4(a, p);
	else
		memcpy(a->b, p, 16);
}

/* Walks the attributes (struct rtattr / struct nlattr) of p[0..left). */
struct attr_it {
	const uint8_t *p;
	size_t left;
};

/* 1 with the next attribute, 0 at the end, -EBADMSG on a bad length. */
static int attr_next(struct attr_it *it, uint16_t *type, const uint8_t **data, size_t *dlen)
{
	if (it->left == 0)
		return 0;
	struct rtattr a;
	if (it->left < sizeof(a))
		return -EBADMSG;
	memcpy(&a, it->p, sizeof(a));
	if (a.rta_len < sizeof(a) || a.rta_len > it->left)
		return -EBADMSG;
	*type = a.rta_type & NLA_TYPE_MASK;
	*data = it->p + sizeof(a);
	*dlen = a.rta_len - sizeof(a);
	size_t step = align4(a.rta_len);
	if (step >= it->left) {
		it->left = 0;
	} else {
		it->p += step;
		it->left -= step;
	}
	return 1;
}

static void kmsg_clear(char *kmsg, size_t kmsglen)
{
	if (kmsg && kmsglen)
		kmsg[0] = 0;
}

/* The NLMSGERR_ATTR_MSG text of an error reply (body: after the nlmsghdr,
 * at least a struct nlmsgerr long). Malformed TLVs are ignored: the error
 * code stands without its text. */
static void extack_msg(const struct nlmsghdr *h, const uint8_t *body, size_t blen, char *kmsg, size_t kmsglen)
{
	if (!kmsg || !kmsglen || !(h->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	struct nlmsgerr e;
	memcpy(&e, body, sizeof(e));
	size_t off = sizeof(e);
	if (!(h->nlmsg_flags & NLM_F_CAPPED)) {
		/* the request's payload is echoed after its header */
		if (e.msg.nlmsg_len < NLMSG_HDRLEN || e.msg.nlmsg_len - NLMSG_HDRLEN > blen)
			return;
		off += align4((size_t)e.msg.nlmsg_len - NLMSG_HDRLEN);
	}
	if (off > blen)
		return;
	struct attr_it it = {body + off, blen - off};
	uint16_t type;
	const uint8_t *data;
	size_t dlen;
	while (attr_next(&it, &type, &data, &dlen) > 0) {
		if (type != NLMSGERR_ATTR_MSG)
			continue;
		size_t n = 0;
		while (n < dlen && n + 1 < kmsglen && data[n])
			n++;
		memcpy(kmsg, data, n);
		kmsg[n] = 0;
		return;
	}
}

/* The reply to seq in buf[0..len): 0 with body/blen of the first message
 * of `type` (for type NLMSG_ERROR: a positive acknowledgement), -errno of
 * an error reply, -EBADMSG on a malformed buffer, -ENOMSG when the buffer
 * holds nothing for seq. */
static int find_reply(const uint8_t *buf, size_t len, uint32_t seq, uint16_t type, const uint8_t **body,
		      size_t *blen, char *kmsg, size_t kmsglen)
{
	kmsg_clear(kmsg, kmsglen);
	size_t off = 0;
	while (off < len) {
		struct nlmsghdr h;
		if (len - off < sizeof(h))
			return -EBADMSG; /* trailing bytes */
		memcpy(&h, buf + off, sizeof(h));
		if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > len - off)
			return -EBADMSG;
		const uint8_t *b = buf + off + NLMSG_HDRLEN;
		size_t bl = h.nlmsg_len - NLMSG_HDRLEN;
		if (h.nlmsg_seq == seq) {
			if (h.nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr e;
				if (bl < sizeof(e))
					return -EBADMSG;
				memcpy(&e, b, sizeof(e));
				if (e.error > 0 || e.error < -4095)
					return -EBADMSG;
				if (e.error < 0) {
					extack_msg(&h, b, bl, kmsg, kmsglen);
					return e.error;
				}
				/* a positive ack: the request is done; data would have come before it */
				if (type != NLMSG_ERROR)
					return -EBADMSG;
				*body = b;
				*blen = bl;
				return 0;
			}
			if (h.nlmsg_type == type) {
				*body = b;
				*blen = bl;
				return 0;
			}
			/* NLMSG_NOOP, NLMSG_DONE or anything else of ours: skipped */
		}
		size_t step = align4(h.nlmsg_len);
		if (step >= len - off)
			break;
		off += step;
	}
	return -ENOMSG;
}

static int route_reply(const uint8_t *buf, size_t len, uint32_t seq, const struct ipaddr *dst,
		       struct neigh_route *out)
{
	memset(out, 0, sizeof(*out));
	const uint8_t *body;
	size_t blen;
	int rc = find_reply(buf, len, seq, RTM_NEWROUTE, &body, &blen, out->kmsg, sizeof(out->kmsg));
	if (rc)
		return rc;
	struct rtmsg rtm;
	if (blen < NLMSG_ALIGN(sizeof(rtm)))
		return -EBADMSG;
	memcpy(&rtm, body, sizeof(rtm));
	bool v4 = ipaddr_is_v4(dst);
	size_t alen = v4 ? 4 : 16;
	if (rtm.rtm_family != (v4 ? AF_INET : AF_INET6))
		return -EBADMSG;
	struct neigh_route r;
	memset(&r, 0, sizeof(r));
	r.type = rtm.rtm_type;
	struct attr_it it = {body + NLMSG_ALIGN(sizeof(rtm)), blen - NLMSG_ALIGN(sizeof(rtm))};
	uint16_t type;
	const uint8_t *data;
	size_t dlen;
	while ((rc = attr_next(&it, &type, &data, &dlen)) > 0) {
		switch (type) {
		case RTA_OIF:
			if (dlen != sizeof(r.oif))
				return -EBADMSG;
			memcpy(&r.oif, data, sizeof(r.oif));
			break;
		case RTA_GATEWAY:
			if (dlen != alen)
				return -EBADMSG;
			addr_from(&r.gw, data, alen);
			r.has_gw = true;
			break;
		case RTA_VIA: { /* a gateway of the other family (IPv4 over an IPv6 next hop) */
			uint16_t fam;
			if (dlen < sizeof(fam))
				return -EBADMSG;
			memcpy(&fam, data, sizeof(fam));
			size_t vlen = fam == AF_INET ? 4 : fam == AF_INET6 ? 16 : 0;
			if (!vlen || dlen != sizeof(fam) + vlen)
				return -EBADMSG;
			addr_from(&r.gw, data + sizeof(fam), vlen);
			r.has_gw = true;
			break;
		}
		case RTA_PREFSRC:
			if (dlen != alen)
				return -EBADMSG;
			addr_from(&r.prefsrc, data, alen);
			r.has_prefsrc = true;
			break;
		case RTA_DST: {
			struct ipaddr d;
			if (dlen != alen)
				return -EBADMSG;
			addr_from(&d, data, alen);
			if (!ipaddr_eq(&d, dst))
				return -EBADMSG;
			break;
		}
		default:
			break;
		}
	}
	if (rc < 0)
		return rc;
	if (!r.has_gw)
		r.gw = *dst;
	memcpy(r.kmsg, out->kmsg, sizeof(r.kmsg));
	*out = r;
	return 0;
}

static int neigh_reply(const uint8_t *buf, size_t len, uint32_t seq, struct neigh_entry *out)
{
	memset(out, 0, sizeof(*out));
	const uint8_t *body;
	size_t blen;
	int rc = find_reply(buf, len, seq, RTM_NEWNEIGH, &body, &blen, out->kmsg, sizeof(out->kmsg));
	if (rc)
		return rc;
	struct ndmsg ndm;
	if (blen < NLMSG_ALIGN(sizeof(ndm)))
		return -EBADMSG;
	memcpy(&ndm, body, sizeof(ndm));
	if (ndm.ndm_family != AF_INET && ndm.ndm_family != AF_INET6)
		return -EBADMSG;
	size_t alen = ndm.ndm_family == AF_INET ? 4 : 16;
	struct neigh_entry e;
	memset(&e, 0, sizeof(e));
	e.ifindex = ndm.ndm_ifindex;
	e.family = ndm.ndm_family;
	e.state = ndm.ndm_state;
	e.flags = ndm.ndm_flags;
	struct attr_it it = {body + NLMSG_ALIGN(sizeof(ndm)), blen - NLMSG_ALIGN(sizeof(ndm))};
	uint16_t type;
	const uint8_t *data;
	size_t dlen;
	while ((rc = attr_next(&it, &type, &data, &dlen)) > 0) {
		if (type == NDA_DST) {
			if (dlen != alen)
				return -EBADMSG;
			addr_from(&e.dst, data, alen);
			e.has_dst = true;
		} else if (type == NDA_LLADDR) {
			if (dlen != sizeof(e.lladdr))
				return -EBADMSG;
			memcpy(e.lladdr, data, sizeof(e.lladdr));
			e.has_lladdr = true;
		}
	}
	if (rc < 0)
		return rc;
	*out = e;
	return 0;
}

static int ack_reply(const uint8_t *buf, size_t len, uint32_t seq, char *kmsg, size_t kmsglen)
{
	const uint8_t *body;
	size_t blen;
	return find_reply(buf, len, seq, NLMSG_ERROR, &body, &blen, kmsg, kmsglen);
}

int neigh_parse_route(const void *buf, size_t len, uint32_t seq, const struct ipaddr *dst, struct neigh_route *out)
{
	int rc = route_reply(buf, len, seq, dst, out);
	return rc == -ENOMSG ? -EBADMSG : rc;
}

int neigh_parse_neigh(const void *buf, size_t len, uint32_t seq, struct neigh_entry *out)
{
	int rc = neigh_reply(buf, len, seq, out);
	return rc == -ENOMSG ? -EBADMSG : rc;
}

int neigh_parse_ack(const void *buf, size_t len, uint32_t seq, char *kmsg, size_t kmsglen)
{
	int rc = ack_reply(buf, len, seq, kmsg, kmsglen);
	return rc == -ENOMSG ? -EBADMSG : rc;
}

/* ---- requests ---- */

struct req {
	uint8_t b[64];
	size_t len;
};
/* the largest request: header, rtmsg/ndmsg and one 16-byte address */
_Static_assert(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct rtmsg)) + RTA_SPACE(16) <= sizeof(((struct req *)0)->b),
	       "a request fits");
_Static_assert(sizeof(struct ndmsg) == sizeof(struct rtmsg), "both family headers are 12 bytes");

static void req_init(struct req *q, uint16_t type, uint16_t flags, const void *fam_hdr, size_t fam_len)
{
	memset(q, 0, sizeof(*q));
	struct nlmsghdr h = {.nlmsg_type = type, .nlmsg_flags = flags};
	memcpy(q->b, &h, sizeof(h));
	memcpy(q->b + NLMSG_HDRLEN, fam_hdr, fam_len);
	q->len = NLMSG_HDRLEN + NLMSG_ALIGN(fam_len);
}

static void req_addr(struct req *q, uint16_t type, const struct ipaddr *a)
{
	bool v4 = ipaddr_is_v4(a);
	size_t alen = v4 ? 4 : 16;
	struct rtattr rta = {.rta_len = (unsigned short)RTA_LENGTH(alen), .rta_type = type};
	memcpy(q->b + q->len, &rta, sizeof(rta));
	memcpy(q->b + q->len + sizeof(rta), v4 ? a->b + 12 : a->b, alen);
	q->len += RTA_SPACE(alen);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* What a transaction waits for: the reply parser and its result. */
struct waiter {
	int kind; /* RTM_GETROUTE, RTM_GETNEIGH or RTM_NEWNEIGH (an ack) */
	const struct ipaddr *dst;
	struct neigh_route *route;
	struct neigh_entry *entry;
	char *kmsg;
	size_t kmsglen;
};

static int wait_parse(const struct waiter *w, const uint8_t *buf, size_t len, uint32_t seq)
{
	switch (w->kind) {
	case RTM_GETROUTE:
		return route_reply(buf, len, seq, w->dst, w->route);
	case RTM_GETNEIGH:
		return neigh_reply(buf, len, seq, w->entry);
	default:
		return ack_reply(buf, len, seq, w->kmsg, w->kmsglen);
	}
}

/* Send q with the next sequence number and read datagrams until the one
 * holding its reply; *rc receives the parser's result (0 or -errno). false
 * with err set on a socket error, an oversized reply or the timeout. */
static bool transact(struct neigh *n, struct req *q, const struct waiter *w, int *rc, const char *what, char *err,
		     size_t errlen)
{
	if (++n->seq == 0)
		n->seq = 1;
	uint32_t seq = n->seq;
	struct nlmsghdr h;
	memcpy(&h, q->b, sizeof(h));
	h.nlmsg_len = (uint32_t)q->len;
	h.nlmsg_seq = seq;
	h.nlmsg_pid = 0;
	memcpy(q->b, &h, sizeof(h));
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	ssize_t s;
	do
		s = sendto(n->fd, q->b, q->len, 0, (struct sockaddr *)&kernel, sizeof(kernel));
	while (s < 0 && errno == EINTR);
	if (s != (ssize_t)q->len) {
		set_err(err, errlen, "neigh: %s: send: %s", what, s < 0 ? strerror(errno) : "short write");
		return false;
	}
	uint64_t deadline = now_ms() + NEIGH_TIMEOUT_MS;
	for (;;) {
		struct sockaddr_nl from;
		socklen_t fl = sizeof(from);
		memset(&from, 0, sizeof(from));
		ssize_t got = recvfrom(n->fd, n->rx, sizeof(n->rx), MSG_TRUNC, (struct sockaddr *)&from, &fl);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				set_err(err, errlen, "neigh: %s: no reply from the kernel within %d ms", what,
					NEIGH_TIMEOUT_MS);
			else
				set_err(err, errlen, "neigh: %s: receive: %s", what, strerror(errno));
			return false;
		}
		if ((size_t)got > sizeof(n->rx)) {
			set_err(err, errlen, "neigh: %s: reply of %zd bytes exceeds the %zu-byte buffer", what, got,
				sizeof(n->rx));
			return false;
		}
		if (fl >= sizeof(from) && from.nl_pid == 0) { /* from the kernel */
			int r = wait_parse(w, n->rx, (size_t)got, seq);
			if (r != -ENOMSG) {
				*rc = r;
				return true;
			}
		}
		if (now_ms() >= deadline) {
			set_err(err, errlen, "neigh: %s: no reply from the kernel within %d ms", what,
				NEIGH_TIMEOUT_MS);
			return false;
		}
	}
}

static bool get_route(struct neigh *n, const struct ipaddr *dst, struct neigh_route *rt, int *rc, char *err,
		      size_t errlen)
{
	bool v4 = ipaddr_is_v4(dst);
	struct rtmsg rtm = {.rtm_family = v4 ? AF_INET : AF_INET6, .rtm_dst_len = v4 ? 32 : 128};
	struct req q;
	req_init(&q, RTM_GETROUTE, NLM_F_REQUEST, &rtm, sizeof(rtm));
	req_addr(&q, RTA_DST, dst);
	struct waiter w = {.kind = RTM_GETROUTE, .dst = dst, .route = rt};
	return transact(n, &q, &w, rc, "route lookup", err, errlen);
}

static bool get_neigh(struct neigh *n, int ifindex, const struct ipaddr *addr, struct neigh_entry *e, int *rc,
		      char *err, size_t errlen)
{
	/* neigh_valid_get_req: ndm_state, ndm_type, pads and flags (but NTF_PROXY) zero, NDA_DST only */
	struct ndmsg ndm = {.ndm_family = ipaddr_is_v4(addr) ? AF_INET : AF_INET6, .ndm_ifindex = ifindex};
	struct req q;
	req_init(&q, RTM_GETNEIGH, NLM_F_REQUEST, &ndm, sizeof(ndm));
	req_addr(&q, NDA_DST, addr);
	struct waiter w = {.kind = RTM_GETNEIGH, .entry = e};
	return transact(n, &q, &w, rc, "neighbour lookup", err, errlen);
}

/* Ask the kernel to resolve addr on ifindex (create the entry if missing). */
static bool use_neigh(struct neigh *n, int ifindex, const struct ipaddr *addr, int *rc, char *kmsg, size_t kmsglen,
		      char *err, size_t errlen)
{
	struct ndmsg ndm = {.ndm_family = ipaddr_is_v4(addr) ? AF_INET : AF_INET6,
			    .ndm_ifindex = ifindex,
			    .ndm_state = NUD_NONE,
			    .ndm_flags = NTF_USE};
	struct req q;
	req_init(&q, RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK, &ndm, sizeof(ndm));
	req_addr(&q, NDA_DST, addr);
	struct waiter w = {.kind = RTM_NEWNEIGH, .kmsg = kmsg, .kmsglen = kmsglen};
	return transact(n, &q, &w, rc, "resolve request (RTM_NEWNEIGH NTF_USE)", err, errlen);
}

/* ---- the socket and the lookup ---- */

struct neigh *neigh_open(char *err, size_t errlen)
{
	struct neigh *n = calloc(1, sizeof(*n));
	if (!n) {
		set_err(err, errlen, "neigh: out of memory");
		return NULL;
	}
	n->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (n->fd < 0) {
		set_err(err, errlen, "neigh: socket(NETLINK_ROUTE): %s", strerror(errno));
		free(n);
		return NULL;
	}
	struct sockaddr_nl self = {.nl_family = AF_NETLINK}; /* the kernel picks the port id; no groups */
	struct timeval tv = {.tv_sec = NEIGH_TIMEOUT_MS / 1000, .tv_usec = (NEIGH_TIMEOUT_MS % 1000) * 1000};
	const char *what = NULL;
	if (bind(n->fd, (struct sockaddr *)&self, sizeof(self)) < 0)
		what = "bind";
	else if (setsockopt(n->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		what = "setsockopt SO_RCVTIMEO";
	if (what) {
		set_err(err, errlen, "neigh: %s: %s", what, strerror(errno));
		close(n->fd);
		free(n);
		return NULL;
	}
	/* best effort: the kernel's error text, and errors without the echoed request */
	int one = 1;
	(void)setsockopt(n->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	(void)setsockopt(n->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	return n;
}

void neigh_close(struct neigh *n)
{
	if (!n)
		return;
	close(n->fd);
	free(n);
}

static enum neigh_state done(struct neigh_result *out, enum neigh_state st)
{
	out->st = st;
	return st;
}

/* the separator before the kernel's extended-ack text, "" when there is none */
static const char *ksep(const char *kmsg) { return kmsg[0] ? " - " : ""; }

static bool entry_matches(const struct neigh_entry *e, int ifindex, const struct ipaddr *addr)
{
	return e->ifindex == ifindex && (!e->has_dst || ipaddr_eq(&e->dst, addr));
}

enum neigh_state neigh_resolve(struct neigh *n, int ifindex, const struct ipaddr *dst, struct neigh_result *out,
			       char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!n || !dst || ifindex <= 0) {
		set_err(err, errlen, "neigh: resolve: %s", !n || !dst ? "no socket or address" : "bad ifindex");
		return done(out, NEIGH_ERROR);
	}
	char a[IPADDR_STRLEN];
	ipaddr_format(dst, a);

	/* 1. the route */
	struct neigh_route rt;
	int rc;
	if (!get_route(n, dst, &rt, &rc, err, errlen))
		return done(out, NEIGH_ERROR);
	if (rc == -ENETUNREACH || rc == -EHOSTUNREACH || rc == -EACCES || rc == -EINVAL) {
		/* EACCES: a prohibit route; EINVAL: a blackhole route (both families) */
		set_err(err, errlen, "neigh: no route to %s: %s%s%s", a, strerror(-rc), ksep(rt.kmsg), rt.kmsg);
		return done(out, NEIGH_NO_ROUTE);
	}
	if (rc < 0) {
		set_err(err, errlen, "neigh: route lookup for %s: %s%s%s", a,
			rc == -EBADMSG ? "malformed reply" : strerror(-rc), ksep(rt.kmsg), rt.kmsg);
		return done(out, NEIGH_ERROR);
	}
	out->oif = rt.oif;
	out->nexthop = rt.gw;
	out->src = rt.prefsrc;
	if (rt.type == RTN_LOCAL) {
		set_err(err, errlen, "neigh: %s is a local address", a);
		return done(out, NEIGH_OTHER_DEV);
	}
	if (rt.type != RTN_UNICAST) {
		set_err(err, errlen, "neigh: the route to %s is not unicast (route type %u)", a, rt.type);
		return done(out, NEIGH_NO_ROUTE);
	}
	if (rt.oif != ifindex) {
		set_err(err, errlen, "neigh: the route to %s leaves through ifindex %d, not %d", a, rt.oif, ifindex);
		return done(out, NEIGH_OTHER_DEV);
	}

	/* 2. the neighbour entry of the next hop */
	char h[IPADDR_STRLEN];
	ipaddr_format(&rt.gw, h);
	struct neigh_entry e;
	if (!get_neigh(n, ifindex, &rt.gw, &e, &rc, err, errlen))
		return done(out, NEIGH_ERROR);
	if (rc == 0 && !entry_matches(&e, ifindex, &rt.gw)) {
		set_err(err, errlen, "neigh: neighbour lookup for %s returned another entry", h);
		return done(out, NEIGH_ERROR);
	}
	bool was_failed = false;
	if (rc == 0 && (e.state & NUD_USABLE)) {
		if (!e.has_lladdr) {
			set_err(err, errlen, "neigh: the entry of %s (ifindex %d) has no link-layer address", h,
				ifindex);
			return done(out, NEIGH_ERROR);
		}
		memcpy(out->mac, e.lladdr, 6);
		/* Frames sent on AF_XDP never confirm the entry to the kernel: a
		 * stale one is "used" here as kernel traffic would use it, which
		 * makes the kernel probe it again (DELAY, PROBE). Best effort. */
		if (e.state & NUD_STALE) {
			char kmsg[NEIGH_KMSG_LEN];
			(void)use_neigh(n, ifindex, &rt.gw, &rc, kmsg, sizeof(kmsg), NULL, 0);
		}
		return done(out, NEIGH_OK);
	}
	if (rc == 0)
		was_failed = e.state & NUD_FAILED;
	else if (rc != -ENOENT) {
		set_err(err, errlen, "neigh: neighbour lookup for %s on ifindex %d: %s%s%s", h, ifindex,
			rc == -EBADMSG ? "malformed reply (or a link-layer address not of 6 bytes)" : strerror(-rc),
			ksep(e.kmsg), e.kmsg);
		return done(out, NEIGH_ERROR);
	}

	/* 3. no usable entry: ask the kernel to resolve it */
	char kmsg[NEIGH_KMSG_LEN];
	if (!use_neigh(n, ifindex, &rt.gw, &rc, kmsg, sizeof(kmsg), err, errlen))
		return done(out, NEIGH_ERROR);
	if (rc < 0) {
		set_err(err, errlen,
			"neigh: the kernel refused to resolve %s on ifindex %d (RTM_NEWNEIGH NTF_USE): %s%s%s", h,
			ifindex, rc == -EBADMSG ? "malformed reply" : strerror(-rc), ksep(kmsg), kmsg);
		return done(out, NEIGH_ERROR);
	}
	/* a quick answer (a peer on the same machine) may already be in */
	if (!get_neigh(n, ifindex, &rt.gw, &e, &rc, err, errlen))
		return done(out, NEIGH_ERROR);
	if (rc == 0 && entry_matches(&e, ifindex, &rt.gw)) {
		if ((e.state & NUD_USABLE) && e.has_lladdr) {
			memcpy(out->mac, e.lladdr, 6);
			return done(out, NEIGH_OK);
		}
		if (e.state & NUD_FAILED)
			was_failed = true;
	} else if (rc != 0 && rc != -ENOENT) {
		set_err(err, errlen, "neigh: neighbour lookup for %s on ifindex %d: %s%s%s", h, ifindex,
			rc == -EBADMSG ? "malformed reply" : strerror(-rc), ksep(e.kmsg), e.kmsg);
		return done(out, NEIGH_ERROR);
	}
	if (was_failed) {
		set_err(err, errlen, "neigh: %s on ifindex %d does not answer (entry FAILED); asked again", h, ifindex);
		return done(out, NEIGH_FAILED);
	}
	set_err(err, errlen, "neigh: resolving %s on ifindex %d", h, ifindex);
	return done(out, NEIGH_PENDING);
}

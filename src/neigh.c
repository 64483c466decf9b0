/* neigh.c - the next hop's Ethernet address for an underlay peer, over
 * rtnetlink: RTM_GETROUTE (one lookup, like `ip route get`), RTM_GETNEIGH
 * for one entry (kernel >= 5.0: needs ndm_ifindex and NDA_DST, and
 * ndm_state, ndm_type and the pads zero), and RTM_NEWNEIGH with NTF_USE to
 * make the kernel resolve a missing or unresolved entry (neigh_add: the
 * state given is not applied, the kernel runs neigh_event_send; it needs
 * NLM_F_CREATE to create a missing entry).
 *
 * libmnl does the netlink work, a well-kept library instead of hand-written
 * message and TLV walking: the socket, building requests, and on replies
 * the walk over the messages (mnl_cb_run2, which also checks the sequence
 * number and port of live replies) and over their attributes
 * (mnl_attr_parse_payload), whose types and lengths mnl_attr_type_valid and
 * mnl_attr_validate/mnl_attr_validate2 check. What libmnl leaves to its
 * caller stays here: its walks end silently at a bad length (a walk that
 * stops short means a malformed buffer); libmnl 1.0.4 takes a message
 * length of 2 GiB or more for a fit (msg_fits); its default NLMSG_ERROR
 * handler would neither skip other requests' errors nor keep the
 * extended-ack text (ours does); it reads headers in place (the pure
 * parsers hand it an aligned copy of the caller's bytes); and
 * mnl_socket_recvfrom does not tell the sender (the socket is connected to
 * the kernel, which then refuses other sockets' unicasts to it).
 *
 * Owns: one libmnl NETLINK_ROUTE socket and an 8 KiB receive buffer, both
 * made by neigh_open; nothing is allocated per call.
 * Must not: send packets, change routes, set neighbour entries (NTF_USE
 * is the only write: it creates at most an unresolved entry that the
 * kernel then resolves and ages like any other), or run on the packet
 * path. */
#include "neigh.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#define NEIGH_RX_BUF NEIGH_PARSE_MAX
#define NEIGH_TIMEOUT_MS 1000

struct neigh {
	struct mnl_socket *nl;
	uint32_t portid; /* ours: the kernel addresses its replies to it */
	uint32_t seq;    /* last sequence number sent */
	_Alignas(struct nlmsghdr) uint8_t rx[NEIGH_RX_BUF];
};
_Static_assert(NEIGH_RX_BUF % MNL_ALIGNTO == 0, "a message's aligned end stays inside the buffer");

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

/* One walk over a receive buffer for the reply to one request. */
struct parse {
	uint32_t seq;             /* the request's */
	uint16_t type;            /* the reply: RTM_NEWROUTE, RTM_NEWNEIGH or NLMSG_ERROR (an acknowledgement) */
	const struct ipaddr *dst; /* RTM_NEWROUTE: the address looked up */
	char *kmsg;               /* receives the extended-ack text of an error reply (NULL: not wanted) */
	size_t kmsglen;
	int rc;                   /* 1 until the reply is found, then 0 or -errno */
	const uint8_t *buf_end;   /* the end of the buffer walked */
	const uint8_t *msgs_end;  /* how far the walk over the messages got */
	const uint8_t *attrs_end; /* how far the walk over a message's attributes got */
	size_t alen;              /* the address length of the message's family */
	struct neigh_route route; /* the reply (route, entry) as parsed */
	struct neigh_entry entry;
};

static void parse_init(struct parse *p, uint16_t type, const struct ipaddr *dst, char *kmsg, size_t kmsglen)
{
	memset(p, 0, sizeof(*p));
	p->type = type;
	p->dst = dst;
	p->kmsg = kmsglen ? kmsg : NULL;
	p->kmsglen = kmsglen;
	if (p->kmsg)
		p->kmsg[0] = 0;
}

static void addr_from(struct ipaddr *a, const uint8_t *p, size_t alen)
{
	if (alen == 4)
		ipaddr_from_v4(a, p);
	else
		memcpy(a->b, p, 16);
}

/* An address attribute of exactly alen bytes into *out. */
static int attr_addr(const struct nlattr *a, size_t alen, struct ipaddr *out)
{
	if (mnl_attr_validate2(a, MNL_TYPE_BINARY, alen) < 0)
		return MNL_CB_ERROR;
	addr_from(out, mnl_attr_get_payload(a), alen);
	return MNL_CB_OK;
}

/* Notes the end of attribute a (a walk that ends before its message does
 * was stopped by a bad length). */
static void attr_seen(struct parse *p, const struct nlattr *a)
{
	p->attrs_end = (const uint8_t *)a + MNL_ALIGN(mnl_attr_get_len(a));
}

static int route_attr(const struct nlattr *a, void *data)
{
	struct parse *p = data;
	struct neigh_route *r = &p->route;
	attr_seen(p, a);
	if (mnl_attr_type_valid(a, RTA_MAX) < 0)
		return MNL_CB_OK; /* newer than these headers: none of ours */
	switch (mnl_attr_get_type(a)) {
	case RTA_OIF:
		if (mnl_attr_validate(a, MNL_TYPE_U32) < 0)
			return MNL_CB_ERROR;
		r->oif = (int)mnl_attr_get_u32(a);
		return MNL_CB_OK;
	case RTA_GATEWAY:
		r->has_gw = true;
		return attr_addr(a, p->alen, &r->gw);
	case RTA_VIA: { /* a gateway of the other family (IPv4 over an IPv6 next hop) */
		const struct rtvia *via = mnl_attr_get_payload(a);
		if (mnl_attr_get_payload_len(a) < sizeof(*via))
			return MNL_CB_ERROR;
		size_t vlen = via->rtvia_family == AF_INET ? 4 : via->rtvia_family == AF_INET6 ? 16 : 0;
		if (!vlen || mnl_attr_validate2(a, MNL_TYPE_BINARY, sizeof(*via) + vlen) < 0)
			return MNL_CB_ERROR;
		addr_from(&r->gw, via->rtvia_addr, vlen);
		r->has_gw = true;
		return MNL_CB_OK;
	}
	case RTA_PREFSRC:
		r->has_prefsrc = true;
		return attr_addr(a, p->alen, &r->prefsrc);
	case RTA_DST: {
		struct ipaddr d;
		if (attr_addr(a, p->alen, &d) != MNL_CB_OK || !ipaddr_eq(&d, p->dst))
			return MNL_CB_ERROR;
		return MNL_CB_OK;
	}
	default:
		return MNL_CB_OK;
	}
}

static int neigh_attr(const struct nlattr *a, void *data)
{
	struct parse *p = data;
	struct neigh_entry *e = &p->entry;
	attr_seen(p, a);
	if (mnl_attr_type_valid(a, NDA_MAX) < 0)
		return MNL_CB_OK;
	switch (mnl_attr_get_type(a)) {
	case NDA_DST:
		e->has_dst = true;
		return attr_addr(a, p->alen, &e->dst);
	case NDA_LLADDR:
		if (mnl_attr_validate2(a, MNL_TYPE_BINARY, sizeof(e->lladdr)) < 0)
			return MNL_CB_ERROR;
		memcpy(e->lladdr, mnl_attr_get_payload(a), sizeof(e->lladdr));
		e->has_lladdr = true;
		return MNL_CB_OK;
	default:
		return MNL_CB_OK;
	}
}

/* The attributes of nlh after its family header of hlen bytes (present),
 * up to nlmsg_len: 0, or -EBADMSG on a bad attribute or a bad length. */
static int walk_attrs(struct parse *p, const struct nlmsghdr *nlh, size_t hlen, mnl_attr_cb_t cb)
{
	const uint8_t *start = mnl_nlmsg_get_payload_offset(nlh, hlen);
	size_t len = mnl_nlmsg_get_payload_len(nlh) - MNL_ALIGN(hlen);
	p->attrs_end = start;
	if (mnl_attr_parse_payload(start, len, cb, p) != MNL_CB_OK || p->attrs_end < start + len)
		return -EBADMSG;
	return 0;
}

static int route_msg(struct parse *p, const struct nlmsghdr *nlh)
{
	if (mnl_nlmsg_get_payload_len(nlh) < MNL_ALIGN(sizeof(struct rtmsg)))
		return -EBADMSG;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	bool v4 = ipaddr_is_v4(p->dst);
	if (rtm->rtm_family != (v4 ? AF_INET : AF_INET6))
		return -EBADMSG;
	p->alen = v4 ? 4 : 16;
	p->route.type = rtm->rtm_type;
	int rc = walk_attrs(p, nlh, sizeof(*rtm), route_attr);
	if (rc == 0 && !p->route.has_gw)
		p->route.gw = *p->dst;
	return rc;
}

static int neigh_msg(struct parse *p, const struct nlmsghdr *nlh)
{
	if (mnl_nlmsg_get_payload_len(nlh) < MNL_ALIGN(sizeof(struct ndmsg)))
		return -EBADMSG;
	const struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);
	if (ndm->ndm_family != AF_INET && ndm->ndm_family != AF_INET6)
		return -EBADMSG;
	p->alen = ndm->ndm_family == AF_INET ? 4 : 16;
	p->entry.ifindex = ndm->ndm_ifindex;
	p->entry.family = ndm->ndm_family;
	p->entry.state = ndm->ndm_state;
	p->entry.flags = ndm->ndm_flags;
	return walk_attrs(p, nlh, sizeof(*ndm), neigh_attr);
}

static int extack_attr(const struct nlattr *a, void *data)
{
	struct parse *p = data;
	if (mnl_attr_get_type(a) != NLMSGERR_ATTR_MSG)
		return MNL_CB_OK;
	if (mnl_attr_validate(a, MNL_TYPE_STRING) == 0) {
		const char *s = mnl_attr_get_str(a);
		size_t n = strnlen(s, mnl_attr_get_payload_len(a));
		n = MIN(n, p->kmsglen - 1);
		memcpy(p->kmsg, s, n);
		p->kmsg[n] = 0;
	}
	return MNL_CB_STOP;
}

/* The NLMSGERR_ATTR_MSG text of an error reply into p->kmsg. Malformed
 * TLVs are ignored: the error code stands without its text. */
static void extack_text(struct parse *p, const struct nlmsghdr *nlh, const struct nlmsgerr *e)
{
	if (!p->kmsg || !(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	size_t len = mnl_nlmsg_get_payload_len(nlh), off = sizeof(*e);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
		/* the request's payload is echoed after its header */
		if (e->msg.nlmsg_len < MNL_NLMSG_HDRLEN || e->msg.nlmsg_len - MNL_NLMSG_HDRLEN > len)
			return;
		off += MNL_ALIGN((size_t)e->msg.nlmsg_len - MNL_NLMSG_HDRLEN);
	}
	if (off <= len)
		mnl_attr_parse_payload((const uint8_t *)mnl_nlmsg_get_payload(nlh) + off, len - off, extack_attr, p);
}

/* Ends the walk with the reply's result (libmnl returns -1, errno set, on an error). */
static int found(struct parse *p, int rc)
{
	p->rc = rc;
	if (rc == 0)
		return MNL_CB_STOP;
	errno = -rc;
	return MNL_CB_ERROR;
}

/* Every message's first check: it ends inside the buffer. libmnl 1.0.4's
 * mnl_nlmsg_ok compares nlmsg_len cast to int, so a length of 2 GiB or
 * more passes it (fixed upstream after 1.0.4: netfilter bugzilla 1691) and
 * mnl_nlmsg_next would step that far past the buffer. Notes the end. */
static bool msg_fits(struct parse *p, const struct nlmsghdr *nlh)
{
	if (nlh->nlmsg_len > (size_t)(p->buf_end - (const uint8_t *)nlh))
		return false;
	p->msgs_end = mnl_nlmsg_get_payload_tail(nlh);
	return true;
}

/* Every data message (nlmsg_type >= NLMSG_MIN_TYPE). */
static int data_msg(const struct nlmsghdr *nlh, void *data)
{
	struct parse *p = data;
	if (!msg_fits(p, nlh))
		return found(p, -EBADMSG);
	if (nlh->nlmsg_seq != p->seq || nlh->nlmsg_type != p->type)
		return MNL_CB_OK; /* another request's reply, or not the reply asked for: skipped */
	return found(p, p->type == RTM_NEWROUTE ? route_msg(p, nlh) : neigh_msg(p, nlh));
}

/* Every control message (nlmsg_type < NLMSG_MIN_TYPE). */
static int ctl_msg(const struct nlmsghdr *nlh, void *data)
{
	struct parse *p = data;
	if (!msg_fits(p, nlh))
		return found(p, -EBADMSG);
	if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_seq != p->seq)
		return MNL_CB_OK; /* NLMSG_NOOP, NLMSG_DONE, ... or another request's: skipped */
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct nlmsgerr))
		return found(p, -EBADMSG);
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	if (e->error > 0 || e->error < -4095)
		return found(p, -EBADMSG);
	if (e->error < 0) {
		extack_text(p, nlh, e);
		return found(p, e->error);
	}
	/* a positive ack: the request is done; data would have come before it */
	return found(p, p->type == NLMSG_ERROR ? 0 : -EBADMSG);
}

/* Walks buf[0..len) (aligned for struct nlmsghdr, with room up to len
 * rounded up to 4) for the reply to p->seq: 0, -errno of an error reply,
 * -EBADMSG on a malformed buffer, -ENOMSG when nothing in it answers.
 * mnl_seq and portid: mnl_cb_run2's checks of every message (0: none).
 * Every message type has a callback of ours (the control ones too), so
 * each message meets msg_fits before libmnl steps past it. */
static int parse_run(struct parse *p, const uint8_t *buf, size_t len, uint32_t mnl_seq, uint32_t portid)
{
	mnl_cb_t ctl[NLMSG_MIN_TYPE];
	for (size_t i = 0; i < ARRAY_SIZE(ctl); i++)
		ctl[i] = ctl_msg;
	p->rc = 1;
	p->buf_end = buf + len;
	p->msgs_end = buf;
	int r = mnl_cb_run2(buf, len, mnl_seq, portid, data_msg, p, ctl, ARRAY_SIZE(ctl));
	if (p->rc <= 0)
		return p->rc;
	if (r < 0) /* libmnl's own checks: another request's or port's datagram (live), or NLM_F_DUMP_INTR */
		return errno == EPROTO || errno == ESRCH ? -ENOMSG : -EBADMSG;
	return p->msgs_end >= buf + len ? -ENOMSG : -EBADMSG; /* trailing bytes or a bad length ended the walk */
}

/* The pure parsers' walk over the caller's bytes, copied first: libmnl
 * reads headers in place, and the caller's buffer may have any alignment. */
static int parse_bytes(struct parse *p, const void *buf, size_t len)
{
	_Alignas(struct nlmsghdr) uint8_t copy[NEIGH_PARSE_MAX];
	_Static_assert(NEIGH_PARSE_MAX % MNL_ALIGNTO == 0, "a message's aligned end stays inside the copy");
	if (len > sizeof(copy))
		return -EBADMSG;
	if (len)
		memcpy(copy, buf, len);
	int rc = parse_run(p, copy, len, 0, 0);
	return rc == -ENOMSG ? -EBADMSG : rc;
}

int neigh_parse_route(const void *buf, size_t len, uint32_t seq, const struct ipaddr *dst, struct neigh_route *out)
{
	memset(out, 0, sizeof(*out));
	struct parse p;
	parse_init(&p, RTM_NEWROUTE, dst, out->kmsg, sizeof(out->kmsg));
	p.seq = seq;
	int rc = parse_bytes(&p, buf, len);
	if (rc == 0)
		*out = p.route; /* its kmsg is "", as out's: no text comes with a reply */
	return rc;
}

int neigh_parse_neigh(const void *buf, size_t len, uint32_t seq, struct neigh_entry *out)
{
	memset(out, 0, sizeof(*out));
	struct parse p;
	parse_init(&p, RTM_NEWNEIGH, NULL, out->kmsg, sizeof(out->kmsg));
	p.seq = seq;
	int rc = parse_bytes(&p, buf, len);
	if (rc == 0)
		*out = p.entry;
	return rc;
}

int neigh_parse_ack(const void *buf, size_t len, uint32_t seq, char *kmsg, size_t kmsglen)
{
	struct parse p;
	parse_init(&p, NLMSG_ERROR, NULL, kmsg, kmsglen);
	p.seq = seq;
	return parse_bytes(&p, buf, len);
}

/* ---- requests ---- */

/* the largest request: header, rtmsg or ndmsg and one 16-byte address */
struct req {
	_Alignas(struct nlmsghdr) uint8_t b[MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct rtmsg)) + MNL_ATTR_HDRLEN + 16];
};
_Static_assert(sizeof(struct ndmsg) == sizeof(struct rtmsg), "both family headers are 12 bytes");

static struct nlmsghdr *req_start(struct req *q, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *h = mnl_nlmsg_put_header(q->b);
	h->nlmsg_type = type;
	h->nlmsg_flags = flags;
	return h;
}

static void req_addr(struct nlmsghdr *h, uint16_t type, const struct ipaddr *a)
{
	bool v4 = ipaddr_is_v4(a);
	mnl_attr_put(h, type, v4 ? 4 : 16, v4 ? a->b + 12 : a->b);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Send req with the next sequence number and read datagrams until the one
 * holding its reply; *rc receives the parser's result (0 or -errno), the
 * reply is in p. false with err set on a socket error, an oversized reply
 * or the timeout. */
static bool transact(struct neigh *n, struct nlmsghdr *req, struct parse *p, int *rc, const char *what, char *err,
		     size_t errlen)
{
	if (++n->seq == 0)
		n->seq = 1;
	req->nlmsg_seq = p->seq = n->seq;
	ssize_t s;
	do
		s = mnl_socket_sendto(n->nl, req, req->nlmsg_len);
	while (s < 0 && errno == EINTR);
	if (s != (ssize_t)req->nlmsg_len) {
		set_err(err, errlen, "neigh: %s: send: %s", what, s < 0 ? strerror(errno) : "short write");
		return false;
	}
	uint64_t deadline = now_ms() + NEIGH_TIMEOUT_MS;
	for (;;) {
		ssize_t got = mnl_socket_recvfrom(n->nl, n->rx, sizeof(n->rx));
		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				set_err(err, errlen, "neigh: %s: no reply from the kernel within %d ms", what,
					NEIGH_TIMEOUT_MS);
			else if (errno == ENOSPC) /* libmnl: MSG_TRUNC */
				set_err(err, errlen, "neigh: %s: a reply exceeds the %zu-byte buffer", what,
					sizeof(n->rx));
			else
				set_err(err, errlen, "neigh: %s: receive: %s", what, strerror(errno));
			return false;
		}
		/* a datagram of another sequence number (the late reply to a
		 * request that timed out) or port fails libmnl's checks: -ENOMSG,
		 * and the next one is read */
		int r = parse_run(p, n->rx, (size_t)got, n->seq, n->portid);
		if (r != -ENOMSG) {
			*rc = r;
			return true;
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
	struct req q;
	struct nlmsghdr *h = req_start(&q, RTM_GETROUTE, NLM_F_REQUEST);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(h, sizeof(*rtm));
	rtm->rtm_family = v4 ? AF_INET : AF_INET6;
	rtm->rtm_dst_len = v4 ? 32 : 128;
	req_addr(h, RTA_DST, dst);
	memset(rt, 0, sizeof(*rt));
	struct parse p;
	parse_init(&p, RTM_NEWROUTE, dst, rt->kmsg, sizeof(rt->kmsg));
	if (!transact(n, h, &p, rc, "route lookup", err, errlen))
		return false;
	if (*rc == 0)
		*rt = p.route;
	return true;
}

static bool get_neigh(struct neigh *n, int ifindex, const struct ipaddr *addr, struct neigh_entry *e, int *rc,
		      char *err, size_t errlen)
{
	/* neigh_valid_get_req: ndm_state, ndm_type, pads and flags (but NTF_PROXY) zero, NDA_DST only */
	struct req q;
	struct nlmsghdr *h = req_start(&q, RTM_GETNEIGH, NLM_F_REQUEST);
	struct ndmsg *ndm = mnl_nlmsg_put_extra_header(h, sizeof(*ndm));
	ndm->ndm_family = ipaddr_is_v4(addr) ? AF_INET : AF_INET6;
	ndm->ndm_ifindex = ifindex;
	req_addr(h, NDA_DST, addr);
	memset(e, 0, sizeof(*e));
	struct parse p;
	parse_init(&p, RTM_NEWNEIGH, NULL, e->kmsg, sizeof(e->kmsg));
	if (!transact(n, h, &p, rc, "neighbour lookup", err, errlen))
		return false;
	if (*rc == 0)
		*e = p.entry;
	return true;
}

/* Ask the kernel to resolve addr on ifindex (create the entry if missing). */
static bool use_neigh(struct neigh *n, int ifindex, const struct ipaddr *addr, int *rc, char *kmsg, size_t kmsglen,
		      char *err, size_t errlen)
{
	struct req q;
	struct nlmsghdr *h = req_start(&q, RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK);
	struct ndmsg *ndm = mnl_nlmsg_put_extra_header(h, sizeof(*ndm));
	ndm->ndm_family = ipaddr_is_v4(addr) ? AF_INET : AF_INET6;
	ndm->ndm_ifindex = ifindex;
	ndm->ndm_state = NUD_NONE;
	ndm->ndm_flags = NTF_USE;
	req_addr(h, NDA_DST, addr);
	struct parse p;
	parse_init(&p, NLMSG_ERROR, NULL, kmsg, kmsglen);
	return transact(n, h, &p, rc, "resolve request (RTM_NEWNEIGH NTF_USE)", err, errlen);
}

/* ---- the socket and the lookup ---- */

struct neigh *neigh_open(char *err, size_t errlen)
{
	struct neigh *n = calloc(1, sizeof(*n));
	if (!n) {
		set_err(err, errlen, "neigh: out of memory");
		return NULL;
	}
	n->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!n->nl) {
		set_err(err, errlen, "neigh: socket(NETLINK_ROUTE): %s", strerror(errno));
		free(n);
		return NULL;
	}
	/* The kernel picks the port id; no groups. Connected to the kernel
	 * (port 0), the socket is sent unicasts by the kernel only: what
	 * mnl_socket_recvfrom reads is the kernel's (it does not tell the
	 * sender). */
	int fd = mnl_socket_get_fd(n->nl);
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	struct timeval tv = {.tv_sec = NEIGH_TIMEOUT_MS / 1000, .tv_usec = (NEIGH_TIMEOUT_MS % 1000) * 1000};
	const char *what = NULL;
	if (mnl_socket_bind(n->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		what = "bind";
	else if (connect(fd, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		what = "connect";
	else if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		what = "setsockopt SO_RCVTIMEO";
	if (what) {
		set_err(err, errlen, "neigh: %s: %s", what, strerror(errno));
		mnl_socket_close(n->nl);
		free(n);
		return NULL;
	}
	n->portid = mnl_socket_get_portid(n->nl);
	/* best effort: the kernel's error text, and errors without the echoed request */
	int one = 1;
	(void)mnl_socket_setsockopt(n->nl, NETLINK_EXT_ACK, &one, sizeof(one));
	(void)mnl_socket_setsockopt(n->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	return n;
}

void neigh_close(struct neigh *n)
{
	if (!n)
		return;
	mnl_socket_close(n->nl);
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

/* A neighbour lookup of next hop h that failed with rc (not -ENOENT). */
static enum neigh_state lookup_error(struct neigh_result *out, const char *h, int ifindex, int rc,
				     const struct neigh_entry *e, char *err, size_t errlen)
{
	set_err(err, errlen, "neigh: neighbour lookup for %s on ifindex %d: %s%s%s", h, ifindex,
		rc == -EBADMSG ? "malformed reply (or a link-layer address not of 6 bytes)" : strerror(-rc),
		ksep(e->kmsg), e->kmsg);
	return done(out, NEIGH_ERROR);
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
	else if (rc != -ENOENT)
		return lookup_error(out, h, ifindex, rc, &e, err, errlen);

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
		return lookup_error(out, h, ifindex, rc, &e, err, errlen);
	}
	if (was_failed) {
		set_err(err, errlen, "neigh: %s on ifindex %d does not answer (entry FAILED); asked again", h, ifindex);
		return done(out, NEIGH_FAILED);
	}
	set_err(err, errlen, "neigh: resolving %s on ifindex %d", h, ifindex);
	return done(out, NEIGH_PENDING);
}

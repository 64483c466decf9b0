/* neigh.h - the link-layer next hop of underlay peers, read from the
 * kernel's routing and neighbour tables over rtnetlink: for a peer VTEP
 * address, the route the kernel would take (`ip route get`), its gateway
 * or the address itself, and that next hop's Ethernet address from the
 * neighbour table; a missing or unresolved entry is handed to the kernel
 * to resolve (NTF_USE: the kernel sends the ARP request or neighbour
 * solicitation and keeps answering ARP/ND on the uplink itself).
 *
 * Owns: one NETLINK_ROUTE socket (libmnl; blocking, SO_RCVTIMEO 1 s) and
 * its receive buffer. Not thread-safe: one control thread uses a struct neigh.
 * Must not: send packets itself, change routes or neighbour entries (the
 * only write is NTF_USE, the kernel's own "resolve or confirm this"), or
 * be called on the packet path (every call is a blocking round trip to the
 * kernel). */
#ifndef DETOUR_NEIGH_H
#define DETOUR_NEIGH_H

#include "common.h"

struct neigh;

/* NULL with a message in err on failure. */
struct neigh *neigh_open(char *err, size_t errlen);
void neigh_close(struct neigh *n); /* NULL ok */

enum neigh_state {
	NEIGH_OK = 0,    /* mac is the next hop's Ethernet address */
	NEIGH_PENDING,   /* no usable entry yet: the kernel was asked to resolve it (try again later) */
	NEIGH_NO_ROUTE,  /* no unicast route to the address: the lookup failed with ENETUNREACH (no route),
			  * EHOSTUNREACH (unreachable route), EACCES (prohibit) or EINVAL (blackhole), or
			  * the route is of another type than unicast (broadcast, ...) */
	NEIGH_OTHER_DEV, /* the route leaves through another interface than the one asked for (or is local) */
	NEIGH_FAILED,    /* the kernel's entry was FAILED (its last resolution got no answer), or went to
			  * FAILED when asked; it was asked to resolve again */
	NEIGH_ERROR,     /* netlink error, malformed reply or timeout (err filled) */
};

struct neigh_result {
	enum neigh_state st;
	uint8_t mac[6];        /* NEIGH_OK only, else zero */
	struct ipaddr nexthop; /* the gateway, or dst itself on a directly connected route (zero if no route) */
	int oif;               /* interface of the route (0 if none) */
	struct ipaddr src;     /* preferred source of the route (RTA_PREFSRC) if given, else all zero */
};

/* Resolve dst (IPv4 as IPv4-mapped, see common.h, or IPv6) for sending out
 * of interface ifindex (the uplink): one route lookup, one neighbour
 * lookup and, when the entry is missing or not valid, one resolve request
 * and a second neighbour lookup (so a fast answer may already give
 * NEIGH_OK). A STALE entry gives NEIGH_OK and is also handed to the
 * kernel to confirm (NTF_USE, as the kernel's own traffic would: frames
 * sent on AF_XDP never confirm it); a PERMANENT entry is only read.
 * Returns out->st. err gets a message for every state but NEIGH_OK (for
 * NEIGH_ERROR always). Blocks up to about 1 s per request. */
enum neigh_state neigh_resolve(struct neigh *n, int ifindex, const struct ipaddr *dst, struct neigh_result *out,
			       char *err, size_t errlen);
/* "ok", "pending", "no route", "other device", "failed", "error" ("?" otherwise). */
const char *neigh_state_name(enum neigh_state s);

/* ---- reply parsers: pure functions, exposed for the tests and the fuzz
 * target. They take a whole netlink receive buffer (one or more nlmsghdr,
 * any alignment, at most NEIGH_PARSE_MAX bytes), check every length before
 * reading and never read past len. Messages of another sequence number are
 * skipped (but must be well formed: a bad length ends the walk). Each
 * returns 0 on success, -errno from an NLMSG_ERROR for seq (with the
 * kernel's extended-ack text in kmsg when present), and -EBADMSG on
 * malformed or truncated input, on a buffer longer than NEIGH_PARSE_MAX,
 * when a message before the reply is flagged NLM_F_DUMP_INTR (libmnl
 * refuses those), or when no reply for seq is in the buffer. */

#define NEIGH_KMSG_LEN 96
#define NEIGH_PARSE_MAX 8192 /* the receive buffer's size: the longest buffer the parsers take */

/* A route reply (RTM_NEWROUTE). */
struct neigh_route {
	int oif;                    /* RTA_OIF, 0 if absent */
	uint8_t type;               /* rtm_type: RTN_UNICAST, RTN_LOCAL, ... */
	bool has_gw;                /* an RTA_GATEWAY (or RTA_VIA) was given */
	struct ipaddr gw;           /* the next hop: the gateway if has_gw, else dst */
	bool has_prefsrc;
	struct ipaddr prefsrc;      /* RTA_PREFSRC if has_prefsrc, else zero */
	char kmsg[NEIGH_KMSG_LEN];  /* extended-ack text of an error reply, "" if none */
};

/* A neighbour reply (RTM_NEWNEIGH). */
struct neigh_entry {
	int ifindex;                /* ndm_ifindex */
	uint8_t family;             /* ndm_family: AF_INET or AF_INET6 */
	uint16_t state;             /* ndm_state: NUD_* bits */
	uint8_t flags;              /* ndm_flags: NTF_* bits */
	bool has_dst;
	struct ipaddr dst;          /* NDA_DST if has_dst (IPv4-mapped for AF_INET) */
	bool has_lladdr;
	uint8_t lladdr[6];          /* NDA_LLADDR if has_lladdr */
	char kmsg[NEIGH_KMSG_LEN];  /* extended-ack text of an error reply, "" if none */
};

/* Route reply for seq: fills oif, the gateway (dst when there is no
 * RTA_GATEWAY/RTA_VIA), prefsrc and rtm_type. The reply's family must be
 * dst's and an RTA_DST must equal dst; addresses must have their family's
 * length and RTA_OIF 4 bytes, else -EBADMSG. */
int neigh_parse_route(const void *buf, size_t len, uint32_t seq, const struct ipaddr *dst, struct neigh_route *out);
/* Neighbour reply for seq: ndm_state, ndm_flags, ifindex, NDA_DST and
 * NDA_LLADDR (exactly 6 bytes, else -EBADMSG). -ENOENT from the kernel
 * (no entry) passes through like every other error. */
int neigh_parse_neigh(const void *buf, size_t len, uint32_t seq, struct neigh_entry *out);
/* Acknowledgement for seq (an NLMSG_ERROR): 0 for a positive ack, else as
 * above; kmsg (may be NULL) receives the extended-ack text. */
int neigh_parse_ack(const void *buf, size_t len, uint32_t seq, char *kmsg, size_t kmsglen);

#endif

/* pkt.h - the packet buffer, its preallocated pool and the batch (vector)
 * that every data-plane stage works on.
 *
 * Owns: buffer memory and the per-packet metadata layout (parse offsets,
 * flow key, and the service-plane metadata that travels beside the frame
 * inside a host instead of an encapsulation).
 * Must not: know about ports, rules or paths. No allocation after
 * pool_create(); get/put are O(1) and lock-free.
 *
 * Threading: a pool belongs to one worker thread, which alone allocates
 * from it. A buffer handed to another worker (steer.h) is freed there
 * into whatever pool that worker holds: pkt_free() sees that the buffer
 * is not that pool's and pushes it onto its own pool's return stack (one
 * atomic compare-and-swap); the owner takes the whole stack back when its
 * free stack runs dry. */
#ifndef DETOUR_PKT_H
#define DETOUR_PKT_H

#include "common.h"
#include "flow.h"

#define PKT_HEADROOM 192   /* room to push outer Eth+IPv6+UDP+Geneve+NSH+TLVs */
#define PKT_DATA_ROOM 2048 /* largest frame carried (MTU 1500 + L2, or jumbo-ish) */
#define BATCH_MAX 64

/* Service-plane metadata (SPEC section 4: NSH header + Detour context TLVs).
 * Inside a host it travels here; between hosts it is encoded as NSH. */
enum sp_dir { SP_DIR_FORWARD = 0, SP_DIR_REVERSE = 1 };
enum fp_action { FP_NONE = 0, FP_DROP = 1, FP_ALLOW = 2, FP_SKIP = 3 };

struct sp_meta {
	/* what varies per flow and hop (16 bytes: the service proxy keeps them
	 * as they are) */
	uint32_t spi;          /* 24 bits */
	uint8_t si;
	uint8_t dir;           /* enum sp_dir */
	uint8_t is_copy;       /* a `copy` rule's duplicate: dropped at path end */
	uint8_t ingress;       /* classified at the destination (ingress rule) */
	uint16_t chain;        /* chain id (SCI) */
	uint16_t flow_tag;     /* hash of the 5-tuple as the port proxy sent it: a node rewrote it (NAT) if it differs at home */
	uint16_t path_plus1;   /* this host's index of the path + 1 (0 = unknown); a cache, never on the wire */
	uint8_t path_rev;      /* with path_plus1: the reverse direction */
	uint8_t ttl;           /* NSH TTL left (0 = a fresh packet: 63) */
	/* what all flows between two guests share (40 bytes: the service
	 * proxy keeps them once per such pair) */
	uint32_t vni;          /* guest network VNI */
	uint16_t guest_port;   /* guest port id at the source host */
	struct mac orig_dst, orig_src;
	struct ipaddr ret_vtep;  /* return address: source host VTEP ... */
	struct mac ret_spmac;    /* ... and its port proxy spmac */
	/* per packet */
	uint8_t fp_action;     /* enum fp_action; flow-programming TLV, 0 = absent */
	uint16_t fp_service;   /* service index the flow-programming message is about */
	uint8_t n_unknown;     /* bytes of unknown non-critical TLVs kept below */
	uint8_t unknown[64];   /* carried through untouched */
};

/* Where the parsed headers are, as offsets from pkt->data. 0xffff = absent. */
struct pkt_layout {
	uint16_t l3;        /* IP (or ARP) header */
	uint16_t l4;        /* TCP/UDP/ICMP header */
	uint16_t payload;   /* after L4 header */
	uint16_t ethertype; /* after any 802.1Q tags */
	uint16_t vlan_tci;  /* 0 if untagged */
	uint8_t l4proto;    /* IPPROTO_* or 0 */
	uint8_t tcp_flags;
	uint8_t is_frag;    /* IPv4/IPv6 non-first fragment: no L4 */
};

#define PKT_OFF_NONE 0xffff

struct pkt {
	uint8_t *data;        /* first byte of the frame (Ethernet header) */
	uint32_t len;         /* frame length */
	uint16_t in_port;     /* port id the frame arrived on */
	uint16_t out_port;    /* port id chosen by forwarding */
	uint32_t hash;        /* flow hash, 0 = not computed */
	uint32_t flags;       /* PKT_F_* */
	uint16_t next;        /* engine scratch: the node a packet goes to or comes from */
	uint32_t sp_place;    /* engine scratch: with sp_hash, the flow-state key's place */
	uint64_t sp_hash;     /* engine scratch: flow-state key computed when it was prefetched (0 = none) */
	uint64_t tuple_hash;  /* flow_tuple_hash(&key) when PKT_F_TUPLE_HASH: see pkt_tuple_hash */
	struct ipaddr tun_dst;/* engine scratch: the VTEP a tunnelled packet goes to */
	struct pkt_pool *pool;/* the pool the buffer belongs to; do not touch */
	uint8_t hops;         /* engine scratch: hand-offs between workers so far */
	uint16_t port_gen;    /* engine scratch: numbering of in_port when handed to another worker */
	struct pkt_layout lay;
	struct flow_key key;
	struct sp_meta md;
	/* cache-line aligned, so that a frame at the default headroom starts
	 * a cache line (its headers in one line, not two) */
	_Alignas(64) uint8_t buf[PKT_HEADROOM + PKT_DATA_ROOM];
};

#define PKT_F_PARSED (1u << 0)
#define PKT_F_HAS_MD (1u << 1)      /* md is valid (packet is on the service plane) */
#define PKT_F_CSUM_PARTIAL (1u << 2) /* L4 checksum must be completed before TX */
#define PKT_F_INGRESS_DONE (1u << 3) /* ingress classification already applied */
#define PKT_F_EGRESS_DONE (1u << 4)  /* egress classification already applied */
#define PKT_F_SP_FIRST (1u << 5)     /* entering the service plane at the port proxy */
#define PKT_F_FROM_TUNNEL (1u << 6)  /* arrived from another host on the guest plane */
#define PKT_F_TUPLE_HASH (1u << 7)   /* tuple_hash is of key (a parse clears it) */

/* flow_tuple_hash of p's key, computed once per parse: the port proxy, the
 * next local node's proxy and the port proxy at home share it while the
 * frame is not parsed again. */
static inline uint64_t pkt_tuple_hash(struct pkt *p)
{
	if (!(p->flags & PKT_F_TUPLE_HASH)) {
		p->tuple_hash = flow_tuple_hash(&p->key);
		p->flags |= PKT_F_TUPLE_HASH;
	}
	return p->tuple_hash;
}

static inline uint8_t *pkt_end(const struct pkt *p) { return p->data + p->len; }
static inline size_t pkt_headroom(const struct pkt *p) { return (size_t)(p->data - p->buf); }
static inline size_t pkt_tailroom(const struct pkt *p)
{
	return sizeof(p->buf) - pkt_headroom(p) - p->len;
}
/* Grow the front by n bytes; NULL if no headroom. */
static inline uint8_t *pkt_push(struct pkt *p, size_t n)
{
	if (pkt_headroom(p) < n)
		return NULL;
	p->data -= n;
	p->len += (uint32_t)n;
	return p->data;
}
/* Remove n bytes from the front; NULL if shorter. */
static inline uint8_t *pkt_pull(struct pkt *p, size_t n)
{
	if (p->len < n)
		return NULL;
	p->data += n;
	p->len -= (uint32_t)n;
	return p->data;
}

struct pkt_pool;

/* Preallocates n buffers (one mmap, no later allocation). NULL on failure. */
struct pkt_pool *pkt_pool_create(uint32_t n);
void pkt_pool_destroy(struct pkt_pool *pool);
/* Get a reset buffer (data at headroom, len 0, no flags); NULL when empty. */
struct pkt *pkt_alloc(struct pkt_pool *pool);
/* Get up to n buffers; returns how many. */
uint32_t pkt_alloc_bulk(struct pkt_pool *pool, struct pkt **out, uint32_t n);
/* Give buffers back. `pool` is the caller's; a buffer of another pool
 * goes back to its own (see Threading above). */
void pkt_free(struct pkt_pool *pool, struct pkt *p);
void pkt_free_bulk(struct pkt_pool *pool, struct pkt **p, uint32_t n);
/* Free buffers on the pool's own stack (not counting returns not yet taken). */
uint32_t pkt_pool_avail(const struct pkt_pool *pool);
uint32_t pkt_pool_size(const struct pkt_pool *pool);
/* Copy frame and metadata into a new buffer (for `copy` rules). */
struct pkt *pkt_clone(struct pkt_pool *pool, const struct pkt *p);
/* Reset a buffer for reuse, keeping its memory. */
void pkt_reset(struct pkt *p);

struct pkt_batch {
	uint32_t n;
	struct pkt *p[BATCH_MAX];
};

static inline void batch_init(struct pkt_batch *b) { b->n = 0; }
static inline bool batch_full(const struct pkt_batch *b) { return b->n == BATCH_MAX; }
static inline void batch_add(struct pkt_batch *b, struct pkt *p) { b->p[b->n++] = p; }

#endif

/* io_int.h - internals shared by the port I/O backends (io.c, io_mem.c,
 * io_afpacket.c). Not for other modules: use io.h.
 *
 * Owns: the generic port object (backend ops table, name, MTU, counters,
 * pending GSO segments) and the common RX repair step io_rx_frame().
 * Must not: be included outside src/io*.c. */
#ifndef DETOUR_IO_INT_H
#define DETOUR_IO_INT_H

#include "io.h"

/* Enough for a 64 KiB super-frame cut at the smallest MTU. */
#define IO_GSO_MAX_SEGS 256

enum io_kind { IO_KIND_MEM = 1, IO_KIND_AFPACKET = 2, IO_KIND_AFXDP = 3 };

struct io_ops {
	uint32_t (*rx_burst)(struct io_port *p, struct pkt_pool *pool, struct pkt **out, uint32_t max);
	uint32_t (*tx_burst)(struct io_port *p, struct pkt **pkts, uint32_t n);
	void (*stats)(struct io_port *p, struct io_stats *st); /* adds backend counters */
	void (*close)(struct io_port *p);
};

struct io_port {
	const struct io_ops *ops;
	enum io_kind kind;
	int fd;
	int ifindex;
	uint16_t mtu;
	struct mac mac;
	char name[32];
	struct io_stats st; /* written by the owning worker only (relaxed atomics) */
	/* GSO segments produced but not yet returned (out was full). */
	struct pkt_pool *pend_pool;
	uint32_t pend_head, pend_n;
	struct pkt *pend[IO_GSO_MAX_SEGS];
};

/* Single-writer counter update that other threads may read. */
#define IO_STAT_ADD(port, field, v) \
	__atomic_store_n(&(port)->st.field, (port)->st.field + (uint64_t)(v), __ATOMIC_RELAXED)

/* Offload facts about one received frame. */
struct io_rxinfo {
	uint32_t flags; /* IO_RX_* */
	uint16_t vlan_tci, vlan_tpid;
	uint16_t gso_size; /* TCP payload per segment the sender asked for (vnet header); 0 = unknown */
};
#define IO_RX_CSUM_PARTIAL (1u << 0)
#define IO_RX_VLAN (1u << 1)

enum io_rx_res {
	IO_RX_DONE = 0,  /* frame consumed (delivered, or dropped and counted) */
	IO_RX_AGAIN = 1, /* not consumed: no buffer; stop the burst, retry later */
};

/* Common RX step: turn frame[0..len) (as read from the ring, tag stripped
 * per ri) into packets appended to out[*n .. max). Oversize TCP frames are
 * segmented into p->pend and drained from there. */
enum io_rx_res io_rx_frame(struct io_port *p, struct pkt_pool *pool, const uint8_t *frame, uint32_t len,
			   const struct io_rxinfo *ri, struct pkt **out, uint32_t *n, uint32_t max);
/* Move pending segments to out[*n .. max). */
void io_pend_drain(struct io_port *p, struct pkt **out, uint32_t *n, uint32_t max);
/* Complete a partial checksum before TX (re-parses). */
void io_tx_fix(struct io_port *p, struct pkt *pkt);
void io_port_init(struct io_port *p, const struct io_ops *ops, enum io_kind kind, const char *name);
/* The options a port opens with (defaults when o is NULL, kept in *def),
 * after checking the interface name and MTU; NULL with err set. */
const struct io_opts *io_open_check(const char *ifname, const struct io_opts *o, struct io_opts *def, char *err,
				    size_t errlen);
/* Interface index and MAC into p (asked through fd, any socket), and bring
 * it up when `up`. 0, or -1 with err set. */
int io_if_setup(struct io_port *p, int fd, const char *ifname, bool up, char *err, size_t errlen);

#endif

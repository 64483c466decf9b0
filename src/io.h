/* io.h - port I/O: the backend interface the packet engine uses to receive
 * and send frames on a port, with two backends:
 *   - AF_PACKET (a Linux interface of the current network namespace):
 *     TPACKET_V3 mmap RX ring, one sendmmsg() per TX burst;
 *   - memory (tests and benchmarks): an inject ring (RX side), a collect
 *     ring (TX side) and a zero-syscall replay mode.
 *
 * Owns: sockets, rings, per-port counters, and the repair of frames that
 * arrive with offloads (partial L4 checksums completed, GSO super-frames
 * segmented to the MTU, the VLAN tag the kernel stripped put back), so that
 * every later stage sees frames exactly as they would be on the wire.
 * Must not: parse beyond what the repair needs, set pkt->in_port (the
 * engine does), know about rules, paths or topology.
 *
 * Threading: a port is used by one worker thread. io_get_stats() may be
 * called from any thread. */
#ifndef DETOUR_IO_H
#define DETOUR_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "pkt.h"

struct io_port;

struct io_opts {
	uint32_t rx_block_size;   /* TPACKET_V3 block bytes (page multiple, power of 2); 256 KiB */
	uint32_t rx_block_nr;     /* blocks in the RX ring; 32 */
	uint32_t rx_block_tov_ms; /* a partly filled block is handed over after this; 1 */
	uint16_t mtu;             /* largest IP packet delivered/segmented to; 1500 (576..2026) */
	bool no_promisc;          /* default: promiscuous (the port receives many MACs) */
	bool no_ifup;             /* default: set IFF_UP if the interface is down */
	bool no_qdisc_bypass;     /* default: PACKET_QDISC_BYPASS on TX */
	/* AF_PACKET only: one socket per worker, the kernel spreading received
	 * frames over them by a direction-independent flow hash */
	bool fanout;              /* join a PACKET_FANOUT group ... */
	uint16_t fanout_id;       /* ... this one (0: a new group with a unique id) */
	uint16_t fanout_workers;  /* sockets in the group: each gets the flows it owns (steer.h) */
	/* AF_XDP only (zero = default) */
	bool xdp_one_queue;       /* bind only xdp_queue; default: every RX queue of the interface */
	uint16_t xdp_queue;       /* the queue bound when xdp_one_queue */
	uint8_t xdp_mode;         /* IO_XDP_MODE_*: how the XDP program is attached */
	uint32_t xdp_frames;      /* UMEM frames of 2048 B shared by the port's queues; 0 = 4096 */
	uint16_t xdp_worker, xdp_workers; /* 0/0: the port binds the queues above and owns the
				   * interface. With xdp_workers = N > 0 (not with
				   * xdp_one_queue): this port binds the RX queues q with
				   * q % N == xdp_worker and transmits through its own socket
				   * (its first bound queue); one port per worker shares the
				   * interface's XDP program */
	bool xdp_geneve;          /* the underlay uplink: redirect only unfragmented UDP to
				   * xdp_geneve_to:xdp_geneve_port (the VTEP); the kernel keeps
				   * everything else (ARP, ND, the host's own traffic) */
	uint16_t xdp_geneve_port;
	struct ipaddr xdp_geneve_to;
};

#define IO_XDP_MODE_AUTO 0    /* native (driver) mode, else generic (SKB) mode */
#define IO_XDP_MODE_NATIVE 1
#define IO_XDP_MODE_GENERIC 2

/* Fill o with the defaults above. */
void io_opts_init(struct io_opts *o);

struct io_stats {
	uint64_t rx_pkts, rx_bytes;   /* frames handed to the engine (after segmentation) */
	uint64_t tx_pkts, tx_bytes;   /* frames queued to the kernel / collect ring */
	uint64_t rx_drops;            /* ring/kernel drops (PACKET_STATISTICS) */
	uint64_t tx_errors;           /* frames not sent (ring full, bad length, kernel rejects) */
	uint64_t gso_segmented;       /* super-frames split into MTU-sized segments */
	uint64_t gso_segments;        /* segments produced by those */
	uint64_t csum_filled;         /* partial L4 checksums completed (RX and TX) */
	uint64_t rx_too_big;          /* oversize frames that could not be segmented, or truncated */
	uint64_t rx_nobuf;            /* bursts cut short because the pool was empty */
};

#define IO_MTU_MIN 576
#define IO_MTU_MAX (PKT_DATA_ROOM - 22) /* Ethernet + two tags fit in the data room */
#define IO_TX_FRAME_MAX (PKT_HEADROOM + PKT_DATA_ROOM)

/* Open an AF_PACKET port on ifname (NULL o = defaults). On failure returns
 * NULL and writes a message into err. Needs CAP_NET_RAW (and CAP_NET_ADMIN
 * to bring the interface up / set promiscuous mode). */
struct io_port *io_open_afpacket(const char *ifname, const struct io_opts *o, char *err, size_t errlen);

/* The PACKET_FANOUT group an AF_PACKET port joined (opts.fanout), for the
 * other workers' sockets to join; 0 if none. */
uint16_t io_fanout_id(const struct io_port *p);
/* Does the port's fanout group spread flows by their owner (the eBPF
 * program), rather than by the kernel's own hash? */
bool io_fanout_steered(const struct io_port *p);

/* Open an AF_XDP port on ifname (NULL o = defaults): one UMEM shared by
 * one AF_XDP socket (copy mode) per bound RX queue (every queue, one
 * queue, or worker o->xdp_worker's share of o->xdp_workers), and an XDP
 * program (bpf/xsk_redirect.c, embedded) that redirects every queue's
 * frames to its socket; one io_port polls them all (io_fd is an epoll fd
 * when there are several queues). TX goes out through the socket of the
 * first bound queue. The program is attached through a BPF link (native
 * mode, else generic unless o->xdp_mode says otherwise) by the first port
 * of the process on the interface; the ports of other workers on the same
 * interface reuse it (whatever their xdp_mode), and it goes away with the
 * last of them or the process. Each port has its own UMEM, rings and
 * counters: the ports of different workers can be used concurrently
 * without locking; open and close may be called from any thread. On
 * failure (no permission, no such interface, no AF_XDP or XDP support,
 * another XDP program attached, the interface already open without
 * workers or for the same worker, fewer RX queues than workers) returns
 * NULL with a message in err: the caller may fall back to
 * io_open_afpacket. Needs CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF/CAP_SYS_ADMIN
 * (and CAP_IPC_LOCK for a UMEM over RLIMIT_MEMLOCK). */
struct io_port *io_open_afxdp(const char *ifname, const struct io_opts *o, char *err, size_t errlen);

/* Open an in-memory port with inject and collect rings of ring_size
 * frames each (rounded up to a power of two, at most 1<<20). MTU 1500. */
struct io_port *io_open_mem(const char *name, uint32_t ring_size);

/* Receive up to max frames into buffers from pool. Never blocks. Every
 * returned frame is complete: VLAN tag re-inserted, L4 checksum valid (a
 * frame whose partial checksum could not be completed keeps
 * PKT_F_CSUM_PARTIAL), IP packet <= mtu. Frames that needed checksum
 * completion come back parsed (PKT_F_PARSED). in_port is not set. When the
 * pool runs dry the burst stops and the rest stays queued. */
uint32_t io_rx_burst(struct io_port *p, struct pkt_pool *pool, struct pkt **out, uint32_t max);

/* Send n frames (data is copied; the CALLER frees the buffers afterwards).
 * One syscall per burst of up to BATCH_MAX (one more after each frame the
 * kernel refuses, e.g. too big: it is skipped, the rest still go). Frames
 * still flagged PKT_F_CSUM_PARTIAL
 * are re-parsed and their checksum completed first. Returns how many were
 * queued; the others are counted in tx_errors. */
uint32_t io_tx_burst(struct io_port *p, struct pkt **pkts, uint32_t n);

/* File descriptor that polls readable (POLLIN) when io_rx_burst has work.
 * Mem ports return an eventfd. */
int io_fd(const struct io_port *p);
const char *io_name(const struct io_port *p);
/* "afpacket", "afxdp" or "mem". */
const char *io_kind_name(const struct io_port *p);
/* Interface index; 0 for a mem port. */
int io_ifindex(const struct io_port *p);
/* Interface MAC (mem port: 02:00 + hash of the name). */
void io_mac(const struct io_port *p, struct mac *out);
uint16_t io_mtu(const struct io_port *p);
/* Change the MTU (IO_MTU_MIN..IO_MTU_MAX); false if out of range. */
bool io_set_mtu(struct io_port *p, uint16_t mtu);

/* After poll() reported an error on io_fd(): clears the socket's pending
 * error and says whether the interface still exists (the same one). A port
 * whose interface is gone must be closed (and opened again later). */
bool io_check_alive(struct io_port *p);

/* Snapshot of the counters (any thread). */
void io_get_stats(struct io_port *p, struct io_stats *st);
/* Close the port; NULL is ignored. Pending GSO segments go back to their pool. */
void io_close(struct io_port *p);

/* ---- memory backend only (abort-free: wrong port type returns failure) ---- */

/* Offload state of an injected frame, as the kernel would report it. */
#define IO_MEM_CSUM_PARTIAL (1u << 0) /* L4 checksum to be completed */
#define IO_MEM_VLAN (1u << 1)         /* tag stripped: re-insert vlan_tci with TPID 0x8100 */

/* Queue a frame on the RX side (copied; up to 256 KiB). False if the ring
 * is full or the frame too long. */
bool io_mem_inject(struct io_port *p, const uint8_t *frame, size_t len);
bool io_mem_inject_ex(struct io_port *p, const uint8_t *frame, size_t len, uint32_t flags,
		      uint16_t vlan_tci);
/* Frames waiting on the RX side / collected on the TX side. */
uint32_t io_mem_rx_pending(const struct io_port *p);
uint32_t io_mem_tx_pending(const struct io_port *p);
/* Take the oldest sent frame: returns its length and copies
 * MIN(len, room) bytes into buf; 0 when nothing was sent. */
size_t io_mem_take(struct io_port *p, uint8_t *buf, size_t room);
/* Benchmark mode: while set (n > 0), io_rx_burst returns copies of
 * frames[0..n) in a loop, forever, with no syscall; the arrays are the
 * caller's and must stay valid. n = 0 turns it off. Injected frames are
 * not touched. */
bool io_mem_set_replay(struct io_port *p, const uint8_t *const *frames, const uint32_t *lens, uint32_t n);
/* When set, io_tx_burst counts frames and discards them (no collect ring). */
bool io_mem_set_tx_discard(struct io_port *p, bool discard);

#endif

/* io_afpacket.c - AF_PACKET port backend for a Linux interface in the
 * current network namespace.
 *
 * RX: one SOCK_RAW/ETH_P_ALL socket bound to the interface with a
 * TPACKET_V3 mmap ring (variable-size frames packed in blocks). A burst
 * walks the current block from a cursor and may stop in the middle of it;
 * a block goes back to the kernel once every frame in it is consumed.
 * PACKET_IGNORE_OUTGOING hides our own transmissions. Offload artefacts
 * (TP_STATUS_CSUMNOTREADY, GSO super-frames, stripped VLAN tag) are
 * repaired by io_rx_frame().
 * TX: a second socket (protocol 0: it receives nothing); a burst is one
 * sendmmsg() that copies the frames, PACKET_QDISC_BYPASS. (A TPACKET TX
 * ring hands the kernel frames in its pages: every frame that a veth
 * delivers to a local socket is then copied again into newly allocated
 * pages (skb_copy_ubufs), which made a frame through an nsh node cost
 * 10-15% more data-plane CPU in bench/system than the plain copy.)
 *
 * Several workers: each opens its own port on the interface and the RX
 * sockets join one PACKET_FANOUT group. The group runs the eBPF program
 * bpf/steer.c (steer_bpf.h), which hands
 * each worker the frames of the flows it owns (steer_bpf.h); where it cannot
 * be loaded, the kernel's symmetric flow hash (PACKET_FANOUT_HASH) does,
 * and the workers hand frames over among themselves.
 *
 * Owns: both sockets and rings. Must not: change
 * interface settings other than IFF_UP and promiscuous membership (which
 * dies with the socket). */
#include "io_int.h"
#include "steer_bpf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

struct afp_port {
	struct io_port port;
	/* RX (TPACKET_V3) */
	uint8_t *rx_ring;
	size_t rx_ring_len;
	uint32_t blk_size, blk_nr, blk_cur;
	uint8_t *cur_pkt;   /* next frame header in the current block, NULL = block not open */
	uint32_t cur_left;  /* frames left in the current block */
	bool vnet;          /* frames carry a virtio-net header (PACKET_VNET_HDR) */
	uint16_t fanout_id; /* PACKET_FANOUT group joined; 0 = none */
	bool fanout_steered; /* ... run by bpf/steer.c (else the kernel's hash) */
	/* TX */
	int tx_fd;
	/* kernel drop counter, accumulated (the socket option resets it) */
	uint64_t drops;
};

static uint32_t status_load(const volatile uint32_t *s)
{
	return __atomic_load_n((const uint32_t *)s, __ATOMIC_ACQUIRE);
}

static void status_store(volatile uint32_t *s, uint32_t v)
{
	__atomic_store_n((uint32_t *)s, v, __ATOMIC_RELEASE);
}

static void block_release(struct afp_port *a, struct tpacket_block_desc *bd)
{
	status_store(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL);
	a->cur_pkt = NULL;
	a->cur_left = 0;
	a->blk_cur = a->blk_cur + 1 == a->blk_nr ? 0 : a->blk_cur + 1;
}

static uint32_t afp_rx_burst(struct io_port *p, struct pkt_pool *pool, struct pkt **out, uint32_t max)
{
	struct afp_port *a = (struct afp_port *)p;
	uint32_t n = 0;
	if (p->pend_n)
		io_pend_drain(p, out, &n, max);
	while (n < max && p->pend_n == 0) {
		uint8_t *blk = a->rx_ring + (size_t)a->blk_cur * a->blk_size;
		struct tpacket_block_desc *bd = (struct tpacket_block_desc *)(void *)blk;
		if (!a->cur_pkt) {
			if (!(status_load(&bd->hdr.bh1.block_status) & TP_STATUS_USER))
				break;
			uint32_t first = bd->hdr.bh1.offset_to_first_pkt;
			a->cur_left = bd->hdr.bh1.num_pkts;
			if (a->cur_left == 0 || first < sizeof(*bd) || first >= a->blk_size) {
				block_release(a, bd);
				continue;
			}
			a->cur_pkt = blk + first;
		}
		struct tpacket3_hdr *h = (struct tpacket3_hdr *)(void *)a->cur_pkt;
		size_t hoff = (size_t)(a->cur_pkt - blk);
		uint32_t st = h->tp_status;
		uint32_t snap = h->tp_snaplen;
		size_t mac = h->tp_mac;
		if (hoff + mac + snap > a->blk_size) {
			/* corrupt descriptor: give the block back */
			IO_STAT_ADD(p, rx_too_big, 1);
			block_release(a, bd);
			continue;
		}
		if (snap < h->tp_len) {
			/* truncated by the ring (bigger than a block) */
			IO_STAT_ADD(p, rx_too_big, 1);
		} else {
			struct io_rxinfo ri = {0};
			if (st & TP_STATUS_CSUMNOTREADY)
				ri.flags |= IO_RX_CSUM_PARTIAL;
			if (a->vnet && mac >= sizeof(struct tpacket3_hdr) + sizeof(struct virtio_net_hdr)) {
				/* the sender's segment size: GSO frames are cut as it asked */
				struct virtio_net_hdr vh;
				memcpy(&vh, a->cur_pkt + mac - sizeof(vh), sizeof(vh));
				if ((vh.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) == VIRTIO_NET_HDR_GSO_TCPV4 ||
				    (vh.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) == VIRTIO_NET_HDR_GSO_TCPV6)
					ri.gso_size = vh.gso_size;
				if (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
					ri.flags |= IO_RX_CSUM_PARTIAL;
			}
			if (st & TP_STATUS_VLAN_VALID) {
				ri.flags |= IO_RX_VLAN;
				ri.vlan_tci = h->hv1.tp_vlan_tci;
				ri.vlan_tpid = (st & TP_STATUS_VLAN_TPID_VALID) && h->hv1.tp_vlan_tpid
						       ? h->hv1.tp_vlan_tpid : 0x8100;
			}
			if (io_rx_frame(p, pool, a->cur_pkt + mac, snap, &ri, out, &n, max) == IO_RX_AGAIN)
				break;
		}
		if (--a->cur_left == 0 || h->tp_next_offset == 0 ||
		    hoff + h->tp_next_offset >= a->blk_size)
			block_release(a, bd);
		else
			a->cur_pkt += h->tp_next_offset;
	}
	return n;
}

static uint32_t afp_tx_burst(struct io_port *p, struct pkt **pkts, uint32_t n)
{
	struct afp_port *a = (struct afp_port *)p;
	struct mmsghdr msg[BATCH_MAX];
	struct iovec iov[BATCH_MAX];
	uint32_t sent = 0, errors = 0;
	uint64_t bytes = 0;
	while (n) {
		uint32_t m = MIN(n, (uint32_t)BATCH_MAX);
		for (uint32_t i = 0; i < m; i++) {
			struct pkt *pkt = pkts[i];
			if (pkt->flags & PKT_F_CSUM_PARTIAL)
				io_tx_fix(p, pkt);
			iov[i] = (struct iovec){.iov_base = pkt->data, .iov_len = pkt->len};
			msg[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
		}
		uint32_t done = 0;
		while (done < m) {
			int r = sendmmsg(a->tx_fd, msg + done, m - done, MSG_DONTWAIT);
			if (r > 0) {
				for (int i = 0; i < r; i++)
					bytes += iov[done + (uint32_t)i].iov_len;
				done += (uint32_t)r;
				sent += (uint32_t)r;
				continue;
			}
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
				errors += m - done; /* the device is full: dropped, counted */
				done = m;
				break;
			}
			errors++; /* this frame is refused (too big, interface down): skip it */
			done++;
		}
		pkts += m;
		n -= m;
	}
	IO_STAT_ADD(p, tx_pkts, sent);
	IO_STAT_ADD(p, tx_bytes, bytes);
	if (errors)
		IO_STAT_ADD(p, tx_errors, errors);
	return sent;
}

static void afp_stats(struct io_port *p, struct io_stats *st)
{
	struct afp_port *a = (struct afp_port *)p;
	struct tpacket_stats_v3 ks;
	socklen_t l = sizeof(ks);
	memset(&ks, 0, sizeof(ks));
	if (getsockopt(p->fd, SOL_PACKET, PACKET_STATISTICS, &ks, &l) == 0)
		__atomic_fetch_add(&a->drops, ks.tp_drops, __ATOMIC_RELAXED);
	st->rx_drops += __atomic_load_n(&a->drops, __ATOMIC_RELAXED);
}

static void afp_close(struct io_port *p)
{
	struct afp_port *a = (struct afp_port *)p;
	if (a->rx_ring && a->rx_ring != MAP_FAILED)
		munmap(a->rx_ring, a->rx_ring_len);
	if (p->fd >= 0)
		close(p->fd);
	if (a->tx_fd >= 0)
		close(a->tx_fd);
	free(a);
}

static const struct io_ops afp_ops = {
	.rx_burst = afp_rx_burst,
	.tx_burst = afp_tx_burst,
	.stats = afp_stats,
	.close = afp_close,
};

static bool is_pow2(uint32_t v) { return v && !(v & (v - 1)); }

/* Interface index, MAC, and IFF_UP (set if asked). */
static int rx_setup(struct afp_port *a, const struct io_opts *o, bool promisc, char *err, size_t errlen)
{
	int fd = a->port.fd;
	int v = TPACKET_V3;
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0) {
		set_err(err, errlen, "%s: TPACKET_V3: %s", a->port.name, strerror(errno));
		return -1;
	}
	/* a virtio-net header before each frame gives the GSO segment size
	 * (older kernels refuse it with a ring: frames are then cut at the MTU) */
	v = 1;
	a->vnet = setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &v, sizeof(v)) == 0;
	struct tpacket_req3 req;
	memset(&req, 0, sizeof(req));
	req.tp_block_size = o->rx_block_size;
	req.tp_block_nr = o->rx_block_nr;
	req.tp_frame_size = 2048;
	req.tp_frame_nr = (o->rx_block_size / 2048) * o->rx_block_nr;
	req.tp_retire_blk_tov = o->rx_block_tov_ms ? o->rx_block_tov_ms : 1;
	if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0) {
		set_err(err, errlen, "%s: RX ring (%u x %u): %s", a->port.name, o->rx_block_nr,
		       o->rx_block_size, strerror(errno));
		return -1;
	}
	a->blk_size = o->rx_block_size;
	a->blk_nr = o->rx_block_nr;
	a->rx_ring_len = (size_t)a->blk_size * a->blk_nr;
	a->rx_ring = mmap(NULL, a->rx_ring_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (a->rx_ring == MAP_FAILED) {
		a->rx_ring = NULL;
		set_err(err, errlen, "%s: mmap RX ring: %s", a->port.name, strerror(errno));
		return -1;
	}
	v = 1;
	if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &v, sizeof(v)) < 0) {
		set_err(err, errlen, "%s: PACKET_IGNORE_OUTGOING: %s", a->port.name, strerror(errno));
		return -1;
	}
	struct sockaddr_ll sll;
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = a->port.ifindex;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		set_err(err, errlen, "%s: bind: %s", a->port.name, strerror(errno));
		return -1;
	}
	if (o->fanout) {
		/* flows spread over the workers' sockets: by their owner (the
		 * eBPF program), else by the kernel's symmetric hash */
		int prog = steer_bpf_prog(STEER_BPF_FANOUT, o->fanout_workers);
		int type = prog >= 0 ? PACKET_FANOUT_EBPF : PACKET_FANOUT_HASH;
		int arg = (o->fanout_id ? o->fanout_id : 0) | (type << 16) |
			  (o->fanout_id ? 0 : (PACKET_FANOUT_FLAG_UNIQUEID << 16));
		if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg)) < 0) {
			set_err(err, errlen, "%s: PACKET_FANOUT: %s", a->port.name, strerror(errno));
			return -1;
		}
		if (prog >= 0 && !o->fanout_id &&
		    setsockopt(fd, SOL_PACKET, PACKET_FANOUT_DATA, &prog, sizeof(prog)) < 0) {
			set_err(err, errlen, "%s: PACKET_FANOUT_DATA: %s", a->port.name, strerror(errno));
			return -1;
		}
		a->fanout_steered = prog >= 0;
		socklen_t len = sizeof(arg);
		if (getsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, &len) < 0) {
			set_err(err, errlen, "%s: PACKET_FANOUT: %s", a->port.name, strerror(errno));
			return -1;
		}
		a->fanout_id = (uint16_t)(arg & 0xffff);
	}
	if (promisc) {
		struct packet_mreq mr;
		memset(&mr, 0, sizeof(mr));
		mr.mr_ifindex = a->port.ifindex;
		mr.mr_type = PACKET_MR_PROMISC;
		if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
			set_err(err, errlen, "%s: promiscuous mode: %s", a->port.name, strerror(errno));
			return -1;
		}
	}
	/* Not needed by the ring itself; keeps any non-ring path roomy. */
	v = 4 << 20;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v));
	return 0;
}

static int tx_setup(struct afp_port *a, const struct io_opts *o, char *err, size_t errlen)
{
	a->tx_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (a->tx_fd < 0) {
		set_err(err, errlen, "%s: TX socket: %s", a->port.name, strerror(errno));
		return -1;
	}
	int fd = a->tx_fd;
	int v = 1;
	if (!o->no_qdisc_bypass)
		(void)setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &v, sizeof(v));
	v = 8 << 20;
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v));
	struct sockaddr_ll sll;
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = 0; /* receive nothing on this socket */
	sll.sll_ifindex = a->port.ifindex;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		set_err(err, errlen, "%s: TX bind: %s", a->port.name, strerror(errno));
		return -1;
	}
	return 0;
}

struct io_port *io_open_afpacket(const char *ifname, const struct io_opts *o, char *err, size_t errlen)
{
	struct io_opts def;
	if (!(o = io_open_check(ifname, o, &def, err, errlen)))
		return NULL;
	long pg = sysconf(_SC_PAGESIZE);
	if (pg <= 0)
		pg = 4096;
	if (!is_pow2(o->rx_block_size) || o->rx_block_size < (uint32_t)pg || o->rx_block_size > (64u << 20) ||
	    o->rx_block_nr == 0 || o->rx_block_nr > 4096) {
		set_err(err, errlen, "%s: bad ring sizes (RX block %u x %u)", ifname, o->rx_block_size,
		       o->rx_block_nr);
		return NULL;
	}
	struct afp_port *a = calloc(1, sizeof(*a));
	if (!a) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	io_port_init(&a->port, &afp_ops, IO_KIND_AFPACKET, ifname);
	a->port.mtu = o->mtu;
	a->tx_fd = -1;
	a->port.fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (a->port.fd < 0) {
		set_err(err, errlen, "%s: AF_PACKET socket: %s", ifname, strerror(errno));
		afp_close(&a->port);
		return NULL;
	}
	if (io_if_setup(&a->port, a->port.fd, ifname, !o->no_ifup, err, errlen) < 0 ||
	    rx_setup(a, o, !o->no_promisc, err, errlen) < 0 || tx_setup(a, o, err, errlen) < 0) {
		afp_close(&a->port);
		return NULL;
	}
	return &a->port;
}

uint16_t io_fanout_id(const struct io_port *p)
{
	return p && p->kind == IO_KIND_AFPACKET ? ((const struct afp_port *)p)->fanout_id : 0;
}

bool io_fanout_steered(const struct io_port *p)
{
	return p && p->kind == IO_KIND_AFPACKET && ((const struct afp_port *)p)->fanout_steered;
}

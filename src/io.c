/* io.c - the generic half of port I/O: dispatch to the backend, counters,
 * and the RX repair shared by every backend (VLAN tag re-insertion, partial
 * checksum completion, software segmentation of GSO super-frames).
 *
 * Owns: struct io_port's common fields and io_rx_frame().
 * Must not: touch sockets or rings (backends do), set in_port, or keep a
 * frame larger than PKT_DATA_ROOM in a packet buffer. */
#include "io_int.h"

#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <stdio.h>

#include "wire.h"

void io_opts_init(struct io_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->rx_block_size = 256 * 1024;
	o->rx_block_nr = 32;
	o->rx_block_tov_ms = 1;
	o->mtu = 1500;
}

void io_port_init(struct io_port *p, const struct io_ops *ops, enum io_kind kind, const char *name)
{
	p->ops = ops;
	p->kind = kind;
	p->fd = -1;
	p->ifindex = 0;
	p->mtu = 1500;
	snprintf(p->name, sizeof(p->name), "%s", name ? name : "");
}

uint32_t io_rx_burst(struct io_port *p, struct pkt_pool *pool, struct pkt **out, uint32_t max)
{
	return p->ops->rx_burst(p, pool, out, max);
}

uint32_t io_tx_burst(struct io_port *p, struct pkt **pkts, uint32_t n)
{
	return p->ops->tx_burst(p, pkts, n);
}

int io_fd(const struct io_port *p) { return p->fd; }
const char *io_name(const struct io_port *p) { return p->name; }
int io_ifindex(const struct io_port *p) { return p->ifindex; }
void io_mac(const struct io_port *p, struct mac *out) { *out = p->mac; }
uint16_t io_mtu(const struct io_port *p) { return p->mtu; }

bool io_set_mtu(struct io_port *p, uint16_t mtu)
{
	if (mtu < IO_MTU_MIN || mtu > IO_MTU_MAX)
		return false;
	p->mtu = mtu;
	return true;
}

void io_get_stats(struct io_port *p, struct io_stats *st)
{
#define LD(f) st->f = __atomic_load_n(&p->st.f, __ATOMIC_RELAXED)
	LD(rx_pkts);
	LD(rx_bytes);
	LD(tx_pkts);
	LD(tx_bytes);
	LD(rx_drops);
	LD(tx_errors);
	LD(gso_segmented);
	LD(gso_segments);
	LD(csum_filled);
	LD(rx_too_big);
	LD(rx_nobuf);
#undef LD
	if (p->ops->stats)
		p->ops->stats(p, st);
}

void io_close(struct io_port *p)
{
	if (!p)
		return;
	if (p->pend_n && p->pend_pool) {
		for (uint32_t i = 0; i < p->pend_n; i++)
			pkt_free(p->pend_pool, p->pend[p->pend_head + i]);
	}
	p->pend_n = 0;
	p->ops->close(p);
}

void io_pend_drain(struct io_port *p, struct pkt **out, uint32_t *n, uint32_t max)
{
	uint32_t k = p->pend_n;
	if (k > max - *n)
		k = max - *n;
	uint64_t bytes = 0;
	for (uint32_t i = 0; i < k; i++) {
		struct pkt *s = p->pend[p->pend_head + i];
		bytes += s->len;
		out[(*n)++] = s;
	}
	p->pend_head += k;
	p->pend_n -= k;
	if (p->pend_n == 0)
		p->pend_head = 0;
	if (k) {
		IO_STAT_ADD(p, rx_pkts, k);
		IO_STAT_ADD(p, rx_bytes, bytes);
	}
}

/* Put a stripped 802.1Q tag back behind the MAC addresses. */
static bool vlan_insert(struct pkt *pkt, uint16_t tpid, uint16_t tci)
{
	if (pkt->len < 12)
		return false;
	uint8_t *d = pkt_push(pkt, 4);
	if (!d)
		return false;
	memmove(d, d + 4, 12);
	wr16(d + 12, tpid);
	wr16(d + 14, tci);
	return true;
}

/* Length of the L2 header present in the frame (Ethernet plus the tags the
 * kernel left in place); 0 if the frame is shorter than that. */
static uint32_t l2_len(const uint8_t *f, uint32_t len)
{
	uint32_t off = 12;
	for (int i = 0; i < 4; i++) {
		if (off + 2 > len)
			return 0;
		uint16_t t = rd16(f + off);
		if (t != ETH_P_VLAN && t != ETH_P_QINQ)
			return off + 2 <= len ? off + 2 : 0;
		off += 4;
	}
	return off + 2 <= len ? off + 2 : 0;
}

static enum io_rx_res rx_single(struct io_port *p, struct pkt_pool *pool, const uint8_t *frame, uint32_t len,
				const struct io_rxinfo *ri, struct pkt **out, uint32_t *n);

static enum io_rx_res rx_oversize(struct io_port *p, struct pkt_pool *pool, const uint8_t *frame,
				  uint32_t len, uint32_t l3len, const struct io_rxinfo *ri, struct pkt **out,
				  uint32_t *n, uint32_t max)
{
	/* Rough upper bound of the segments needed (worst-case headers). */
	uint32_t mss_min = (uint32_t)p->mtu - 120;
	uint32_t need = l3len / mss_min + 1;
	if (*n > 0 && pkt_pool_avail(pool) < need) {
		IO_STAT_ADD(p, rx_nobuf, 1);
		return IO_RX_AGAIN;
	}
	/* cut where the sender asked (its MSS, after path MTU discovery),
	 * never above the port MTU */
	uint32_t seg_mtu = p->mtu;
	if (ri->gso_size) {
		struct pkt_layout lay;
		struct flow_key key = {0};
		if (wire_parse_buf(frame, len, &lay, &key) == DROP_NONE && lay.l4proto == IPPROTO_TCP &&
		    lay.payload != PKT_OFF_NONE) {
			uint32_t hdrs = (uint32_t)(lay.payload - lay.l3);
			if (len - lay.payload <= ri->gso_size && l3len <= p->mtu && len <= PKT_DATA_ROOM)
				return rx_single(p, pool, frame, len, ri, out, n); /* one segment's worth */
			seg_mtu = MIN(seg_mtu, hdrs + ri->gso_size);
		} else if (l3len <= p->mtu && len <= PKT_DATA_ROOM) {
			return rx_single(p, pool, frame, len, ri, out, n);
		}
	}
	int r = wire_tcp_segment(frame, len, (uint16_t)seg_mtu, pool, p->pend, IO_GSO_MAX_SEGS);
	if (r <= 0) {
		if (r == 0 || r == -(int)DROP_POOL_EMPTY) {
			IO_STAT_ADD(p, rx_nobuf, 1);
			/* retry later unless nothing can be returned now */
			return *n > 0 ? IO_RX_AGAIN : IO_RX_DONE;
		}
		IO_STAT_ADD(p, rx_too_big, 1);
		return IO_RX_DONE;
	}
	uint32_t k = (uint32_t)r;
	if (k > IO_GSO_MAX_SEGS)
		k = IO_GSO_MAX_SEGS;
	for (uint32_t i = 0; i < k; i++) {
		struct pkt *s = p->pend[i];
		if (ri->flags & IO_RX_VLAN) {
			vlan_insert(s, ri->vlan_tpid, ri->vlan_tci);
			s->flags &= ~PKT_F_PARSED; /* offsets moved */
		}
		s->flags &= ~PKT_F_CSUM_PARTIAL; /* segments carry full checksums */
	}
	p->pend_pool = pool;
	p->pend_head = 0;
	p->pend_n = k;
	IO_STAT_ADD(p, gso_segmented, 1);
	IO_STAT_ADD(p, gso_segments, k);
	io_pend_drain(p, out, n, max);
	return IO_RX_DONE;
}

enum io_rx_res io_rx_frame(struct io_port *p, struct pkt_pool *pool, const uint8_t *frame, uint32_t len,
			   const struct io_rxinfo *ri, struct pkt **out, uint32_t *n, uint32_t max)
{
	uint32_t l2 = l2_len(frame, len);
	uint32_t l3len = l2 ? len - l2 : 0;
	if (unlikely(l3len > p->mtu || len > PKT_DATA_ROOM || ri->gso_size))
		return rx_oversize(p, pool, frame, len, l3len, ri, out, n, max);
	return rx_single(p, pool, frame, len, ri, out, n);
}

/* A frame that is one packet: copied into a buffer, repaired. */
static enum io_rx_res rx_single(struct io_port *p, struct pkt_pool *pool, const uint8_t *frame, uint32_t len,
				const struct io_rxinfo *ri, struct pkt **out, uint32_t *n)
{
	struct pkt *pkt = pkt_alloc(pool);
	if (unlikely(!pkt)) {
		IO_STAT_ADD(p, rx_nobuf, 1);
		return IO_RX_AGAIN;
	}
	memcpy(pkt->data, frame, len);
	pkt->len = len;
	if (ri->flags & IO_RX_VLAN)
		vlan_insert(pkt, ri->vlan_tpid, ri->vlan_tci);
	if (ri->flags & IO_RX_CSUM_PARTIAL) {
		pkt->flags |= PKT_F_CSUM_PARTIAL;
		if (wire_parse(pkt) == DROP_NONE && wire_l4_csum_fill(pkt)) {
			pkt->flags &= ~PKT_F_CSUM_PARTIAL;
			IO_STAT_ADD(p, csum_filled, 1);
		}
	}
	out[(*n)++] = pkt;
	IO_STAT_ADD(p, rx_pkts, 1);
	IO_STAT_ADD(p, rx_bytes, pkt->len);
	return IO_RX_DONE;
}

void io_tx_fix(struct io_port *p, struct pkt *pkt)
{
	if (wire_parse(pkt) == DROP_NONE && wire_l4_csum_fill(pkt)) {
		pkt->flags &= ~PKT_F_CSUM_PARTIAL;
		IO_STAT_ADD(p, csum_filled, 1);
	}
}

const char *io_kind_name(const struct io_port *p)
{
	switch (p->kind) {
	case IO_KIND_MEM: return "mem";
	case IO_KIND_AFPACKET: return "afpacket";
	case IO_KIND_AFXDP: return "afxdp";
	}
	return "?";
}

/* Interface index and MAC into p (through fd, any socket), and IFF_UP if asked. */
int io_if_setup(struct io_port *p, int fd, const char *ifname, bool up, char *err, size_t errlen)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) {
		set_err(err, errlen, "%s: no such interface (%s)", ifname, strerror(errno));
		return -1;
	}
	p->ifindex = ifr.ifr_ifindex;
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
		set_err(err, errlen, "%s: cannot read MAC address: %s", ifname, strerror(errno));
		return -1;
	}
	if (ifr.ifr_hwaddr.sa_family != 1 /* ARPHRD_ETHER */) {
		set_err(err, errlen, "%s: not an Ethernet interface", ifname);
		return -1;
	}
	memcpy(p->mac.b, ifr.ifr_hwaddr.sa_data, 6);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		set_err(err, errlen, "%s: cannot read flags: %s", ifname, strerror(errno));
		return -1;
	}
	if (up && !(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) {
			set_err(err, errlen, "%s: cannot bring the interface up: %s", ifname, strerror(errno));
			return -1;
		}
	}
	return 0;
}

const struct io_opts *io_open_check(const char *ifname, const struct io_opts *o, struct io_opts *def, char *err,
				    size_t errlen)
{
	if (!o) {
		io_opts_init(def);
		o = def;
	}
	if (!ifname || !*ifname || strlen(ifname) >= IFNAMSIZ) {
		set_err(err, errlen, "bad interface name");
		return NULL;
	}
	if (o->mtu < IO_MTU_MIN || o->mtu > IO_MTU_MAX) {
		set_err(err, errlen, "%s: mtu %u out of range %u..%u", ifname, o->mtu, IO_MTU_MIN, IO_MTU_MAX);
		return NULL;
	}
	return o;
}

bool io_check_alive(struct io_port *p)
{
	int e = 0;
	socklen_t len = sizeof(e);
	if (p->fd >= 0)
		(void)getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &e, &len); /* clears a pending error */
	if (p->kind == IO_KIND_MEM)
		return true;
	return if_nametoindex(p->name) == (unsigned)p->ifindex;
}

/* xsk_redirect.c - the XDP programs of the AF_XDP port backend
 * (src/io_afxdp.c embeds the compiled object).
 *
 * xsk_redirect (guest and node ports): every frame that arrives on an RX
 * queue with an AF_XDP socket in the XSKMAP entry of that queue is
 * redirected to the socket; a queue without a socket passes its frames to
 * the kernel stack (XDP_PASS, the flags argument of bpf_redirect_map).
 *
 * xsk_geneve (the underlay uplink): only unfragmented UDP datagrams to the
 * address and port in "geneve_to" (the VTEP, 6081), in an IPv4 packet
 * without options' surprises or an IPv6 packet whose next header is UDP,
 * untagged, are redirected; everything else (ARP, neighbour discovery,
 * fragments, the host's other traffic) goes on to the kernel stack.
 *
 * Owns: the maps "xsks" (queue index -> AF_XDP socket) and "geneve_to"
 * (one entry, written by the loader before the program is attached).
 * Must not: change frame contents. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64); /* resized by the loader to the queue count */
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

/* The address (IPv4-mapped for IPv4) and UDP port, both network order. */
struct geneve_to {
	__u8 addr[16];
	__u16 port;
	__u16 v4;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct geneve_to);
} geneve_to SEC(".maps");

SEC("xdp")
int xsk_redirect(struct xdp_md *ctx)
{
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

static __always_inline int same16(const __u8 *a, const __u8 *b)
{
	__u64 a0, a1, b0, b1;
	__builtin_memcpy(&a0, a, 8);
	__builtin_memcpy(&a1, a + 8, 8);
	__builtin_memcpy(&b0, b, 8);
	__builtin_memcpy(&b1, b + 8, 8);
	return a0 == b0 && a1 == b1;
}

SEC("xdp")
int xsk_geneve(struct xdp_md *ctx)
{
	const __u8 *d = (const __u8 *)(long)ctx->data, *end = (const __u8 *)(long)ctx->data_end;
	__u32 zero = 0;
	const struct geneve_to *to = bpf_map_lookup_elem(&geneve_to, &zero);
	if (!to || d + 14 > end)
		return XDP_PASS;
	__u16 type = (__u16)(d[12] << 8 | d[13]);
	const __u8 *udp;
	if (type == ETH_P_IP && to->v4) {
		const __u8 *ip = d + 14;
		if (ip + 20 > end || (ip[0] >> 4) != 4 || ip[9] != IPPROTO_UDP)
			return XDP_PASS;
		if (((ip[6] & 0x3f) | ip[7]) != 0) /* MF or an offset: the kernel reassembles */
			return XDP_PASS;
		__u32 dst, want;
		__builtin_memcpy(&dst, ip + 16, 4);
		__builtin_memcpy(&want, to->addr + 12, 4);
		if (dst != want)
			return XDP_PASS;
		udp = ip + (ip[0] & 0x0f) * 4;
	} else if (type == ETH_P_IPV6 && !to->v4) {
		const __u8 *ip = d + 14;
		if (ip + 40 > end || (ip[0] >> 4) != 6 || ip[6] != IPPROTO_UDP || !same16(ip + 24, to->addr))
			return XDP_PASS;
		udp = ip + 40;
	} else {
		return XDP_PASS;
	}
	if (udp + 8 > end)
		return XDP_PASS;
	__u16 dport;
	__builtin_memcpy(&dport, udp + 2, 2);
	if (dport != to->port)
		return XDP_PASS;
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";

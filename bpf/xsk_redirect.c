/* xsk_redirect.c - the XDP program of the AF_XDP port backend
 * (src/io_afxdp.c embeds the compiled object).
 *
 * Every frame that arrives on an RX queue with an AF_XDP socket in the
 * XSKMAP entry of that queue is redirected to the socket; a queue without
 * a socket passes its frames to the kernel stack (XDP_PASS, the flags
 * argument of bpf_redirect_map).
 *
 * Owns: the map "xsks" (queue index -> AF_XDP socket). Must not: look at
 * or change frame contents. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64); /* resized by the loader to the queue count */
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

SEC("xdp")
int xsk_redirect(struct xdp_md *ctx)
{
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";

/* steer_bpf.h - the kernel's side of steer.h: the eBPF programs of
 * bpf/steer.c (embedded at build time) that compute the owner worker of a
 * frame where the kernel spreads frames over the workers' sockets:
 *   - STEER_BPF_FANOUT: PACKET_FANOUT_EBPF of AF_PACKET ports (the frame
 *     from its network header, the Ethernet type in skb->protocol);
 *   - STEER_BPF_REUSEPORT: SO_ATTACH_REUSEPORT_EBPF of the underlay's
 *     receive sockets (the UDP payload: Geneve).
 * Loaded once per process, for one number of workers.
 * Owns: the BPF object. Must not: be used on the per-packet path. */
#ifndef DETOUR_STEER_BPF_H
#define DETOUR_STEER_BPF_H

#include <stdint.h>

enum steer_bpf_prog { STEER_BPF_FANOUT, STEER_BPF_REUSEPORT };

/* The program's fd for n workers (n >= 2), or -1 when it cannot be had
 * (no BPF permission, n < 2, or a different n than the first call). */
int steer_bpf_prog(enum steer_bpf_prog which, uint16_t n);

#endif

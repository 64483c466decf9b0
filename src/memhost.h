/* memhost.h - one host's datapath with in-memory ports and emulated service
 * nodes (sn_emul): frames sent by guests run to completion, through the
 * node reflections, and what reaches guest ports is kept for inspection.
 * For unit tests and the pipeline benchmark; no system call anywhere.
 * Owns its datapath and queues; never used by the daemon. */
#ifndef DETOUR_MEMHOST_H
#define DETOUR_MEMHOST_H

#include "datapath.h"

#define MEMHOST_KEEP 64 /* frames kept per guest port */

struct memhost;

/* From YAML text; NULL (errors printed to stderr) when invalid. */
struct memhost *memhost_create(const char *yaml, const char *host, uint32_t ct_capacity);
void memhost_destroy(struct memhost *m);
/* Apply a new topology as a reload does (the counters restart when the
 * number of ports or nodes changes). False if it is invalid. */
bool memhost_reload(struct memhost *m, const char *yaml);
struct datapath *memhost_dp(struct memhost *m);
struct hostcfg *memhost_cfg(struct memhost *m);

/* Receive n frames on local port `port` (one batch per BATCH_MAX) and run
 * everything to completion. Returns false if the pool ran dry. */
bool memhost_rx(struct memhost *m, uint16_t port, const uint8_t *const *frames, const uint32_t *lens, uint32_t n);
/* Receive Geneve payloads from another host (as the underlay would). */
bool memhost_rx_tunnel(struct memhost *m, const uint8_t *const *payloads, const uint32_t *lens, uint32_t n);
/* Take up to max Geneve payloads this host sent, with their VTEPs. The
 * pointers stay valid until the next call into this memhost. */
uint32_t memhost_outbox(struct memhost *m, const uint8_t **payloads, uint32_t *lens, struct ipaddr *dst, uint32_t max);
/* Frames delivered to a port (guest or, when node emulation is off, node). */
uint64_t memhost_delivered(const struct memhost *m, uint16_t port);
/* Take the oldest kept frame of a port: its length, 0 if none. */
size_t memhost_take(struct memhost *m, uint16_t port, uint8_t *buf, size_t room);
/* With emulation off, frames sent to node ports are kept like guest frames. */
void memhost_emulate_nodes(struct memhost *m, bool on);
/* Packets each node saw (sent to it by the datapath). */
uint64_t memhost_node_seen(const struct memhost *m, uint16_t node);
/* Keep (copy) delivered frames, or only count them (benchmark). */
void memhost_keep_frames(struct memhost *m, bool on);

struct steer;
/* Several memhosts as the workers of one host (steer.h): the frames
 * memhost_rx receives that another worker owns are handed to it (when its
 * ring is full, memhost_rx runs what was handed here and tries again;
 * after many tries the rest is dropped as DROP_STEER_FULL); memhost_poll
 * runs those handed to this one and returns how many. */
void memhost_set_worker(struct memhost *m, struct steer *s, uint16_t id);
uint32_t memhost_poll(struct memhost *m);

#endif

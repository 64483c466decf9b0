/* sn_emul.h - in-memory stand-ins for service nodes, for unit tests and
 * the pipeline benchmark: what a real node does with a frame the datapath
 * sends to its port, without a kernel in between.
 *   nsh: decrement SI, swap MACs, send back;  l2: the same frame out of
 *   the other port;  l3: route back (dst = proxy MAC, src = node MAC).
 * Owns nothing; never used by the daemon. */
#ifndef DETOUR_SN_EMUL_H
#define DETOUR_SN_EMUL_H

#include "hostcfg.h"

/* frame[0..len) was sent on local node port `port`; rewrite it in place as
 * the node would return it and give the port it comes back on (PORT_NONE
 * if the port is not a node port or the frame is not what the node takes). */
uint16_t sn_emul_reflect(const struct hostcfg *hc, uint16_t port, uint8_t *frame, size_t len);

#endif

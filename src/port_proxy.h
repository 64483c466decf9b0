/* port_proxy.h - the port proxy of SPEC section 3 (steps 3 and 7): per host,
 * the one port through which local guests' traffic enters and leaves the
 * service plane. Its spmac plus the host's VTEP is the return address.
 *
 * Owns: building the service-plane metadata of a classified packet and
 * stripping it when the packet comes home.
 * Must not: choose paths (classifier/selector) or forward (service plane,
 * guest plane). */
#ifndef DETOUR_PORT_PROXY_H
#define DETOUR_PORT_PROXY_H

#include "hostcfg.h"
#include "pkt.h"

/* Put p (a parsed guest frame) on the service plane for `path` in the given
 * direction: saves its MACs, sets SPI, SI 255, chain, direction, return
 * address, guest network and port. */
void port_proxy_encap(const struct hostcfg *hc, struct pkt *p, const struct path *path, bool reverse,
		      uint16_t guest, bool ingress, bool is_copy);

/* The packet came home: restore the guest's MACs and drop the metadata. */
void port_proxy_decap(struct pkt *p);

#endif

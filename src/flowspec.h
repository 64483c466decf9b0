/* flowspec.h - the text form of a flow used by `detourctl trace`:
 *   "tcp 192.168.1.1:1234 > 192.168.1.2:80", "udp [fd00::1]:53 > [fd00::2]:53",
 *   "icmp 192.168.1.1 > 192.168.1.2", "icmpv6 fd00::1 > fd00::2".
 * Owns the parser only; rejects anything else with a clear message. */
#ifndef DETOUR_FLOWSPEC_H
#define DETOUR_FLOWSPEC_H

#include "flow.h"

bool flowspec_parse(const char *s, struct flow_key *k, char *err, size_t errlen);

#endif

/* common.c - text forms of MAC and IP addresses. */
#include "common.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

bool mac_parse(const char *s, struct mac *out)
{
	unsigned v[6];
	char tail;
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
		return false;
	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 6; i++)
		out->b[i] = (uint8_t)v[i];
	return true;
}

void mac_format(const struct mac *m, char *buf)
{
	snprintf(buf, MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", m->b[0], m->b[1], m->b[2], m->b[3],
		 m->b[4], m->b[5]);
}

bool ipaddr_parse(const char *s, struct ipaddr *out)
{
	uint8_t v4[4];
	if (inet_pton(AF_INET, s, v4) == 1) {
		ipaddr_from_v4(out, v4);
		return true;
	}
	return inet_pton(AF_INET6, s, out->b) == 1;
}

void ipaddr_format(const struct ipaddr *a, char *buf)
{
	if (ipaddr_is_v4(a))
		inet_ntop(AF_INET, a->b + 12, buf, IPADDR_STRLEN);
	else
		inet_ntop(AF_INET6, a->b, buf, IPADDR_STRLEN);
}

bool prefix_parse(const char *s, struct ipaddr *addr, int *plen)
{
	char tmp[IPADDR_STRLEN + 8];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen >= IPADDR_STRLEN)
		return false;
	memcpy(tmp, s, alen);
	tmp[alen] = 0;
	if (!ipaddr_parse(tmp, addr))
		return false;
	int max = ipaddr_is_v4(addr) ? 32 : 128;
	long len = max;
	if (slash) {
		char *end;
		if (!slash[1])
			return false;
		len = strtol(slash + 1, &end, 10);
		if (*end || len < 0 || len > max)
			return false;
	}
	*plen = (int)len + (max == 32 ? 96 : 0);
	/* Host bits must be zero in a prefix written by an operator? Mask them. */
	for (int bit = *plen; bit < 128; bit++)
		addr->b[bit / 8] &= (uint8_t)~(0x80 >> (bit % 8));
	return true;
}

void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* pcap.c - classic pcap writer and checked reader (see pcap.h).
 *
 * Owns: the byte layout of pcap files. Must not: trust any length field
 * of a file it reads; every record is checked against the buffer, the
 * snaplen and PCAP_CAPLEN_MAX before it is handed out. */
#include "pcap.h"

#include "common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void wle16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void wle32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t rle32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t rbe32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* ---- encoding ---- */

void pcap_format_file_header(uint8_t out[PCAP_FILE_HDR_LEN])
{
	wle32(out, PCAP_MAGIC_US);
	wle16(out + 4, 2);  /* version major */
	wle16(out + 6, 4);  /* version minor */
	wle32(out + 8, 0);  /* thiszone */
	wle32(out + 12, 0); /* sigfigs */
	wle32(out + 16, PCAP_SNAPLEN);
	wle32(out + 20, PCAP_LINKTYPE_ETHERNET);
}

uint32_t pcap_format_rec_header(uint8_t out[PCAP_REC_HDR_LEN], size_t len, uint64_t ts_ns)
{
	uint32_t orig = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
	uint32_t cap = orig > PCAP_SNAPLEN ? PCAP_SNAPLEN : orig;
	wle32(out, (uint32_t)(ts_ns / 1000000000u));
	wle32(out + 4, (uint32_t)(ts_ns % 1000000000u / 1000u));
	wle32(out + 8, cap);
	wle32(out + 12, orig);
	return cap;
}

/* ---- writer ---- */

struct pcap_writer {
	FILE *f;
	uint64_t count;
	bool failed;
};

struct pcap_writer *pcap_writer_open(const char *path, char *err, size_t errlen)
{
	struct pcap_writer *w = calloc(1, sizeof(*w));
	if (!w) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	w->f = fopen(path, "wbe");
	if (!w->f) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		free(w);
		return NULL;
	}
	uint8_t h[PCAP_FILE_HDR_LEN];
	pcap_format_file_header(h);
	if (fwrite(h, sizeof(h), 1, w->f) != 1) {
		set_err(err, errlen, "%s: write: %s", path, strerror(errno));
		fclose(w->f);
		free(w);
		return NULL;
	}
	return w;
}

int pcap_write(struct pcap_writer *w, const uint8_t *frame, size_t len, uint64_t ts_ns)
{
	if (!w || (len && !frame))
		return -1;
	uint8_t h[PCAP_REC_HDR_LEN];
	uint32_t cap = pcap_format_rec_header(h, len, ts_ns);
	if (fwrite(h, sizeof(h), 1, w->f) != 1 || (cap && fwrite(frame, cap, 1, w->f) != 1)) {
		w->failed = true;
		return -1;
	}
	w->count++;
	return 0;
}

int pcap_writer_flush(struct pcap_writer *w)
{
	if (!w)
		return -1;
	if (fflush(w->f) != 0)
		w->failed = true;
	return w->failed ? -1 : 0;
}

uint64_t pcap_writer_count(const struct pcap_writer *w) { return w ? w->count : 0; }

int pcap_writer_close(struct pcap_writer *w)
{
	if (!w)
		return 0;
	int r = w->failed ? -1 : 0;
	if (fclose(w->f) != 0)
		r = -1;
	free(w);
	return r;
}

/* ---- reader ---- */

static uint32_t rd(const struct pcap_iter *it, const uint8_t *p)
{
	return it->swapped ? rbe32(p) : rle32(p);
}

int pcap_iter_init(struct pcap_iter *it, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	memset(it, 0, sizeof(*it));
	if (!buf || len < PCAP_FILE_HDR_LEN) {
		set_err(err, errlen, "pcap: file header truncated (%zu bytes, need %d)", buf ? len : 0,
		       PCAP_FILE_HDR_LEN);
		return -1;
	}
	uint32_t le = rle32(buf), be = rbe32(buf);
	if (le == PCAP_MAGIC_US || le == PCAP_MAGIC_NS) {
		it->swapped = false;
		it->nsec = le == PCAP_MAGIC_NS;
	} else if (be == PCAP_MAGIC_US || be == PCAP_MAGIC_NS) {
		it->swapped = true;
		it->nsec = be == PCAP_MAGIC_NS;
	} else {
		set_err(err, errlen, "pcap: bad magic 0x%08x (not a classic pcap file)", le);
		return -1;
	}
	/* version: two 16-bit fields in file byte order */
	uint16_t major = it->swapped ? (uint16_t)(buf[4] << 8 | buf[5]) : (uint16_t)(buf[5] << 8 | buf[4]);
	uint16_t minor = it->swapped ? (uint16_t)(buf[6] << 8 | buf[7]) : (uint16_t)(buf[7] << 8 | buf[6]);
	if (major != 2) {
		set_err(err, errlen, "pcap: unsupported version %u.%u", major, minor);
		return -1;
	}
	it->buf = buf;
	it->len = len;
	it->off = PCAP_FILE_HDR_LEN;
	it->snaplen = rd(it, buf + 16);
	it->linktype = rd(it, buf + 20) & 0x0fffffffu; /* upper bits: FCS info */
	if (it->snaplen == 0 || it->snaplen > PCAP_CAPLEN_MAX) {
		set_err(err, errlen, "pcap: bad snaplen %u (1..%u)", it->snaplen, PCAP_CAPLEN_MAX);
		return -1;
	}
	return 0;
}

int pcap_iter_next(struct pcap_iter *it, struct pcap_rec *r, char *err, size_t errlen)
{
	if (!it->buf) {
		set_err(err, errlen, "pcap: iterator not initialised");
		return -1;
	}
	size_t left = it->len - it->off;
	if (left == 0)
		return 0;
	uint64_t idx = it->index;
	if (left < PCAP_REC_HDR_LEN) {
		set_err(err, errlen, "pcap: record %llu at offset %zu: header truncated (%zu of %d bytes)",
		       (unsigned long long)idx, it->off, left, PCAP_REC_HDR_LEN);
		return -1;
	}
	const uint8_t *h = it->buf + it->off;
	uint32_t sec = rd(it, h), frac = rd(it, h + 4);
	uint32_t cap = rd(it, h + 8), orig = rd(it, h + 12);
	if (cap > PCAP_CAPLEN_MAX || cap > it->snaplen) {
		set_err(err, errlen, "pcap: record %llu at offset %zu: caplen %u exceeds %s %u",
		       (unsigned long long)idx, it->off, cap, cap > PCAP_CAPLEN_MAX ? "limit" : "snaplen",
		       cap > PCAP_CAPLEN_MAX ? PCAP_CAPLEN_MAX : it->snaplen);
		return -1;
	}
	if (orig < cap) {
		set_err(err, errlen, "pcap: record %llu at offset %zu: original length %u < caplen %u",
		       (unsigned long long)idx, it->off, orig, cap);
		return -1;
	}
	if (frac >= (it->nsec ? 1000000000u : 1000000u)) {
		set_err(err, errlen, "pcap: record %llu at offset %zu: bad timestamp fraction %u",
		       (unsigned long long)idx, it->off, frac);
		return -1;
	}
	if (left - PCAP_REC_HDR_LEN < cap) {
		set_err(err, errlen, "pcap: record %llu at offset %zu: data truncated (%zu of %u bytes)",
		       (unsigned long long)idx, it->off, left - PCAP_REC_HDR_LEN, cap);
		return -1;
	}
	r->data = h + PCAP_REC_HDR_LEN;
	r->caplen = cap;
	r->origlen = orig;
	r->ts_ns = (uint64_t)sec * 1000000000u + (it->nsec ? frac : (uint64_t)frac * 1000u);
	it->off += PCAP_REC_HDR_LEN + (size_t)cap;
	it->index++;
	return 1;
}

long pcap_read_buffer(const uint8_t *buf, size_t len, pcap_rec_cb cb, void *arg, char *err, size_t errlen)
{
	struct pcap_iter it;
	if (pcap_iter_init(&it, buf, len, err, errlen) < 0)
		return -1;
	long n = 0;
	struct pcap_rec r;
	for (;;) {
		int k = pcap_iter_next(&it, &r, err, errlen);
		if (k < 0)
			return -1;
		if (k == 0)
			break;
		n++;
		if (cb && cb(arg, &r) != 0)
			break;
	}
	return n;
}

long pcap_read_file(const char *path, pcap_rec_cb cb, void *arg, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rbe");
	if (!f) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct stat sb;
	if (fstat(fileno(f), &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > (1L << 30)) {
		set_err(err, errlen, "%s: not a regular file of at most 1 GiB", path);
		fclose(f);
		return -1;
	}
	size_t sz = (size_t)sb.st_size;
	uint8_t *buf = malloc(sz ? sz : 1);
	if (!buf) {
		set_err(err, errlen, "%s: out of memory", path);
		fclose(f);
		return -1;
	}
	size_t got = sz ? fread(buf, 1, sz, f) : 0;
	bool rerr = ferror(f);
	fclose(f);
	if (rerr || got != sz) {
		set_err(err, errlen, "%s: read error", path);
		free(buf);
		return -1;
	}
	long n = pcap_read_buffer(buf, sz, cb, arg, err, errlen);
	free(buf);
	return n;
}

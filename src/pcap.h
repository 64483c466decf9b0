/* pcap.h - classic pcap files (libpcap format 2.4): a writer for
 * `detourctl capture` and tests, and a strictly checked reader.
 *
 * Owns: the file format only. Written files use magic 0xa1b2c3d4
 * (microsecond timestamps), little-endian, LINKTYPE_ETHERNET, snaplen
 * 65535. The reader accepts both byte orders and the nanosecond magic
 * 0xa1b23c4d, checks every header and never reads past the buffer.
 * Must not: know about ports or packets beyond their bytes. */
#ifndef DETOUR_PCAP_H
#define DETOUR_PCAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCAP_MAGIC_US 0xa1b2c3d4u
#define PCAP_MAGIC_NS 0xa1b23c4du
#define PCAP_LINKTYPE_ETHERNET 1
#define PCAP_SNAPLEN 65535u
#define PCAP_CAPLEN_MAX (256u * 1024u) /* reader: larger records are errors */
#define PCAP_FILE_HDR_LEN 24
#define PCAP_REC_HDR_LEN 16

/* ---- encoding into memory (e.g. to stream a capture over a socket) ---- */

/* The 24-byte file header. */
void pcap_format_file_header(uint8_t out[PCAP_FILE_HDR_LEN]);
/* The 16-byte record header of a frame of len bytes captured at ts_ns
 * (ns since the epoch); returns the caplen (len cut to PCAP_SNAPLEN). */
uint32_t pcap_format_rec_header(uint8_t out[PCAP_REC_HDR_LEN], size_t len, uint64_t ts_ns);

/* ---- file writer ---- */

struct pcap_writer;

/* Create/truncate path and write the file header. NULL + message on error. */
struct pcap_writer *pcap_writer_open(const char *path, char *err, size_t errlen);
/* Append one frame (cut to the snaplen). 0 or -1 on I/O error. */
int pcap_write(struct pcap_writer *w, const uint8_t *frame, size_t len, uint64_t ts_ns);
/* Push buffered records to the file. 0 or -1. */
int pcap_writer_flush(struct pcap_writer *w);
uint64_t pcap_writer_count(const struct pcap_writer *w);
/* Flush and close; 0, or -1 if any write failed. NULL is ignored. */
int pcap_writer_close(struct pcap_writer *w);

/* ---- reader ---- */

struct pcap_rec {
	const uint8_t *data; /* points into the caller's buffer */
	uint32_t caplen, origlen;
	uint64_t ts_ns;
};

struct pcap_iter {
	const uint8_t *buf;
	size_t len, off;
	bool swapped, nsec;
	uint32_t snaplen, linktype;
	uint64_t index; /* records returned so far */
};

/* Check the file header of buf[0..len). 0, or -1 with a message. */
int pcap_iter_init(struct pcap_iter *it, const uint8_t *buf, size_t len, char *err, size_t errlen);
/* Next record: 1 = *r filled, 0 = clean end of file, -1 = malformed
 * (message in err; the iterator stays at the bad record). */
int pcap_iter_next(struct pcap_iter *it, struct pcap_rec *r, char *err, size_t errlen);

/* Callback per record; a non-zero return stops the walk early (not an
 * error). */
typedef int (*pcap_rec_cb)(void *arg, const struct pcap_rec *r);

/* Walk the records of an in-memory file. Returns how many records were
 * passed to cb (cb may be NULL), or -1 on a malformed file (message in
 * err; records before the bad one were already passed to cb). */
long pcap_read_buffer(const uint8_t *buf, size_t len, pcap_rec_cb cb, void *arg, char *err, size_t errlen);
/* Same on a file (read whole, up to 1 GiB). */
long pcap_read_file(const char *path, pcap_rec_cb cb, void *arg, char *err, size_t errlen);

#endif

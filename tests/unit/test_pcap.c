/* test_pcap.c - pcap writer/reader: round trip through a file, header
 * bytes, both byte orders, nanosecond files, and every malformed case the
 * reader must reject (with the buffer sized exactly, so a read past it
 * trips the sanitizer). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pcap.h"

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static void be32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[3 - i] = (uint8_t)(v >> (8 * i));
}

/* Build a file in a heap buffer of exactly the right size. */
struct fbuf {
	uint8_t *b;
	size_t len;
};

static void fb_add(struct fbuf *f, const void *d, size_t n)
{
	f->b = realloc(f->b, f->len + n);
	assert_non_null(f->b);
	memcpy(f->b + f->len, d, n);
	f->len += n;
}

static void fb_hdr(struct fbuf *f, uint32_t magic, uint16_t major, uint32_t snap, bool big)
{
	uint8_t h[24] = {0};
	if (big) {
		be32(h, magic);
		h[4] = (uint8_t)(major >> 8);
		h[5] = (uint8_t)major;
		h[7] = 4;
		be32(h + 16, snap);
		be32(h + 20, 1);
	} else {
		le32(h, magic);
		h[4] = (uint8_t)major;
		h[5] = (uint8_t)(major >> 8);
		h[6] = 4;
		le32(h + 16, snap);
		le32(h + 20, 1);
	}
	fb_add(f, h, sizeof(h));
}

static void fb_rec(struct fbuf *f, uint32_t sec, uint32_t frac, uint32_t cap, uint32_t orig, size_t datalen,
		   bool big)
{
	uint8_t h[16];
	void (*w)(uint8_t *, uint32_t) = big ? be32 : le32;
	w(h, sec);
	w(h + 4, frac);
	w(h + 8, cap);
	w(h + 12, orig);
	fb_add(f, h, 16);
	for (size_t i = 0; i < datalen; i++) {
		uint8_t c = (uint8_t)(i * 7 + 1);
		fb_add(f, &c, 1);
	}
}

struct collect {
	int n;
	uint32_t cap[8], orig[8];
	uint64_t ts[8];
	uint8_t first[8];
	int stop_after;
};

static int collect_cb(void *arg, const struct pcap_rec *r)
{
	struct collect *c = arg;
	if (c->n < 8) {
		c->cap[c->n] = r->caplen;
		c->orig[c->n] = r->origlen;
		c->ts[c->n] = r->ts_ns;
		c->first[c->n] = r->caplen ? r->data[0] : 0;
	}
	c->n++;
	return c->stop_after && c->n >= c->stop_after;
}

static long read_fb(struct fbuf *f, struct collect *c, char *err, size_t errlen)
{
	long n = pcap_read_buffer(f->b, f->len, collect_cb, c, err, errlen);
	free(f->b);
	f->b = NULL;
	f->len = 0;
	return n;
}

static void test_round_trip(void **state)
{
	(void)state;
	char path[] = "/tmp/test_pcap_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	char err[256];
	struct pcap_writer *w = pcap_writer_open(path, err, sizeof(err));
	assert_non_null(w);

	static uint8_t big[70000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i ^ (i >> 8));
	uint8_t small[60];
	for (size_t i = 0; i < sizeof(small); i++)
		small[i] = (uint8_t)(0xa0 + i);
	assert_int_equal(pcap_write(w, small, sizeof(small), 1700000000123456789ull), 0);
	assert_int_equal(pcap_write(w, big, sizeof(big), 1700000001000000000ull), 0);
	assert_int_equal(pcap_write(w, small, 0, 5), 0);
	assert_int_equal(pcap_writer_count(w), 3);
	assert_int_equal(pcap_writer_close(w), 0);

	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	uint8_t hdr[24];
	assert_int_equal(fread(hdr, 1, 24, f), 24);
	fclose(f);
	/* d4 c3 b2 a1, version 2.4, snaplen 65535, linktype 1 */
	static const uint8_t want[24] = {0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0,
					 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0};
	assert_memory_equal(hdr, want, 24);

	struct collect c = {0};
	long n = pcap_read_file(path, collect_cb, &c, err, sizeof(err));
	assert_int_equal(n, 3);
	assert_int_equal(c.cap[0], 60);
	assert_int_equal(c.orig[0], 60);
	assert_int_equal(c.first[0], 0xa0);
	/* microsecond files lose the nanoseconds */
	assert_true(c.ts[0] == 1700000000123456000ull);
	assert_int_equal(c.cap[1], 65535);
	assert_int_equal(c.orig[1], 70000);
	assert_true(c.ts[1] == 1700000001000000000ull);
	assert_int_equal(c.cap[2], 0);

	/* check the bytes of the truncated record through the iterator */
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc((size_t)sz);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)sz, f), (size_t)sz);
	fclose(f);
	struct pcap_iter it;
	assert_int_equal(pcap_iter_init(&it, buf, (size_t)sz, err, sizeof(err)), 0);
	assert_false(it.swapped);
	assert_false(it.nsec);
	assert_int_equal(it.linktype, PCAP_LINKTYPE_ETHERNET);
	struct pcap_rec r;
	assert_int_equal(pcap_iter_next(&it, &r, err, sizeof(err)), 1);
	assert_memory_equal(r.data, small, 60);
	assert_int_equal(pcap_iter_next(&it, &r, err, sizeof(err)), 1);
	assert_memory_equal(r.data, big, 65535);
	assert_int_equal(pcap_iter_next(&it, &r, err, sizeof(err)), 1);
	assert_int_equal(pcap_iter_next(&it, &r, err, sizeof(err)), 0);
	assert_int_equal(pcap_iter_next(&it, &r, err, sizeof(err)), 0);
	free(buf);
	unlink(path);
}

static void test_format_headers(void **state)
{
	(void)state;
	uint8_t h[16];
	assert_int_equal(pcap_format_rec_header(h, 100, 2000000003999ull), 100);
	/* 2000 s, 3 us (999 ns dropped) */
	static const uint8_t want[16] = {0xd0, 0x07, 0, 0, 3, 0, 0, 0, 100, 0, 0, 0, 100, 0, 0, 0};
	assert_memory_equal(h, want, 16);
	assert_int_equal(pcap_format_rec_header(h, 100000, 0), 65535);
	assert_int_equal(h[12] | h[13] << 8 | h[14] << 16, 100000);
}

static void test_big_endian_and_nsec(void **state)
{
	(void)state;
	char err[256];
	struct fbuf f = {0};
	fb_hdr(&f, PCAP_MAGIC_NS, 2, 1000, true);
	fb_rec(&f, 10, 999999999, 20, 40, 20, true);
	fb_rec(&f, 11, 5, 0, 0, 0, true);
	struct collect c = {0};
	assert_int_equal(read_fb(&f, &c, err, sizeof(err)), 2);
	assert_int_equal(c.cap[0], 20);
	assert_int_equal(c.orig[0], 40);
	assert_true(c.ts[0] == 10999999999ull);
	assert_int_equal(c.first[0], 1);
	assert_true(c.ts[1] == 11000000005ull);

	/* little-endian nanosecond magic */
	fb_hdr(&f, PCAP_MAGIC_NS, 2, 1000, false);
	fb_rec(&f, 1, 7, 4, 4, 4, false);
	memset(&c, 0, sizeof(c));
	assert_int_equal(read_fb(&f, &c, err, sizeof(err)), 1);
	assert_true(c.ts[0] == 1000000007ull);
}

static void test_empty_file_and_stop(void **state)
{
	(void)state;
	char err[256];
	struct fbuf f = {0};
	fb_hdr(&f, PCAP_MAGIC_US, 2, 65535, false);
	struct collect c = {0};
	assert_int_equal(read_fb(&f, &c, err, sizeof(err)), 0);
	assert_int_equal(c.n, 0);

	fb_hdr(&f, PCAP_MAGIC_US, 2, 65535, false);
	for (int i = 0; i < 5; i++)
		fb_rec(&f, 1, 1, 10, 10, 10, false);
	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	assert_int_equal(read_fb(&f, &c, err, sizeof(err)), 2);
	assert_int_equal(c.n, 2);
}

/* Each malformed file must fail with a message containing `needle`. */
static void expect_bad(struct fbuf *f, const char *needle, int good_before)
{
	char err[256] = "";
	struct collect c = {0};
	long n = read_fb(f, &c, err, sizeof(err));
	assert_int_equal(n, -1);
	assert_int_equal(c.n, good_before);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_malformed(void **state)
{
	(void)state;
	struct fbuf f = {0};
	char err[128];

	assert_int_equal(pcap_read_buffer(NULL, 0, NULL, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "truncated"));

	fb_add(&f, "\xd4\xc3\xb2\xa1\x02\x00", 6);
	expect_bad(&f, "file header truncated", 0);

	fb_hdr(&f, 0x0a0d0d0a, 2, 65535, false); /* pcapng */
	expect_bad(&f, "bad magic", 0);

	fb_hdr(&f, PCAP_MAGIC_US, 3, 65535, false);
	expect_bad(&f, "version", 0);

	fb_hdr(&f, PCAP_MAGIC_US, 2, 0, false);
	expect_bad(&f, "snaplen", 0);

	fb_hdr(&f, PCAP_MAGIC_US, 2, 0x7fffffff, false);
	expect_bad(&f, "snaplen", 0);

	/* record header cut short after one good record */
	fb_hdr(&f, PCAP_MAGIC_US, 2, 65535, false);
	fb_rec(&f, 1, 0, 8, 8, 8, false);
	fb_add(&f, "\x01\x00\x00\x00\x00\x00\x00", 7);
	expect_bad(&f, "header truncated", 1);

	/* data shorter than caplen */
	fb_hdr(&f, PCAP_MAGIC_US, 2, 65535, false);
	fb_rec(&f, 1, 0, 100, 100, 99, false);
	expect_bad(&f, "data truncated", 0);

	/* caplen beyond the file's snaplen */
	fb_hdr(&f, PCAP_MAGIC_US, 2, 64, false);
	fb_rec(&f, 1, 0, 65, 65, 65, false);
	expect_bad(&f, "snaplen", 0);

	/* caplen beyond 256 KiB with the largest snaplen accepted */
	fb_hdr(&f, PCAP_MAGIC_US, 2, PCAP_CAPLEN_MAX, false);
	fb_rec(&f, 1, 0, PCAP_CAPLEN_MAX + 1, PCAP_CAPLEN_MAX + 1, 0, false);
	expect_bad(&f, "exceeds limit", 0);

	/* huge caplen (would wrap a 32-bit offset) */
	fb_hdr(&f, PCAP_MAGIC_US, 2, 65535, false);
	fb_rec(&f, 1, 0, 0xfffffff0u, 0xfffffff0u, 0, false);
	expect_bad(&f, "caplen", 0);

	/* original length below caplen */
	fb_hdr(&f, PCAP_MAGIC_US, 2, 65535, false);
	fb_rec(&f, 1, 0, 10, 9, 10, false);
	expect_bad(&f, "original length", 0);

	/* microseconds out of range */
	fb_hdr(&f, PCAP_MAGIC_US, 2, 65535, false);
	fb_rec(&f, 1, 1000000, 10, 10, 10, false);
	expect_bad(&f, "timestamp", 0);

	/* big-endian file with a bad record */
	fb_hdr(&f, PCAP_MAGIC_US, 2, 65535, true);
	fb_rec(&f, 1, 0, 4, 4, 4, true);
	fb_rec(&f, 1, 0, 70000, 70000, 4, true);
	expect_bad(&f, "snaplen", 1);

	/* iterator stays on the bad record */
	fb_hdr(&f, PCAP_MAGIC_US, 2, 65535, false);
	fb_rec(&f, 1, 0, 100, 100, 50, false);
	struct pcap_iter it;
	struct pcap_rec r;
	assert_int_equal(pcap_iter_init(&it, f.b, f.len, err, sizeof(err)), 0);
	assert_int_equal(pcap_iter_next(&it, &r, err, sizeof(err)), -1);
	assert_int_equal(pcap_iter_next(&it, &r, err, sizeof(err)), -1);
	assert_int_equal(it.off, 24);
	free(f.b);

	/* uninitialised iterator */
	memset(&it, 0, sizeof(it));
	assert_int_equal(pcap_iter_next(&it, &r, err, sizeof(err)), -1);
}

static void test_file_errors(void **state)
{
	(void)state;
	char err[256];
	assert_null(pcap_writer_open("/nonexistent-dir/x.pcap", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent-dir/x.pcap"));
	assert_int_equal(pcap_read_file("/nonexistent-dir/x.pcap", NULL, NULL, err, sizeof(err)), -1);
	assert_int_equal(pcap_read_file("/tmp", NULL, NULL, err, sizeof(err)), -1);
	assert_int_equal(pcap_writer_close(NULL), 0);
	assert_int_equal(pcap_write(NULL, NULL, 0, 0), -1);

	/* an empty file is a truncated header */
	char path[] = "/tmp/test_pcap_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(pcap_read_file(path, NULL, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "truncated"));
	unlink(path);

	/* writes to a full device fail and are reported at close */
	if (access("/dev/full", W_OK) == 0) {
		struct pcap_writer *w = pcap_writer_open("/dev/full", err, sizeof(err));
		if (w) {
			static uint8_t frame[8192];
			int bad = 0;
			for (int i = 0; i < 8; i++)
				bad |= pcap_write(w, frame, sizeof(frame), 0) != 0;
			bad |= pcap_writer_flush(w) != 0;
			assert_true(bad);
			assert_int_equal(pcap_writer_close(w), -1);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_format_headers),
		cmocka_unit_test(test_big_endian_and_nsec),
		cmocka_unit_test(test_empty_file_and_stop),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_file_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

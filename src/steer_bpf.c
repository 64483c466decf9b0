/* steer_bpf.c - loading the steering programs of bpf/steer.c (steer_bpf.h). */
#include "steer_bpf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>

#if __has_include("../build/bpf/steer.h")
#include "../build/bpf/steer.h"
#define HAVE_STEER_PROG 1
#else
#define HAVE_STEER_PROG 0
#endif

static int silent(enum libbpf_print_level l, const char *f, va_list ap)
{
	(void)l, (void)f, (void)ap;
	return 0;
}

int steer_bpf_prog(enum steer_bpf_prog which, uint16_t n)
{
#if HAVE_STEER_PROG
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static struct bpf_object *obj;
	static int fd[2] = {-1, -1};
	static uint16_t loaded_n;
	static bool tried;
	if (n < 2 || (unsigned)which > 1)
		return -1;
	pthread_mutex_lock(&lock);
	if (!tried) {
		tried = true;
		libbpf_print_fn_t old = libbpf_set_print(silent);
		LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "steer");
		obj = bpf_object__open_mem(steer_bpf_o, steer_bpf_o_len, &oo);
		struct bpf_map *m = NULL;
		if (obj && bpf_object__load(obj) == 0 && (m = bpf_object__find_map_by_name(obj, "cfg"))) {
			uint32_t zero = 0, v = n;
			if (bpf_map_update_elem(bpf_map__fd(m), &zero, &v, 0) == 0) {
				struct bpf_program *f = bpf_object__find_program_by_name(obj, "fanout_steer");
				struct bpf_program *u = bpf_object__find_program_by_name(obj, "underlay_steer");
				fd[0] = f ? bpf_program__fd(f) : -1;
				fd[1] = u ? bpf_program__fd(u) : -1;
				loaded_n = n;
			}
		}
		libbpf_set_print(old);
	}
	int r = n == loaded_n ? fd[which] : -1;
	pthread_mutex_unlock(&lock);
	return r;
#else
	(void)which, (void)n;
	return -1;
#endif
}

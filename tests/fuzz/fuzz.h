/* Shared by the fuzz targets: the libFuzzer entry points, an assertion that
 * aborts (so libFuzzer saves the input as a crasher), and a reader that cuts
 * the fuzzer's bytes into the fields a harness needs. */
#ifndef DROVER_FUZZ_H
#define DROVER_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_ASSERT(cond)                                                              \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s:%d: fuzz assertion failed: %s\n", __FILE__, \
				__LINE__, #cond);                                      \
			abort();                                                       \
		}                                                                      \
	} while (0)

/* Consume the input front to back; reads past the end give zeros / "". */
struct fuzz_in {
	const uint8_t *p;
	size_t n, off;
};

static inline unsigned fuzz_byte(struct fuzz_in *in)
{
	return in->off < in->n ? in->p[in->off++] : 0;
}

static inline unsigned fuzz_u16(struct fuzz_in *in)
{
	unsigned hi = fuzz_byte(in);
	return hi << 8 | fuzz_byte(in);
}

/* A NUL-terminated string of up to one length byte of the input's bytes
 * (a NUL inside ends it early, as for any C string an app could pass). */
static inline void fuzz_str(struct fuzz_in *in, char *buf, size_t cap)
{
	size_t len = fuzz_byte(in), i;
	if (len > in->n - in->off)
		len = in->n - in->off;
	if (len > cap - 1)
		len = cap - 1;
	for (i = 0; i < len; i++)
		buf[i] = (char)in->p[in->off + i];
	buf[i] = '\0';
	in->off += len;
}

/* The rest of the input as a NUL-terminated malloc'd copy. */
static inline char *fuzz_rest(struct fuzz_in *in, size_t *len)
{
	size_t n = in->n - in->off;
	char *s = malloc(n + 1);
	if (!s)
		abort();
	if (n)
		memcpy(s, in->p + in->off, n);
	s[n] = '\0';
	in->off = in->n;
	if (len)
		*len = n;
	return s;
}
#endif

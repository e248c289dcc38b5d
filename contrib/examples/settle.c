/* A C app whose memory grows and then settles, the third memory verdict
 * beside fragment.c and leak.c: a warm-up cache (think of a JIT's code
 * cache or a page cache filled on demand) in its own mmap()ed region,
 * touched as requests come so that SETTLE_MB * (1 - e^(-t / SETTLE_TAU))
 * is resident t seconds after the worker's first request.  RSS rises
 * quickly and bends toward a plateau while malloc's heap stays flat:
 * drover's verdict is "settling", then "normal", and the worker is left
 * alone (with rss_growth_limit above the plateau).
 *   SETTLE_MB=48 SETTLE_TAU=1 drover --rss-growth-limit 100M so:./settle.so */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "app.h"

static char *cache;
static size_t cap, touched;
static double tau = 2.0;
static struct timespec t0;

/* e^-x for x >= 0, without libm: a short Taylor series on x / 2^k, squared
 * back k times. */
static double exp_neg(double x)
{
	int k = 0;
	while (x > 0.25 && k < 30) {
		x /= 2;
		k++;
	}
	double s = 1 - x + x * x / 2 - x * x * x / 6 + x * x * x * x / 24;
	while (k-- > 0)
		s *= s;
	return s;
}

static double since_first(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	if (!t0.tv_sec && !t0.tv_nsec)
		t0 = t;
	return (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
}

/* Per worker: the region is mapped at the first request, after the fork. */
static void warm(void)
{
	if (!cache) {
		const char *mb = getenv("SETTLE_MB"), *ta = getenv("SETTLE_TAU");
		long m = mb ? strtol(mb, NULL, 10) : 64;
		cap = (size_t)(m > 0 && m < 4096 ? m : 64) << 20;
		tau = ta && strtod(ta, NULL) > 0 ? strtod(ta, NULL) : 2.0;
		void *p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return;
		cache = p;
	}
	size_t want = (size_t)((double)cap * (1 - exp_neg(since_first() / tau)));
	want = want > cap ? cap : want;
	for (; touched < want; touched += 4096)
		cache[touched] = 1; /* one byte a page makes the page resident */
}

static int settle_handle(struct drover_request *req, struct drover_response *resp)
{
	(void)req;
	warm();
	drover_header(resp, "Content-Type", "text/plain");
	drover_header(resp, "Content-Length", "3");
	return drover_write(resp, "ok\n", 3);
}

const struct drover_app drover_app = {
	.abi_version = DROVER_APP_ABI_VERSION,
	.name = "settle",
	.handle = settle_handle,
};

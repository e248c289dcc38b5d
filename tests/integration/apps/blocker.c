/* C app for tests/integration/test_stall.py and contrib/bench/stall_latency.py:
 * /block?ms=N blocks the serving thread in resolve_host() for N ms (a
 * nanosleep standing in for a blocking DNS call), then answers "ok";
 * /spin?ms=N burns N ms of CPU (a CPU-bound request);
 * anything else answers "ok" at once.  resolve_host is exported (not
 * static) so that dladdr names it, as it would an app built with symbols. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"

long blocker_ms(const struct drover_request *req);
void resolve_host(long ms);

long blocker_ms(const struct drover_request *req)
{
	const char *q = req->query.ptr;
	if (req->query.len > 3 && memcmp(q, "ms=", 3) == 0)
		return strtol(q + 3, NULL, 10);
	return 0;
}

void resolve_host(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&t, &t) != 0) /* a signal (the stack request) resumes the wait */
		;
	__asm__ volatile("" ::: "memory"); /* keep the frame: no tail call */
}

static void spin(long ms)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

static int handle(struct drover_request *req, struct drover_response *resp)
{
	long ms = blocker_ms(req);
	if (ms > 0 && req->path.len == 5 && memcmp(req->path.ptr, "/spin", 5) == 0)
		spin(ms);
	else if (ms > 0)
		resolve_host(ms);
	drover_status(resp, 200);
	drover_header(resp, "Content-Type", "text/plain");
	return drover_write(resp, "ok\n", 3) < 0 ? -1 : 0;
}

const struct drover_app drover_app = {
	.abi_version = DROVER_APP_ABI_VERSION,
	.name = "blocker",
	.handle = handle,
};

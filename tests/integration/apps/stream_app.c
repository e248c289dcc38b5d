/* C app for tests/integration/test_streaming.py and test_bodiless.py.
 *
 * /stream?n=N&gap=S&log=PATH   N events "data: i\n\n" written S seconds apart,
 *     without a Content-Length; with log, each write appends "y I TIME", a
 *     failed write "fail I TIME", the return "close TIME" (TIME: Unix
 *     seconds, as Python's time.time()).
 * /status/NNN?how=write|sendfile|both&cl=L   status NNN with the body
 *     "BODY-BYTES" written, sent from a file, or both; Content-Length: L
 *     when cl is given. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "app.h"

/* The value of query parameter name (copied into out), or NULL. */
static const char *param(const struct drover_request *req, const char *name, char *out,
			 size_t cap)
{
	size_t nl = strlen(name);
	const char *q = req->query.ptr, *end = q + req->query.len;
	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *e = amp ? amp : end;
		if ((size_t)(e - q) > nl && q[nl] == '=' && memcmp(q, name, nl) == 0) {
			size_t vl = (size_t)(e - q) - nl - 1;
			if (vl >= cap)
				vl = cap - 1;
			/* %2F is the only escape the tests need (a path) */
			size_t o = 0;
			for (const char *v = q + nl + 1; v < q + nl + 1 + vl && o < cap - 1; v++) {
				if (v[0] == '%' && v + 2 < e && v[1] == '2' && (v[2] == 'F' || v[2] == 'f')) {
					out[o++] = '/';
					v += 2;
				} else {
					out[o++] = *v;
				}
			}
			out[o] = '\0';
			return out;
		}
		q = e + 1;
	}
	return NULL;
}

static void note(const char *log, const char *what, int i)
{
	if (!log)
		return;
	FILE *f = fopen(log, "a");
	if (!f)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (i >= 0)
		fprintf(f, "%s %d %ld.%06ld\n", what, i, (long)ts.tv_sec, ts.tv_nsec / 1000);
	else
		fprintf(f, "%s %ld.%06ld\n", what, (long)ts.tv_sec, ts.tv_nsec / 1000);
	fclose(f);
}

static int stream(struct drover_request *req, struct drover_response *resp)
{
	char nb[16], gb[16], lb[512];
	int n = param(req, "n", nb, sizeof(nb)) ? atoi(nb) : 6;
	double gap = param(req, "gap", gb, sizeof(gb)) ? atof(gb) : 0.5;
	const char *log = param(req, "log", lb, sizeof(lb));
	drover_header(resp, "Content-Type", "text/event-stream");
	for (int i = 0; i < n; i++) {
		char ev[32];
		if (i) {
			/* resumed after a signal: the stall watchdog's stack
			 * request interrupts a sleep that blocks the loop */
			struct timespec t = {(time_t)gap, (long)((gap - (double)(time_t)gap) * 1e9)};
			while (nanosleep(&t, &t) != 0)
				;
		}
		int len = snprintf(ev, sizeof(ev), "data: %d\n\n", i);
		if (drover_write(resp, ev, (size_t)len) < 0) {
			note(log, "fail", i);
			break;
		}
		note(log, "y", i);
	}
	note(log, "close", -1);
	return 0;
}

static int status(struct drover_request *req, struct drover_response *resp)
{
	static const char body[] = "BODY-BYTES";
	char hb[16], cb[24];
	int code = atoi(req->path.ptr + 8);
	const char *how = param(req, "how", hb, sizeof(hb));
	if (!how)
		how = "write";
	if (resp->ops->status(resp, code, "X") < 0) {
		/* refused (a 1xx is never a final response): say so */
		static const char bad[] = "bad status\n";
		drover_status(resp, 500);
		drover_header(resp, "Content-Length", "11");
		return drover_write(resp, bad, sizeof(bad) - 1);
	}
	drover_header(resp, "Content-Type", "text/plain");
	if (param(req, "cl", cb, sizeof(cb)))
		drover_header(resp, "Content-Length", cb);
	if (strcmp(how, "sendfile") != 0 && drover_write(resp, body, sizeof(body) - 1) < 0)
		return -1;
	if (strcmp(how, "write") != 0) {
		int fd = memfd_create("body", MFD_CLOEXEC);
		if (fd < 0 || write(fd, body, sizeof(body) - 1) != (ssize_t)sizeof(body) - 1)
			return -1;
		int rc = resp->ops->sendfile(resp, fd, 0, sizeof(body) - 1);
		close(fd);
		return rc;
	}
	return 0;
}

static int handle(struct drover_request *req, struct drover_response *resp)
{
	if (req->path.len > 8 && memcmp(req->path.ptr, "/status/", 8) == 0)
		return status(req, resp);
	if (req->path.len == 7 && memcmp(req->path.ptr, "/stream", 7) == 0)
		return stream(req, resp);
	drover_status(resp, 404);
	drover_header(resp, "Content-Length", "0");
	return 0;
}

const struct drover_app drover_app = {
	.abi_version = DROVER_APP_ABI_VERSION,
	.name = "stream_app",
	.handle = handle,
};

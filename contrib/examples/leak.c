/* A C app that leaks, the other side of fragment.c: GET /grow?mb=N (default
 * 4) allocates N MB, writes it and never frees it.  The heap in use grows
 * with RSS: drover's verdict is "leak", and only a recycle helps (max_rss).
 * Any other path: a small "ok".
 *   drover --max-rss 256M so:./leak.so */
#include <stdlib.h>
#include <string.h>

#include "app.h"

static long query_mb(const struct drover_request *req)
{
	const char *q = req->query.ptr;
	if (req->query.len > 3 && memcmp(q, "mb=", 3) == 0)
		return strtol(q + 3, NULL, 10);
	return 4;
}

static int leak_handle(struct drover_request *req, struct drover_response *resp)
{
	if (req->path.len == 5 && memcmp(req->path.ptr, "/grow", 5) == 0) {
		long mb = query_mb(req);
		size_t n = (size_t)(mb > 0 && mb < 4096 ? mb : 4) * 1048576 / 1024;
		for (size_t i = 0; i < n; i++) { /* 1 KB pieces: malloc's heap, not mmap */
			char *p = malloc(1024);
			if (p)
				memset(p, 1, 1024); /* touched: resident */
		}
	}
	drover_header(resp, "Content-Type", "text/plain");
	drover_header(resp, "Content-Length", "3");
	return drover_write(resp, "ok\n", 3);
}

const struct drover_app drover_app = {
	.abi_version = DROVER_APP_ABI_VERSION,
	.name = "leak",
	.handle = leak_handle,
};

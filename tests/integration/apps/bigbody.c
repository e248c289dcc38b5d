/* Test app: a large body written in pieces, for the tests of large
 * responses and of progress-based timeouts.  Query: size=BYTES (default
 * 1 MiB), piece=BYTES (default 64 KiB), cl=0 to omit Content-Length (the
 * body then goes chunked).  Piece k is filled with 'a' + k % 26, so a client
 * can check order as well as length.  A request body, if any, is read and
 * counted first (X-Body-Read in the answer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

static long long query_num(struct drover_str q, const char *key, long long dflt)
{
	size_t kl = strlen(key);
	for (size_t i = 0; i + kl < q.len; i++) {
		if ((i == 0 || q.ptr[i - 1] == '&') && !memcmp(q.ptr + i, key, kl) &&
		    q.ptr[i + kl] == '=')
			return strtoll(q.ptr + i + kl + 1, NULL, 10);
	}
	return dflt;
}

static int handle(struct drover_request *req, struct drover_response *resp)
{
	long long size = query_num(req->query, "size", 1 << 20);
	long long piece = query_num(req->query, "piece", 64 << 10);
	if (size < 0 || piece <= 0 || piece > (16 << 20))
		return -1;
	char sink[16384], num[32];
	long long got = 0;
	ssize_t n;
	while ((n = drover_read_body(req, sink, sizeof(sink))) > 0)
		got += n;
	if (n < 0)
		return 0;
	snprintf(num, sizeof(num), "%lld", got);
	drover_header(resp, "X-Body-Read", num);
	drover_header(resp, "Content-Type", "application/octet-stream");
	if (query_num(req->query, "cl", 1)) {
		snprintf(num, sizeof(num), "%lld", size);
		drover_header(resp, "Content-Length", num);
	}
	char *buf = malloc((size_t)piece);
	if (!buf)
		return -1;
	for (long long off = 0, k = 0; off < size; off += piece, k++) {
		size_t len = (size_t)(size - off < piece ? size - off : piece);
		memset(buf, 'a' + (int)(k % 26), len);
		if (drover_write(resp, buf, len) < 0)
			break; /* the client went away */
	}
	free(buf);
	return 0;
}

const struct drover_app drover_app = {
	.abi_version = DROVER_APP_ABI_VERSION,
	.name = "bigbody",
	.handle = handle,
};

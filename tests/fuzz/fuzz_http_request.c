/* Fuzz target: the bytes a client sends to a worker.  The first byte picks
 * the connection's options (PROXY header expected, small limits, keep-alive,
 * how the bytes are split into reads); the rest is the stream.  The app reads
 * every body to its end.  Checks: no memory error (ASan), no UB (UBSan), a
 * decoded body never exceeds max_body, and every byte sent is a response
 * ("HTTP/1.x " first). */
#include "fuzz.h"
#include "fuzz_conn.h"

static unsigned long long body_limit;

static int app_handle(struct drover_request *req, struct drover_response *resp)
{
	char buf[1024];
	unsigned long long total = 0;
	ssize_t n;
	FUZZ_ASSERT(req->method.len > 0 && req->path.len <= req->target.len);
	(void)req->ops->header(req, "host");
	while ((n = req->ops->read_body(req, buf, sizeof(buf))) > 0) {
		FUZZ_ASSERT((size_t)n <= sizeof(buf));
		total += (size_t)n;
	}
	FUZZ_ASSERT(total <= body_limit);
	if (req->content_length >= 0 && n == 0)
		FUZZ_ASSERT(total == (unsigned long long)req->content_length);
	drover_status(resp, 200);
	drover_header(resp, "Content-Type", "text/plain");
	return drover_write(resp, "ok\n", 3) < 0 ? -1 : 0;
}

static const struct drover_app app = {DROVER_APP_ABI_VERSION, "fuzz", NULL, app_handle, NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned flags = data[0];
	struct fuzz_conn_opts o = {
		.proxy_protocol = flags & 1,
		.small_limits = flags & 2,
		.keepalive = !(flags & 4),
		.piece = (flags >> 3) == 0 ? size : (flags >> 3), /* 1..31, or all at once */
	};
	body_limit = o.small_limits ? 100 : 1 << 20;
	struct http_buf out = {0};
	fuzz_conn_run(&app, &o, data + 1, size - 1, &out);
	/* whatever went out starts with a status line */
	if (out.len)
		FUZZ_ASSERT(out.len >= 9 && (memcmp(out.data, "HTTP/1.1 ", 9) == 0 ||
					     memcmp(out.data, "HTTP/1.0 ", 9) == 0));
	http_buf_free(&out);
	return 0;
}

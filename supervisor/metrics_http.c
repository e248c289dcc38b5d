/* The HTTP metrics listener (metrics_bind): GET /metrics (Prometheus text)
 * and GET /status.json, served from the master's loop with the control
 * socket's bounded non-blocking clients.  One request per connection
 * (Connection: close): scrapers do not need more, and it keeps this small. */
#include "supervisor/metrics_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/arbiter.h"
#include "supervisor/ctlsrv.h"
#include "supervisor/listen.h"
#include "supervisor/log.h"
#include "supervisor/metrics.h"
#include "supervisor/status.h"

struct metrics_http {
	struct ctl_server srv;
};

static void respond(struct ctl_client *c, int status, const char *reason, const char *ctype,
		    const struct mbuf *body, bool head_only)
{
	size_t len = body && body->p ? body->len : 0;
	mbuf_printf(&c->out,
		    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		    "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
		    status, reason, ctype, len);
	if (len && !head_only)
		mbuf_put(&c->out, body->p, len);
	c->close_after = true;
}

static void respond_text(struct ctl_client *c, int status, const char *reason, const char *text)
{
	struct mbuf b;
	mbuf_init(&b, 4096);
	mbuf_put(&b, text, strlen(text));
	respond(c, status, reason, "text/plain; charset=utf-8", &b, false);
	mbuf_free(&b);
}

/* Route one request line: "METHOD TARGET HTTP/1.x". */
static void route(struct ctl_client *c, struct arbiter *ar, char *line)
{
	char *save = NULL, *method = strtok_r(line, " ", &save);
	char *target = strtok_r(NULL, " ", &save), *version = strtok_r(NULL, " \r", &save);
	if (!method || !target || !version || strncmp(version, "HTTP/1.", 7) != 0) {
		respond_text(c, 400, "Bad Request", "bad request\n");
		return;
	}
	bool head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0) {
		respond_text(c, 405, "Method Not Allowed", "GET or HEAD only\n");
		return;
	}
	target[strcspn(target, "?")] = '\0'; /* no query parameters are used */
	struct mbuf b;
	mbuf_init(&b, CTL_OUT_MAX / 2);
	arbiter_refresh_sample(ar);
	if (strcmp(target, "/metrics") == 0) {
		metrics_prometheus(ar->sampler, &b);
		if (!b.failed)
			respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", &b, head);
	} else if (strcmp(target, "/status.json") == 0) {
		status_json(ar->sampler, &b);
		mbuf_put(&b, "\n", 1);
		if (!b.failed)
			respond(c, 200, "OK", "application/json", &b, head);
	} else if (strcmp(target, "/") == 0) {
		respond_text(c, 200, "OK", "drover metrics: /metrics /status.json\n");
	} else {
		respond_text(c, 404, "Not Found", "not found: /metrics or /status.json\n");
	}
	if (b.failed)
		respond_text(c, 500, "Internal Server Error", "answer too large\n");
	mbuf_free(&b);
}

static void http_input(struct ctl_server *srv, struct ctl_client *c)
{
	char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
	if (!end)
		end = memmem(c->in, c->inlen, "\n\n", 2);
	if (!end) {
		if (c->inlen == CTL_IN_CAP)
			respond_text(c, 431, "Request Header Fields Too Large", "head too large\n");
		else if (c->eof)
			c->close_after = true; /* gave up before a whole head */
		return;
	}
	char line[256];
	size_t len = strcspn(c->in, "\r\n");
	if (len >= sizeof(line)) {
		respond_text(c, 414, "URI Too Long", "request line too long\n");
		return;
	}
	memcpy(line, c->in, len);
	line[len] = '\0';
	c->inlen = 0; /* one request per connection: the rest is ignored */
	route(c, srv->ctx, line);
}

struct metrics_http *metrics_http_start(struct arbiter *ar)
{
	const char *spec = ar->conf.metrics_bind;
	if (!spec[0])
		return NULL;
	char name[96];
	int fd = listen_metrics(spec, name, sizeof(name));
	struct metrics_http *m = fd >= 0 ? calloc(1, sizeof(*m)) : NULL;
	if (!m) {
		log_error("metrics listener %s: %s; running without it", spec,
			  fd == -EINVAL ? "expected [HOST:]PORT with a numeric host"
					: strerror(fd < 0 ? -fd : ENOMEM));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	struct ctl_server_conf sc = {.loop = ar->loop, .fds = &ar->pool.env.master_fds, .ctx = ar,
				     .what = "metrics", .check_peer = false,
				     .on_input = http_input};
	ctl_server_start(&m->srv, &sc, fd);
	log_info("metrics at http://%s/metrics and /status.json", name);
	return m;
}

int metrics_http_fd(const struct metrics_http *m)
{
	return m ? m->srv.fd : -1;
}

void metrics_http_stop(struct metrics_http *m)
{
	if (!m)
		return;
	ctl_server_stop(&m->srv);
	free(m);
}

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
#include "supervisor/pool.h"
#include "supervisor/status.h"

struct metrics_http {
	struct ctl_server srv;
};

/* A worker not stopping has marked itself ready in its slot (the pool's own
 * flag follows on its next pass, which may be a tick away). */
static bool accepting(const struct pool *p)
{
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_rec *w = &p->w[i];
		if (w->pid && !w->stop_ns && (w->booted || sb_load(&w->slot->booted_ns)))
			return true;
	}
	return false;
}

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

/* The request line "METHOD TARGET HTTP/1.x", split in place. */
static void parse_line(char *line, struct metrics_req *r)
{
	char *save = NULL, *method = strtok_r(line, " ", &save);
	char *target = strtok_r(NULL, " ", &save), *version = strtok_r(NULL, " \r", &save);
	if (!method || !target || !version || strncmp(version, "HTTP/1.", 7) != 0) {
		*r = (struct metrics_req){MR_TEXT, 400, "Bad Request", "bad request\n", false};
		return;
	}
	bool head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0) {
		*r = (struct metrics_req){MR_TEXT, 405, "Method Not Allowed", "GET or HEAD only\n", false};
		return;
	}
	target[strcspn(target, "?")] = '\0'; /* no query parameters are used */
	r->head = head;
	if (strcmp(target, "/metrics") == 0)
		r->route = MR_METRICS;
	else if (strcmp(target, "/status.json") == 0)
		r->route = MR_STATUS;
	else if (strcmp(target, "/") == 0)
		*r = (struct metrics_req){MR_TEXT, 200, "OK", "drover metrics: /metrics /status.json\n", head};
	else
		*r = (struct metrics_req){MR_TEXT, 404, "Not Found", "not found: /metrics or /status.json\n", head};
}

void metrics_http_parse(const char *in, size_t inlen, size_t cap, bool eof, struct metrics_req *r)
{
	*r = (struct metrics_req){MR_MORE, 0, NULL, NULL, false};
	/* RFC 9112 §2.2: a recipient may take a bare LF as the line terminator. */
	const char *end = memmem(in, inlen, "\r\n\r\n", 4);
	if (!end)
		end = memmem(in, inlen, "\n\n", 2);
	if (!end) {
		if (inlen >= cap)
			*r = (struct metrics_req){MR_TEXT, 431, "Request Header Fields Too Large",
						  "head too large\n", false};
		else if (eof)
			r->route = MR_CLOSE; /* gave up before a whole head */
		return;
	}
	/* in holds no NUL terminator: the line ends at the first CR or LF,
	 * which is at or before end (a NUL inside only cuts the line short) */
	char line[256];
	size_t len = 0;
	while (len < (size_t)(end - in) && in[len] != '\r' && in[len] != '\n')
		len++;
	if (len >= sizeof(line)) {
		*r = (struct metrics_req){MR_TEXT, 414, "URI Too Long", "request line too long\n", false};
		return;
	}
	memcpy(line, in, len);
	line[len] = '\0';
	parse_line(line, r);
}

/* Answer a parsed request (r->route is neither MR_MORE nor MR_CLOSE). */
static void route(struct ctl_client *c, struct arbiter *ar, const struct metrics_req *r)
{
	if (r->route == MR_TEXT) {
		respond_text(c, r->status, r->reason, r->text);
		return;
	}
	struct mbuf b;
	mbuf_init(&b, CTL_OUT_MAX / 2);
	arbiter_refresh_sample(ar);
	if (r->route == MR_METRICS) {
		metrics_prometheus(ar->sampler, &b);
		if (!b.failed)
			respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", &b, r->head);
	} else {
		status_json(ar->sampler, &b);
		mbuf_put(&b, "\n", 1);
		/* Issue 13: a readiness probe (Kubernetes) reads the status: 503
		 * while no worker accepts or the master is stopping, so the pod
		 * gets traffic only when it can serve it.  Same body either way. */
		bool ready = accepting(&ar->pool) &&
			     (ar->state == MASTER_RUNNING || ar->state == MASTER_RELOADING);
		if (!b.failed && ready)
			respond(c, 200, "OK", "application/json", &b, r->head);
		else if (!b.failed)
			respond(c, 503, "Service Unavailable", "application/json", &b, r->head);
	}
	if (b.failed)
		respond_text(c, 500, "Internal Server Error", "answer too large\n");
	mbuf_free(&b);
}

static void http_input(struct ctl_server *srv, struct ctl_client *c)
{
	struct metrics_req r;
	metrics_http_parse(c->in, c->inlen, CTL_IN_CAP, c->eof, &r);
	if (r.route == MR_MORE)
		return;
	if (r.route == MR_CLOSE) {
		c->close_after = true;
		return;
	}
	c->inlen = 0; /* one request per connection: the rest is ignored */
	route(c, srv->ctx, &r);
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

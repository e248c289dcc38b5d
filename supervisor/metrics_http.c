/* The HTTP metrics listener (metrics_bind): GET /metrics (Prometheus text)
 * and GET /status.json, served from the master's loop with the control
 * socket's bounded non-blocking clients.  One request per connection
 * (Connection: close): scrapers do not need more, and it keeps this small. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "supervisor/arbiter.h"
#include "supervisor/control.h"
#include "supervisor/log.h"
#include "supervisor/metrics.h"
#include "supervisor/sample.h"

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
	sampler_note_master(ar, sb_now_ns());
	if (strcmp(target, "/metrics") == 0) {
		metrics_prometheus(ar->sampler, &b);
		if (!b.failed)
			respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", &b, head);
	} else if (strcmp(target, "/status.json") == 0) {
		metrics_status_json(ar->sampler, &b);
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
	route(c, srv->ar, line);
}

/* "PORT", ":PORT", "HOST:PORT", "[V6]:PORT"; no host means loopback. */
static int bind_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[64] = "";
	const char *colon = strrchr(spec, ':');
	const char *port_s = colon ? colon + 1 : spec;
	if (colon) {
		const char *h = spec, *he = colon;
		if (*h == '[' && he > h && he[-1] == ']') {
			h++;
			he--;
		}
		if ((size_t)(he - h) >= sizeof(host))
			return -EINVAL;
		memcpy(host, h, (size_t)(he - h));
		host[he - h] = '\0';
	}
	char *end;
	long port = strtol(port_s, &end, 10);
	if (!*port_s || *end || port < 0 || port > 65535)
		return -EINVAL;
	if (!host[0] || strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*sl = sizeof(*in4);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*sl = sizeof(*in6);
	} else {
		return -EINVAL;
	}
	return 0;
}

static int http_listen(const char *spec, char *name, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	if (bind_addr(spec, &ss, &sl) < 0)
		return -EINVAL;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof(ip));
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		snprintf(name, cap, "%s:%d", ip, port);
	} else {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof(ip));
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		snprintf(name, cap, "[%s]:%d", ip, port);
	}
	return fd;
}

int metrics_http_start(struct arbiter *ar)
{
	const char *spec = ar->conf.metrics_bind;
	if (!spec[0] || !ar->sampler)
		return 0;
	char name[96];
	int fd = http_listen(spec, name, sizeof(name));
	if (fd < 0) {
		log_error("metrics listener %s: %s; running without it", spec,
			  fd == -EINVAL ? "expected [HOST:]PORT with a numeric host" : strerror(-fd));
		return -1;
	}
	struct metrics_http *m = calloc(1, sizeof(*m));
	if (!m) {
		close(fd);
		return -1;
	}
	ar->mhttp = m;
	ctl_server_start(&m->srv, ar, fd, "metrics", false, http_input);
	log_info("metrics at http://%s/metrics and /status.json", name);
	return 0;
}

void metrics_http_stop(struct arbiter *ar)
{
	if (!ar->mhttp)
		return;
	ctl_server_stop(&ar->mhttp->srv);
	free(ar->mhttp);
	ar->mhttp = NULL;
}

/* One client connection, model-agnostic: parse a request head, hand the app a
 * drover_request / drover_response pair, frame what it writes, finish the
 * response and decide whether the connection carries another request.  All
 * socket I/O goes through c->io (conn_io.c has the blocking flavour). */
#include "workers/http/forwarded.h"
#include "workers/http/proxy_proto.h"
#include "http_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "workers/http/access_log.h"
#include "workers/watchdog.h"
#include "workers/wlog.h"

/* Unread request body drained after the response to keep the connection;
 * past this we close instead. */
#define BODY_DRAIN_MAX (256 * 1024)
#define READ_CHUNK 16384

static ssize_t req_read_body(struct drover_request *req, void *buf, size_t len);
static const struct drover_header *req_header(const struct drover_request *req, const char *n);
static int resp_status(struct drover_response *r, int status, const char *reason);
static int resp_header(struct drover_response *r, const char *name, const char *value);
static int resp_write(struct drover_response *r, const void *buf, size_t len);
static int resp_sendfile(struct drover_response *r, int fd, off_t off, size_t len);

static const struct drover_request_ops req_ops = {req_read_body, req_header};
static const struct drover_response_ops resp_ops = {resp_status, resp_header, resp_write,
						    resp_sendfile};

static void addr_text(const struct sockaddr *sa, char *out, size_t cap, int *port)
{
	*port = 0;
	out[0] = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, out, (socklen_t)cap);
		*port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)cap);
		*port = ntohs(in6->sin6_port);
	}
}

void http_conn_init(struct http_conn *c, const struct conn_env *env, const struct conn_io *io,
		    int fd, const struct worker_listener *l, const struct sockaddr *peer)
{
	memset(c, 0, sizeof(*c));
	c->env = env;
	c->io = io;
	c->fd = fd;
	c->heartbeat = &env->slot->heartbeat_ns;
	http_parse_init(&c->hp, &env->limits);
	if (l->family != AF_UNIX) {
		/* Each streamed block is its own write: Nagle would hold a small
		 * one (or the last chunk) back until the previous one is acked. */
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (!peer && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
		peer = (struct sockaddr *)&ss;
	if (peer)
		addr_text(peer, c->peer_addr, sizeof(c->peer_addr), &c->peer_port);
	snprintf(c->server_addr, sizeof(c->server_addr), "%s", l->host[0] ? l->host : "localhost");
	c->server_port = l->port;
}

void http_conn_free(struct http_conn *c)
{
	if (c->slot_held) /* the promised next request never came */
		req_budget_unclaim(c->env->budget);
	c->slot_held = false;
	http_parse_free(&c->hp);
	http_response_free(&c->resp);
	http_buf_free(&c->in);
	http_buf_free(&c->head);
	http_buf_free(&c->body);
	http_buf_free(&c->prebody);
}

void http_conn_shrink(struct http_conn *c)
{
	if (c->in_off == c->in.len) {
		http_buf_free(&c->in);
		c->in_off = 0;
	}
	http_buf_free(&c->head);
	http_buf_free(&c->body);
	http_buf_free(&c->prebody);
}

bool http_conn_pending(const struct http_conn *c)
{
	return c->in_off < c->in.len;
}

bool http_conn_unread_input(const struct http_conn *c, int fd)
{
	char b;
	if (c->in_off < c->in.len || c->body_cut || c->hp.state == HTTP_PARSE_BODY ||
	    c->hp.state == HTTP_PARSE_ERROR)
		return true;
	return fd >= 0 && recv(fd, &b, 1, MSG_DONTWAIT | MSG_PEEK) > 0;
}

static void in_compact(struct http_conn *c)
{
	if (c->in_off == 0)
		return;
	http_buf_consume(&c->in, c->in_off);
	c->in_off = 0;
}

static bool draining(const struct http_conn *c)
{
	return atomic_load_explicit(c->env->draining, memory_order_relaxed) != 0;
}

bool req_budget_claim(struct req_budget *b)
{
	if (!b || !b->max)
		return true;
	uint64_t n = atomic_load_explicit(&b->claimed, memory_order_relaxed);
	while (n < b->max)
		if (atomic_compare_exchange_weak_explicit(&b->claimed, &n, n + 1,
							  memory_order_relaxed, memory_order_relaxed))
			return true;
	return false;
}

void req_budget_unclaim(struct req_budget *b)
{
	if (b && b->max)
		atomic_fetch_sub_explicit(&b->claimed, 1, memory_order_relaxed);
}

bool req_budget_left(struct req_budget *b)
{
	return !b || !b->max || atomic_load_explicit(&b->claimed, memory_order_relaxed) < b->max;
}

/* Flag the slot, then wake the master (if it is still our parent: a signal
 * to whoever inherited us would be a stray). */
static void want_replacement(const struct conn_env *env, enum sb_want w)
{
	atomic_store_explicit(&env->slot->recycle_wanted, (uint32_t)w, memory_order_release);
	if (env->master_pid > 0 && getppid() == env->master_pid)
		kill(env->master_pid, SB_WAKE_MASTER_SIGNAL);
}

/* A request starts: it spends its connection's slot (a connection handed
 * over at a stop has none, and is counted all the same).  At warn_at the
 * worker asks the master for a replacement (scoreboard); the one that
 * reaches max_requests is the last admitted: the worker stops accepting and
 * waits for the master to drain it once its successor accepts (the graceful
 * replace path), or drains itself if none comes (worker.c). */
static void budget_spend(struct http_conn *c)
{
	struct req_budget *b = c->env->budget;
	if (!b || !b->max)
		return;
	if (c->slot_held)
		c->slot_held = false;
	else
		atomic_fetch_add_explicit(&b->claimed, 1, memory_order_relaxed);
	uint64_t n = atomic_fetch_add_explicit(&b->started, 1, memory_order_relaxed) + 1;
	struct sb_slot *s = c->env->slot;
	unsigned no = (unsigned)atomic_load_explicit(&s->worker_no, memory_order_relaxed);
	if (n == b->warn_at && n < b->max) {
		wlog_info("worker %u served %llu of max_requests %llu: asking for a replacement", no,
			  (unsigned long long)n, (unsigned long long)b->max);
		want_replacement(c->env, SB_WANT_SOON);
	}
	if (n != b->max)
		return;
	wlog_info("worker %u reached max_requests (%llu): waiting for its replacement", no,
		  (unsigned long long)b->max);
	atomic_store_explicit(&b->spent_ns, sb_now_ns(), memory_order_relaxed);
	want_replacement(c->env, SB_WANT_NOW);
}

/* The connection ends after this response: the worker drains, or no slot of
 * max_requests is left for a next request on it (a keep-alive response
 * holds one for it, so the last few of a thread worker all say close). */
static bool last_response(struct http_conn *c)
{
	if (draining(c))
		return true;
	if (!c->slot_held)
		c->slot_held = req_budget_claim(c->env->budget);
	return !c->slot_held;
}

/* Hand c->head and c->body to the io layer in one call, then forget them. */
static int flush_out(struct http_conn *c)
{
	struct iovec iov[2];
	int n = 0;
	if (c->head.len)
		iov[n++] = (struct iovec){c->head.data, c->head.len};
	if (c->body.len)
		iov[n++] = (struct iovec){c->body.data, c->body.len};
	if (n == 0 || c->client_gone)
		return c->client_gone ? -1 : 0;
	c->bytes_out += c->head.len + c->body.len;
	c->head.len = c->body.len = 0;
	if (c->io->send(c, iov, n) < 0) {
		c->client_gone = true;
		return -1;
	}
	return 0;
}

/* PEP 3333 "Buffering and Streaming": a block the app handed over must not
 * be delayed.  The blocking models' send puts it on the wire; the event
 * model queues, so it is told to write now (without waiting), unless the
 * body is complete by its length: then it goes when the app returns, with
 * the other responses of a pipelined batch. */
static int hand_over(struct http_conn *c)
{
	c->send_now = !http_response_length_reached(&c->resp);
	int rc = flush_out(c);
	c->send_now = false;
	return rc;
}

/* The request body will have been read to its end when this response is
 * over: read by the app or the model, or small enough for drain_body.
 * Asked when the head goes, so that a connection that will close after the
 * response says "Connection: close" in it (RFC 9112 §9.6). */
static bool body_will_end(const struct http_conn *c)
{
	const struct http_parse *hp = &c->hp;
	if (c->body_buffered || hp->state == HTTP_PARSE_DONE)
		return true;
	if (hp->state != HTTP_PARSE_BODY || c->body_broken)
		return false;
	if (hp->expect_continue && !c->continue_sent)
		return false; /* drain_body will not ask for it */
	return hp->content_length >= 0 &&
	       (unsigned long long)hp->content_length - hp->body_read <= BODY_DRAIN_MAX;
}

/* Put the response head in c->head.  known: the whole body length, or -1. */
static int put_head(struct http_conn *c, long long known)
{
	/* A drain that began while the app ran still makes this the last
	 * response of the connection, and says so, so that the client does not
	 * reuse a connection about to close. */
	if (c->resp.keep_alive && (!body_will_end(c) || last_response(c)))
		c->resp.keep_alive = false;
	if (http_response_head(&c->resp, &c->head, c->hp.http_minor, known) < 0)
		return -1;
	c->head_on_wire = true;
	return 0;
}

static int resp_status(struct drover_response *r, int status, const char *reason)
{
	struct http_conn *c = r->server;
	if (c->head_on_wire || !http_final_status_ok(status))
		return -1;
	return http_response_set_status(&c->resp, status, reason);
}

static int resp_header(struct drover_response *r, const char *name, const char *value)
{
	struct http_conn *c = r->server;
	return c->head_on_wire ? -1 : http_response_add_header(&c->resp, name, value);
}

/* Every write is a block handed over (see app.h): the head goes with the
 * first one (chunked, or close-delimited for HTTP/1.0, when the app gave no
 * Content-Length), each block as it comes.  A bodiless response drops the
 * bytes (http_response_body decides) and the connection stays in step. */
static int resp_write(struct drover_response *r, const void *buf, size_t len)
{
	struct http_conn *c = r->server;
	if (c->client_gone)
		return -1;
	if (!c->head_on_wire && put_head(c, -1) < 0)
		return -1;
	if (http_response_body(&c->resp, &c->body, buf, len) < 0)
		return -1;
	return hand_over(c);
}

/* Zero-copy when the io layer can and the bytes go out raw (announced
 * length or close-delimited, not chunked). */
static int sendfile_direct(struct http_conn *c, int fd, off_t off, size_t len)
{
	if (hand_over(c) < 0) /* the head first */
		return -1;
	if (c->io->sendfile(c, fd, off, len) < 0) {
		c->client_gone = true;
		return -1;
	}
	c->bytes_out += len;
	return 0;
}

static int resp_sendfile(struct drover_response *r, int fd, off_t off, size_t len)
{
	struct http_conn *c = r->server;
	if (c->client_gone)
		return -1;
	if (!c->head_on_wire && put_head(c, -1) < 0)
		return -1;
	if (!http_response_body_allowed(&c->resp) || len == 0)
		return http_response_admit(&c->resp, len) < 0 ? -1 : hand_over(c);
	if (c->io->sendfile && !c->resp.chunked) {
		if (http_response_admit(&c->resp, len) < 0)
			return -1; /* past the announced Content-Length */
		return sendfile_direct(c, fd, off, len);
	}
	/* Otherwise copy through the body buffer (chunk framing, event model). */
	char buf[65536];
	while (len > 0) {
		ssize_t n = pread(fd, buf, len < sizeof(buf) ? len : sizeof(buf), off);
		if (n <= 0)
			return -1;
		if (resp_write(r, buf, (size_t)n) < 0)
			return -1;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

static void send_interim_continue(struct http_conn *c)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	c->continue_sent = true;
	struct iovec iov = {(void *)cont, sizeof(cont) - 1};
	if (c->io->send(c, &iov, 1) < 0)
		c->client_gone = true;
}

/* Decoded body bytes from what is buffered, reading more when needed. */
static ssize_t req_read_body(struct drover_request *req, void *buf, size_t len)
{
	struct http_conn *c = req->server;
	if (c->body_buffered) {
		/* The model decoded the whole body before dispatch (event model). */
		size_t left = c->prebody.len - c->prebody_off;
		size_t n = left < len ? left : len;
		memcpy(buf, c->prebody.data + c->prebody_off, n);
		c->prebody_off += n;
		return (ssize_t)n;
	}
	if (c->hp.state == HTTP_PARSE_DONE || len == 0)
		return 0;
	if (c->hp.expect_continue && !c->continue_sent && !c->head_on_wire)
		send_interim_continue(c);
	for (;;) {
		if (c->hp.state == HTTP_PARSE_ERROR || c->client_gone)
			return -1;
		if (c->in_off < c->in.len) {
			size_t out = 0;
			size_t used = http_parse_body(&c->hp, c->in.data + c->in_off,
						      c->in.len - c->in_off, buf, len, &out);
			c->in_off += used;
			if (out > 0 || c->hp.state == HTTP_PARSE_DONE)
				return (ssize_t)out;
			if (c->hp.state == HTTP_PARSE_ERROR)
				return -1;
		}
		in_compact(c);
		ssize_t n = c->io->fill(c, c->env->conf->read_timeout);
		if (n <= 0) {
			c->body_broken = true; /* the rest can never be read */
			return -1;
		}
	}
}

static const struct drover_header *req_header(const struct drover_request *req, const char *n)
{
	return http_find_header(req->headers, req->nheaders, n);
}

/* The PROXY header in front of the first request (proxy_protocol = true):
 * 0 read (the peer is now the client it names), -EAGAIN more bytes needed,
 * 400 malformed or missing. */
static int parse_proxy(struct http_conn *c)
{
	char addr[sizeof(c->peer_addr)];
	int port = c->peer_port;
	snprintf(addr, sizeof(addr), "%s", c->peer_addr);
	/* gunicorn's proxy_allow_ips: anyone else could claim any address */
	if (!forwarded_trusted(&c->env->conf->proxy_allow_ips, c->peer_addr)) {
		c->hp.error_reason = "PROXY protocol from a peer not in proxy_allow_ips";
		return 400;
	}
	int n = proxy_parse((const unsigned char *)c->in.data + c->in_off, c->in.len - c->in_off,
			    addr, sizeof(addr), &port);
	if (n < 0) {
		c->hp.error_reason = "malformed or missing PROXY protocol header";
		return 400;
	}
	if (n == 0)
		return -EAGAIN;
	c->in_off += (size_t)n;
	c->proxy_seen = true;
	snprintf(c->peer_addr, sizeof(c->peer_addr), "%s", addr);
	c->peer_port = port;
	return 0;
}

int http_conn_parse_head(struct http_conn *c)
{
	if (!c->proxy_seen && c->env->conf->proxy_protocol && c->in_off < c->in.len) {
		int st = parse_proxy(c);
		if (st > 0)
			return st;
		if (st < 0)
			return -EAGAIN;
	}
	if (c->in_off < c->in.len && (c->proxy_seen || !c->env->conf->proxy_protocol)) {
		c->in_off += http_parse_head(&c->hp, c->in.data + c->in_off, c->in.len - c->in_off);
		if (c->hp.state == HTTP_PARSE_ERROR)
			return c->hp.error_status ? c->hp.error_status : 400;
		if (c->hp.state != HTTP_PARSE_HEAD)
			return 0;
	}
	if (c->in_off == c->in.len)
		c->in.len = c->in_off = 0;
	return -EAGAIN;
}

/* Read until a complete head is parsed.  0: head ready; -1: close quietly
 * (peer gone, idle, or too slow); >0: an HTTP error status to answer.  Once
 * a head has started, it must be complete within header_timeout in all (a
 * client dribbling one byte a second is closed), and no single wait may
 * exceed read_timeout. */
static int read_head(struct http_conn *c)
{
	const struct drover_conf *conf = c->env->conf;
	double idle = c->requests ? conf->keepalive : conf->header_timeout;
	uint64_t deadline = 0;
	bool started = false; /* bytes of this head were seen (and maybe parsed away) */
	for (;;) {
		started = started || c->in_off < c->in.len;
		int st = http_conn_parse_head(c);
		if (st != -EAGAIN)
			return st;
		if (!started && c->requests && draining(c))
			return -1;
		uint64_t now = sb_now_ns();
		double wait = idle;
		if (started) {
			if (!deadline)
				deadline = now + (uint64_t)(conf->header_timeout * 1e9);
			if (now >= deadline)
				return -1;
			wait = (double)(deadline - now) / 1e9;
			if (wait > conf->read_timeout)
				wait = conf->read_timeout;
		}
		ssize_t n = c->io->fill(c, wait);
		if (n <= 0)
			return -1;
		atomic_store_explicit(c->heartbeat, sb_now_ns(), memory_order_relaxed);
	}
}

static void answer_error(struct http_conn *c, int status)
{
	c->head.len = c->body.len = 0;
	if (http_error_response_for(&c->head, status, c->hp.http_minor ? 1 : 0,
				    c->resp.head_request) == 0)
		flush_out(c);
	c->resp.status = status;
}

static void setup_exchange(struct http_conn *c, bool parsed)
{
	struct drover_request *q = &c->req;
	memset(q, 0, sizeof(*q));
	if (parsed)
		http_parse_request(&c->hp, q);
	q->ops = &req_ops;
	q->peer_addr = c->peer_addr;
	q->peer_port = c->peer_port;
	q->server_addr = c->server_addr;
	q->server_port = c->server_port;
	q->url_scheme = forwarded_scheme(&c->env->conf->forwarded_allow_ips, c->peer_addr,
					 q->headers, q->nheaders);
	q->app_data = c->env->app->app_data;
	q->server = c;
	c->dresp.ops = &resp_ops;
	c->dresp.server = c;
	bool head = q->method.len == 4 && memcmp(q->method.ptr, "HEAD", 4) == 0;
	bool ka = c->hp.keep_alive && c->env->keepalive_ok && c->env->conf->keepalive > 0 &&
		  !c->close_next && !last_response(c);
	http_response_init(&c->resp, head, ka);
	c->head_on_wire = c->continue_sent = c->client_gone = c->body_broken = false;
	c->bytes_out = 0;
	c->head.len = c->body.len = 0;
}

/* After the app returned: the head if no write sent it (the body is then
 * complete and empty: Content-Length: 0 unless the app gave one), and the
 * end of the body. */
static int finish_response(struct http_conn *c, int app_rc)
{
	if (!c->head_on_wire) {
		if (app_rc != 0) {
			/* The app gave up because the body broke a limit (413) or
			 * was malformed (400): say so rather than 500. */
			int st = c->hp.state == HTTP_PARSE_ERROR && c->hp.error_status
					 ? c->hp.error_status
					 : 500;
			answer_error(c, st);
			return -1;
		}
		if (put_head(c, 0) < 0)
			return -1;
	}
	int ok = app_rc == 0 ? http_response_end(&c->resp, &c->body) : -1;
	if (flush_out(c) < 0)
		return -1;
	return ok;
}

/* The app left part of the body unread: read it away (bounded) so the
 * connection can carry the next request; otherwise it must close. */
static bool drain_body(struct http_conn *c)
{
	char sink[8192];
	size_t total = 0;
	while (c->hp.state == HTTP_PARSE_BODY && total < BODY_DRAIN_MAX) {
		if (c->hp.expect_continue && !c->continue_sent)
			return false; /* the client waits for our word: do not ask for it */
		ssize_t n = req_read_body(&c->req, sink, sizeof(sink));
		if (n <= 0)
			break;
		total += (size_t)n;
	}
	return c->hp.state == HTTP_PARSE_DONE;
}

static void account(struct http_conn *c)
{
	uint64_t end = sb_now_ns();
	uint64_t dur = end - c->t_start;
	struct sb_slot *s = c->env->slot;
	sb_request_done(s, c->resp.status, dur, c->bytes_out);
	atomic_store_explicit(c->heartbeat, end, memory_order_relaxed);
	if (c->env->alog)
		access_log_write(c->env->alog, &c->req, c->resp.status,
				 (uint64_t)c->resp.body_sent, dur);
}

enum conn_result http_conn_serve(struct http_conn *c)
{
	int st = read_head(c);
	if (st < 0)
		return CONN_CLOSE;
	return http_conn_dispatch(c, st);
}

enum conn_result http_conn_dispatch(struct http_conn *c, int st)
{
	c->t_start = sb_now_ns();
	atomic_store_explicit(c->heartbeat, c->t_start, memory_order_relaxed);
	budget_spend(c);
	setup_exchange(c, st == 0);
	bool keep = false;
	if (st > 0) {
		wlog_debug("bad request from %s: %d %s", c->peer_addr, st,
			   c->hp.error_reason ? c->hp.error_reason : "");
		answer_error(c, st);
	} else {
		watchdog_request_begin(&c->req);
		int rc = c->env->app->handler->handle(&c->req, &c->dresp);
		watchdog_request_end();
		if (rc != 0 && !c->head_on_wire)
			wlog_error("app returned %d for %.*s %.*s", rc, (int)c->req.method.len,
				   c->req.method.ptr, (int)c->req.target.len, c->req.target.ptr);
		keep = finish_response(c, rc) == 0 && c->resp.keep_alive && !c->client_gone;
		if (keep && c->hp.state != HTTP_PARSE_DONE)
			keep = drain_body(c);
		if (c->resp.body_dropped)
			wlog_debug("dropped %llu body bytes of a %d response to %.*s %.*s "
				   "(RFC 9112 6.3: it ends at its header section)",
				   c->resp.body_dropped, c->resp.status, (int)c->req.method.len,
				   c->req.method.ptr, (int)c->req.target.len, c->req.target.ptr);
	}
	c->requests++;
	account(c);
	c->body_cut = c->hp.state == HTTP_PARSE_BODY || c->hp.state == HTTP_PARSE_ERROR;
	c->body_buffered = false;
	c->prebody.len = c->prebody_off = 0;
	http_response_free(&c->resp);
	http_parse_next(&c->hp);
	in_compact(c);
	return keep ? CONN_KEEP : CONN_CLOSE;
}

/* For a model that drives the exchange itself (asgi): the same max_requests
 * and keep-alive rules as http_conn_dispatch. */
void http_conn_budget_spend(struct http_conn *c)
{
	budget_spend(c);
}

bool http_conn_last_response(struct http_conn *c)
{
	return last_response(c);
}

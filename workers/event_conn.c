/* One connection of the event model: non-blocking reads into c->in, every
 * complete request answered in order on the loop thread (bodies decoded into
 * c->prebody first, so the app never blocks on the socket), responses queued
 * and written once per batch, bounded by a high watermark (back-pressure), and
 * closed politely (shutdown, read away, close) so a response is never reset. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "workers/event_priv.h"
#include "workers/wlog.h"

#define READ_CHUNK 16384
#define READ_MAX_PER_EVENT (256 * 1024) /* then let other connections run */
#define BODY_STEP (256 * 1024) /* prebody grows by at most this per step */
/* Queued output above this: parse no more requests of the connection, and
 * stop reading it, until the client has taken some. */
#define OUT_HIGH (256 * 1024)
#define OUT_KEEP_CAP (64 * 1024) /* larger output buffers are freed once empty */

static void ec_on_io(struct ev_loop *loop, ev_io *io, int revents);

static size_t ec_queued(const struct econn *ec)
{
	return ec->out.len - ec->out_off;
}

/* Write queued output without waiting.  Bytes written, or -1: client gone. */
static ssize_t ec_flush(struct econn *ec)
{
	ssize_t total = 0;
	while (ec->out_off < ec->out.len) {
		ssize_t n = send(ec->c.fd, ec->out.data + ec->out_off, ec_queued(ec),
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return total;
			ec->c.client_gone = true;
			return -1;
		}
		ec->out_off += (size_t)n;
		total += n;
	}
	ec->out.len = ec->out_off = 0;
	if (ec->out.cap > OUT_KEEP_CAP)
		http_buf_free(&ec->out);
	return total;
}

/* conn_io.send: queue the bytes; they go out after the batch of requests
 * (one write for a whole pipeline), or now if the queue got large.  A block
 * the app streams (c->send_now) is written at once, without waiting for the
 * socket: the app runs on the loop thread and may sleep before its next
 * block (PEP 3333); what the socket does not take stays queued. */
static int ec_send(struct http_conn *c, const struct iovec *iov, int iovcnt)
{
	struct econn *ec = c->model_data;
	if (ec->out_off && ec->out_off >= ec->out.len / 2) {
		http_buf_consume(&ec->out, ec->out_off);
		ec->out_off = 0;
	}
	for (int i = 0; i < iovcnt; i++)
		if (http_buf_append(&ec->out, iov[i].iov_base, iov[i].iov_len) < 0)
			return -1;
	if ((c->send_now || ec_queued(ec) > OUT_HIGH) && ec_flush(ec) < 0)
		return -1;
	return 0;
}

/* conn_io.fill: never called, bodies are decoded before dispatch. */
static ssize_t ec_fill(struct http_conn *c, double timeout)
{
	(void)c;
	(void)timeout;
	return -1;
}

static const struct conn_io ec_io = {ec_fill, ec_send, NULL}; /* writes are queued */

/* Read what the socket has, in one recv unless it came back full.  Bytes
 * read (0: nothing now; EOF sets peer_eof), or -1 on an error. */
static ssize_t ec_read(struct econn *ec)
{
	struct http_conn *c = &ec->c;
	ssize_t total = 0;
	while (total < READ_MAX_PER_EVENT) {
		if (http_buf_reserve(&c->in, READ_CHUNK) < 0)
			return -1;
		size_t room = c->in.cap - c->in.len;
		ssize_t n = recv(c->fd, c->in.data + c->in.len, room, MSG_DONTWAIT);
		if (n > 0) {
			c->in.len += (size_t)n;
			total += n;
			if ((size_t)n < room)
				break;
		} else if (n == 0) {
			ec->peer_eof = true;
			break;
		} else if (errno == EINTR) {
			continue;
		} else {
			return errno == EAGAIN || errno == EWOULDBLOCK ? total : -1;
		}
	}
	return total;
}

static void ec_count(struct econn *ec, bool on)
{
	struct ev_worker *w = ec->w;
	if (ec->counted == on)
		return;
	ec->counted = on;
	w->inflight = on ? w->inflight + 1 : w->inflight - 1;
	atomic_store_explicit(&w->rt->args->slot->inflight, w->inflight, memory_order_relaxed);
}

static void ec_queue_continue(struct econn *ec)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	struct iovec iov = {(void *)cont, sizeof(cont) - 1};
	ec->sent_continue = true;
	ec_send(&ec->c, &iov, 1);
}

/* Decode the buffered body bytes.  0: body complete; -EAGAIN: more to come;
 * >0: an HTTP error status (bad chunk, too large). */
static int ec_body(struct econn *ec)
{
	struct http_conn *c = &ec->c;
	struct http_parse *hp = &c->hp;
	while (c->in_off < c->in.len && hp->state == HTTP_PARSE_BODY) {
		size_t want = BODY_STEP;
		if (hp->content_length > 0 &&
		    (unsigned long long)hp->content_length - hp->body_read < want)
			want = (size_t)((unsigned long long)hp->content_length - hp->body_read);
		if (http_buf_reserve(&c->prebody, want ? want : 1) < 0)
			return 500;
		size_t out = 0;
		size_t used = http_parse_body(hp, c->in.data + c->in_off, c->in.len - c->in_off,
					      c->prebody.data + c->prebody.len,
					      c->prebody.cap - c->prebody.len, &out);
		c->in_off += used;
		c->prebody.len += out;
		if (used == 0 && out == 0)
			break;
	}
	if (c->in_off == c->in.len)
		c->in.len = c->in_off = 0;
	if (hp->state == HTTP_PARSE_ERROR)
		return hp->error_status ? hp->error_status : 400;
	if (hp->state != HTTP_PARSE_BODY) {
		c->body_buffered = true;
		c->prebody_off = 0;
		return 0;
	}
	if (hp->expect_continue && !ec->sent_continue && hp->http_minor >= 1)
		ec_queue_continue(ec);
	return -EAGAIN;
}

/* Answer one request (or the error st) on the loop thread. */
static void ec_dispatch(struct econn *ec, int st)
{
	struct ev_worker *w = ec->w;
	struct sb_slot *s = w->rt->args->slot;
	sb_store(&s->req_start_ns, w->now_ns);
	sb_set_state(s, SB_BUSY);
	enum conn_result r = http_conn_dispatch(&ec->c, st);
	sb_store(&s->req_start_ns, 0);
	sb_set_state(s, w->draining ? SB_DRAINING : SB_IDLE);
	ec_count(ec, false);
	ec->head_started = ec->sent_continue = false;
	if (r == CONN_CLOSE || ec->c.client_gone)
		ec->closing = true;
}

/* Parse and answer the buffered requests in order, while the output queue
 * stays below the high watermark (back-pressure on pipelining clients). */
static void ec_process(struct econn *ec)
{
	struct http_conn *c = &ec->c;
	while (!ec->closing && ec_queued(ec) <= OUT_HIGH) {
		int st = 0;
		if (!ec->in_body) {
			if (c->in_off < c->in.len)
				ec->head_started = true;
			st = http_conn_parse_head(c);
			if (st == -EAGAIN)
				break;
			ec_count(ec, true);
			ec->in_body = st == 0 && c->hp.state == HTTP_PARSE_BODY;
		}
		if (ec->in_body) {
			st = ec_body(ec);
			if (st == -EAGAIN)
				break;
			ec->in_body = false;
		}
		ec_dispatch(ec, st);
	}
	/* A request cut short by EOF can never complete. */
	if (ec->peer_eof)
		ec->closing = true;
}

static void ec_watch(struct econn *ec, int events)
{
	if ((ec->io.events & (EV_READ | EV_WRITE)) == events)
		return;
	ev_io_stop(ec->w->loop, &ec->io);
	ev_io_set(&ec->io, ec->c.fd, events);
	ev_io_start(ec->w->loop, &ec->io);
}

/* Our FIN goes out; what the client still sends is read away until its FIN
 * or EV_LINGER_S, so close() never turns unread input into a RST. */
static void ec_linger(struct econn *ec)
{
	if (ec->lingering)
		return;
	ec->lingering = true;
	if (shutdown(ec->c.fd, SHUT_WR) < 0) {
		econn_destroy(ec);
		return;
	}
	ec_watch(ec, EV_READ);
	ev_worker_wait(ec, EC_WAIT_LINGER, ec->w->now_ns);
}

/* At most 16 reads per event, so a client that floods cannot hold the
 * loop; what is left comes with the next event.  Only EOF or an error ends
 * the linger early (destroying it after 16 full reads sent the RST the
 * linger is there to avoid: a 413 before a 4 MiB upload was lost). */
static void ec_linger_read(struct econn *ec)
{
	char sink[16384];
	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(ec->c.fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		econn_destroy(ec); /* EOF: the client read all and closed; or an error */
		return;
	}
}

/* All output is out and no more requests will be read: close, lingering if
 * the client may still be sending. */
static void ec_finish(struct econn *ec)
{
	struct http_conn *c = &ec->c;
	if (ec->peer_eof || c->client_gone || !http_conn_unread_input(c, c->fd)) {
		econn_destroy(ec);
		return;
	}
	ec_linger(ec);
}

/* After any activity: choose the events to watch and the wait (timeout). */
static void ec_settle(struct econn *ec, bool activity)
{
	enum ec_wait wt;
	if (ec_queued(ec)) {
		wt = EC_WAIT_WRITE;
		ec_watch(ec, EV_WRITE | (!ec->closing && ec_queued(ec) <= OUT_HIGH ? EV_READ : 0));
	} else if (ec->closing) {
		ec_finish(ec);
		return;
	} else {
		wt = ec->in_body			 ? EC_WAIT_BODY
		     : ec->head_started || !ec->c.requests ? EC_WAIT_HEAD
							 : EC_WAIT_IDLE;
		ec_watch(ec, EV_READ);
	}
	/* A head keeps the time of its first byte (slow-loris bound). */
	if (wt != ec->wait || (activity && wt != EC_WAIT_HEAD))
		ev_worker_wait(ec, wt, ec->w->now_ns);
}

static void ec_on_io(struct ev_loop *loop, ev_io *io, int revents)
{
	struct econn *ec = io->data;
	(void)loop;
	if (ec->lingering) {
		ec_linger_read(ec);
		return;
	}
	ssize_t act = 0;
	if (revents & EV_WRITE) {
		act = ec_flush(ec);
		if (act < 0) {
			econn_destroy(ec);
			return;
		}
	}
	if (revents & EV_READ && !ec->closing) {
		ssize_t n = ec_read(ec);
		if (n < 0) {
			econn_destroy(ec);
			return;
		}
		act += n;
	}
	/* Also after a write: requests held back by the watermark may go on. */
	if (!ec->closing)
		ec_process(ec);
	if (ec_queued(ec)) {
		ssize_t n = ec_flush(ec);
		if (n < 0) {
			econn_destroy(ec);
			return;
		}
		act += n;
	}
	ec_settle(ec, act > 0);
}

struct econn *econn_new(struct ev_worker *w, int fd, const struct worker_listener *l)
{
	struct econn *ec = calloc(1, sizeof(*ec));
	if (!ec)
		return NULL;
	ec->w = w;
	http_conn_init(&ec->c, &w->rt->env, &ec_io, fd, l, NULL);
	ec->c.model_data = ec;
	ev_io_init(&ec->io, ec_on_io, fd, EV_READ);
	ec->io.data = ec;
	ev_io_start(w->loop, &ec->io);
	ec->wait = EC_WAIT_NONE;
	ev_worker_wait(ec, EC_WAIT_HEAD, w->now_ns);
	w->nconns++;
	atomic_store_explicit(&w->rt->args->slot->connections, w->nconns, memory_order_relaxed);
	return ec;
}

void econn_timeout(struct econn *ec)
{
	switch (ec->wait) {
	case EC_WAIT_HEAD:
		wlog_debug("closing %s:%d: no complete request head within header_timeout",
			   ec->c.peer_addr, ec->c.peer_port);
		ec_linger(ec);
		break;
	case EC_WAIT_BODY:
		wlog_debug("closing %s:%d: request body stalled past read_timeout",
			   ec->c.peer_addr, ec->c.peer_port);
		ec_linger(ec);
		break;
	case EC_WAIT_IDLE:
		ec_linger(ec);
		break;
	case EC_WAIT_WRITE: /* nginx's send_timeout: this connection only */
		wlog_debug("closing %s:%d: the client took none of the response within send_timeout",
			   ec->c.peer_addr, ec->c.peer_port);
		econn_destroy(ec);
		break;
	default: /* a linger that ran out */
		econn_destroy(ec);
		break;
	}
}

void econn_destroy(struct econn *ec)
{
	struct ev_worker *w = ec->w;
	ev_io_stop(w->loop, &ec->io);
	ev_worker_wait(ec, EC_WAIT_NONE, 0);
	ec_count(ec, false);
	if (ec->c.fd >= 0)
		close(ec->c.fd);
	ec->c.fd = -1;
	http_conn_free(&ec->c);
	http_buf_free(&ec->out);
	free(ec);
	w->nconns--;
	atomic_store_explicit(&w->rt->args->slot->connections, w->nconns, memory_order_relaxed);
}

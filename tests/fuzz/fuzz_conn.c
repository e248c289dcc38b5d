/* See fuzz_conn.h. */
#include "fuzz_conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "fuzz.h"
#include "workers/wlog.h"

struct feed {
	const uint8_t *p;
	size_t n, off, piece;
	struct http_buf *out;
};
static struct feed feed; /* one connection at a time */

static ssize_t feed_fill(struct http_conn *c, double timeout)
{
	(void)timeout;
	size_t k = feed.n - feed.off;
	if (k > feed.piece)
		k = feed.piece;
	if (k == 0)
		return 0; /* the client closed */
	if (http_buf_append(&c->in, feed.p + feed.off, k) < 0)
		return -1;
	feed.off += k;
	return (ssize_t)k;
}

static int feed_send(struct http_conn *c, const struct iovec *iov, int iovcnt)
{
	(void)c;
	for (int i = 0; i < iovcnt; i++)
		if (http_buf_append(feed.out, iov[i].iov_base, iov[i].iov_len) < 0)
			return -1;
	return 0;
}

static const struct conn_io feed_io = {feed_fill, feed_send, NULL};

static struct drover_conf conf[2]; /* [proxy_protocol] */
static bool conf_ready;

static void conf_setup(void)
{
	for (int i = 0; i < 2; i++) {
		conf_defaults(&conf[i]);
		conf[i].proxy_protocol = i;
	}
	wlog_level = LOG_CRITICAL_ + 1; /* the harness wants no log lines */
	conf_ready = true;
}

unsigned fuzz_conn_run(const struct drover_app *app, const struct fuzz_conn_opts *o,
		       const uint8_t *in, size_t n, struct http_buf *out)
{
	static struct sb_slot slot;
	static atomic_int draining;
	if (!conf_ready)
		conf_setup();
	struct req_budget budget = {0};
	struct app a = {.kind = "so", .handler = app};
	struct conn_env env = {.conf = &conf[o->proxy_protocol], .app = &a, .slot = &slot,
			       .draining = &draining, .budget = &budget,
			       .keepalive_ok = o->keepalive};
	if (o->small_limits)
		env.limits = (struct http_limits){64, 64, 4, 100};
	else
		env.limits = (struct http_limits){8190, 8190, 100, 1 << 20};
	struct worker_listener l = {.fd = -1, .family = AF_UNIX, .name = "fuzz"};
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000)};
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* in proxy_allow_ips */
	feed = (struct feed){in, n, 0, o->piece ? o->piece : 1, out};
	struct http_conn c;
	http_conn_init(&c, &env, &feed_io, -1, &l, (const struct sockaddr *)&peer);
	unsigned served = 0;
	enum conn_result r;
	do {
		r = http_conn_serve(&c);
		served++;
		FUZZ_ASSERT(c.in_off <= c.in.len);
	} while (r == CONN_KEEP && served < 1000);
	http_conn_free(&c);
	return served;
}

/* Thread-group totals through taskstats (see taskstats.h).  The message
 * layout is generic netlink's: nlmsghdr, genlmsghdr, then attributes
 * (include/uapi/linux/netlink.h, genetlink.h, taskstats.h).  The parsers
 * are pure and bound every read by the lengths the message gives; the
 * struct taskstats the kernel sends may be newer (longer) than our header's,
 * never shorter than the fields we use (they date from version 1 and 2). */
#include "supervisor/taskstats.h"

#include <errno.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/taskstats.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TS_BUF 2048 /* a TGID reply is ~450 bytes on 6.x kernels */

/* One attribute list [p, p + len): calls fn for each whole attribute. */
static int attrs_each(const unsigned char *p, size_t len,
		      int (*fn)(uint16_t type, const unsigned char *v, size_t n, void *ctx),
		      void *ctx)
{
	while (len >= NLA_HDRLEN) {
		struct nlattr a;
		memcpy(&a, p, sizeof(a));
		if (a.nla_len < NLA_HDRLEN || a.nla_len > len)
			return -EINVAL;
		int r = fn(a.nla_type & NLA_TYPE_MASK, p + NLA_HDRLEN, a.nla_len - NLA_HDRLEN, ctx);
		if (r)
			return r;
		size_t step = NLA_ALIGN(a.nla_len);
		if (step >= len)
			break;
		p += step;
		len -= step;
	}
	return 0;
}

struct tgid_ctx {
	pid_t tgid;
	bool id_ok, stats_ok;
	struct ts_totals *out;
};

static void totals_from(const struct taskstats *s, struct ts_totals *o)
{
	*o = (struct ts_totals){
		.nvcsw = s->nvcsw,
		.nivcsw = s->nivcsw,
		.cpu_ns = (s->ac_utime + s->ac_stime) * 1000,
		.run_ns = s->cpu_run_virtual_total,
		.delay_ns = s->cpu_delay_total,
		.cpu_count = s->cpu_count,
		.has_delay = s->cpu_count != 0,
	};
}

static int aggr_attr(uint16_t type, const unsigned char *v, size_t n, void *ctx)
{
	struct tgid_ctx *c = ctx;
	if (type == TASKSTATS_TYPE_TGID && n >= sizeof(uint32_t)) {
		uint32_t id;
		memcpy(&id, v, sizeof(id));
		c->id_ok = (pid_t)id == c->tgid;
	} else if (type == TASKSTATS_TYPE_STATS &&
		   n >= offsetof(struct taskstats, nivcsw) + sizeof(uint64_t)) {
		struct taskstats s = {0};
		memcpy(&s, v, n < sizeof(s) ? n : sizeof(s));
		totals_from(&s, c->out);
		c->stats_ok = true;
	}
	return 0;
}

static int top_attr(uint16_t type, const unsigned char *v, size_t n, void *ctx)
{
	return type == TASKSTATS_TYPE_AGGR_TGID ? attrs_each(v, n, aggr_attr, ctx) : 0;
}

/* The first message of a reply, as nlmsghdr + genlmsghdr; or the error it
 * carries; body and blen: the attributes. */
static int reply_body(const void *msg, size_t len, uint16_t type, const unsigned char **body,
		      size_t *blen)
{
	struct nlmsghdr h;
	if (len < sizeof(h))
		return -EINVAL;
	memcpy(&h, msg, sizeof(h));
	if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len)
		return -EINVAL;
	const unsigned char *p = (const unsigned char *)msg + NLMSG_HDRLEN;
	size_t n = h.nlmsg_len - NLMSG_HDRLEN;
	if (h.nlmsg_type == NLMSG_ERROR) {
		struct nlmsgerr e;
		if (n < sizeof(e.error))
			return -EINVAL;
		memcpy(&e.error, p, sizeof(e.error));
		return e.error < 0 ? e.error : -EINVAL; /* an ack is no answer */
	}
	if (h.nlmsg_type != type || n < GENL_HDRLEN)
		return -EINVAL;
	*body = p + GENL_HDRLEN;
	*blen = n - GENL_HDRLEN;
	return 0;
}

int taskstats_parse_reply(const void *msg, size_t len, uint16_t family, pid_t tgid,
			  struct ts_totals *out)
{
	const unsigned char *body;
	size_t blen;
	int r = reply_body(msg, len, family, &body, &blen);
	if (r < 0)
		return r;
	struct tgid_ctx c = {.tgid = tgid, .out = out};
	if (attrs_each(body, blen, top_attr, &c) < 0 || !c.id_ok || !c.stats_ok)
		return -EINVAL;
	return 0;
}

static int family_attr(uint16_t type, const unsigned char *v, size_t n, void *ctx)
{
	if (type == CTRL_ATTR_FAMILY_ID && n >= sizeof(uint16_t)) {
		memcpy(ctx, v, sizeof(uint16_t));
		return 1;
	}
	return 0;
}

int taskstats_parse_family(const void *msg, size_t len, uint16_t *family)
{
	const unsigned char *body;
	size_t blen;
	int r = reply_body(msg, len, GENL_ID_CTRL, &body, &blen);
	if (r < 0)
		return r;
	*family = 0;
	return attrs_each(body, blen, family_attr, family) == 1 && *family ? 0 : -EINVAL;
}

/* ---- I/O ---- */

struct request {
	struct nlmsghdr n;
	struct genlmsghdr g;
	unsigned char attrs[64];
};

static void put_attr(struct request *q, uint16_t type, const void *v, size_t n)
{
	struct nlattr a = {.nla_len = (uint16_t)(NLA_HDRLEN + n), .nla_type = type};
	unsigned char *p = (unsigned char *)q + NLMSG_ALIGN(q->n.nlmsg_len);
	memcpy(p, &a, sizeof(a));
	memcpy(p + NLA_HDRLEN, v, n);
	q->n.nlmsg_len = NLMSG_ALIGN(q->n.nlmsg_len) + NLA_ALIGN(a.nla_len);
}

/* Send one request and take its reply, which the kernel queued during
 * sendmsg.  Replies to earlier requests that were never read (a previous
 * -EAGAIN) are skipped by their sequence number. */
static int transact(struct taskstats_sock *t, struct request *q, unsigned char *buf, size_t cap,
		    size_t *got)
{
	q->n.nlmsg_flags = NLM_F_REQUEST;
	q->n.nlmsg_seq = ++t->seq;
	struct sockaddr_nl to = {.nl_family = AF_NETLINK};
	if (sendto(t->fd, q, q->n.nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	for (int i = 0; i < 4; i++) {
		ssize_t n = recv(t->fd, buf, cap, MSG_DONTWAIT);
		if (n < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		struct nlmsghdr h;
		if ((size_t)n < sizeof(h))
			return -EINVAL;
		memcpy(&h, buf, sizeof(h));
		if (h.nlmsg_seq == t->seq) {
			*got = (size_t)n;
			return 0;
		}
	}
	return -EAGAIN;
}

static void request_init(struct request *q, uint16_t type, uint8_t cmd, uint8_t version)
{
	memset(q, 0, sizeof(*q));
	q->n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	q->n.nlmsg_type = type;
	q->g.cmd = cmd;
	q->g.version = version;
}

int taskstats_open(struct taskstats_sock *t)
{
	t->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (t->fd < 0)
		return -errno;
	struct sockaddr_nl me = {.nl_family = AF_NETLINK};
	struct request q;
	unsigned char buf[TS_BUF];
	size_t got;
	int r = bind(t->fd, (struct sockaddr *)&me, sizeof(me)) < 0 ? -errno : 0;
	if (r == 0) {
		request_init(&q, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1);
		put_attr(&q, CTRL_ATTR_FAMILY_NAME, TASKSTATS_GENL_NAME, sizeof(TASKSTATS_GENL_NAME));
		r = transact(t, &q, buf, sizeof(buf), &got);
	}
	if (r == 0)
		r = taskstats_parse_family(buf, got, &t->family);
	if (r < 0) {
		taskstats_close(t);
		return r == -EINVAL ? -ENOENT : r; /* no such family here */
	}
	return 0;
}

int taskstats_tgid(struct taskstats_sock *t, pid_t tgid, struct ts_totals *out)
{
	if (t->fd < 0)
		return -EBADF;
	struct request q;
	unsigned char buf[TS_BUF];
	size_t got;
	uint32_t id = (uint32_t)tgid;
	request_init(&q, t->family, TASKSTATS_CMD_GET, TASKSTATS_GENL_VERSION);
	put_attr(&q, TASKSTATS_CMD_ATTR_TGID, &id, sizeof(id));
	int r = transact(t, &q, buf, sizeof(buf), &got);
	return r < 0 ? r : taskstats_parse_reply(buf, got, t->family, tgid, out);
}

void taskstats_close(struct taskstats_sock *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

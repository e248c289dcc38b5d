/* Unit tests for supervisor/taskstats: the reply parsers on hand-built
 * generic netlink messages (a TGID reply, a shorter struct taskstats from an
 * older kernel, an error reply, a reply for another thread group, every cut
 * prefix), and one live query of this process where the kernel allows it. */
#include "supervisor/taskstats.h"
#include "check.h"

#include <errno.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/taskstats.h>
#include <stdlib.h>
#include <unistd.h>

#define FAMILY 31

static unsigned char msg[1024];

static size_t put(size_t at, uint16_t type, const void *v, size_t n)
{
	struct nlattr a = {.nla_len = (uint16_t)(NLA_HDRLEN + n), .nla_type = type};
	memcpy(msg + at, &a, sizeof(a));
	if (v)
		memcpy(msg + at + NLA_HDRLEN, v, n);
	return at + NLA_ALIGN(a.nla_len);
}

static size_t header(uint16_t type, size_t total)
{
	struct nlmsghdr h = {.nlmsg_len = (uint32_t)total, .nlmsg_type = type};
	struct genlmsghdr g = {.cmd = TASKSTATS_CMD_NEW, .version = 1};
	memcpy(msg, &h, sizeof(h));
	memcpy(msg + NLMSG_HDRLEN, &g, sizeof(g));
	return NLMSG_HDRLEN + GENL_HDRLEN;
}

/* A TGID reply as the kernel builds it (mk_reply + fill_stats_for_tgid):
 * AGGR_TGID { TGID, STATS }, with stats_len bytes of struct taskstats. */
static size_t tgid_reply(uint32_t tgid, size_t stats_len)
{
	struct taskstats s = {.version = TASKSTATS_VERSION, .nvcsw = 120, .nivcsw = 7,
			      .ac_utime = 3000, .ac_stime = 1000, .cpu_count = 50,
			      .cpu_delay_total = 2500000, .cpu_run_virtual_total = 4100000};
	size_t at = header(FAMILY, 0);
	size_t nest = at;
	at = put(at, TASKSTATS_TYPE_AGGR_TGID, NULL, 0);
	at = put(at, TASKSTATS_TYPE_TGID, &tgid, sizeof(tgid));
	at = put(at, TASKSTATS_TYPE_STATS, &s, stats_len);
	struct nlattr a = {.nla_len = (uint16_t)(at - nest), .nla_type = TASKSTATS_TYPE_AGGR_TGID};
	memcpy(msg + nest, &a, sizeof(a));
	header(FAMILY, at);
	return at;
}

static void parses_tgid_reply(void)
{
	struct ts_totals t;
	size_t n = tgid_reply(4242, sizeof(struct taskstats));
	CHECK(taskstats_parse_reply(msg, n, FAMILY, 4242, &t) == 0);
	CHECK(t.nvcsw == 120 && t.nivcsw == 7);
	CHECK(t.cpu_ns == 4000000); /* us -> ns */
	CHECK(t.has_delay && t.delay_ns == 2500000 && t.run_ns == 4100000 && t.cpu_count == 50);
}

static void older_struct_is_enough(void)
{
	/* A kernel whose struct ends right after nivcsw still gives the totals. */
	struct ts_totals t;
	size_t n = tgid_reply(4242, offsetof(struct taskstats, nivcsw) + 8);
	CHECK(taskstats_parse_reply(msg, n, FAMILY, 4242, &t) == 0);
	CHECK(t.nvcsw == 120 && t.nivcsw == 7);
	n = tgid_reply(4242, offsetof(struct taskstats, nivcsw));
	CHECK(taskstats_parse_reply(msg, n, FAMILY, 4242, &t) == -EINVAL);
}

static void other_group_or_family_rejected(void)
{
	struct ts_totals t;
	size_t n = tgid_reply(4242, sizeof(struct taskstats));
	CHECK(taskstats_parse_reply(msg, n, FAMILY, 4243, &t) == -EINVAL);
	CHECK(taskstats_parse_reply(msg, n, FAMILY + 1, 4242, &t) == -EINVAL);
}

static void error_reply_gives_errno(void)
{
	struct nlmsghdr h = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct nlmsgerr)),
			     .nlmsg_type = NLMSG_ERROR};
	struct nlmsgerr e = {.error = -EPERM};
	memcpy(msg, &h, sizeof(h));
	memcpy(msg + NLMSG_HDRLEN, &e, sizeof(e));
	struct ts_totals t;
	CHECK(taskstats_parse_reply(msg, h.nlmsg_len, FAMILY, 1, &t) == -EPERM);
	e.error = 0; /* an ack carries no stats */
	memcpy(msg + NLMSG_HDRLEN, &e, sizeof(e));
	CHECK(taskstats_parse_reply(msg, h.nlmsg_len, FAMILY, 1, &t) == -EINVAL);
}

static void every_prefix_is_safe(void)
{
	size_t n = tgid_reply(77, sizeof(struct taskstats));
	unsigned char *copy = malloc(n);
	memcpy(copy, msg, n);
	for (size_t len = 0; len < n; len++) {
		unsigned char *cut = malloc(len ? len : 1); /* exact size: valgrind sees overreads */
		memcpy(cut, copy, len);
		struct ts_totals t;
		CHECK(taskstats_parse_reply(cut, len, FAMILY, 77, &t) < 0);
		free(cut);
	}
	free(copy);
}

static void parses_family_reply(void)
{
	size_t at = header(GENL_ID_CTRL, 0);
	at = put(at, CTRL_ATTR_FAMILY_NAME, TASKSTATS_GENL_NAME, sizeof(TASKSTATS_GENL_NAME));
	uint16_t id = 27;
	at = put(at, CTRL_ATTR_FAMILY_ID, &id, sizeof(id));
	header(GENL_ID_CTRL, at);
	uint16_t got = 0;
	CHECK(taskstats_parse_family(msg, at, &got) == 0 && got == 27);
	CHECK(taskstats_parse_family(msg, at - 8, &got) < 0);
}

static void live_query_or_known_refusal(void)
{
	struct taskstats_sock s;
	int r = taskstats_open(&s);
	if (r < 0) { /* no taskstats in this kernel, or no netlink: the /proc way */
		CHECK(r == -ENOENT || r == -EPERM || r == -EACCES || r == -EAFNOSUPPORT ||
		      r == -EPROTONOSUPPORT);
		return;
	}
	struct ts_totals t;
	usleep(1000); /* at least one voluntary switch */
	r = taskstats_tgid(&s, getpid(), &t);
	if (r == 0)
		CHECK(t.nvcsw + t.nivcsw > 0);
	else
		CHECK(r == -EPERM); /* without CAP_NET_ADMIN */
	taskstats_close(&s);
	CHECK(taskstats_tgid(&s, getpid(), &t) == -EBADF);
}

int main(void)
{
	RUN(parses_tgid_reply);
	RUN(older_struct_is_enough);
	RUN(other_group_or_family_rejected);
	RUN(error_reply_gives_errno);
	RUN(every_prefix_is_safe);
	RUN(parses_family_reply);
	RUN(live_query_or_known_refusal);
	return check_summary();
}

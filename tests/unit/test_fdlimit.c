/* Unit tests of supervisor/fdlimit.c: the fds a configuration needs per
 * process, raising the soft RLIMIT_NOFILE (in this test process), the
 * accept-failure kinds and their Prometheus lines. */
#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "check.h"
#include "supervisor/fdlimit.h"
#include "supervisor/sample.h"

static struct drover_conf base(void)
{
	struct drover_conf c;
	conf_defaults(&c);
	return c;
}

static void need_per_model(void)
{
	struct drover_conf c = base();
	c.workers = 4;
	c.backlog = 128;
	c.worker_connections = 5000;
	c.worker_class = WORKER_EVENT;
	struct fdlimit_need n = fdlimit_need(&c, 2);
	CHECK(n.worker == 5000 + 2 + 64);
	CHECK(n.want == n.worker); /* per process: not 4 x 5000 */
	c.worker_class = WORKER_SYNC; /* one client at a time: the master's need wins */
	n = fdlimit_need(&c, 2);
	CHECK(n.worker == 1 + 2 + 64);
	CHECK(n.want == n.master && n.master >= 2 * 128 + 8 * 4);
	conf_free(&c);
}

static void need_autoscale_ceiling(void)
{
	struct drover_conf c = base();
	c.workers = 2;
	c.backlog = 16;
	c.autoscale = true;
	c.max_workers = 0; /* 4 x workers */
	unsigned long long m8 = fdlimit_need(&c, 1).master;
	c.max_workers = 100;
	unsigned long long m100 = fdlimit_need(&c, 1).master;
	CHECK(m100 - m8 == (100 - 8) * 2 * 4); /* old and new generation, 4 fds each */
	conf_free(&c);
}

static void raise_soft_limit(void)
{
	struct rlimit rl = {.rlim_cur = 64, .rlim_max = 1024};
	CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	struct fdlimit_result r;
	CHECK(fdlimit_raise(200, &r) == 0);
	CHECK(r.soft_before == 64 && r.soft == 200 && r.hard == 1024);
	CHECK(fdlimit_raise(100, &r) == 0); /* never lowered */
	CHECK(r.soft == 200);
	CHECK(fdlimit_raise(5000, &r) == -ERANGE); /* as far as the hard limit */
	CHECK(r.soft == 1024 && r.hard == 1024);
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur == 1024);
}

static void accept_error_kinds(void)
{
	CHECK(sb_accept_err_kind(EMFILE) == SB_AE_EMFILE);
	CHECK(sb_accept_err_kind(ENFILE) == SB_AE_ENFILE);
	CHECK(sb_accept_err_kind(ENOBUFS) == SB_AE_NOMEM);
	CHECK(sb_accept_err_kind(ENOMEM) == SB_AE_NOMEM);
	CHECK(sb_accept_err_kind(EPROTO) == SB_AE_OTHER);
	CHECK_STR(sb_accept_err_name(SB_AE_EMFILE), "EMFILE");
	CHECK_STR(sb_accept_err_name(99), "other");
}

static void prometheus_lines(void)
{
	struct sampler *s = calloc(1, sizeof(*s));
	s->w[0].p.pid = 4711;
	s->w[0].no = 3;
	s->w[0].accept_errors[SB_AE_EMFILE] = 7;
	s->master.accept_errors[1][SB_AE_ENFILE] = 2;
	struct mbuf b;
	mbuf_init(&b, 1 << 20);
	fdlimit_prometheus(s, &b);
	CHECK(strstr(b.p, "# TYPE drover_accept_errors_total counter\n"));
	CHECK(strstr(b.p, "drover_accept_errors_total{worker=\"3\",pid=\"4711\",errno=\"EMFILE\"} 7\n"));
	CHECK(strstr(b.p, "drover_accept_errors_total{worker=\"3\",pid=\"4711\",errno=\"ENFILE\"} 0\n"));
	CHECK(strstr(b.p, "drover_master_accept_errors_total{server=\"metrics\",errno=\"ENFILE\"} 2\n"));
	CHECK(strstr(b.p, "drover_master_accept_errors_total{server=\"control\",errno=\"EMFILE\"} 0\n"));
	mbuf_free(&b);
	free(s);
}

int main(void)
{
	RUN(need_per_model);
	RUN(need_autoscale_ceiling);
	RUN(raise_soft_limit);
	RUN(accept_error_kinds);
	RUN(prometheus_lines);
	return check_summary();
}

/* The control protocol: one command line in, one line of JSON out, over the
 * control socket (a unix stream socket, mode 0600, peers checked with
 * SO_PEERCRED) served by ctlsrv.c on the master's loop.  Commands come from
 * the table control_cmds[]; their actions go through the arbiter, the same
 * paths as the signals. */
#include "supervisor/control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "supervisor/arbiter.h"
#include "supervisor/ctlsrv.h"
#include "supervisor/doctor_out.h"
#include "supervisor/log.h"
#include "supervisor/metrics.h"
#include "supervisor/status.h"

struct control {
	struct ctl_server srv;
	struct listen_file file; /* the socket file we created */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* ---- the control protocol ---- */

static void answer_error(struct ctl_client *c, const char *fmt, const char *arg)
{
	char msg[1024];
	snprintf(msg, sizeof(msg), fmt, arg);
	mbuf_put(&c->out, "{\"ok\":false,\"error\":", 20);
	mbuf_json_str(&c->out, msg);
	mbuf_put(&c->out, "}\n", 2);
}

/* {"ok":true,"text":"..."}: for answers that are text (metrics, the table). */
static void answer_text(struct ctl_client *c, struct arbiter *ar,
			void (*render)(const struct sampler *, struct mbuf *))
{
	struct mbuf t;
	mbuf_init(&t, CTL_OUT_MAX / 2);
	render(ar->sampler, &t);
	if (t.failed) {
		answer_error(c, "%s", "answer too large");
	} else {
		mbuf_put(&c->out, "{\"ok\":true,\"text\":", 18);
		mbuf_json_str(&c->out, t.p ? t.p : "");
		mbuf_put(&c->out, "}\n", 2);
	}
	mbuf_free(&t);
}

static void answer_ok(struct ctl_client *c, const char *what, long value)
{
	mbuf_printf(&c->out, "{\"ok\":true,\"%s\":%ld}\n", what, value);
}

static bool parse_num(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = s ? strtol(s, &end, 10) : 0;
	if (!s || !*s || *end || errno || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static void cmd_status(struct ctl_client *c, struct arbiter *ar, const char *arg)
{
	arbiter_refresh_sample(ar);
	if (arg && strcmp(arg, "table") == 0) {
		answer_text(c, ar, status_table);
		return;
	}
	if (arg) {
		answer_error(c, "status takes no argument but 'table', got '%.64s'", arg);
		return;
	}
	status_json(ar->sampler, &c->out);
	mbuf_put(&c->out, "\n", 1);
	if (c->out.failed) {
		c->out.len = 0;
		c->out.failed = false;
		answer_error(c, "%s", "answer too large");
	}
}

static bool refuse_stopping(struct ctl_client *c, struct arbiter *ar, const char *cmd)
{
	if (ar->state == MASTER_RUNNING)
		return false;
	answer_error(c, "%s: the master is stopping", cmd);
	return true;
}

static void cmd_workers(struct ctl_client *c, struct arbiter *ar, const char *arg)
{
	long n;
	if (refuse_stopping(c, ar, "workers"))
		return;
	if (!parse_num(arg, 0, POOL_MAX_TARGET, &n)) {
		answer_error(c, "usage: workers N (0..%s)", "512");
		return;
	}
	answer_ok(c, "target", (long)arbiter_set_target(ar, (unsigned)n));
}

static void cmd_incr(struct ctl_client *c, struct arbiter *ar, const char *arg)
{
	(void)arg;
	if (!refuse_stopping(c, ar, "incr"))
		answer_ok(c, "target", (long)arbiter_set_target(ar, ar->pool.target + 1));
}

static void cmd_decr(struct ctl_client *c, struct arbiter *ar, const char *arg)
{
	(void)arg;
	if (refuse_stopping(c, ar, "decr"))
		return;
	if (ar->pool.target > 1) /* decr keeps one, as TTOU does */
		arbiter_set_target(ar, ar->pool.target - 1);
	answer_ok(c, "target", (long)ar->pool.target);
}

static void cmd_recycle(struct ctl_client *c, struct arbiter *ar, const char *arg)
{
	long pid;
	if (arg && strcmp(arg, "all") == 0) {
		int n = arbiter_recycle_all(ar);
		if (n < 0)
			answer_error(c, "%s", "not running: nothing recycled");
		else
			answer_ok(c, "recycling", n);
		return;
	}
	if (!parse_num(arg, 1, 0x7fffffff, &pid)) {
		answer_error(c, "%s", "usage: recycle PID|all");
		return;
	}
	if (arbiter_recycle(ar, (pid_t)pid) < 0) {
		answer_error(c, "no live worker has pid %s", arg);
		return;
	}
	answer_ok(c, "recycled", pid);
}

static void cmd_metrics(struct ctl_client *c, struct arbiter *ar, const char *arg)
{
	(void)arg;
	arbiter_refresh_sample(ar);
	answer_text(c, ar, metrics_prometheus);
}

static void render_doctor(const struct sampler *s, struct mbuf *b)
{
	if (!s->doctor)
		mbuf_printf(b, "no doctor: out of memory at start\n");
	else
		doctor_text(s->doctor, s->master.now_ns, false, b);
}

/* doctor: the findings as text; doctor json: {"ok":true,"doctor":{...}}. */
static void cmd_doctor(struct ctl_client *c, struct arbiter *ar, const char *arg)
{
	arbiter_refresh_sample(ar);
	if (!arg) {
		answer_text(c, ar, render_doctor);
		return;
	}
	if (!ar->doctor) {
		answer_error(c, "%s", "no doctor: out of memory at start");
		return;
	}
	mbuf_put(&c->out, "{\"ok\":true,\"doctor\":", 20);
	doctor_json(ar->doctor, ar->sampler->master.now_ns, false, &c->out);
	mbuf_put(&c->out, "}\n", 2);
}

static void cmd_reload(struct ctl_client *c, struct arbiter *ar, const char *arg)
{
	(void)arg;
	if (arbiter_reload(ar) < 0)
		answer_error(c, "%s", "reload failed: the running configuration is kept (see the log)");
	else
		answer_ok(c, "generation", (long)ar->pool.generation);
}

static void cmd_stop(struct ctl_client *c, struct arbiter *ar, const char *arg)
{
	answer_ok(c, "stopping", 1);
	c->close_after = true;
	arbiter_stop(ar, !arg);
}

static void cmd_ping(struct ctl_client *c, struct arbiter *ar, const char *arg)
{
	(void)ar;
	(void)arg;
	answer_ok(c, "pid", (long)getpid());
}

/* The commands: the dispatcher, the error for an unknown one and
 * `drover ctl --help` all come from this table.  arg: NULL if the command
 * takes no argument, else what it takes ("[fast]": optional, and the only
 * word allowed). */
const struct control_cmd control_cmds[] = {
	{"status", "[table]", "the master and its workers (a table with 'table')", cmd_status},
	{"metrics", NULL, "Prometheus text exposition", cmd_metrics},
	{"workers", "N", "set the number of workers wanted", cmd_workers},
	{"incr", NULL, "one worker more", cmd_incr},
	{"decr", NULL, "one worker fewer (at least one stays)", cmd_decr},
	{"recycle", "PID|all", "replace a worker (all: each in turn): the new one accepts before the old one drains",
	 cmd_recycle},
	{"reload", NULL, "re-read the configuration and replace the workers (as HUP)", cmd_reload},
	{"stop", "[fast]", "graceful stop (as TERM), or fast (as QUIT)", cmd_stop},
	{"ping", NULL, "the master's pid", cmd_ping},
	{"doctor", "[json]", "what is wrong, with its evidence and the change to make", cmd_doctor},
};
const size_t control_ncmds = sizeof(control_cmds) / sizeof(control_cmds[0]);

/* "status [table], metrics, workers N, ..." */
void control_cmd_list(char *buf, size_t cap)
{
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < control_ncmds && n < cap; i++) {
		const struct control_cmd *k = &control_cmds[i];
		int w = snprintf(buf + n, cap - n, "%s%s%s%s", i ? ", " : "", k->name,
				 k->args ? " " : "", k->args ? k->args : "");
		n += w > 0 ? (size_t)w : 0;
	}
}

static const struct control_cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < control_ncmds; i++)
		if (strcmp(control_cmds[i].name, name) == 0)
			return &control_cmds[i];
	return NULL;
}

/* An argument the command does not take: a bracketed one names its only word. */
static bool arg_fits(const struct control_cmd *k, const char *arg)
{
	if (!arg || (k->args && k->args[0] != '['))
		return true;
	if (!k->args)
		return false;
	size_t n = strlen(arg);
	return strcmp(k->args, "[table]") == 0 || strcmp(k->args, "[json]") == 0 || (strncmp(k->args + 1, arg, n) == 0 &&
						    k->args[n + 1] == ']');
}

const struct control_cmd *control_parse(char *line, const char **argp, char *err, size_t errlen)
{
	char *save = NULL, *cmd = strtok_r(line, " \t", &save);
	char *arg = strtok_r(NULL, " \t", &save), *extra = strtok_r(NULL, " \t", &save);
	err[0] = '\0';
	*argp = arg;
	if (!cmd)
		return NULL; /* empty line: no answer */
	const struct control_cmd *k = find_cmd(cmd);
	if (extra) {
		snprintf(err, errlen, "too many arguments to '%.64s'", cmd);
	} else if (k && arg_fits(k, arg)) {
		return k;
	} else {
		char list[512];
		control_cmd_list(list, sizeof(list));
		snprintf(err, errlen, "unknown command '%.64s' (%s)", cmd, list);
	}
	return NULL;
}

static void dispatch(struct ctl_client *c, struct arbiter *ar, char *line)
{
	char err[600];
	const char *arg;
	const struct control_cmd *k = control_parse(line, &arg, err, sizeof(err));
	if (k)
		k->run(c, ar, arg);
	else if (err[0])
		answer_error(c, "%s", err);
}

int control_take_line(const char *in, size_t inlen, size_t cap, bool eof, char *line, size_t *used)
{
	const char *nl = memchr(in, '\n', inlen);
	size_t len;
	if (nl)
		len = (size_t)(nl - in);
	else if (inlen && eof)
		len = inlen; /* the last line, without its newline */
	else if (inlen >= cap)
		return -1;
	else
		return 0;
	memcpy(line, in, len);
	line[len] = '\0';
	if (len && line[len - 1] == '\r')
		line[len - 1] = '\0';
	*used = nl ? len + 1 : len;
	return 1;
}

static void control_input(struct ctl_server *srv, struct ctl_client *c)
{
	char line[CTL_IN_CAP + 1];
	size_t used;
	int rc = control_take_line(c->in, c->inlen, CTL_IN_CAP, c->eof, line, &used);
	if (rc < 0) {
		answer_error(c, "line longer than %s bytes", "4095");
		c->close_after = true;
	}
	if (rc <= 0)
		return;
	ctl_client_consume(c, used);
	dispatch(c, srv->ctx, line);
}

/* ---- the socket ---- */

void control_path(const char *control, const char *pidfile, char *buf, size_t cap)
{
	size_t n = pidfile ? strlen(pidfile) : 0;
	if (control && control[0])
		snprintf(buf, cap, "%s", control);
	else if (n > 4 && strcmp(pidfile + n - 4, ".pid") == 0)
		snprintf(buf, cap, "%.*s.ctl", (int)(n - 4), pidfile);
	else if (n)
		snprintf(buf, cap, "%s.ctl", pidfile);
	else if (cap)
		buf[0] = '\0';
}

/* Bind at path, or beside it (path.new) and rename over it when taking
 * over from the master we replace. */
static struct control *control_bind(struct arbiter *ar, bool take_over)
{
	char path[sizeof(((struct control *)0)->path)], tmp[sizeof(path) + 8];
	control_path(ar->conf.control, ar->conf.pidfile, path, sizeof(path));
	if (!path[0])
		return NULL;
	snprintf(tmp, sizeof(tmp), "%s%s", path, take_over ? ".new" : "");
	struct control *ctl = calloc(1, sizeof(*ctl));
	int fd = ctl ? listen_private_unix(tmp, 16, &ctl->file) : -ENOMEM;
	if (fd >= 0 && take_over && rename(tmp, path) < 0) {
		int e = -errno;
		close(fd);
		listen_unlink_own(tmp, &ctl->file);
		fd = e;
	}
	if (fd < 0) {
		log_error("control socket %s: %s; running without it", path, strerror(-fd));
		free(ctl);
		return NULL;
	}
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	struct ctl_server_conf sc = {.loop = ar->loop, .fds = &ar->pool.env.master_fds, .ctx = ar,
				     .what = "control", .check_peer = true,
				     .on_input = control_input};
	ctl_server_start(&ctl->srv, &sc, fd);
	log_info("control socket at %s", path);
	return ctl;
}

struct control *control_start(struct arbiter *ar)
{
	return control_bind(ar, false);
}

struct control *control_take_over(struct arbiter *ar)
{
	return control_bind(ar, true);
}

void control_stop(struct control *ctl)
{
	if (!ctl)
		return;
	ctl_server_stop(&ctl->srv);
	listen_unlink_own(ctl->path, &ctl->file);
	free(ctl);
}

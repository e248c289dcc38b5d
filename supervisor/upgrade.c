/* USR2 binary upgrade (see upgrade.h).  The old master's side: build the new
 * master's environment, fork, move the sockets to fds 3.. in the child and
 * exec; then watch the readiness pipe, the child's exit and a deadline.  The
 * new master's side: once every worker accepts, take the control socket's
 * path over (bind beside it, rename over it: never a moment without one),
 * write one byte, and say MAINPID= to systemd.
 *
 * Why a pipe and the child watcher: the old master is the new one's parent,
 * so its ev_child sees an early exit (bad config: 2, missing library: 127,
 * app cannot load: 4) with its status, and a byte on the pipe is an explicit
 * "my workers accept" that no signal race can lose or fake. */
#include "supervisor/upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "supervisor/arbiter.h"
#include "supervisor/control.h"
#include "supervisor/log.h"
#include "supervisor/metrics_http.h"
#include "supervisor/notify.h"

extern char **environ;

static char exe_path[PATH_MAX]; /* "" if it could not be found at start */
static char **saved_argv;

/* ---- at start ---- */

/* argv[0] as a path usable later, after chdir: absolute against the cwd of
 * the start, or the first executable match in PATH.  Not realpath(): the
 * operator replaces a file or switches a symlink, and USR2 runs what the
 * name points to then. */
static void find_exe(const char *arg0)
{
	char cwd[PATH_MAX];
	if (arg0[0] == '/') {
		snprintf(exe_path, sizeof(exe_path), "%s", arg0);
	} else if (strchr(arg0, '/')) {
		if (getcwd(cwd, sizeof(cwd)) &&
		    (size_t)snprintf(exe_path, sizeof(exe_path), "%s/%s", cwd, arg0) >= sizeof(exe_path))
			exe_path[0] = 0; /* too long to run again */
	} else {
		const char *path = getenv("PATH");
		for (const char *p = path; p && *p && !exe_path[0];) {
			size_t n = strcspn(p, ":");
			char cand[PATH_MAX];
			snprintf(cand, sizeof(cand), "%.*s/%s", (int)n, n ? p : ".", arg0);
			if (access(cand, X_OK) == 0)
				snprintf(exe_path, sizeof(exe_path), "%s", cand);
			p += n + (p[n] == ':');
		}
	}
}

void upgrade_save_argv(int argc, char **argv)
{
	if (argc < 1 || !argv[0])
		return;
	find_exe(argv[0]);
	saved_argv = calloc((size_t)argc + 1, sizeof(char *));
	for (int i = 0; saved_argv && i < argc; i++)
		saved_argv[i] = strdup(argv[i]);
}

void upgrade_child_init(struct upgrade *u)
{
	u->ready_fd = u->notify_fd = -1;
	const char *fd = getenv("DROVER_UPGRADE_FD"), *mask = getenv("DROVER_SYSTEMD_FDS");
	if (fd) {
		char *end;
		long v = strtol(fd, &end, 10);
		struct stat st;
		/* only the pipe an old master passed: a stray variable is ignored */
		if (!*end && v >= 3 && v < INT_MAX && fstat((int)v, &st) == 0 && S_ISFIFO(st.st_mode) &&
		    fcntl((int)v, F_SETFD, FD_CLOEXEC) == 0) {
			u->notify_fd = (int)v;
			u->parent = getppid();
		}
	}
	if (mask)
		u->systemd_mask = strtoull(mask, NULL, 10);
	unsetenv("DROVER_UPGRADE_FD");
	unsetenv("DROVER_SYSTEMD_FDS");
}

/* ---- the old master: starting the new one ---- */

/* The pieces the child needs, all made before fork: after it the child only
 * makes async-signal-safe calls (dup2, execve, write). */
struct exec_plan {
	char **envp;
	char *owned[6]; /* what build_env allocated inside envp */
	char *listen_pid, *watchdog_pid; /* value buffers inside envp, or NULL */
	int fds[64];
	size_t nfds;
	int base; /* above every fd in fds and above 3 + nfds + 1 */
};

#define PID_ROOM 24

/* systemd watches this master (WATCHDOG_USEC, and WATCHDOG_PID unset or
 * ours): then it watches the new one, and WATCHDOG_PID says so. */
static bool watchdog_ours(void)
{
	const char *pid = getenv("WATCHDOG_PID");
	return getenv("WATCHDOG_USEC") && (!pid || atol(pid) == (long)getpid());
}

static bool env_dropped(const char *kv)
{
	static const char *const drop[] = {"LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=",
					   "DROVER_UPGRADE_FD=", "DROVER_SYSTEMD_FDS="};
	if (strncmp(kv, "WATCHDOG_PID=", 13) == 0)
		return watchdog_ours();
	for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
		if (strncmp(kv, drop[i], strlen(drop[i])) == 0)
			return true;
	return false;
}

/* envp = our environment minus what we set, plus LISTEN_*, the readiness
 * fd, the systemd mask and (if systemd watches us) WATCHDOG_PID.  0 or
 * -ENOMEM. */
static int build_env(struct exec_plan *pl, const struct listeners *ls, bool metrics)
{
	size_t n = 0;
	while (environ[n])
		n++;
	pl->envp = calloc(n + 8, sizeof(char *));
	if (!pl->envp)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!env_dropped(environ[i]))
			pl->envp[k++] = environ[i];
	char names[4096] = "", *buf;
	size_t len = 0;
	unsigned long long sysmask = 0;
	for (size_t i = 0; i < ls->n && len < sizeof(names); i++) {
		len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s", i ? ":" : "",
					listen_pass_name(ls, i));
		if (ls->file[i].origin == LISTEN_SYSTEMD)
			sysmask |= 1ull << i;
	}
	if (metrics && len < sizeof(names))
		snprintf(names + len, sizeof(names) - len, "%s%s", ls->n ? ":" : "",
			 LISTEN_METRICS_NAME);
	char *add[] = {NULL, NULL, NULL, NULL};
	if (asprintf(&add[0], "LISTEN_FDS=%zu", pl->nfds) < 0 ||
	    asprintf(&add[1], "LISTEN_FDNAMES=%s", names) < 0 ||
	    asprintf(&add[2], "DROVER_UPGRADE_FD=%zu", 3 + pl->nfds) < 0 ||
	    asprintf(&add[3], "DROVER_SYSTEMD_FDS=%llu", sysmask) < 0) {
		for (size_t i = 0; i < 4; i++)
			free(add[i]);
		return -ENOMEM;
	}
	for (size_t i = 0; i < 4; i++)
		pl->envp[k++] = pl->owned[i] = add[i];
	/* LISTEN_PID (and WATCHDOG_PID) must be the new master's own pid,
	 * known in the child only: room for it is made here. */
	if (!(buf = calloc(1, sizeof("LISTEN_PID=") + PID_ROOM)))
		return -ENOMEM;
	strcpy(buf, "LISTEN_PID=");
	pl->listen_pid = buf + strlen(buf);
	pl->envp[k++] = pl->owned[4] = buf;
	if (watchdog_ours()) {
		if (!(buf = calloc(1, sizeof("WATCHDOG_PID=") + PID_ROOM)))
			return -ENOMEM;
		strcpy(buf, "WATCHDOG_PID=");
		pl->watchdog_pid = buf + strlen(buf);
		pl->envp[k++] = pl->owned[5] = buf;
	}
	return 0;
}

/* In the child: digits of v into out (async-signal-safe). */
static void put_pid(char *out, long v)
{
	char tmp[PID_ROOM];
	size_t n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < sizeof(tmp));
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = 0;
}

/* The child of the fork: sockets to 3.., the readiness pipe after them,
 * everything else closed, exec.  On failure the errno goes up the pipe. */
static _Noreturn void exec_child(const struct exec_plan *pl, int ready_w)
{
	int tmp[64];
	put_pid(pl->listen_pid, (long)getpid());
	if (pl->watchdog_pid)
		put_pid(pl->watchdog_pid, (long)getpid());
	/* Two steps, so that no target fd overwrites a source not moved yet:
	 * copies above every target first, then each copy to its place (dup2
	 * clears FD_CLOEXEC, which is what passes them). */
	for (size_t i = 0; i < pl->nfds; i++)
		tmp[i] = fcntl(pl->fds[i], F_DUPFD, pl->base);
	int w = fcntl(ready_w, F_DUPFD, pl->base);
	for (size_t i = 0; i < pl->nfds; i++)
		dup2(tmp[i], 3 + (int)i);
	int wfd = 3 + (int)pl->nfds;
	dup2(w, wfd);
	close_range((unsigned)wfd + 1, ~0u, 0);
	/* The mask stays blocked (set in upgrade_begin): the new master
	 * unblocks once its own handlers are in place (main). */
	execve(exe_path, saved_argv, pl->envp);
	char msg[1 + sizeof(int)] = {'E'};
	int e = errno;
	memcpy(msg + 1, &e, sizeof(e));
	ssize_t r = write(wfd, msg, sizeof(msg));
	(void)r;
	_exit(127);
}

static void free_plan(struct exec_plan *pl)
{
	for (size_t i = 0; i < sizeof(pl->owned) / sizeof(pl->owned[0]); i++)
		free(pl->owned[i]);
	free(pl->envp);
}

static void oldbin_path(const char *pidfile, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s.oldbin", pidfile);
}

/* PIDFILE <-> PIDFILE.oldbin; to_old false moves it back.  0, or -errno
 * of rename (logged by the caller). */
static int move_pidfile(struct arbiter *ar, bool to_old)
{
	const char *pf = ar->conf.pidfile;
	char old[PATH_MAX];
	if (!pf[0] || ar->upgrade.pidfile_moved == to_old)
		return 0;
	oldbin_path(pf, old, sizeof(old));
	if (rename(to_old ? pf : old, to_old ? old : pf) < 0)
		return -errno;
	ar->upgrade.pidfile_moved = to_old;
	return 0;
}

static void move_pidfile_back(struct arbiter *ar)
{
	int r = move_pidfile(ar, false);
	if (r < 0)
		log_error("rename %s.oldbin: %s", ar->conf.pidfile, strerror(-r));
}

/* PIDFILE -> PIDFILE.oldbin before the fork: 0, or -errno when the
 * directory refuses (logged: USR2 refused).  The new master writes PIDFILE
 * and binds the control socket beside it: in a directory this master cannot
 * rename in (root's, once user = dropped root) it would fail later, less
 * clearly.  A pidfile someone removed is no reason: the new one writes it. */
static int pidfile_to_oldbin(struct arbiter *ar)
{
	int r = move_pidfile(ar, true);
	if (r == -EACCES || r == -EPERM || r == -EROFS) {
		log_error("USR2 refused: cannot rename %s to .oldbin: %s (the new master could not "
			  "write it either: give the user a directory of its own, systemd "
			  "RuntimeDirectory=)", ar->conf.pidfile, strerror(-r));
		return r;
	}
	if (r < 0)
		log_error("rename %s: %s", ar->conf.pidfile, strerror(-r));
	return 0;
}

static void on_ready(struct ev_loop *loop, ev_io *w, int revents);
static void on_deadline(struct ev_loop *loop, ev_timer *t, int revents);

/* fork + exec with plan; the child's pid, or -errno.  Unlike a worker's,
 * this fork may run from the signal's callback: the child never returns
 * into the loop (it execs or _exits), and makes only async-signal-safe
 * calls on the way. */
static pid_t spawn_master(struct exec_plan *pl, int ready_w)
{
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t pid = fork();
	if (pid == 0)
		exec_child(pl, ready_w);
	int e = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	return pid < 0 ? -e : pid;
}

/* The listeners at fds 3.., then the metrics listener (metrics_fd, -1:
 * none), as LISTEN_FDS counts them. */
static int plan_fds(struct exec_plan *pl, const struct listeners *ls, int metrics_fd)
{
	if (ls->n + 1 > sizeof(pl->fds) / sizeof(pl->fds[0]))
		return -EMFILE;
	for (size_t i = 0; i < ls->n; i++)
		pl->fds[pl->nfds++] = ls->l[i].fd;
	if (metrics_fd >= 0)
		pl->fds[pl->nfds++] = metrics_fd;
	pl->base = 3 + (int)pl->nfds + 1;
	for (size_t i = 0; i < pl->nfds; i++)
		if (pl->fds[i] >= pl->base)
			pl->base = pl->fds[i] + 1;
	return 0;
}

void upgrade_begin(struct arbiter *ar)
{
	struct upgrade *u = &ar->upgrade;
	if (u->phase != UPG_IDLE) {
		log_warn("USR2 refused: a hand-over to the new master (pid %d) is under way",
			 (int)u->child);
		return;
	}
	if (ar->state != MASTER_RUNNING) {
		log_warn("USR2 refused: the master is stopping");
		return;
	}
	if (u->parent && u->notify_fd >= 0) {
		log_warn("USR2 refused: this master is itself taking over from pid %d",
			 (int)u->parent);
		return;
	}
	if (!exe_path[0] || !saved_argv) {
		log_error("USR2 refused: the binary's path was not found at start");
		return;
	}
	struct exec_plan pl = {0};
	int mfd = metrics_http_fd(ar->metrics);
	int p[2] = {-1, -1}, r = plan_fds(&pl, &ar->ls, mfd);
	if (r == 0)
		r = build_env(&pl, &ar->ls, mfd >= 0);
	if (r == 0 && pipe2(p, O_CLOEXEC) < 0)
		r = -errno;
	if (r == 0)
		fcntl(p[0], F_SETFL, O_NONBLOCK);
	int mv = r == 0 ? pidfile_to_oldbin(ar) : 0;
	if (mv < 0)
		r = mv;
	pid_t pid = r == 0 ? spawn_master(&pl, p[1]) : r;
	free_plan(&pl);
	if (p[1] >= 0)
		close(p[1]);
	if (pid < 0) {
		if (mv == 0)
			log_error("USR2: cannot start the new master: %s", strerror((int)-pid));
		if (p[0] >= 0)
			close(p[0]);
		move_pidfile_back(ar);
		return;
	}
	*u = (struct upgrade){.phase = UPG_STARTING, .child = pid, .ready_fd = p[0],
			      .begun_ns = sb_now_ns(), .pidfile_moved = u->pidfile_moved,
			      .notify_fd = -1};
	ar->ls.sharer = pid; /* from now on neither of us shuts the sockets down */
	ar->state = MASTER_UPGRADING;
	master_fds_add(&ar->pool.env.master_fds, p[0]);
	ev_io_init(&u->ready_io, on_ready, p[0], EV_READ);
	ev_io_start(ar->loop, &u->ready_io);
	ev_timer_init(&u->deadline, on_deadline, ar->conf.upgrade_timeout, 0);
	ev_timer_start(ar->loop, &u->deadline);
	log_info("USR2: starting the new master %s (pid %d) with %zu sockets%s", exe_path, (int)pid,
		 ar->ls.n, mfd >= 0 ? " and the metrics listener" : "");
}

/* ---- the old master: watching it ---- */

static void stop_watching(struct arbiter *ar)
{
	struct upgrade *u = &ar->upgrade;
	ev_timer_stop(ar->loop, &u->deadline);
	if (u->ready_fd >= 0) {
		ev_io_stop(ar->loop, &u->ready_io);
		master_fds_del(&ar->pool.env.master_fds, u->ready_fd);
		close(u->ready_fd);
		u->ready_fd = -1;
	}
}

/* The new master's workers accept: hand over. */
static void handed_over(struct arbiter *ar)
{
	struct upgrade *u = &ar->upgrade;
	stop_watching(ar);
	u->phase = UPG_HANDED_OVER;
	/* Its unix socket files are the new master's now: never ours to unlink. */
	for (size_t i = 0; i < ar->ls.n; i++)
		ar->ls.file[i].ino = 0;
	notify_handover(ar->notify, u->child);
	double s = (double)(sb_now_ns() - u->begun_ns) / 1e9;
	if (ar->conf.upgrade_handover == UPGRADE_MANUAL) {
		log_info("new master (pid %d) serving after %.2f s, beside this one (upgrade_handover"
			 " = manual): send WINCH then QUIT to pid %d to retire it", (int)u->child, s,
			 (int)getpid());
		return;
	}
	log_info("new master (pid %d) serving after %.2f s: stopping this master's workers "
		 "gracefully", (int)u->child, s);
	arbiter_stop(ar, true);
	u->handover_stop = ar->state == MASTER_GRACEFUL_STOP;
}

/* What the new master said on the pipe: 'R' (ready: true), 'E' + errno
 * (exec failed: logged), nothing yet, or EOF.  The read end is non-blocking:
 * the new master's workers may hold the write end for a moment. */
static bool read_ready(struct upgrade *u, bool *done)
{
	char msg[16];
	ssize_t n = read(u->ready_fd, msg, sizeof(msg));
	*done = !(n < 0 && (errno == EINTR || errno == EAGAIN));
	if (n > 0 && msg[0] == 'R')
		return true;
	if (n >= (ssize_t)(1 + sizeof(int)) && msg[0] == 'E') {
		int e;
		memcpy(&e, msg + 1, sizeof(e));
		log_error("USR2: cannot execute %s: %s", exe_path, strerror(e));
	}
	return false;
}

static void on_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	struct arbiter *ar = ev_userdata(loop);
	bool done;
	(void)revents;
	if (read_ready(&ar->upgrade, &done))
		handed_over(ar);
	else if (done)
		ev_io_stop(loop, w); /* EOF or an error: its exit (the child watcher) says the rest */
}

static void on_deadline(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct arbiter *ar = ev_userdata(loop);
	(void)t;
	(void)revents;
	/* TERM: it stops gracefully, and its sockets being shared with us, it
	 * leaves them open; its exit then reverts us to serving alone. */
	log_error("USR2: the new master (pid %d) is not ready after %.0f s (upgrade_timeout); "
		  "stopping it, this master keeps serving", (int)ar->upgrade.child,
		  ar->conf.upgrade_timeout);
	if (kill(ar->upgrade.child, SIGTERM) < 0)
		log_error("kill(%d): %s", (int)ar->upgrade.child, strerror(errno));
}

static void describe_exit(int status, char *buf, size_t cap)
{
	if (WIFSIGNALED(status))
		snprintf(buf, cap, "was killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, cap, "exited with status %d%s", WEXITSTATUS(status),
			 WEXITSTATUS(status) == 2   ? " (bad flags or configuration)"
			 : WEXITSTATUS(status) == 4 ? " (the app cannot be loaded)"
			 : WEXITSTATUS(status) == 127 ? " (exec failed or a library is missing)"
						      : "");
}

/* The new master died while this one drained because it served (auto
 * hand-over): stopping would leave nobody serving, and the sockets are
 * still open here (a shared socket is never shut down).  The stop is called
 * off: back to the hand-over's state, which the caller then turns into
 * serving alone (control socket back, MAINPID=, target workers).  An
 * operator's TERM or QUIT during the drain cannot be told from it here:
 * this master serves on, and a second TERM stops it. */
static void resume_after_handover(struct arbiter *ar, pid_t pid)
{
	log_warn("the new master (pid %d) is gone while this master (pid %d) drained for it: "
		 "calling the stop off", (int)pid, (int)getpid());
	ar->state = MASTER_UPGRADING;
	pool_resume(&ar->pool, 0); /* the target comes below, as after WINCH */
}

bool upgrade_reaped(struct arbiter *ar, pid_t pid, int status)
{
	struct upgrade *u = &ar->upgrade;
	if (!u->child || pid != u->child)
		return false;
	char why[96];
	describe_exit(status, why, sizeof(why));
	bool done;
	if (u->ready_fd >= 0 && u->phase == UPG_STARTING)
		read_ready(u, &done); /* its last word may still wait behind the exit */
	bool was_ready = u->phase == UPG_HANDED_OVER, resume = u->handover_stop;
	stop_watching(ar);
	u->handover_stop = false;
	u->phase = UPG_IDLE;
	u->child = 0;
	ar->ls.sharer = 0;
	move_pidfile_back(ar);
	if (!was_ready)
		log_error("USR2 failed: the new master (pid %d) %s before its workers accepted; "
			  "this master (pid %d) keeps serving", (int)pid, why, (int)getpid());
	else
		log_warn("the new master (pid %d) %s; this master (pid %d) serves again", (int)pid,
			 why, (int)getpid());
	if (resume && ar->state == MASTER_GRACEFUL_STOP)
		resume_after_handover(ar, pid);
	if (ar->state != MASTER_UPGRADING)
		return true; /* stopping anyway */
	ar->state = MASTER_RUNNING;
	if (was_ready) {
		/* its control socket went with it: ours again */
		control_stop(ar->control);
		ar->control = control_start(ar);
		notify_handback(ar->notify);
		if (ar->pool.target == 0) /* WINCH of a manual hand-over */
			pool_set_target(&ar->pool, (unsigned)ar->conf.workers, POOL_BY_CONFIG);
	}
	return true;
}

/* ---- the new master ---- */

void upgrade_tick(struct arbiter *ar)
{
	struct upgrade *u = &ar->upgrade;
	if (u->parent && ar->ls.sharer == u->parent && getppid() != u->parent)
		ar->ls.sharer = 0; /* the old master is gone: the sockets are ours alone */
	if (!u->parent || u->notify_fd < 0 || ar->state != MASTER_RUNNING || ar->pool.target == 0 ||
	    pool_ready_current(&ar->pool) < ar->pool.target)
		return;
	/* The control socket moves now, not at start: until our workers accept,
	 * the old master is the one to talk to. */
	ar->control = control_take_over(ar);
	ssize_t n = write(u->notify_fd, "R", 1);
	if (n != 1 && getppid() != u->parent) /* EPIPE: it stopped (TERM) before we were ready */
		log_info("the old master (pid %d) is gone already: serving alone", (int)u->parent);
	else if (n != 1)
		log_error("telling the old master (pid %d) we are ready: %s", (int)u->parent,
			  n < 0 ? strerror(errno) : "short write");
	master_fds_del(&ar->pool.env.master_fds, u->notify_fd);
	close(u->notify_fd);
	u->notify_fd = -1;
	notify_mainpid(ar->notify);
	log_info("all %u workers accepting: the old master (pid %d) hands over", ar->pool.target,
		 (int)u->parent);
}

const char *upgrade_pidfile(const struct upgrade *u, const char *pidfile, char *buf, size_t cap)
{
	if (!u->pidfile_moved)
		return pidfile;
	oldbin_path(pidfile, buf, cap);
	return buf;
}

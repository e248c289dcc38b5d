/* The worker's watchdog thread (see watchdog.h).  Request threads publish
 * the request they hand to the app in a per-thread record (a few relaxed
 * stores); the watchdog polls these records every few milliseconds, so a
 * stall is seen within threshold + one period.  To get the stack of the
 * stalled thread while it is stalled it sends that thread WATCHDOG_SIGNAL
 * (tgkill): the handler runs backtrace() there (primed at boot, so
 * signal-safe), and for a Python app faulthandler first dumps every thread's
 * Python stack into a memfd, then chains to the C handler.  A thread that
 * does not take the signal (D state) is described from /proc instead. */
#include "workers/watchdog.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "workers/stall_site.h"
#include "workers/stall_srcline.h"
#include "workers/wlog.h"

#define WD_MAX_FRAMES 64
#define WD_WHAT_LEN 200
#define WD_CAPTURE_WAIT_NS 20000000ull /* a thread that has not answered by then is in D state */
#define WD_CAPTURE_MAX_NS 250000000ull /* ... or, if not in D state, by then */
#define WD_RECENT 64 /* stall starts remembered for stall_recent (a minute) */
#define WD_STACK_MAX 12000 /* stack text logged per stall */

/* What one request thread is doing, written by that thread alone. */
struct wd_req {
	_Atomic int32_t tid;
	_Atomic uint64_t start_ns; /* request handed to the app; 0: none */
	_Atomic uint64_t seq; /* requests begun on this thread */
	char what[WD_WHAT_LEN]; /* "GET /x from 127.0.0.1:5000", written while start_ns is 0 */
};

/* The watchdog's own view of one record. */
struct wd_track {
	bool active, logged;
	uint64_t seq, start_ns;
	unsigned site; /* index in slot->sites */
};

static struct wd_req reqs[SB_MAX_THREADS];
static atomic_uint nreqs;
static __thread struct wd_req *my_req;
static __thread bool my_req_none; /* more threads than records: not watched */
static bool wd_on;

/* The capture hand-shake with the signal handler. */
static void *cap_frames[WD_MAX_FRAMES];
static volatile sig_atomic_t cap_n;
static atomic_int cap_done, cap_tid;
static int dump_fd = -1;

static struct {
	const struct worker_args *a;
	struct sb_slot *slot;
	uint64_t threshold_ns, period_ns, log_every_ns;
	bool python;
	Dl_info app_obj; /* the shared object holding the app's handler */
	bool has_app_obj;
	struct wd_track track[SB_MAX_THREADS];
	uint64_t last_log_ns[SB_STALL_SITES + 1];
	uint64_t suppressed[SB_STALL_SITES + 1];
	uint64_t recent[WD_RECENT];
	unsigned recent_pos;
	char stack[WD_STACK_MAX];
} wd;

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void on_stack_signal(int sig)
{
	(void)sig;
	int saved = errno;
	if (my_tid() == atomic_load(&cap_tid) && !atomic_load(&cap_done)) {
		cap_n = backtrace(cap_frames, WD_MAX_FRAMES);
		atomic_store(&cap_done, 1);
	}
	errno = saved;
}

int watchdog_dump_fd(void)
{
	return dump_fd;
}

static double threshold_s(const struct drover_conf *conf)
{
	return conf->worker_class == WORKER_EVENT || conf->worker_class == WORKER_ASGI
		       ? conf->stall_threshold
		       : conf->slow_request;
}

int watchdog_init(const struct worker_args *a)
{
	if (threshold_s(a->conf) <= 0)
		return 0;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stack_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART; /* the stalled call goes on as if nothing happened */
	if (sigaction(WATCHDOG_SIGNAL, &sa, NULL) < 0)
		return -errno;
	dump_fd = memfd_create("drover-stall-stack", MFD_CLOEXEC);
	wd_on = true;
	return 0;
}

/* ---- the request threads' side ---- */

static struct wd_req *claim_record(void)
{
	if (my_req || my_req_none)
		return my_req;
	unsigned i = atomic_fetch_add(&nreqs, 1);
	if (i >= SB_MAX_THREADS) {
		my_req_none = true;
		return NULL;
	}
	my_req = &reqs[i];
	atomic_store(&my_req->tid, (int32_t)my_tid());
	return my_req;
}

void watchdog_request_begin(const struct drover_request *q)
{
	if (!wd_on)
		return;
	struct wd_req *r = claim_record();
	if (!r)
		return;
	atomic_fetch_add_explicit(&r->seq, 1, memory_order_relaxed);
	if (q->peer_addr && q->peer_addr[0])
		snprintf(r->what, sizeof(r->what), "%.*s %.*s from %s:%d", (int)q->method.len,
			 q->method.ptr, (int)q->target.len, q->target.ptr, q->peer_addr,
			 q->peer_port);
	else
		snprintf(r->what, sizeof(r->what), "%.*s %.*s", (int)q->method.len, q->method.ptr,
			 (int)q->target.len, q->target.ptr);
	atomic_store_explicit(&r->start_ns, sb_now_ns(), memory_order_release);
}

/* The asyncio loop (asgi model): every turn of a periodic callback is a
 * "request" of the loop thread; one that is not followed by the next turn
 * within the threshold is a loop held by a callback (the app's step). */
void watchdog_loop_beat(void)
{
	if (!wd_on)
		return;
	struct wd_req *r = claim_record();
	if (!r)
		return;
	atomic_store_explicit(&r->start_ns, 0, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->seq, 1, memory_order_relaxed);
	atomic_store_explicit(&r->start_ns, sb_now_ns(), memory_order_release);
}

void watchdog_loop_what(const char *what)
{
	struct wd_req *r = wd_on ? claim_record() : NULL;
	if (!r)
		return;
	/* Written while the watchdog may read it: it copies, then checks seq;
	 * a torn text is only a wrong label, and the end stays terminated. */
	size_t n = strnlen(what, WD_WHAT_LEN - 1);
	memcpy(r->what, what, n);
	r->what[n] = '\0';
}

void watchdog_request_end(void)
{
	if (my_req)
		atomic_store_explicit(&my_req->start_ns, 0, memory_order_release);
}

/* ---- capturing a stack ---- */

static size_t append(char *buf, size_t off, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static size_t append(char *buf, size_t off, size_t cap, const char *fmt, ...)
{
	if (off >= cap)
		return off;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + off, cap - off, fmt, ap);
	va_end(ap);
	return n < 0 ? off : off + (size_t)n >= cap ? cap - 1 : off + (size_t)n;
}

/* The state letter of thread tid (/proc/self/task/TID/stat), '?' if unknown. */
static char task_state(pid_t tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return '?';
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	const char *p = strrchr(buf, ')'); /* the name may hold spaces and ')' */
	return p && p[1] == ' ' && p[2] ? p[2] : '?';
}

/* Wait for the handler's answer.  A thread that has not answered within
 * WD_CAPTURE_WAIT_NS is in D state -- unless it is not: on a loaded host a
 * sleeping or runnable thread may just not have been scheduled yet, and it
 * gets up to WD_CAPTURE_MAX_NS before it is described from /proc instead. */
static bool wait_capture(pid_t tid)
{
	uint64_t t0 = sb_now_ns(), until = t0 + WD_CAPTURE_WAIT_NS;
	struct timespec ms = {0, 500000};
	while (!atomic_load(&cap_done)) {
		uint64_t now = sb_now_ns();
		if (now >= until) {
			if (until >= t0 + WD_CAPTURE_MAX_NS || task_state(tid) == 'D')
				return false;
			until = t0 + WD_CAPTURE_MAX_NS;
		}
		nanosleep(&ms, NULL);
	}
	return true;
}

/* The C frames: text into wd.stack, site from the innermost app frame. */
static void describe_cframes(char *site, size_t len, size_t *off)
{
	int n = cap_n;
	struct stall_cframe f[WD_MAX_FRAMES];
	Dl_info info[WD_MAX_FRAMES];
	static char src[WD_MAX_FRAMES][64]; /* the watchdog thread's alone */
	for (int i = 0; i < n; i++) {
		memset(&info[i], 0, sizeof(info[i]));
		/* A return address points after the call: look up the call itself. */
		dladdr((char *)cap_frames[i] - 1, &info[i]);
		f[i] = (struct stall_cframe){
			.object = info[i].dli_fname ? info[i].dli_fname : "",
			.symbol = info[i].dli_sname,
			.offset = (unsigned long)((char *)cap_frames[i] - (char *)info[i].dli_fbase),
			.in_app = wd.has_app_obj && info[i].dli_fbase == wd.app_obj.dli_fbase,
		};
		/* file:line for the app's frames (its debug info), as Python's */
		if (f[i].in_app && stall_srcline((char *)cap_frames[i] - 1, src[i], sizeof(src[i]),
						 &f[i].src_line))
			f[i].src_file = src[i];
		char name[SB_SITE_LEN];
		stall_site_cname(&f[i], name, sizeof(name));
		*off = append(wd.stack, *off, sizeof(wd.stack), "  #%d %s\n", i, name);
	}
	int k = stall_site_cframe(f, n);
	if (k >= 0 && !site[0])
		stall_site_cname(&f[k], site, len);
}

static void read_proc_task(pid_t tid, const char *what, char *out, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/%s", (int)tid, what);
	out[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, out, len - 1);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	if (strcmp(what, "stack") != 0) /* one-line files */
		out[strcspn(out, "\n")] = '\0';
}

/* A thread that did not take the signal sleeps uninterruptibly: say where. */
static void describe_dstate(pid_t tid, char *site, size_t len, size_t *off)
{
	char wchan[128], sysc[256], stack[2048];
	read_proc_task(tid, "wchan", wchan, sizeof(wchan));
	read_proc_task(tid, "syscall", sysc, sizeof(sysc));
	read_proc_task(tid, "stack", stack, sizeof(stack));
	*off = append(wd.stack, *off, sizeof(wd.stack),
		      "  (no answer to the stack signal: uninterruptible sleep)\n  wchan %s\n"
		      "  syscall %s\n%s",
		      wchan[0] ? wchan : "?", sysc[0] ? sysc : "?", stack);
	snprintf(site, len, "wchan %.64s", wchan[0] && strcmp(wchan, "0") ? wchan : "?");
}

/* The stack of thread tid now, into wd.stack; its blocking site into site. */
static void capture(pid_t tid, char *site, size_t len)
{
	size_t off = 0;
	site[0] = wd.stack[0] = '\0';
	if (wd.python && dump_fd >= 0) {
		if (ftruncate(dump_fd, 0) < 0 || lseek(dump_fd, 0, SEEK_SET) < 0)
			wlog_debug("watchdog: cannot reset the dump file: %s", strerror(errno));
	}
	atomic_store(&cap_done, 0);
	atomic_store(&cap_tid, (int)tid);
	bool ok = syscall(SYS_tgkill, getpid(), tid, WATCHDOG_SIGNAL) == 0 && wait_capture(tid);
	atomic_store(&cap_tid, 0); /* a late answer is ignored */
	if (!ok) {
		describe_dstate(tid, site, len, &off);
		return;
	}
	if (wd.python && dump_fd >= 0) {
		ssize_t n = pread(dump_fd, wd.stack, sizeof(wd.stack) - 1, 0);
		wd.stack[n > 0 ? n : 0] = '\0';
		stall_site_python(wd.stack, site, len);
		off = strlen(wd.stack);
		if (site[0])
			return;
	}
	describe_cframes(site, len, &off);
	if (!site[0])
		snprintf(site, len, "?");
}

/* ---- statistics in the slot ---- */

static unsigned site_index(const char *name)
{
	struct sb_slot *s = wd.slot;
	unsigned n = atomic_load_explicit(&s->stall_nsites, memory_order_relaxed);
	for (unsigned i = 0; i < n; i++)
		if (strcmp(s->sites[i].name, name) == 0)
			return i;
	if (n >= SB_STALL_SITES)
		return SB_STALL_SITES; /* "other" */
	snprintf(s->sites[n].name, SB_SITE_LEN, "%s", name);
	atomic_store_explicit(&s->stall_nsites, n + 1, memory_order_release);
	return n;
}

static uint32_t count_recent(uint64_t now)
{
	wd.recent[wd.recent_pos++ % WD_RECENT] = now;
	uint32_t n = 0;
	for (unsigned i = 0; i < WD_RECENT; i++)
		n += wd.recent[i] && now - wd.recent[i] < 60000000000ull;
	return n;
}

static void begin_stall(struct wd_track *tr, pid_t tid, const char *what, uint64_t now)
{
	char site[SB_SITE_LEN];
	capture(tid, site, sizeof(site));
	struct sb_slot *s = wd.slot;
	tr->site = site_index(site);
	sb_add(&s->stalls, 1);
	sb_add(&s->sites[tr->site].count, 1);
	atomic_store_explicit(&s->stall_recent, count_recent(now), memory_order_relaxed);
	uint64_t *last = &wd.last_log_ns[tr->site];
	tr->logged = !*last || now - *last >= wd.log_every_ns;
	if (!tr->logged) {
		wd.suppressed[tr->site]++;
		return;
	}
	*last = now;
	char more[64] = "";
	if (wd.suppressed[tr->site])
		snprintf(more, sizeof(more), " (%llu more here not logged)",
			 (unsigned long long)wd.suppressed[tr->site]);
	wd.suppressed[tr->site] = 0;
	/* The line first, then the stack in one write, so a reader of the log
	 * sees them together. */
	wlog_warn("stall %llu ms in worker %u (pid %d) at %s during %s%s",
		  (unsigned long long)((sb_now_ns() - tr->start_ns) / 1000000), wd.a->worker_no,
		  (int)getpid(), site, what, more);
	size_t n = strlen(wd.stack);
	if (n && write(2, wd.stack, n) < 0)
		return;
}

static void end_stall(struct wd_track *tr, uint64_t now)
{
	struct sb_slot *s = wd.slot;
	uint64_t dur = now - tr->start_ns;
	sb_add(&s->stall_ns, dur);
	sb_add(&s->stall_hist[sb_stall_bucket(dur)], 1);
	sb_add(&s->sites[tr->site].total_ns, dur);
	if (tr->logged)
		wlog_warn("stall ended after %llu ms in worker %u (pid %d) at %s",
			  (unsigned long long)(dur / 1000000), wd.a->worker_no, (int)getpid(),
			  tr->site < SB_STALL_SITES ? s->sites[tr->site].name : "other");
	tr->active = false;
}

/* One look at every record. */
static void scan(uint64_t now)
{
	unsigned n = atomic_load(&nreqs);
	n = n > SB_MAX_THREADS ? SB_MAX_THREADS : n;
	uint64_t oldest = 0;
	uint32_t oldest_site = 0, active = 0;
	for (unsigned i = 0; i < n; i++) {
		struct wd_req *r = &reqs[i];
		struct wd_track *tr = &wd.track[i];
		uint64_t start = atomic_load_explicit(&r->start_ns, memory_order_acquire);
		uint64_t seq = atomic_load_explicit(&r->seq, memory_order_relaxed);
		if (tr->active && (start == 0 || seq != tr->seq))
			end_stall(tr, now);
		/* start may be later than now (read before it): not a stall,
		 * and now - start would wrap around to a huge one */
		if (!tr->active && start && start < now && seq != tr->seq &&
		    now - start >= wd.threshold_ns) {
			char what[WD_WHAT_LEN];
			memcpy(what, r->what, sizeof(what));
			what[sizeof(what) - 1] = '\0';
			if (atomic_load_explicit(&r->seq, memory_order_acquire) != seq)
				continue; /* it moved on while we looked */
			*tr = (struct wd_track){.active = true, .seq = seq, .start_ns = start};
			begin_stall(tr, (pid_t)atomic_load(&r->tid), what, now);
		}
		if (!tr->active)
			continue;
		active++;
		if (!oldest || tr->start_ns < oldest) {
			oldest = tr->start_ns;
			oldest_site = tr->site + 1;
		}
	}
	/* site before time: a reader that sees the time finds its site */
	atomic_store_explicit(&wd.slot->stall_now_site, oldest_site, memory_order_relaxed);
	atomic_store_explicit(&wd.slot->stall_now_n, active, memory_order_relaxed);
	atomic_store_explicit(&wd.slot->stall_since_ns, oldest, memory_order_release);
}

static void *wd_main(void *arg)
{
	(void)arg;
	/* ppoll rather than clock_nanosleep: tools (and tests) that look for a
	 * thread sleeping in the app by its wait channel "hrtimer_nanosleep"
	 * must not mistake the watchdog for one. */
	struct timespec period = {(time_t)(wd.period_ns / 1000000000ull),
				  (long)(wd.period_ns % 1000000000ull)};
	/* The app is loaded: learn the objects for source lines here, off the
	 * request path (their debug info is read at the first stall). */
	if (!wd.python && wd.has_app_obj) {
		int rc = stall_srcline_init();
		if (rc < 0 && rc != -ENOTSUP)
			wlog_debug("watchdog: no source lines: %s", strerror(-rc));
	}
	for (;;) {
		ppoll(NULL, 0, &period, NULL);
		scan(sb_now_ns());
	}
	return NULL;
}

int watchdog_start(const struct worker_args *a, const void *app_obj, bool python)
{
	if (!wd_on)
		return 0;
	double thr = threshold_s(a->conf);
	wd.a = a;
	wd.slot = a->slot;
	wd.python = python;
	wd.threshold_ns = (uint64_t)(thr * 1e9);
	/* A quarter of the threshold, 2..20 ms: reported within threshold + 50 ms. */
	double period = thr / 4 < 0.002 ? 0.002 : thr / 4 > 0.02 ? 0.02 : thr / 4;
	wd.period_ns = (uint64_t)(period * 1e9);
	wd.log_every_ns = (uint64_t)(a->conf->stall_log_interval * 1e9);
	wd.has_app_obj = app_obj && dladdr(app_obj, &wd.app_obj) && wd.app_obj.dli_fbase;
	snprintf(a->slot->sites[SB_STALL_SITES].name, SB_SITE_LEN, "other");
	/* The watchdog takes no process signal: they stay with the threads
	 * that act on them; it inherits a full mask. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t t;
	int rc = pthread_create(&t, NULL, wd_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return -rc;
	pthread_setname_np(t, "stall-watchdog");
	pthread_detach(t);
	return 0;
}

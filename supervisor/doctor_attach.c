/* `drover doctor` as a command (see doctor_attach.h).  --attach reads the
 * target's workers (the children of PID, or PID alone if it has none) once a
 * second with the sampler's readers, fills the doctor's input from them and
 * runs the same decisions, hold-off included; figures that need the
 * scoreboard (requests, latency, stalls, busy workers) stay unknown, so the
 * findings built on them do not fire.  The cgroup read is the target's
 * (/proc/PID/cgroup), the usable CPUs those of its workers' affinity. */
#include "supervisor/doctor_attach.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "supervisor/cpus.h"
#include "supervisor/ctl.h"
#include "supervisor/doctor_out.h"
#include "supervisor/sampler.h"

#define ATTACH_MAX 512 /* processes followed */
#define ATTACH_BUF 65536

struct attach {
	pid_t root;
	struct proc_view *v; /* ATTACH_MAX */
	size_t n;
	struct host_view host;
	struct doctor_state st;
	long clk_tck;
	char *buf;
};

static pid_t ppid_of(pid_t pid, char *buf, size_t cap)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	int ppid;
	return p && sscanf(p + 1, " %*c %d", &ppid) == 1 ? ppid : -1;
}

/* The processes to follow now: children of root, or root alone. */
static size_t list_targets(struct attach *a, pid_t *out, size_t max)
{
	size_t n = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d)) && n < max) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		pid_t pid = (pid_t)atoi(e->d_name);
		if (ppid_of(pid, a->buf, ATTACH_BUF) == a->root)
			out[n++] = pid;
	}
	if (d)
		closedir(d);
	if (!n)
		out[n++] = a->root;
	return n;
}

static struct proc_view *view_for(struct attach *a, pid_t pid)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].pid == pid)
			return &a->v[i];
	if (a->n >= ATTACH_MAX)
		return NULL;
	return &a->v[a->n++];
}

static void one_process(struct doctor_input *in, const struct proc_view *p, long clk_tck)
{
	in->workers++;
	unsigned t = (unsigned)p->proc.stat.num_threads;
	in->threads_max = t > in->threads_max ? t : in->threads_max;
	in->dstate += p->proc.stat.state == 'D';
	if (!p->has_delta)
		return;
	double el = (double)(p->t_ns - p->prev_t_ns) / 1e9;
	if (el <= 0)
		return;
	in->vcsw_s += (double)p->agg.vcsw / el;
	in->ivcsw_s += (double)p->agg.ivcsw / el;
	in->runq_wait += (double)p->agg.wait_ns / 1e9 / el;
	uint64_t ticks = p->proc.stat.utime + p->proc.stat.stime - p->prev.stat.utime -
			 p->prev.stat.stime;
	in->cpu += (double)ticks / (double)clk_tck / el;
}

static void host_input(struct attach *a, struct doctor_input *in, double el)
{
	struct host_view *h = &a->host;
	sample_host_rates(h, el);
	in->cpus = h->effective_cpus > 0 ? h->effective_cpus : h->online_cpus;
	in->runnable = h->has_load ? h->load.runnable : 0;
	in->load1 = h->has_load ? h->load.load1 : NAN;
	double *pct[3] = {&in->psi_cpu, &in->psi_io, &in->psi_mem};
	for (int i = 0; i < 3; i++)
		*pct[i] = h->psi[i].present && h->psi_prev[i].present ? h->psi_some_pct[i] : NAN;
	in->has_quota = h->has_cg_max && h->cg_max.quota_us != CG_QUOTA_NONE;
	in->quota_cpus = cg_effective_cpus(&h->cg_max, h->online_cpus);
	in->swap_pages_s = h->swap_pages_s;
	in->throttled_frac = h->has_cg_stat && h->cg_stat.has_throttling ? h->cg_rates.throttled_frac
									: NAN;
}

/* One sample of the tree; false once the root is gone. */
static bool sample_once(struct attach *a, double el, uint64_t now)
{
	pid_t pids[ATTACH_MAX];
	if (kill(a->root, 0) < 0 && ppid_of(a->root, a->buf, ATTACH_BUF) < 0)
		return false;
	size_t n = list_targets(a, pids, ATTACH_MAX);
	struct doctor_input in;
	memset(&in, 0, sizeof(in));
	in.attached = true;
	in.worker_class = -1;
	in.rps = in.mean_latency_s = in.swap_pages_s = in.rss_growth_mb = NAN;
	in.busy = -1u;
	in.queued = -1;
	sample_read_host(&a->host, a->buf, ATTACH_BUF);
	for (size_t i = 0; i < n; i++) {
		struct proc_view *v = view_for(a, pids[i]);
		if (!v || sample_read_proc(pids[i], v, false, a->buf, ATTACH_BUF) < 0)
			continue;
		one_process(&in, v, a->clk_tck);
		if (v->wchan[0] && !in.wchan[0]) {
			snprintf(in.wchan, sizeof(in.wchan), "%s", v->wchan);
			in.wchan_n = 1;
		} else if (v->wchan[0] && strcmp(v->wchan, in.wchan) == 0) {
			in.wchan_n++;
		}
	}
	cpus_host_update(&a->host, pids, n);
	if (el > 0) { /* the first read only sets the base of the rates */
		struct doctor_changes ch;
		host_input(a, &in, el);
		doctor_step(&a->st, &in, now, &ch);
	}
	return true;
}

static int attach_run(pid_t root, int seconds, bool json)
{
	struct attach a = {.root = root, .clk_tck = sysconf(_SC_CLK_TCK)};
	a.v = calloc(ATTACH_MAX, sizeof(*a.v));
	a.buf = malloc(ATTACH_BUF);
	if (!a.v || !a.buf || a.clk_tck <= 0) {
		fprintf(stderr, "drover doctor: out of memory\n");
		return 1;
	}
	/* the target's cgroup, not ours: its quota and throttling */
	if (!sample_find_cgroup(&a.host, root, a.buf, ATTACH_BUF))
		fprintf(stderr, "drover doctor: no cpu cgroup found for process %d\n", (int)root);
	uint64_t t0 = sb_now_ns(), prev = 0;
	for (int k = 0; k <= seconds; k++) {
		uint64_t now = sb_now_ns();
		if (!sample_once(&a, prev ? (double)(now - prev) / 1e9 : 0, now)) {
			fprintf(stderr, "drover doctor: process %d is gone\n", (int)root);
			return 1;
		}
		prev = now;
		if (k < seconds) {
			struct timespec one = {1, 0};
			nanosleep(&one, NULL);
		}
	}
	struct mbuf out;
	mbuf_init(&out, 1 << 20);
	if (json) {
		doctor_json(&a.st, sb_now_ns(), true, &out);
		mbuf_put(&out, "\n", 1);
	} else {
		mbuf_printf(&out, "drover doctor: process %d and its %zu children, %.0f s\n", (int)root,
			    a.n > 0 && a.v[0].pid != root ? a.n : 0, (double)(sb_now_ns() - t0) / 1e9);
		doctor_text(&a.st, sb_now_ns(), true, &out);
	}
	fputs(out.p ? out.p : "", stdout);
	mbuf_free(&out);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: drover doctor [-s|--control PATH | -c CONFIG | --pidfile FILE] "
			"[--json]\n       drover doctor --attach PID [--seconds N] [--json]\n");
	return 2;
}

int doctor_main(int argc, char **argv)
{
	long pid = 0, seconds = 5;
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--attach") && i + 1 < argc)
			pid = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--json"))
			json = true;
	}
	if (pid > 0) {
		if (seconds < DOCTOR_HOLD || seconds > 3600)
			return usage();
		return attach_run((pid_t)pid, (int)seconds, json);
	}
	/* drover ctl [options] doctor */
	char **av = calloc((size_t)argc + 2, sizeof(*av));
	if (!av)
		return 1;
	av[0] = "ctl";
	for (int i = 1; i < argc; i++)
		av[i] = argv[i];
	av[argc] = "doctor";
	int rc = ctl_main(argc + 1, av);
	free(av);
	return rc;
}

/* Unit tests of supervisor/pool.c and the arbiter's tick, without forking:
 * fork and kill are injected, workers are records with scoreboard slots whose
 * boot marks and heartbeats the test writes itself.  Checked: who may move
 * the target, replace ordering (the successor accepts before the old worker
 * is told to drain), boot back-off and giving up, and the tick's timeout
 * decisions acted on through the pool. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "check.h"
#include "supervisor/arbiter.h"
#include "supervisor/pool.h"
#include "supervisor/sampler.h"

#define FAKE_PID0 5000000 /* above pid_max: /proc has none of these */
#define S 1000000000ull

static pid_t next_pid;
static struct {
	pid_t pid;
	int sig;
} kills[256];
static size_t nkills;
static size_t nforks;

static pid_t fake_fork(void)
{
	nforks++;
	return next_pid++;
}

static int fake_kill(pid_t pid, int sig)
{
	if (nkills < 256)
		kills[nkills++] = (typeof(kills[0])){pid, sig};
	return 0;
}

static const struct pool_ops fake_ops = {.fork = fake_fork, .kill = fake_kill};
static struct scoreboard *sb;
static struct drover_conf conf;
static struct listeners no_listeners;

static void reset_fakes(void)
{
	next_pid = FAKE_PID0;
	nkills = nforks = 0;
}

static struct pool *new_pool(void)
{
	static struct pool p;
	if (!sb)
		sb = sb_map(SB_MAX_SLOTS);
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		if (p.w[i].pid)
			sb_release(p.w[i].slot);
	p = (struct pool){0};
	pool_init(&p, sb, &fake_ops);
	p.env.conf = &conf;
	p.env.ls = &no_listeners;
	reset_fakes();
	return &p;
}

/* The index in kills[] of the first signal sig to pid, or -1. */
static int kill_index(pid_t pid, int sig)
{
	for (size_t i = 0; i < nkills; i++)
		if (kills[i].pid == pid && kills[i].sig == sig)
			return (int)i;
	return -1;
}

static void mark_booted(struct pool *p, pid_t pid, uint64_t now)
{
	struct worker_rec *w = pool_find(p, pid);
	sb_store(&w->slot->booted_ns, now);
	atomic_store(&w->slot->state, SB_IDLE);
}

/* A pool of n workers, all booted, at time now. */
static struct pool *booted_pool(unsigned n, uint64_t now)
{
	struct pool *p = new_pool();
	pool_set_target(p, n, POOL_BY_CONFIG);
	for (unsigned k = 0; k < n + 2 && pool_ready(p) < n; k++) {
		pool_manage(p, now);
		for (size_t i = 0; i < SB_MAX_SLOTS; i++)
			if (p->w[i].pid)
				mark_booted(p, p->w[i].pid, now);
		pool_manage(p, now);
	}
	return p;
}

static void target_sources(void)
{
	struct pool *p = new_pool();
	CHECK(pool_set_target(p, 3, POOL_BY_CONFIG) == 3);
	pool_manage(p, 1 * S);
	CHECK(nforks == 1); /* a new generation starts with one worker */
	mark_booted(p, FAKE_PID0, 1 * S);
	pool_manage(p, 1 * S);
	CHECK(nforks == 3 && pool_live(p) == 3);
	CHECK(pool_set_target(p, 100000, POOL_BY_OPERATOR) == POOL_MAX_TARGET);
	p->autoscale_min = 2;
	p->autoscale_max = 4;
	CHECK(pool_set_target(p, 9, POOL_BY_AUTOSCALER) == 4);
	CHECK(pool_set_target(p, 0, POOL_BY_AUTOSCALER) == 2);
	CHECK(pool_set_target(p, 0, POOL_BY_OPERATOR) == 0); /* the operator is not bound */
	pool_set_target(p, 3, POOL_BY_OPERATOR);
	pool_new_generation(p, 2);
	CHECK(p->generation == 1 && p->target == 2);
	pool_begin_stop(p, true, 2 * S);
	CHECK(pool_set_target(p, 7, POOL_BY_OPERATOR) == 2); /* frozen once stopping */
	CHECK(kill_index(FAKE_PID0, SIGTERM) >= 0);
	size_t forks = nforks;
	pool_manage(p, 3 * S);
	CHECK(nforks == forks); /* no fork while stopping */
}

static void shrink_drains_idle_youngest(void)
{
	struct pool *p = booted_pool(3, 1 * S);
	struct worker_rec *busy = pool_find(p, FAKE_PID0 + 2);
	atomic_store(&busy->slot->state, SB_BUSY);
	pool_set_target(p, 2, POOL_BY_OPERATOR);
	pool_manage(p, 2 * S);
	CHECK(nkills == 1 && kills[0].sig == SIGTERM && kills[0].pid != busy->pid);
	CHECK(pool_current(p) == 2 && pool_live(p) == 3);
}

static void replace_accepting_before_drain(void)
{
	struct pool *p = booted_pool(1, 1 * S);
	pid_t old = FAKE_PID0;
	CHECK(pool_replace(p, old, 2 * S) == 0);
	CHECK(pool_replace(p, old, 2 * S) == -ESRCH); /* once */
	CHECK(pool_replace(p, 12345, 2 * S) == -ESRCH);
	pool_manage(p, 2 * S);
	pid_t succ = FAKE_PID0 + 1;
	CHECK(pool_find(p, succ) != NULL);
	CHECK(pool_find(p, old)->successor == succ);
	pool_manage(p, 3 * S);
	CHECK(kill_index(old, SIGTERM) < 0); /* the successor is still booting */
	CHECK(pool_find(p, old)->stop_ns == 0);
	mark_booted(p, succ, 4 * S);
	pool_manage(p, 4 * S);
	CHECK(kill_index(old, SIGTERM) >= 0);
	CHECK(pool_find(p, old)->stop_ns == 4 * S);
	CHECK(kill_index(succ, SIGTERM) < 0);
	CHECK(nforks == 2 && pool_current(p) == 1);
}

static void replace_successor_dies(void)
{
	struct pool *p = booted_pool(1, 1 * S);
	pid_t old = FAKE_PID0;
	pool_replace(p, old, 2 * S);
	pool_manage(p, 2 * S);
	struct worker_rec *succ = pool_find(p, FAKE_PID0 + 1);
	CHECK(pool_reaped(p, succ, W_EXITCODE(1, 0), 3 * S) == POOL_REAP_OK);
	CHECK(pool_find(p, old)->successor == 0);
	pool_manage(p, 3 * S); /* within the back-off: no fork, the old one serves */
	CHECK(nforks == 2 && kill_index(old, SIGTERM) < 0);
	pool_manage(p, 4 * S);
	CHECK(nforks == 3 && pool_find(p, old)->successor == FAKE_PID0 + 2);
	mark_booted(p, FAKE_PID0 + 2, 5 * S);
	pool_manage(p, 5 * S);
	CHECK(kill_index(old, SIGTERM) >= 0);
}

/* The app loaded and served, then its files broke (a deploy half done): a
 * successor that cannot load it is retried after a back-off while the old
 * worker serves, never a reason to stop the master (nor to stop spawning,
 * as for a new configuration beside an old one). */
static void replace_successor_cannot_load_the_app(void)
{
	struct pool *p = booted_pool(1, 1 * S);
	pid_t old = FAKE_PID0;
	pool_replace(p, old, 2 * S);
	pool_manage(p, 2 * S);
	struct worker_rec *succ = pool_find(p, FAKE_PID0 + 1);
	CHECK(pool_reaped(p, succ, W_EXITCODE(WORKER_EXIT_APP_LOAD, 0), 3 * S) == POOL_REAP_OK);
	CHECK(!p->spawn_blocked && p->next_spawn_ns > 3 * S);
	for (int k = 0; k < conf.max_boot_failures + 2; k++) { /* past max_boot_failures */
		pool_manage(p, p->next_spawn_ns);
		succ = pool_find(p, next_pid - 1);
		CHECK(succ && succ->pid != old);
		CHECK(pool_reaped(p, succ, W_EXITCODE(WORKER_EXIT_APP_LOAD, 0), p->next_spawn_ns) ==
		      POOL_REAP_OK);
	}
	CHECK(kill_index(old, SIGTERM) < 0); /* the old one serves throughout */
}

static void replace_with_no_target_drains_at_once(void)
{
	struct pool *p = booted_pool(1, 1 * S);
	pool_replace(p, FAKE_PID0, 2 * S);
	pool_set_target(p, 0, POOL_BY_OPERATOR);
	pool_manage(p, 2 * S);
	CHECK(nforks == 1 && kill_index(FAKE_PID0, SIGTERM) >= 0);
}

static void boot_backoff_and_giving_up(void)
{
	struct pool *p = new_pool();
	pool_set_target(p, 2, POOL_BY_CONFIG);
	uint64_t now = 1 * S;
	for (int k = 1; k < conf.max_boot_failures; k++) {
		pool_manage(p, now);
		CHECK(pool_live(p) == 1); /* one at a time while they fail */
		struct worker_rec *w = pool_find(p, next_pid - 1);
		CHECK(pool_reaped(p, w, W_EXITCODE(3, 0), now) == POOL_REAP_OK);
		uint64_t backoff = (uint64_t)(0.1 * (1u << (k - 1 < 7 ? k - 1 : 7)) * 1e9);
		CHECK(p->next_spawn_ns == now + backoff);
		pool_manage(p, now + backoff - 1);
		CHECK(pool_live(p) == 0);
		now += backoff;
	}
	pool_manage(p, now);
	struct worker_rec *w = pool_find(p, next_pid - 1);
	CHECK(pool_reaped(p, w, W_EXITCODE(3, 0), now) == POOL_REAP_GIVE_UP_BOOT);
	/* A worker killed from outside says nothing about the app. */
	p = new_pool();
	pool_set_target(p, 1, POOL_BY_CONFIG);
	pool_manage(p, now);
	CHECK(pool_reaped(p, pool_find(p, FAKE_PID0), SIGKILL, now) == POOL_REAP_OK);
	CHECK(p->boot_failures == 0);
	/* An app that cannot load: give up at once. */
	pool_manage(p, now);
	w = pool_find(p, next_pid - 1);
	CHECK(pool_reaped(p, w, W_EXITCODE(WORKER_EXIT_APP_LOAD, 0), now) ==
	      POOL_REAP_GIVE_UP_APP_LOAD);
}

static void reload_new_first(void)
{
	struct pool *p = booted_pool(2, 1 * S);
	pool_new_generation(p, 2);
	pool_manage(p, 2 * S);
	CHECK(nforks == 3 && nkills == 0); /* one new worker, no old one stopped yet */
	mark_booted(p, FAKE_PID0 + 2, 3 * S);
	pool_manage(p, 3 * S);
	CHECK(nforks == 4 && nkills >= 1 && kills[0].sig == SIGTERM && kills[0].pid < FAKE_PID0 + 2);
}

static void commands_set_bits(void)
{
	struct pool *p = booted_pool(1, 1 * S);
	struct worker_rec *w = pool_find(p, FAKE_PID0);
	pool_command(p, w, SB_CMD_TRIM);
	pool_command(p, w, SB_CMD_STACK);
	CHECK(atomic_load(&w->slot->cmd) == (SB_CMD_TRIM | SB_CMD_STACK));
}

/* ---- the tick ---- */

static struct arbiter *tick_arbiter(unsigned workers, uint64_t now)
{
	static struct arbiter ar;
	struct pool *p = booted_pool(workers, now);
	sampler_free(ar.sampler);
	ar = (struct arbiter){.state = MASTER_RUNNING};
	ar.conf = conf;
	ar.conf.timeout = 2;
	ar.conf.graceful_timeout = 5;
	ar.pool = *p;
	ar.pool.env.conf = &ar.conf;
	ar.sampler = sampler_new();
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		if (ar.pool.w[i].pid)
			sb_store(&ar.pool.w[i].slot->heartbeat_ns, now);
	return &ar;
}

static void tick_timeout_then_kill(void)
{
	struct arbiter *ar = tick_arbiter(2, 1 * S);
	struct worker_rec *w = pool_find(&ar->pool, FAKE_PID0);
	sb_store(&pool_find(&ar->pool, FAKE_PID0 + 1)->slot->heartbeat_ns, 3 * S);
	arbiter_tick(ar, 2 * S);
	CHECK(nkills == 0);
	arbiter_tick(ar, 3 * S + 1); /* 2 s and a bit without a heartbeat */
	CHECK(nkills == 1 && kills[0].pid == FAKE_PID0 && kills[0].sig == SIGABRT);
	CHECK(w->kill_ns == 3 * S + 1);
	arbiter_tick(ar, 4 * S);
	CHECK(nkills == 1); /* the SIGKILL waits its grace */
	arbiter_tick(ar, 4 * S + 2);
	CHECK(nkills == 2 && kills[1].pid == FAKE_PID0 && kills[1].sig == SIGKILL);
}

static void tick_stop_overdue(void)
{
	struct arbiter *ar = tick_arbiter(1, 1 * S);
	pool_begin_stop(&ar->pool, true, 1 * S);
	ar->state = MASTER_GRACEFUL_STOP;
	CHECK(nkills == 1 && kills[0].sig == SIGTERM);
	arbiter_tick(ar, 5 * S); /* stopping: no timeout, within graceful_timeout */
	CHECK(nkills == 1);
	arbiter_tick(ar, 6 * S + 1);
	CHECK(nkills == 2 && kills[1].sig == SIGKILL);
	sampler_free(ar->sampler);
	ar->sampler = NULL;
}

int main(void)
{
	conf_defaults(&conf);
	RUN(target_sources);
	RUN(shrink_drains_idle_youngest);
	RUN(replace_accepting_before_drain);
	RUN(replace_successor_dies);
	RUN(replace_successor_cannot_load_the_app);
	RUN(replace_with_no_target_drains_at_once);
	RUN(boot_backoff_and_giving_up);
	RUN(reload_new_first);
	RUN(commands_set_bits);
	RUN(tick_timeout_then_kill);
	RUN(tick_stop_overdue);
	return check_summary();
}

/* Unit tests of the scoreboard: mapping shared across fork, slot claim and
 * release, histogram buckets and request accounting. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "workers/scoreboard.h"

static void test_claim_release(void)
{
	struct scoreboard *sb = sb_map(3);
	CHECK(sb != NULL);
	struct sb_slot *a = sb_claim(sb), *b = sb_claim(sb), *c = sb_claim(sb);
	CHECK(a && b && c && a != b && b != c);
	CHECK(sb_claim(sb) == NULL); /* full */
	CHECK(atomic_load(&a->state) == SB_BOOTING);
	sb_release(b);
	struct sb_slot *d = sb_claim(sb);
	CHECK(d == b);
	sb_unmap(sb);
}

static void test_claim_zeroes(void)
{
	struct scoreboard *sb = sb_map(1);
	struct sb_slot *a = sb_claim(sb);
	sb_add(&a->requests, 7);
	atomic_store(&a->pid, 42);
	sb_release(a);
	a = sb_claim(sb);
	CHECK(sb_load(&a->requests) == 0);
	CHECK(atomic_load(&a->pid) == 0);
	sb_unmap(sb);
}

static void test_map_bounds(void)
{
	CHECK(sb_map(0) == NULL);
	CHECK(sb_map(SB_MAX_SLOTS + 1) == NULL);
}

static void test_shared_across_fork(void)
{
	struct scoreboard *sb = sb_map(2);
	struct sb_slot *s = sb_claim(sb);
	pid_t pid = fork();
	if (pid == 0) {
		sb_request_done(s, 200, 1000, 10);
		sb_set_state(s, SB_IDLE);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	CHECK(sb_load(&s->requests) == 1);
	CHECK(sb_load(&s->bytes_out) == 10);
	CHECK(atomic_load(&s->state) == SB_IDLE);
	sb_unmap(sb);
}

static void test_hist_buckets(void)
{
	CHECK(sb_hist_bucket(0) == 0);
	CHECK(sb_hist_bucket(50000) == 0);
	CHECK(sb_hist_bucket(50001) == 1);
	CHECK(sb_hist_bucket(100000) == 1);
	CHECK(sb_hist_bucket(1000000000ull) == 15); /* 1 s <= 50us*2^15 = 1.6384 s */
	CHECK(sb_hist_bucket(60ull * 1000000000ull) == SB_HIST_BUCKETS - 1);
	CHECK(sb_hist_upper_s(0) == 50e-6);
	CHECK(sb_hist_upper_s(SB_HIST_BUCKETS - 1) > 1e300);
	/* the last finite bound reaches past 50 s */
	CHECK(sb_hist_upper_s(SB_HIST_BUCKETS - 2) > 50.0);
}

static void test_request_done(void)
{
	struct scoreboard *sb = sb_map(1);
	struct sb_slot *s = sb_claim(sb);
	sb_request_done(s, 200, 30000, 5);
	sb_request_done(s, 404, 3000000, 7);
	sb_request_done(s, 503, 3000000, 0);
	sb_request_done(s, 0, 1, 0);
	CHECK(sb_load(&s->requests) == 4);
	CHECK(sb_load(&s->status_class[2]) == 1);
	CHECK(sb_load(&s->status_class[4]) == 1);
	CHECK(sb_load(&s->status_class[5]) == 1);
	CHECK(sb_load(&s->status_class[0]) == 1);
	CHECK(sb_load(&s->hist[0]) == 2);
	CHECK(sb_load(&s->hist_sum_ns) == 6030001);
	CHECK(sb_load(&s->bytes_out) == 12);
	sb_unmap(sb);
}

static void test_fair_to_accept(void)
{
	struct scoreboard *sb = sb_map(4);
	struct sb_slot *a = sb_claim(sb), *b = sb_claim(sb), *c = sb_claim(sb);
	sb_set_state(a, SB_IDLE);
	sb_set_state(b, SB_IDLE);
	sb_set_state(c, SB_BOOTING);
	CHECK(atomic_load(&sb->used) == 3);
	atomic_store(&a->connections, 1);
	CHECK(sb_fair_to_accept(sb, a)); /* b is not listening: a must take it */
	atomic_store(&b->listening, 1);
	CHECK(!sb_fair_to_accept(sb, a)); /* b listens with 0 < 1 */
	CHECK(sb_fair_to_accept(sb, b));
	atomic_store(&b->connections, 1);
	CHECK(sb_fair_to_accept(sb, a)); /* a tie: both may accept */
	atomic_store(&c->listening, 1); /* booting c does not count */
	CHECK(sb_fair_to_accept(sb, a));
	sb_set_state(b, SB_DRAINING);
	atomic_store(&b->connections, 0);
	CHECK(sb_fair_to_accept(sb, a)); /* a draining worker takes nothing */
	CHECK(sb_fair_to_accept(NULL, a));
	sb_unmap(sb);
}

/* Any level but NONE counts, watching or deferring; a stalled worker never
 * counts; the level does not break ties (it flickers under load). */
static void test_fair_levels(void)
{
	struct scoreboard *sb = sb_map(4);
	struct sb_slot *a = sb_claim(sb), *b = sb_claim(sb);
	sb_set_state(a, SB_IDLE);
	sb_set_state(b, SB_BUSY);
	atomic_store(&a->listening, SB_ACCEPT_FREE);
	atomic_store(&b->listening, SB_ACCEPT_QUEUED);
	atomic_store(&a->connections, 3);
	atomic_store(&b->connections, 2);
	CHECK(!sb_fair_to_accept(sb, a)); /* b has fewer, though saturated */
	CHECK(sb_fair_to_accept(sb, b));
	atomic_store(&b->stall_now_n, 2);
	CHECK(sb_fair_to_accept(sb, a)); /* b's threads are stuck in long requests */
	atomic_store(&b->stall_now_n, 0);
	atomic_store(&b->connections, 3);
	CHECK(sb_fair_to_accept(sb, a) && sb_fair_to_accept(sb, b)); /* a tie */
	atomic_store(&b->listening, SB_ACCEPT_NONE); /* full: b takes nothing */
	atomic_store(&b->connections, 0);
	CHECK(sb_fair_to_accept(sb, a));
	sb_unmap(sb);
}

/* The deferring worker's re-check: 1 ms after any accept in the pool,
 * doubling while nothing moves, capped; fresh starts over. */
static void test_fair_wait(void)
{
	struct scoreboard *sb = sb_map(2);
	struct sb_slot *a = sb_claim(sb);
	uint64_t seen = 0;
	CHECK(sb_fair_wait_ms(sb, &seen, 0, 50, false) == 1); /* never below the minimum */
	CHECK(sb_fair_wait_ms(sb, &seen, 1, 50, false) == 2);
	CHECK(sb_fair_wait_ms(sb, &seen, 32, 50, false) == 50); /* capped */
	sb_add(&a->accepted, 1);
	CHECK(sb_fair_wait_ms(sb, &seen, 50, 50, false) == 1 && seen == 1); /* stale verdict */
	CHECK(sb_fair_wait_ms(sb, &seen, 8, 50, true) == 1); /* fresh */
	sb_unmap(sb);
}

static void test_excess_connections(void)
{
	struct scoreboard *sb = sb_map(4);
	struct sb_slot *a = sb_claim(sb), *b = sb_claim(sb), *c = sb_claim(sb);
	sb_set_state(a, SB_IDLE);
	sb_set_state(b, SB_IDLE);
	sb_set_state(c, SB_BOOTING);
	atomic_store(&a->listening, SB_ACCEPT_FREE);
	atomic_store(&b->listening, SB_ACCEPT_FREE);
	atomic_store(&c->listening, SB_ACCEPT_FREE);
	atomic_store(&a->connections, 50);
	CHECK(sb_excess_connections(sb, a) == 25); /* half the gap to b's 0 */
	CHECK(sb_excess_connections(sb, b) == 0);
	atomic_store(&a->connections, 26);
	atomic_store(&b->connections, 25);
	CHECK(sb_excess_connections(sb, a) == 0); /* a gap of 1: as even as it gets */
	atomic_store(&a->connections, 27);
	CHECK(sb_excess_connections(sb, a) == 1);
	atomic_store(&b->listening, SB_ACCEPT_NONE); /* b takes nothing: no one to give to */
	CHECK(sb_excess_connections(sb, a) == 0);
	CHECK(sb_excess_connections(NULL, a) == 0);
	atomic_store(&b->listening, SB_ACCEPT_FREE);
	atomic_fetch_add(&a->accepted, 5);
	atomic_fetch_add(&b->accepted, 2);
	CHECK(sb_pool_accepted(sb) == 7);
	sb_unmap(sb);
}

int main(void)
{
	RUN(test_fair_to_accept);
	RUN(test_fair_levels);
	RUN(test_fair_wait);
	RUN(test_excess_connections);
	RUN(test_claim_release);
	RUN(test_claim_zeroes);
	RUN(test_map_bounds);
	RUN(test_shared_across_fork);
	RUN(test_hist_buckets);
	RUN(test_request_done);
	return check_summary();
}

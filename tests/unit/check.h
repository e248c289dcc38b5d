/* A minimal unit-test harness: each RUN() prints "ok - name" or
 * "not ok - name" (TAP-like), and check_summary() prints the totals and gives
 * the exit status.  tests/run counts these lines. */
#ifndef DROVER_CHECK_H
#define DROVER_CHECK_H
#include <stdio.h>
#include <string.h>

static int check_failed_, check_npass_, check_nfail_;

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stdout, "#   %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
				#cond);                                              \
			check_failed_ = 1;                                           \
		}                                                                    \
	} while (0)
#define CHECK_STR(a, b)                                                              \
	do {                                                                         \
		const char *a_ = (a), *b_ = (b);                                     \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                             \
			fprintf(stdout, "#   %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
				a_ ? a_ : "(null)", b_ ? b_ : "(null)");             \
			check_failed_ = 1;                                           \
		}                                                                    \
	} while (0)

static inline void check_run_(const char *name, void (*fn)(void))
{
	check_failed_ = 0;
	fn();
	if (check_failed_) {
		check_nfail_++;
		printf("not ok - %s\n", name);
	} else {
		check_npass_++;
		printf("ok - %s\n", name);
	}
	fflush(stdout);
}
#define RUN(fn) check_run_(#fn, fn)

static inline int check_summary(void)
{
	printf("# %d passed, %d failed\n", check_npass_, check_nfail_);
	return check_nfail_ ? 1 : 0;
}
#endif

/* Unit tests of conf/: value parsers, conf_set, INI loading and its error
 * messages, validation, copy, the renderings, and contrib/drover.ini.
 * contrib/drover.ini must equal conf_example()'s output; to regenerate it run
 *   DROVER_REGEN=1 BUILDDIR/tests/test_conf && mv contrib/drover.ini.new contrib/drover.ini */
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "conf/conf.h"

static char tmpdir[] = "/tmp/test_conf.XXXXXX";

/* CHECK in a loop over cases, naming the case that failed. */
#define CHECK_FOR(cond, what)                                  \
	do {                                                   \
		bool ok_ = (cond);                             \
		if (!ok_)                                      \
			printf("#   for '%s':\n", (what));     \
		CHECK(ok_);                                    \
	} while (0)

/* Path of a file in the temp dir, valid until the next call. */
static const char *tmp_path(const char *name)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

/* len 0: strlen(text) */
static int write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fwrite(text, 1, len ? len : strlen(text), f);
	return fclose(f);
}

/* Load text as "x.ini" onto c; err comes back with the temp dir cut off so
 * that tests can compare against "x.ini:LINE: ...". */
static int load_text(struct drover_conf *c, const char *text, size_t len, char *err)
{
	const char *path = tmp_path("x.ini");
	size_t dl = strlen(tmpdir) + 1;
	int rc;

	err[0] = '\0';
	CHECK(write_file(path, text, len) == 0);
	rc = conf_load_file(c, path, err);
	if (!strncmp(err, path, dl))
		memmove(err, err + dl, strlen(err + dl) + 1);
	return rc;
}

static bool option_equal(const struct conf_option *o, const struct drover_conf *a,
			 const struct drover_conf *b)
{
	static const size_t size[] = {
		[CONF_INT] = sizeof(long long), [CONF_BOOL] = sizeof(bool), [CONF_DUR] = sizeof(double),
		[CONF_SIZE] = sizeof(unsigned long long), [CONF_ENUM] = sizeof(int), [CONF_NUM] = sizeof(double),
	};
	const void *pa = (const char *)a + o->offset, *pb = (const char *)b + o->offset;
	const struct conf_list *la = pa, *lb = pb;
	bool same = true;

	if (o->type == CONF_STR)
		return !strcmp(*(char *const *)pa, *(char *const *)pb);
	if (o->type != CONF_LIST)
		return !memcmp(pa, pb, size[o->type]);
	same = la->n == lb->n;
	for (size_t j = 0; same && j < la->n; j++)
		same = !strcmp(la->items[j], lb->items[j]);
	return same;
}

static bool conf_equal(const struct drover_conf *a, const struct drover_conf *b)
{
	for (size_t i = 0; i < conf_noptions; i++) {
		if (!option_equal(&conf_options[i], a, b)) {
			printf("#   option %s differs\n", conf_options[i].key);
			return false;
		}
	}
	return true;
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;

	if (!f)
		return NULL;
	if (getdelim(&buf, &cap, '\0', f) < 0) { /* the texts hold no NUL: reads all */
		free(buf);
		buf = strdup("");
	}
	fclose(f);
	return buf;
}

/* Output of a rendering function as a malloc'd string (through a real file,
 * as drover --check-config > file would). */
static char *capture(void (*fn)(FILE *))
{
	const char *path = tmp_path("out.txt");
	FILE *f = fopen(path, "w");

	if (!f)
		return strdup("");
	fn(f);
	fclose(f);
	return read_all(path);
}

static struct drover_conf print_src;
static void print_it(FILE *f)
{
	conf_print(&print_src, f);
}

static int set(struct drover_conf *c, const char *key, const char *value, char *err)
{
	return conf_set(c, NULL, key, value, false, err);
}

/* ---- the table ---- */

static void test_table(void)
{
	struct drover_conf c;
	char err[CONF_ERR_MAX];
	int rc;

	CHECK(conf_noptions > 30);
	for (size_t i = 0; i < conf_noptions; i++) {
		const struct conf_option *o = &conf_options[i];
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(o->key, conf_options[j].key) != 0);
		/* renderings print a [section] when it changes: sections are runs */
		for (size_t j = 0; i && j + 1 < i; j++)
			if (!strcmp(conf_options[j].section, o->section))
				CHECK(!strcmp(conf_options[i - 1].section, o->section));
		CHECK(o->min <= o->max);
		CHECK(strchr(o->key, '-') == NULL && strchr(o->key, '.') == NULL);
		CHECK(strlen(o->help) > 5);
		CHECK((o->type == CONF_ENUM) == (o->choices[0] != '\0'));
		memset(&c, 0, sizeof(c));
		rc = conf_set(&c, o->section, o->key, o->def, true, err);
		if (rc)
			printf("#   default of %s: %s\n", o->key, err);
		CHECK(rc == 0);
		conf_free(&c);
	}
}

static void test_defaults(void)
{
	struct drover_conf c;
	char err[CONF_ERR_MAX];

	conf_defaults(&c);
	CHECK(c.workers == 2 && c.worker_class == WORKER_SYNC && c.log_level == LOG_INFO_);
	CHECK(c.timeout == 30.0 && c.max_body == 100ULL << 20 && c.max_request_line == 8190);
	CHECK(!c.preload && c.bind.n == 1);
	CHECK_STR(c.bind.items[0], "127.0.0.1:8000");
	CHECK_STR(c.app, "");
	CHECK_STR(c.error_log, "-");
	CHECK(conf_validate(&c, err) == 0);
	conf_free(&c);
	CHECK(c.bind.n == 0 && c.app == NULL);
	conf_free(&c); /* twice is harmless */
}

/* ---- value parsers ---- */

static void test_parse_duration(void)
{
	static const struct { const char *s; double v; } good[] = {
		{ "30", 30 }, { "2.5", 2.5 }, { "500ms", 0.5 }, { "2s", 2 }, { "1m", 60 },
		{ "1h", 3600 }, { "0", 0 }, { ".5", 0.5 }, { "1.5m", 90 }, { "1ms", 0.001 },
		{ "007", 7 }, { "1.", 1 },
	};
	static const char *const bad[] = {
		"", "-1", "+1", "abc", "1x", "1 s", " 1", "1 ", "1e3", "0x10", "inf", "nan",
		"1.2.3", "ms", "1mss", "s", ".", "1S", "1d", "--1",
	};
	double v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = -1;
		CHECK_FOR(conf_parse_duration(good[i].s, &v) == 0 && v == good[i].v, good[i].s);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = -1;
		CHECK_FOR(conf_parse_duration(bad[i], &v) == -1 && v == -1, bad[i]);
	}
	CHECK(conf_parse_duration(NULL, &v) == -1);
}

static void test_parse_size(void)
{
	static const struct { const char *s; unsigned long long v; } good[] = {
		{ "8190", 8190 }, { "64k", 65536 }, { "64K", 65536 }, { "10M", 10ULL << 20 },
		{ "1G", 1ULL << 30 }, { "0", 0 }, { "1T", 1ULL << 40 }, { "2m", 2ULL << 20 },
		{ "18446744073709551615", ULLONG_MAX }, { "16777215T", 16777215ULL << 40 },
	};
	static const char *const bad[] = {
		"", "-1", "+1", "1.5M", "64kb", "k", "1 k", "0x10", " 1", "1 ", "abc", "1P",
		"18446744073709551616", "16777216T", "99999999999999999999999",
	};
	unsigned long long v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 1;
		CHECK_FOR(conf_parse_size(good[i].s, &v) == 0 && v == good[i].v, good[i].s);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 1;
		CHECK_FOR(conf_parse_size(bad[i], &v) == -1 && v == 1, bad[i]);
	}
}

static void test_parse_bool(void)
{
	static const char *const yes[] = { "true", "yes", "on", "1", "TRUE", "Yes", "oN" };
	static const char *const no[] = { "false", "no", "off", "0", "False", "NO", "OFF" };
	static const char *const bad[] = { "", "2", "yess", "tru", "y", "n", " true", "01" };
	bool b;

	for (size_t i = 0; i < 7; i++) {
		b = false;
		CHECK(conf_parse_bool(yes[i], &b) == 0 && b);
		b = true;
		CHECK(conf_parse_bool(no[i], &b) == 0 && !b);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(conf_parse_bool(bad[i], &b) == -1);
	CHECK(conf_parse_bool(NULL, &b) == -1);
}

/* ---- conf_set ---- */

/* Each row on fresh defaults: err NULL means it must succeed; otherwise it
 * must fail with exactly err and leave the whole configuration as it was. */
static const struct { const char *section, *key, *value, *err; } set_cases[] = {
	{ NULL, "workers", "1", NULL },
	{ NULL, "workers", "512", NULL },
	{ NULL, "workers", " 7 ", NULL },
	{ NULL, "workers", "0", "[server] workers: must be between 1 and 512, got 0" },
	{ NULL, "workers", "513", "[server] workers: must be between 1 and 512, got 513" },
	{ NULL, "workers", "-1", "[server] workers: must be between 1 and 512, got -1" },
	{ NULL, "workers", "abc", "[server] workers: not an integer: 'abc'" },
	{ NULL, "workers", "3.5", "[server] workers: not an integer: '3.5'" },
	{ NULL, "workers", "", "[server] workers: not an integer: ''" },
	{ NULL, "workers", "+3", "[server] workers: not an integer: '+3'" },
	{ NULL, "workers", "0x10", "[server] workers: not an integer: '0x10'" },
	{ NULL, "workers", "99999999999999999999",
	  "[server] workers: not an integer: '99999999999999999999'" },
	{ NULL, "max_requests", "1000000000", NULL },
	{ NULL, "max_requests", "1000000001",
	  "[server] max_requests: must be between 0 and 1000000000, got 1000000001" },
	{ NULL, "timeout", "86400", NULL },
	{ NULL, "timeout", "24h", NULL },
	{ NULL, "timeout", "86401", "[server] timeout: must be between 0 and 86400 seconds, got 86401" },
	{ NULL, "timeout", "abc", "[server] timeout: not a duration: 'abc'" },
	{ NULL, "timeout", "-5", "[server] timeout: not a duration: '-5'" },
	{ NULL, "read_timeout", "1ms", NULL },
	{ NULL, "read_timeout", "0.5ms",
	  "[http] read_timeout: must be between 0.001 and 86400 seconds, got 0.0005" },
	{ NULL, "heap_sample_interval", "100ms", NULL },
	{ NULL, "heap_sample_interval", "99ms",
	  "[worker] heap_sample_interval: must be between 0.1 and 3600 seconds, got 0.099" },
	{ NULL, "max_request_line", "64", NULL },
	{ NULL, "max_request_line", "1M", NULL },
	{ NULL, "max_request_line", "63",
	  "[http] max_request_line: must be between 64 and 1048576 bytes, got 63" },
	{ NULL, "max_request_line", "2M",
	  "[http] max_request_line: must be between 64 and 1048576 bytes, got 2097152" },
	{ NULL, "max_request_line", "10 MB", "[http] max_request_line: not a size: '10 MB'" },
	{ NULL, "max_body", "1T", NULL },
	{ NULL, "max_body", "1025G",
	  "[http] max_body: must be between 0 and 1099511627776 bytes, got 1100585369600" },
	{ NULL, "worker_class", "gthread", NULL },
	{ NULL, "worker_class", "eventlet",
	  "[server] worker_class: 'eventlet' is not supported: drover has no monkey-patching "
	  "worker. Use -k event (the WSGI app runs on an event loop without "
	  "monkey-patching, so a blocking call stalls the loop, and drover names the stalled "
	  "call) or -k thread for blocking code (gunicorn's gthread)" },
	{ NULL, "worker_class", "sync|thread",
	  "[server] worker_class: must be one of sync, thread, event or asgi, got 'sync|thread'" },
	{ NULL, "preload", "maybe",
	  "[server] preload: not a boolean (true/false, yes/no, on/off, 1/0): 'maybe'" },
	{ NULL, "app", "so:/x.so", NULL },
	{ NULL, "app", "mod.sub:app", NULL },
	{ NULL, "app", "so:", "[server] app: missing path or module name: 'so:'" },
	{ NULL, "app", "python:", "[server] app: missing path or module name: 'python:'" },
	{ NULL, "app", ":app", "[server] app: missing path or module name: ':app'" },
	{ NULL, "access_log_format", "%(h)s %(r)s", NULL },
	{ NULL, "access_log_format", "bogus", "[log] access_log_format: neither a preset (drover, "
					      "common, combined) nor a format with %-codes: 'bogus'" },
	{ NULL, "metrics_bind", "127.0.0.1:9100", NULL },
	{ NULL, "metrics_bind", "unix:/x",
	  "[metrics] metrics_bind: 'unix:/x': unix sockets are not supported here" },
	{ NULL, "server.workers", "3", NULL },
	{ "server", "workers", "3", NULL },
	{ NULL, "worker.workers", "3", "worker.workers: unknown key (did you mean 'workers'?)" },
	{ "server", "wrokers", "3", "[server] wrokers: unknown key (did you mean 'workers'?)" },
	{ "server", "thread", "3", "[server] thread: unknown key (did you mean 'threads' in [worker]?)" },
	{ NULL, "graceful-timeout", "3",
	  "graceful-timeout: unknown key (did you mean 'graceful_timeout'?)" },
	{ NULL, "zzzzzzzz", "3", "zzzzzzzz: unknown key" },
	{ "bogus", "workers", "3", "[bogus]: unknown section" },
	{ "worker", "workers", "3", "[worker] workers: not in this section (it belongs in [server])" },
	{ NULL, "workers", NULL, "[server] workers: missing value" },
	{ NULL, NULL, "3", "missing key" },
};

static void test_set_cases(void)
{
	struct drover_conf c, def;
	char err[CONF_ERR_MAX];
	int rc;

	conf_defaults(&def);
	for (size_t i = 0; i < sizeof(set_cases) / sizeof(set_cases[0]); i++) {
		conf_defaults(&c);
		rc = conf_set(&c, set_cases[i].section, set_cases[i].key, set_cases[i].value, true, err);
		CHECK_FOR((rc == 0) == !set_cases[i].err,
			  set_cases[i].err ? set_cases[i].err : set_cases[i].value);
		if (set_cases[i].err) {
			CHECK_STR(err, set_cases[i].err);
			CHECK_FOR(conf_equal(&c, &def), set_cases[i].err);
		}
		conf_free(&c);
	}
	conf_free(&def);
}

static void test_set_values(void)
{
	struct drover_conf c;
	char err[CONF_ERR_MAX];

	conf_defaults(&c);
	CHECK(set(&c, "workers", " 7 ", err) == 0 && c.workers == 7);
	CHECK(set(&c, "timeout", "24h", err) == 0 && c.timeout == 86400);
	CHECK(set(&c, "read_timeout", "1ms", err) == 0 && c.read_timeout == 0.001);
	CHECK(set(&c, "max_request_line", "1M", err) == 0 && c.max_request_line == 1048576);
	CHECK(set(&c, "max_body", "1T", err) == 0 && c.max_body == 1ULL << 40);
	CHECK(set(&c, "worker_class", "thread", err) == 0 && c.worker_class == WORKER_THREAD);
	CHECK(set(&c, "worker_class", "EVENT", err) == 0 && c.worker_class == WORKER_EVENT);
	CHECK(set(&c, "log_level", "critical", err) == 0 && c.log_level == LOG_CRITICAL_);
	CHECK(set(&c, "preload", "yes", err) == 0 && c.preload);
	CHECK(set(&c, "preload", "off", err) == 0 && !c.preload);
	CHECK(set(&c, "preload", " on ", err) == 0 && c.preload);
	CHECK(set(&c, "proc_name", " my app ", err) == 0);
	CHECK_STR(c.proc_name, " my app "); /* strings are taken as given */
	CHECK(set(&c, "server.workers", "6", NULL) == 0 && c.workers == 6);
	CHECK(set(&c, "workers", "0", NULL) == -1 && c.workers == 6); /* err may be NULL */

	CHECK_STR(conf_enum_name("worker_class", 1), "thread");
	CHECK_STR(conf_enum_name("server.worker_class", 2), "event");
	CHECK_STR(conf_enum_name("log_level", 0), "debug");
	CHECK_STR(conf_enum_name("log_level", 4), "critical");
	CHECK(conf_enum_name("log_level", 5) == NULL);
	CHECK_STR(conf_enum_name("worker_class", 3), "asgi");
	CHECK(conf_enum_name("worker_class", 4) == NULL);
	CHECK(conf_enum_name("worker_class", -1) == NULL);
	CHECK(conf_enum_name("workers", 0) == NULL);
	CHECK(conf_enum_name("nope", 0) == NULL);
	conf_free(&c);
}

static void test_set_list(void)
{
	struct drover_conf c;
	char err[CONF_ERR_MAX];

	conf_defaults(&c);
	CHECK(conf_set(&c, NULL, "bind", "a:1", true, err) == 0);
	CHECK(c.bind.n == 1 && !strcmp(c.bind.items[0], "a:1"));
	CHECK(conf_set(&c, NULL, "bind", " b:2 , unix:/x ,, ", false, err) == 0);
	CHECK(c.bind.n == 3);
	CHECK_STR(c.bind.items[1], "b:2");
	CHECK_STR(c.bind.items[2], "unix:/x");
	CHECK(conf_set(&c, NULL, "bind", "c:3", true, err) == 0);
	CHECK(c.bind.n == 1 && !strcmp(c.bind.items[0], "c:3"));
	/* one bad item: nothing is applied, not even with replace */
	CHECK(conf_set(&c, NULL, "bind", "d:4, nope", true, err) == -1);
	CHECK_STR(err, "[server] bind: 'nope': expected HOST:PORT, [IPv6]:PORT or unix:PATH");
	CHECK(c.bind.n == 1 && !strcmp(c.bind.items[0], "c:3"));
	CHECK(conf_set(&c, NULL, "bind", "", true, err) == 0 && c.bind.n == 0);
	conf_free(&c);
}

static void test_addresses(void)
{
	static const char *const good[] = {
		"127.0.0.1:8000", "localhost:80", "[::1]:8000", "[fe80::1%eth0]:80",
		"unix:/tmp/x.sock", "0.0.0.0:65535", "host-name.example:1", "[::ffff:1.2.3.4]:9",
	};
	static const struct { const char *a, *why; } bad[] = {
		{ "8000", "expected HOST:PORT, [IPv6]:PORT or unix:PATH" },
		{ ":8000", "expected HOST:PORT, [IPv6]:PORT or unix:PATH" },
		/* "127.0.0.1" alone is gunicorn's 127.0.0.1:8000: see below */
		{ "127.0.0.1:0", "port must be between 1 and 65535, got '0'" },
		{ "127.0.0.1:65536", "port must be between 1 and 65535, got '65536'" },
		{ "127.0.0.1:080x", "port must be between 1 and 65535, got '080x'" },
		{ "h:", "port must be between 1 and 65535, got ''" },
		{ "::1:8000", "IPv6 addresses go in brackets, e.g. [::1]:8000" },
		{ "[::1]8000", "expected [IPv6]:PORT" },
		{ "[nothing]:80", "not an IPv6 address: 'nothing'" },
		{ "[::1:80", "missing ']' after the IPv6 address" },
		{ "unix:", "empty unix socket path" },
		{ "a*b:80", "bad character '*' in host name" },
	};
	struct drover_conf c;
	char err[CONF_ERR_MAX], want[CONF_ERR_MAX], longpath[200];

	conf_defaults(&c);
	/* gunicorn: a host alone listens on port 8000 */
	CHECK(conf_set(&c, NULL, "bind", "127.0.0.1, [::1], unix:/x", true, err) == 0);
	CHECK(c.bind.n == 3 && !strcmp(c.bind.items[0], "127.0.0.1:8000") &&
	      !strcmp(c.bind.items[1], "[::1]:8000") && !strcmp(c.bind.items[2], "unix:/x"));
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (conf_set(&c, NULL, "bind", good[i], true, err))
			printf("#   %s\n", err);
		CHECK(c.bind.n == 1 && !strcmp(c.bind.items[0], good[i]));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(set(&c, "bind", bad[i].a, err) == -1);
		snprintf(want, sizeof(want), "[server] bind: '%s': %s", bad[i].a, bad[i].why);
		CHECK_STR(err, want);
	}
	snprintf(longpath, sizeof(longpath), "unix:/%0107d", 0); /* 108 bytes of path */
	CHECK(set(&c, "bind", longpath, err) == -1);
	longpath[strlen(longpath) - 1] = '\0';
	CHECK(set(&c, "bind", longpath, err) == 0);
	conf_free(&c);
}

static void test_find(void)
{
	const struct conf_option *o = conf_find("workers");

	CHECK(o && !strcmp(o->section, "server") && o->type == CONF_INT);
	CHECK(conf_find("server.workers") == o);
	CHECK(conf_find("worker.threads") == conf_find("threads"));
	CHECK(conf_find("threads") != NULL);
	CHECK(conf_find("worker.workers") == NULL);
	CHECK(conf_find("serve.workers") == NULL);
	CHECK(conf_find("servers.workers") == NULL);
	CHECK(conf_find(".workers") == NULL);
	CHECK(conf_find("server.") == NULL);
	CHECK(conf_find("nope") == NULL);
	CHECK(conf_find("") == NULL);
	CHECK(conf_find(NULL) == NULL);
}

/* ---- INI loading ---- */

/* Each text is loaded as x.ini onto fresh defaults: it must fail with exactly
 * err and change nothing, even options set on lines before the bad one. */
static const struct { const char *ini, *err; } load_cases[] = {
	{ "# drover\n\n[server]\n; comment\napp = x:y\n\nworkers = 0\n",
	  "x.ini:7: [server] workers: must be between 1 and 512, got 0" },
	{ "[server]\nworkers = 3\nwrokers = 3\n",
	  "x.ini:3: [server] wrokers: unknown key (did you mean 'workers'?)" },
	{ "[bogus]\n", "x.ini:1: [bogus]: unknown section" },
	{ "[server]\nworkers = 2\n[autoscale]\nautoscale = on\nmin_workers = 3\n",
	  "x.ini:5: [autoscale] min_workers: 3 is more than workers (2)" },
	{ "[autoscale]\nmax_workers = 4\n[server]\nworkers = 5\n",
	  "x.ini:2: [autoscale] max_workers: 4 is less than workers (5)" },
	{ "[autoscale]\ntarget_utilization = 70%\n",
	  "x.ini:2: [autoscale] target_utilization: not a number: '70%'" },
	{ "[autoscale]\ntarget_utilization = 1.5\n",
	  "x.ini:2: [autoscale] target_utilization: must be between 0.05 and 1, got 1.5" },
	{ "[server]\nworkers = 3\n[Server]\n",
	  "x.ini:3: [Server]: unknown section (did you mean [server]?)" },
	{ "\n[server]\n\ntimeout = abc\n", "x.ini:4: [server] timeout: not a duration: 'abc'" },
	{ "# top\nworkers = 3\n[server]\n",
	  "x.ini:2: workers: key outside any section (it belongs in [server])" },
	{ "nope = 3\n", "x.ini:1: nope: key outside any section" },
	{ "[server]\nworkers 3\n",
	  "x.ini:2: syntax error (expected [section], key = value or a comment)" },
	{ "[server\nworkers = 3\n",
	  "x.ini:1: syntax error (expected [section], key = value or a comment)" },
	/* the first error wins, whichever kind it is */
	{ "[server]\njunk\nworkers = 0\n",
	  "x.ini:2: syntax error (expected [section], key = value or a comment)" },
	{ "[server]\nworkers = 0\njunk\n",
	  "x.ini:2: [server] workers: must be between 1 and 512, got 0" },
	{ "[server]\nworkers = 3\n\nworkers = 4\n",
	  "x.ini:4: [server] workers: set twice (first on line 2)" },
	{ "[server]\nworkers = 3\n[worker]\n[server]\nworkers = 4\n",
	  "x.ini:5: [server] workers: set twice (first on line 2)" },
	{ "[server]\nworkers = 3\n  timeout = 4\n",
	  "x.ini:3: [server] workers: indented line read as more of 'workers', which takes one "
	  "value (remove the indentation)" },
	{ "[worker]\nworkers = 3\n",
	  "x.ini:2: [worker] workers: not in this section (it belongs in [server])" },
	{ "[server]\nserver.workers = 3\n", "x.ini:2: [server] server.workers: unknown key" },
	{ "[server]\nbind = a:1\nbind = b:2, a:1\n", "x.ini:3: [server] bind: 'a:1' listed twice" },
	{ "[server]\nbind = a:1\n[metrics]\nmetrics_bind = a:1\n",
	  "x.ini:4: [metrics] metrics_bind: 'a:1' is also an application listener (bind)" },
	{ "[server]\nbind =\n", "x.ini:2: [server] bind: no listen address (the list is empty)" },
	{ "[server]\npreload = sure\n",
	  "x.ini:2: [server] preload: not a boolean (true/false, yes/no, on/off, 1/0): 'sure'" },
	{ "[server]\nworkers = 5\n[worker]\nthreads = 0\n",
	  "x.ini:4: [worker] threads: must be between 1 and 1024, got 0" },
	{ "[server]\nworkers = 5\n[nope]\n", "x.ini:3: [nope]: unknown section" },
	/* issue 13: a user or group this host does not know is a config error */
	{ "[server]\nworkers = 2\nuser = no-such-user-x\n",
	  "x.ini:3: [server] user: no such user 'no-such-user-x' on this host (getpwnam)" },
	{ "[server]\ngroup = no-such-group-x\n",
	  "x.ini:2: [server] group: no such group 'no-such-group-x' on this host (getgrnam)" },
	{ "[server]\numask = 0888\n",
	  "x.ini:2: [server] umask: expected an octal mask from 0 to 0777 with a leading 0 "
	  "(027 or 0o27), got '0888'" },
};

static void test_load_errors(void)
{
	char err[CONF_ERR_MAX], want[CONF_ERR_MAX + PATH_MAX];
	struct drover_conf c, def;

	conf_defaults(&def);
	for (size_t i = 0; i < sizeof(load_cases) / sizeof(load_cases[0]); i++) {
		conf_defaults(&c);
		CHECK_FOR(load_text(&c, load_cases[i].ini, 0, err) == -1, load_cases[i].ini);
		CHECK_STR(err, load_cases[i].err);
		CHECK_FOR(conf_equal(&c, &def), load_cases[i].ini);
		conf_free(&c);
	}
	CHECK(load_text(&def, "[server]\napp = x\0y\n", 18, err) == -1);
	CHECK_STR(err, "x.ini:2: NUL byte in line");
	snprintf(want, sizeof(want), "%s: No such file or directory", tmp_path("missing.ini"));
	CHECK(conf_load_file(&def, tmp_path("missing.ini"), err) == -1);
	CHECK_STR(err, want);
	snprintf(want, sizeof(want), "%s: Is a directory", tmpdir);
	CHECK(conf_load_file(&def, tmpdir, err) == -1);
	CHECK_STR(err, want);
	conf_free(&def);
}

static void test_load_good(void)
{
	char text[512], err[CONF_ERR_MAX];
	struct drover_conf c;
	int n = snprintf(text, sizeof(text), "[server]\napp = ");

	conf_defaults(&c);
	/* 197 characters is the most libinih's 200-byte buffer holds */
	memset(text + n, 'a', 197 - 6);
	strcpy(text + n + 197 - 6, "\n");
	CHECK(load_text(&c, text, 0, err) == 0 && strlen(c.app) == 191);
	strcpy(text + n + 197 - 6, "b\n");
	CHECK(load_text(&c, text, 0, err) == -1);
	CHECK_STR(err, "x.ini:2: line too long (198 characters, at most 197)");
	CHECK(load_text(&c, "\xEF\xBB\xBF[server]\r\nworkers: 7 ; inline comment\r\n"
			    "  # indented comment\r\n[worker]\r\n   threads=3\r\n[http]\n", 0, err) == 0);
	CHECK(c.workers == 7 && c.threads == 3);
	CHECK(load_text(&c, "", 0, err) == 0 && load_text(&c, "[log]\n", 0, err) == 0);
	CHECK(load_text(&c, "[python]\npythonpath = /a:/b\n", 0, err) == 0);
	CHECK_STR(c.pythonpath, "/a:/b");
	/* a list's first line in a file replaces, later and indented lines append */
	CHECK(load_text(&c, "[server]\nbind = a:1\nworkers = 3\nbind = b:2, unix:/s\n"
			    "  [::1]:80\n  c:3\n", 0, err) == 0);
	CHECK(c.bind.n == 5 && !strcmp(c.bind.items[0], "a:1") &&
	      !strcmp(c.bind.items[3], "[::1]:80") && !strcmp(c.bind.items[4], "c:3"));
	CHECK(load_text(&c, "[server]\nbind = d:4\n", 0, err) == 0);
	CHECK(c.bind.n == 1 && !strcmp(c.bind.items[0], "d:4"));
	CHECK(load_text(&c, "[server]\nworkers = 4\n", 0, err) == 0);
	CHECK(c.bind.n == 1 && c.workers == 4 && c.threads == 3);
	conf_free(&c);
}

/* default < file < conf_set, and a later file only changes what it names */
static void test_precedence(void)
{
	struct drover_conf c;
	char err[CONF_ERR_MAX];

	conf_defaults(&c);
	CHECK(c.workers == 2 && c.timeout == 30);
	CHECK(load_text(&c, "[server]\nworkers = 5\nbind = f:1\n", 0, err) == 0);
	CHECK(c.workers == 5 && c.timeout == 30);
	CHECK(set(&c, "workers", "7", err) == 0 && c.workers == 7);
	CHECK(conf_set(&c, NULL, "bind", "g:1", true, err) == 0); /* first -b */
	CHECK(conf_set(&c, NULL, "bind", "h:1", false, err) == 0); /* later -b */
	CHECK(c.bind.n == 2 && !strcmp(c.bind.items[0], "g:1"));
	CHECK(load_text(&c, "[server]\ntimeout = 1m\n", 0, err) == 0);
	CHECK(c.workers == 7 && c.timeout == 60 && c.bind.n == 2);
	conf_free(&c);
}

/* ---- whole configurations ---- */

/* A value unlike the default for each option, in every type's syntax. */
static const char *other_value(const struct conf_option *o)
{
	static const struct { const char *key, *v; } special[] = {
		{ "bind", "unix:/tmp/a.sock, [::1]:9000, 0.0.0.0:80" },
		{ "metrics_bind", "127.0.0.1:9100" },
		{ "access_log_format", "%(h)s \"%(r)s\" %(s)s" },
		{ "app", "so:/opt/app.so:handler" },
		{ "timeout", "123.456ms" },
		{ "keepalive", "0.3" },
		{ "max_body", "3k" },
		{ "max_header_size", "1000" },
		{ "log_level", "warning" },
		{ "stall_action", "kill" },
		{ "user", "nobody" },
		{ "group", "65534" },
		{ "umask", "027" },
		{ "upgrade_handover", "manual" },
		{ "asgi_loop", "asyncio" },
		{ "lifespan_mode", "off" },
	};

	for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
		if (!strcmp(special[i].key, o->key))
			return special[i].v;
	switch (o->type) {
	case CONF_INT: return "3";
	case CONF_DUR: return "45m";
	case CONF_NUM: return "0.5";
	case CONF_SIZE: return "1023";
	case CONF_BOOL: return "true";
	case CONF_ENUM: return "event";
	default: return "/srv/some path/x=y#z";
	}
}

static void test_roundtrip(void)
{
	struct drover_conf c, back, def;
	char err[CONF_ERR_MAX], *text;

	conf_defaults(&c);
	conf_defaults(&def);
	for (size_t i = 0; i < conf_noptions; i++) {
		const struct conf_option *o = &conf_options[i];
		if (conf_set(&c, o->section, o->key, other_value(o), true, err))
			printf("#   %s\n", err);
	}
	CHECK(c.bind.n == 3 && c.timeout == 0.123456 && c.max_body == 3072);
	for (size_t i = 0; i < conf_noptions; i++) /* so each one is tested */
		CHECK(!option_equal(&conf_options[i], &c, &def));
	for (int round = 0; round < 2; round++) {
		print_src = round ? def : c;
		text = capture(print_it);
		CHECK(strstr(text, "\n[server]\napp =") != NULL);
		conf_defaults(&back);
		if (load_text(&back, text, 0, err))
			printf("#   %s\n", err);
		CHECK(conf_equal(&back, round ? &def : &c));
		conf_free(&back);
		free(text);
	}
	conf_free(&def);
	conf_free(&c);
}

static void test_copy(void)
{
	struct drover_conf a, b;
	char err[CONF_ERR_MAX];

	conf_defaults(&a);
	CHECK(set(&a, "app", "m:app", err) == 0);
	conf_copy(&b, &a);
	CHECK(conf_equal(&a, &b));
	CHECK(a.app != b.app && a.bind.items != b.bind.items &&
	      a.bind.items[0] != b.bind.items[0]);
	CHECK(set(&b, "app", "n:app", err) == 0);
	CHECK(set(&b, "bind", "z:9", err) == 0);
	b.bind.items[0][0] = 'X';
	CHECK_STR(a.app, "m:app");
	CHECK(a.bind.n == 1);
	CHECK_STR(a.bind.items[0], "127.0.0.1:8000");
	conf_free(&b);
	CHECK_STR(a.app, "m:app");
	conf_free(&a);
}

static void test_validate(void)
{
	struct drover_conf c;
	char err[CONF_ERR_MAX];

	conf_defaults(&c);
	CHECK(conf_validate(&c, err) == 0);
	CHECK(conf_validate(&c, NULL) == 0);
	c.workers = 0; /* set behind conf_set's back */
	CHECK(conf_validate(&c, err) == -1);
	CHECK_STR(err, "[server] workers: must be between 1 and 512, got 0");
	c.workers = 2;
	c.worker_class = 7;
	CHECK(conf_validate(&c, err) == -1);
	CHECK_STR(err, "[server] worker_class: no choice number 7");
	c.worker_class = WORKER_THREAD;
	c.keepalive = -1;
	CHECK(conf_validate(&c, err) == -1);
	CHECK_STR(err, "[worker] keepalive: must be between 0 and 3600 seconds, got -1");
	c.keepalive = 2;
	free(c.bind.items[0]);
	c.bind.items[0] = strdup("bad");
	CHECK(conf_validate(&c, err) == -1);
	CHECK_STR(err, "[server] bind: 'bad': expected HOST:PORT, [IPv6]:PORT or unix:PATH");
	CHECK(conf_set(&c, NULL, "bind", "a:1, b:2", true, err) == 0);
	CHECK(conf_validate(&c, err) == 0);
	CHECK(set(&c, "max_requests_jitter", "50", err) == 0); /* without max_requests: fine */
	CHECK(conf_validate(&c, err) == 0);
	conf_free(&c);
}

/* ---- renderings ---- */

static void test_help(void)
{
	char *text = capture(conf_help), flag[80];

	for (size_t i = 0; i < conf_noptions; i++) {
		size_t n = (size_t)snprintf(flag, sizeof(flag), "  --");
		for (const char *k = conf_options[i].key; *k; k++)
			flag[n++] = *k == '_' ? '-' : *k;
		flag[n++] = conf_options[i].type == CONF_BOOL ? ',' : ' ';
		flag[n] = '\0';
		if (!strstr(text, flag))
			printf("#   no '%s'\n", flag);
		CHECK(strstr(text, flag) != NULL);
	}
	CHECK(strstr(text, "  --preload, --no-preload ") != NULL);
	CHECK(strstr(text, "\n  --graceful-timeout DURATION       time given to") != NULL);
	CHECK(strstr(text, "(default: 30)") != NULL);
	CHECK(strstr(text, "sync, thread, event or asgi") != NULL);
	for (const char *l = text; *l; l += strcspn(l, "\n") + 1)
		CHECK(strcspn(l, "\n") <= 79);
	free(text);
}

static void test_example(void)
{
	char *text = capture(conf_example), *uncommented, err[CONF_ERR_MAX], line[128];
	struct drover_conf c, def;
	size_t n = 0;

	conf_defaults(&def);
	for (const char *l = text; *l; l += strcspn(l, "\n") + 1)
		CHECK(strcspn(l, "\n") <= 78);
	for (size_t i = 0; i < conf_noptions; i++) {
		snprintf(line, sizeof(line), "\n;%s =", conf_options[i].key);
		CHECK(strstr(text, line) != NULL);
		snprintf(line, sizeof(line), "\n[%s]\n", conf_options[i].section);
		CHECK(strstr(text, line) != NULL);
	}
	/* as shipped (all commented out) it gives the defaults... */
	conf_defaults(&c);
	CHECK(load_text(&c, text, 0, err) == 0 && conf_equal(&c, &def));
	/* ...and with every ";key = default" line enabled, too */
	uncommented = malloc(strlen(text) + 1);
	for (const char *p = text; *p; p++)
		if (!(*p == ';' && (p == text || p[-1] == '\n')))
			uncommented[n++] = *p;
	uncommented[n] = '\0';
	CHECK(set(&c, "workers", "9", err) == 0);
	if (load_text(&c, uncommented, 0, err))
		printf("#   %s\n", err);
	CHECK(conf_equal(&c, &def));
	conf_free(&c);
	conf_free(&def);
	free(uncommented);
	free(text);
}

static void test_contrib_ini(void)
{
	const char *path = SOURCE_ROOT "/contrib/drover.ini";
	char *want = capture(conf_example), *have = read_all(path);
	const char *regen = getenv("DROVER_REGEN");

	if (regen && !strcmp(regen, "1")) {
		CHECK(write_file(SOURCE_ROOT "/contrib/drover.ini.new", want, 0) == 0);
		printf("# wrote %s.new\n", path);
	}
	if (!have || strcmp(have, want))
		printf("#   %s differs from conf_example(); regenerate it:\n"
		       "#   DROVER_REGEN=1 BUILDDIR/tests/test_conf && "
		       "mv %s.new %s\n", path, path, path);
	CHECK(have && !strcmp(have, want));
	free(have);
	free(want);
}

static void test_metrics_bind_port_alone(void)
{
	/* A bare port means loopback; the port is still checked. */
	struct drover_conf c;
	char err[CONF_ERR_MAX];
	memset(&c, 0, sizeof(c));
	conf_defaults(&c);
	CHECK(conf_set(&c, NULL, "metrics_bind", "9100", true, err) == 0);
	CHECK(conf_set(&c, NULL, "metrics_bind", ":9100", true, err) == 0);
	CHECK(conf_set(&c, NULL, "metrics_bind", "127.0.0.1:9100", true, err) == 0);
	CHECK(conf_set(&c, NULL, "metrics_bind", "99999", true, err) < 0);
	CHECK(strstr(err, "port") != NULL);
	CHECK(conf_set(&c, NULL, "metrics_bind", "unix:/x", true, err) < 0);
	conf_free(&c);
}

int main(void)
{
	RUN(test_metrics_bind_port_alone);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_table);
	RUN(test_defaults);
	RUN(test_parse_duration);
	RUN(test_parse_size);
	RUN(test_parse_bool);
	RUN(test_set_cases);
	RUN(test_set_values);
	RUN(test_set_list);
	RUN(test_addresses);
	RUN(test_find);
	RUN(test_load_errors);
	RUN(test_load_good);
	RUN(test_precedence);
	RUN(test_roundtrip);
	RUN(test_copy);
	RUN(test_validate);
	RUN(test_help);
	RUN(test_example);
	RUN(test_contrib_ini);
	unlink(tmp_path("x.ini"));
	unlink(tmp_path("out.txt"));
	rmdir(tmpdir);
	return check_summary();
}

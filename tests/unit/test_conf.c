/* Unit tests of conf/: value parsers, conf_set, INI loading and its error
 * messages, validation, copy, the renderings, and contrib/drover.ini.
 * contrib/drover.ini must equal conf_example()'s output; to regenerate it run
 *   DROVER_REGEN=1 BUILDDIR/tests/test_conf && mv contrib/drover.ini.new contrib/drover.ini */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "conf/conf.h"

static char tmpdir[] = "/tmp/test_conf.XXXXXX";

/* Path of a file in the temp dir; a few calls may be live at once. */
static const char *tmp_path(const char *name)
{
	static char paths[4][PATH_MAX];
	static int next;
	char *p = paths[next++ % 4];

	snprintf(p, PATH_MAX, "%s/%s", tmpdir, name);
	return p;
}

static const char *write_file(const char *name, const char *text)
{
	const char *path = tmp_path(name);
	FILE *f = fopen(path, "w");

	if (!f)
		return path;
	fputs(text, f);
	fclose(f);
	return path;
}

/* Load text as "x.ini" onto c; err comes back with the temp dir cut off so
 * that tests can compare against "x.ini:LINE: ...". */
static int load_text(struct drover_conf *c, const char *text, char *err)
{
	const char *path = write_file("x.ini", text);
	size_t dl = strlen(tmpdir) + 1;
	int rc;

	err[0] = '\0';
	rc = conf_load_file(c, path, err);
	if (!strncmp(err, path, dl))
		memmove(err, err + dl, strlen(err + dl) + 1);
	return rc;
}

/* Load text onto fresh defaults and give the error ("" if it loaded). */
static const char *load_err(const char *text)
{
	static char err[CONF_ERR_MAX];
	struct drover_conf c;

	conf_defaults(&c);
	if (!load_text(&c, text, err))
		err[0] = '\0';
	conf_free(&c);
	return err;
}

static bool option_equal(const struct conf_option *o, const struct drover_conf *a,
			 const struct drover_conf *b)
{
	const void *pa = (const char *)a + o->offset, *pb = (const char *)b + o->offset;
	const struct conf_list *la = pa, *lb = pb;
	bool same = true;

	switch (o->type) {
	case CONF_STR: same = !strcmp(*(char *const *)pa, *(char *const *)pb); break;
	case CONF_INT: same = *(const long long *)pa == *(const long long *)pb; break;
	case CONF_BOOL: same = *(const bool *)pa == *(const bool *)pb; break;
	case CONF_DUR: same = *(const double *)pa == *(const double *)pb; break;
	case CONF_SIZE: same = *(const unsigned long long *)pa == *(const unsigned long long *)pb; break;
	case CONF_ENUM: same = *(const int *)pa == *(const int *)pb; break;
	case CONF_LIST:
		same = la->n == lb->n;
		for (size_t j = 0; same && j < la->n; j++)
			same = !strcmp(la->items[j], lb->items[j]);
		break;
	}
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
	char *buf;
	long len;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc((size_t)len + 1);
	if (fread(buf, 1, (size_t)len, f) != (size_t)len)
		len = 0;
	buf[len] = '\0';
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
		if (conf_set(&c, o->section, o->key, o->def, true, err))
			printf("#   default of %s: %s\n", o->key, err);
		CHECK(conf_set(&c, o->section, o->key, o->def, true, err) == 0);
		conf_free(&c);
	}
}

static void test_defaults(void)
{
	struct drover_conf c;
	char err[CONF_ERR_MAX];

	conf_defaults(&c);
	CHECK(c.workers == 2);
	CHECK(c.worker_class == WORKER_SYNC);
	CHECK(c.log_level == LOG_INFO_);
	CHECK(c.timeout == 30.0);
	CHECK(c.max_body == 100ULL << 20);
	CHECK(c.max_request_line == 8190);
	CHECK(!c.preload);
	CHECK(c.bind.n == 1);
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
		CHECK(conf_parse_duration(good[i].s, &v) == 0);
		if (v != good[i].v)
			printf("#   '%s' -> %g\n", good[i].s, v);
		CHECK(v == good[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = -1;
		if (conf_parse_duration(bad[i], &v) == 0)
			printf("#   '%s' accepted\n", bad[i]);
		CHECK(v == -1);
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
		CHECK(conf_parse_size(good[i].s, &v) == 0);
		CHECK(v == good[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 1;
		if (conf_parse_size(bad[i], &v) == 0)
			printf("#   '%s' accepted\n", bad[i]);
		CHECK(v == 1);
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

/* ---- conf_set by type ---- */

static void test_set_int(void)
{
	struct drover_conf c;
	char err[CONF_ERR_MAX];

	conf_defaults(&c);
	CHECK(set(&c, "workers", "1", err) == 0 && c.workers == 1);
	CHECK(set(&c, "workers", "512", err) == 0 && c.workers == 512);
	CHECK(set(&c, "workers", " 7 ", err) == 0 && c.workers == 7);
	CHECK(set(&c, "workers", "0", err) == -1);
	CHECK_STR(err, "[server] workers: must be between 1 and 512, got 0");
	CHECK(set(&c, "workers", "513", err) == -1);
	CHECK_STR(err, "[server] workers: must be between 1 and 512, got 513");
	CHECK(set(&c, "workers", "-1", err) == -1);
	CHECK_STR(err, "[server] workers: must be between 1 and 512, got -1");
	CHECK(set(&c, "workers", "abc", err) == -1);
	CHECK_STR(err, "[server] workers: not an integer: 'abc'");
	CHECK(set(&c, "workers", "3.5", err) == -1);
	CHECK(set(&c, "workers", "", err) == -1);
	CHECK(set(&c, "workers", "0x10", err) == -1);
	CHECK(set(&c, "workers", "+3", err) == -1);
	CHECK(set(&c, "workers", "99999999999999999999", err) == -1);
	CHECK_STR(err, "[server] workers: not an integer: '99999999999999999999'");
	CHECK(c.workers == 7); /* failures leave the value alone */
	CHECK(set(&c, "max_requests", "1000000000", err) == 0);
	CHECK(set(&c, "max_requests", "1000000001", err) == -1);
	conf_free(&c);
}

static void test_set_duration_size(void)
{
	struct drover_conf c;
	char err[CONF_ERR_MAX];

	conf_defaults(&c);
	CHECK(set(&c, "timeout", "86400", err) == 0 && c.timeout == 86400);
	CHECK(set(&c, "timeout", "0", err) == 0 && c.timeout == 0);
	CHECK(set(&c, "timeout", "24h", err) == 0 && c.timeout == 86400);
	CHECK(set(&c, "timeout", "86401", err) == -1);
	CHECK_STR(err, "[server] timeout: must be between 0 and 86400 seconds, got 86401");
	CHECK(set(&c, "timeout", "abc", err) == -1);
	CHECK_STR(err, "[server] timeout: not a duration: 'abc'");
	CHECK(set(&c, "timeout", "-5", err) == -1);
	CHECK(c.timeout == 86400);
	CHECK(set(&c, "read_timeout", "1ms", err) == 0 && c.read_timeout == 0.001);
	CHECK(set(&c, "read_timeout", "0.5ms", err) == -1);
	CHECK_STR(err, "[http] read_timeout: must be between 0.001 and 86400 seconds, got 0.0005");
	CHECK(set(&c, "heap_sample_interval", "100ms", err) == 0);
	CHECK(set(&c, "heap_sample_interval", "99ms", err) == -1);

	CHECK(set(&c, "max_request_line", "64", err) == 0 && c.max_request_line == 64);
	CHECK(set(&c, "max_request_line", "1M", err) == 0 && c.max_request_line == 1048576);
	CHECK(set(&c, "max_request_line", "63", err) == -1);
	CHECK_STR(err, "[http] max_request_line: must be between 64 and 1048576 bytes, got 63");
	CHECK(set(&c, "max_request_line", "1048577", err) == -1);
	CHECK(set(&c, "max_request_line", "2M", err) == -1);
	CHECK(set(&c, "max_request_line", "10 MB", err) == -1);
	CHECK_STR(err, "[http] max_request_line: not a size: '10 MB'");
	CHECK(c.max_request_line == 1048576);
	CHECK(set(&c, "max_body", "1T", err) == 0 && c.max_body == 1ULL << 40);
	CHECK(set(&c, "max_body", "1025G", err) == -1);
	CHECK(set(&c, "max_body", "0", err) == 0 && c.max_body == 0);
	conf_free(&c);
}

static void test_set_enum_bool(void)
{
	struct drover_conf c;
	char err[CONF_ERR_MAX];

	conf_defaults(&c);
	CHECK(set(&c, "worker_class", "thread", err) == 0 && c.worker_class == WORKER_THREAD);
	CHECK(set(&c, "worker_class", "EVENT", err) == 0 && c.worker_class == WORKER_EVENT);
	CHECK(set(&c, "worker_class", "gevent", err) == -1);
	CHECK_STR(err, "[server] worker_class: must be one of sync, thread or event, got 'gevent'");
	CHECK(set(&c, "worker_class", "", err) == -1);
	CHECK(set(&c, "worker_class", "sync|thread", err) == -1);
	CHECK(c.worker_class == WORKER_EVENT);
	CHECK(set(&c, "log_level", "critical", err) == 0 && c.log_level == LOG_CRITICAL_);

	CHECK_STR(conf_enum_name("worker_class", 1), "thread");
	CHECK_STR(conf_enum_name("server.worker_class", 2), "event");
	CHECK_STR(conf_enum_name("log_level", 0), "debug");
	CHECK_STR(conf_enum_name("log_level", 4), "critical");
	CHECK(conf_enum_name("log_level", 5) == NULL);
	CHECK(conf_enum_name("worker_class", 3) == NULL);
	CHECK(conf_enum_name("worker_class", -1) == NULL);
	CHECK(conf_enum_name("workers", 0) == NULL);
	CHECK(conf_enum_name("nope", 0) == NULL);

	CHECK(set(&c, "preload", "yes", err) == 0 && c.preload);
	CHECK(set(&c, "preload", "off", err) == 0 && !c.preload);
	CHECK(set(&c, "preload", " on ", err) == 0 && c.preload);
	CHECK(set(&c, "preload", "maybe", err) == -1);
	CHECK_STR(err, "[server] preload: not a boolean (true/false, yes/no, on/off, 1/0): 'maybe'");
	CHECK(c.preload);
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
	CHECK(conf_validate(&c, err) == -1);
	CHECK_STR(err, "[server] bind: no listen address (the list is empty)");
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
		{ "127.0.0.1", "expected HOST:PORT, [IPv6]:PORT or unix:PATH" },
		{ "127.0.0.1:0", "port must be between 1 and 65535, got '0'" },
		{ "127.0.0.1:65536", "port must be between 1 and 65535, got '65536'" },
		{ "127.0.0.1:080x", "port must be between 1 and 65535, got '080x'" },
		{ "h:", "port must be between 1 and 65535, got ''" },
		{ "::1:8000", "IPv6 addresses go in brackets, e.g. [::1]:8000" },
		{ "[::1]", "expected [IPv6]:PORT" },
		{ "[::1]8000", "expected [IPv6]:PORT" },
		{ "[nothing]:80", "not an IPv6 address: 'nothing'" },
		{ "[::1:80", "missing ']' after the IPv6 address" },
		{ "unix:", "empty unix socket path" },
		{ "a*b:80", "bad character '*' in host name" },
	};
	struct drover_conf c;
	char err[CONF_ERR_MAX], want[CONF_ERR_MAX], longpath[200];

	conf_defaults(&c);
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
	snprintf(longpath, sizeof(longpath), "unix:/%0107d", 0);
	CHECK(set(&c, "bind", longpath, err) == -1);
	longpath[strlen(longpath) - 1] = '\0';
	CHECK(set(&c, "bind", longpath, err) == 0);

	CHECK(set(&c, "metrics_bind", "127.0.0.1:9100", err) == 0);
	CHECK(set(&c, "metrics_bind", "", err) == 0);
	CHECK(set(&c, "metrics_bind", "unix:/x", err) == -1);
	CHECK_STR(err, "[metrics] metrics_bind: 'unix:/x': unix sockets are not supported here");
	conf_free(&c);
}

static void test_set_strings(void)
{
	struct drover_conf c;
	char err[CONF_ERR_MAX];

	conf_defaults(&c);
	CHECK(set(&c, "proc_name", " my app ", err) == 0);
	CHECK_STR(c.proc_name, " my app "); /* strings are taken as given */
	CHECK(set(&c, "app", "so:/x.so", err) == 0);
	CHECK(set(&c, "app", "mod.sub:app", err) == 0);
	CHECK(set(&c, "app", "so:", err) == -1);
	CHECK_STR(err, "[server] app: missing path or module name: 'so:'");
	CHECK(set(&c, "app", "python:", err) == -1);
	CHECK(set(&c, "app", ":app", err) == -1);
	CHECK_STR(c.app, "mod.sub:app");
	CHECK(set(&c, "access_log_format", "combined", err) == 0);
	CHECK(set(&c, "access_log_format", "%(h)s %(r)s", err) == 0);
	CHECK(set(&c, "access_log_format", "bogus", err) == -1);
	conf_free(&c);
}

static void test_set_lookup(void)
{
	struct drover_conf c;
	char err[CONF_ERR_MAX];

	conf_defaults(&c);
	CHECK(conf_set(&c, NULL, "server.workers", "3", false, err) == 0 && c.workers == 3);
	CHECK(conf_set(&c, "server", "workers", "4", false, err) == 0 && c.workers == 4);
	CHECK(conf_set(&c, NULL, "worker.workers", "5", false, err) == -1);
	CHECK(conf_set(&c, "server", "wrokers", "5", false, err) == -1);
	CHECK_STR(err, "[server] wrokers: unknown key (did you mean 'workers'?)");
	CHECK(conf_set(&c, "server", "thread", "5", false, err) == -1);
	CHECK_STR(err, "[server] thread: unknown key (did you mean 'threads' in [worker]?)");
	CHECK(conf_set(&c, NULL, "graceful-timeout", "5", false, err) == -1);
	CHECK_STR(err, "graceful-timeout: unknown key (did you mean 'graceful_timeout'?)");
	CHECK(conf_set(&c, NULL, "zzzzzzzz", "5", false, err) == -1);
	CHECK_STR(err, "zzzzzzzz: unknown key");
	CHECK(conf_set(&c, "bogus", "workers", "5", false, err) == -1);
	CHECK_STR(err, "[bogus]: unknown section");
	CHECK(conf_set(&c, "worker", "workers", "5", false, err) == -1);
	CHECK_STR(err, "[worker] workers: not in this section (it belongs in [server])");
	CHECK(conf_set(&c, NULL, "workers", NULL, false, err) == -1);
	CHECK_STR(err, "[server] workers: missing value");
	CHECK(conf_set(&c, NULL, NULL, "1", false, err) == -1);
	CHECK(c.workers == 4);
	CHECK(set(&c, "workers", "6", NULL) == 0 && set(&c, "workers", "0", NULL) == -1);
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

static void test_load_errors(void)
{
	char want[CONF_ERR_MAX + PATH_MAX];
	const char *path;

	CHECK_STR(load_err("# drover\n\n[server]\n; comment\napp = x:y\n\nworkers = 0\n"),
		  "x.ini:7: [server] workers: must be between 1 and 512, got 0");
	CHECK_STR(load_err("[server]\nworkers = 3\nwrokers = 3\n"),
		  "x.ini:3: [server] wrokers: unknown key (did you mean 'workers'?)");
	CHECK_STR(load_err("[bogus]\n"), "x.ini:1: [bogus]: unknown section");
	CHECK_STR(load_err("[server]\nworkers = 3\n[Server]\n"),
		  "x.ini:3: [Server]: unknown section (did you mean [server]?)");
	CHECK_STR(load_err("\n[server]\n\ntimeout = abc\n"),
		  "x.ini:4: [server] timeout: not a duration: 'abc'");
	CHECK_STR(load_err("# top\nworkers = 3\n[server]\n"),
		  "x.ini:2: workers: key outside any section (it belongs in [server])");
	CHECK_STR(load_err("nope = 3\n"), "x.ini:1: nope: key outside any section");
	CHECK_STR(load_err("[server]\nworkers 3\n"),
		  "x.ini:2: syntax error (expected [section], key = value or a comment)");
	CHECK_STR(load_err("[server\nworkers = 3\n"),
		  "x.ini:1: syntax error (expected [section], key = value or a comment)");
	/* the first error wins, whichever kind it is */
	CHECK_STR(load_err("[server]\njunk\nworkers = 0\n"),
		  "x.ini:2: syntax error (expected [section], key = value or a comment)");
	CHECK_STR(load_err("[server]\nworkers = 0\njunk\n"),
		  "x.ini:2: [server] workers: must be between 1 and 512, got 0");
	CHECK_STR(load_err("[server]\nworkers = 3\n\nworkers = 4\n"),
		  "x.ini:4: [server] workers: set twice (first on line 2)");
	CHECK_STR(load_err("[server]\nworkers = 3\n[worker]\n[server]\nworkers = 4\n"),
		  "x.ini:5: [server] workers: set twice (first on line 2)");
	CHECK_STR(load_err("[server]\nworkers = 3\n  timeout = 4\n"),
		  "x.ini:3: [server] workers: indented line read as more of 'workers', which "
		  "takes one value (remove the indentation)");
	CHECK_STR(load_err("[worker]\nworkers = 3\n"),
		  "x.ini:2: [worker] workers: not in this section (it belongs in [server])");
	CHECK_STR(load_err("[server]\nserver.workers = 3\n"),
		  "x.ini:2: [server] server.workers: unknown key");
	CHECK_STR(load_err("[server]\nbind = a:1\nbind = b:2, a:1\n"),
		  "x.ini:3: [server] bind: 'a:1' listed twice");
	CHECK_STR(load_err("[server]\nbind = a:1\n[metrics]\nmetrics_bind = a:1\n"),
		  "x.ini:4: [metrics] metrics_bind: 'a:1' is also an application listener (bind)");
	CHECK_STR(load_err("[server]\nbind =\n"),
		  "x.ini:2: [server] bind: no listen address (the list is empty)");
	CHECK_STR(load_err("[server]\npreload = sure\n"),
		  "x.ini:2: [server] preload: not a boolean (true/false, yes/no, on/off, 1/0): 'sure'");
	{
		static const char nul[] = "[server]\napp = x\0y\n";
		char err[CONF_ERR_MAX];
		struct drover_conf c;
		FILE *f = fopen(tmp_path("x.ini"), "w");
		fwrite(nul, 1, sizeof(nul) - 1, f);
		fclose(f);
		conf_defaults(&c);
		CHECK(conf_load_file(&c, tmp_path("x.ini"), err) == -1);
		CHECK(strstr(err, "/x.ini:2: NUL byte in line") != NULL);
		conf_free(&c);
	}

	path = tmp_path("missing.ini");
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	{
		struct drover_conf c;
		char err[CONF_ERR_MAX];
		conf_defaults(&c);
		CHECK(conf_load_file(&c, path, err) == -1);
		CHECK_STR(err, want);
		snprintf(want, sizeof(want), "%s: Is a directory", tmpdir);
		CHECK(conf_load_file(&c, tmpdir, err) == -1);
		CHECK_STR(err, want);
		conf_free(&c);
	}
}

static void test_load_long_line(void)
{
	char text[512], err[CONF_ERR_MAX];
	struct drover_conf c;
	int n;

	/* 197 characters is the most libinih's 200-byte buffer holds */
	n = snprintf(text, sizeof(text), "[server]\napp = ");
	memset(text + n, 'a', 197 - 6);
	strcpy(text + n + 197 - 6, "\n");
	conf_defaults(&c);
	CHECK(load_text(&c, text, err) == 0);
	CHECK(strlen(c.app) == 191);
	strcpy(text + n + 197 - 6, "b\n");
	CHECK(load_text(&c, text, err) == -1);
	CHECK_STR(err, "x.ini:2: line too long (198 characters, at most 197)");
	conf_free(&c);
}

/* A failed load changes nothing, even options set before the bad line. */
static void test_load_atomic(void)
{
	struct drover_conf c, before;
	char err[CONF_ERR_MAX];

	conf_defaults(&c);
	CHECK(set(&c, "threads", "9", err) == 0);
	conf_copy(&before, &c);
	CHECK(load_text(&c, "[server]\nworkers = 5\nbind = x:1\n[worker]\nthreads = 0\n", err) ==
	      -1);
	CHECK(conf_equal(&c, &before));
	CHECK(load_text(&c, "[server]\nbind = a:1, a:1\n", err) == -1);
	CHECK(conf_equal(&c, &before));
	CHECK(load_text(&c, "[server]\nworkers = 5\n[nope]\n", err) == -1);
	CHECK(conf_equal(&c, &before));
	conf_free(&before);
	conf_free(&c);
}

static void test_load_syntax(void)
{
	struct drover_conf c;
	char err[CONF_ERR_MAX];

	conf_defaults(&c);
	CHECK(load_text(&c, "\xEF\xBB\xBF[server]\r\nworkers: 7 ; inline comment\r\n"
			    "  # indented comment\r\n[worker]\r\n   threads=3\r\n[http]\n", err) == 0);
	CHECK(c.workers == 7 && c.threads == 3);
	CHECK(load_text(&c, "", err) == 0);
	CHECK(load_text(&c, "[log]\n", err) == 0);
	CHECK(load_text(&c, "[python]\npythonpath = /a:/b\n", err) == 0);
	CHECK_STR(c.pythonpath, "/a:/b");
	CHECK(c.workers == 7);
	conf_free(&c);
}

static void test_load_lists(void)
{
	struct drover_conf c;
	char err[CONF_ERR_MAX];

	conf_defaults(&c);
	CHECK(load_text(&c, "[server]\nbind = a:1\nworkers = 3\nbind = b:2, unix:/s\n"
			    "  [::1]:80\n  c:3\n", err) == 0);
	if (*err)
		printf("#   %s\n", err);
	CHECK(c.bind.n == 5);
	CHECK(c.bind.n == 5 && !strcmp(c.bind.items[0], "a:1") &&
	      !strcmp(c.bind.items[3], "[::1]:80") && !strcmp(c.bind.items[4], "c:3"));
	/* a second file replaces the list again on its first line */
	CHECK(load_text(&c, "[server]\nbind = d:4\n", err) == 0);
	CHECK(c.bind.n == 1 && !strcmp(c.bind.items[0], "d:4"));
	/* and leaves it alone if it does not mention it */
	CHECK(load_text(&c, "[server]\nworkers = 4\n", err) == 0);
	CHECK(c.bind.n == 1 && c.workers == 4);
	conf_free(&c);
}

/* default < file < conf_set, and a later file only changes what it names */
static void test_precedence(void)
{
	struct drover_conf c;
	char err[CONF_ERR_MAX];

	conf_defaults(&c);
	CHECK(c.workers == 2 && c.timeout == 30);
	CHECK(load_text(&c, "[server]\nworkers = 5\nbind = f:1\n", err) == 0);
	CHECK(c.workers == 5 && c.timeout == 30);
	CHECK(set(&c, "workers", "7", err) == 0 && c.workers == 7);
	CHECK(conf_set(&c, NULL, "bind", "g:1", true, err) == 0); /* first -b */
	CHECK(conf_set(&c, NULL, "bind", "h:1", false, err) == 0); /* later -b */
	CHECK(c.bind.n == 2 && !strcmp(c.bind.items[0], "g:1"));
	CHECK(load_text(&c, "[server]\ntimeout = 1m\n", err) == 0);
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
	};

	for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
		if (!strcmp(special[i].key, o->key))
			return special[i].v;
	switch (o->type) {
	case CONF_INT: return "3";
	case CONF_DUR: return "45m";
	case CONF_SIZE: return "1023";
	case CONF_BOOL: return "true";
	case CONF_ENUM: return "event";
	default: return "/srv/some path/x=y#z";
	}
}

static void test_roundtrip(void)
{
	struct drover_conf c, back, def;
	char err[CONF_ERR_MAX];
	char *text;

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
		if (load_text(&back, text, err))
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
	const char *line;

	for (size_t i = 0; i < conf_noptions; i++) {
		const struct conf_option *o = &conf_options[i];
		size_t n = (size_t)snprintf(flag, sizeof(flag), "\n  --");
		for (const char *k = o->key; *k; k++)
			flag[n++] = *k == '_' ? '-' : *k;
		flag[n++] = o->type == CONF_BOOL ? ',' : ' ';
		flag[n] = '\0';
		if (!strstr(text, flag) && strncmp(text, flag + 1, n - 1))
			printf("#   no '%s'\n", flag + 1);
		CHECK(strstr(text, flag) || !strncmp(text, flag + 1, n - 1));
	}
	CHECK(strstr(text, "  --preload, --no-preload ") != NULL);
	line = strstr(text, "\n  --graceful-timeout DURATION ");
	CHECK(line && !strncmp(line + strcspn(line + 30, "t") + 30, "time given", 10));
	CHECK(strstr(text, "(default: 30)") != NULL);
	CHECK(strstr(text, "sync, thread or event") != NULL);
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
	CHECK(load_text(&c, text, err) == 0 && conf_equal(&c, &def));
	/* ...and with every ";key = default" line enabled, too */
	uncommented = malloc(strlen(text) + 1);
	for (const char *p = text; *p; p++)
		if (!(*p == ';' && (p == text || p[-1] == '\n')))
			uncommented[n++] = *p;
	uncommented[n] = '\0';
	CHECK(set(&c, "workers", "9", err) == 0);
	if (load_text(&c, uncommented, err))
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
		FILE *f = fopen(SOURCE_ROOT "/contrib/drover.ini.new", "w");
		CHECK(f != NULL);
		if (f) {
			fputs(want, f);
			fclose(f);
			printf("# wrote %s.new\n", path);
		}
	}
	if (!have || strcmp(have, want))
		printf("#   %s differs from conf_example(); regenerate it:\n"
		       "#   DROVER_REGEN=1 BUILDDIR/tests/test_conf && "
		       "mv %s.new %s\n", path, path, path);
	CHECK(have && !strcmp(have, want));
	free(have);
	free(want);
}

static void cleanup(void)
{
	const char *names[] = { "x.ini", "out.txt" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unlink(tmp_path(names[i]));
	rmdir(tmpdir);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_table);
	RUN(test_defaults);
	RUN(test_parse_duration);
	RUN(test_parse_size);
	RUN(test_parse_bool);
	RUN(test_set_int);
	RUN(test_set_duration_size);
	RUN(test_set_enum_bool);
	RUN(test_set_list);
	RUN(test_addresses);
	RUN(test_set_strings);
	RUN(test_set_lookup);
	RUN(test_find);
	RUN(test_load_errors);
	RUN(test_load_long_line);
	RUN(test_load_atomic);
	RUN(test_load_syntax);
	RUN(test_load_lists);
	RUN(test_precedence);
	RUN(test_roundtrip);
	RUN(test_copy);
	RUN(test_validate);
	RUN(test_help);
	RUN(test_example);
	RUN(test_contrib_ini);
	cleanup();
	return check_summary();
}

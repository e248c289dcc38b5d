/* gunicorn's spellings, translated to drover's (issue 14).  The flags come
 * from the GUNICORN rows of options.def; the values from gunicorn's settings
 * documentation: worker_class names, access_log_format atoms, and a bind of
 * HOST alone meaning HOST:8000. */
#include "gunicorn.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const struct conf_gunicorn_flag conf_gunicorn_flags[] = {
#define OPT(sec, k, t, d, mn, mx, ch, h)
#define GUNICORN(fl, sh, k, a, note) { fl, sh, k, a, note },
#include "options.def"
#undef GUNICORN
#undef OPT
};
const size_t conf_gunicorn_nflags = sizeof(conf_gunicorn_flags) / sizeof(conf_gunicorn_flags[0]);

/* ---- worker classes ---- */

/* gunicorn names drover runs, and the ones it refuses.  A greenlet worker
 * monkey-patches the standard library; drover's event model does not, so the
 * honest answer is a refusal that points at both of drover's alternatives. */
static const struct {
	const char *name, *drover;
} worker_names[] = {
	{ "sync", "sync" },
	{ "gunicorn.workers.sync.SyncWorker", "sync" },
	{ "gthread", "thread" },
	{ "gunicorn.workers.gthread.ThreadWorker", "thread" },
	/* ASGI apps (issue 17): uvicorn's gunicorn workers, and gunicorn 24's own */
	{ "uvicorn.workers.UvicornWorker", "asgi" },
	{ "uvicorn.workers.UvicornH11Worker", "asgi" },
	{ "uvicorn_worker.UvicornWorker", "asgi" },
	{ "uvicorn_worker.UvicornH11Worker", "asgi" },
	{ "gunicorn.workers.gasgi.ASGIWorker", "asgi" },
};

static bool refused_worker(const char *v)
{
	static const char *const prefixes[] = { "gevent", "eventlet", "tornado",
						"gunicorn.workers.ggevent", "gunicorn.workers.geventlet",
						"gunicorn.workers.gtornado" };
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncasecmp(v, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

static int worker_class(const char *v, char **out, char *why, size_t n)
{
	for (size_t i = 0; i < sizeof(worker_names) / sizeof(worker_names[0]); i++)
		if (!strcasecmp(v, worker_names[i].name) && strcmp(v, worker_names[i].drover)) {
			*out = strdup(worker_names[i].drover);
			return 0;
		}
	if (!refused_worker(v))
		return 0; /* drover's own names, or a typo set_enum reports */
	snprintf(why, n,
		 "'%s' is not supported: drover has no monkey-patching worker. "
		 "Use -k event (the WSGI app runs on an event loop without monkey-patching, "
		 "so a blocking call stalls the loop, and drover names the stalled call) or "
		 "-k thread for blocking code (gunicorn's gthread)",
		 v);
	return -1;
}

/* ---- access log format ---- */

struct buf {
	char *p;
	size_t len, cap;
};

static int put(struct buf *b, const char *s, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		size_t cap = (b->len + len + 1) * 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, len);
	b->len += len;
	b->p[b->len] = '\0';
	return 0;
}

/* gunicorn's atoms (glogging.py's atoms()) and drover's codes.  drover's %T
 * has a fraction where gunicorn's is whole seconds (README says so). */
static const struct {
	const char *atom, *code;
} atoms[] = {
	{ "h", "%h" }, { "l", "%l" }, { "u", "%u" }, { "t", "%t" }, { "r", "%r" },
	{ "s", "%s" }, { "b", "%b" }, { "B", "%B" }, { "f", "%{Referer}i" },
	{ "a", "%{User-Agent}i" }, { "T", "%T" }, { "D", "%D" }, { "M", "%M" }, { "L", "%L" },
	{ "p", "<%p>" }, { "m", "%m" }, { "U", "%U" }, { "q", "%q" }, { "H", "%H" },
};

static int atom(struct buf *b, const char *a, size_t len, char *why, size_t n)
{
	for (size_t i = 0; i < sizeof(atoms) / sizeof(atoms[0]); i++)
		if (strlen(atoms[i].atom) == len && !strncmp(a, atoms[i].atom, len))
			return put(b, atoms[i].code, strlen(atoms[i].code));
	/* {name}i: a request header; {name}o a response header, {name}e the
	 * environ: drover's access log sees the request only. */
	if (len > 3 && a[0] == '{' && a[len - 2] == '}' && a[len - 1] == 'i')
		return put(b, "%", 1) || put(b, a, len);
	snprintf(why, n, "access log atom %%(%.*s)s is not supported by drover", (int)len, a);
	return -1;
}

int conf_gunicorn_log_format(const char *g, char **out, char *why, size_t n)
{
	struct buf b = { 0 };
	int rc = put(&b, "", 0);

	while (rc == 0 && *g) {
		const char *pct = strchr(g, '%');
		size_t lit = pct ? (size_t)(pct - g) : strlen(g);
		rc = put(&b, g, lit);
		if (!pct || rc)
			break;
		if (pct[1] == '%') {
			rc = put(&b, "%%", 2);
			g = pct + 2;
			continue;
		}
		const char *close = pct[1] == '(' ? strchr(pct, ')') : NULL;
		if (!close || close[1] != 's') {
			snprintf(why, n, "expected %%(atom)s near '%.20s'", pct);
			free(b.p);
			return -1;
		}
		if (atom(&b, pct + 2, (size_t)(close - pct - 2), why, n) < 0) {
			free(b.p);
			return -1;
		}
		g = close + 2;
	}
	if (rc) {
		free(b.p);
		snprintf(why, n, "out of memory");
		return -1;
	}
	*out = b.p;
	return 0;
}

/* ---- bind: gunicorn's HOST alone listens on port 8000 ---- */

static bool needs_port(const char *a, size_t len)
{
	if (len >= 5 && !strncmp(a, "unix:", 5))
		return false;
	if (a[0] == '[')
		return len && a[len - 1] == ']';
	/* A host name or IPv4 address alone; a bare word stays an error. */
	return len && !memchr(a, ':', len) &&
	       (memchr(a, '.', len) || (len == 9 && !strncmp(a, "localhost", 9)));
}

static int bind_default_port(const char *v, char **out)
{
	struct buf b = { 0 };
	bool changed = false;
	int rc = put(&b, "", 0);

	while (rc == 0 && *v) {
		size_t len = strcspn(v, ","), s = 0, e = len;
		while (s < e && (v[s] == ' ' || v[s] == '\t'))
			s++;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		rc = put(&b, v + s, e - s);
		if (rc == 0 && needs_port(v + s, e - s)) {
			rc = put(&b, ":8000", 5);
			changed = true;
		}
		v += len;
		if (*v == ',') {
			rc = rc ? rc : put(&b, ",", 1);
			v++;
		}
	}
	if (rc || !changed) {
		free(b.p);
		return rc ? -1 : 0;
	}
	*out = b.p;
	return 0;
}

int conf_gunicorn_value(const char *key, const char *value, char **out, char *why, size_t n)
{
	*out = NULL;
	if (!strcmp(key, "worker_class"))
		return worker_class(value, out, why, n);
	if (!strcmp(key, "access_log_format") && strstr(value, "%("))
		return conf_gunicorn_log_format(value, out, why, n);
	if (!strcmp(key, "bind") && bind_default_port(value, out) < 0) {
		snprintf(why, n, "out of memory");
		return -1;
	}
	return 0;
}

/* ---- --help ---- */

void conf_gunicorn_aliases(const char *key, char *buf, size_t n)
{
	size_t k = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < conf_gunicorn_nflags && k < n; i++) {
		const struct conf_gunicorn_flag *g = &conf_gunicorn_flags[i];
		if (strcmp(g->key, key))
			continue;
		k += (size_t)snprintf(buf + k, n - k, "%s", k ? ", " : "gunicorn: ");
		if (g->short_ && k < n)
			k += (size_t)snprintf(buf + k, n - k, "-%c, ", g->short_);
		if (k < n)
			k += (size_t)snprintf(buf + k, n - k, "--%s", g->flag);
	}
}

void conf_gunicorn_help(FILE *f)
{
	fprintf(f, "\ngunicorn flags accepted with no effect (said once at start):\n");
	for (size_t i = 0; i < conf_gunicorn_nflags; i++)
		if (!conf_gunicorn_flags[i].key[0])
			fprintf(f, "  --%s\n      %s\n", conf_gunicorn_flags[i].flag,
				conf_gunicorn_flags[i].note);
	fprintf(f, "gunicorn flags refused, and what to do instead:\n");
	for (size_t i = 0; i < conf_gunicorn_nflags; i++)
		if (!strcmp(conf_gunicorn_flags[i].key, "!"))
			fprintf(f, "  --%s\n      %s\n", conf_gunicorn_flags[i].flag,
				conf_gunicorn_flags[i].note);
	fprintf(f, "Worker classes: gthread is thread; uvicorn's workers are asgi; gevent,\n"
		   "eventlet and tornado workers are refused (-k event or -k thread instead).\n");
}

/* ---- gunicorn.conf.py settings ---- */

/* gunicorn's setting names (its config.py) and drover's keys. */
static const struct {
	const char *name, *key;
} py_names[] = {
	{ "bind", "bind" }, { "workers", "workers" }, { "worker_class", "worker_class" },
	{ "threads", "threads" }, { "worker_connections", "worker_connections" },
	{ "timeout", "timeout" }, { "graceful_timeout", "graceful_timeout" },
	{ "keepalive", "keepalive" }, { "max_requests", "max_requests" },
	{ "max_requests_jitter", "max_requests_jitter" }, { "preload_app", "preload" },
	{ "pidfile", "pidfile" }, { "chdir", "chdir" }, { "proc_name", "proc_name" },
	{ "backlog", "backlog" }, { "accesslog", "access_log" }, { "errorlog", "error_log" },
	{ "loglevel", "log_level" }, { "access_log_format", "access_log_format" },
	{ "raw_env", "env" }, { "limit_request_line", "max_request_line" },
	{ "limit_request_fields", "max_header_count" },
	{ "limit_request_field_size", "max_header_size" }, { "pythonpath", "pythonpath" },
	{ "wsgi_app", "app" }, { "forwarded_allow_ips", "forwarded_allow_ips" },
	{ "proxy_protocol", "proxy_protocol" }, { "proxy_allow_ips", "proxy_allow_ips" },
	{ "reload", "reload" }, { "reload_extra_files", "reload_extra_file" },
	{ "user", "user" }, { "group", "group" }, { "umask", "umask" },
};

/* Accepted with no effect, as their flags are. */
static const char *const py_no_effect[] = { "worker_tmp_dir", "sendfile", "capture_output" };

/* The server hooks drover calls (README, "Coming from gunicorn"). */
static const char *const py_hooks[] = { "on_starting", "when_ready", "post_fork",
					"post_worker_init", "worker_exit", "on_exit",
					"pre_request", "post_request" };
/* gunicorn's other hooks: a definition of one is reported, never dropped
 * silently; any other callable is a helper of the file (imports, lambdas). */
static const char *const py_other_hooks[] = { "pre_fork", "pre_exec", "child_exit",
					      "nworkers_changed", "worker_int", "worker_abort",
					      "on_reload", "ssl_context", "post_worker_exit" };

static bool in(const char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}
#define IN(arr, s) in(arr, sizeof(arr) / sizeof(arr[0]), s)

bool conf_gunicorn_is_hook(const char *name)
{
	return IN(py_hooks, name);
}

static void note(char *warn, size_t n, const char *name)
{
	size_t k = strlen(warn);
	if (k < n)
		snprintf(warn + k, n - k, "%s%.64s", k ? ", " : "", name);
}

/* One "name<TAB>value" line onto c.  0 (used or noted), -1 with why. */
static int py_setting(struct drover_conf *c, const char *name, const char *value,
		      char *unsupported, char *why, size_t n)
{
	char err[CONF_ERR_MAX];
	for (size_t i = 0; i < sizeof(py_names) / sizeof(py_names[0]); i++) {
		if (strcmp(py_names[i].name, name))
			continue;
		const struct conf_option *o = conf_find(py_names[i].key);
		if (!o)
			break; /* a gunicorn setting drover has no option for */
		char oct[16];
		if (!strcmp(name, "umask") && value[0] && strspn(value, "0123456789") == strlen(value)) {
			/* an int in the file (umask = 0o27) arrives in decimal ("23") */
			snprintf(oct, sizeof(oct), "0%lo", strtoul(value, NULL, 10));
			value = oct;
		}
		if (conf_set(c, o->section, o->key, value, true, err) < 0) {
			/* "[section] key: why" -> "why": the caller names the file and setting */
			const char *w = err[0] == '[' && strstr(err, ": ") ? strstr(err, ": ") + 2 : err;
			snprintf(why, n, "%s", w);
			return -1;
		}
		return 0;
	}
	/* gunicorn's settings are lower case; an upper-case name is the file's
	 * own constant (LOG_DIR = ...), not a setting drover would be missing */
	bool constant = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == strlen(name);
	if (!IN(py_no_effect, name) && !constant)
		note(unsupported, CONF_ERR_MAX, name);
	return 0;
}

int conf_apply_gunicorn_py(struct drover_conf *c, const char *path, const char *text,
			   char *err, size_t errlen, char *warn, size_t warnlen)
{
	struct drover_conf t;
	char unsupported[CONF_ERR_MAX] = "", why[CONF_ERR_MAX], line[2048];
	conf_copy(&t, c);
	warn[0] = '\0';
	for (const char *p = text; *p;) {
		size_t len = strcspn(p, "\n");
		snprintf(line, sizeof(line), "%.*s", (int)len, p);
		p += len + (p[len] == '\n');
		char *tab = strchr(line, '\t');
		if (!tab)
			continue;
		*tab = '\0';
		const char *name = line, *value = tab + 1;
		if (!strcmp(name, "!hook")) {
			if (IN(py_other_hooks, value))
				note(unsupported, sizeof(unsupported), value);
			continue;
		}
		if (!strcmp(name, "!bad")) {
			char *t2 = strchr(value, '\t');
			if (t2)
				*t2 = '\0';
			snprintf(err, errlen, "%s: %s: a %s has no meaning for drover", path, value,
				 t2 ? t2 + 1 : "value");
			conf_free(&t);
			return -1;
		}
		if (py_setting(&t, name, value, unsupported, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s: %s: %s", path, name, why);
			conf_free(&t);
			return -1;
		}
	}
	if (unsupported[0])
		snprintf(warn, warnlen, "%s: not supported by drover, ignored: %s", path, unsupported);
	conf_free(c);
	*c = t;
	return 0;
}

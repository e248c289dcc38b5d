/* The configuration model: the option table generated from options.def, the
 * value parsers (durations, sizes, booleans, enums, lists), setting one option
 * from text and validation across options.  Reading INI files and rendering
 * the table (effective INI, example INI, --help) are in conf_ini.c. */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "conf_priv.h"
#include "gunicorn.h"

const struct conf_option conf_options[] = {
#define OPT(sec, k, t, d, mn, mx, ch, h)                                                   \
	{ .section = #sec, .key = #k, .def = d, .choices = ch, .help = h, .type = CONF_##t, \
	  .min = mn, .max = mx, .offset = offsetof(struct drover_conf, k) },
#include "options.def"
#undef OPT
};
const size_t conf_noptions = sizeof(conf_options) / sizeof(conf_options[0]);

#define FIELD(c, o, T) ((T *)(void *)((char *)(c) + (o)->offset))
#define CFIELD(c, o, T) ((const T *)(const void *)((const char *)(c) + (o)->offset))

/* The void functions (defaults, copy) cannot report failure, and a
 * configuration that silently lost a string would be worse than stopping. */
static char *xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (!p)
		abort();
	return p;
}

static int __attribute__((format(printf, 3, 4)))
fail(char *err, const struct conf_option *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!err)
		return -1;
	n = snprintf(err, CONF_ERR_MAX, "[%s] %s: ", o->section, o->key);
	if (n < 0 || n >= CONF_ERR_MAX)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err + n, CONF_ERR_MAX - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- value parsers ---- */

/* Decimal digits with an optional fraction; no sign, exponent, hex, inf or
 * nan, all of which strtod would take.  Returns the length, 0 if none. */
static size_t decimal_len(const char *s)
{
	size_t i = 0, digits = 0;

	while (isdigit((unsigned char)s[i]))
		i++, digits++;
	if (s[i] == '.')
		for (i++; isdigit((unsigned char)s[i]); i++)
			digits++;
	return digits ? i : 0;
}

/* A plain decimal such as 0.7 (NUM options: ratios). */
static int parse_number(const char *s, double *out)
{
	size_t len = s ? decimal_len(s) : 0;

	if (!len || s[len])
		return -1;
	*out = strtod(s, NULL);
	return isfinite(*out) ? 0 : -1;
}

int conf_parse_duration(const char *s, double *out)
{
	size_t len = s ? decimal_len(s) : 0;
	const char *unit;
	double v, mult = 1;
	char *num;

	if (!len)
		return -1;
	unit = s + len;
	if (!strcmp(unit, "ms"))
		mult = 0.001;
	else if (!strcmp(unit, "m"))
		mult = 60;
	else if (!strcmp(unit, "h"))
		mult = 3600;
	else if (*unit && strcmp(unit, "s"))
		return -1;
	num = strndup(s, len);
	if (!num)
		return -1;
	v = strtod(num, NULL);
	free(num);
	/* Divide for ms: 1.5/1000 rounds exactly like strtod("0.0015"). */
	v = mult < 1 ? v / 1000 : v * mult;
	if (!isfinite(v))
		return -1;
	*out = v;
	return 0;
}

int conf_parse_size(const char *s, unsigned long long *out)
{
	static const char units[] = "kmgt"; /* 1024^1 .. 1024^4 */
	unsigned long long v, mult = 1;
	const char *u = NULL;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end)
		u = strchr(units, tolower((unsigned char)*end));
	if (errno || (*end && (!u || end[1])))
		return -1;
	if (u)
		mult = 1ULL << (10 * (u - units + 1));
	if (v > ULLONG_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

int conf_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; s && i < 4; i++) {
		if (!strcasecmp(s, yes[i]) || !strcasecmp(s, no[i])) {
			*out = !strcasecmp(s, yes[i]);
			return 0;
		}
	}
	return -1;
}

static int parse_int(const char *s, long long *out)
{
	char *end;

	if (!isdigit((unsigned char)s[s[0] == '-']))
		return -1;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno || *end ? -1 : 0;
}

/* Index of name among the '|'-separated choices, -1 if absent. */
static int enum_index(const char *choices, const char *name)
{
	size_t len = strlen(name);
	int i = 0;

	for (const char *p = choices; *p; i++) {
		size_t n = strcspn(p, "|");
		if (n == len && !strncasecmp(p, name, n))
			return i;
		p += n + (p[n] == '|');
	}
	return -1;
}

/* The choices with '|' turned to NUL, so that conf_enum_name can hand out
 * plain strings; filled once before main, read-only afterwards. */
static char enum_store[0
#define OPT(sec, k, t, d, mn, mx, ch, h) + sizeof(ch)
#include "options.def"
#undef OPT
];

__attribute__((constructor)) static void enum_store_fill(void)
{
	char *p = enum_store;

	for (size_t i = 0; i < conf_noptions; i++) {
		for (const char *s = conf_options[i].choices; *s; s++)
			*p++ = *s == '|' ? '\0' : *s;
		*p++ = '\0';
	}
}

const char *conf_enum_name(const char *key, int value)
{
	const struct conf_option *o = conf_find(key);
	const char *p = enum_store;
	int count = 1;

	if (!o || o->type != CONF_ENUM)
		return NULL;
	for (const char *s = o->choices; *s; s++)
		count += *s == '|';
	if (value < 0 || value >= count)
		return NULL;
	for (const struct conf_option *q = conf_options; q < o; q++)
		p += strlen(q->choices) + 1;
	while (value--)
		p += strlen(p) + 1;
	return p;
}

/* ---- formatting values so that they parse back the same ---- */

void conf_fmt_double(char *buf, size_t n, double v)
{
	for (int prec = 0; prec <= 20; prec++) {
		snprintf(buf, n, "%.*f", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

void conf_fmt_size(char *buf, size_t n, unsigned long long v)
{
	static const char units[] = "TGMK";

	for (int i = 0; i < 4 && v; i++) {
		unsigned long long m = 1ULL << (10 * (4 - i));
		if (v % m == 0) {
			snprintf(buf, n, "%llu%c", v / m, units[i]);
			return;
		}
	}
	snprintf(buf, n, "%llu", v);
}

void conf_choices_text(char *buf, size_t n, const char *choices)
{
	size_t k = 0, count = 1;

	for (const char *p = choices; *p; p++)
		count += *p == '|';
	buf[0] = '\0';
	for (size_t i = 0; *choices && k + 1 < n; i++) {
		size_t w = strcspn(choices, "|");
		const char *sep = i == 0 ? "" : i + 1 == count ? " or " : ", ";
		k += (size_t)snprintf(buf + k, n - k, "%s%.*s", sep, (int)w, choices);
		choices += w + (choices[w] == '|');
	}
}

/* ---- per-key value checks, shared by conf_set and conf_validate ---- */

static int check_port(const char *p, char *why, size_t n)
{
	size_t digits = strspn(p, "0123456789");
	long port = digits && !p[digits] && digits <= 5 ? strtol(p, NULL, 10) : -1;

	if (port < 1 || port > 65535) {
		snprintf(why, n, "port must be between 1 and 65535, got '%s'", p);
		return -1;
	}
	return 0;
}

static int check_v6(const char *a, const char *close, char *why, size_t n)
{
	char host[INET6_ADDRSTRLEN + 64];
	struct in6_addr in6;
	size_t len = (size_t)(close - a - 1);
	char *zone;

	if (len >= sizeof(host))
		len = sizeof(host) - 1;
	memcpy(host, a + 1, len);
	host[len] = '\0';
	zone = strchr(host, '%');
	if (zone && zone[1])
		*zone = '\0';
	if (inet_pton(AF_INET6, host, &in6) != 1) {
		snprintf(why, n, "not an IPv6 address: '%s'", host);
		return -1;
	}
	if (close[1] != ':') {
		snprintf(why, n, "expected [IPv6]:PORT");
		return -1;
	}
	return check_port(close + 2, why, n);
}

/* HOST:PORT, [IPv6]:PORT or (if allowed) unix:PATH. */
static int address_why(const char *a, bool allow_unix, char *why, size_t n)
{
	const char *colon = strrchr(a, ':');

	if (!strncmp(a, "unix:", 5)) {
		if (!allow_unix)
			snprintf(why, n, "unix sockets are not supported here");
		else if (!a[5])
			snprintf(why, n, "empty unix socket path");
		else if (strlen(a + 5) >= 108) /* sizeof(sun_path) */
			snprintf(why, n, "unix socket path longer than 107 bytes");
		else
			return 0;
		return -1;
	}
	if (!strncmp(a, "fd:", 3) && allow_unix) {
		/* a socket passed by systemd (LISTEN_FDNAMES), which separates
		 * names with ':' */
		if (!a[3] || strchr(a + 3, ':') || strlen(a) >= 128) {
			snprintf(why, n, "expected fd:NAME (a socket's FileDescriptorName=)");
			return -1;
		}
		return 0;
	}
	if (a[0] == '[') {
		const char *close = strchr(a, ']');
		if (close)
			return check_v6(a, close, why, n);
		snprintf(why, n, "missing ']' after the IPv6 address");
		return -1;
	}
	if (!colon || colon == a) {
		snprintf(why, n, "expected HOST:PORT, [IPv6]:PORT%s", allow_unix ? " or unix:PATH" : "");
		return -1;
	}
	if (memchr(a, ':', (size_t)(colon - a))) {
		snprintf(why, n, "IPv6 addresses go in brackets, e.g. [::1]:8000");
		return -1;
	}
	for (const char *h = a; h < colon; h++) {
		if (!isalnum((unsigned char)*h) && !strchr(".-_", *h)) {
			snprintf(why, n, "bad character '%c' in host name", *h);
			return -1;
		}
	}
	return check_port(colon + 1, why, n);
}

static int check_address(const char *a, bool allow_unix, char *why, size_t n)
{
	char r[CONF_ERR_MAX / 2];

	if (!address_why(a, allow_unix, r, sizeof(r)))
		return 0;
	snprintf(why, n, "'%s': %s", a, r);
	return -1;
}

static int check_bind(const char *v, char *why, size_t n)
{
	return check_address(v, true, why, n);
}

static int check_metrics_bind(const char *v, char *why, size_t n)
{
	/* A bare PORT (or :PORT) means loopback: metrics are not for the world. */
	const char *p = v[0] == ':' ? v + 1 : v;
	if (*p && strspn(p, "0123456789") == strlen(p)) {
		char r[CONF_ERR_MAX / 2];
		if (!check_port(p, r, sizeof(r)))
			return 0;
		snprintf(why, n, "'%s': %s", v, r);
		return -1;
	}
	return *v ? check_address(v, false, why, n) : 0;
}

static int check_app(const char *v, char *why, size_t n)
{
	if ((!strncmp(v, "so:", 3) && (!v[3] || v[3] == ':')) ||
	    (!strncmp(v, "python:", 7) && (!v[7] || v[7] == ':')) || v[0] == ':') {
		snprintf(why, n, "missing path or module name: '%s'", v);
		return -1;
	}
	return 0;
}

static int check_log_format(const char *v, char *why, size_t n)
{
	if (!strcmp(v, "drover") || !strcmp(v, "common") || !strcmp(v, "combined") ||
	    strchr(v, '%'))
		return 0;
	snprintf(why, n, "neither a preset (drover, common, combined) nor a format with %%-codes: '%s'",
		 v);
	return -1;
}

typedef int (*value_check)(const char *v, char *why, size_t n);

static value_check check_for(const struct conf_option *o)
{
	static const struct {
		const char *key;
		value_check check;
	} checks[] = {
		{ "bind", check_bind },
		{ "metrics_bind", check_metrics_bind },
		{ "app", check_app },
		{ "access_log_format", check_log_format },
		{ "user", conf_check_user },
		{ "group", conf_check_group },
		{ "umask", conf_check_umask },
	};

	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
		if (!strcmp(checks[i].key, o->key))
			return checks[i].check;
	return NULL;
}

static int check_value(const struct conf_option *o, const char *v, char *err)
{
	value_check check = check_for(o);
	char why[CONF_ERR_MAX];

	if (check && check(v, why, sizeof(why)))
		return fail(err, o, "%s", why);
	return 0;
}

/* ---- lists ---- */

static void list_clear(struct conf_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

static int list_push(struct conf_list *l, const char *s, size_t len)
{
	char **items = realloc(l->items, (l->n + 1) * sizeof(*items));

	if (!items)
		return -1;
	l->items = items;
	items[l->n] = strndup(s, len);
	if (!items[l->n])
		return -1;
	l->n++;
	return 0;
}

/* Split on commas, trim, skip empty items; every item is checked before the
 * list is touched, so a bad value leaves it as it was. */
static int set_list(struct conf_list *l, const struct conf_option *o, const char *v,
		    bool replace, char *err)
{
	struct conf_list add = { 0 };

	for (const char *p = v; *p;) {
		size_t n = strcspn(p, ",");
		const char *s = p;
		size_t len = n;
		p += n + (p[n] == ',');
		while (len && isspace((unsigned char)*s))
			s++, len--;
		while (len && isspace((unsigned char)s[len - 1]))
			len--;
		if (!len)
			continue;
		if (list_push(&add, s, len)) {
			list_clear(&add);
			return fail(err, o, "out of memory");
		}
		if (check_value(o, add.items[add.n - 1], err)) {
			list_clear(&add);
			return -1;
		}
	}
	if (replace)
		list_clear(l);
	for (size_t i = 0; i < add.n; i++) {
		if (list_push(l, add.items[i], strlen(add.items[i]))) {
			list_clear(&add);
			return fail(err, o, "out of memory");
		}
	}
	list_clear(&add);
	return 0;
}

/* ---- setting one option ---- */

static int range_fail(char *err, const struct conf_option *o, const char *unit, const char *got)
{
	char lo[64], hi[64];

	conf_fmt_double(lo, sizeof(lo), o->min);
	conf_fmt_double(hi, sizeof(hi), o->max);
	return fail(err, o, "must be between %s and %s%s, got %s", lo, hi, unit, got);
}

static int check_range(const struct conf_option *o, const void *val, char *err)
{
	char got[64];

	switch (o->type) {
	case CONF_INT: {
		long long v = *(const long long *)val;
		if (v < (long long)o->min || v > (long long)o->max) {
			snprintf(got, sizeof(got), "%lld", v);
			return range_fail(err, o, "", got);
		}
		return 0;
	}
	case CONF_DUR:
	case CONF_NUM: {
		double v = *(const double *)val;
		if (!(v >= o->min && v <= o->max)) {
			conf_fmt_double(got, sizeof(got), v);
			return range_fail(err, o, o->type == CONF_DUR ? " seconds" : "", got);
		}
		return 0;
	}
	case CONF_SIZE: {
		unsigned long long v = *(const unsigned long long *)val;
		if (v < (unsigned long long)o->min || v > (unsigned long long)o->max) {
			snprintf(got, sizeof(got), "%llu", v);
			return range_fail(err, o, " bytes", got);
		}
		return 0;
	}
	default:
		return 0;
	}
}

static int set_enum(struct drover_conf *c, const struct conf_option *o, const char *v, char *err)
{
	int idx = enum_index(o->choices, v);
	char list[256];

	if (idx >= 0) {
		*FIELD(c, o, int) = idx;
		return 0;
	}
	conf_choices_text(list, sizeof(list), o->choices);
	return fail(err, o, "must be one of %s, got '%s'", list, v);
}

/* Typed parse of an already trimmed value into the field of o. */
static int set_typed(struct drover_conf *c, const struct conf_option *o, const char *v,
		     bool replace, char *err)
{
	union { long long i; double d; unsigned long long u; bool b; } x;
	char **str;

	switch (o->type) {
	case CONF_INT:
		if (parse_int(v, &x.i))
			return fail(err, o, "not an integer: '%s'", v);
		if (check_range(o, &x.i, err))
			return -1;
		*FIELD(c, o, long long) = x.i;
		return 0;
	case CONF_DUR:
		if (conf_parse_duration(v, &x.d))
			return fail(err, o, "not a duration: '%s'", v);
		if (check_range(o, &x.d, err))
			return -1;
		*FIELD(c, o, double) = x.d;
		return 0;
	case CONF_NUM:
		if (parse_number(v, &x.d))
			return fail(err, o, "not a number: '%s'", v);
		if (check_range(o, &x.d, err))
			return -1;
		*FIELD(c, o, double) = x.d;
		return 0;
	case CONF_SIZE:
		if (conf_parse_size(v, &x.u))
			return fail(err, o, "not a size: '%s'", v);
		if (check_range(o, &x.u, err))
			return -1;
		*FIELD(c, o, unsigned long long) = x.u;
		return 0;
	case CONF_BOOL:
		if (conf_parse_bool(v, &x.b))
			return fail(err, o, "not a boolean (true/false, yes/no, on/off, 1/0): '%s'", v);
		*FIELD(c, o, bool) = x.b;
		return 0;
	case CONF_ENUM:
		return set_enum(c, o, v, err);
	case CONF_LIST:
		return set_list(FIELD(c, o, struct conf_list), o, v, replace, err);
	case CONF_STR:
		if (check_value(o, v, err))
			return -1;
		str = FIELD(c, o, char *);
		free(*str);
		*str = xstrdup(v);
		return 0;
	}
	return -1;
}

/* ---- finding options, with a suggestion for typos ---- */

const struct conf_option *conf_find(const char *key)
{
	const char *dot = key ? strchr(key, '.') : NULL;
	size_t seclen = dot ? (size_t)(dot - key) : 0;
	const char *name = dot ? dot + 1 : key;

	for (size_t i = 0; name && i < conf_noptions; i++) {
		const struct conf_option *o = &conf_options[i];
		if (strcmp(o->key, name))
			continue;
		if (dot && (strlen(o->section) != seclen || strncmp(o->section, key, seclen)))
			return NULL;
		return o;
	}
	return NULL;
}

/* Case-insensitive Levenshtein distance, '-' equal to '_' (flag spelling). */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[64];

	if (la >= 64 || lb >= 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
			size_t up = row[j];
			bool same = ca == cb || ((ca == '-' || ca == '_') && (cb == '-' || cb == '_'));
			size_t best = diag + !same;
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static const struct conf_option *suggest(const char *key)
{
	const struct conf_option *best = NULL;
	size_t best_d = SIZE_MAX, limit = strlen(key) / 3 + 1;

	for (size_t i = 0; i < conf_noptions; i++) {
		size_t d = edit_distance(key, conf_options[i].key);
		if (d < best_d) {
			best_d = d;
			best = &conf_options[i];
		}
	}
	return best_d <= limit ? best : NULL;
}

static bool section_known(const char *section)
{
	for (size_t i = 0; i < conf_noptions; i++)
		if (!strcmp(conf_options[i].section, section))
			return true;
	return false;
}

static const struct conf_option *lookup(const char *section, const char *key, char *err)
{
	const struct conf_option *o = conf_find(key), *s;
	char where[80] = "";

	if (section && *section && !section_known(section)) {
		snprintf(err, CONF_ERR_MAX, "[%s]: unknown section", section);
		return NULL;
	}
	if (section && *section)
		snprintf(where, sizeof(where), "[%s] ", section);
	if (!o) {
		s = suggest(strchr(key, '.') ? strchr(key, '.') + 1 : key);
		if (!s)
			snprintf(err, CONF_ERR_MAX, "%s%s: unknown key", where, key);
		else if (section && *section && strcmp(s->section, section))
			snprintf(err, CONF_ERR_MAX, "%s%s: unknown key (did you mean '%s' in [%s]?)",
				 where, key, s->key, s->section);
		else
			snprintf(err, CONF_ERR_MAX, "%s%s: unknown key (did you mean '%s'?)", where,
				 key, s->key);
		return NULL;
	}
	if (section && *section && strcmp(section, o->section)) {
		snprintf(err, CONF_ERR_MAX, "%s%s: not in this section (it belongs in [%s])", where,
			 key, o->section);
		return NULL;
	}
	return o;
}

static int set_translated(struct drover_conf *c, const struct conf_option *o, const char *value,
			  bool replace, char *err);
static int set_trimmed(struct drover_conf *c, const struct conf_option *o, const char *value,
		       bool replace, char *err);

int conf_set(struct drover_conf *c, const char *section, const char *key, const char *value,
	     bool replace, char *err)
{
	char scratch[CONF_ERR_MAX];
	const struct conf_option *o;

	if (!err)
		err = scratch;
	if (!key) {
		snprintf(err, CONF_ERR_MAX, "missing key");
		return -1;
	}
	o = lookup(section, key, err);
	if (!o)
		return -1;
	if (!value)
		return fail(err, o, "missing value");
	return set_translated(c, o, value, replace, err);
}

/* gunicorn's spelling of a value (worker class, access-log atoms, HOST
 * without a port) is turned into drover's before the usual parsing, so the
 * file, the flags and gunicorn.conf.py all take it. */
static int set_translated(struct drover_conf *c, const struct conf_option *o, const char *value,
			  bool replace, char *err)
{
	char why[CONF_ERR_MAX], *tr = NULL;
	int rc;

	if (conf_gunicorn_value(o->key, value, &tr, why, sizeof(why)) < 0)
		return fail(err, o, "%s", why);
	rc = set_trimmed(c, o, tr ? tr : value, replace, err);
	free(tr);
	return rc;
}

static int set_trimmed(struct drover_conf *c, const struct conf_option *o, const char *value,
		       bool replace, char *err)
{
	const char *v = value;
	size_t len;
	char *trimmed;
	int rc;

	if (o->type == CONF_STR)
		return set_typed(c, o, value, replace, err);
	while (isspace((unsigned char)*v))
		v++;
	len = strlen(v);
	while (len && isspace((unsigned char)v[len - 1]))
		len--;
	trimmed = strndup(v, len);
	if (!trimmed)
		return fail(err, o, "out of memory");
	rc = set_typed(c, o, trimmed, replace, err);
	free(trimmed);
	return rc;
}

/* ---- whole configurations ---- */

void conf_defaults(struct drover_conf *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < conf_noptions; i++) {
		const struct conf_option *o = &conf_options[i];
		int rc = conf_set(c, o->section, o->key, o->def, true, NULL);
		assert(rc == 0); /* options.def is wrong; test_conf says which entry */
		(void)rc;
		if (o->type == CONF_STR && !*FIELD(c, o, char *))
			*FIELD(c, o, char *) = xstrdup("");
	}
}

void conf_free(struct drover_conf *c)
{
	for (size_t i = 0; i < conf_noptions; i++) {
		const struct conf_option *o = &conf_options[i];
		if (o->type == CONF_STR)
			free(*FIELD(c, o, char *));
		else if (o->type == CONF_LIST)
			list_clear(FIELD(c, o, struct conf_list));
	}
	memset(c, 0, sizeof(*c));
}

void conf_copy(struct drover_conf *dst, const struct drover_conf *src)
{
	memcpy(dst, src, sizeof(*dst));
	for (size_t i = 0; i < conf_noptions; i++) {
		const struct conf_option *o = &conf_options[i];
		if (o->type == CONF_STR) {
			const char *s = *CFIELD(src, o, char *);
			*FIELD(dst, o, char *) = s ? xstrdup(s) : NULL;
		} else if (o->type == CONF_LIST) {
			const struct conf_list *sl = CFIELD(src, o, struct conf_list);
			struct conf_list *dl = FIELD(dst, o, struct conf_list);
			dl->items = NULL;
			dl->n = 0;
			for (size_t j = 0; j < sl->n; j++)
				if (list_push(dl, sl->items[j], strlen(sl->items[j])))
					abort();
		}
	}
}

/* Checks of one option's value, for structs not built through conf_set. */
static int validate_one(const struct drover_conf *c, const struct conf_option *o, char *err)
{
	const struct conf_list *l;

	switch (o->type) {
	case CONF_INT:
	case CONF_DUR:
	case CONF_NUM:
	case CONF_SIZE:
		return check_range(o, (const char *)c + o->offset, err);
	case CONF_ENUM:
		if (!conf_enum_name(o->key, *CFIELD(c, o, int)))
			return fail(err, o, "no choice number %d", *CFIELD(c, o, int));
		return 0;
	case CONF_STR:
		return check_value(o, *CFIELD(c, o, char *) ? *CFIELD(c, o, char *) : "", err);
	case CONF_LIST:
		l = CFIELD(c, o, struct conf_list);
		for (size_t i = 0; i < l->n; i++)
			if (check_value(o, l->items[i], err))
				return -1;
		return 0;
	default:
		return 0;
	}
}

/* min_workers <= workers <= max_workers: the starting size lies within
 * the autoscaler's bounds (max_workers 0 stands for 4 x workers). */
static int check_autoscale(const struct drover_conf *c, char *err)
{
	if (c->min_workers > c->workers)
		return fail(err, conf_find("min_workers"), "%lld is more than workers (%lld)",
			    c->min_workers, c->workers);
	if (c->max_workers && c->max_workers < c->workers)
		return fail(err, conf_find("max_workers"), "%lld is less than workers (%lld)",
			    c->max_workers, c->workers);
	return 0;
}

int conf_validate(const struct drover_conf *c, char *err)
{
	const struct conf_option *bind = conf_find("bind"), *mb = conf_find("metrics_bind");
	char scratch[CONF_ERR_MAX];

	if (!err)
		err = scratch;
	for (size_t i = 0; i < conf_noptions; i++)
		if (validate_one(c, &conf_options[i], err))
			return -1;
	if (check_autoscale(c, err))
		return -1;
	if (c->bind.n == 0)
		return fail(err, bind, "no listen address (the list is empty)");
	for (size_t i = 0; i < c->bind.n; i++) {
		for (size_t j = 0; j < i; j++)
			if (!strcmp(c->bind.items[i], c->bind.items[j]))
				return fail(err, bind, "'%s' listed twice", c->bind.items[i]);
		if (c->metrics_bind && !strcmp(c->metrics_bind, c->bind.items[i]))
			return fail(err, mb, "'%s' is also an application listener (bind)",
				    c->metrics_bind);
	}
	return 0;
}


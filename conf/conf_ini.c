/* INI files in and out.  conf_load_file reads one with inih onto a copy of the
 * configuration (all or nothing; errors read "FILE:LINE: [section] key: why");
 * conf_print, conf_example and conf_help render the option table, in the same
 * value syntax the loader reads back. */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "conf_priv.h"
#include "gunicorn.h"

#define CFIELD(c, o, T) ((const T *)(const void *)((const char *)(c) + (o)->offset))

/* What inih will make of the line the reader just handed it. */
enum line_kind { LINE_OTHER, LINE_KEY, LINE_CONT };

struct ini_load {
	const char *path;
	FILE *f;
	char *buf; /* getline's; inih gets a copy that fits its fixed buffer */
	size_t cap;
	int lineno;
	enum line_kind kind;
	bool have_prev; /* mirrors inih's prev_name: an indented line continues it */
	bool failed;
	int err_line; /* line of our own first error, 0 if it has none */
	int *set_line; /* per option: last line that set it, 0 if none */
	struct drover_conf work;
	char *err;
};

/* Record the first error as "path:line: why" ("path: why" for line 0).
 * Returns 0, inih's "handler failed". */
static int __attribute__((format(printf, 3, 4)))
load_fail(struct ini_load *st, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (st->failed)
		return 0;
	st->failed = true;
	st->err_line = line;
	n = line ? snprintf(st->err, CONF_ERR_MAX, "%s:%d: ", st->path, line)
		 : snprintf(st->err, CONF_ERR_MAX, "%s: ", st->path);
	if (n < 0 || n >= CONF_ERR_MAX)
		return 0;
	va_start(ap, fmt);
	vsnprintf(st->err + n, CONF_ERR_MAX - (size_t)n, fmt, ap);
	va_end(ap);
	return 0;
}

/* Only case and stray blanks are guessed at: six short names leave little
 * room for typos that a person would not spot at once. */
static const char *section_like(const char *name)
{
	size_t len;

	while (isspace((unsigned char)*name))
		name++;
	len = strlen(name);
	while (len && isspace((unsigned char)name[len - 1]))
		len--;
	for (size_t i = 0; i < conf_noptions; i++) {
		const char *s = conf_options[i].section;
		if (strlen(s) == len && !strncasecmp(s, name, len))
			return s;
	}
	return NULL;
}

/* A "[section]" line.  inih ends the name at ']' or at an inline comment
 * (" ;"); without ']' it reports a syntax error itself. */
static void check_section(struct ini_load *st, const char *p)
{
	const char *end = p + 1, *like;
	char name[64];
	size_t len;

	while (*end && *end != ']' && !(*end == ';' && isspace((unsigned char)end[-1])))
		end++;
	if (*end != ']')
		return;
	st->have_prev = false;
	len = (size_t)(end - p - 1);
	snprintf(name, sizeof(name), "%.*s", (int)len, p + 1);
	for (size_t i = 0; i < conf_noptions; i++)
		if (strlen(conf_options[i].section) == len &&
		    !strncmp(conf_options[i].section, p + 1, len))
			return;
	like = section_like(name);
	if (like)
		load_fail(st, st->lineno, "[%s]: unknown section (did you mean [%s]?)", name, like);
	else
		load_fail(st, st->lineno, "[%s]: unknown section", name);
}

/* Follows inih's own reading of a line (BOM, comments, continuation). */
static void classify(struct ini_load *st, const char *p)
{
	bool indented;

	if (st->lineno == 1 && !strncmp(p, "\xEF\xBB\xBF", 3))
		p += 3;
	indented = isspace((unsigned char)*p);
	while (isspace((unsigned char)*p))
		p++;
	st->kind = LINE_OTHER;
	if (!*p || *p == ';' || *p == '#')
		return;
	if (indented && st->have_prev)
		st->kind = LINE_CONT;
	else if (*p == '[')
		check_section(st, p);
	else
		st->kind = LINE_KEY;
}

/* inih's fgets-style reader.  Counting lines here is what gives the handler
 * its line number (this libinih is built without INI_HANDLER_LINENO), and
 * reading whole lines lets a line too long for inih's buffer be an error
 * instead of being split in two. */
static char *load_read_line(char *str, int num, void *stream)
{
	struct ini_load *st = stream;
	ssize_t n;
	size_t len;

	if (st->failed)
		return NULL;
	errno = 0;
	n = getline(&st->buf, &st->cap, st->f);
	if (n < 0) {
		if (ferror(st->f))
			load_fail(st, 0, "%s", strerror(errno ? errno : EIO));
		return NULL;
	}
	st->lineno++;
	len = (size_t)n;
	while (len && (st->buf[len - 1] == '\n' || st->buf[len - 1] == '\r'))
		len--;
	if (strlen(st->buf) != (size_t)n)
		load_fail(st, st->lineno, "NUL byte in line");
	else if (num < 4 || len > (size_t)num - 3)
		load_fail(st, st->lineno, "line too long (%zu characters, at most %d)", len, num - 3);
	if (st->failed)
		return NULL;
	memcpy(str, st->buf, (size_t)n + 1);
	classify(st, st->buf);
	return st->failed ? NULL : str;
}

static int load_key(void *user, const char *section, const char *name, const char *value)
{
	struct ini_load *st = user;
	const struct conf_option *o = strchr(name, '.') ? NULL : conf_find(name);
	char e[CONF_ERR_MAX];
	size_t i;

	if (st->failed)
		return 1;
	st->have_prev = true;
	if (!*section && o)
		return load_fail(st, st->lineno, "%s: key outside any section (it belongs in [%s])",
				 name, o->section);
	if (!*section)
		return load_fail(st, st->lineno, "%s: key outside any section", name);
	if (!o && strchr(name, '.')) /* conf_set would take "section.key" */
		return load_fail(st, st->lineno, "[%s] %s: unknown key", section, name);
	if (!o || strcmp(o->section, section)) {
		conf_set(&st->work, section, name, value, false, e); /* fails: says why */
		return load_fail(st, st->lineno, "%s", e);
	}
	i = (size_t)(o - conf_options);
	if (st->kind == LINE_CONT && o->type != CONF_LIST)
		return load_fail(st, st->lineno,
				 "[%s] %s: indented line read as more of '%s', which takes one "
				 "value (remove the indentation)", section, name, name);
	if (st->kind != LINE_CONT && st->set_line[i] && o->type != CONF_LIST)
		return load_fail(st, st->lineno, "[%s] %s: set twice (first on line %d)", section,
				 name, st->set_line[i]);
	/* A list's first line in the file replaces what was there (defaults). */
	if (conf_set(&st->work, section, name, value, o->type == CONF_LIST && !st->set_line[i], e))
		return load_fail(st, st->lineno, "%s", e);
	st->set_line[i] = st->lineno;
	return 1;
}

/* conf_validate knows no lines; point at the line that set the option. */
static void validate_loaded(struct ini_load *st)
{
	const struct conf_option *o;
	char e[CONF_ERR_MAX], key[64];

	if (!conf_validate(&st->work, e))
		return;
	if (sscanf(e, "[%*[^]]] %63[^:]:", key) == 1 && (o = conf_find(key)))
		load_fail(st, st->set_line[o - conf_options], "%s", e);
	else
		load_fail(st, 0, "%s", e);
}

int conf_load_file(struct drover_conf *c, const char *path, char *err)
{
	char scratch[CONF_ERR_MAX];
	struct ini_load st = { .path = path, .err = err ? err : scratch };
	int rc;

	st.f = fopen(path, "re");
	if (!st.f) {
		snprintf(st.err, CONF_ERR_MAX, "%s: %s", path, strerror(errno));
		return -1;
	}
	st.set_line = calloc(conf_noptions, sizeof(*st.set_line));
	if (!st.set_line) {
		fclose(st.f);
		snprintf(st.err, CONF_ERR_MAX, "%s: %s", path, strerror(ENOMEM));
		return -1;
	}
	conf_copy(&st.work, c);
	rc = ini_parse_stream(load_read_line, &st, load_key, &st);
	/* inih gives the first bad line; if ours is not it, inih saw a line that
	 * is neither a section, a key nor a comment (the handler never ran). */
	if (rc > 0 && (!st.failed || rc < st.err_line)) {
		st.failed = false;
		load_fail(&st, rc, "syntax error (expected [section], key = value or a comment)");
	} else if (rc < 0) {
		load_fail(&st, 0, "%s", strerror(ENOMEM));
	}
	if (!st.failed)
		validate_loaded(&st);
	fclose(st.f);
	free(st.buf);
	free(st.set_line);
	if (st.failed) {
		conf_free(&st.work);
		return -1;
	}
	conf_free(c);
	*c = st.work;
	return 0;
}

/* ---- renderings of the table ---- */

static void fmt_value(const struct drover_conf *c, const struct conf_option *o, char *buf,
		      size_t n)
{
	const char *s;

	switch (o->type) {
	case CONF_INT: snprintf(buf, n, "%lld", *CFIELD(c, o, long long)); break;
	case CONF_DUR:
	case CONF_NUM: conf_fmt_double(buf, n, *CFIELD(c, o, double)); break;
	case CONF_SIZE: conf_fmt_size(buf, n, *CFIELD(c, o, unsigned long long)); break;
	case CONF_BOOL: snprintf(buf, n, "%s", *CFIELD(c, o, bool) ? "true" : "false"); break;
	case CONF_ENUM:
		s = conf_enum_name(o->key, *CFIELD(c, o, int));
		snprintf(buf, n, "%s", s ? s : "?");
		break;
	default: buf[0] = '\0'; break;
	}
}

/* inih strips the ends of a value and cuts it at " ;"; say so rather than
 * print something that would read back differently. */
static void print_str(FILE *f, const char *key, const char *s)
{
	size_t len = strlen(s);

	/* 197: inih's default line buffer (200) less "\r\n\0" */
	if (len && (isspace((unsigned char)s[0]) || isspace((unsigned char)s[len - 1]) ||
		    strpbrk(s, "\n\r") || strstr(s, " ;") || strstr(s, "\t;") || s[0] == ';' ||
		    strlen(key) + 3 + len > 197))
		fprintf(f, "# warning: the next value cannot be read back exactly from INI\n");
	fprintf(f, "%s =%s%s\n", key, len ? " " : "", s);
}

void conf_print(const struct drover_conf *c, FILE *f)
{
	const char *section = NULL;
	char buf[128];

	fprintf(f, "# drover: effective configuration\n");
	for (size_t i = 0; i < conf_noptions; i++) {
		const struct conf_option *o = &conf_options[i];
		if (!section || strcmp(section, o->section))
			fprintf(f, "\n[%s]\n", o->section);
		section = o->section;
		if (o->type == CONF_STR) {
			print_str(f, o->key, *CFIELD(c, o, char *) ? *CFIELD(c, o, char *) : "");
		} else if (o->type == CONF_LIST) {
			const struct conf_list *l = CFIELD(c, o, struct conf_list);
			if (!l->n)
				fprintf(f, "%s =\n", o->key);
			for (size_t j = 0; j < l->n; j++)
				print_str(f, o->key, l->items[j]);
		} else {
			fmt_value(c, o, buf, sizeof(buf));
			fprintf(f, "%s = %s\n", o->key, buf);
		}
	}
}

/* Word-wrap text to width columns: the first line starts after 'used'
 * columns already written, later lines with prefix. */
static void put_wrapped(FILE *f, const char *text, size_t used, const char *prefix, size_t width)
{
	size_t col = used, plen = strlen(prefix);
	bool first = true;

	while (*text) {
		size_t w = strcspn(text, " ");
		if (!first && col + 1 + w > width) {
			fprintf(f, "\n%s", prefix);
			col = plen;
		} else if (!first) {
			fputc(' ', f);
			col++;
		}
		fwrite(text, 1, w, f);
		col += w;
		first = false;
		text += w;
		while (*text == ' ')
			text++;
	}
	fputc('\n', f);
}

static const char *metavar(const struct conf_option *o)
{
	static const char *const names[] = {
		[CONF_STR] = "TEXT", [CONF_INT] = "INT", [CONF_BOOL] = "", [CONF_DUR] = "DURATION",
		[CONF_SIZE] = "SIZE", [CONF_ENUM] = "CHOICE", [CONF_LIST] = "VALUE", [CONF_NUM] = "NUMBER",
	};
	return names[o->type];
}

static void flag_name(char *buf, size_t n, const char *prefix, const char *key)
{
	size_t i = (size_t)snprintf(buf, n, "%s", prefix);

	for (; *key && i + 1 < n; key++)
		buf[i++] = *key == '_' ? '-' : *key;
	buf[i] = '\0';
}

#define HELP_COL 36

void conf_help(FILE *f)
{
	char left[140], dashed[64], neg[64], text[640], ch[128], alias[120], indent[HELP_COL + 1];

	memset(indent, ' ', HELP_COL);
	indent[HELP_COL] = '\0';

	for (size_t i = 0; i < conf_noptions; i++) {
		const struct conf_option *o = &conf_options[i];
		flag_name(dashed, sizeof(dashed), "--", o->key);
		flag_name(neg, sizeof(neg), "--no-", o->key);
		if (o->type == CONF_BOOL)
			snprintf(left, sizeof(left), "  %s, %s", dashed, neg);
		else
			snprintf(left, sizeof(left), "  %s %s", dashed, metavar(o));
		conf_gunicorn_aliases(o->key, alias, sizeof(alias));
		if (o->type == CONF_ENUM) {
			conf_choices_text(ch, sizeof(ch), o->choices);
			snprintf(text, sizeof(text), "%s: %s (default: %s)", o->help, ch, o->def);
		} else if (*o->def) {
			snprintf(text, sizeof(text), "%s (default: %s)", o->help, o->def);
		} else {
			snprintf(text, sizeof(text), "%s", o->help);
		}
		if (alias[0])
			snprintf(text + strlen(text), sizeof(text) - strlen(text), " [%s]", alias);
		if (strlen(left) + 2 > HELP_COL)
			fprintf(f, "%s\n%*s", left, HELP_COL, "");
		else
			fprintf(f, "%-*s", HELP_COL, left);
		put_wrapped(f, text, HELP_COL, indent, 79);
	}
	fprintf(f, "  Boolean options: --key sets true, --no-key false.  DURATION: seconds or\n"
		   "  500ms, 2s, 1m, 1h.  SIZE: bytes or 64k, 10M, 1G (1024-based).  VALUE\n"
		   "  options repeat or take comma-separated values.\n");
	conf_gunicorn_help(f);
}

static void example_type(FILE *f, const struct conf_option *o)
{
	char lo[64], hi[64], ch[128];

	if (o->type == CONF_SIZE) {
		conf_fmt_size(lo, sizeof(lo), (unsigned long long)o->min);
		conf_fmt_size(hi, sizeof(hi), (unsigned long long)o->max);
	} else {
		conf_fmt_double(lo, sizeof(lo), o->min);
		conf_fmt_double(hi, sizeof(hi), o->max);
	}
	switch (o->type) {
	case CONF_STR: fprintf(f, "# type: text\n"); break;
	case CONF_INT: fprintf(f, "# type: integer, %s to %s\n", lo, hi); break;
	case CONF_BOOL: fprintf(f, "# type: boolean (true/false, yes/no, on/off, 1/0)\n"); break;
	case CONF_DUR: fprintf(f, "# type: duration, %s to %s seconds\n", lo, hi); break;
	case CONF_NUM: fprintf(f, "# type: number, %s to %s\n", lo, hi); break;
	case CONF_SIZE: fprintf(f, "# type: size, %s to %s\n", lo, hi); break;
	case CONF_ENUM:
		conf_choices_text(ch, sizeof(ch), o->choices);
		fprintf(f, "# type: one of %s\n", ch);
		break;
	case CONF_LIST:
		fprintf(f, "# type: list (repeat the key, or separate values with commas)\n");
		break;
	}
}

void conf_example(FILE *f)
{
	const char *section = NULL;

	fprintf(f, "# drover example configuration: every option, commented out, with its\n"
		   "# default.  Generated from conf/options.def by conf_example(); do not edit.\n"
		   "# Regenerate: DROVER_REGEN=1 BUILDDIR/tests/test_conf, then\n"
		   "#   mv contrib/drover.ini.new contrib/drover.ini\n"
		   "#\n"
		   "# Durations are seconds, or a number with ms, s, m or h (500ms, 1.5m).\n"
		   "# Sizes are bytes, or a number with k, M or G (64k, 10M; 1024-based).\n"
		   "# Every key is also a command-line flag: --key-name (see drover --help).\n");
	for (size_t i = 0; i < conf_noptions; i++) {
		const struct conf_option *o = &conf_options[i];
		if (!section || strcmp(section, o->section))
			fprintf(f, "\n[%s]\n", o->section);
		section = o->section;
		fprintf(f, "\n# ");
		put_wrapped(f, o->help, 2, "# ", 78);
		example_type(f, o);
		fprintf(f, ";%s =%s%s\n", o->key, *o->def ? " " : "", o->def);
	}
}

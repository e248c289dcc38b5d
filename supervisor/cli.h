/* The command line: gunicorn-shaped flags, every option of the table as
 * --key-name, and the APP argument.  Flags are kept as overrides so that a
 * reload (HUP) can re-apply them on top of the re-read file. */
#ifndef DROVER_CLI_H
#define DROVER_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "conf/gunicorn.h"

struct cli_override {
	const char *key; /* option key */
	char *value;
	bool replace; /* first -b replaces the file's list; later ones append */
};

struct cli {
	const char *config_path; /* -c, or NULL */
	bool check_config, print_ini, help, version;
	struct cli_override *ov;
	size_t nov;
	size_t phase; /* first override of the argv being parsed (env args, then argv) */
	/* gunicorn flags accepted without effect, to be said once at start */
	const struct conf_gunicorn_flag *ignored[8];
	size_t nignored;
	char **words[2]; /* the variables' words: -c FILE may point into them */
	int nwords[2];
};

/* Parse GUNICORN_CMD_ARGS, then DROVER_CMD_ARGS, then argv (gunicorn's
 * order: the command line wins over the variables).  0, or -1 with a message
 * in err (exit status 2). */
int cli_parse(int argc, char **argv, struct cli *cli, char *err, size_t errlen);
void cli_free(struct cli *cli);
void cli_usage(FILE *f, const char *prog);

/* Build the effective configuration: defaults < file < flags, validated.
 * 0, or -1 with err ("FILE:LINE: [section] key: why", or "--flag: why"). */
int cli_build_conf(const struct cli *cli, struct drover_conf *out, char *err, size_t errlen);
#endif

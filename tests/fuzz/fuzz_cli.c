/* Fuzz target: the command line.  The input is cut at NUL bytes into argv
 * words (the first byte's low bit: the first word goes to GUNICORN_CMD_ARGS
 * instead, split as a shell would); then cli_parse and cli_build_conf (flags,
 * --set SECTION.KEY=VALUE, gunicorn's flags and value spellings, validation).
 * -c is dropped before the build: a fuzzed path must not be opened.  The last
 * word also goes through the value parsers, the gunicorn log-format
 * translation and a gunicorn.conf.py settings text. */
#include "conf/conf.h"
#include "conf/gunicorn.h"
#include "fuzz.h"
#include "supervisor/cli.h"

#define MAXW 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct fuzz_in in = {data, size, 1};
	size_t len;
	char *buf = fuzz_rest(&in, &len);
	char *argv[MAXW + 2] = {"drover"};
	int argc = 1;
	for (char *p = buf; p < buf + len + 1 && argc < MAXW; p += strlen(p) + 1)
		argv[argc++] = p;
	argv[argc] = NULL;
	const char *last = argv[argc - 1];
	int first = 1;
	if (data[0] & 1 && argc > 1) {
		setenv("GUNICORN_CMD_ARGS", argv[1], 1);
		first = 2;
	} else {
		unsetenv("GUNICORN_CMD_ARGS");
	}
	unsetenv("DROVER_CMD_ARGS");
	argv[first - 1] = "drover";

	struct cli cli;
	char err[1024];
	if (cli_parse(argc - first + 1, argv + first - 1, &cli, err, sizeof(err)) == 0) {
		struct drover_conf c = {0};
		cli.config_path = NULL;
		if (cli_build_conf(&cli, &c, err, sizeof(err)) == 0)
			conf_free(&c);
	}
	cli_free(&cli);

	double d;
	unsigned long long sz;
	bool b;
	char *out = NULL, why[256], warn[256];
	conf_parse_duration(last, &d);
	conf_parse_size(last, &sz);
	conf_parse_bool(last, &b);
	if (conf_gunicorn_log_format(last, &out, why, sizeof(why)) == 0)
		free(out);
	struct drover_conf c = {0};
	conf_defaults(&c);
	conf_apply_gunicorn_py(&c, "fuzz.conf.py", last, err, sizeof(err), warn, sizeof(warn));
	conf_free(&c);
	free(buf);
	return 0;
}

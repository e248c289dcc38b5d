/* Fuzz target: the control socket's protocol, as a peer's byte stream: the
 * line framing (4 KiB input buffer, CRLF or LF, a last line at EOF) and the
 * command parser of each line.  Checks: a parsed command is one of the
 * table's and takes the argument it got; a refusal says why. */
#include "fuzz.h"
#include "supervisor/control.h"

#define CAP 4096 /* CTL_IN_CAP */

static void check_line(char *line)
{
	char err[600];
	const char *arg;
	const struct control_cmd *k = control_parse(line, &arg, err, sizeof(err));
	if (k) {
		FUZZ_ASSERT(k >= control_cmds && k < control_cmds + control_ncmds);
		FUZZ_ASSERT(!arg || k->args); /* no argument to a command taking none */
		FUZZ_ASSERT(!arg || (!strchr(arg, ' ') && !strchr(arg, '\t')));
	}
	FUZZ_ASSERT(memchr(err, '\0', sizeof(err)) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the server's buffer: bytes arrive, whole lines are consumed */
	static char in[CAP], line[CAP + 1];
	size_t inlen = 0, off = 0;
	for (;;) {
		size_t k = size - off < CAP - inlen ? size - off : CAP - inlen;
		memcpy(in + inlen, data + off, k);
		inlen += k;
		off += k;
		bool eof = off == size;
		size_t used = 0;
		int rc = control_take_line(in, inlen, CAP, eof, line, &used);
		if (rc <= 0) {
			FUZZ_ASSERT(rc < 0 ? inlen == CAP : (!eof || inlen == 0));
			break; /* an error closes the connection; or all consumed */
		}
		FUZZ_ASSERT(used > 0 && used <= inlen && strlen(line) < used + 1);
		check_line(line);
		memmove(in, in + used, inlen - used);
		inlen -= used;
	}
	return 0;
}

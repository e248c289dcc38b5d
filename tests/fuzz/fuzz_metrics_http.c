/* Fuzz target: the metrics listener's request handling -- a client's bytes
 * as they arrive in the 4 KiB buffer, parsed at every arrival as the listener
 * does.  Checks: once the head is complete the answer is fixed and sane
 * (a known status with its text, or a route); nothing past the buffer. */
#include "fuzz.h"
#include "supervisor/metrics_http.h"

#define CAP 4096 /* CTL_IN_CAP */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t piece = 1 + data[0] % 64, n = size - 1;
	data++;
	char *in = malloc(CAP); /* exact size: ASan catches a read past it */
	size_t inlen = 0;
	struct metrics_req r = {0};
	while (inlen < CAP) {
		size_t k = n - inlen < piece ? n - inlen : piece;
		if (k > CAP - inlen)
			k = CAP - inlen;
		memcpy(in + inlen, data + inlen, k);
		inlen += k;
		bool eof = inlen == n;
		metrics_http_parse(in, inlen, CAP, eof, &r);
		if (r.route != MR_MORE || eof)
			break;
	}
	switch (r.route) {
	case MR_TEXT:
		FUZZ_ASSERT(r.status >= 200 && r.status <= 599 && r.reason && r.text);
		FUZZ_ASSERT(!strchr(r.reason, '\r') && !strchr(r.reason, '\n'));
		break;
	case MR_MORE:
		FUZZ_ASSERT(inlen < CAP);
		break;
	case MR_CLOSE:
	case MR_METRICS:
	case MR_STATUS:
		break;
	default:
		FUZZ_ASSERT(!"unknown route");
	}
	free(in);
	return 0;
}

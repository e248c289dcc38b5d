/* Fuzz target: what an app hands the response writer -- status codes,
 * reason phrases, header names and values, body writes -- for a GET or HEAD,
 * HTTP/1.1 or 1.0.  The security property checked (RFC 9112 §2.2, §4, §5;
 * RFC 9110 §5.5): whatever the app passes, the bytes on the wire are ONE
 * well-formed response -- no CR, LF or NUL inside the status line or a field
 * line, names are tokens, and a response parser sees exactly one message
 * begin, never a second response smuggled through a header or the body. */
#include <llhttp.h>

#include "fuzz.h"
#include "fuzz_conn.h"

static struct fuzz_in app_in; /* the app's script */

static const char *const names[] = {
	"Content-Length", "Transfer-Encoding", "Connection", "Date",   "Server",
	"Content-Type",   "Set-Cookie",        "Location",   "Upgrade", "Trailer",
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

static void field(char *buf, size_t cap, bool name)
{
	unsigned pick = name ? fuzz_byte(&app_in) : 255;
	if (pick < NNAMES)
		snprintf(buf, cap, "%s", names[pick]);
	else
		fuzz_str(&app_in, buf, cap);
}

static int app_handle(struct drover_request *req, struct drover_response *resp)
{
	char a[300], b[300];
	(void)req;
	for (int i = 0; i < 64 && app_in.off < app_in.n; i++) {
		switch (fuzz_byte(&app_in) % 4) {
		case 0: {
			int status = (int)(fuzz_u16(&app_in) % 1100);
			fuzz_str(&app_in, a, sizeof(a));
			resp->ops->status(resp, status, a[0] || fuzz_byte(&app_in) & 1 ? a : NULL);
			break;
		}
		case 1:
			field(a, sizeof(a), true);
			field(b, sizeof(b), false);
			resp->ops->header(resp, a, b);
			break;
		case 2:
			fuzz_str(&app_in, a, sizeof(a));
			resp->ops->write(resp, a, strlen(a) + (fuzz_byte(&app_in) & 1));
			break;
		default:
			return fuzz_byte(&app_in) & 1 ? -1 : 0;
		}
	}
	return 0;
}

static const struct drover_app app = {DROVER_APP_ABI_VERSION, "fuzz", NULL, app_handle, NULL};

static bool is_tchar(unsigned char c) /* RFC 9110 §5.6.2 */
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Field values and reason phrases: VCHAR, obs-text, SP, HTAB (§5.5). */
static bool is_text(unsigned char c)
{
	return c == '\t' || c >= 0x20; /* 0x7f (DEL) is obs, tolerated */
}

/* The head's lines: a status line, then "name: value" field lines. */
static void check_head(const char *p, size_t len)
{
	FUZZ_ASSERT(len >= 12 && memcmp(p, "HTTP/1.", 7) == 0 && (p[7] == '0' || p[7] == '1'));
	FUZZ_ASSERT(p[8] == ' ' && p[9] >= '1' && p[9] <= '9' && p[10] >= '0' && p[10] <= '9' &&
		    p[11] >= '0' && p[11] <= '9');
	size_t i = 12;
	while (i < len && p[i] != '\r') /* the reason phrase */
		FUZZ_ASSERT(is_text((unsigned char)p[i++]));
	while (i < len) {
		FUZZ_ASSERT(i + 1 < len && p[i] == '\r' && p[i + 1] == '\n'); /* no bare CR */
		i += 2;
		if (i == len)
			break;
		size_t name = i;
		while (i < len && is_tchar((unsigned char)p[i]))
			i++;
		FUZZ_ASSERT(i > name && i < len && p[i] == ':');
		for (i++; i < len && p[i] != '\r'; i++)
			FUZZ_ASSERT(is_text((unsigned char)p[i]));
	}
}

static unsigned begins;
static bool head_request;
static int on_begin(llhttp_t *p)
{
	(void)p;
	begins++;
	return 0;
}
static int on_headers_complete(llhttp_t *p)
{
	(void)p;
	return head_request ? 1 : 0; /* 1: a response to HEAD has no body */
}

/* A response parser reading the whole output must see one message. */
static void check_one_message(const char *p, size_t len)
{
	llhttp_settings_t s;
	llhttp_t h;
	llhttp_settings_init(&s);
	s.on_message_begin = on_begin;
	s.on_headers_complete = on_headers_complete;
	llhttp_init(&h, HTTP_RESPONSE, &s);
	begins = 0;
	llhttp_errno_t e = llhttp_execute(&h, p, len);
	if (e == HPE_OK)
		e = llhttp_finish(&h);
	/* a 101 pauses the parser (what follows is another protocol); a body
	 * cut short (the app wrote less than its Content-Length, so the
	 * connection closes) ends in an EOF error; nothing else may fail */
	FUZZ_ASSERT(e == HPE_OK || e == HPE_PAUSED_UPGRADE || e == HPE_INVALID_EOF_STATE);
	FUZZ_ASSERT(begins == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const reqs[] = {
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"HEAD / HTTP/1.0\r\n\r\n",
	};
	if (size < 1)
		return 0;
	unsigned flags = data[0];
	const char *rq = reqs[flags & 3];
	head_request = flags & 1;
	app_in = (struct fuzz_in){data, size, 1};
	struct fuzz_conn_opts o = {.keepalive = !(flags & 4), .piece = strlen(rq)};
	struct http_buf out = {0};
	fuzz_conn_run(&app, &o, (const uint8_t *)rq, strlen(rq), &out);
	FUZZ_ASSERT(out.len > 0); /* an app's error still gets a 500 */
	const char *end = memmem(out.data, out.len, "\r\n\r\n", 4);
	FUZZ_ASSERT(end != NULL);
	check_head(out.data, (size_t)(end - out.data) + 2);
	check_one_message(out.data, out.len);
	http_buf_free(&out);
	return 0;
}

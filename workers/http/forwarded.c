/* gunicorn's forwarded_allow_ips / secure_scheme_headers semantics: the
 * scheme headers are believed only from the proxies listed; from anyone else
 * they are ignored, so a client cannot make the app think it is on HTTPS. */
#include "forwarded.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "workers/http/http_parse.h"

/* peer within "addr/bits" or equal to "addr"; both as text. */
static bool addr_match(const char *rule, const char *peer)
{
	char net[INET6_ADDRSTRLEN + 8];
	unsigned char a[16], b[16];
	snprintf(net, sizeof(net), "%s", rule);
	char *slash = strchr(net, '/');
	if (slash)
		*slash = '\0';
	int fam = strchr(net, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(fam, net, a) != 1 || inet_pton(fam, peer, b) != 1)
		return false;
	int max = fam == AF_INET6 ? 128 : 32;
	int bits = slash ? atoi(slash + 1) : max;
	if (bits < 0 || bits > max)
		return false;
	for (int i = 0; i < bits / 8; i++)
		if (a[i] != b[i])
			return false;
	int rest = bits % 8;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return !rest || (a[bits / 8] & mask) == (b[bits / 8] & mask);
}

bool forwarded_trusted(const struct conf_list *allow, const char *peer)
{
	if (!peer || !*peer)
		return true; /* a unix socket */
	for (size_t i = 0; i < allow->n; i++)
		if (!strcmp(allow->items[i], "*") || addr_match(allow->items[i], peer))
			return true;
	return false;
}

static bool header_is(const struct drover_header *h, size_t n, const char *name,
		      const char *value)
{
	const struct drover_header *f = http_find_header(h, n, name);
	return f && f->value.len == strlen(value) &&
	       !strncasecmp(f->value.ptr, value, f->value.len);
}

const char *forwarded_scheme(const struct conf_list *allow, const char *peer,
			     const struct drover_header *h, size_t n)
{
	if (!forwarded_trusted(allow, peer))
		return "http";
	if (header_is(h, n, "X-Forwarded-Proto", "https") ||
	    header_is(h, n, "X-Forwarded-Protocol", "ssl") ||
	    header_is(h, n, "X-Forwarded-Ssl", "on"))
		return "https";
	return "http";
}

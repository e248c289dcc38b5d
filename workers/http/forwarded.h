/* Behind a proxy (issue 14): gunicorn's forwarded_allow_ips and
 * secure_scheme_headers.  Pure functions of the configuration, the peer
 * address and the request headers. */
#ifndef DROVER_FORWARDED_H
#define DROVER_FORWARDED_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "workers/app/app.h"

/* Whether peer (text address; "" for a unix socket) is in allow: "*", exact
 * addresses or CIDR networks (10.0.0.0/8, fd00::/8).  A unix-socket peer is
 * trusted: only local processes can reach it, as gunicorn decides too. */
bool forwarded_trusted(const struct conf_list *allow, const char *peer);

/* "https" if a trusted peer says so with X-Forwarded-Proto: https,
 * X-Forwarded-Protocol: ssl or X-Forwarded-Ssl: on (gunicorn's default
 * secure_scheme_headers); "http" otherwise, whatever an untrusted peer sent. */
const char *forwarded_scheme(const struct conf_list *allow, const char *peer,
			     const struct drover_header *h, size_t n);

#endif

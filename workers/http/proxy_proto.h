/* The PROXY protocol, versions 1 (text) and 2 (binary), as HAProxy's
 * proxy-protocol.txt specifies it: a load balancer's header in front of the
 * first request of a connection, carrying the real client's address. */
#ifndef DROVER_PROXY_PROTO_H
#define DROVER_PROXY_PROTO_H

#include <stddef.h>

/* Parse the header at p (n bytes available).  Returns the header's length
 * (> 0) with the client's address text in addr (unchanged for UNKNOWN, LOCAL
 * or UNSPEC: the connection's own peer stands) and its port in *port; 0 if
 * more bytes are needed; -1 if the bytes are not a valid PROXY header. */
int proxy_parse(const unsigned char *p, size_t n, char *addr, size_t cap, int *port);

#endif

/* A worker connection without a socket, for the HTTP fuzz targets: the
 * request bytes come from the fuzzer in pieces through a fake conn_io, what
 * the worker sends is collected, and the app is a handler of the harness.
 * The real path runs: http_conn_serve, the PROXY header, the parser with its
 * limits, Expect: 100-continue, body reading and chunked decoding, and the
 * response writer. */
#ifndef DROVER_FUZZ_CONN_H
#define DROVER_FUZZ_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "workers/http/http_conn.h"

struct fuzz_conn_opts {
	bool proxy_protocol; /* a PROXY header must come first */
	bool small_limits; /* tiny request line / header / body limits */
	bool keepalive; /* the model keeps connections open */
	size_t piece; /* bytes per fill (1..): how the input is split */
};

/* Serve requests from in[0..n) until the connection closes or the input
 * ends; the worker's output (all responses) is left in *out (freed by the
 * caller with http_buf_free).  Returns the number of requests served. */
unsigned fuzz_conn_run(const struct drover_app *app, const struct fuzz_conn_opts *o,
		       const uint8_t *in, size_t n, struct http_buf *out);
#endif

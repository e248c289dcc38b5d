/* The smallest drover C app: "Hello, World!" to every request.  Build it as
 * a shared object against drover/app.h and run: drover so:./hello.so */
#include "app.h"

static const char body[] = "Hello, World!\n";

static int hello_handle(struct drover_request *req, struct drover_response *resp)
{
	(void)req;
	drover_header(resp, "Content-Type", "text/plain");
	drover_header(resp, "Content-Length", "14");
	return drover_write(resp, body, sizeof(body) - 1);
}

const struct drover_app drover_app = {
	.abi_version = DROVER_APP_ABI_VERSION,
	.name = "hello",
	.handle = hello_handle,
};

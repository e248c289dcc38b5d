#include "app.h"
const struct drover_app drover_app = { DROVER_APP_ABI_VERSION, "hello", 0, 0, 0 };

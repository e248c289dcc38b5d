/* Fuzz target: an INI configuration file (conf_load_file with its option
 * validation, then the cross-option checks and --check-config's printer).
 * The file is a memfd, so the real loader (inih, line reader) runs.
 * Checks: no memory error or UB; a failed load leaves the conf as it was and
 * says why. */
#include <sys/mman.h>
#include <unistd.h>

#include "conf/conf.h"
#include "fuzz.h"

static int fd = -1;
static char path[64];
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fd = memfd_create("fuzz.ini", 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	devnull = fopen("/dev/null", "w");
	return fd >= 0 && devnull ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fd < 0 && LLVMFuzzerInitialize(NULL, NULL) < 0)
		abort();
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	struct drover_conf c = {0};
	char err[CONF_ERR_MAX];
	conf_defaults(&c);
	err[0] = '\0';
	if (conf_load_file(&c, path, err) == 0) {
		if (conf_validate(&c, err) == 0)
			conf_print(&c, devnull);
	} else {
		FUZZ_ASSERT(err[0] != '\0');
		FUZZ_ASSERT(memchr(err, '\0', sizeof(err)) != NULL);
	}
	conf_free(&c);
	return 0;
}

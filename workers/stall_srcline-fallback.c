/* Built without libdw: no source lines; sites stay func (object+0xoffset). */
#include "workers/stall_srcline.h"

#include <errno.h>

int stall_srcline_init(void)
{
	return -ENOTSUP;
}

bool stall_srcline(const void *addr, char *file, size_t flen, int *line)
{
	(void)addr;
	(void)file;
	(void)flen;
	(void)line;
	return false;
}

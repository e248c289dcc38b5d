/* Source lines from DWARF through libdwfl (see stall_srcline.h).  The Dwfl
 * session is built once at the watchdog's start; a module's DWARF is read
 * the first time one of its addresses is looked up, in the watchdog thread. */
#include "workers/stall_srcline.h"

#include <elfutils/libdwfl.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const Dwfl_Callbacks callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
};
static Dwfl *dwfl;

int stall_srcline_init(void)
{
	if (dwfl)
		return 0;
	dwfl = dwfl_begin(&callbacks);
	if (!dwfl)
		return -ENOMEM;
	if (dwfl_linux_proc_report(dwfl, getpid()) != 0 || dwfl_report_end(dwfl, NULL, NULL) != 0) {
		dwfl_end(dwfl);
		dwfl = NULL;
		return -EIO;
	}
	return 0;
}

bool stall_srcline(const void *addr, char *file, size_t flen, int *line)
{
	if (!dwfl || !addr)
		return false;
	Dwarf_Addr a = (Dwarf_Addr)(uintptr_t)addr;
	Dwfl_Module *m = dwfl_addrmodule(dwfl, a);
	Dwfl_Line *l = m ? dwfl_module_getsrc(m, a) : NULL;
	int ln = 0;
	const char *src = l ? dwfl_lineinfo(l, &a, &ln, NULL, NULL, NULL) : NULL;
	if (!src || ln <= 0)
		return false;
	const char *slash = strrchr(src, '/');
	snprintf(file, flen, "%s", slash ? slash + 1 : src);
	*line = ln;
	return true;
}

/* Source lines for the C frames of a stall: the file and line of a code
 * address of this process, from the DWARF debug info of the object holding
 * it (elfutils' libdwfl), so that a C app's blocking site reads
 * `resolve_host (blocker.c:27)` like a Python one.  Used by the watchdog
 * thread alone, never on the request path; without libdw at build time
 * (stall_srcline-fallback.c) or without debug info, nothing is found and
 * the site stays `func (app.so+0xoffset)`. */
#ifndef DROVER_STALL_SRCLINE_H
#define DROVER_STALL_SRCLINE_H

#include <stdbool.h>
#include <stddef.h>

/* Learn the process's loaded objects (/proc/self/maps); call once objects
 * of interest are loaded.  0, -ENOMEM, -EIO, or -ENOTSUP without libdw. */
int stall_srcline_init(void);
/* The basename of the source file and the line of the instruction at addr
 * (for a return address, pass the address of the call: minus one).  false
 * if unknown: no init, no module, no line table. */
bool stall_srcline(const void *addr, char *file, size_t flen, int *line);
#endif

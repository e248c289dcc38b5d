/* `drover doctor`: the shorthand for `drover ctl doctor` (same --pidfile,
 * --control, -c and --json choices), and `drover doctor --attach PID
 * [--seconds N] [--json]`, the same diagnosis for a process tree drover does
 * not run (a gunicorn or uWSGI master and its workers), from /proc, cgroup
 * and PSI data alone. */
#ifndef DROVER_DOCTOR_ATTACH_H
#define DROVER_DOCTOR_ATTACH_H

/* argv[0] is "doctor".  Returns the exit status (0, 1: failed, 2: usage). */
int doctor_main(int argc, char **argv);
#endif

/* `drover ctl`: the control socket's command-line client. */
#ifndef DROVER_CTL_H
#define DROVER_CTL_H

/* `drover ctl ...` (argv[0] is "ctl"); returns the exit status. */
int ctl_main(int argc, char **argv);
#endif

/* Process titles ("drover: master", "drover: worker 3 [sync]") shown by ps:
 * the argv area is overwritten, after moving environ out of its way. */
#ifndef DROVER_PROCTITLE_H
#define DROVER_PROCTITLE_H

void proctitle_init(int argc, char **argv);
void proctitle_set(const char *title);
#endif

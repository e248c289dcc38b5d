/* Internals shared by the files of the WSGI adapter (app_wsgi.c, wsgi_environ.c,
 * wsgi_input.c, wsgi_response.c, wsgi_file.c).  Not an ABI: only these files
 * include it.  Everything here is called with the GIL held unless said. */
#ifndef DROVER_WSGI_H
#define DROVER_WSGI_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdbool.h>

#include "workers/app/app.h"

/* Process-wide adapter state: one interpreter, one app per process. */
struct wsgi_globals {
	PyObject *callable; /* the WSGI application */
	bool multithread; /* wsgi.multithread: thread worker model */
	bool multiprocess; /* wsgi.multiprocess: more than one worker */
	PyObject *errors; /* the wsgi.errors singleton */
	PyObject *format_exception; /* traceback.format_exception */
};
extern struct wsgi_globals wsgi_g;

/* wsgi_environ.c: interned keys and constant values; the environ dict of a
 * request (a new reference, NULL with an exception set). */
int wsgi_environ_setup(void);
PyObject *wsgi_environ_build(const struct drover_request *req, PyObject *input);

/* wsgi_input.c: wsgi.input (streams the body through req->ops->read_body)
 * and wsgi.errors (writes to fd 2). */
int wsgi_input_setup(void);
PyObject *wsgi_input_new(struct drover_request *req);
/* After the request: the object may outlive it, so it forgets req. */
void wsgi_input_detach(PyObject *input);
PyObject *wsgi_errors_new(void);

/* wsgi_response.c: one request through the app.  Returns what handle()
 * returns: 0, or -1 when the connection must be closed. */
int wsgi_response_setup(void);
int wsgi_serve(struct drover_request *req, struct drover_response *resp);

/* wsgi_file.c: wsgi.file_wrapper, and sending one through sendfile.
 * wsgi_file_send returns 1 when the wrapped object has no usable file
 * descriptor (the caller iterates it instead), 0 when sent, -1 with a
 * Python exception, -2 when the client went away. */
extern PyTypeObject wsgi_file_wrapper_type;
int wsgi_file_setup(void);
struct wsgi_sr;
int wsgi_file_send(struct wsgi_sr *sr, PyObject *wrapper);

/* wsgi_response.c, for wsgi_file.c: hand status and headers to drover (once),
 * with an optional Content-Length the app did not give (-1: none). */
int wsgi_sr_send_headers(struct wsgi_sr *sr, long long length);
/* The bytes the app announced with Content-Length that are still to be sent
 * (-1: it gave none), and the response to write to. */
long long wsgi_sr_remaining(const struct wsgi_sr *sr);
struct drover_response *wsgi_sr_resp(struct wsgi_sr *sr);
void wsgi_sr_sent(struct wsgi_sr *sr, size_t n);

/* app_wsgi.c: write "[time] [pid] [ERROR] <line>\n<traceback of the current
 * exception>" to fd 2 in one write(2); clears the exception. */
void wsgi_log_exception(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same without a traceback. */
void wsgi_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* write(2) all of buf to fd, retrying on EINTR and short writes. */
void wsgi_write_fd(int fd, const char *buf, size_t len);

/* Start the embedded interpreter in this process (GIL released on return).
 * 0, or -1 with err.  For a throwaway child (gunicorn.conf.py reading). */
int wsgi_start_interpreter(char *err, size_t errlen);

/* wsgi_hooks.c: gunicorn's server hooks of a gunicorn.conf.py (issue 14).
 * set_file before the app loads (in the master or the worker); the others
 * with the GIL held, no-ops without a file.  Exceptions are logged. */
void wsgi_hooks_set_file(const char *path);
/* wsgi_reload.c: --reload.  configure at load; start in the worker, GIL held,
 * once the app is imported (starts the inotify watcher thread). */
void wsgi_reload_configure(bool on, char *const *extra_files, size_t n);
void wsgi_reload_start(void);
/* wsgi_pyconf.c: the helper's side of app_python_config; does not return. */
void app_python_config_child(const char *path, int fd) __attribute__((noreturn));
void wsgi_hooks_worker_start(int age);
void wsgi_hooks_pre_request(PyObject *environ);
void wsgi_hooks_post_request(PyObject *environ, PyObject *status);
void wsgi_hooks_worker_exit(void);

#endif

/* wsgi.file_wrapper (PEP 3333 "optional platform-specific file handling"):
 * a response made of a file is sent with resp->ops->sendfile from the file's
 * current position to its end when it has a real file descriptor, and read
 * in blocks by plain iteration otherwise. */
#include "workers/app/wsgi.h"

#include <structmember.h>
#include <sys/stat.h>
#include <unistd.h>

struct wsgi_file {
	PyObject_HEAD
	PyObject *filelike;
	Py_ssize_t blksize;
};

static int fw_init(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "filelike", "blksize", NULL };
	struct wsgi_file *fw = (struct wsgi_file *)self;
	PyObject *filelike;
	Py_ssize_t blksize = 8192;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|n:FileWrapper", kwlist, &filelike, &blksize))
		return -1;
	if (blksize <= 0) {
		PyErr_SetString(PyExc_ValueError, "FileWrapper: blksize must be positive");
		return -1;
	}
	Py_XSETREF(fw->filelike, Py_NewRef(filelike));
	fw->blksize = blksize;
	return 0;
}

static PyObject *fw_next(PyObject *self)
{
	struct wsgi_file *fw = (struct wsgi_file *)self;
	if (!fw->filelike) {
		PyErr_SetString(PyExc_ValueError, "FileWrapper not initialised");
		return NULL;
	}
	PyObject *data = PyObject_CallMethod(fw->filelike, "read", "n", fw->blksize);
	if (data && PyObject_Length(data) == 0) {
		Py_CLEAR(data); /* end of file: StopIteration */
	}
	return data;
}

static PyObject *fw_close(PyObject *self, PyObject *unused)
{
	struct wsgi_file *fw = (struct wsgi_file *)self;
	if (!fw->filelike || !PyObject_HasAttrString(fw->filelike, "close"))
		Py_RETURN_NONE;
	return PyObject_CallMethod(fw->filelike, "close", NULL);
}

static int fw_traverse(PyObject *self, visitproc visit, void *arg)
{
	Py_VISIT(((struct wsgi_file *)self)->filelike);
	return 0;
}

static int fw_clear(PyObject *self)
{
	Py_CLEAR(((struct wsgi_file *)self)->filelike);
	return 0;
}

static void fw_dealloc(PyObject *self)
{
	PyObject_GC_UnTrack(self);
	fw_clear(self);
	Py_TYPE(self)->tp_free(self);
}

static PyMethodDef fw_methods[] = {
	{ "close", fw_close, METH_NOARGS, "close the wrapped file" },
	{ NULL, NULL, 0, NULL },
};

static PyMemberDef fw_members[] = {
	{ "filelike", T_OBJECT, offsetof(struct wsgi_file, filelike), READONLY, "the file" },
	{ "blksize", T_PYSSIZET, offsetof(struct wsgi_file, blksize), READONLY, "block size" },
	{ NULL, 0, 0, 0, NULL },
};

PyTypeObject wsgi_file_wrapper_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "drover.FileWrapper",
	.tp_basicsize = sizeof(struct wsgi_file),
	.tp_dealloc = fw_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "wsgi.file_wrapper(filelike, blksize=8192)",
	.tp_traverse = fw_traverse,
	.tp_clear = fw_clear,
	.tp_iter = PyObject_SelfIter,
	.tp_iternext = fw_next,
	.tp_methods = fw_methods,
	.tp_members = fw_members,
	.tp_init = fw_init,
	.tp_new = PyType_GenericNew,
};

int wsgi_file_setup(void)
{
	return PyType_Ready(&wsgi_file_wrapper_type);
}

/* The file's descriptor, or -1 without an exception when it has none (a
 * BytesIO raises io.UnsupportedOperation, an OSError). */
static int fw_fileno(PyObject *filelike)
{
	PyObject *r = PyObject_CallMethod(filelike, "fileno", NULL);
	long fd = r && PyLong_Check(r) ? PyLong_AsLong(r) : -1;
	Py_XDECREF(r);
	PyErr_Clear();
	return fd >= 0 && fd <= INT_MAX ? (int)fd : -1;
}

/* The position the app left the file at: tell() counts what a buffered
 * reader has consumed, which the descriptor's offset does not. */
static off_t fw_position(PyObject *filelike, int fd)
{
	PyObject *r = PyObject_CallMethod(filelike, "tell", NULL);
	long long pos = r && PyLong_Check(r) ? PyLong_AsLongLong(r) : -1;
	Py_XDECREF(r);
	PyErr_Clear();
	return pos >= 0 ? (off_t)pos : lseek(fd, 0, SEEK_CUR);
}

int wsgi_file_send(struct wsgi_sr *sr, PyObject *wrapper)
{
	PyObject *filelike = ((struct wsgi_file *)wrapper)->filelike;
	if (!filelike)
		return 1;
	int fd = fw_fileno(filelike);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return 1;
	off_t pos = fw_position(filelike, fd);
	if (pos < 0 || pos > st.st_size)
		pos = st.st_size;
	long long len = (long long)(st.st_size - pos);
	if (wsgi_sr_send_headers(sr, len) < 0)
		return -1;
	long long remaining = wsgi_sr_remaining(sr);
	if (remaining >= 0 && remaining < len)
		len = remaining; /* the app's Content-Length wins */
	if (len == 0)
		return 0;
	struct drover_response *resp = wsgi_sr_resp(sr);
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = resp->ops->sendfile(resp, fd, pos, (size_t)len);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return -2;
	wsgi_sr_sent(sr, (size_t)len);
	return 0;
}

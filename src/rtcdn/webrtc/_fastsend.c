/* rtcdn.webrtc._fastsend: the per-player RTP send in C (what fast_rtp_transmit does in Python).
 *
 * Sender(sock, address, protect, ctx, keepalive, ssrc, limit, on_drop) is a callable
 * sender(template: bytes, seq: int) -> None that copies the template into a buffer, writes the
 * sequence number and SSRC, calls libsrtp's srtp_protect (the function pylibsrtp was built with,
 * passed in as an address, with the session's srtp_t) and sendto()s the result on sock's file
 * descriptor, to `address` (a packed struct sockaddr, built in Python). It never raises for a packet: a template shorter than an RTP header or longer than
 * `limit` is skipped, a full socket buffer calls on_drop(), a closed socket (fileno() == -1) or
 * any other send error drops the packet silently (its owner closes the peer). Only wrong argument
 * types raise TypeError (a non-contiguous buffer: BufferError), and whatever on_drop raises.
 *
 * Memory safety: every write into the buffer is bounded by `limit` + the SRTP trailer room, which
 * the constructor checks against the buffer size; the GIL is held throughout, so the one buffer
 * per process is never used by two calls at once. The srtp_t is not locked: the session must be
 * used from one thread (rtcdn's event loop), as pylibsrtp releases the GIL in its own calls.
 * `keepalive` (the pylibsrtp Session) is held so `ctx` outlives the sender; `sock` is held and
 * asked for its descriptor on every call (a cached one could be reused by another socket). A
 * sender is initialised once; __init__ again is refused. Linux only (struct sockaddr layout).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#ifndef __linux__
#error "_fastsend packs Linux struct sockaddr layouts"
#endif
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define RTP_HEADER 12
#define BUFFER_SIZE 4096
#define SRTP_TRAILER_ROOM 144 /* SRTP_MAX_TRAILER_LEN of libsrtp 2 */

typedef int (*protect_fn)(void *ctx, void *rtp, int *len);

static unsigned char buffer[BUFFER_SIZE] __attribute__((aligned(16))); /* libsrtp reads it as words */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *sock;
    PyObject *keepalive;
    PyObject *on_drop;
    protect_fn protect;
    void *ctx;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    unsigned char ssrc[4];
    Py_ssize_t limit;
    unsigned long long sent;
    unsigned long long dropped;
} Sender;

static PyObject *fileno_name;

static int sender_fd(Sender *self) {
    PyObject *fd = PyObject_CallMethodNoArgs(self->sock, fileno_name);
    if (fd == NULL) {
        PyErr_Clear();
        return -1;
    }
    long value = PyLong_AsLong(fd);
    Py_DECREF(fd);
    if (value == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    return (int)value;
}

static PyObject *sender_send(Sender *self, const char *data, Py_ssize_t n, unsigned long seq) {
    if (n < RTP_HEADER || n > self->limit)
        Py_RETURN_NONE;
    int fd = sender_fd(self);
    if (fd < 0)
        Py_RETURN_NONE;
    memcpy(buffer, data, (size_t)n);
    buffer[2] = (unsigned char)(seq >> 8);
    buffer[3] = (unsigned char)seq;
    memcpy(buffer + 8, self->ssrc, 4);
    int length = (int)n;
    if (self->protect(self->ctx, buffer, &length) != 0)
        Py_RETURN_NONE;
    if (length < 0 || length > (int)(self->limit + SRTP_TRAILER_ROOM))
        Py_RETURN_NONE; /* cannot happen with libsrtp 2; never send past what was written */
    ssize_t sent = sendto(fd, buffer, (size_t)length, MSG_DONTWAIT, (struct sockaddr *)&self->addr, self->addrlen);
    if (sent >= 0) {
        self->sent++;
        Py_RETURN_NONE;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        self->dropped++;
        if (self->on_drop != Py_None) {
            PyObject *r = PyObject_CallNoArgs(self->on_drop);
            if (r == NULL)
                return NULL;
            Py_DECREF(r);
        }
    }
    Py_RETURN_NONE;
}

static PyObject *sender_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Sender *self = (Sender *)callable;
    if (self->protect == NULL || self->sock == NULL || self->keepalive == NULL || self->on_drop == NULL) {
        PyErr_SetString(PyExc_TypeError, "Sender was not initialised");
        return NULL;
    }
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 2 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "sender(template, seq) takes two positional arguments");
        return NULL;
    }
    unsigned long seq = PyLong_AsUnsignedLongMask(args[1]);
    if (seq == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    if (PyBytes_CheckExact(args[0]))
        return sender_send(self, PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]), seq);
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *r = sender_send(self, (const char *)view.buf, view.len, seq);
    PyBuffer_Release(&view);
    return r;
}

static int sender_init(Sender *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"sock", "address", "protect", "ctx", "keepalive", "ssrc", "limit", "on_drop", NULL};
    PyObject *sock, *keepalive, *on_drop;
    const char *address;
    Py_ssize_t address_length;
    unsigned long long protect, ctx;
    unsigned long ssrc;
    Py_ssize_t limit;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Oy#KKOknO", names, &sock, &address, &address_length, &protect,
                                     &ctx, &keepalive, &ssrc, &limit, &on_drop))
        return -1;
    if (self->protect != NULL) {
        PyErr_SetString(PyExc_TypeError, "Sender is already initialised");
        return -1;
    }
    if (protect == 0 || ctx == 0) {
        PyErr_SetString(PyExc_ValueError, "protect and ctx must be addresses");
        return -1;
    }
    if (limit < RTP_HEADER || limit > BUFFER_SIZE - SRTP_TRAILER_ROOM) {
        PyErr_Format(PyExc_ValueError, "limit must be %d..%d", RTP_HEADER, BUFFER_SIZE - SRTP_TRAILER_ROOM);
        return -1;
    }
    if (address_length < (Py_ssize_t)sizeof(sa_family_t) || address_length > (Py_ssize_t)sizeof(self->addr)) {
        PyErr_SetString(PyExc_ValueError, "address must be a packed struct sockaddr");
        return -1;
    }
    if (ssrc > 0xFFFFFFFFUL) {
        PyErr_SetString(PyExc_ValueError, "ssrc must fit in 32 bits");
        return -1;
    }
    if (on_drop != Py_None && !PyCallable_Check(on_drop)) {
        PyErr_SetString(PyExc_TypeError, "on_drop must be callable or None");
        return -1;
    }
    memset(&self->addr, 0, sizeof(self->addr));
    memcpy(&self->addr, address, (size_t)address_length);
    self->addrlen = (socklen_t)address_length;
    Py_INCREF(sock);
    Py_XSETREF(self->sock, sock);
    Py_INCREF(keepalive);
    Py_XSETREF(self->keepalive, keepalive);
    Py_INCREF(on_drop);
    Py_XSETREF(self->on_drop, on_drop);
    self->protect = (protect_fn)(uintptr_t)protect;
    self->ctx = (void *)(uintptr_t)ctx;
    self->ssrc[0] = (unsigned char)(ssrc >> 24);
    self->ssrc[1] = (unsigned char)(ssrc >> 16);
    self->ssrc[2] = (unsigned char)(ssrc >> 8);
    self->ssrc[3] = (unsigned char)ssrc;
    self->limit = limit;
    self->vectorcall = sender_vectorcall;
    return 0;
}

static PyObject *sender_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    Sender *self = (Sender *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->vectorcall = sender_vectorcall;
    return (PyObject *)self;
}

static int sender_traverse(Sender *self, visitproc visit, void *arg) {
    Py_VISIT(self->sock);
    Py_VISIT(self->keepalive);
    Py_VISIT(self->on_drop);
    return 0;
}

static int sender_clear(Sender *self) {
    self->protect = NULL; /* the ctx goes with the keepalive: never call it again */
    self->ctx = NULL;
    Py_CLEAR(self->sock);
    Py_CLEAR(self->keepalive);
    Py_CLEAR(self->on_drop);
    return 0;
}

static void sender_dealloc(Sender *self) {
    PyObject_GC_UnTrack(self);
    sender_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *sender_call(PyObject *self, PyObject *args, PyObject *kwargs) {
    return PyVectorcall_Call(self, args, kwargs);
}

static PyObject *sender_get_sent(Sender *self, void *closure) { return PyLong_FromUnsignedLongLong(self->sent); }
static PyObject *sender_get_dropped(Sender *self, void *closure) { return PyLong_FromUnsignedLongLong(self->dropped); }

static PyGetSetDef sender_getset[] = {
    {"sent", (getter)sender_get_sent, NULL, "datagrams sent", NULL},
    {"dropped", (getter)sender_get_dropped, NULL, "datagrams dropped on a full socket buffer", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SenderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rtcdn.webrtc._fastsend.Sender",
    .tp_basicsize = sizeof(Sender),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "sender(template, seq): copy, stamp seq and SSRC, srtp_protect, sendto (see the module source).",
    .tp_new = sender_new,
    .tp_init = (initproc)sender_init,
    .tp_dealloc = (destructor)sender_dealloc,
    .tp_traverse = (traverseproc)sender_traverse,
    .tp_clear = (inquiry)sender_clear,
    .tp_call = sender_call,
    .tp_vectorcall_offset = offsetof(Sender, vectorcall),
    .tp_getset = sender_getset,
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_fastsend",
    .m_doc = "The per-player RTP send in C (see the source's header).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__fastsend(void) {
    if (PyType_Ready(&SenderType) < 0)
        return NULL;
    fileno_name = PyUnicode_InternFromString("fileno");
    if (fileno_name == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&SenderType);
    if (PyModule_AddObject(m, "Sender", (PyObject *)&SenderType) < 0) {
        Py_DECREF(&SenderType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "BUFFER_SIZE", BUFFER_SIZE) < 0 ||
        PyModule_AddIntConstant(m, "TRAILER_ROOM", SRTP_TRAILER_ROOM) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

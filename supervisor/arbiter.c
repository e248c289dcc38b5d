/* stub: to be written */
typedef int stub_arbiter_t;

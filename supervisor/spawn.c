/* stub: to be written */
typedef int stub_spawn_t;

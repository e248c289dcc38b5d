/* stub: to be written */
typedef int stub_scoreboard_t;

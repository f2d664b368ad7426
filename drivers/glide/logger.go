package glide

// glide's core (Rust) logs on its own, process-wide, to standard error
// at WARN level unless told otherwise ("WARN logger_core: connection
// creation - Failed connecting to ..."), past Config.Logger: with no
// Logger the engine promises that nothing is logged, and with one its
// lines cannot be routed there (glide logs to the console or a file
// only). valkey-glide's Go package exposes no call for it; its library
// does (init in lib.h), and the driver calls that with OFF once, at its
// first dial. What those lines said reaches the caller anyway: a failed
// dial's error.

// #include <stdlib.h>
// typedef struct LogResult { char *log_error; int level; } LogResult;
// extern LogResult *init(const int *level, const char *file_name);
// extern void free_log_result(LogResult *result);
// static void glide_log_off(void) {
//	const int off = 5; // Level OFF
//	LogResult *r = init(&off, NULL);
//	if (r != NULL) {
//		free_log_result(r);
//	}
// }
import "C"

import "sync"

var logOff sync.Once

// quietCore turns glide's core log off, once per process.
func quietCore() { logOff.Do(func() { C.glide_log_off() }) }

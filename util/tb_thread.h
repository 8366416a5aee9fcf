/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_thread.h - scheduling hints for the calling thread.
 *
 * Thread-safety: acts on the calling thread only.
 */
#ifndef TB_THREAD_H
#define TB_THREAD_H

#include "tb_err.h"

/*
 * Makes the calling thread yield to the process's other threads when
 * they compete for a CPU: its nice value becomes the current one plus
 * delta (Linux keeps a nice value per thread).  A best-effort hint:
 * returns 0, or -1 with errno when the system refused (nothing changed).
 */
TB_MUST_CHECK int tb_thread_lower_priority(int delta);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_thread.c - scheduling hints (see tb_thread.h).
 */
#include "util/tb_thread.h"

#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

int
tb_thread_lower_priority(int delta)
{
	id_t tid = (id_t)syscall(SYS_gettid);
	int nice;

	errno = 0;
	nice = getpriority(PRIO_PROCESS, tid);
	if (nice == -1 && errno != 0)
		return -1;
	return setpriority(PRIO_PROCESS, tid, nice + delta);
}

/*
 * proc_cpu.h - CPU seconds used so far by processes (from /proc), so that a benchmark can
 * tell which server was busy during a run: by process tree (one server's processes only: the
 * machine may run other servers of the same name), and the whole machine's busy time.
 */
#ifndef TF_BENCH_PROC_CPU_H
#define TF_BENCH_PROC_CPU_H

#include <sys/types.h>

/* Process root and every process below it (children, their children, ...), including the
 * descendants that exited and were waited for; 0 when root is gone. */
double proc_cpu_tree_seconds(pid_t root);

/* The parent of pid, or 0 when it cannot be read. */
pid_t proc_parent(pid_t pid);

/* The pid recorded in $TOPICFLOW_STATE_DIR/<name>.pid (dev-services' servers: "rabbitmq"),
 * or 0 when there is none. */
pid_t proc_state_dir_pid(const char *name);

/* Busy CPU seconds of the whole machine, all cores (/proc/stat: all but idle and iowait). */
double proc_cpu_machine_busy_seconds(void);

#endif

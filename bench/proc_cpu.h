/*
 * proc_cpu.h - CPU seconds used so far by every process of a given command name (from
 * /proc), so that a benchmark can tell which server was busy during a run.
 */
#ifndef TF_BENCH_PROC_CPU_H
#define TF_BENCH_PROC_CPU_H

double proc_cpu_seconds(const char *comm);
/* The same for process `parent` and its children (one PostgreSQL server's share). */
double proc_cpu_seconds_tree(int parent);

/* The same, counting only the processes whose command line, or whose parent's, contains
 * `needle` (a server's state directory: its postmaster and backends, its beam.smp), so that
 * other servers on a shared machine are left out. NULL needle: every process of comm. */
double proc_cpu_seconds_of(const char *comm, const char *needle);

#endif

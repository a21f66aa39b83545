/*
 * proc_cpu.c - summing utime + stime of /proc/<pid>/stat over processes named `comm`.
 * Processes that exited during the interval are not counted: sample before they exit.
 */
#include "proc_cpu.h"

#include <dirent.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* CPU seconds so far of every process whose command name is `comm` (from /proc). */
double proc_cpu_seconds(const char *comm)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    double total = 0;
    long tick = sysconf(_SC_CLK_TCK);

    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[1024], name[64];
        unsigned long ut, st;
        FILE *f;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(buf, sizeof(buf), f)) {
            char *open = strchr(buf, '('), *close = strrchr(buf, ')');
            if (open && close && close > open) {
                snprintf(name, sizeof(name), "%.*s", (int)(close - open - 1), open + 1);
                /* fields after the name: state(3) ... utime(14) stime(15) */
                if (strcmp(name, comm) == 0 &&
                    sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
                    total += (double)(ut + st) / (double)tick;
            }
        }
        fclose(f);
    }
    closedir(d);
    return total;
}


/* CPU seconds so far of process `parent` and its children (a postmaster and its backends:
 * one server's share on a machine that runs several). */
double proc_cpu_seconds_tree(int parent)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    double total = 0;
    long tick = sysconf(_SC_CLK_TCK);

    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[1024];
        unsigned long ut, st;
        int pid, ppid;
        FILE *f;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(buf, sizeof(buf), f)) {
            char *close = strrchr(buf, ')');
            pid = atoi(buf);
            /* fields after the name: state(3) ppid(4) ... utime(14) stime(15) */
            if (close && sscanf(close + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                                &ppid, &ut, &st) == 3 &&
                (pid == parent || ppid == parent))
                total += (double)(ut + st) / (double)tick;
        }
        fclose(f);
    }
    closedir(d);
    return total;
}

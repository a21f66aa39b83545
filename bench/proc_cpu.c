/*
 * proc_cpu.c - summing utime + stime of /proc/<pid>/stat over processes named `comm` (and,
 * optionally, started from a given state directory).
 * Processes that exited during the interval are not counted: sample before they exit.
 */
#include "proc_cpu.h"

#include <dirent.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Whether /proc/<pid>/cmdline contains needle (its NUL-separated arguments as one text). */
static int cmdline_has(const char *pid, const char *needle)
{
    char path[300], buf[4096];
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%s/cmdline", pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\0')
            buf[i] = ' ';
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

double proc_cpu_seconds(const char *comm)
{
    return proc_cpu_seconds_of(comm, NULL);
}

/* CPU seconds so far of every process whose command name is `comm` (from /proc). */
double proc_cpu_seconds_of(const char *comm, const char *needle)
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
                int ppid = 0;
                char parent[24];
                /* fields after the name: state(3) ppid(4) ... utime(14) stime(15) */
                if (strcmp(name, comm) == 0 &&
                    sscanf(close + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ppid, &ut, &st) == 3) {
                    snprintf(parent, sizeof(parent), "%d", ppid);
                    if (!needle || cmdline_has(e->d_name, needle) || cmdline_has(parent, needle))
                        total += (double)(ut + st) / (double)tick;
                }
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

/*
 * proc_cpu.c - summing utime + stime of /proc/<pid>/stat over the processes below a root
 * process (one server's share on a shared machine), and the machine's busy ticks from /proc/stat.
 */
#include "proc_cpu.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct proc_entry {
    pid_t pid, ppid;
    char name[64];
    double cpu_s;      /* its own utime + stime */
    double children_s; /* cutime + cstime: its children that exited and were waited for */
} proc_entry;

/* One /proc/<pid>/stat: 0 ok, -1 gone or unreadable. */
static int read_stat(const char *pid, proc_entry *out)
{
    char path[300], buf[1024];
    unsigned long ut, st;
    long cut, cst;
    int ppid, rc = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%s/stat", pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    if (fgets(buf, sizeof(buf), f)) {
        char *open = strchr(buf, '('), *close = strrchr(buf, ')');
        /* fields after the name: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17) */
        if (open && close && close > open &&
            sscanf(close + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld", &ppid,
                   &ut, &st, &cut, &cst) == 5) {
            out->pid = (pid_t)atoi(pid);
            out->ppid = (pid_t)ppid;
            snprintf(out->name, sizeof(out->name), "%.*s", (int)(close - open - 1), open + 1);
            out->cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
            out->children_s = (double)(cut + cst) / (double)sysconf(_SC_CLK_TCK);
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}

/* Every process of the machine; *n gets the count. Caller frees. */
static proc_entry *read_all(size_t *n)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    proc_entry *all = NULL;
    size_t cap = 0;

    *n = 0;
    if (!d)
        return NULL;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        if (*n == cap) {
            proc_entry *grown = realloc(all, (cap = cap ? 2 * cap : 256) * sizeof(*all));
            if (!grown)
                break;
            all = grown;
        }
        if (read_stat(e->d_name, &all[*n]) == 0)
            (*n)++;
    }
    closedir(d);
    return all;
}

static pid_t parent_in(const proc_entry *all, size_t n, pid_t pid)
{
    for (size_t i = 0; i < n; i++)
        if (all[i].pid == pid)
            return all[i].ppid;
    return 0;
}

double proc_cpu_tree_seconds(pid_t root)
{
    size_t n;
    proc_entry *all = read_all(&n);
    double total = 0;

    for (size_t i = 0; i < n && root > 0; i++) {
        pid_t p = all[i].pid;
        /* A process tree here is shallow (postmaster -> backends); 32 levels is plenty. */
        for (int depth = 0; p > 1 && depth < 32; depth++, p = parent_in(all, n, p)) {
            if (p == root) {
                /* A backend that exits during the run moves its time to its parent's
                 * children's time: counting both keeps the tree's total monotonic. */
                total += all[i].cpu_s + all[i].children_s;
                break;
            }
        }
    }
    free(all);
    return total;
}

pid_t proc_parent(pid_t pid)
{
    char s[24];
    proc_entry e;

    snprintf(s, sizeof(s), "%d", (int)pid);
    return read_stat(s, &e) == 0 ? e.ppid : 0;
}

double proc_cpu_machine_busy_seconds(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    double busy = 0;

    if (!f)
        return 0;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]) == 8)
        busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
    fclose(f);
    return busy;
}

pid_t proc_state_dir_pid(const char *name)
{
    const char *dir = getenv("TOPICFLOW_STATE_DIR");
    char path[1024];
    long pid = 0;
    FILE *f;

    if (!dir)
        return 0;
    snprintf(path, sizeof(path), "%s/%s.pid", dir, name);
    if ((f = fopen(path, "r")) != NULL) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return (pid_t)pid;
}

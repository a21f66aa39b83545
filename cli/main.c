/*
 * topicflow - the operator's tool. main() only dispatches: each subcommand lives in its
 * own file and owns its options, --help and exit status.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"migrate", cli_migrate, "apply pending schema migrations"},
    {"track", cli_track, "capture a table's changes into the outbox (attach the triggers)"},
    {"load", cli_load, "load CSV or JSONL rows into a table with COPY"},
    {"status", cli_status, "outbox backlog, queues, dead letters, documents, model, workers"},
    {"dlq", cli_dlq, "list, requeue or purge the dead letters"},
    {"outbox", cli_outbox, "list, retry or discard outbox rows set aside as unpublishable"},
    {"topics", cli_topics, "the current model's topics and their heaviest terms"},
    {"doc", cli_doc, "one document's topic mixture"},
    {"refit", cli_refit, "batch NMF over every document as a new model version, then re-fold"},
    {"replay", cli_replay, "reprocess past events (a range of ids or times, or all)"},
    {"sample", cli_sample, "write realistic sample internship postings (JSONL or CSV)"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: topicflow COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`topicflow COMMAND --help` describes a command. Connection settings come from\n"
                 "TOPICFLOW_PG_URL and TOPICFLOW_AMQP_URL or --pg and --amqp; every variable X also\n"
                 "as X_FILE, and the URLs' passwords alone from TOPICFLOW_PG_PASSWORD_FILE and\n"
                 "TOPICFLOW_AMQP_PASSWORD_FILE.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("topicflow %s\n", TOPICFLOW_VERSION);
        return CLI_OK;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "topicflow: unknown command '%s' (see topicflow --help)\n", argv[1]);
    return CLI_USAGE;
}

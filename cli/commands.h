/*
 * commands.h - the subcommands of `topicflow`. Each takes argv with argv[0] = its name and
 * returns the process exit status: 0 success, 1 failure, 2 usage error.
 */
#ifndef TF_CLI_COMMANDS_H
#define TF_CLI_COMMANDS_H

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

int cli_migrate(int argc, char **argv);
int cli_sample(int argc, char **argv);
int cli_track(int argc, char **argv);
int cli_load(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_dlq(int argc, char **argv);
int cli_topics(int argc, char **argv);
int cli_doc(int argc, char **argv);
int cli_refit(int argc, char **argv);
int cli_replay(int argc, char **argv);
int cli_outbox(int argc, char **argv);
int cli_lexicon(int argc, char **argv);

#endif

/* The llmcache command's subcommands. Each takes the arguments after the
 * subcommand name (argv[0] is the subcommand) and returns the process
 * exit status. Not installed; not part of the library API. */
#ifndef LLMC_CLI_H
#define LLMC_CLI_H

/* `llmcache serve`: the OpenAI-compatible caching proxy (cli/serve.c).
 * Runs until SIGTERM / SIGINT, then finishes in-flight requests and
 * returns 0; 2 for bad arguments or a bad config, 1 when the server could
 * not start. */
int llmc_cli_serve(int argc, char **argv);

#endif

/* A standalone `llmcache-serve` (the proxy without the rest of the
 * command), used by the proxy's tests and benchmark. */
#include "cli.h"

int main(int argc, char **argv)
{
    return llmc_cli_serve(argc, argv);
}

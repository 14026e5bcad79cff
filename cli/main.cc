// streamrun's entry point: parses the command line with CLI11 and dispatches to a subcommand.
#include <cstdio>

int main() { std::puts("streamrun: under construction"); return 0; }

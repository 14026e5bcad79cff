// The doctest runner for every unit test in tests/engine and tests/operators.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

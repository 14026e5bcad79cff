// Baseline for the throughput benchmark: a plain RapidJSON DOM parse of every line of a file.
// Prints the number of lines and the user+elapsed seconds for make bench to turn into a rate.
#include <rapidjson/document.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: rapidjson_baseline FILE\n");
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot open %s\n", argv[1]);
    return 1;
  }
  auto start = std::chrono::steady_clock::now();
  std::string line;
  size_t lines = 0, objects = 0;
  while (std::getline(in, line)) {
    rapidjson::Document doc;
    doc.Parse(line.data(), line.size());
    if (!doc.HasParseError() && doc.IsObject()) ++objects;
    ++lines;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"lines\": %zu, \"objects\": %zu, \"seconds\": %.6f}\n", lines, objects, secs);
  return 0;
}

// `streamrun kafka-mock`: a Kafka cluster in this process (librdkafka's mock cluster, see
// kafka/mock_cluster.h) for tests and for trying streamrun without Kafka.
//
// Prints `bootstrap.servers=HOST:PORT,...` on stdout once the brokers listen, then reads fault
// commands from stdin, one a line, answering each with `ok` or `error: ...` on stdout. Runs
// until stdin ends (unless --ignore-stdin), or SIGINT or SIGTERM; then exits 0.
#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/interrupt.h"
#include "kafka/mock_cluster.h"

namespace streamrun::cli {
namespace {

struct MockOptions {
  int brokers = 3;
  std::vector<std::string> topics;
  std::string port_file;
  bool ignore_stdin = false;
};

// Writes `text` to `path` through a temporary file and a rename, so that a reader never sees
// half of it.
Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return Status::IoError("cannot write '" + tmp + "': " + std::strerror(errno));
  bool ok = std::fputs(text.c_str(), f) >= 0;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::IoError("cannot write '" + path + "': " + std::strerror(errno));
  }
  return Status::Ok();
}

void Answer(const Status& st) {
  if (st.ok()) {
    std::fputs("ok\n", stdout);
  } else {
    std::fprintf(stdout, "error: %s\n", st.message().c_str());
  }
  std::fflush(stdout);
}

// Reads commands from stdin until it ends or an interrupt comes.
void ServeCommands(KafkaMockCluster& cluster, const Interrupts& interrupts, bool read_stdin) {
  std::string pending;
  char buf[4096];
  for (;;) {
    pollfd fds[2] = {{interrupts.fd(), POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    int n = ::poll(fds, read_stdin ? 2 : 1, -1);
    if (interrupts.requested()) return;
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("kafka-mock: poll failed: {}", std::strerror(errno));
      return;
    }
    if (!read_stdin || fds[1].revents == 0) continue;
    ssize_t got = ::read(STDIN_FILENO, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {  // end of input (or an unreadable stdin): a last line without newline counts
      if (!pending.empty()) Answer(cluster.Execute(pending));
      return;
    }
    pending.append(buf, static_cast<size_t>(got));
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(pending.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      // Blank lines and comments get no answer, so a script can be commented.
      size_t first = line.find_first_not_of(" \t");
      if (first == std::string_view::npos || line[first] == '#') continue;
      Answer(cluster.Execute(line));
    }
    pending.erase(0, start);
  }
}

int RunMock(const MockOptions& o) {
  Interrupts& interrupts = Interrupts::Install();
  auto cluster = KafkaMockCluster::Start(o.brokers);
  if (!cluster.ok()) return Report(cluster.status());
  for (const std::string& topic : o.topics) {
    Status st = (*cluster)->Execute("topic " + topic);
    if (st.code() == Status::Code::kPipelineError) {
      return Report(Status::PipelineError("--topic " + topic + ": " + st.message()));
    }
    if (!st.ok()) return Report(st);
  }
  const std::string& servers = (*cluster)->bootstrap_servers();
  if (!o.port_file.empty()) {
    Status st = WriteFileAtomically(o.port_file, servers + "\n");
    if (!st.ok()) return Report(st);
  }
  spdlog::info("kafka-mock: {} broker(s) at {}{}", o.brokers, servers,
               o.ignore_stdin ? "; stop with Ctrl-C"
                              : "; fault commands on stdin, stop with Ctrl-D or Ctrl-C");
  std::printf("bootstrap.servers=%s\n", servers.c_str());
  std::fflush(stdout);

  ServeCommands(**cluster, interrupts, !o.ignore_stdin);
  if (!o.port_file.empty()) std::remove(o.port_file.c_str());
  spdlog::info("kafka-mock: stopped");
  return 0;
}

}  // namespace

CommandRunner AddKafkaMockCommand(CLI::App& app) {
  auto opts = std::make_shared<MockOptions>();
  CLI::App* sub = app.add_subcommand(
      "kafka-mock",
      "Run a Kafka cluster in this process (librdkafka's mock cluster) for tests and for "
      "trying streamrun without Kafka");
  sub->add_option("--brokers", opts->brokers, "Number of brokers (ids 1..N)")
      ->check(CLI::Range(1, KafkaMockCluster::kMaxBrokers))
      ->capture_default_str();
  sub->add_option("--topic", opts->topics, "Create a topic: NAME:PARTITIONS (repeatable)");
  sub->add_option("--port-file", opts->port_file,
                  "Also write the bootstrap servers to FILE once ready (removed at exit)");
  sub->add_flag("--ignore-stdin", opts->ignore_stdin,
                "Read no commands; run until SIGINT or SIGTERM (for a background process whose "
                "stdin is /dev/null)");
  sub->footer(
      std::string(
          "Prints 'bootstrap.servers=HOST:PORT,...' on stdout when ready, then reads commands on\n"
          "stdin, one a line, and answers each with 'ok' or 'error: ...' (blank lines and '#'\n"
          "comments get no answer):\n") +
      kMockCommandHelp +
      "Stops at the end of stdin, or on SIGINT or SIGTERM (exit 0).\n\n"
      "Limits (librdkafka's mock, not Kafka): in memory only; read_committed consumers also see\n"
      "aborted transactions and producers are not fenced (no exactly-once tests); timestamp\n"
      "lookups (offsetsForTimes) find nothing; a broker that is down keeps leading its\n"
      "partitions (no failover: use 'leader'); unknown topics are created on first use with 4\n"
      "partitions.");
  return [opts] { return RunMock(*opts); };
}

}  // namespace streamrun::cli

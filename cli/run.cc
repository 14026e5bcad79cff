// `streamrun run PIPELINE`: runs a pipeline until its inputs end (exit 0), it fails (exit 1), or
// it is interrupted (Ctrl-C or SIGTERM: exit 130). A second Ctrl-C exits at once.
//
// On a terminal, a bounded run shows a progress line on stderr (records read, rate, percent
// done); nothing of that when stderr is not a terminal.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "cli/pipeline_args.h"
#include "engine/control_server.h"
#include "engine/runtime.h"
#include "engine/state_dir.h"

namespace streamrun::cli {
namespace {

struct RunOptionsCli {
  std::string file;
  std::vector<std::string> sets;
  int parallelism = 0;
  std::string state_dir;
};

std::string Human(double x) {
  char buf[32];
  if (x >= 1e9) std::snprintf(buf, sizeof buf, "%.2fG", x / 1e9);
  else if (x >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", x / 1e6);
  else if (x >= 1e4) std::snprintf(buf, sizeof buf, "%.1fk", x / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", x);
  return buf;
}

// Draws the progress line until Stop().
class ProgressLine {
 public:
  explicit ProgressLine(const Job& job) : job_(job) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~ProgressLine() { Stop(); }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  }

 private:
  void Loop() {
    auto start = std::chrono::steady_clock::now();
    uint64_t last_records = 0;
    auto last = start;
    double rate = 0;
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(250), [&] { return stop_; })) {
      uint64_t records = 0, bytes = 0, total = 0;
      bool bounded = true;
      for (const auto& [name, p] : job_.progress()) {
        records += p->records.load(std::memory_order_relaxed);
        bytes += p->bytes.load(std::memory_order_relaxed);
        uint64_t t = p->total_bytes.load(std::memory_order_relaxed);
        if (t == 0) bounded = false;
        total += t;
      }
      auto now = std::chrono::steady_clock::now();
      double dt = std::chrono::duration<double>(now - last).count();
      double inst = dt > 0 ? static_cast<double>(records - last_records) / dt : 0;
      rate = rate == 0 ? inst : 0.7 * rate + 0.3 * inst;
      last = now;
      last_records = records;
      std::string line = "\r\033[K" + Human(static_cast<double>(records)) + " records read, " +
                         Human(rate) + " records/s";
      if (bounded && total > 0) {
        char pct[32];
        std::snprintf(pct, sizeof pct, ", %.1f%% done", 100.0 * static_cast<double>(bytes) / static_cast<double>(total));
        line += pct;
      }
      std::fputs(line.c_str(), stderr);
      std::fflush(stderr);
    }
  }

  const Job& job_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Turns SIGINT and SIGTERM into Job::Cancel on a thread of its own (sigwait), so no work is done
// in a signal handler. Must be created before any other thread so that all threads block them.
class SignalWatcher {
 public:
  SignalWatcher() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGUSR1);  // our own wake-up at the end
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }
  ~SignalWatcher() { Stop(); }

  void Watch(Job* job) {
    thread_ = std::thread([this, job] {
      for (;;) {
        int sig = 0;
        if (sigwait(&set_, &sig) != 0) continue;
        if (sig == SIGUSR1 && stopping_.load()) return;
        if (sig == SIGINT || sig == SIGTERM) {
          if (interrupted_.exchange(true)) {
            std::fputs("\nstreamrun: interrupted again, exiting now\n", stderr);
            _exit(130);
          }
          spdlog::info("interrupted: stopping (Ctrl-C again to exit at once)");
          job->Cancel();
        }
      }
    });
  }
  void Stop() {
    if (!thread_.joinable()) return;
    stopping_.store(true);
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }
  bool interrupted() const { return interrupted_.load(); }

 private:
  sigset_t set_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> interrupted_{false};
};

// Answers one request of the control socket (engine/control_server.h).
std::string AnswerControl(Job* job, const std::string& request) {
  rapidjson::Document doc;
  doc.Parse(request.data(), request.size());
  std::string command;
  if (!doc.HasParseError() && doc.IsObject() && doc.HasMember("command") &&
      doc["command"].IsString()) {
    command = doc["command"].GetString();
  }
  if (command == "status") return job->StatusJson();
  if (command == "stop") {
    spdlog::info("stop requested through the control socket");
    job->Cancel();
    return "{\"ok\":true}";
  }
  return "{\"ok\":false,\"error\":\"unknown command\"}";
}

int RunPipeline(const RunOptionsCli& opts) {
  SignalWatcher signals;
  auto options = MakeLoadOptions(opts.sets);
  if (!options.ok()) return Report(options.status());
  auto spec = LoadPipeline(opts.file, *options);
  if (!spec.ok()) return Report(spec.status());

  if (!opts.state_dir.empty()) spec->state_dir = opts.state_dir;

  // One running job per state directory; its control socket lives there.
  auto lock = StateDirLock::Acquire(spec->state_dir);
  if (!lock.ok()) return Report(lock.status());

  RunOptions run_options;
  run_options.parallelism = opts.parallelism;
  auto job = Job::Create(*spec, run_options);
  if (!job.ok()) return Report(job.status());

  Job* running = job->get();
  auto control = ControlServer::Start(
      spec->state_dir + "/control.sock",
      [running](const std::string& request) { return AnswerControl(running, request); });
  if (!control.ok()) return Report(control.status());

  signals.Watch(job->get());
  bool stdout_sink = false;
  for (const auto& s : spec->sinks) stdout_sink = stdout_sink || s.type == "stdout";
  std::unique_ptr<ProgressLine> progress;
  if (isatty(STDERR_FILENO) && !(stdout_sink && isatty(STDOUT_FILENO))) {
    progress = std::make_unique<ProgressLine>(**job);
  }

  auto start = std::chrono::steady_clock::now();
  Status st = (*job)->Run();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (progress) progress->Stop();
  signals.Stop();
  control->reset();
  if (signals.interrupted() && (st.ok() || st.code() == Status::Code::kCancelled)) {
    st = Status::Cancelled();
  }

  RunSummary summary = (*job)->summary();
  std::string line;
  for (const auto& s : summary.sources) {
    line += (line.empty() ? "" : ", ") + s.name + ": " + std::to_string(s.records) + " read";
    if (s.bad) line += " (" + std::to_string(s.bad) + " bad)";
  }
  for (const auto& s : summary.sinks) {
    line += ", " + s.name + ": " + std::to_string(s.records) + " written";
  }
  char took[32];
  std::snprintf(took, sizeof took, "%.2f s", secs);
  if (st.ok()) {
    spdlog::info("{}: done in {}: {}", spec->name, took, line);
  } else if (st.code() == Status::Code::kCancelled) {
    spdlog::info("{}: interrupted after {}: {}", spec->name, took, line);
  }
  if (st.code() == Status::Code::kCancelled) return 130;
  return Report(st);
}

}  // namespace

CommandRunner AddRunCommand(CLI::App& app) {
  auto opts = std::make_shared<RunOptionsCli>();
  CLI::App* sub = app.add_subcommand("run", "Run a pipeline");
  sub->add_option("PIPELINE", opts->file, "Pipeline file")->required();
  AddSetOption(sub, &opts->sets);
  sub->add_option("--parallelism", opts->parallelism, "Subtasks of each keyed step")
      ->check(CLI::PositiveNumber);
  sub->add_option("--state-dir", opts->state_dir,
                  "State directory (default: the pipeline's state.dir, .streamrun/<name>)");
  return [opts] { return RunPipeline(*opts); };
}

}  // namespace streamrun::cli

// `streamrun run PIPELINE`: runs a pipeline until its inputs end (exit 0), it fails (exit 1), or
// it is interrupted (Ctrl-C or SIGTERM: exit 130). A second Ctrl-C exits at once, and so does the
// first when the job has not stopped 5 s after it (a sink blocked in a write nobody reads).
//
// On a terminal, a bounded run shows a progress line on stderr (records read, rate, percent
// done); nothing of that when stderr is not a terminal.
#include <pthread.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/pipeline_args.h"
#include "engine/checkpoint_writer.h"
#include "engine/control_server.h"
#include "engine/mutex.h"
#include "engine/restore.h"
#include "engine/runtime.h"
#include "engine/state_dir.h"

namespace streamrun::cli {
namespace {

struct RunOptionsCli {
  std::string file;
  std::vector<std::string> sets;
  int parallelism = 0;
  std::string state_dir;
  std::string from_savepoint;
  bool allow_non_restored_state = false;
  bool fresh = false;
};

std::string Human(double x) {
  char buf[32];
  if (x >= 1e9)
    std::snprintf(buf, sizeof buf, "%.2fG", x / 1e9);
  else if (x >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2fM", x / 1e6);
  else if (x >= 1e4)
    std::snprintf(buf, sizeof buf, "%.1fk", x / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0f", x);
  return buf;
}

// Draws the progress line until Stop().
class ProgressLine {
 public:
  explicit ProgressLine(const Job& job) : job_(job) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~ProgressLine() { Stop(); }
  void Stop() LOCKS_EXCLUDED(mu_) {
    {
      MutexLock lock(&mu_);
      if (stop_) return;
      stop_ = true;
    }
    cv_.SignalAll();
    thread_.join();
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  }

 private:
  void Loop() LOCKS_EXCLUDED(mu_) {
    auto start = std::chrono::steady_clock::now();
    uint64_t last_records = 0;
    auto last = start;
    double rate = 0;
    MutexLock lock(&mu_);
    for (;;) {
      // Every 250 ms until Stop().
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(250);
      while (!stop_ && cv_.WaitUntil(&mu_, deadline)) {
      }
      if (stop_) break;
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
        std::snprintf(pct, sizeof pct, ", %.1f%% done",
                      100.0 * static_cast<double>(bytes) / static_cast<double>(total));
        line += pct;
      }
      std::fputs(line.c_str(), stderr);
      std::fflush(stderr);
    }
  }

  const Job& job_;
  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;  // started and joined by the owner's thread
};

// Turns SIGINT and SIGTERM into Job::Cancel on a thread of its own (sigwait), so no work is done
// in a signal handler. Must be created before any other thread so that all threads block them.
class SignalWatcher {
 public:
  static constexpr std::chrono::seconds kStopGrace{5};

  SignalWatcher() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGUSR1);  // our own wake-up at the end
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }
  ~SignalWatcher() { Stop(); }

  void Watch(std::function<void()> stop) {
    thread_ = std::thread([this, stop] {
      // After the first signal: when the job must have stopped. A task blocked in a system call
      // that cancelling cannot wake (a write to a pipe nobody reads) would hold it for ever;
      // everything a crash may leave behind is cleaned at the next start, as after kill -9.
      std::chrono::steady_clock::time_point deadline{};
      for (;;) {
        int sig = 0;
        if (interrupted_.load()) {
          auto left = deadline - std::chrono::steady_clock::now();
          auto ns = std::max<int64_t>(
              0, std::chrono::duration_cast<std::chrono::nanoseconds>(left).count());
          timespec timeout{static_cast<time_t>(ns / 1000000000),
                           static_cast<long>(ns % 1000000000)};
          sig = sigtimedwait(&set_, nullptr, &timeout);
          if (sig < 0) {
            if (errno != EAGAIN) continue;
            std::fputs(
                "\nstreamrun: the job did not stop within 5 s of the interrupt (is an "
                "output blocked?), exiting now\n",
                stderr);
            _exit(130);
          }
        } else if (sigwait(&set_, &sig) != 0) {
          continue;
        }
        if (sig == SIGUSR1 && stopping_.load()) return;
        if (sig == SIGINT || sig == SIGTERM) {
          if (interrupted_.exchange(true)) {
            std::fputs("\nstreamrun: interrupted again, exiting now\n", stderr);
            _exit(130);
          }
          deadline = std::chrono::steady_clock::now() + kStopGrace;
          spdlog::info("interrupted: stopping (Ctrl-C again to exit at once)");
          stop();
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

// The job the control socket and the signals talk to: it changes when the restart strategy
// starts the job again.
class CurrentJob {
 public:
  void Set(std::shared_ptr<Job> job) LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    job_ = std::move(job);
    if (job_ && stop_requested_) job_->Cancel();
  }
  // The job, kept alive while the caller uses it (a savepoint waits without the lock).
  std::shared_ptr<Job> Get() LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return job_;
  }
  // Runs f(job) under the lock; false when no job runs.
  template <typename F>
  bool With(F f) LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    if (!job_) return false;
    f(job_.get());
    return true;
  }
  // A stop that also stops the restart loop.
  void Stop(bool drain) LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    stop_requested_ = true;
    if (!job_) return;
    if (drain)
      job_->Drain();
    else
      job_->Cancel();
  }
  bool stop_requested() LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return stop_requested_;
  }
  // Why no job runs: "starting" until the first one runs, "restarting" after a failure.
  void SetPhase(std::string phase) LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    phase_ = std::move(phase);
  }
  std::string phase() LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return phase_;
  }

 private:
  Mutex mu_;
  std::shared_ptr<Job> job_ GUARDED_BY(mu_);
  bool stop_requested_ GUARDED_BY(mu_) = false;
  std::string phase_ GUARDED_BY(mu_) = "starting";
};

std::string JsonError(const std::string& message) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("ok");
  w.Bool(false);
  w.Key("error");
  w.String(message.c_str());
  w.EndObject();
  return sb.GetString();
}

std::string JsonPath(const std::string& path) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("ok");
  w.Bool(true);
  if (!path.empty()) {
    w.Key("path");
    w.String(path.c_str());
  }
  w.EndObject();
  return sb.GetString();
}

// Answers one request of the control socket (engine/control_server.h):
//   {"command":"status"}
//   {"command":"savepoint", "target": DIR?}                  -> {"ok":true,"path":P}
//   {"command":"stop", "savepoint": bool?, "target": DIR?, "drain": bool?}
std::string AnswerControl(CurrentJob* current, const std::string& state_dir,
                          const std::string& request) {
  rapidjson::Document doc;
  doc.Parse(request.data(), request.size());
  std::string command;
  if (!doc.HasParseError() && doc.IsObject() && doc.HasMember("command") &&
      doc["command"].IsString()) {
    command = doc["command"].GetString();
  }
  auto flag = [&](const char* name) {
    return doc.IsObject() && doc.HasMember(name) && doc[name].IsBool() && doc[name].GetBool();
  };
  std::string target = SavepointsDir(state_dir);
  if (doc.IsObject() && doc.HasMember("target") && doc["target"].IsString() &&
      doc["target"].GetStringLength() > 0) {
    target = doc["target"].GetString();
  }
  if (command == "status") {
    std::string answer = JsonError("no job is running (" + current->phase() + ")");
    current->With([&](Job* job) { answer = job->StatusJson(); });
    return answer;
  }
  if (command == "savepoint" || (command == "stop" && flag("savepoint"))) {
    // Savepoint blocks until complete; the job keeps running meanwhile. The lock is not held
    // while waiting (the job may end, or restart).
    std::shared_ptr<Job> job = current->Get();
    if (job == nullptr) return JsonError("no job is running (" + current->phase() + ")");
    auto path = job->Savepoint(target);
    if (!path.ok()) return JsonError("savepoint failed: " + path.status().message());
    spdlog::info("savepoint taken: {}", *path);
    if (command == "stop") {
      spdlog::info("stop requested through the control socket{}", flag("drain") ? " (drain)" : "");
      current->Stop(flag("drain"));
    }
    return JsonPath(*path);
  }
  if (command == "stop") {
    spdlog::info("stop requested through the control socket{}", flag("drain") ? " (drain)" : "");
    current->Stop(flag("drain"));
    return JsonPath("");
  }
  return JsonError("unknown command");
}

// "nothing to resume" after a job that ended with its input: its checkpoints and then its
// staged output go (savepoints stay).
void ForgetState(const std::string& state_dir) {
  Status st = ForgetCheckpoints(state_dir);
  if (!st.ok()) {
    spdlog::warn("{}", st.message());
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(state_dir + "/sinks", ec);
}

// Where the job starts from: --from-savepoint, else the newest complete checkpoint (damaged
// newer ones are reported and skipped), else nothing.
Result<std::string> FindRestorePoint(const std::string& state_dir, const std::string& savepoint,
                                     bool announce) {
  if (!savepoint.empty()) {
    std::error_code ec;
    std::string abs = std::filesystem::absolute(savepoint, ec).lexically_normal().string();
    VerifyResult v = VerifyCheckpoint(abs);
    if (!v.ok()) {
      return Status::PipelineError("cannot restore from " + abs + ": " + v.status.message());
    }
    if (announce) spdlog::info("restoring from savepoint {}", abs);
    return abs;
  }
  SR_ASSIGN_OR_RETURN(LatestCheckpoint latest, LatestCompleteCheckpoint(state_dir));
  for (const auto& skipped : latest.skipped) {
    spdlog::warn("skipping damaged checkpoint {}: {}", skipped.path, skipped.reason);
  }
  if (!latest.checkpoint) return std::string();
  if (announce) spdlog::info("resuming from checkpoint {}", latest.checkpoint->path);
  return latest.checkpoint->path;
}

int RunPipeline(const RunOptionsCli& opts) {
  SignalWatcher signals;
  auto options = MakeLoadOptions(opts.sets);
  if (!options.ok()) return Report(options.status());
  auto spec = LoadPipeline(opts.file, *options);
  if (!spec.ok()) return Report(spec.status());

  if (!opts.state_dir.empty()) {
    std::error_code ec;
    spec->state_dir = std::filesystem::absolute(opts.state_dir, ec).lexically_normal().string();
  }
  const std::string& state_dir = spec->state_dir;

  // One running job per state directory; its control socket lives there.
  auto lock = StateDirLock::Acquire(state_dir);
  if (!lock.ok()) return Report(lock.status());
  if (opts.fresh) {
    auto moved = MoveStateAside(state_dir);
    if (!moved.ok()) return Report(moved.status());
    if (!moved->empty()) spdlog::info("starting fresh; the old state was moved to {}", *moved);
  }
  // A savepoint a crash interrupted (of the job that held the lock before) is of no use.
  auto abandoned = RemoveAbandonedSavepoints(SavepointsDir(state_dir));
  if (!abandoned.ok()) return Report(abandoned.status());
  auto restore_path = FindRestorePoint(state_dir, opts.from_savepoint, true);
  if (!restore_path.ok()) return Report(restore_path.status());

  CurrentJob current;
  auto control = ControlServer::Start(state_dir + "/control.sock", [&](const std::string& request) {
    return AnswerControl(&current, state_dir, request);
  });
  if (!control.ok()) return Report(control.status());
  signals.Watch([&current] { current.Stop(false); });

  bool stdout_sink = false;
  for (const auto& s : spec->sinks) stdout_sink = stdout_sink || s.type == "stdout";
  const bool show_progress = isatty(STDERR_FILENO) && !(stdout_sink && isatty(STDOUT_FILENO));

  auto start = std::chrono::steady_clock::now();
  Status st;
  std::shared_ptr<Job> job;
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<RestoreData> restore;
    const auto restore_started = std::chrono::steady_clock::now();
    if (!restore_path->empty()) {
      auto loaded = LoadRestore(*restore_path, *spec, opts.allow_non_restored_state);
      if (!loaded.ok()) return Report(loaded.status());
      restore = std::move(*loaded);
    }
    auto next_id = NextCheckpointId(state_dir);
    if (!next_id.ok()) return Report(next_id.status());
    RunOptions run_options;
    run_options.parallelism = opts.parallelism;
    run_options.state_dir = state_dir;
    run_options.first_checkpoint_id = *next_id;
    run_options.restore = restore.get();
    auto created = Job::Create(*spec, run_options);
    if (!created.ok()) return Report(created.status());
    job = std::move(*created);
    if (restore) {
      // Reading and checking the snapshot's files plus rebuilding every operator's state: the
      // time to recover before processing goes on (BENCHMARKS.md, recovery).
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - restore_started)
                    .count();
      spdlog::info("state restored in {} ms", ms);
    }
    current.Set(job);
    std::unique_ptr<ProgressLine> progress;
    if (show_progress) progress = std::make_unique<ProgressLine>(*job);
    st = job->Run();
    if (progress) progress->Stop();
    current.Set(nullptr);
    if (st.ok() || st.code() == Status::Code::kCancelled || current.stop_requested()) {
      current.SetPhase("stopping");
      break;
    }
    current.SetPhase("restarting");
    // An operator failed. fixed_delay: go again from the newest checkpoint.
    const RestartSpec& restart = spec->restart;
    if (!restart.fixed_delay || attempt >= restart.attempts) {
      if (restart.fixed_delay) {
        spdlog::error("{}: failed after {} restart(s), giving up", spec->name, attempt);
      }
      break;
    }
    spdlog::warn("{}: failed: {}; restarting in {} ms from the last checkpoint (restart {} of {})",
                 spec->name, st.message(), restart.delay_ms, attempt + 1, restart.attempts);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(restart.delay_ms);
    while (std::chrono::steady_clock::now() < deadline && !current.stop_requested()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (current.stop_requested()) {
      st = Status::Cancelled();
      break;
    }
    auto again = FindRestorePoint(state_dir, "", false);
    if (!again.ok()) return Report(again.status());
    // No checkpoint yet: start again from what the first attempt started from.
    if (!again->empty()) *restore_path = *again;
    if (!restore_path->empty()) spdlog::info("restarting from {}", *restore_path);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  signals.Stop();
  control->reset();
  if (signals.interrupted() && (st.ok() || st.code() == Status::Code::kCancelled)) {
    st = Status::Cancelled();
  }
  // A job that finished its input leaves nothing to resume.
  if (st.ok()) ForgetState(state_dir);

  RunSummary summary = job->summary();
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

void AddRunOptions(CLI::App* sub, RunOptionsCli* opts) {
  AddSetOption(sub, &opts->sets);
  sub->add_option("--parallelism", opts->parallelism, "Subtasks of each keyed step")
      ->check(CLI::PositiveNumber);
  sub->add_option("--state-dir", opts->state_dir,
                  "State directory (default: the pipeline's state.dir, .streamrun/<name>)");
  sub->add_flag("--allow-non-restored-state", opts->allow_non_restored_state,
                "Restore even if the snapshot has state for steps the pipeline no longer has");
  sub->add_flag("--fresh", opts->fresh,
                "Start from empty state; the old state directory's contents are moved aside");
}

}  // namespace

CommandRunner AddRunCommand(CLI::App& app) {
  auto opts = std::make_shared<RunOptionsCli>();
  CLI::App* sub = app.add_subcommand("run", "Run a pipeline (resuming from its latest checkpoint)");
  sub->add_option("PIPELINE", opts->file, "Pipeline file")->required();
  sub->add_option("--from-savepoint", opts->from_savepoint,
                  "Start from this savepoint (or checkpoint)");
  AddRunOptions(sub, opts.get());
  return [opts] { return RunPipeline(*opts); };
}

CommandRunner AddRestoreCommand(CLI::App& app) {
  auto opts = std::make_shared<RunOptionsCli>();
  CLI::App* sub =
      app.add_subcommand("restore", "Run a pipeline from a savepoint (run --from-savepoint)");
  sub->add_option("SAVEPOINT", opts->from_savepoint, "Savepoint (or checkpoint) directory")
      ->required();
  sub->add_option("PIPELINE", opts->file, "Pipeline file")->required();
  AddRunOptions(sub, opts.get());
  return [opts] { return RunPipeline(*opts); };
}

}  // namespace streamrun::cli

// The control socket (see control_server.h).
#include "engine/control_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace streamrun {
namespace {

constexpr size_t kMaxRequest = 64 * 1024;

Status MakeAddress(const std::string& path, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (path.size() >= sizeof addr->sun_path) {
    return Status::IoError("control socket path too long (" + std::to_string(path.size()) +
                           " bytes, at most " + std::to_string(sizeof addr->sun_path - 1) +
                           "): " + path + "; use a shorter state directory");
  }
  std::memcpy(addr->sun_path, path.data(), path.size());
  return Status::Ok();
}

// Reads up to the first newline (or EOF), waiting at most `timeout_ms` for each read.
bool ReadLine(int fd, std::string* line, int timeout_ms) {
  char buf[4096];
  while (line->size() < kMaxRequest) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return !line->empty();
    line->append(buf, static_cast<size_t>(n));
    auto nl = line->find('\n');
    if (nl != std::string::npos) {
      line->resize(nl);
      return true;
    }
  }
  return false;
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::Start(const std::string& socket_path,
                                                            Handler handler) {
  sockaddr_un addr;
  SR_RETURN_IF_ERROR(MakeAddress(socket_path, &addr));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IoError("control socket: " + std::string(std::strerror(errno)));
  unlink(socket_path.c_str());  // a stale socket of a crashed job
  // Create it owner-only from the start: no moment in which others could connect.
  mode_t old_mask = umask(0177);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  umask(old_mask);
  if (rc != 0 || chmod(socket_path.c_str(), 0600) != 0 || listen(fd, 8) != 0) {
    std::string err = std::strerror(errno);
    close(fd);
    return Status::IoError("control socket " + socket_path + ": " + err);
  }
  return std::unique_ptr<ControlServer>(new ControlServer(socket_path, fd, std::move(handler)));
}

ControlServer::ControlServer(std::string path, int fd, Handler handler)
    : path_(std::move(path)), fd_(fd), handler_(std::move(handler)) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC);
  thread_ = std::thread([this] { Loop(); });
}

ControlServer::~ControlServer() {
  stop_.store(true);
  uint64_t one = 1;
  if (wake_fd_ >= 0 && write(wake_fd_, &one, sizeof one) < 0) {
    // The loop still ends at its next poll timeout.
  }
  thread_.join();
  if (wake_fd_ >= 0) close(wake_fd_);
  close(fd_);
  unlink(path_.c_str());
}

void ControlServer::Loop() {
  while (!stop_.load()) {
    // The eventfd wakes the poll at once when the server is destroyed (a job's exit is not
    // delayed); the timeout is only a fallback.
    pollfd p[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (poll(p, wake_fd_ >= 0 ? 2 : 1, 1000) <= 0 || !(p[0].revents & POLLIN)) continue;
    int client = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    std::string request;
    if (ReadLine(client, &request, 2000)) {
      std::string response = handler_(request) + "\n";
      WriteAll(client, response);
    }
    close(client);
  }
}

Result<std::string> ControlRequest(const std::string& socket_path, const std::string& request,
                                   int timeout_ms) {
  sockaddr_un addr;
  SR_RETURN_IF_ERROR(MakeAddress(socket_path, &addr));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IoError("control socket: " + std::string(std::strerror(errno)));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::string err = std::strerror(errno);
    close(fd);
    return Status::IoError("no running job answers at " + socket_path + " (" + err + ")");
  }
  std::string response;
  bool ok = WriteAll(fd, request + "\n") && ReadLine(fd, &response, timeout_ms);
  close(fd);
  if (!ok) return Status::IoError("the job at " + socket_path + " did not answer");
  return response;
}

}  // namespace streamrun

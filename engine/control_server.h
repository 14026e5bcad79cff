// The control socket of a running job: STATE_DIR/control.sock.
//
// A Unix stream socket of mode 0600 (only the job's owner may talk to it). A client connects,
// sends one request line (a JSON object such as {"command":"status"}), reads one response line
// (a JSON object) and the server closes the connection. `streamrun status` and `streamrun stop`
// are its clients.
//
// Thread safety: the server answers on a thread of its own, one connection at a time; the
// handler runs on that thread and must be safe to call while the job runs.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "engine/status.h"

namespace streamrun {

class ControlServer {
 public:
  // Takes a request line, returns the response (one line of JSON, without the newline).
  using Handler = std::function<std::string(const std::string& request)>;

  // Listens on `socket_path`, replacing a stale socket file left by a crashed job (the caller
  // holds the state directory's lock, so no live job owns it).
  static Result<std::unique_ptr<ControlServer>> Start(const std::string& socket_path,
                                                      Handler handler);
  // Stops answering and removes the socket file.
  ~ControlServer();

 private:
  ControlServer(std::string path, int fd, Handler handler);
  void Loop();

  std::string path_;
  int fd_;
  int wake_fd_ = -1;  // eventfd: wakes the loop when the server is destroyed
  Handler handler_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Sends `request` to the server at `socket_path` and returns its response line. IoError when
// nothing listens there ("no running job ...").
Result<std::string> ControlRequest(const std::string& socket_path, const std::string& request,
                                   int timeout_ms = 5000);

}  // namespace streamrun

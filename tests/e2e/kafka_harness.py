"""A Kafka cluster for end-to-end tests: `streamrun kafka-mock` run as a child process.

    with kafka_harness.KafkaMock(topics=["t:3"]) as kafka:
        harness.run(["replay", path, "--brokers", kafka.servers, "--topic", "t"])
        kafka.command("broker-down 2")   # returns "ok" or fails the test with the error

No sleeps: the servers are known when kafka-mock prints them, and every command is applied
when its answer comes back.
"""
import os
import queue
import subprocess
import tempfile
import threading

import harness

# Generous: a loaded CI machine may be slow, but a broken mock must not hang the suite.
TIMEOUT = 60


class KafkaMockError(Exception):
    pass


class KafkaMock:
    def __init__(self, brokers=3, topics=()):
        args = [harness.binary(), "kafka-mock", "--brokers", str(brokers)]
        for t in topics:
            args += ["--topic", t]
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr)
        self._lines = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            first = self._next_line()
        except KafkaMockError:
            self.close(check=False)
            raise
        if not first.startswith("bootstrap.servers="):
            err = self.stderr()
            self.close(check=False)
            raise KafkaMockError("kafka-mock did not start: %r\n%s" % (first, err))
        self.servers = first[len("bootstrap.servers="):]

    def _read(self):
        for line in self.proc.stdout:
            self._lines.put(line.decode().rstrip("\n"))
        self._lines.put(None)  # end of output

    def _next_line(self):
        try:
            line = self._lines.get(timeout=TIMEOUT)
        except queue.Empty:
            raise KafkaMockError("kafka-mock said nothing for %d s\n%s" % (TIMEOUT, self.stderr()))
        if line is None:
            raise KafkaMockError("kafka-mock exited (%s)\n%s" % (self.proc.poll(), self.stderr()))
        return line

    def send(self, command):
        """Sends one command; returns its answer ("ok" or "error: ...")."""
        self.proc.stdin.write((command + "\n").encode())
        self.proc.stdin.flush()
        return self._next_line()

    def command(self, command):
        """Sends one command that must succeed."""
        answer = self.send(command)
        if answer != "ok":
            raise KafkaMockError("kafka-mock: %s: %s" % (command, answer))

    def stderr(self):
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def close(self, check=True):
        """Ends stdin, which stops kafka-mock; returns its exit code."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=TIMEOUT)
        code = self.proc.returncode
        self.proc.stdout.close()
        self._stderr.close()
        if check and code != 0:
            raise KafkaMockError("kafka-mock exited %d" % code)
        return code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(check=exc[0] is None)

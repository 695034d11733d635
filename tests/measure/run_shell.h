// Runs a shell script as the bulk collector does in a guest (`sh -s`, script on stdin), but
// on the host, so that the script and its parser can be tested without an agent, with either
// GNU coreutils or busybox as the tools.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

namespace mchain::testing {

struct ShellRun {
  int status = -1;  // exit status, or -1 when killed
  std::string out;
  std::string err;
};

// `path_env` becomes the script's PATH.
inline ShellRun run_shell(const std::string& shell, const std::string& script,
                          const std::string& path_env) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    std::string path = "PATH=" + path_env;
    char* const argv[] = {const_cast<char*>(shell.c_str()), const_cast<char*>("-s"), nullptr};
    char* const envp[] = {path.data(), nullptr};
    ::execve(shell.c_str(), argv, envp);
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  ShellRun run;
  std::size_t written = 0;
  bool in_open = true;
  pollfd fds[3] = {{in[1], POLLOUT, 0}, {out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_reads = 2;
  while (open_reads > 0) {
    fds[0].fd = in_open ? in[1] : -1;
    if (::poll(fds, 3, -1) < 0 && errno != EINTR) break;
    if (in_open && (fds[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = ::write(in[1], script.data() + written, script.size() - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      if (n < 0 || written == script.size()) {
        ::close(in[1]);
        in_open = false;
      }
    }
    for (int k = 1; k <= 2; ++k) {
      if (fds[k].fd >= 0 && (fds[k].revents & (POLLIN | POLLHUP | POLLERR))) {
        char buf[65536];
        ssize_t n = ::read(fds[k].fd, buf, sizeof buf);
        if (n > 0) {
          (k == 1 ? run.out : run.err).append(buf, static_cast<std::size_t>(n));
        } else {
          ::close(fds[k].fd);
          fds[k].fd = -1;
          --open_reads;
        }
      }
    }
  }
  if (in_open) ::close(in[1]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

// A directory of busybox applet links, to run a script with busybox's tools only.
inline std::filesystem::path busybox_tools(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  for (const char* tool :
       {"sh", "find", "stat", "head", "readlink", "sha256sum", "sha512sum", "printf", "echo"}) {
    std::error_code ec;
    std::filesystem::create_symlink("/bin/busybox", dir / tool, ec);
  }
  return dir;
}

}  // namespace mchain::testing

// Threads for control requests that wait (a confirmation, a measurement): each answers its
// request and ends; finished ones are joined as new ones start, the rest by join_all().
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace mchain::agent {

class Tasks {
 public:
  ~Tasks() { join_all(); }

  void spawn(std::move_only_function<void()> work) {
    std::lock_guard lock(mutex_);
    std::erase_if(tasks_, [](const Task& t) { return t.done->load(); });  // joins them
    auto done = std::make_shared<std::atomic<bool>>(false);
    tasks_.push_back({done, std::jthread([done, work = std::move(work)]() mutable {
                        work();
                        *done = true;
                      })});
  }

  // Waits for every task: call once whatever they wait on has been stopped.
  void join_all() {
    std::vector<Task> tasks;
    {
      std::lock_guard lock(mutex_);
      tasks.swap(tasks_);
    }
    tasks.clear();  // joins, without holding the lock a finishing task's spawn() may need
  }

 private:
  struct Task {
    std::shared_ptr<std::atomic<bool>> done;
    std::jthread thread;
  };
  std::mutex mutex_;
  std::vector<Task> tasks_;
};

}  // namespace mchain::agent

// SharedMutex: a reader/writer lock that is sound on every target (std::shared_mutex is not on
// mingw-w64, see below).
#pragma once

#ifdef _WIN32
#include <windows.h>
#else
#include <shared_mutex>
#endif

namespace virt {

// Meets the SharedMutex requirements (std::unique_lock / std::shared_lock work on it).
// On Windows an SRWLOCK: mingw-w64's std::shared_mutex is winpthreads' pthread_rwlock, which
// was seen letting a reader in beside a writer (a stress of 2 readers and 4 writers under Wine
// broke exclusion in one run of three; the doorbell churn test crashed on it). SRWLOCKs are not
// recursive and do not fail, like the std type.
class SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

#ifdef _WIN32
  void lock() { ::AcquireSRWLockExclusive(&lock_); }
  bool try_lock() { return ::TryAcquireSRWLockExclusive(&lock_) != 0; }
  void unlock() { ::ReleaseSRWLockExclusive(&lock_); }
  void lock_shared() { ::AcquireSRWLockShared(&lock_); }
  bool try_lock_shared() { return ::TryAcquireSRWLockShared(&lock_) != 0; }
  void unlock_shared() { ::ReleaseSRWLockShared(&lock_); }

 private:
  SRWLOCK lock_ = SRWLOCK_INIT;
#else
  void lock() { mu_.lock(); }
  bool try_lock() { return mu_.try_lock(); }
  void unlock() { mu_.unlock(); }
  void lock_shared() { mu_.lock_shared(); }
  bool try_lock_shared() { return mu_.try_lock_shared(); }
  void unlock_shared() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
#endif
};

}  // namespace virt

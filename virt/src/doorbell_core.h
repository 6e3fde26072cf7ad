// DoorbellCore: the registration table shared by KernelDoorbells / UserModeDoorbells and every
// registration they handed out.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>  // std::shared_lock
#include <unordered_map>
#include <vector>

#include "virt/doorbell_ops.h"
#include "virt/doorbells.h"
#include "shared_mutex.h"

namespace virt {

// Owned jointly by the Doorbells object and its registrations, so a registration that outlives
// the partition finds alive_ == false instead of freed memory. Registration changes take mu_
// exclusively (and make their ops call under it); Dispatch takes it shared.
class DoorbellCore {
 public:
  // `ops` null: the user-mode fallback (Dispatch signals the events).
  DoorbellCore(std::unique_ptr<DoorbellOps> ops, bool any_length)
      : ops_(std::move(ops)), any_length_(any_length) {}

  static Result<std::unique_ptr<DoorbellRegistration>> Register(
      const std::shared_ptr<DoorbellCore>& core, const DoorbellMatch& match);
  // Removes the registration of `event` (and calls ops Unregister).
  Status Unregister(const DoorbellMatch& match, const Event& event);

  // Signals the registration matching the exit; true when one did.
  template <typename Exit>
  bool Dispatch(DoorbellSpace space, uint64_t address, const Exit& exit);

  bool any_length() const { return any_length_; }
  void Shutdown();
  void SetErrorHandler(Doorbells::ErrorHandler handler);
  void Report(const Error& error);
  size_t size();

 private:
  struct Entry {
    DoorbellMatch match;
    const Event* event;  // owned by the registration, which removes the entry before it dies
  };
  struct KeyHash {
    size_t operator()(const std::pair<DoorbellSpace, uint64_t>& k) const {
      return std::hash<uint64_t>()(k.second * 2 + (k.first == DoorbellSpace::kPio ? 1 : 0));
    }
  };
  using Key = std::pair<DoorbellSpace, uint64_t>;

  Status CheckAlive(const char* op) const;

  SharedMutex mu_;
  const std::unique_ptr<DoorbellOps> ops_;
  const bool any_length_;
  bool alive_ = true;                                           // guarded by mu_
  std::unordered_map<Key, std::vector<Entry>, KeyHash> table_;  // guarded by mu_
  size_t size_ = 0;                                             // guarded by mu_
  std::mutex handler_mu_;
  Doorbells::ErrorHandler handler_;  // guarded by handler_mu_
};

template <typename Exit>
bool DoorbellCore::Dispatch(DoorbellSpace space, uint64_t address, const Exit& exit) {
  std::shared_lock lock(mu_);
  if (!alive_) return false;
  auto it = table_.find({space, address});
  if (it == table_.end()) return false;
  for (const Entry& e : it->second) {
    if (!e.match.Matches(exit)) continue;
    if (Status s = e.event->Signal(); !s) Report(s.error());
    return true;  // collisions are refused, so at most one registration matches
  }
  return false;
}

}  // namespace virt

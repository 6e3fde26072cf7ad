// DoorbellCore and the registration it hands out: validation, collisions, lifetime.
#include "doorbell_core.h"

#include <cstdio>
#include <string>

namespace virt {
namespace {

class Registration final : public DoorbellRegistration {
 public:
  Registration(std::shared_ptr<DoorbellCore> core, const DoorbellMatch& match, Event event)
      : core_(std::move(core)), match_(match), event_(std::move(event)) {}
  ~Registration() override {
    if (Status s = Teardown(); !s && s.error().code != ErrorCode::kAlreadyReleased &&
                               s.error().code != ErrorCode::kPartitionGone) {
      core_->Report(s.error());
    }
  }

  const DoorbellMatch& match() const override { return match_; }
  const Event& event() const override { return event_; }
  Status Release() override { return Teardown(); }

 private:
  Status Teardown() {
    std::lock_guard lock(mu_);
    if (released_) {
      return Error::Make(ErrorCode::kAlreadyReleased, "DoorbellRegistration::Release",
                         Describe(match_) + " already released");
    }
    released_ = true;
    return core_->Unregister(match_, event_);
  }

  const std::shared_ptr<DoorbellCore> core_;
  const DoorbellMatch match_;
  const Event event_;
  std::mutex mu_;
  bool released_ = false;  // guarded by mu_
};

}  // namespace

Status DoorbellCore::CheckAlive(const char* op) const {
  if (alive_) return Ok();
  return Error::Make(ErrorCode::kPartitionGone, op, "the partition is gone");
}

Result<std::unique_ptr<DoorbellRegistration>> DoorbellCore::Register(
    const std::shared_ptr<DoorbellCore>& core, const DoorbellMatch& match) {
  constexpr const char* kOp = "Doorbells::Register";
  if (Status s = match.Validate(kOp); !s) return s.error();
  if (match.length == kDoorbellAnyLength && !core->any_length_) {
    return Error::Make(ErrorCode::kInvalidArgument, kOp,
                       Describe(match) + ": this hypervisor cannot match writes of any length");
  }
  std::unique_lock lock(core->mu_);
  if (Status s = core->CheckAlive(kOp); !s) return s.error();
  std::vector<Entry>& bucket = core->table_[{match.space, match.address}];
  for (const Entry& e : bucket) {
    if (e.match.CollidesWith(match)) {
      return Error::Make(ErrorCode::kOverlap, kOp,
                         Describe(match) + " collides with " + Describe(e.match));
    }
  }
  auto event = Event::Create();
  if (!event) return event.error();
  if (core->ops_) {
    if (Status s = core->ops_->Register(match, *event); !s) return s.error();
  }
  auto registration = std::make_unique<Registration>(core, match, std::move(*event));
  bucket.push_back({match, &registration->event()});
  ++core->size_;
  return std::unique_ptr<DoorbellRegistration>(std::move(registration));
}

Status DoorbellCore::Unregister(const DoorbellMatch& match, const Event& event) {
  std::unique_lock lock(mu_);
  if (Status s = CheckAlive("Doorbells::Unregister"); !s) return s;
  auto it = table_.find({match.space, match.address});
  if (it != table_.end()) {
    size_ -= std::erase_if(it->second, [&event](const Entry& e) { return e.event == &event; });
    if (it->second.empty()) table_.erase(it);
  }
  // Out of the table whatever the hypervisor says: the event closes next either way.
  if (ops_) return ops_->Unregister(match, event);
  return Ok();
}

void DoorbellCore::Shutdown() {
  std::unique_lock lock(mu_);
  alive_ = false;
  table_.clear();
  size_ = 0;
}

void DoorbellCore::SetErrorHandler(Doorbells::ErrorHandler handler) {
  std::lock_guard lock(handler_mu_);
  handler_ = std::move(handler);
}

void DoorbellCore::Report(const Error& error) {
  std::lock_guard lock(handler_mu_);
  if (handler_) {
    handler_(error);
  } else {
    std::fprintf(stderr, "virt: %s\n", error.Message().c_str());
  }
}

size_t DoorbellCore::size() {
  std::shared_lock lock(mu_);
  return size_;
}

}  // namespace virt

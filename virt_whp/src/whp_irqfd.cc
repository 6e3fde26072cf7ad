// WhpTriggerIrqFd and its routes: thin IrqFd/IrqFdRoute faces over WhpTriggerIrqFdCore.
#include "whp_irqfd.h"

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "virt/event.h"
#include "virt/gsi_table.h"
#include "virt/irqfd_route.h"
#include "whp_irqfd_core.h"

namespace virt::whp {
namespace {

// One route: a GSI and the Event devices signal (stable for life; WHP's trigger event hides
// behind its sink). Forwards to the shared core under its own lock.
class WhpTriggerIrqFdRoute final : public IrqFdRoute {
 public:
  WhpTriggerIrqFdRoute(std::shared_ptr<WhpTriggerIrqFdCore> core, Gsi gsi, Event event)
      : core_(std::move(core)), gsi_(gsi), event_(std::move(event)) {}
  // Drops the route (if not released) before its event closes; failures other than
  // kPartitionGone go to the error handler.
  ~WhpTriggerIrqFdRoute() override;

  Gsi gsi() const override { return gsi_; }
  const Event& event() const override { return event_; }
  Status SetMsi(const MsiMessage& msi) override;
  Status ClearMsi() override;
  std::optional<MsiMessage> msi() const override;
  Status Release() override;

 private:
  Status CheckNotReleased(const char* op) const;

  std::shared_ptr<WhpTriggerIrqFdCore> core_;
  const Gsi gsi_;
  const Event event_;      // made by Event::CreateWithSink; its sink is the trigger's SetEvent
  mutable std::mutex mu_;  // serialises calls on this route, including against Release
  bool released_ = false;  // guarded by mu_
};

WhpTriggerIrqFdRoute::~WhpTriggerIrqFdRoute() {
  std::lock_guard lock(mu_);
  if (released_) return;
  released_ = true;
  Status s = core_->Drop(gsi_, event_);
  // After Shutdown destruction just closes the trigger's event: nothing to report.
  if (!s && s.error().code != ErrorCode::kPartitionGone) core_->Report(s.error());
}

Status WhpTriggerIrqFdRoute::CheckNotReleased(const char* op) const {
  if (!released_) return Ok();
  return Error::Make(ErrorCode::kAlreadyReleased, op,
                     "route for GSI " + std::to_string(gsi_) + " was released");
}

Status WhpTriggerIrqFdRoute::SetMsi(const MsiMessage& msi) {
  std::lock_guard lock(mu_);
  if (Status s = CheckNotReleased("IrqFdRoute::SetMsi"); !s) return s;
  return core_->SetMsi(gsi_, event_, msi);
}

Status WhpTriggerIrqFdRoute::ClearMsi() {
  std::lock_guard lock(mu_);
  if (Status s = CheckNotReleased("IrqFdRoute::ClearMsi"); !s) return s;
  return core_->ClearMsi(gsi_, event_);
}

std::optional<MsiMessage> WhpTriggerIrqFdRoute::msi() const {
  std::lock_guard lock(mu_);
  if (released_) return std::nullopt;
  return core_->CurrentMsi(gsi_);
}

Status WhpTriggerIrqFdRoute::Release() {
  std::lock_guard lock(mu_);
  if (Status s = CheckNotReleased("IrqFdRoute::Release"); !s) return s;
  released_ = true;
  return core_->Drop(gsi_, event_);
}

}  // namespace

Result<std::unique_ptr<WhpTriggerIrqFd>> WhpTriggerIrqFd::Create(std::shared_ptr<WhpApi> api,
                                                                 WHV_PARTITION_HANDLE partition,
                                                                 uint32_t gsi_capacity) {
  constexpr const char* kOp = "WhpTriggerIrqFd::Create";
  if (!api) return Error::Make(ErrorCode::kInvalidArgument, kOp, "no WhpApi");
  if (gsi_capacity <= kReservedGsis) {
    return Error::Make(ErrorCode::kInvalidArgument, kOp,
                       "GSI capacity " + std::to_string(gsi_capacity) + " leaves no GSI after " +
                           std::to_string(kReservedGsis) + " reserved ones");
  }
  if (!api->HasTriggers()) {
    return Error::Make(ErrorCode::kUnavailable, kOp,
                       "WHvCreateTrigger is missing (Windows 10 20H2 or later has it)");
  }
  auto gsis = GsiTable::Create(gsi_capacity);
  if (!gsis) return gsis.error();
  if (Status s = gsis->Reserve(0, kReservedGsis); !s) return s.error();
  auto core = std::make_shared<WhpTriggerIrqFdCore>(std::move(api), partition, std::move(*gsis));
  return std::unique_ptr<WhpTriggerIrqFd>(new WhpTriggerIrqFd(std::move(core)));
}

WhpTriggerIrqFd::WhpTriggerIrqFd(std::shared_ptr<WhpTriggerIrqFdCore> core)
    : core_(std::move(core)) {}

WhpTriggerIrqFd::~WhpTriggerIrqFd() = default;

Result<std::unique_ptr<IrqFdRoute>> WhpTriggerIrqFd::NewRoute() {
  auto event = Event::CreateWithSink();
  if (!event) return event.error();
  auto gsi = core_->AllocateGsi();
  if (!gsi) return gsi.error();
  return std::unique_ptr<IrqFdRoute>(new WhpTriggerIrqFdRoute(core_, *gsi, std::move(*event)));
}

Result<std::unique_ptr<IrqFdRoute>> WhpTriggerIrqFd::NewRouteAt(Gsi gsi) {
  auto event = Event::CreateWithSink();  // first, as in NewRoute: on a failure no GSI is taken
  if (!event) return event.error();
  auto got = core_->AllocateGsiAt(gsi);
  if (!got) return got.error();
  return std::unique_ptr<IrqFdRoute>(new WhpTriggerIrqFdRoute(core_, *got, std::move(*event)));
}

Result<std::vector<RouteState>> WhpTriggerIrqFd::Routes() const { return core_->Routes(); }

void WhpTriggerIrqFd::BeginBatch() { core_->BeginBatch(); }

Status WhpTriggerIrqFd::EndBatch() { return core_->EndBatch(); }

void WhpTriggerIrqFd::SetErrorHandler(ErrorHandler handler) {
  core_->SetErrorHandler(std::move(handler));
}

void WhpTriggerIrqFd::ReportError(const Error& error) { core_->Report(error); }

void WhpTriggerIrqFd::Shutdown() { core_->Shutdown(); }

uint32_t WhpTriggerIrqFd::allocated_gsis() const { return core_->allocated_gsis(); }

}  // namespace virt::whp

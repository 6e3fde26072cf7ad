// IrqFd: the optional capability of routing events straight to MSIs (Partition::irqfd()).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "virt/irqfd_route.h"
#include "virt/partition_state.h"
#include "virt/result.h"

namespace virt {

// Creates IrqFdRoutes and batches their changes. Thread-safe.
class IrqFd {
 public:
  using ErrorHandler = std::function<void(const Error&)>;

  virtual ~IrqFd() = default;

  // A new masked route with its own GSI and event. kExhausted when the GSI table is full.
  virtual Result<std::unique_ptr<IrqFdRoute>> NewRoute() = 0;

  // A new masked route on exactly `gsi` (restoring a snapshot's routes): kInvalidArgument for a
  // GSI outside the table or reserved, kFailedPrecondition when a route holds it already.
  // kUnavailable where the implementation cannot choose GSIs.
  virtual Result<std::unique_ptr<IrqFdRoute>> NewRouteAt(Gsi gsi) {
    (void)gsi;
    return Error::Make(ErrorCode::kUnavailable, "IrqFd::NewRouteAt",
                       "this IrqFd cannot allocate a chosen GSI");
  }

  // Every live route's GSI and current MSI (nullopt when masked), by GSI, for a snapshot.
  virtual Result<std::vector<RouteState>> Routes() const {
    return Error::Make(ErrorCode::kUnavailable, "IrqFd::Routes", "this IrqFd cannot list routes");
  }

  // Between BeginBatch and the matching EndBatch, route changes (from any thread) edit the
  // in-memory table only; the outermost EndBatch pushes it once and then arms new routes, so
  // programming N routes costs one push. Batches nest. Prefer RouteBatch.
  virtual void BeginBatch() = 0;
  // Commits the batch: pushes the table, arms routes enabled in the batch, frees GSIs of routes
  // dropped in it. On a failed push the table rolls back to what the kernel holds and routes
  // enabled in the batch stay masked.
  virtual Status EndBatch() = 0;

  // Receives teardown failures that a destructor cannot return. Default: log to stderr.
  virtual void SetErrorHandler(ErrorHandler handler) = 0;
  // Sends `error` to the error handler (used by destructors of routes and batches).
  virtual void ReportError(const Error& error) = 0;

  // Number of whole-table pushes made so far (for tests and benchmarks).
  virtual uint64_t push_count() const = 0;
};

// RAII batch: BeginBatch on construction, EndBatch on Commit() or destruction (a failure there
// goes to the IrqFd's error handler).
class RouteBatch {
 public:
  explicit RouteBatch(IrqFd& irqfd) : irqfd_(&irqfd) { irqfd_->BeginBatch(); }
  RouteBatch(const RouteBatch&) = delete;
  RouteBatch& operator=(const RouteBatch&) = delete;
  ~RouteBatch();

  // Ends the batch now and returns the push outcome. Later calls return Ok.
  Status Commit();

 private:
  IrqFd* irqfd_;
};

// Recreates `routes` (a snapshot's, from IrqFd::Routes) on `irqfd`: each on its own GSI with
// its MSI (or masked), all in one batch, so the table is pushed once. Returns the new routes in
// the given order. On any failure the routes made so far are dropped again and the error names
// the GSI.
Result<std::vector<std::unique_ptr<IrqFdRoute>>> RestoreRoutes(IrqFd& irqfd,
                                                               std::span<const RouteState> routes);

}  // namespace virt

// UserModeDoorbells: the doorbell table rung from the VMM's exit handling.
#include "virt/user_mode_doorbells.h"

#include "doorbell_core.h"

namespace virt {

std::unique_ptr<UserModeDoorbells> UserModeDoorbells::Create() {
  return std::unique_ptr<UserModeDoorbells>(
      new UserModeDoorbells(std::make_shared<DoorbellCore>(nullptr, /*any_length=*/true)));
}

UserModeDoorbells::~UserModeDoorbells() { Shutdown(); }

Result<std::unique_ptr<DoorbellRegistration>> UserModeDoorbells::Register(
    const DoorbellMatch& match) {
  return DoorbellCore::Register(core_, match);
}

void UserModeDoorbells::SetErrorHandler(ErrorHandler handler) {
  core_->SetErrorHandler(std::move(handler));
}

bool UserModeDoorbells::Dispatch(const IoExit& io) {
  if (!io.is_write) return false;
  return core_->Dispatch(DoorbellSpace::kPio, io.port, io);
}

bool UserModeDoorbells::Dispatch(const MmioExit& mmio) {
  if (!mmio.is_write) return false;
  return core_->Dispatch(DoorbellSpace::kMmio, mmio.address, mmio);
}

bool UserModeDoorbells::Dispatch(const VcpuExit& exit) {
  if (const auto* io = std::get_if<IoExit>(&exit)) return Dispatch(*io);
  if (const auto* mmio = std::get_if<MmioExit>(&exit)) return Dispatch(*mmio);
  return false;
}

void UserModeDoorbells::Shutdown() { core_->Shutdown(); }

}  // namespace virt

// KernelDoorbells: Doorbells over a backend's DoorbellOps.
#include "virt/kernel_doorbells.h"

#include "doorbell_core.h"

namespace virt {

std::unique_ptr<KernelDoorbells> KernelDoorbells::Create(std::unique_ptr<DoorbellOps> ops,
                                                         Options options) {
  return std::unique_ptr<KernelDoorbells>(
      new KernelDoorbells(std::make_shared<DoorbellCore>(std::move(ops), options.any_length)));
}

KernelDoorbells::~KernelDoorbells() { core_->Shutdown(); }

Result<std::unique_ptr<DoorbellRegistration>> KernelDoorbells::Register(
    const DoorbellMatch& match) {
  return DoorbellCore::Register(core_, match);
}

bool KernelDoorbells::supports_any_length() const { return core_->any_length(); }

void KernelDoorbells::SetErrorHandler(ErrorHandler handler) {
  core_->SetErrorHandler(std::move(handler));
}

void KernelDoorbells::Shutdown() { core_->Shutdown(); }

size_t KernelDoorbells::size() const { return core_->size(); }

}  // namespace virt

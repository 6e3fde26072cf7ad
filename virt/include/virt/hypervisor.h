// Hypervisor: an opened backend that creates partitions.
#pragma once

#include <memory>
#include <string_view>

#include "virt/partition.h"
#include "virt/result.h"

namespace virt {

class Hypervisor {
 public:
  virtual ~Hypervisor() = default;

  // "kvm", "mshv", "whp".
  virtual std::string_view name() const = 0;

  // Creates and initialises a VM (KVM_CREATE_VM + irqchip ...).
  virtual Result<std::unique_ptr<Partition>> CreatePartition(const PartitionConfig& config) = 0;
};

}  // namespace virt

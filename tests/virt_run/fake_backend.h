// Fakes of the public backend interfaces (Hypervisor, Partition, Vcpu, IrqLines) for virt-run's
// tests without a hypervisor: a vCPU plays a script of exits and records what the VMM did.
#pragma once

#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "virt/hypervisor.h"
#include "virt/irq_lines.h"
#include "virt/partition.h"
#include "virt/registry.h"
#include "virt/vcpu.h"

namespace virt::run::testing {

// One scripted exit. For an OUT the bytes are kept here, so IoExit::data stays valid.
struct ScriptedExit {
  VcpuExit exit;
  std::vector<uint8_t> out_data;
};

inline ScriptedExit Out(uint16_t port, uint8_t size, std::vector<uint8_t> data) {
  IoExit io;
  io.port = port;
  io.size = size;
  io.is_write = true;
  io.count = static_cast<uint32_t>(data.size() / size);
  return {io, std::move(data)};
}
inline ScriptedExit Out32(uint16_t port, uint32_t v) {
  return Out(port, 4, {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8),
                       static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 24)});
}
inline ScriptedExit In(uint16_t port, uint8_t size, uint32_t count = 1) {
  IoExit io;
  io.port = port;
  io.size = size;
  io.is_write = false;
  io.count = count;
  return {io, {}};
}
inline ScriptedExit Mmio(uint64_t address, uint8_t size, bool write, uint64_t value = 0) {
  MmioExit m;
  m.address = address;
  m.size = size;
  m.is_write = write;
  m.value = value;
  return {m, {}};
}

// Plays `script`; when it runs out, Run blocks (like a vCPU waiting for SIPI) until Cancel.
class FakeVcpu : public Vcpu {
 public:
  FakeVcpu(uint32_t index, std::vector<ScriptedExit> script)
      : index_(index), script_(script.begin(), script.end()) {}

  uint32_t index() const override { return index_; }

  Result<VcpuExit> Run() override {
    std::unique_lock lock(mu_);
    ++runs_;
    if (pending_in_) return Error::Make(ErrorCode::kFailedPrecondition, "FakeVcpu::Run", "IN not completed");
    if (run_error_) return *run_error_;
    cv_.wait(lock, [this] { return cancel_ || !script_.empty(); });
    if (cancel_) {
      cancel_ = false;
      ++cancelled_;
      return VcpuExit{CancelledExit{}};
    }
    current_ = std::move(script_.front());
    script_.pop_front();
    if (auto* io = std::get_if<IoExit>(&current_.exit)) {
      if (io->is_write) {
        io->data = current_.out_data;
      } else {
        pending_in_ = size_t{io->size} * io->count;
      }
    }
    if (auto* m = std::get_if<MmioExit>(&current_.exit); m != nullptr && !m->is_write) {
      pending_mmio_ = true;
    }
    return current_.exit;
  }

  Status CompleteIoIn(std::span<const uint8_t> data) override {
    std::lock_guard lock(mu_);
    if (!pending_in_ || *pending_in_ != data.size()) {
      return Error::Make(ErrorCode::kInvalidArgument, "FakeVcpu::CompleteIoIn", "unexpected");
    }
    pending_in_.reset();
    in_answers_.emplace_back(data.begin(), data.end());
    return Ok();
  }
  Status CompleteMmioRead(uint64_t value) override {
    std::lock_guard lock(mu_);
    if (!pending_mmio_) return Error::Make(ErrorCode::kFailedPrecondition, "FakeVcpu", "no read");
    pending_mmio_ = false;
    mmio_answers_.push_back(value);
    return Ok();
  }
  void Cancel() override {
    std::lock_guard lock(mu_);
    cancel_ = true;
    cv_.notify_all();
  }
  Result<Registers> GetRegisters() override {
    std::lock_guard lock(mu_);
    return regs_;
  }
  Status SetRegisters(const Registers& r) override {
    std::lock_guard lock(mu_);
    regs_ = r;
    regs_set_ = true;
    return Ok();
  }
  Result<SpecialRegisters> GetSpecialRegisters() override {
    std::lock_guard lock(mu_);
    return sregs_;
  }
  Status SetSpecialRegisters(const SpecialRegisters& s) override {
    std::lock_guard lock(mu_);
    sregs_ = s;
    sregs_set_ = true;
    return Ok();
  }
  Result<FpuState> GetFpu() override { return FpuState{}; }
  Status SetFpu(const FpuState&) override { return Ok(); }
  Status GetMsrs(std::span<MsrEntry>) override { return Ok(); }
  Status SetMsrs(std::span<const MsrEntry>) override { return Ok(); }

  // Recorded effects (read after the run).
  std::vector<std::vector<uint8_t>> in_answers_;
  std::vector<uint64_t> mmio_answers_;
  Registers regs_;
  SpecialRegisters sregs_;
  bool regs_set_ = false, sregs_set_ = false;
  int runs_ = 0, cancelled_ = 0;
  std::optional<Error> run_error_;

 private:
  uint32_t index_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ScriptedExit> script_;
  ScriptedExit current_;
  std::optional<size_t> pending_in_;
  bool pending_mmio_ = false;
  bool cancel_ = false;
};

// A FakeVcpu with per-vCPU CPUID control.
class FakeCpuidVcpu : public FakeVcpu, public VcpuCpuid {
 public:
  FakeCpuidVcpu(uint32_t index, std::vector<ScriptedExit> script, Cpuid table)
      : FakeVcpu(index, std::move(script)), table_(std::move(table)) {}
  VcpuCpuid* cpuid() override { return this; }
  Result<Cpuid> GetCpuid() override { return table_; }
  Status SetCpuid(const Cpuid& c) override {
    table_ = c;
    ++sets_;
    return Ok();
  }
  Cpuid table_;
  int sets_ = 0;
};

// Records SetLevel and hands out routes with real Events; `resample` events are created for
// kLevelResample routes, so a test can play the kernel's EOI notification.
class FakeIrqLines : public IrqLines {
 public:
  struct Route : IrqLineRoute {
    Route(FakeIrqLines& owner, uint32_t line, LineTrigger trigger)
        : owner(owner), line_(line), trigger_(trigger), event_(*Event::Create()) {
      if (trigger == LineTrigger::kLevelResample) resample_ = *Event::Create();
    }
    ~Route() override {
      std::lock_guard lock(owner.mu);
      ++owner.routes_destroyed;
    }
    uint32_t line() const override { return line_; }
    LineTrigger trigger() const override { return trigger_; }
    const Event& event() const override { return event_; }
    const Event* resample_event() const override { return resample_ ? &*resample_ : nullptr; }
    Status Release() override { return Ok(); }
    FakeIrqLines& owner;
    uint32_t line_;
    LineTrigger trigger_;
    Event event_;
    std::optional<Event> resample_;
  };

  uint32_t line_count() const override { return 24; }
  Status SetLevel(uint32_t line, bool level) override {
    std::lock_guard lock(mu);
    if (fail_set_level) return Error::Errno("KVM_IRQ_LINE", 5);
    levels.emplace_back(line, level);
    return Ok();
  }
  Result<std::unique_ptr<IrqLineRoute>> NewLineRoute(uint32_t line, LineTrigger trigger) override {
    auto r = std::make_unique<Route>(*this, line, trigger);
    std::lock_guard lock(mu);
    routes.push_back(r.get());
    return std::unique_ptr<IrqLineRoute>(std::move(r));
  }
  void SetErrorHandler(ErrorHandler) override {}

  std::mutex mu;
  std::vector<std::pair<uint32_t, bool>> levels;
  std::vector<Route*> routes;  // every route made (some destroyed since)
  int routes_destroyed = 0;
  bool fail_set_level = false;
};

// A partition whose vCPUs come from `make_vcpu`; optionally with IrqLines.
class FakePartition : public Partition {
 public:
  using MakeVcpu = std::function<std::unique_ptr<Vcpu>(uint32_t index)>;
  FakePartition(PartitionConfig config, MakeVcpu make, IrqLines* lines)
      : config(config), make_(std::move(make)), lines_(lines) {}
  Status MapMemory(const MemoryRegion& r) override {
    regions.push_back(r);
    return Ok();
  }
  Status UnmapMemory(uint64_t, uint64_t) override { return Ok(); }
  Result<std::unique_ptr<Vcpu>> CreateVcpu(uint32_t index) override { return make_(index); }
  Result<bool> RequestMsi(const MsiMessage&) override { return true; }
  IrqFd* irqfd() override { return nullptr; }
  IrqLines* irq_lines() override { return lines_; }
  PartitionConfig config;
  std::vector<MemoryRegion> regions;

 private:
  MakeVcpu make_;
  IrqLines* lines_;
};

// A hypervisor that refuses partitions it cannot make, as a real backend does.
class FakeHypervisor : public Hypervisor {
 public:
  std::string_view name() const override { return "fake"; }
  Result<std::unique_ptr<Partition>> CreatePartition(const PartitionConfig& config) override {
    configs.push_back(config);
    if (config.vcpu_count > max_vcpus) {
      return Error::Make(ErrorCode::kInvalidArgument, "FakeHypervisor::CreatePartition",
                         "vcpu_count " + std::to_string(config.vcpu_count) + " not in 1.." +
                             std::to_string(max_vcpus));
    }
    if (config.pit && !has_pit) {
      return Error::Make(ErrorCode::kUnavailable, "FakeHypervisor::CreatePartition",
                         "no in-kernel PIT");
    }
    auto p = std::make_unique<FakePartition>(config, make_vcpu, lines);
    last_partition = p.get();
    return std::unique_ptr<Partition>(std::move(p));
  }
  uint32_t max_vcpus = 64;
  bool has_pit = true;
  IrqLines* lines = nullptr;
  FakePartition::MakeVcpu make_vcpu;
  std::vector<PartitionConfig> configs;
  FakePartition* last_partition = nullptr;
};

// A registry with one backend "fake" that opens `hv` (kept alive by the caller).
inline Registry FakeRegistry(FakeHypervisor* hv) {
  struct Forward : Hypervisor {
    explicit Forward(FakeHypervisor* hv) : hv(hv) {}
    std::string_view name() const override { return hv->name(); }
    Result<std::unique_ptr<Partition>> CreatePartition(const PartitionConfig& c) override {
      return hv->CreatePartition(c);
    }
    FakeHypervisor* hv;
  };
  std::vector<BackendInfo> backends;
  backends.push_back(BackendInfo{
      "fake", [hv] { return hv ? Availability{} : Availability{Unavailability::kDeviceMissing, "/dev/fake: gone"}; },
      [hv]() -> Result<std::unique_ptr<Hypervisor>> {
        if (!hv) return Error::Make(ErrorCode::kUnavailable, "open", "/dev/fake: gone");
        return std::unique_ptr<Hypervisor>(new Forward(hv));
      }});
  return Registry(std::move(backends), [](const char*) { return std::optional<std::string>(); });
}

}  // namespace virt::run::testing

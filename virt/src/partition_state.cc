// PartitionState: the parts present, their names, and the versioned byte form.
#include "virt/partition_state.h"

#include <set>
#include <string>

#include "state_codec.h"

namespace virt {
namespace {

constexpr std::string_view kMagic = "VIRTPART";
constexpr uint32_t kMaxRoutes = 1u << 16;
constexpr size_t kMaxBlob = size_t{1} << 20;

void PutPart(StateWriter& w, PartitionStatePart part, const PartitionState& s) {
  w.BeginRecord(static_cast<uint16_t>(part));
  switch (part) {
    case PartitionStatePart::kClock:
      w.U64(s.clock->ns), w.U32(s.clock->flags), w.Zeros(4);
      break;
    case PartitionStatePart::kIrqchip:
      w.Bytes(*s.irqchip);
      break;
    case PartitionStatePart::kPit:
      w.Bytes(*s.pit);
      break;
    case PartitionStatePart::kRoutes:
      w.U32(static_cast<uint32_t>(s.routes->size()));
      for (const RouteState& r : *s.routes) {
        w.U32(r.gsi), w.Bool(r.msi.has_value()), w.Zeros(3);
        w.U64(r.msi ? r.msi->address : 0), w.U32(r.msi ? r.msi->data : 0), w.Zeros(4);
      }
      break;
  }
  w.EndRecord();
}

void GetPart(StateReader& r, PartitionStatePart part, PartitionState& s) {
  switch (part) {
    case PartitionStatePart::kClock: {
      ClockState& c = s.clock.emplace();
      c.ns = r.U64(), c.flags = r.U32(), r.Skip(4);
      break;
    }
    case PartitionStatePart::kIrqchip:
    case PartitionStatePart::kPit:
      if (r.remaining() == 0 || r.remaining() > kMaxBlob) {
        r.Fail(std::string(ToString(part)) + " of " + std::to_string(r.remaining()) + " bytes");
      }
      (part == PartitionStatePart::kIrqchip ? s.irqchip : s.pit) = r.Rest();
      break;
    case PartitionStatePart::kRoutes: {
      const uint32_t n = r.Count(24, kMaxRoutes);
      s.routes.emplace(n);
      std::set<Gsi> seen;
      for (RouteState& route : *s.routes) {
        route.gsi = r.U32();
        const bool has_msi = r.Bool();
        r.Skip(3);
        const uint64_t address = r.U64();
        const uint32_t data = r.U32();
        r.Skip(4);
        if (has_msi) route.msi = MsiMessage{address, data};
        if (r.ok() && !seen.insert(route.gsi).second) {
          r.Fail("GSI " + std::to_string(route.gsi) + " appears twice");
        }
      }
      break;
    }
  }
  r.ExpectEnd();
}

bool KnownPart(uint16_t id) {
  for (PartitionStatePart p : kPartitionRestoreOrder) {
    if (static_cast<uint16_t>(p) == id) return true;
  }
  return false;
}

}  // namespace

const char* ToString(PartitionStatePart part) {
  switch (part) {
    case PartitionStatePart::kClock: return "clock";
    case PartitionStatePart::kIrqchip: return "irqchip";
    case PartitionStatePart::kPit: return "pit";
    case PartitionStatePart::kRoutes: return "routes";
  }
  return "unknown";
}

bool PartitionState::Has(PartitionStatePart part) const {
  switch (part) {
    case PartitionStatePart::kClock: return clock.has_value();
    case PartitionStatePart::kIrqchip: return irqchip.has_value();
    case PartitionStatePart::kPit: return pit.has_value();
    case PartitionStatePart::kRoutes: return routes.has_value();
  }
  return false;
}

std::vector<PartitionStatePart> PartitionState::parts() const {
  std::vector<PartitionStatePart> out;
  for (PartitionStatePart p : kPartitionRestoreOrder) {
    if (Has(p)) out.push_back(p);
  }
  return out;
}

std::vector<uint8_t> SerializePartitionState(const PartitionState& state) {
  StateWriter w(kMagic, state.backend);
  for (PartitionStatePart p : state.parts()) PutPart(w, p, state);
  return w.Take();
}

Result<PartitionState> ParsePartitionState(std::span<const uint8_t> bytes,
                                           std::string_view backend) {
  StateReader r(bytes, "ParsePartitionState");
  PartitionState s;
  if (!r.Header(kMagic, s.backend)) return r.error();
  if (!backend.empty() && s.backend != backend) {
    return Error::Make(ErrorCode::kInvalidArgument, "ParsePartitionState",
                       "the state was saved by backend " + s.backend + ", not " +
                           std::string(backend));
  }
  uint16_t id = 0;
  StateReader payload({}, "ParsePartitionState");
  while (r.NextRecord(id, payload)) {
    if (!KnownPart(id)) {
      return Error::Make(ErrorCode::kInvalidArgument, "ParsePartitionState",
                         "unknown part " + std::to_string(id));
    }
    const auto part = static_cast<PartitionStatePart>(id);
    if (s.Has(part)) {
      return Error::Make(ErrorCode::kInvalidArgument, "ParsePartitionState",
                         std::string("part ") + ToString(part) + " appears twice");
    }
    GetPart(payload, part, s);
    if (!payload.ok()) {
      Error e = payload.error();
      e.detail = std::string(ToString(part)) + ": " + e.detail;
      return e;
    }
  }
  if (!r.ok()) return r.error();
  return s;
}

}  // namespace virt

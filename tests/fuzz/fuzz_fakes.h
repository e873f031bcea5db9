// Fakes shared by the device fuzz targets.
#pragma once

#include <cstdint>
#include <cstdlib>

#include "bus/irq_line.h"
#include "bus/system_control.h"

namespace hako::fuzz {

/// An interrupt line that aborts (a fuzzer finding) when a device drives the level it already has: devices promise
/// to drive changes only.
class StrictIrqLine final : public bus::IrqLine {
public:
    void set_level(bool asserted) override
    {
        if (asserted == level)
            std::abort();
        level = asserted;
    }
    bool level { false };
};

/// Counts machine-wide requests (reset, power off, debug exit) instead of acting on them.
class CountingSystem final : public bus::SystemControl {
public:
    void request(bus::SystemEvent, uint32_t) override { ++requests; }
    uint64_t requests { 0 };
};

} // namespace hako::fuzz

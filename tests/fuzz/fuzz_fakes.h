// Fakes shared by the device fuzz targets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "bus/irq_line.h"
#include "bus/system_control.h"
#include "net/backend.h"

namespace hako::fuzz {

/// A property the target checks: its failure is a finding.
inline void check(bool ok)
{
    if (!ok)
        std::abort();
}

/// A network backend for NIC targets: counts frames sent (each must be 14..max_frame bytes), delivers frames from
/// the network on the fuzzer's thread, and retries pending ones when the NIC asked for it.
class FrameCountingBackend final : public net::Backend {
public:
    explicit FrameCountingBackend(size_t max_frame) : m_max_frame(max_frame) { }
    using net::Backend::send; // with offload metadata: the base's default (plain frames only)
    void send(std::span<uint8_t const> frame) override
    {
        check(frame.size() >= net::ETH_MIN_FRAME_LEN && frame.size() <= m_max_frame);
        ++sent;
    }
    void rx_buffers_available() override { retry = true; }
    void inject(std::span<uint8_t const> frame) { deliver(frame); }
    void flush()
    {
        if (retry) {
            retry = false;
            flush_pending();
        }
    }
    uint64_t sent { 0 };
    bool retry { false };

private:
    size_t m_max_frame;
};

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

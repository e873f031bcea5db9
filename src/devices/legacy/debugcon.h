// DebugCon: the Bochs/QEMU debug console port (0xe9, and 0x402 where SeaBIOS writes its log).
//
// A write sends its low byte to the output callback; a read returns 0xe9, which is how guests detect the port.
// Deliberately not done: buffering (the output callback sees every byte at once) and any input.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <span>

#include "bus/device.h"

namespace hako::devices::legacy {

class DebugCon final : public bus::Device {
public:
    using Output = std::function<void(std::span<uint8_t const>)>;
    static constexpr uint8_t READBACK = 0xe9;

    explicit DebugCon(Output output) : m_output(std::move(output)) { }

    std::string_view name() const override { return "debugcon"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

private:
    std::mutex m_mutex; // keeps bytes from concurrent vCPUs from interleaving inside the callback
    Output m_output;
};

} // namespace hako::devices::legacy

// Test doubles shared by the legacy devices' tests: a SystemControl that records the events devices request, and
// single-byte port accesses at offset 0.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "bus/system_control.h"

namespace hako::devices::legacy::test {

class RecordingSystem final : public bus::SystemControl {
public:
    void request(bus::SystemEvent event, uint32_t) override { events.push_back(event); }
    std::vector<bus::SystemEvent> events;
};

template <typename Device> uint8_t read_byte(Device& d)
{
    uint8_t b = 0;
    d.read(0, std::span<uint8_t>(&b, 1));
    return b;
}

template <typename Device> void write_byte(Device& d, uint8_t v) { d.write(0, std::span<uint8_t const>(&v, 1)); }

} // namespace hako::devices::legacy::test

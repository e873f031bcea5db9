// PortSink: a port that absorbs writes and reads as a fixed value, for ports a guest pokes but that need no
// behaviour: the POST code port 0x80 (also used as an I/O delay), and similar.
//
// Writes are dropped (the last byte is kept for debugging); reads return read_value in every byte.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "bus/device.h"

namespace hako::devices::legacy {

class PortSink final : public bus::Device {
public:
    PortSink(std::string_view name, uint8_t read_value = 0xff) : m_name(name), m_read_value(read_value) { }

    std::string_view name() const override { return m_name; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

    /// The low byte of the last write (a POST code, for port 0x80).
    uint8_t last_written() const { return m_last.load(std::memory_order_relaxed); }

private:
    std::string m_name;
    uint8_t m_read_value;
    std::atomic<uint8_t> m_last { 0 };
};

} // namespace hako::devices::legacy

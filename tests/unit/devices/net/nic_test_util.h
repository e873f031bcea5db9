// Test doubles shared by the NIC unit tests (e1000, rtl8139, pcnet).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "net/backend.h"
#include "net/net_options.h"

namespace hako::devices::net::test {

/// A backend that records every frame sent and counts the NIC's requests to retry pending frames.
class FakeBackend final : public hako::net::Backend {
public:
    void send(std::span<uint8_t const> frame) override { sent.emplace_back(frame.begin(), frame.end()); }
    void rx_buffers_available() override { ++retry_requests; }
    std::vector<std::vector<uint8_t>> sent;
    int retry_requests { 0 };
};

/// A `len`-byte IPv4-typed Ethernet frame to `dst` from 02:xx, with a payload pattern that depends on `fill`.
inline std::vector<uint8_t> frame_to(hako::net::MacAddress dst, size_t len, uint8_t fill = 0x5a)
{
    std::vector<uint8_t> f(len, fill);
    std::copy(dst.begin(), dst.end(), f.begin());
    f[6] = 0x02;
    f[12] = 0x08;
    f[13] = 0x00;
    for (size_t i = 14; i < len; ++i)
        f[i] = static_cast<uint8_t>(i * 7 + fill);
    return f;
}

} // namespace hako::devices::net::test

#include "devices/legacy/port_sink.h"

#include <algorithm>

namespace hako::devices::legacy {

void PortSink::read(uint64_t, std::span<uint8_t> data) { std::fill(data.begin(), data.end(), m_read_value); }

void PortSink::write(uint64_t, std::span<uint8_t const> data)
{
    if (!data.empty())
        m_last.store(data[0], std::memory_order_relaxed);
}

} // namespace hako::devices::legacy
